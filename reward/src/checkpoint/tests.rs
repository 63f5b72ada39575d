//! Checkpoint round trips and every way a file can be refused.

use std::collections::HashMap;

use super::*;
use crate::{Batch, Config};

fn saved(dir: &Path, storage: StorageType) -> (PathBuf, VarMap, String) {
    let varmap = VarMap::new();
    RewardModel::init(&Config::tiny(), &varmap, &Device::Cpu, 0).unwrap();
    let path = dir.join("model.safetensors");
    let metrics = TrainingMetrics {
        best_val_accuracy: Some(0.97),
        best_epoch: Some(3),
        ..Default::default()
    };
    let provenance = Provenance {
        pairs: 10,
        seeds: vec![7],
        ..Default::default()
    };
    let id = save(
        &path,
        &varmap,
        &Config::tiny(),
        &metrics,
        &provenance,
        storage,
    )
    .unwrap();
    (path, varmap, id)
}

fn score(model: &RewardModel) -> Vec<f32> {
    let seq: Vec<f32> = (0..3 * 125).map(|i| (i as f32 * 0.37).sin()).collect();
    let batch = Batch::new(&[&seq], 125, 128, &Device::Cpu).unwrap();
    model
        .forward(&batch.inputs, &batch.mask, false)
        .unwrap()
        .to_vec1()
        .unwrap()
}

#[test]
fn round_trip_keeps_weights_metadata_and_scores() {
    let dir = tempfile::tempdir().unwrap();
    let (path, varmap, id) = saved(dir.path(), StorageType::F32);
    let original = RewardModel::new(
        &Config::tiny(),
        VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
    )
    .unwrap();
    let checkpoint = Checkpoint::read(&path).unwrap();
    assert_eq!(checkpoint.info.model_id, id);
    assert_eq!(id.len(), 16);
    assert_eq!(checkpoint.info.config, Config::tiny());
    assert_eq!(checkpoint.info.metrics.best_val_accuracy, Some(0.97));
    assert_eq!(checkpoint.info.provenance.seeds, vec![7]);
    assert!(checkpoint.info.provenance.created.is_some());
    assert_eq!(
        score(&checkpoint.model(&Device::Cpu).unwrap()),
        score(&original)
    );
    let (trainable, _) = checkpoint.trainable(0.0, &Device::Cpu).unwrap();
    assert_eq!(score(&trainable), score(&original));
    assert_eq!(trainable.config().dropout, 0.0);
    assert!(checkpoint.trainable(1.0, &Device::Cpu).is_err());
}

#[test]
fn half_precision_storage_loads_as_f32_with_close_scores() {
    let dir = tempfile::tempdir().unwrap();
    let (path, varmap, _) = saved(dir.path(), StorageType::F16);
    let original = RewardModel::new(
        &Config::tiny(),
        VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
    )
    .unwrap();
    let loaded = Checkpoint::read(&path)
        .unwrap()
        .model(&Device::Cpu)
        .unwrap();
    let (a, b) = (score(&original)[0], score(&loaded)[0]);
    assert!((a - b).abs() < 1e-2, "{a} vs {b}");
}

/// Rewrites a saved checkpoint with `edit` applied to its tensors and metadata.
fn tampered(
    path: &Path,
    edit: impl FnOnce(&mut BTreeMap<String, Tensor>, &mut HashMap<String, String>),
) -> Result<Checkpoint, CheckpointError> {
    let bytes = std::fs::read(path).unwrap();
    let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
    let mut metadata = header.metadata().clone().unwrap();
    let mut tensors: BTreeMap<String, Tensor> =
        candle_core::safetensors::load_buffer(&bytes, &Device::Cpu)
            .unwrap()
            .into_iter()
            .collect();
    edit(&mut tensors, &mut metadata);
    let bytes = safetensors::serialize(&tensors, Some(metadata)).unwrap();
    Checkpoint::from_bytes(&bytes)
}

