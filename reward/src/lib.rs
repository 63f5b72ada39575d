//! `cutscore-reward`: the reward transformer, its checkpoints and the model that ships.
//!
//! - The crate root: the transformer, which scores an edit of a track as the listener would
//!   hear it (below); [`scoring`] turns an edit's windows into its score.
//! - [`checkpoint`]: checked, atomic `.safetensors` checkpoints with metadata.
//! - [`shipped`]: the default reward model, embedded, and which model scores.
//! - [`user_model`]: where the user's fine-tuned model lives.
//! - [`device`]: CUDA or CPU, chosen at run time with a reason.
//!
//! The reward transformer: scores an edit of a track as the listener would hear it.
//!
//! Input: for each beat of a scoring window of the edited sequence, the 121 beat features of
//! the source beat followed by the 4 edit-aware features ([`cutscore_core::edit`]). A linear projection
//! to `d_model`, learned positions, `layers` pre-norm encoder layers, a final layer norm, mean
//! pooling over the window's real beats (padding is masked out of both attention and pooling),
//! and a `d_model -> head_hidden -> 1` GELU head; the output is `output_scale * tanh(x)`, one
//! score in [-10, +10] per window. [`crate::scoring`] turns windows into edit scores, adding
//! the user's taste layer ([`cutscore_core::taste`]) when the model has one.
//!
//! The design and the Bradley–Terry training follow the published reward model Cutscore
//! reproduces; the layer layout matches `shared/bench/torch_reward_model.py` exactly, so the
//! two can be timed side by side.

pub mod checkpoint;
mod config;
pub mod device;
mod fused;
mod init;
mod layers;
pub mod scoring;
pub mod shipped;
pub mod user_model;

pub use config::{Config, ConfigError};
pub use init::seeded_weights;
pub use init::set_vars;

use candle_core::{D, DType, Device, Module, Tensor};
use candle_nn::{Init, VarBuilder, VarMap};

use cutscore_core::taste::TasteLayer;
use layers::{Dense, EncoderLayer, Norm};

