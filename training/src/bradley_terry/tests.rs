//! The loss against hand-computed values, and a tiny model learning a toy preference.

use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;
use cutscore_core::features::FeatureMatrix;
use cutscore_reward::Config;

fn t(values: &[f32]) -> Tensor {
    Tensor::new(values, &Device::Cpu).unwrap()
}

#[test]
fn loss_matches_hand_computed_values() {
    // Certain label, margin 1: -ln σ(1) = ln(1 + e^-1) = 0.3132617.
    let loss = bradley_terry_loss(&t(&[2.0]), &t(&[1.0]), &t(&[1.0]), 0.0).unwrap();
    assert!((loss.to_scalar::<f32>().unwrap() - 0.313_261_7).abs() < 1e-6);
    // Confidence 0.5 is symmetric: ln 2 + ... at margin 0.
    let loss = bradley_terry_loss(&t(&[0.0]), &t(&[0.0]), &t(&[0.5]), 0.0).unwrap();
    assert!((loss.to_scalar::<f32>().unwrap() - std::f32::consts::LN_2).abs() < 1e-6);
    // Large margins stay finite; the wrong way round costs about the margin.
    let loss = bradley_terry_loss(&t(&[-10.0]), &t(&[10.0]), &t(&[1.0]), 0.0).unwrap();
    assert!((loss.to_scalar::<f32>().unwrap() - 20.0).abs() < 1e-4);
    // Centering adds λ((r_c + r_r)/2)²: ((3 + 1)/2)² = 4.
    let plain = bradley_terry_loss(&t(&[3.0]), &t(&[1.0]), &t(&[1.0]), 0.0).unwrap();
    let centred = bradley_terry_loss(&t(&[3.0]), &t(&[1.0]), &t(&[1.0]), 0.1).unwrap();
    let diff = centred.to_scalar::<f32>().unwrap() - plain.to_scalar::<f32>().unwrap();
    assert!((diff - 0.4).abs() < 1e-5);
}

#[test]
fn accuracy_counts_ties_as_wrong() {
    assert_eq!(accuracy(&[1.0, 2.0, 3.0, 0.0], &[0.0, 2.0, 4.0, -1.0]), 0.5);
    assert_eq!(accuracy(&[], &[]), 0.0);
}

/// A track of `bars` 4/4 bars with seeded noise features, feature 0 set per bar to +-1.
fn track(rng: &mut StdRng, bars: usize) -> FeatureMatrix {
    let mut features = FeatureMatrix::zeros(bars * 4);
    for bar in 0..bars {
        let level = if rng.random_bool(0.5) { 1.0 } else { -1.0 };
        for beat in bar * 4..bar * 4 + 4 {
            let row = features.row_mut(beat);
            row.iter_mut()
                .for_each(|v| *v = rng.random_range(-1.0f32..1.0));
            row[0] = level + rng.random_range(-0.1f32..0.1);
        }
    }
    features
}

/// Removes 1 to 3 whole bars, never the first or last.
fn random_edit(rng: &mut StdRng, beats: usize) -> Edit {
    let bars = beats / 4;
    let len = rng.random_range(1..=3);
    let start = rng.random_range(1..bars - len);
    Edit::new(beats, [(start * 4, (start + len) * 4)]).unwrap()
}

fn kept_mean_of_feature_0(features: &FeatureMatrix, edit: &Edit) -> f32 {
    let kept = edit.kept_beats();
    kept.iter().map(|&b| features.row(b)[0]).sum::<f32>() / kept.len() as f32
}

/// Pairs on `tracks`, chosen = the edit whose kept beats have the larger mean of feature 0,
/// keeping only pairs whose means differ by at least 0.02 (a preference a listener would hear).
fn toy_pairs(rng: &mut StdRng, tracks: &[FeatureMatrix], count: usize) -> Vec<(usize, Edit, Edit)> {
    let mut pairs = Vec::with_capacity(count);
    while pairs.len() < count {
        let t = pairs.len() % tracks.len();
        let beats = tracks[t].beats();
        let (a, b) = (random_edit(rng, beats), random_edit(rng, beats));
        let (mean_a, mean_b) = (
            kept_mean_of_feature_0(&tracks[t], &a),
            kept_mean_of_feature_0(&tracks[t], &b),
        );
        if (mean_a - mean_b).abs() < 0.02 {
            continue;
        }
        pairs.push(if mean_a > mean_b {
            (t, a, b)
        } else {
            (t, b, a)
        });
    }
    pairs
}

fn inputs<'a>(tracks: &'a [FeatureMatrix], pairs: &'a [(usize, Edit, Edit)]) -> Vec<PairInput<'a>> {
    pairs
        .iter()
        .map(|(t, chosen, rejected)| PairInput {
            track: Track {
                features: &tracks[*t],
                meter: 4,
            },
            chosen,
            rejected,
            confidence: 1.0,
        })
        .collect()
}

#[test]
fn a_tiny_model_learns_a_toy_preference() {
    let mut rng = StdRng::seed_from_u64(11);
    let train_tracks: Vec<FeatureMatrix> = (0..256).map(|_| track(&mut rng, 8)).collect();
    let val_tracks: Vec<FeatureMatrix> = (0..64).map(|_| track(&mut rng, 8)).collect();
    let train_pairs = toy_pairs(&mut rng, &train_tracks, 1024);
    let val_pairs = toy_pairs(&mut rng, &val_tracks, 256);
    let train = inputs(&train_tracks, &train_pairs);
    let val = inputs(&val_tracks, &val_pairs);

    let varmap = VarMap::new();
    // The preference turns on every kept beat: the window holds the whole 32-beat track.
    let model = RewardModel::init(
        &Config {
            dropout: 0.0,
            window: 32,
            ..Config::tiny()
        },
        &varmap,
        &Device::Cpu,
        0,
    )
    .unwrap();
    let config = TrainConfig {
        learning_rate: 2e-3,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(model, varmap, config).unwrap();
    let before = trainer.evaluate(&val, 128).unwrap();
    for _epoch in 0..4 {
        for batch in train.chunks(32) {
            trainer.step(batch).unwrap();
        }
    }
    let after = trainer.evaluate(&val, 128).unwrap();
    assert!(
        after.accuracy > 0.95,
        "validation accuracy {before:?} -> {after:?}"
    );
    assert!(after.loss < before.loss);
}

#[test]
fn empty_batches_are_refused() {
    let varmap = VarMap::new();
    let model = RewardModel::init(&Config::tiny(), &varmap, &Device::Cpu, 0).unwrap();
    let mut trainer = Trainer::new(model, varmap, TrainConfig::default()).unwrap();
    assert!(matches!(trainer.step(&[]), Err(ModelError::EmptyBatch)));
}
