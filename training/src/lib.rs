//! `cutscore-training`: how Cutscore's models are trained and judged, none of which the plugin
//! runs.
//!
//! - [`oracle`]: the editing oracle that judges synthetic edits (`docs/oracle.md`).
//! - [`synthetic_pairs`]: preference pairs drawn from synthetic songs and judged by the oracle.
//! - [`pair_set`]: preference pairs loaded for training, split by song.
//! - [`bradley_terry`]: the Bradley–Terry loss and AdamW steps over preference pairs.
//! - [`run`]: a whole training run: epochs, early stopping, checkpoints, metrics.
//! - [`finetune`]: learning the user's taste layer from their decisions.
//! - [`simulated_users`]: people with tastes of their own who accept and reject proposals.
//! - [`taste_eval`]: the whole taste-learning loop with simulated users (`trainer taste-eval`).
//! - [`teach_eval`]: which questions teach a taste fastest (the editor's Teach), with simulated users.
//! - [`user_songs`]: the songs simulated users decide on: synthetic, or recordings as analysed.
//! - [`scorecard`]: accuracy, loss and calibration of a model on pairs.
//! - [`bench`](mod@bench): timing the reward model at given shapes (`trainer bench`, criterion).
//! - [`beat_net`]: the beat and downbeat network as a candle graph, for training.
//! - [`beat_training`]: examples, augmentation and the optimisation loop of `trainer beats train`.
//! - [`beat_widen`]: a trained beat model with more channels that computes the same activations.
//! - [`beat_eval`]: scoring both beat trackers on synthetic songs with known beats.

pub mod beat_eval;
pub mod beat_net;
pub mod beat_training;
pub mod beat_widen;
pub mod bench;
pub mod bradley_terry;
pub mod finetune;
pub mod oracle;
pub mod pair_set;
pub mod run;
pub mod scorecard;
pub mod simulated_users;
pub mod synthetic_pairs;
pub mod taste_eval;
pub mod teach_eval;
pub mod user_songs;