#[test]
fn refuses_tampered_files_naming_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _, _) = saved(dir.path(), StorageType::F32);

    let err = tampered(&path, |_, m| {
        m.insert("cutscore.feature_schema".into(), "999".into());
    })
    .unwrap_err();
    assert!(
        matches!(err, CheckpointError::Schema { actual: 999, .. }),
        "{err}"
    );

    let err = tampered(&path, |t, _| {
        t.remove("layers.0.ff1.weight");
    })
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("tensor `layers.0.ff1.weight` is missing"),
        "{err}"
    );

    let err = tampered(&path, |t, _| {
        t.insert(
            "layers.0.ff1.bias".into(),
            Tensor::zeros(7, DType::F32, &Device::Cpu).unwrap(),
        );
    })
    .unwrap_err();
    assert!(
        matches!(&err, CheckpointError::TensorShape { name, expected, actual } if name == "layers.0.ff1.bias" && expected == &[64] && actual == &[7]),
        "{err}"
    );

    let err = tampered(&path, |t, _| {
        t.insert(
            "norm.bias".into(),
            Tensor::zeros(32, DType::U8, &Device::Cpu).unwrap(),
        );
    })
    .unwrap_err();
    assert!(matches!(err, CheckpointError::TensorDtype { .. }), "{err}");

    let err = tampered(&path, |t, _| {
        let mut v = vec![0f32; 32];
        v[4] = f32::NAN;
        t.insert(
            "norm.bias".into(),
            Tensor::from_vec(v, 32, &Device::Cpu).unwrap(),
        );
    })
    .unwrap_err();
    assert!(
        matches!(&err, CheckpointError::NonFinite { name, index: 4 } if name == "norm.bias"),
        "{err}"
    );

    let err = tampered(&path, |t, _| {
        t.insert(
            "extra".into(),
            Tensor::zeros(1, DType::F32, &Device::Cpu).unwrap(),
        );
    })
    .unwrap_err();
    assert!(
        matches!(err, CheckpointError::UnexpectedTensor { .. }),
        "{err}"
    );

    let err = tampered(&path, |_, m| {
        m.remove("cutscore.format");
    })
    .unwrap_err();
    assert!(matches!(err, CheckpointError::Foreign { .. }), "{err}");

    let err = tampered(&path, |_, m| {
        m.insert("cutscore.config".into(), r#"{"heads": 5}"#.into());
    })
    .unwrap_err();
    assert!(
        err.to_string().contains("not divisible by 5 heads"),
        "{err}"
    );
}

#[test]
fn refuses_truncated_and_non_safetensors_files() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _, _) = saved(dir.path(), StorageType::F32);
    let bytes = std::fs::read(&path).unwrap();
    for cut in [0, 5, 100, bytes.len() / 2, bytes.len() - 1] {
        let err = Checkpoint::from_bytes(&bytes[..cut]).unwrap_err();
        assert!(
            matches!(err, CheckpointError::NotSafetensors(_)),
            "cut {cut}: {err}"
        );
    }
    let err = Checkpoint::from_bytes(b"RIFF....WAVEfmt ").unwrap_err();
    assert!(matches!(err, CheckpointError::NotSafetensors(_)));
    let err = Checkpoint::read(&dir.path().join("missing.safetensors")).unwrap_err();
    assert!(matches!(err, CheckpointError::Read { .. }));
}

