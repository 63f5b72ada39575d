use std::collections::BTreeMap;

use super::file::{self, BeatProvenance, BeatTrainingMetrics};
use super::*;

fn small_config() -> BeatModelConfig {
    BeatModelConfig {
        channels: 8,
        dilations: vec![1, 2, 4, 8],
        centred_up_to: 2,
        dropout: 0.1,
    }
}

/// The next value in [0, 1) of a seeded linear congruential sequence.
fn unit(state: &mut u64) -> f32 {
    *state = state
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (*state >> 40) as f32 / (1u64 << 24) as f32
}

/// Seeded mel frames with some structure: a pulse every 11 frames over noise.
fn mel_frames(n: usize, seed: u64) -> Vec<[f32; INPUT_BANDS]> {
    let mut state = seed;
    (0..n)
        .map(|k| {
            let mut frame = [0.0f32; INPUT_BANDS];
            for v in &mut frame {
                *v = unit(&mut state) * 0.5 + if k % 11 == 0 { 1.5 } else { 0.5 };
            }
            frame
        })
        .collect()
}

fn frames_of(mel: &[[f32; INPUT_BANDS]]) -> Vec<Frame> {
    mel.iter()
        .map(|m| Frame {
            mel: *m,
            ..Frame::default()
        })
        .collect()
}

/// A model with seeded weights (uniform within the fan-in bound, as training starts), saved and
/// read back (so through the file).
fn fresh_model(config: &BeatModelConfig, dir: &std::path::Path) -> BeatModel {
    let mut state = 17u64;
    let mut weights = BTreeMap::new();
    for (name, shape) in file::tensor_shapes(config) {
        let count: usize = shape.iter().product();
        let bound = if name.ends_with("bias") {
            // Non-zero biases, so a bias missed by either path shows.
            0.1
        } else {
            (1.0 / shape[1] as f32).sqrt()
        };
        let values = (0..count)
            .map(|_| (unit(&mut state) * 2.0 - 1.0) * bound)
            .collect();
        weights.insert(name, values);
    }
    let path = dir.join("beats.safetensors");
    file::save(
        &path,
        config,
        &weights,
        &BeatTrainingMetrics::default(),
        &BeatProvenance::default(),
    )
    .unwrap();
    file::read(&path).unwrap()
}

#[test]
fn look_ahead_and_receptive_field_follow_the_dilations() {
    let config = small_config();
    // Stem 1 + centred blocks 1 + 2.
    assert_eq!(config.look_ahead(), 4);
    // Stem 1, centred 1 + 2, causal 2 * 4 + 2 * 8.
    assert_eq!(config.receptive_past(), 1 + 1 + 2 + 8 + 16);
    assert_eq!(config.block_offsets(2), [-2, 0, 2]);
    assert_eq!(config.block_offsets(4), [-8, -4, 0]);
    let default = BeatModelConfig::default();
    assert_eq!(default.look_ahead(), 16);
    let shapes = file::tensor_shapes(&default);
    let counted: usize = shapes.values().map(|s| s.iter().product::<usize>()).sum();
    assert_eq!(counted, default.parameters());
}

#[test]
fn streaming_gives_each_frame_after_the_look_ahead_and_the_same_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let config = small_config();
    let model = fresh_model(&config, dir.path());
    let mel = mel_frames(60, 3);
    let whole = model.activations(&frames_of(&mel));
    let mut stream = ActivationStream::new(&model);
    let mut streamed = Vec::new();
    for (k, m) in mel.iter().enumerate() {
        stream.push(m, |a| streamed.push(a));
        // Frame t comes out once frame t + look-ahead is in.
        assert_eq!(streamed.len(), (k + 1).saturating_sub(config.look_ahead()));
    }
    // Without the end known, the last frames are not yet out; the ones that are agree with
    // the whole-track pass except where it saw zeros beyond the end.
    for (t, a) in streamed.iter().enumerate() {
        assert_eq!(*a, whole[t], "frame {t}");
    }
    stream.finish(|a| streamed.push(a));
    assert_eq!(streamed, whole);
    // finish() starts over: the same input gives the same output again.
    let mut again = Vec::new();
    for m in &mel {
        stream.push(m, |a| again.push(a));
    }
    stream.finish(|a| again.push(a));
    assert_eq!(again, whole);
}