/// Why the reward model could not score or be built.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{what} has shape {actual:?}; expected {expected}")]
    Shape {
        what: &'static str,
        expected: String,
        actual: Vec<usize>,
    },
    #[error("{what} contains NaN or infinite values; expected finite numbers")]
    NonFinite { what: &'static str },
    #[error("empty batch: expected at least one sequence to score")]
    EmptyBatch,
    #[error("sequence {index} has no beats; expected at least one")]
    EmptySequence { index: usize },
    #[error("sequence {index} has {beats} beats; this model reads at most {max}")]
    TooLong {
        index: usize,
        beats: usize,
        max: usize,
    },
    #[error(
        "this edit batch has no track reference scores, which the model's taste layer reads; \
         expected a batch built for a model with that layer"
    )]
    NoReference,
    #[error(transparent)]
    Edit(#[from] cutscore_core::edit::EditError),
    #[error("tensor computation failed: {0}")]
    Candle(#[from] candle_core::Error),
}

/// The reward transformer. Cheap to clone (tensors are shared).
#[derive(Debug, Clone)]
pub struct RewardModel {
    config: Config,
    proj: Dense,
    pos: Tensor,
    layers: Vec<EncoderLayer>,
    norm: Norm,
    head1: Dense,
    head2: Dense,
    /// The user's taste layer, added to every edit's score ([`cutscore_core::taste`]).
    taste: Option<TasteLayer>,
    device: Device,
}

impl RewardModel {
    /// Builds the model, taking each weight from `vb` under its checkpoint name.
    pub fn new(config: &Config, vb: VarBuilder) -> Result<Self, ModelError> {
        config.validate()?;
        let layers = (0..config.layers)
            .map(|i| EncoderLayer::new(config, vb.pp(format!("layers.{i}"))))
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Self {
            proj: Dense::new(config.inputs, config.d_model, vb.pp("proj"))?,
            pos: vb.get_with_hints(
                (config.max_len, config.d_model),
                "pos",
                Init::Randn {
                    mean: 0.0,
                    stdev: 0.02,
                },
            )?,
            layers,
            norm: Norm::new(config.d_model, config.layer_norm_eps, vb.pp("norm"))?,
            head1: Dense::new(config.d_model, config.head_hidden, vb.pp("head.0"))?,
            head2: Dense::new(config.head_hidden, 1, vb.pp("head.1"))?,
            taste: None,
            device: vb.device().clone(),
            config: config.clone(),
        })
    }

    /// The same transformer with `taste` as its taste layer (`None` removes it).
    pub fn with_taste(mut self, taste: Option<TasteLayer>) -> Self {
        self.taste = taste;
        self
    }

    /// The taste layer learned from the user's decisions, if any.
    pub fn taste(&self) -> Option<&TasteLayer> {
        self.taste.as_ref()
    }

    /// A freshly initialised model whose weights live in `varmap` (for training); the same
    /// `seed` always gives the same weights.
    pub fn init(
        config: &Config,
        varmap: &VarMap,
        device: &Device,
        seed: u64,
    ) -> Result<Self, ModelError> {
        let model = Self::new(config, VarBuilder::from_varmap(varmap, DType::F32, device))?;
        set_vars(varmap, &seeded_weights(config, seed)?, device)?;
        Ok(model)
    }

    /// The model's dimensions.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Scores a padded batch: `inputs` (batch, beats, inputs), `mask` (batch, beats) with 1 for
    /// real beats and 0 for padding. Returns (batch,) scores. `train` turns dropout on and uses
    /// differentiable kernels.
    pub fn forward(
        &self,
        inputs: &Tensor,
        mask: &Tensor,
        train: bool,
    ) -> Result<Tensor, ModelError> {
        self.check_inputs(inputs, mask)?;
        let h = match !train && self.device.is_cpu() {
            true => self.encode_for_scoring(inputs, mask)?,
            false => self.encode(inputs, mask, train)?,
        };
        let h = self.norm.forward(&h, train)?;
        let weights = mask.broadcast_div(&mask.sum_keepdim(1)?)?.unsqueeze(1)?;
        let pooled = weights.matmul(&h)?.squeeze(1)?;
        let hidden = fused::gelu(&self.head1.forward(&pooled)?)?;
        let raw = self.head2.forward(&hidden)?.squeeze(D::Minus1)?;
        Ok((raw.tanh()? * self.config.output_scale as f64)?)
    }

    /// The encoder's output (batch, beats, d_model) through candle's graph, differentiable.
    fn encode(&self, inputs: &Tensor, mask: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        let (b, t) = mask.dims2()?;
        let padded = mask.min_all()?.to_scalar::<f32>()? < 1.0;
        let key_bias = match padded {
            true => Some(((mask.affine(1.0, -1.0))? * 1e9)?.reshape((b, 1, 1, t))?),
            false => None,
        };
        let positions = self.pos.narrow(0, 0, t)?;
        let mut h = self.proj.forward(inputs)?.broadcast_add(&positions)?;
        for layer in &self.layers {
            h = layer.forward(&h, key_bias.as_ref(), train)?;
        }
        Ok(h)
    }

    /// The same output as [`Self::encode`] without dropout, by the CPU's scoring pass
    /// ([`fused::scoring`]): no autograd, buffers reused from layer to layer.
    fn encode_for_scoring(&self, inputs: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
        let (b, t) = mask.dims2()?;
        let c = &self.config;
        let sizes = fused::scoring::Sizes {
            rows: b * t,
            beats: t,
            width: c.d_model,
            ff: c.ff,
            heads: c.heads,
            eps: c.layer_norm_eps as f32,
        };
        let key_bias = ((mask.affine(1.0, -1.0))? * 1e9)?.contiguous()?;
        let inputs = inputs.contiguous()?;
        let [proj_weight, proj_bias] = self.proj.tensors();
        let mut tensors = vec![&inputs, &key_bias, proj_weight, proj_bias, &self.pos];
        tensors.extend(self.layers.iter().flat_map(|layer| layer.tensors()));
        let h = fused::with_values(&tensors, |values| {
            let proj = fused::scoring::Params {
                weight: values[2],
                bias: values[3],
            };
            let layers: Vec<_> = values[5..]
                .chunks_exact(12)
                .map(EncoderLayer::scoring_weights)
                .collect();
            let input = (proj, values[4]);
            Ok(fused::scoring::encode(
                values[0], values[1], input, &layers, sizes,
            ))
        })?;
        Tensor::from_vec(h, (b, t, c.d_model), &self.device)
    }

    fn check_inputs(&self, inputs: &Tensor, mask: &Tensor) -> Result<(usize, usize), ModelError> {
        let dims = inputs.dims();
        let expected = format!(
            "(batch, beats <= {}, {})",
            self.config.max_len, self.config.inputs
        );
        let [b, t, width] = *dims else {
            return Err(ModelError::Shape {
                what: "model input",
                expected,
                actual: dims.to_vec(),
            });
        };
        if b == 0 {
            return Err(ModelError::EmptyBatch);
        }
        if width != self.config.inputs || t == 0 {
            return Err(ModelError::Shape {
                what: "model input",
                expected,
                actual: dims.to_vec(),
            });
        }
        if t > self.config.max_len {
            return Err(ModelError::TooLong {
                index: 0,
                beats: t,
                max: self.config.max_len,
            });
        }
        if mask.dims() != [b, t] {
            return Err(ModelError::Shape {
                what: "padding mask",
                expected: format!("({b}, {t})"),
                actual: mask.dims().to_vec(),
            });
        }
        if inputs.dtype() != DType::F32 || mask.dtype() != DType::F32 {
            return Err(ModelError::Shape {
                what: "model input dtype",
                expected: "f32".into(),
                actual: dims.to_vec(),
            });
        }
        if !inputs.sum_all()?.to_scalar::<f32>()?.is_finite() {
            return Err(ModelError::NonFinite {
                what: "model input",
            });
        }
        Ok((b, t))
    }
}