#[test]
fn a_taste_layer_round_trips_and_a_wrong_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _, plain_id) = saved(dir.path(), StorageType::F32);
    let base = Checkpoint::read(&path).unwrap();
    assert!(base.taste.is_none());
    let weights: Vec<f32> = (0..TASTE_INPUTS).map(|i| i as f32 * 0.1 - 1.0).collect();
    let layer = TasteLayer::new(weights, 2.0).unwrap();
    let tuned = dir.path().join("tuned.safetensors");
    let id = base
        .save_with_taste(
            &tuned,
            &layer,
            &TrainingMetrics::default(),
            &Provenance::default(),
        )
        .unwrap();
    assert_ne!(id, plain_id);
    let read = Checkpoint::read(&tuned).unwrap();
    assert_eq!(read.taste.as_ref(), Some(&layer));
    assert_eq!(read.info.model_id, id);
    // The transformer is the base's, and the scoring model carries the layer.
    let model = read.model(&Device::Cpu).unwrap();
    assert_eq!(score(&model), score(&base.model(&Device::Cpu).unwrap()));
    assert_eq!(model.taste(), Some(&layer));

    let err = tampered(&tuned, |_, m| {
        m.insert("cutscore.taste_schema".into(), "99".into());
    })
    .unwrap_err();
    assert!(
        matches!(err, CheckpointError::TasteSchema { actual: 99, .. }),
        "{err}"
    );
    let err = tampered(&tuned, |_, m| {
        m.remove("cutscore.taste_schema");
    })
    .unwrap_err();
    assert!(matches!(err, CheckpointError::Foreign { .. }), "{err}");
    let err = tampered(&tuned, |t, _| {
        t.insert(
            "taste.weight".into(),
            Tensor::zeros(3, DType::F32, &Device::Cpu).unwrap(),
        );
    })
    .unwrap_err();
    assert!(matches!(err, CheckpointError::TensorShape { .. }), "{err}");
    let err = tampered(&tuned, |t, _| {
        t.insert(
            "taste.bound".into(),
            Tensor::from_vec(vec![f32::INFINITY], 1, &Device::Cpu).unwrap(),
        );
    })
    .unwrap_err();
    assert!(matches!(err, CheckpointError::Taste(_)), "{err}");
    let err = tampered(&tuned, |t, _| {
        t.remove("taste.bound");
    })
    .unwrap_err();
    assert!(
        matches!(err, CheckpointError::MissingTensor { .. }),
        "{err}"
    );
}

