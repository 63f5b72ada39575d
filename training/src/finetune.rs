//! Fine-tuning on the user's decisions (`trainer finetune`, the plugin's "Learn from my
//! decisions"): learns the user's [`cutscore_core::taste::TasteLayer`] on top of the base model's transformer, which
//! stays as it is.
//!
//! Why a layer and not the whole transformer: a hundred decisions cannot move 2.6 M weights
//! without also moving the craft the transformer learned from hundreds of thousands of pairs
//! (fine-tuning all of it forgot 3-9 points of it), and the transformer's windows do not hear
//! what an edit removes, which is what many tastes are about. The layer reads a summary of the
//! removed material and of the change at each join ([`cutscore_core::taste`]) and adds its
//! weighted sum to the transformer's score.
//!
//! How (`layer_fit.rs`): Bradley–Terry logistic regression of the user's pairs on the summary,
//! offset by the transformer's own margin on each pair, with an L1 (sparsity) penalty and the layer's
//! offset held within a bound, each input read within the span it covers in the user's edits
//! ([`cutscore_core::taste::InputRange`]). Replayed synthetic pairs, weighing [`REPLAY_WEIGHT`] of the
//! user's, keep the layer from overturning the craft on edits the user never judged; the
//! sparsity, the bound, the gate and, for a user who has judged fewer than
//! [`FOCUS_BELOW_SONGS`] songs, whether the layer reads only the one or two inputs that alone
//! order the most decisions ([`FOCUS`]) are chosen by cross-validation over songs so that the
//! replayed pairs' held-out accuracy stays within three quarters of a point of the
//! transformer's ([`CRAFT_SLACK_POINTS`]).
//!
//! The report is honest about what the user will see: a share of the user's *songs* (not pairs
//! of the same songs) is held out, a layer learned without them is measured on them, and the
//! layer written is then learned on every song.

pub(crate) mod layer_fit;

pub use layer_fit::{BOUNDS, FOCUS, FOCUS_BELOW_SONGS, SPARSITIES, Settings};

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use candle_core::Device;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::Serialize;

use crate::pair_set::PairSet;
use cutscore_core::taste::TASTE_INPUTS;
use cutscore_reward::ModelError;
use cutscore_reward::checkpoint::{Checkpoint, CheckpointError, Provenance, TrainingMetrics};
use layer_fit::{Rows, accuracy};

/// Why fine-tuning could not run or save.
#[derive(Debug, thiserror::Error)]
pub enum FinetuneError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what} is {actual}; expected {expected}")]
    Option {
        what: &'static str,
        actual: f64,
        expected: &'static str,
    },
}

/// Weight of the replayed synthetic pairs, all together, against the user's pairs, unless told
/// otherwise. The replay is a second guard of the craft beside the cross-validated limit on it
/// ([`FinetuneOptions::craft_slack`]), and at equal weight (1, before issue #18's session 29) it
/// held the layer back from tastes the user's own decisions made plain. On recordings after 100
/// decisions (`trainer taste-eval --recordings`, five seeds), 0.3 raised the mean held-out
/// agreement of the lift user from 88.5 to 94.3 %, quiet-out from 83.9 to 92.6 % and the noisy
/// lift user from 79.7 to 84.9 % (long cuts level), at 0.16-0.42 points more of the craft lost
/// on fresh synthetic pairs (means over the same runs); on synthetic songs (six seeds) and after
/// 300 decisions (two seeds) it is level. A tighter craft limit with it (0.5 points) lost the
/// lift user's gain.
pub const REPLAY_WEIGHT: f64 = 0.3;

