//! The activation network as a candle graph, for training. Same weights, names and arithmetic
//! as the hand-written inference of `cutscore_analysis::beat_model`: each three-tap convolution is the input
//! zero-padded in time, shifted by each tap's offset, concatenated on the channel axis in tap
//! order and multiplied by the `[outputs, 3 * inputs]` weight.

use std::collections::BTreeMap;

use candle_core::{DType, Device, Result, Tensor, Var};
use candle_nn::{Init, VarBuilder, VarMap};

use cutscore_analysis::beat_model::{BeatModel, BeatModelConfig, INPUT_BANDS, OUTPUTS};

/// A three-tap (or one-tap) convolution over `[batch, channels, frames]`.
#[derive(Debug, Clone)]
struct TapConv {
    weight: Tensor,
    bias: Tensor,
    offsets: Vec<isize>,
}

impl TapConv {
    fn new(vb: VarBuilder, outputs: usize, inputs: usize, offsets: Vec<isize>) -> Result<Self> {
        let width = inputs * offsets.len();
        let bound = (1.0 / width as f64).sqrt();
        let weight = vb.get_with_hints(
            (outputs, width),
            "weight",
            Init::Uniform {
                lo: -bound,
                up: bound,
            },
        )?;
        let bias = vb.get_with_hints(outputs, "bias", Init::Const(0.0))?;
        Ok(Self {
            weight,
            bias,
            offsets,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let frames = x.dim(2)?;
        let before = (-self.offsets[0]).max(0) as usize;
        let after = self.offsets[self.offsets.len() - 1].max(0) as usize;
        let stacked = if self.offsets == [0] {
            x.clone()
        } else {
            let padded = x.pad_with_zeros(2, before, after)?;
            let shifted = self
                .offsets
                .iter()
                .map(|&o| padded.narrow(2, (before as isize + o) as usize, frames))
                .collect::<Result<Vec<_>>>()?;
            // Candle concatenates along a later axis into a transposed view; CUDA's matrix
            // product takes only contiguous operands (the CPU's takes both).
            Tensor::cat(&shifted, 1)?.contiguous()?
        };
        let out = self.weight.broadcast_matmul(&stacked)?;
        out.broadcast_add(&self.bias.unsqueeze(1)?)
    }
}

/// The trainable network.
#[derive(Debug, Clone)]
pub struct BeatNet {
    config: BeatModelConfig,
    stem: TapConv,
    blocks: Vec<(TapConv, TapConv)>,
    head: TapConv,
}

impl BeatNet {
    /// Builds the network's variables under `vb` (fresh ones are initialised).
    pub fn new(config: &BeatModelConfig, vb: VarBuilder) -> Result<Self> {
        let c = config.channels;
        let stem = TapConv::new(
            vb.pp("stem"),
            c,
            INPUT_BANDS,
            config.stem_offsets().to_vec(),
        )?;
        let blocks = config
            .dilations
            .iter()
            .enumerate()
            .map(|(i, &d)| {
                let vb = vb.pp(format!("blocks.{i}"));
                Ok((
                    TapConv::new(vb.pp("conv"), c, c, config.block_offsets(d).to_vec())?,
                    TapConv::new(vb.pp("proj"), c, c, vec![0])?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        let head = TapConv::new(vb.pp("head"), OUTPUTS, c, vec![0])?;
        Ok(Self {
            config: config.clone(),
            stem,
            blocks,
            head,
        })
    }

    /// Logits `[batch, 2, frames]` (beat, downbeat) of mel input `[batch, 40, frames]`;
    /// `train` applies dropout.
    pub fn forward(&self, mel: &Tensor, train: bool) -> Result<Tensor> {
        let mut h = self.stem.forward(mel)?.elu(1.0)?;
        for (conv, proj) in &self.blocks {
            let mut y = conv.forward(&h)?.elu(1.0)?;
            if train && self.config.dropout > 0.0 {
                y = candle_nn::ops::dropout(&y, self.config.dropout)?;
            }
            h = (h + proj.forward(&y)?)?;
        }
        self.head.forward(&h)
    }
}

/// A fresh trainable network and its variables on `device`, or one holding `init`'s weights.
pub fn trainable(
    config: &BeatModelConfig,
    init: Option<&BeatModel>,
    device: &Device,
) -> Result<(BeatNet, VarMap)> {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
    let net = BeatNet::new(config, vb)?;
    if let Some(model) = init {
        let weights = model.weights();
        let data = varmap.data().lock().expect("VarMap lock poisoned");
        for (name, var) in data.iter() {
            let values = &weights[name];
            var.set(&Tensor::from_slice(values, var.shape(), device)?)?;
        }
    }
    Ok((net, varmap))
}

/// The weights of `varmap` by name, as the file stores them.
pub fn varmap_weights(varmap: &VarMap) -> Result<BTreeMap<String, Vec<f32>>> {
    let data = varmap.data().lock().expect("VarMap lock poisoned");
    data.iter()
        .map(|(name, var): (&String, &Var)| {
            let values = var
                .as_tensor()
                .to_device(&Device::Cpu)?
                .flatten_all()?
                .to_vec1::<f32>()?;
            Ok((name.clone(), values))
        })
        .collect()
}

/// Frame-weighted binary cross-entropy of `logits` `[batch, 2, frames]` against `targets` of
/// the same shape (values in `[0, 1]`), each element weighted by `weights`; the mean over the
/// weights' sum.
pub fn loss(logits: &Tensor, targets: &Tensor, weights: &Tensor) -> Result<Tensor> {
    // max(x, 0) - x y + log(1 + exp(-|x|)), the stable form of BCE with logits.
    let softplus = (logits.abs()?.neg()?.exp()? + 1.0)?.log()?;
    let per = ((logits.relu()? - (logits * targets)?)? + softplus)?;
    let total = (per * weights)?.sum_all()?;
    total / weights.sum_all()?.to_scalar::<f32>()?.max(1e-6) as f64
}

#[cfg(test)]
mod tests {
    use cutscore_analysis::beat_model::file::{BeatProvenance, BeatTrainingMetrics};
    use cutscore_analysis::frontend::Frame;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;

    #[test]
    fn the_candle_graph_matches_the_hand_written_inference() {
        let config = BeatModelConfig {
            channels: 8,
            dilations: vec![1, 2, 4, 8],
            centred_up_to: 2,
            dropout: 0.1,
        };
        let (_, varmap) = trainable(&config, None, &Device::Cpu).unwrap();
        let mut weights = varmap_weights(&varmap).unwrap();
        // Non-zero biases, so a bias missed by either path shows.
        for (name, values) in weights.iter_mut() {
            if name.ends_with("bias") {
                for (i, v) in values.iter_mut().enumerate() {
                    *v = 0.05 * ((i % 5) as f32 - 2.0);
                }
            }
        }
        let model = BeatModel::from_weights(
            config.clone(),
            weights,
            BeatTrainingMetrics::default(),
            BeatProvenance::default(),
        )
        .unwrap();
        let (net, _) = trainable(&config, Some(&model), &Device::Cpu).unwrap();

        // Seeded mel frames with a pulse every 11 frames.
        let mut rng = StdRng::seed_from_u64(7);
        let frames: Vec<Frame> = (0..90)
            .map(|k| {
                let mut frame = Frame::default();
                for v in &mut frame.mel {
                    *v = rng.random::<f32>() * 0.5 + if k % 11 == 0 { 1.5 } else { 0.5 };
                }
                frame
            })
            .collect();
        let n = frames.len();
        let mut input = vec![0.0f32; INPUT_BANDS * n];
        for (j, f) in frames.iter().enumerate() {
            for b in 0..INPUT_BANDS {
                input[b * n + j] = f.mel[b];
            }
        }
        let input = Tensor::from_vec(input, (1, INPUT_BANDS, n), &Device::Cpu).unwrap();
        let logits: Vec<Vec<f32>> = net
            .forward(&input, false)
            .unwrap()
            .squeeze(0)
            .unwrap()
            .to_vec2()
            .unwrap();
        let activations = model.activations(&frames);
        assert_eq!(activations.len(), n);
        for (t, a) in activations.iter().enumerate() {
            let beat = 1.0 / (1.0 + (-logits[0][t]).exp());
            let downbeat = 1.0 / (1.0 + (-logits[1][t]).exp());
            assert!(
                (a.beat - beat).abs() < 1e-5,
                "frame {t}: {} vs {beat}",
                a.beat
            );
            assert!((a.downbeat - downbeat).abs() < 1e-5, "frame {t}");
        }
    }
}
