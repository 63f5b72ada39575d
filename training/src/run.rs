//! The training loop around [`crate::bradley_terry::Trainer`]: epochs of shuffled batches, early
//! stopping on validation loss, the best checkpoint saved atomically whenever it improves (so
//! an interrupted run leaves the last good model), `metrics.json` beside it.
//!
//! Early stopping with patience is the usual recipe (Prechelt, "Early Stopping — But When?",
//! 1998).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::Tensor;
use candle_nn::VarMap;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use crate::bradley_terry::{PairInput, PairStats, TrainConfig, Trainer};
use crate::pair_set::PairSet;
use cutscore_core::prefs::Preference;
use cutscore_reward::checkpoint::{
    self, CheckpointError, EpochMetrics, Provenance, StorageType, TrainingMetrics,
};
use cutscore_reward::{ModelError, RewardModel};

/// File name of the per-epoch metrics written beside a trained model.
pub const METRICS_FILE: &str = "metrics.json";

/// Why training could not run or finish.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("pairs come from {actual} song(s); expected at least {expected} to hold some out")]
    TooFewSongs { expected: usize, actual: usize },
    #[error("{what} has no pairs; expected at least one")]
    NoPairs { what: &'static str },
    #[error("{field} is {actual}; expected at least 1")]
    Zero { field: &'static str, actual: usize },
}

impl From<candle_core::Error> for RunError {
    fn from(e: candle_core::Error) -> Self {
        Self::Model(ModelError::Candle(e))
    }
}

/// How long and how to train.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOptions {
    /// Most epochs.
    pub epochs: usize,
    /// Stop after this many epochs without a lower validation loss.
    pub patience: usize,
    /// Pairs per optimiser step.
    pub batch: usize,
    /// Seeds the shuffling (and, through the caller, the split and the initial weights).
    pub seed: u64,
    pub train: TrainConfig,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            epochs: 30,
            patience: 4,
            batch: 64,
            seed: 0,
            train: TrainConfig::default(),
        }
    }
}

/// What the loop reports while it runs.
#[derive(Debug, Clone, Copy)]
pub enum Progress<'a> {
    /// An epoch starts with `steps` optimiser steps.
    EpochStart { epoch: usize, steps: usize },
    /// One optimiser step finished.
    Step { stats: PairStats },
    /// An epoch finished; `improved` when its weights were saved as the new best.
    EpochEnd {
        metrics: &'a EpochMetrics,
        improved: bool,
    },
}

/// Where a run saves, and what it records about itself.
#[derive(Debug, Clone)]
pub struct RunOutput<'a> {
    /// The model file; `metrics.json` goes beside it.
    pub model: &'a Path,
    pub provenance: Provenance,
    /// Device name for the metrics, e.g. "cpu".
    pub device: String,
}

/// Trains `model` (whose weights are `varmap`) on `train`, validating on `val` after every
/// epoch, and keeps the best-validation-loss weights in `output.model`. Returns the metrics
/// saved with it; on return `varmap` holds the best weights.
pub fn train(
    model: RewardModel,
    varmap: VarMap,
    train: &PairSet,
    val: &PairSet,
    options: &RunOptions,
    output: &RunOutput,
    mut progress: impl FnMut(Progress),
) -> Result<TrainingMetrics, RunError> {
    check(options)?;
    if train.is_empty() {
        return Err(RunError::NoPairs {
            what: "the training set",
        });
    }
    if val.is_empty() {
        return Err(RunError::NoPairs {
            what: "the validation set",
        });
    }
    let started = std::time::Instant::now();
    let config = model.config().clone();
    let device = model.device().clone();
    let mut trainer = Trainer::new(model, varmap, options.train.clone())?;
    let val_inputs = val.inputs();
    let mut metrics = TrainingMetrics {
        device: Some(output.device.clone()),
        ..TrainingMetrics::default()
    };
    let mut best: Option<(f32, HashMap<String, Tensor>)> = None;
    let mut rng = StdRng::seed_from_u64(options.seed);
    let mut since_best = 0;
    for epoch in 1..=options.epochs {
        trainer.set_learning_rate(cosine_rate(
            options.train.learning_rate,
            epoch,
            options.epochs,
        ));
        let mut order: Vec<&Preference> = train.pairs.iter().collect();
        order.shuffle(&mut rng);
        let inputs: Vec<PairInput> = order.iter().map(|p| train.input(p)).collect();
        let (train_loss, train_accuracy) =
            run_epoch(&mut trainer, &inputs, options.batch, epoch, &mut progress)?;
        let v = trainer.evaluate(&val_inputs, options.batch * 2)?;
        let epoch_metrics = EpochMetrics {
            epoch,
            train_loss,
            train_accuracy,
            val_loss: v.loss,
            val_accuracy: v.accuracy,
        };
        metrics.epochs.push(epoch_metrics.clone());
        let improved = best.as_ref().is_none_or(|(loss, _)| v.loss < *loss);
        if improved {
            since_best = 0;
            best = Some((v.loss, snapshot(trainer.varmap())?));
            metrics.best_epoch = Some(epoch);
            metrics.best_val_accuracy = Some(v.accuracy);
            metrics.wall_seconds = Some(started.elapsed().as_secs_f64());
            save(trainer.varmap(), &config, &metrics, output)?;
        } else {
            since_best += 1;
        }
        write_metrics(output.model, &metrics)?;
        progress(Progress::EpochEnd {
            metrics: &epoch_metrics,
            improved,
        });
        if since_best >= options.patience {
            metrics.stop_reason = Some(format!(
                "no validation improvement for {} epochs",
                options.patience
            ));
            break;
        }
    }
    metrics
        .stop_reason
        .get_or_insert_with(|| format!("reached {} epochs", options.epochs));
    metrics.wall_seconds = Some(started.elapsed().as_secs_f64());
    if let Some((_, weights)) = &best {
        cutscore_reward::set_vars(trainer.varmap(), weights, &device)?;
    }
    save(trainer.varmap(), &config, &metrics, output)?;
    write_metrics(output.model, &metrics)?;
    Ok(metrics)
}