/// How many points of accuracy on replayed synthetic pairs cross-validation lets a taste cost,
/// unless told otherwise: three quarters of a point, a margin under the point issue #18 allows,
/// because the craft a layer costs on fresh synthetic pairs lands either side of the figure
/// cross-validation judged it at. Until session 46 this was 1 point, judged with a floor and an
/// input range of each fold's own (see `layer_fit::fold_splits`), which made the judgement
/// stricter than its figure said on some users and not on others. On recordings after 100
/// decisions (`trainer taste-eval --recordings`, seeds 30-39, four users, one machine), the mean
/// agreement on songs nobody decided on and the runs keeping the craft within a point, before /
/// folds with the written layer's floor and range at 1 point / at 0.75 / at 0.5: lift 87.0 /
/// 90.2 / 87.9 / 86.4 %, long cuts 97.1 / 97.4 / 97.4 / 97.0, quiet-out 93.7 / 94.5 / 93.4 /
/// 89.9, noisy lift 85.3 / 88.4 / 86.1 / 84.7; within a point 34 / 32 / 36 / 40 of 40. 0.75 was
/// the one that lost no user more than half a point of agreement without fewer runs within a
/// point. Then fresh seeds 40-49, once each way: lift 91.8 -> 92.6, long cuts 97.8 -> 97.3,
/// quiet-out 90.1 -> 90.5, noisy lift 91.0 -> 88.9; within a point 30 -> 37 of 40. Over the 80
/// runs the agreement is level (91.7 and 91.8 %) and the craft is kept within a point on 73
/// instead of 64. After 300 decisions (seeds 30-39) it trades the other way: lift 92.1 ->
/// 91.1 %, long cuts 97.7 -> 97.2, quiet-out 96.0 -> 95.0, noisy lift 91.3 -> 89.7, and within
/// a point 28 -> 36 of 40. 0.5 again in session 55, with the floor read from each song and the
/// craft on 3,000 fresh pairs per seed (100 decisions, seeds 30-32): every run within a point
/// (11 of 12 at 0.75), but lift 96.0 -> 93.6 % and noisy lift 95.5 -> 93.8 (seed 31: 94.5 ->
/// 88.8 and 94.5 -> 89.2). Not kept.
pub const CRAFT_SLACK_POINTS: f32 = 0.75;

/// How to fine-tune.
#[derive(Debug, Clone, PartialEq)]
pub struct FinetuneOptions {
    /// Seeds which songs are held out and the cross-validation folds.
    pub seed: u64,
    /// Share of the user's songs held out to measure agreement (none with a single song).
    pub holdout: f64,
    /// Weight of the replayed synthetic pairs, all together, against the user's.
    pub replay: f64,
    /// Share of synthetic songs held out to measure the kept skill.
    pub synthetic_val: f64,
    /// The sparsity (L1) strength, the bound, the gate and the focus; `None` chooses them by
    /// cross-validation ([`SPARSITIES`], [`BOUNDS`], [`FOCUS`]).
    pub settings: Option<Settings>,
    /// How much accuracy on replayed synthetic pairs (the craft) the chosen layer may give up in
    /// cross-validation, as a share: the craft kept is the constraint, agreement with the user
    /// the objective. Some tastes contradict the craft (a user who likes joins that jump up in
    /// level, where the craft says level jumps are flaws); more slack follows them further.
    pub craft_slack: f32,
    /// Also measure agreement after learning from the first 1, 2, ... of the training songs.
    pub curve: bool,
}

impl Default for FinetuneOptions {
    fn default() -> Self {
        Self {
            seed: 0,
            holdout: 0.2,
            replay: REPLAY_WEIGHT,
            synthetic_val: 0.15,
            settings: None,
            craft_slack: CRAFT_SLACK_POINTS / 100.0,
            curve: false,
        }
    }
}

/// What fine-tuning did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FinetuneReport {
    pub user_pairs: usize,
    pub user_songs: usize,
    /// Songs held out to measure agreement, and their pairs.
    pub held_out_songs: usize,
    pub held_out_pairs: usize,
    pub synthetic_train: usize,
    pub synthetic_val: usize,
    /// Accuracy on the held-out songs' pairs of the transformer alone (before) and with the
    /// layer learned without them (after); `None` with nothing held out. "Before" leaves out
    /// any layer the base had: that one was learned from these very songs.
    pub user_agreement_before: Option<f32>,
    pub user_agreement_after: Option<f32>,
    /// Accuracy on the synthetic validation songs, of the transformer alone and with the new
    /// layer (`None` without them).
    pub base_accuracy_before: Option<f32>,
    pub base_accuracy_after: Option<f32>,
    /// The sparsity (L1 strength) the layer was learned with, its bound, whether it fades
    /// out below the edits the user judged, and how many inputs it was focused on (`None`:
    /// every input; [`FOCUS`]).
    pub sparsity: f64,
    pub bound: f32,
    pub gated: bool,
    pub focus: Option<usize>,
    /// What a focused layer reads, in words ([`cutscore_core::taste::input_name`]): the inputs
    /// it weighs (empty for a layer of every input).
    pub focused_on: Vec<String>,
    pub base_model: String,
    pub model_id: String,
    pub written: PathBuf,
    /// Where the model that was at `written` before was kept.
    pub backup: Option<PathBuf>,
    pub seconds: f64,
    /// Agreement on the held-out songs against decisions learned from (with `curve`).
    pub curve: Vec<CurvePoint>,
}

