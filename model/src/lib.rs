//! `cutscore-model`: everything Cutscore knows about music and taste, with no plugin code.
//!
//! - [`grid`]: beat grids (beats, bars, meter).
//! - [`features`]: the 125-input per-beat schema shared by analysis, training and scoring.
//! - [`analysis`]: decoding, the onset front end, offline and streaming beat tracking, and the
//!   121 beat features.
//! - [`synth`]: deterministic synthetic songs with exact ground truth (beats, bars, sections).
//! - [`edit`]: edits as removed beat spans, their joins, edit-aware features, scoring windows.
//! - [`reward`]: the reward transformer and how edits become its inputs.
//! - [`prefs`]: the decision log the plugin writes and the trainer reads.
//! - [`checkpoint`]: checked, atomic `.safetensors` checkpoints with metadata.
//! - [`training`]: the Bradley–Terry loss and AdamW steps over preference pairs.
//! - [`device`]: CUDA or CPU, chosen at run time with a reason.
//! - [`bench`]: timing the model at given shapes (trainer bench, criterion).
//! - [`editing`]: candidate cuts, fit to length, crossfaded rendering, marker exports.
//! - [`audio`]: interleaved audio and WAV output.
//! - [`atomic`]: crash-safe file writes for user data.
//! - [`shipped`]: the default reward model, embedded.
//! - [`user_model`]: where the user's fine-tuned model lives.

pub mod analysis;
pub mod atomic;
pub mod audio;
pub mod bench;
pub mod checkpoint;
pub mod device;
pub mod edit;
pub mod editing;
pub mod features;
pub mod grid;
pub mod oracle;
pub mod pair_set;
pub mod prefs;
pub mod reward;
pub mod scorecard;
pub mod shipped;
pub mod synth;
pub mod synthetic_pairs;
pub mod training;
pub mod training_run;
pub mod user_model;