/// A padded batch of variable-length sequences, ready for [`RewardModel::forward`].
#[derive(Debug, Clone)]
pub struct Batch {
    /// (batch, longest, inputs), zero-padded.
    pub inputs: Tensor,
    /// (batch, longest): 1 for real beats, 0 for padding.
    pub mask: Tensor,
}

impl Batch {
    /// Packs sequences of `rows * width` row-major values each. Checks every sequence's shape,
    /// length limit and values before anything reaches the model.
    pub fn new(
        sequences: &[&[f32]],
        width: usize,
        max_len: usize,
        device: &Device,
    ) -> Result<Self, ModelError> {
        if sequences.is_empty() {
            return Err(ModelError::EmptyBatch);
        }
        let mut longest = 0;
        for (index, seq) in sequences.iter().enumerate() {
            if seq.len() % width != 0 {
                return Err(ModelError::Shape {
                    what: "sequence",
                    expected: format!("a multiple of {width} values (beats x inputs)"),
                    actual: vec![seq.len()],
                });
            }
            let beats = seq.len() / width;
            if beats == 0 {
                return Err(ModelError::EmptySequence { index });
            }
            if beats > max_len {
                return Err(ModelError::TooLong {
                    index,
                    beats,
                    max: max_len,
                });
            }
            if seq.iter().any(|v| !v.is_finite()) {
                return Err(ModelError::NonFinite { what: "sequence" });
            }
            longest = longest.max(beats);
        }
        let b = sequences.len();
        let mut values = vec![0f32; b * longest * width];
        let mut mask = vec![0f32; b * longest];
        for (i, seq) in sequences.iter().enumerate() {
            let start = i * longest * width;
            values[start..start + seq.len()].copy_from_slice(seq);
            mask[i * longest..i * longest + seq.len() / width].fill(1.0);
        }
        Ok(Self {
            inputs: Tensor::from_vec(values, (b, longest, width), device)?,
            mask: Tensor::from_vec(mask, (b, longest), device)?,
        })
    }
}

#[cfg(test)]
mod tests;