/// One point of the learning curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CurvePoint {
    pub songs: usize,
    pub decisions: usize,
    pub agreement: f32,
}

/// Where fine-tuning runs and what it writes.
#[derive(Debug, Clone)]
pub struct FinetuneTarget<'a> {
    pub device: &'a Device,
    /// The model file to write (the user's model unless told otherwise).
    pub out: &'a Path,
    /// The command line, for the provenance.
    pub command: Option<String>,
}

/// What fine-tuning is doing, for a progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The transformer scores the pairs: `done` of `total` songs.
    Scoring { done: usize, total: usize },
    /// Cross-validation: `done` of `total` solves.
    Choosing { done: usize, total: usize },
    /// The final layer is being learned and written.
    Writing,
}

/// Fine-tunes: learns the user's taste layer over `base`'s transformer from the `user` pairs,
/// replaying `synthetic` pairs, and writes the model to `out` atomically, first copying any model
/// at `out` to `model.prev.safetensors` beside it.
pub fn finetune(
    base: &Checkpoint,
    user: &PairSet,
    synthetic: Option<&PairSet>,
    options: &FinetuneOptions,
    target: &FinetuneTarget,
    mut progress: impl FnMut(Stage),
) -> Result<FinetuneReport, FinetuneError> {
    check(options)?;
    let started = std::time::Instant::now();
    let transformer = base.model(target.device)?.with_taste(None);
    let (syn_train, syn_val) = match synthetic {
        Some(set) => set.split_by_track(options.synthetic_val, options.seed),
        None => Default::default(),
    };
    let total = user.track_ids().len() + syn_train.track_ids().len() + syn_val.track_ids().len();
    let mut done = 0;
    let mut score = |set: &PairSet| {
        Rows::score(&transformer, set, || {
            done += 1;
            progress(Stage::Scoring { done, total });
        })
    };
    let all_user = score(user)?;
    let replay = score(&syn_train)?;
    let skill_rows = score(&syn_val)?;
    // Hold out whole songs, learn without them, measure on them.
    let songs = all_user.songs.len();
    let held_count = if songs < 2 {
        0
    } else {
        ((songs as f64 * options.holdout).round() as usize).clamp(1, songs - 1)
    };
    let mut order: Vec<usize> = (0..songs).collect();
    order.shuffle(&mut StdRng::seed_from_u64(options.seed));
    let held: HashSet<usize> = order[..held_count].iter().copied().collect();
    let (train, held_out) = all_user.split(|i| held.contains(&i));
    let solves = if options.settings.is_some() {
        0
    } else {
        let measured = if held_out.songs.is_empty() {
            0
        } else {
            train.songs.len()
        };
        layer_fit::choose_solves(measured, songs) + layer_fit::choose_solves(songs, songs)
    };
    let mut solved = 0;
    let mut choose = |rows: &Rows| match options.settings {
        Some(settings) => settings,
        None => layer_fit::choose(rows, &replay, options, songs, || {
            solved += 1;
            progress(Stage::Choosing {
                done: solved,
                total: solves,
            });
        }),
    };
    let mut curve = Vec::new();
    let measured_layer = if held_out.songs.is_empty() {
        None
    } else {
        let settings = choose(&train);
        if options.curve {
            curve = layer_fit::learning_curve(
                &train,
                &held_out,
                &replay,
                &user.decisions,
                settings,
                options,
            );
        }
        Some(layer_fit::fit(&train, &replay, options.replay, settings))
    };
    // The layer written learns from every song.
    let settings = choose(&all_user);
    progress(Stage::Writing);
    let layer = layer_fit::fit(&all_user, &replay, options.replay, settings);
    let metrics = TrainingMetrics {
        best_val_accuracy: measured_layer
            .as_ref()
            .and_then(|l| accuracy(&held_out, Some(l))),
        stop_reason: Some(format!(
            "taste layer: sparsity {}, bound {}, {}{}",
            settings.sparsity,
            settings.bound,
            if settings.gated { "gated" } else { "ungated" },
            settings.focus.map_or(String::new(), |n| format!(
                ", focused on {n} input{}",
                if n == 1 { "" } else { "s" }
            ))
        )),
        wall_seconds: Some(started.elapsed().as_secs_f64()),
        device: Some(format!("{:?}", target.device.location())),
        ..TrainingMetrics::default()
    };
    let provenance = Provenance {
        pairs: all_user.len() + replay.len(),
        user_pairs: all_user.len(),
        seeds: vec![options.seed],
        base_model: Some(base.info.model_id.clone()),
        command: target.command.clone(),
        created: None,
    };
    let backup = keep_previous(target.out)?;
    let model_id = base.save_with_taste(target.out, &layer, &metrics, &provenance)?;
    Ok(FinetuneReport {
        user_pairs: all_user.len(),
        user_songs: songs,
        held_out_songs: held_out.songs.len(),
        held_out_pairs: held_out.len(),
        synthetic_train: syn_train.len(),
        synthetic_val: syn_val.len(),
        user_agreement_before: accuracy(&held_out, None),
        user_agreement_after: measured_layer.and_then(|l| accuracy(&held_out, Some(&l))),
        base_accuracy_before: accuracy(&skill_rows, None),
        base_accuracy_after: accuracy(&skill_rows, Some(&layer)),
        sparsity: settings.sparsity,
        bound: settings.bound,
        gated: settings.gated,
        focus: settings.focus,
        focused_on: match settings.focus {
            None => Vec::new(),
            Some(_) => (layer.weights().iter().enumerate())
                .filter(|(_, w)| **w != 0.0)
                .filter_map(|(j, _)| cutscore_core::taste::input_name(j))
                .collect(),
        },
        base_model: base.info.model_id.clone(),
        model_id,
        written: target.out.to_path_buf(),
        backup,
        seconds: started.elapsed().as_secs_f64(),
        curve,
    })
}

