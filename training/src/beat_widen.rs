//! Widening a trained beat model: more channels in every layer, the same activations.
//!
//! A model with more channels is a different architecture, so it cannot simply go on from a
//! trained one, and training it from nothing repeats the whole recipe (`BEATS.md`). Instead
//! ([`widen`]) every old weight is kept, the new channels get weights drawn as a fresh network's
//! are, and every weight from a new channel into an old one (or into the head) starts at zero.
//! The old channels then compute exactly what they did, the head reads only them, and the wider
//! model's activations are the old model's until training moves those zeros (the idea of
//! Chen, Goodfellow & Shlens' Net2Net, 2016, in its simplest form).

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use cutscore_analysis::beat_model::{
    BeatModel, BeatModelConfig, BeatModelError, INPUT_BANDS, OUTPUTS, TAPS,
};

/// One layer's weights before and after: `rows` outputs by `taps` x `inputs` columns (tap-major,
/// as `beat_net::TapConv` concatenates its shifted inputs).
struct Layer {
    rows: (usize, usize),
    inputs: (usize, usize),
    taps: usize,
}

impl Layer {
    /// The wider weight matrix and bias of this layer from the old ones.
    fn widen(&self, weight: &[f32], bias: &[f32], rng: &mut StdRng) -> (Vec<f32>, Vec<f32>) {
        let (old_rows, rows) = self.rows;
        let (old_in, inputs) = self.inputs;
        // A fresh layer's bound (`beat_net::TapConv::new`).
        let bound = (1.0 / (inputs * self.taps) as f32).sqrt();
        let mut wide = Vec::with_capacity(rows * self.taps * inputs);
        for r in 0..rows {
            for t in 0..self.taps {
                for i in 0..inputs {
                    wide.push(match (r < old_rows, i < old_in) {
                        (true, true) => weight[(r * self.taps + t) * old_in + i],
                        (true, false) => 0.0,
                        (false, _) => rng.random_range(-bound..bound),
                    });
                }
            }
        }
        let mut bias = bias.to_vec();
        bias.resize(rows, 0.0);
        (wide, bias)
    }
}

/// `model` with `channels` channels, computing the same activations (see the module's notes);
/// the new weights are drawn from `seed`. Its metrics and provenance are `model`'s.
pub fn widen(model: &BeatModel, channels: usize, seed: u64) -> Result<BeatModel, BeatModelError> {
    let old = model.config();
    if channels < old.channels {
        return Err(BeatModelError::Config(format!(
            "cannot widen a {}-channel model to {channels} channels; expected at least {}",
            old.channels, old.channels
        )));
    }
    let config = BeatModelConfig {
        channels,
        ..old.clone()
    };
    let (c0, c) = (old.channels, channels);
    let mut layers = vec![(
        "stem".to_owned(),
        Layer {
            rows: (c0, c),
            inputs: (INPUT_BANDS, INPUT_BANDS),
            taps: TAPS,
        },
    )];
    for i in 0..old.dilations.len() {
        for (name, taps) in [("conv", TAPS), ("proj", 1)] {
            let layer = Layer {
                rows: (c0, c),
                inputs: (c0, c),
                taps,
            };
            layers.push((format!("blocks.{i}.{name}"), layer));
        }
    }
    layers.push((
        "head".to_owned(),
        Layer {
            rows: (OUTPUTS, OUTPUTS),
            inputs: (c0, c),
            taps: 1,
        },
    ));
    let old_weights = model.weights();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut weights = BTreeMap::new();
    for (name, layer) in layers {
        let get = |part: &str| {
            let key = format!("{name}.{part}");
            old_weights.get(&key).ok_or_else(|| BeatModelError::Tensor {
                name: key,
                problem: "is missing".to_owned(),
            })
        };
        let (weight, bias) = layer.widen(get("weight")?, get("bias")?, &mut rng);
        weights.insert(format!("{name}.weight"), weight);
        weights.insert(format!("{name}.bias"), bias);
    }
    BeatModel::from_weights(
        config,
        weights,
        model.info.metrics.clone(),
        model.info.provenance.clone(),
    )
}

#[cfg(test)]
mod tests {
    use cutscore_analysis::beat_model;
    use cutscore_analysis::frontend::Frame;

    use super::*;

    /// Seeded frames with a pulse every 19 frames.
    fn frames(n: usize) -> Vec<Frame> {
        let mut rng = StdRng::seed_from_u64(3);
        (0..n)
            .map(|k| {
                let mut frame = Frame::default();
                for v in &mut frame.mel {
                    *v = rng.random::<f32>() * 0.4 + if k % 19 == 0 { 1.2 } else { 0.2 };
                }
                frame
            })
            .collect()
    }

    #[test]
    fn a_widened_model_gives_the_same_activations() {
        let shipped = beat_model::shipped();
        let wide = widen(shipped, 128, 1).unwrap();
        assert_eq!(wide.config().channels, 128);
        assert!(wide.config().parameters() > 2 * shipped.config().parameters());
        let frames = frames(700);
        let (before, after) = (shipped.activations(&frames), wide.activations(&frames));
        let mut largest = 0.0f32;
        for (a, b) in before.iter().zip(&after) {
            largest = largest
                .max((a.beat - b.beat).abs())
                .max((a.downbeat - b.downbeat).abs());
        }
        assert!(largest < 1e-5, "activations moved by up to {largest}");
        assert!(
            before.iter().any(|a| a.beat > 0.5),
            "the pulse should be heard"
        );
    }

    #[test]
    fn the_new_channels_are_live_but_silent() {
        let shipped = beat_model::shipped();
        let c0 = shipped.config().channels;
        let wide = widen(shipped, c0 + 8, 2).unwrap().weights();
        // A new stem row reads the input; the head ignores the new channels (zeros) until
        // training moves them.
        let stem = &wide["stem.weight"];
        let row = TAPS * INPUT_BANDS;
        assert!(stem[c0 * row..(c0 + 1) * row].iter().any(|&w| w != 0.0));
        let head = &wide["head.weight"];
        for o in 0..OUTPUTS {
            assert!(
                head[o * (c0 + 8) + c0..(o + 1) * (c0 + 8)]
                    .iter()
                    .all(|&w| w == 0.0)
            );
        }
    }

    #[test]
    fn narrowing_is_refused() {
        let shipped = beat_model::shipped();
        let error = widen(shipped, shipped.config().channels - 1, 0).unwrap_err();
        assert!(error.to_string().contains("expected at least"), "{error}");
    }
}