/// The learning rate of `epoch` (1-based) of at most `epochs`: a cosine from `base` down to a
/// tenth of it, so the last epochs settle instead of bouncing around the minimum.
pub fn cosine_rate(base: f64, epoch: usize, epochs: usize) -> f64 {
    let progress = (epoch.saturating_sub(1)) as f64 / epochs.max(1) as f64;
    base * (0.1 + 0.9 * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()))
}

fn check(options: &RunOptions) -> Result<(), RunError> {
    for (field, value) in [
        ("epochs", options.epochs),
        ("patience", options.patience),
        ("batch", options.batch),
    ] {
        if value == 0 {
            return Err(RunError::Zero {
                field,
                actual: value,
            });
        }
    }
    Ok(())
}

/// One pass over `inputs`; returns the mean training loss and accuracy.
fn run_epoch(
    trainer: &mut Trainer,
    inputs: &[PairInput],
    batch: usize,
    epoch: usize,
    progress: &mut impl FnMut(Progress),
) -> Result<(f32, f32), RunError> {
    progress(Progress::EpochStart {
        epoch,
        steps: inputs.len().div_ceil(batch),
    });
    let (mut loss, mut right) = (0.0, 0.0);
    for chunk in inputs.chunks(batch) {
        let stats = trainer.step(chunk)?;
        loss += stats.loss * chunk.len() as f32;
        right += stats.accuracy * chunk.len() as f32;
        progress(Progress::Step { stats });
    }
    let n = inputs.len().max(1) as f32;
    Ok((loss / n, right / n))
}

/// A copy of every weight (on its device), to restore the best epoch later.
fn snapshot(varmap: &VarMap) -> candle_core::Result<HashMap<String, Tensor>> {
    let data = varmap.data().lock().expect("VarMap lock poisoned");
    data.iter()
        .map(|(name, var)| Ok((name.clone(), var.as_tensor().copy()?)))
        .collect()
}

fn save(
    varmap: &VarMap,
    config: &cutscore_reward::Config,
    metrics: &TrainingMetrics,
    output: &RunOutput,
) -> Result<String, RunError> {
    Ok(checkpoint::save(
        output.model,
        varmap,
        config,
        metrics,
        &output.provenance,
        StorageType::F32,
    )?)
}

/// The metrics file beside `model`.
pub fn metrics_path(model: &Path) -> PathBuf {
    model.with_file_name(METRICS_FILE)
}

fn write_metrics(model: &Path, metrics: &TrainingMetrics) -> Result<(), RunError> {
    let path = metrics_path(model);
    let json = serde_json::to_vec_pretty(metrics).expect("metrics always serialize");
    cutscore_core::atomic::write(&path, &json).map_err(|source| RunError::Write { path, source })
}

#[cfg(test)]
mod tests;