fn check(options: &FinetuneOptions) -> Result<(), FinetuneError> {
    for (what, value) in [
        ("holdout", options.holdout),
        ("synthetic_val", options.synthetic_val),
    ] {
        if !(0.0..1.0).contains(&value) {
            return Err(FinetuneError::Option {
                what,
                actual: value,
                expected: "a share in [0, 1)",
            });
        }
    }
    if !(options.replay >= 0.0 && options.replay.is_finite()) {
        return Err(FinetuneError::Option {
            what: "replay",
            actual: options.replay,
            expected: "a finite weight >= 0",
        });
    }
    if !(0.0..=1.0).contains(&options.craft_slack) {
        return Err(FinetuneError::Option {
            what: "craft_slack",
            actual: f64::from(options.craft_slack),
            expected: "a share in [0, 1]",
        });
    }
    if let Some(s) = options.settings
        && !(s.sparsity >= 0.0 && s.sparsity.is_finite() && s.bound > 0.0 && s.bound.is_finite())
    {
        return Err(FinetuneError::Option {
            what: "sparsity or bound",
            actual: if s.sparsity.is_finite() {
                f64::from(s.bound)
            } else {
                s.sparsity
            },
            expected: "a finite sparsity >= 0 and a finite bound > 0",
        });
    }
    if let Some(Settings {
        focus: Some(inputs),
        ..
    }) = options.settings
        && !(1..=TASTE_INPUTS).contains(&inputs)
    {
        return Err(FinetuneError::Option {
            what: "focus",
            actual: inputs as f64,
            expected: "at least 1 input and at most as many as the summary has",
        });
    }
    Ok(())
}

/// Copies the model at `out`, if any, to the backup path beside it (atomically).
fn keep_previous(out: &Path) -> Result<Option<PathBuf>, FinetuneError> {
    let previous = match std::fs::read(out) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(FinetuneError::Write {
                path: out.to_path_buf(),
                source,
            });
        }
    };
    let backup = cutscore_reward::user_model::backup_path(out);
    cutscore_core::atomic::write(&backup, &previous).map_err(|source| FinetuneError::Write {
        path: backup.clone(),
        source,
    })?;
    Ok(Some(backup))
}

#[cfg(test)]
mod tests;
