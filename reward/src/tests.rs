//! Tests of the whole model: sizes, bounds, padding invariance, bad input, gradients.

use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::scoring::{
    EditBatch, Track, reference_cuts, score_edits, track_reference, window_inputs,
};
use super::*;
use cutscore_core::edit::Edit;
use cutscore_core::features::{BAR_START, FeatureMatrix, MODEL_INPUTS};
use cutscore_core::taste::{
    FloorFrom, SUMMARY_WIDTH, TASTE_INPUTS, TasteLayer, taste_inputs, track_mean,
};

fn tiny() -> (RewardModel, VarMap) {
    let map = VarMap::new();
    let model = RewardModel::init(&Config::tiny(), &map, &Device::Cpu, 0).unwrap();
    (model, map)
}

fn noise(rng: &mut StdRng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-1.0..1.0)).collect()
}

/// The model's scores of `seqs`, batched and padded together.
fn scores_of(model: &RewardModel, seqs: &[Vec<f32>]) -> Vec<f32> {
    let slices: Vec<&[f32]> = seqs.iter().map(Vec::as_slice).collect();
    let batch = Batch::new(&slices, MODEL_INPUTS, 128, &Device::Cpu).unwrap();
    model
        .forward(&batch.inputs, &batch.mask, false)
        .unwrap()
        .to_vec1()
        .unwrap()
}

#[test]
fn default_model_has_the_parameters_its_config_counts() {
    let map = VarMap::new();
    RewardModel::init(&Config::default(), &map, &Device::Cpu, 0).unwrap();
    let total: usize = map.all_vars().iter().map(|v| v.elem_count()).sum();
    assert_eq!(total, Config::default().parameter_count());
    assert_eq!(map.all_vars().len(), 3 + 3 * 12 + 2 + 4);
}

#[test]
fn a_sequence_scores_the_same_alone_and_batched_with_longer_ones() {
    let (model, _) = tiny();
    let mut rng = StdRng::seed_from_u64(7);
    let short = noise(&mut rng, 5 * MODEL_INPUTS);
    let long = noise(&mut rng, 40 * MODEL_INPUTS);
    let alone = Batch::new(&[&short], MODEL_INPUTS, 128, &Device::Cpu).unwrap();
    let alone: Vec<f32> = model
        .forward(&alone.inputs, &alone.mask, false)
        .unwrap()
        .to_vec1()
        .unwrap();
    let mixed = Batch::new(&[&long, &short, &long], MODEL_INPUTS, 128, &Device::Cpu).unwrap();
    let mixed: Vec<f32> = model
        .forward(&mixed.inputs, &mixed.mask, false)
        .unwrap()
        .to_vec1()
        .unwrap();
    assert!(
        (alone[0] - mixed[1]).abs() < 1e-5,
        "{} vs {}",
        alone[0],
        mixed[1]
    );
    assert!((mixed[0] - mixed[2]).abs() < 1e-6);
    assert_ne!(mixed[0], mixed[1]);
}

#[test]
fn scores_stay_within_the_output_bound() {
    let (model, _) = tiny();
    let mut rng = StdRng::seed_from_u64(1);
    let seqs: Vec<Vec<f32>> = (0..8)
        .map(|_| {
            noise(&mut rng, 16 * MODEL_INPUTS)
                .iter()
                .map(|v| v * 1e4)
                .collect()
        })
        .collect();
    let scores = scores_of(&model, &seqs);
    assert_eq!(scores.len(), 8);
    assert!(
        scores.iter().all(|s| s.abs() <= 10.0 && s.is_finite()),
        "{scores:?}"
    );
}

