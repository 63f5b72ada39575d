use super::*;
use crate::synthetic_pairs::{PairOptions, generate};
use candle_core::Device;
use cutscore_reward::Config;
use cutscore_reward::checkpoint::Checkpoint;

fn pairs(count: usize, per_song: usize, seed: u64) -> (tempfile::TempDir, PairSet) {
    let dir = tempfile::tempdir().unwrap();
    let options = PairOptions {
        count,
        pairs_per_song: per_song,
        seed,
        ..PairOptions::default()
    };
    generate(dir.path(), &options, |_| {}).unwrap();
    let set = PairSet::load(dir.path()).unwrap();
    (dir, set)
}

fn tiny(seed: u64) -> (RewardModel, VarMap) {
    let varmap = VarMap::new();
    let model = RewardModel::init(&Config::tiny(), &varmap, &Device::Cpu, seed).unwrap();
    (model, varmap)
}

fn output(path: &Path) -> RunOutput<'_> {
    RunOutput {
        model: path,
        provenance: Provenance::default(),
        device: "cpu".into(),
    }
}

#[test]
fn training_fits_the_pairs_and_keeps_the_best_validation_epoch() {
    let (_data, set) = pairs(96, 24, 1);
    let (train_set, val_set) = set.split_by_track(0.25, 0);
    let out = tempfile::tempdir().unwrap();
    let path = out.path().join("model.safetensors");
    let (model, varmap) = tiny(0);
    let options = RunOptions {
        epochs: 6,
        patience: 6,
        batch: 16,
        train: TrainConfig {
            learning_rate: 2e-3,
            ..TrainConfig::default()
        },
        ..RunOptions::default()
    };
    let mut ends = 0;
    let metrics = train(
        model,
        varmap.clone(),
        &train_set,
        &val_set,
        &options,
        &output(&path),
        |p| ends += usize::from(matches!(p, Progress::EpochEnd { .. })),
    )
    .unwrap();
    assert_eq!(metrics.epochs.len(), 6);
    assert_eq!(ends, 6);
    let first = &metrics.epochs[0];
    let last = metrics.epochs.last().unwrap();
    assert!(
        last.train_loss < 0.9 * first.train_loss,
        "{:?}",
        metrics.epochs
    );
    let best = metrics.best_epoch.unwrap();
    let min = metrics
        .epochs
        .iter()
        .map(|e| e.val_loss)
        .fold(f32::INFINITY, f32::min);
    assert_eq!(metrics.epochs[best - 1].val_loss, min);
    // The file holds the best epoch's weights and the full metrics.
    let saved = Checkpoint::read(&path).unwrap();
    assert_eq!(saved.info.metrics, metrics);
    let reloaded = saved.model(&Device::Cpu).unwrap();
    let again =
        crate::bradley_terry::evaluate(&reloaded, &val_set.inputs(), 64, &options.train).unwrap();
    assert!((again.loss - min).abs() < 1e-4, "{} vs {min}", again.loss);
    let written: TrainingMetrics =
        serde_json::from_slice(&std::fs::read(metrics_path(&path)).unwrap()).unwrap();
    assert_eq!(written, metrics);
}

#[test]
fn stops_early_when_validation_does_not_improve() {
    let (_data, set) = pairs(24, 8, 2);
    let (train_set, val_set) = set.split_by_track(0.34, 0);
    let out = tempfile::tempdir().unwrap();
    let path = out.path().join("m.safetensors");
    let (model, varmap) = tiny(1);
    // With a zero learning rate the validation loss never changes, so it never improves.
    let options = RunOptions {
        epochs: 20,
        patience: 2,
        batch: 8,
        train: TrainConfig {
            learning_rate: 0.0,
            ..TrainConfig::default()
        },
        ..RunOptions::default()
    };
    let metrics = train(
        model,
        varmap,
        &train_set,
        &val_set,
        &options,
        &output(&path),
        |_| {},
    )
    .unwrap();
    assert_eq!(metrics.epochs.len(), 3);
    assert_eq!(metrics.best_epoch, Some(1));
    assert_eq!(
        metrics.stop_reason.as_deref(),
        Some("no validation improvement for 2 epochs")
    );
}

#[test]
fn refuses_an_empty_validation_set_and_zero_epochs() {
    let (_data, set) = pairs(8, 8, 3);
    let out = tempfile::tempdir().unwrap();
    let path = out.path().join("m.safetensors");
    let (model, varmap) = tiny(1);
    let err = train(
        model.clone(),
        varmap.clone(),
        &set,
        &PairSet::default(),
        &RunOptions::default(),
        &output(&path),
        |_| {},
    )
    .unwrap_err();
    assert!(matches!(err, RunError::NoPairs { .. }), "{err}");
    let options = RunOptions {
        epochs: 0,
        ..RunOptions::default()
    };
    let err = train(model, varmap, &set, &set, &options, &output(&path), |_| {}).unwrap_err();
    assert!(
        matches!(
            err,
            RunError::Zero {
                field: "epochs",
                ..
            }
        ),
        "{err}"
    );
    assert!(!path.exists());
}