#[test]
fn files_round_trip_and_bad_files_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let config = small_config();
    let model = fresh_model(&config, dir.path());
    let weights = model.weights();
    let path = dir.path().join("copy.safetensors");
    let id = file::save(
        &path,
        &config,
        &weights,
        &BeatTrainingMetrics::default(),
        &BeatProvenance::default(),
    )
    .unwrap();
    assert_eq!(id, model.info.model_id);
    assert_eq!(file::read(&path).unwrap().info.config, config);

    let mut bad = weights.clone();
    bad.get_mut("head.bias").unwrap()[1] = f32::NAN;
    let err = file::save(
        &dir.path().join("nan.safetensors"),
        &config,
        &bad,
        &BeatTrainingMetrics::default(),
        &BeatProvenance::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("head.bias"), "{err}");

    let mut missing: BTreeMap<String, Vec<f32>> = weights.clone();
    missing.remove("stem.weight");
    assert!(
        file::save(
            &dir.path().join("missing.safetensors"),
            &config,
            &missing,
            &BeatTrainingMetrics::default(),
            &BeatProvenance::default(),
        )
        .unwrap_err()
        .to_string()
        .contains("stem.weight")
    );

    // A reward-model checkpoint is not a beat model.
    let err = file::from_bytes(cutscore_reward::shipped::MODEL_BYTES).unwrap_err();
    assert!(
        matches!(
            err,
            BeatModelError::Foreign {
                key: "cutscore.format",
                ..
            }
        ),
        "{err}"
    );
    assert!(matches!(
        file::from_bytes(b"not a model"),
        Err(BeatModelError::NotSafetensors(_))
    ));
}

#[test]
fn the_shipped_model_loads() {
    let model = file::from_bytes(file::SHIPPED_BYTES).unwrap();
    assert_eq!(model.config(), &BeatModelConfig::default());
    assert_eq!(shipped().info.model_id, model.info.model_id);
}

#[test]
fn interpolation_runs_on_the_line_between_two_models_of_one_architecture() {
    let dir = tempfile::tempdir().unwrap();
    let config = small_config();
    let start = fresh_model(&config, dir.path());
    let doubled: BTreeMap<String, Vec<f32>> = start
        .weights()
        .into_iter()
        .map(|(name, w)| (name, w.iter().map(|v| 2.0 * v).collect()))
        .collect();
    let end = BeatModel::from_weights(
        config.clone(),
        doubled.clone(),
        BeatTrainingMetrics::default(),
        BeatProvenance::default(),
    )
    .unwrap();
    assert_eq!(start.interpolate(&end, 0.0).unwrap(), start.weights());
    assert_eq!(start.interpolate(&end, 1.0).unwrap(), doubled);
    let quarter = start.interpolate(&end, 0.25).unwrap();
    for (name, w) in start.weights() {
        for (q, v) in quarter[&name].iter().zip(&w) {
            assert!(
                (q - 1.25 * v).abs() <= 1e-6 * v.abs().max(1.0),
                "{name}: {q} {v}"
            );
        }
    }

    let other = fresh_model(
        &BeatModelConfig {
            channels: 4,
            ..config
        },
        dir.path(),
    );
    let error = start.interpolate(&other, 0.5).unwrap_err().to_string();
    assert!(error.contains("different architectures"), "{error}");
    let error = start.interpolate(&end, 1.5).unwrap_err().to_string();
    assert!(error.contains("outside 0 to 1"), "{error}");
}