#[test]
fn bad_input_gets_typed_errors() {
    let (model, _) = tiny();
    let dev = Device::Cpu;
    assert!(matches!(
        Batch::new(&[], MODEL_INPUTS, 128, &dev),
        Err(ModelError::EmptyBatch)
    ));
    let ragged = vec![0f32; MODEL_INPUTS + 3];
    assert!(matches!(
        Batch::new(&[&ragged], MODEL_INPUTS, 128, &dev),
        Err(ModelError::Shape { .. })
    ));
    let long = vec![0f32; 129 * MODEL_INPUTS];
    assert!(matches!(
        Batch::new(&[&long], MODEL_INPUTS, 128, &dev),
        Err(ModelError::TooLong {
            beats: 129,
            max: 128,
            ..
        })
    ));
    let mut nan = vec![0f32; 2 * MODEL_INPUTS];
    nan[7] = f32::NAN;
    assert!(matches!(
        Batch::new(&[&nan], MODEL_INPUTS, 128, &dev),
        Err(ModelError::NonFinite { .. })
    ));
    let wrong_width = Tensor::zeros((2, 4, 100), DType::F32, &dev).unwrap();
    let mask = Tensor::ones((2, 4), DType::F32, &dev).unwrap();
    let err = model.forward(&wrong_width, &mask, false).unwrap_err();
    assert!(
        err.to_string()
            .contains("expected (batch, beats <= 128, 125)"),
        "{err}"
    );
    let inputs = Tensor::zeros((2, 4, MODEL_INPUTS), DType::F32, &dev).unwrap();
    let bad_mask = Tensor::ones((2, 5), DType::F32, &dev).unwrap();
    assert!(matches!(
        model.forward(&inputs, &bad_mask, false),
        Err(ModelError::Shape {
            what: "padding mask",
            ..
        })
    ));
    let too_long = Tensor::zeros((1, 129, MODEL_INPUTS), DType::F32, &dev).unwrap();
    let mask = Tensor::ones((1, 129), DType::F32, &dev).unwrap();
    assert!(matches!(
        model.forward(&too_long, &mask, false),
        Err(ModelError::TooLong { .. })
    ));
    let inf =
        (Tensor::ones((1, 3, MODEL_INPUTS), DType::F32, &dev).unwrap() * f64::INFINITY).unwrap();
    let mask = Tensor::ones((1, 3), DType::F32, &dev).unwrap();
    assert!(matches!(
        model.forward(&inf, &mask, false),
        Err(ModelError::NonFinite { .. })
    ));
}

/// `beats` beats of seeded noise in 4/4 from beat 2 (a two-beat pickup), bar lines marked.
fn barred(rng: &mut StdRng, beats: usize) -> FeatureMatrix {
    let mut features = FeatureMatrix::new(beats, noise(rng, beats * 121)).unwrap();
    for beat in 0..beats {
        features.row_mut(beat)[BAR_START] = if beat >= 2 && (beat - 2) % 4 == 0 {
            1.0
        } else {
            0.0
        };
    }
    features
}

#[test]
fn a_tracks_reference_is_its_best_two_bar_cut_from_every_other_bar_line() {
    let (model, _) = tiny();
    let mut rng = StdRng::seed_from_u64(9);
    // 12 bar lines (beats 2, 6, ..., 46): two-bar cuts from the 2nd, 4th, ... bar line, from
    // beat 6 to 14, 14 to 22, ..., 38 to 46, those with whole windows (below).
    let features = barred(&mut rng, 48);
    assert_eq!(
        features.bar_starts(),
        (2..48).step_by(4).collect::<Vec<_>>()
    );
    let track = Track {
        features: &features,
        meter: 4,
    };
    // 16-beat windows, 8 beats either side of the join: the cut from 38 to 46 would need 8
    // beats after it and the track has 2.
    let window = model.config().scoring_window();
    assert_eq!(window, 16);
    let spans = reference_cuts(&features, window);
    assert_eq!(spans, [(6, 14), (14, 22), (22, 30), (30, 38)]);
    let cuts: Vec<Edit> = spans
        .iter()
        .map(|&span| Edit::new(48, [span]).unwrap())
        .collect();
    let best = score_edits(&model, track, &cuts, 8)
        .unwrap()
        .into_iter()
        .fold(f32::NEG_INFINITY, f32::max);
    let reference = track_reference(&model, track).unwrap().unwrap();
    assert!((reference - best).abs() < 1e-5, "{reference} {best}");
    // A taste layer does not move it: it is the transformer's.
    let mut weights = vec![0f32; TASTE_INPUTS];
    weights[2 * SUMMARY_WIDTH] = 3.0;
    let layer = TasteLayer::new(weights, 4.0).unwrap();
    let tasteful = model.clone().with_taste(Some(layer));
    assert_eq!(track_reference(&tasteful, track).unwrap(), Some(reference));
    // 24 beats (6 bar lines): the one cut from the second, 6 to 14, has 10 beats after it.
    // 20 beats: the same cut has 6, too few for whole windows, and there is no reference.
    for (beats, want) in [(24, vec![(6, 14)]), (20, vec![])] {
        let short = barred(&mut rng, beats);
        assert_eq!(reference_cuts(&short, window), want, "{beats} beats");
        let track = Track {
            features: &short,
            meter: 4,
        };
        let reference = track_reference(&model, track).unwrap();
        assert_eq!(reference.is_some(), !want.is_empty(), "{beats} beats");
    }
}