#[test]
fn layers_are_written_as_schema_5_and_earlier_layers_still_read_as_they_were() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _, _) = saved(dir.path(), StorageType::F32);
    let base = Checkpoint::read(&path).unwrap();
    let layer_from = |inputs: usize, floor: Option<f32>, from: FloorFrom| {
        let weights: Vec<f32> = (0..inputs).map(|i| i as f32 * 0.1 - 1.0).collect();
        TasteLayer::new(weights, 2.0)
            .unwrap()
            .with_floor(floor, from)
            .unwrap()
    };
    let layer = |inputs: usize, floor: Option<f32>| layer_from(inputs, floor, FloorFrom::Score);
    let save = |name: &str, layer: &TasteLayer| {
        let out = dir.path().join(name);
        base.save_with_taste(
            &out,
            layer,
            &TrainingMetrics::default(),
            &Provenance::default(),
        )
        .unwrap();
        out
    };
    let schema = |path: &std::path::Path| {
        let bytes = std::fs::read(path).unwrap();
        let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
        meta.metadata().as_ref().unwrap()["cutscore.taste_schema"].clone()
    };
    let ranged = |layer: TasteLayer| {
        let low: Vec<f32> = (0..TASTE_INPUTS).map(|i| -(i as f32) * 0.01).collect();
        let high: Vec<f32> = (0..TASTE_INPUTS).map(|i| i as f32 * 0.02).collect();
        layer
            .with_range(Some(InputRange::new(&low, &high).unwrap()))
            .unwrap()
    };
    // (layer, schema written): this build's layers (a range, with a floor measured from the
    // track and without a floor), a schema 4 layer whose floor is a score, a schema 3 layer
    // without a range, and the layers of the first 27 inputs that schemas 1 and 2 learned.
    let cases = [
        (
            ranged(layer_from(TASTE_INPUTS, Some(-1.5), FloorFrom::Track)),
            "5",
        ),
        (ranged(layer(TASTE_INPUTS, None)), "5"),
        (ranged(layer(TASTE_INPUTS, Some(4.5))), "4"),
        (layer(TASTE_INPUTS, Some(4.5)), "3"),
        (layer(TASTE_INPUTS, None), "3"),
        (layer(TASTE_INPUTS_V2, None), "1"),
        (layer(TASTE_INPUTS_V2, Some(4.5)), "2"),
    ];
    let mut written = Vec::new();
    for (k, (layer, want)) in cases.iter().enumerate() {
        let out = save(&format!("case{k}.safetensors"), layer);
        assert_eq!(schema(&out), *want, "{layer:?}");
        assert_eq!(Checkpoint::read(&out).unwrap().taste.as_ref(), Some(layer));
        written.push(out);
    }
    let new = written[6].clone();
    // Saving an ungated layer from a floored model leaves no floor behind.
    let again = Checkpoint::read(&written[0]).unwrap();
    let plain = TasteLayer::new(vec![0.5; TASTE_INPUTS], 1.0).unwrap();
    let out = dir.path().join("again.safetensors");
    again
        .save_with_taste(
            &out,
            &plain,
            &TrainingMetrics::default(),
            &Provenance::default(),
        )
        .unwrap();
    assert_eq!(Checkpoint::read(&out).unwrap().taste, Some(plain));
    // A floor measured from the track needs the range schema 5 carries: without one (or on a
    // layer of the first 27 inputs, which has none) the layer is refused, not written as an
    // older schema that would read its floor as a score.
    for inputs in [TASTE_INPUTS, TASTE_INPUTS_V2] {
        let err = base
            .save_with_taste(
                &dir.path().join("refused.safetensors"),
                &layer_from(inputs, Some(-1.5), FloorFrom::Track),
                &TrainingMetrics::default(),
                &Provenance::default(),
            )
            .unwrap_err();
        assert!(
            matches!(
                err,
                CheckpointError::Taste(TasteError::TrackFloorWithoutRange)
            ),
            "{err}"
        );
    }
    assert!(!dir.path().join("refused.safetensors").exists());
    // A schema 5 file without its range, or with one the wrong way round, is refused.
    let err = tampered(&written[0], |t, _| {
        t.remove("taste.high");
    })
    .unwrap_err();
    assert!(
        matches!(err, CheckpointError::MissingTensor { ref name, .. } if name == "taste.high"),
        "{err}"
    );
    let err = tampered(&written[0], |t, _| {
        t.insert(
            "taste.low".into(),
            Tensor::ones(TASTE_INPUTS, DType::F32, &Device::Cpu).unwrap(),
        );
    })
    .unwrap_err();
    assert!(matches!(err, CheckpointError::Taste(_)), "{err}");
    // A schema 5 file holding a schema 2 layer's 27 weights is refused, naming the shape.
    let err = tampered(&written[0], |t, _| {
        t.insert(
            "taste.weight".into(),
            Tensor::zeros(TASTE_INPUTS_V2, DType::F32, &Device::Cpu).unwrap(),
        );
    })
    .unwrap_err();
    assert!(
        matches!(err, CheckpointError::TensorShape { ref expected, .. } if expected == &[TASTE_INPUTS]),
        "{err}"
    );
    // Schema 2 without its floor is refused, naming the tensor; a bad floor too.
    let err = tampered(&new, |t, _| {
        t.remove("taste.floor");
    })
    .unwrap_err();
    assert!(
        matches!(err, CheckpointError::MissingTensor { ref name, .. } if name == "taste.floor"),
        "{err}"
    );
    let err = tampered(&new, |t, _| {
        t.insert(
            "taste.floor".into(),
            Tensor::from_vec(vec![f32::NAN], 1, &Device::Cpu).unwrap(),
        );
    })
    .unwrap_err();
    assert!(matches!(err, CheckpointError::Taste(_)), "{err}");
}