#[test]
fn edit_batches_average_windows_like_the_chunked_scorer() {
    let (model, _) = tiny();
    let mut rng = StdRng::seed_from_u64(3);
    let features = FeatureMatrix::new(300, noise(&mut rng, 300 * 121)).unwrap();
    let track = Track {
        features: &features,
        meter: 4,
    };
    let edits = vec![
        Edit::new(300, [(40, 56), (200, 216)]).unwrap(),
        Edit::new(300, [(120, 128)]).unwrap(),
        Edit::identity(300),
    ];
    let chunked = score_edits(&model, track, &edits, 2).unwrap();
    let pairs: Vec<(Track, &Edit)> = edits.iter().map(|e| (track, e)).collect();
    let batch = EditBatch::new(&pairs, &model).unwrap();
    let together: Vec<f32> = batch.scores(&model, false).unwrap().to_vec1().unwrap();
    for (a, b) in chunked.iter().zip(&together) {
        assert!((a - b).abs() < 1e-5, "{chunked:?} vs {together:?}");
    }
    // A taste layer adds its offset to each edit on both paths: here 3 points per removed bar
    // (log2 scale), within a bound of 4; nothing removed, nothing added.
    let mut weights = vec![0f32; TASTE_INPUTS];
    weights[2 * SUMMARY_WIDTH] = 3.0;
    let layer = TasteLayer::new(weights, 4.0).unwrap();
    let tasteful = model.clone().with_taste(Some(layer.clone()));
    let with_layer = score_edits(&tasteful, track, &edits, 2).unwrap();
    let batched: Vec<f32> = batch.scores(&tasteful, false).unwrap().to_vec1().unwrap();
    let mean = track_mean(&features);
    for ((edit, plain), (a, b)) in edits
        .iter()
        .zip(&chunked)
        .zip(with_layer.iter().zip(&batched))
    {
        let offset = layer.offset(&taste_inputs(&features, &mean, 4, edit), *plain);
        assert!((a - (plain + offset)).abs() < 1e-5 && (a - b).abs() < 1e-5);
    }
    assert!((with_layer[1] - chunked[1] - 4.0 * (3f32 * 3f32.log2() / 4.0).tanh()).abs() < 1e-4);
    assert_eq!(with_layer[2], chunked[2]);
    // With a floor at the second edit's own score, half its offset is added, on both paths.
    let floored = layer
        .clone()
        .with_floor(Some(chunked[1]), FloorFrom::Score)
        .unwrap();
    let tasteful = model.clone().with_taste(Some(floored));
    let with_floor = score_edits(&tasteful, track, &edits, 2).unwrap();
    let batched: Vec<f32> = batch.scores(&tasteful, false).unwrap().to_vec1().unwrap();
    let half = 2.0 * (3f32 * 3f32.log2() / 4.0).tanh();
    assert!((with_floor[1] - chunked[1] - half).abs() < 1e-4);
    assert!((batched[1] - with_floor[1]).abs() < 1e-5);
    // The same floor measured from the track's reference: half again, on both paths, once the
    // batch is built for a model that reads the reference (a batch built without one is
    // refused rather than scored on no reference).
    let reference = track_reference(&model, track).unwrap().unwrap();
    let from_track = layer
        .with_floor(Some(chunked[1] - reference), FloorFrom::Track)
        .unwrap();
    let tasteful = model.clone().with_taste(Some(from_track));
    let with_floor = score_edits(&tasteful, track, &edits, 2).unwrap();
    assert!((with_floor[1] - chunked[1] - half).abs() < 1e-4);
    assert!(matches!(
        batch.scores(&tasteful, false),
        Err(ModelError::NoReference)
    ));
    let batch = EditBatch::new(&pairs, &tasteful).unwrap();
    let batched: Vec<f32> = batch.scores(&tasteful, false).unwrap().to_vec1().unwrap();
    assert!((batched[1] - with_floor[1]).abs() < 1e-5);
    let wrong = FeatureMatrix::zeros(10);
    let err = score_edits(
        &model,
        Track {
            features: &wrong,
            meter: 4,
        },
        &edits,
        2,
    )
    .unwrap_err();
    assert!(matches!(
        err,
        ModelError::Shape {
            what: "feature matrix",
            ..
        }
    ));
}

#[test]
fn training_mode_passes_gradients_to_every_weight() {
    let (model, map) = tiny();
    let mut rng = StdRng::seed_from_u64(5);
    let seqs = [
        noise(&mut rng, 6 * MODEL_INPUTS),
        noise(&mut rng, 9 * MODEL_INPUTS),
    ];
    let slices: Vec<&[f32]> = seqs.iter().map(Vec::as_slice).collect();
    let batch = Batch::new(&slices, MODEL_INPUTS, 128, &Device::Cpu).unwrap();
    let loss = model
        .forward(&batch.inputs, &batch.mask, true)
        .unwrap()
        .sum_all()
        .unwrap();
    let grads = loss.backward().unwrap();
    let data = map.data().lock().unwrap();
    for (name, var) in data.iter() {
        let grad = grads
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("no gradient for {name}"));
        let size = grad
            .abs()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        // Positions past the longest sequence get no gradient; everything else must.
        if name != "pos" {
            assert!(size > 0.0, "zero gradient for {name}");
        }
    }
}

#[test]
fn edits_are_scored_on_the_models_own_window() {
    let map = VarMap::new();
    let config = Config {
        window: 8,
        ..Config::tiny()
    };
    let model = RewardModel::init(&config, &map, &Device::Cpu, 0).unwrap();
    let mut rng = StdRng::seed_from_u64(5);
    let features = FeatureMatrix::new(200, noise(&mut rng, 200 * 121)).unwrap();
    let track = Track {
        features: &features,
        meter: 4,
    };
    let edit = Edit::new(200, [(64, 80)]).unwrap();
    let scored = score_edits(&model, track, std::slice::from_ref(&edit), 4).unwrap()[0];
    let by_hand = |window: usize| -> f32 {
        let seqs = window_inputs(track, &edit, window).unwrap();
        assert_eq!(seqs.len(), 1);
        let batch = Batch::new(&[seqs[0].as_slice()], MODEL_INPUTS, 128, &Device::Cpu).unwrap();
        model
            .forward(&batch.inputs, &batch.mask, false)
            .unwrap()
            .to_vec1()
            .unwrap()[0]
    };
    assert!((scored - by_hand(8)).abs() < 1e-6);
    assert!((scored - by_hand(16)).abs() > 1e-6);
}

/// Scores of the shipped model on seeded inputs, recorded before the fused kernels replaced
/// candle's unfused ops (issue #19): the fused paths must give the same scores to 1e-4.
#[test]
fn the_shipped_model_scores_as_it_did_before_the_fused_kernels() {
    let model = crate::shipped::checkpoint()
        .unwrap()
        .model(&Device::Cpu)
        .unwrap();
    let mut rng = StdRng::seed_from_u64(19);
    let seqs: Vec<Vec<f32>> = [16, 16, 9, 1, 12]
        .iter()
        .map(|&beats| noise(&mut rng, beats * MODEL_INPUTS))
        .collect();
    let scores = scores_of(&model, &seqs);
    let before = [-2.2662148f32, 6.596283, -5.0509243, 4.616992, -3.212315];
    for (now, then) in scores.iter().zip(before) {
        assert!((now - then).abs() < 1e-4, "{scores:?} != {before:?}");
    }
}

#[test]
fn the_scoring_pass_encodes_as_the_graph_does() {
    let map = VarMap::new();
    let model = RewardModel::init(&Config::default(), &map, &Device::Cpu, 3).unwrap();
    let mut rng = StdRng::seed_from_u64(7);
    // 12 beats take attention's loop, 16 and 40 its matrix products; the short sequences are
    // padded. On two threads the pass takes two sequences in one block and one in another.
    let two_threads = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    for lengths in [[12, 12, 9], [16, 16, 9], [40, 33, 40]] {
        let seqs: Vec<Vec<f32>> = lengths
            .iter()
            .map(|&beats| noise(&mut rng, beats * MODEL_INPUTS))
            .collect();
        let slices: Vec<&[f32]> = seqs.iter().map(Vec::as_slice).collect();
        let batch = Batch::new(&slices, MODEL_INPUTS, 128, &Device::Cpu).unwrap();
        let graph = model.encode(&batch.inputs, &batch.mask, false).unwrap();
        let fused = two_threads
            .install(|| model.encode_for_scoring(&batch.inputs, &batch.mask))
            .unwrap();
        assert_eq!(graph.dims(), fused.dims());
        let worst = (graph - fused)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(worst < 1e-5, "{lengths:?}: largest difference {worst}");
    }
}
