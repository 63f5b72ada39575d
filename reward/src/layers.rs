//! The reward transformer's building blocks: dense layers, layer norm, attention, encoder layer.
//!
//! Each block is built from a [`VarBuilder`] whose `pp` names are the checkpoint's tensor names.
//! On the CPU every block runs the fused kernels of [`crate::fused`] (dense layers, attention,
//! layer norm, GELU, dropout), each with its own backward pass. On other devices the blocks run
//! candle's operations: scoring uses its fused layer norm and softmax, which have no backward
//! pass, so training there runs the same maths as differentiable tensor ops (candle's own
//! `LayerNorm` module would silently cut the gradient).

use candle_core::{D, Module, Result, Tensor};
use candle_nn::{Init, VarBuilder, ops};

use crate::{Config, fused};

/// `y = x W^T + b` over the last dimension, with leading dimensions flattened into one matrix
/// product (one large GEMM instead of one per batch item).
#[derive(Debug, Clone)]
pub struct Dense {
    weight: Tensor,
    bias: Tensor,
}

impl Dense {
    pub fn new(inputs: usize, outputs: usize, vb: VarBuilder) -> Result<Self> {
        let bound = 1.0 / (inputs as f64).sqrt();
        let uniform = Init::Uniform {
            lo: -bound,
            up: bound,
        };
        Ok(Self {
            weight: vb.get_with_hints((outputs, inputs), "weight", uniform)?,
            bias: vb.get_with_hints(outputs, "bias", uniform)?,
        })
    }

    /// The weight and bias tensors, in that order.
    pub fn tensors(&self) -> [&Tensor; 2] {
        [&self.weight, &self.bias]
    }
}

impl Module for Dense {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        fused::dense(x, &self.weight, &self.bias)
    }
}

/// Layer normalisation over the last dimension, with learned scale and shift.
#[derive(Debug, Clone)]
pub struct Norm {
    weight: Tensor,
    bias: Tensor,
    eps: f64,
}

impl Norm {
    pub fn new(width: usize, eps: f64, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            weight: vb.get_with_hints(width, "weight", Init::Const(1.0))?,
            bias: vb.get_with_hints(width, "bias", Init::Const(0.0))?,
            eps,
        })
    }

    /// The scale and shift tensors, in that order.
    pub fn tensors(&self) -> [&Tensor; 2] {
        [&self.weight, &self.bias]
    }

    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        if train || x.device().is_cpu() {
            fused::layer_norm(x, &self.weight, &self.bias, self.eps as f32)
        } else {
            ops::layer_norm(&x.contiguous()?, &self.weight, &self.bias, self.eps as f32)
        }
    }
}

fn softmax(x: &Tensor, train: bool) -> Result<Tensor> {
    if train {
        ops::softmax(x, D::Minus1)
    } else {
        ops::softmax_last_dim(x)
    }
}

/// Dropout with probability `p` while training; the identity otherwise.
#[derive(Debug, Clone, Copy)]
struct Dropout {
    p: f32,
}

impl Dropout {
    fn new(p: f32) -> Self {
        Self { p }
    }

    fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        match train {
            true => fused::dropout(x, self.p),
            false => Ok(x.clone()),
        }
    }

    /// The rate the fused ops drop at: `p` while training, 0 otherwise.
    fn rate(&self, train: bool) -> f32 {
        if train { self.p } else { 0.0 }
    }
}

/// Multi-head self-attention with one fused input projection (q, k, v), like PyTorch's.
#[derive(Debug, Clone)]
pub struct SelfAttention {
    in_proj: Dense,
    out_proj: Dense,
    heads: usize,
    dropout: Dropout,
}

impl SelfAttention {
    pub fn new(cfg: &Config, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            in_proj: Dense::new(cfg.d_model, 3 * cfg.d_model, vb.pp("in_proj"))?,
            out_proj: Dense::new(cfg.d_model, cfg.d_model, vb.pp("out_proj"))?,
            heads: cfg.heads,
            dropout: Dropout::new(cfg.dropout),
        })
    }

    /// `x`: (batch, beats, d); `key_bias`: (batch, 1, 1, beats), 0 for real beats and a large
    /// negative number for padding, so no beat attends to padding; `None` when nothing is
    /// padded.
    pub fn forward(&self, x: &Tensor, key_bias: Option<&Tensor>, train: bool) -> Result<Tensor> {
        let (b, t, d) = x.dims3()?;
        let qkv = self.in_proj.forward(x)?;
        if x.device().is_cpu() {
            let key_bias = match key_bias {
                Some(bias) => bias.reshape((b, t))?,
                None => Tensor::zeros((b, t), x.dtype(), x.device())?,
            };
            let merged = fused::attention(&qkv, &key_bias, self.heads, self.dropout.rate(train))?;
            return self.out_proj.forward(&merged);
        }
        let dh = d / self.heads;
        let qkv = qkv
            .reshape((b, t, 3, self.heads, dh))?
            .permute((2, 0, 3, 1, 4))?;
        let scale = 1.0 / (dh as f64).sqrt();
        // Scaling q writes it contiguously, so it needs no copy of its own.
        let q = (qkv.get(0)? * scale)?;
        let k = qkv.get(1)?.contiguous()?;
        let v = qkv.get(2)?.contiguous()?;
        let mut scores = q.matmul(&k.t()?)?;
        if let Some(bias) = key_bias {
            scores = scores.broadcast_add(bias)?;
        }
        let weights = self.dropout.forward(&softmax(&scores, train)?, train)?;
        let heads = weights.matmul(&v)?;
        let merged = heads.transpose(1, 2)?.reshape((b, t, d))?;
        self.out_proj.forward(&merged)
    }
}

/// One pre-norm transformer encoder layer: `x + attn(norm(x))`, then `x + ff(norm(x))`.
#[derive(Debug, Clone)]
pub struct EncoderLayer {
    norm1: Norm,
    attn: SelfAttention,
    norm2: Norm,
    ff1: Dense,
    ff2: Dense,
    dropout: Dropout,
}

impl EncoderLayer {
    pub fn new(cfg: &Config, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            norm1: Norm::new(cfg.d_model, cfg.layer_norm_eps, vb.pp("norm1"))?,
            attn: SelfAttention::new(cfg, vb.pp("attn"))?,
            norm2: Norm::new(cfg.d_model, cfg.layer_norm_eps, vb.pp("norm2"))?,
            ff1: Dense::new(cfg.d_model, cfg.ff, vb.pp("ff1"))?,
            ff2: Dense::new(cfg.ff, cfg.d_model, vb.pp("ff2"))?,
            dropout: Dropout::new(cfg.dropout),
        })
    }

    /// The layer's 12 weight tensors in the order [`Self::scoring_weights`] reads them: first
    /// norm, `q k v` projection, output projection, second norm, feed-forward in and out, each
    /// weight then bias.
    pub fn tensors(&self) -> [&Tensor; 12] {
        let [a, b] = self.norm1.tensors();
        let [c, d] = self.attn.in_proj.tensors();
        let [e, f] = self.attn.out_proj.tensors();
        let [g, h] = self.norm2.tensors();
        let [i, j] = self.ff1.tensors();
        let [k, l] = self.ff2.tensors();
        [a, b, c, d, e, f, g, h, i, j, k, l]
    }

    /// The layer's weights for [`fused::scoring`], from the values of [`Self::tensors`].
    pub fn scoring_weights<'a>(values: &[&'a [f32]]) -> fused::scoring::LayerWeights<'a> {
        let params = |i: usize| fused::scoring::Params {
            weight: values[i],
            bias: values[i + 1],
        };
        fused::scoring::LayerWeights {
            norm1: params(0),
            in_proj: params(2),
            out_proj: params(4),
            norm2: params(6),
            ff1: params(8),
            ff2: params(10),
        }
    }

    pub fn forward(&self, x: &Tensor, key_bias: Option<&Tensor>, train: bool) -> Result<Tensor> {
        let attended = self
            .attn
            .forward(&self.norm1.forward(x, train)?, key_bias, train)?;
        let p = self.dropout.rate(train);
        let x = fused::residual_dropout(x, &attended, p)?;
        let normed = self.norm2.forward(&x, train)?;
        let hidden = fused::dense_gelu(&normed, &self.ff1.weight, &self.ff1.bias, p)?;
        let out = self.ff2.forward(&hidden)?;
        fused::residual_dropout(&x, &out, p)
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device};
    use candle_nn::VarMap;

    use super::*;

    fn close(a: &[f32], b: &[f32], tol: f32) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() <= tol, "{a:?} != {b:?}");
        }
    }

    #[test]
    fn dense_computes_xw_plus_b_over_leading_dimensions() -> Result<()> {
        let dev = Device::Cpu;
        let mut tensors = std::collections::HashMap::new();
        tensors.insert(
            "weight".to_string(),
            Tensor::new(&[[1f32, 2.], [0., -1.], [3., 0.5]], &dev)?,
        );
        tensors.insert("bias".to_string(), Tensor::new(&[0.5f32, 0., -1.], &dev)?);
        let vb = VarBuilder::from_tensors(tensors, DType::F32, &dev);
        let dense = Dense::new(2, 3, vb)?;
        let x = Tensor::new(&[[[1f32, 1.], [2., 0.]], [[0., 1.], [-1., 2.]]], &dev)?;
        let y = dense.forward(&x)?;
        assert_eq!(y.dims(), &[2, 2, 3]);
        let flat: Vec<f32> = y.flatten_all()?.to_vec1()?;
        close(
            &flat,
            &[3.5, -1., 2.5, 2.5, 0., 5., 2.5, -1., -0.5, 3.5, -2., -3.],
            1e-6,
        );
        Ok(())
    }

    #[test]
    fn norm_is_the_same_fused_and_differentiable() -> Result<()> {
        let dev = Device::Cpu;
        let map = VarMap::new();
        let norm = Norm::new(4, 1e-5, VarBuilder::from_varmap(&map, DType::F32, &dev))?;
        let x = Tensor::new(&[[1f32, 2., 3., 4.], [-1., 0., 0., 5.]], &dev)?;
        let fused: Vec<f32> = norm.forward(&x, false)?.flatten_all()?.to_vec1()?;
        let slow: Vec<f32> = norm.forward(&x, true)?.flatten_all()?.to_vec1()?;
        close(&fused, &slow, 1e-5);
        // Hand-computed: mean 2.5, variance 1.25 for the first row.
        let s = (1.25f32 + 1e-5).sqrt();
        close(&fused[..4], &[-1.5 / s, -0.5 / s, 0.5 / s, 1.5 / s], 1e-5);
        Ok(())
    }

    #[test]
    fn attention_ignores_padded_keys() -> Result<()> {
        let dev = Device::Cpu;
        let map = VarMap::new();
        let cfg = Config::tiny();
        let attn = SelfAttention::new(&cfg, VarBuilder::from_varmap(&map, DType::F32, &dev))?;
        let x = Tensor::randn(0f32, 1., (1, 5, cfg.d_model), &dev)?;
        let bias = Tensor::new(&[0f32, 0., 0., -1e9, -1e9], &dev)?.reshape((1, 1, 1, 5))?;
        let full = attn.forward(&x, Some(&bias), false)?.narrow(1, 0, 3)?;
        // Change the padded beats: the real beats' outputs must not move.
        let noise = Tensor::randn(0f32, 5., (1, 2, cfg.d_model), &dev)?;
        let x2 = Tensor::cat(&[&x.narrow(1, 0, 3)?, &noise], 1)?;
        let moved = attn.forward(&x2, Some(&bias), false)?.narrow(1, 0, 3)?;
        let a: Vec<f32> = full.flatten_all()?.to_vec1()?;
        let b: Vec<f32> = moved.flatten_all()?.to_vec1()?;
        close(&a, &b, 1e-5);
        Ok(())
    }
}
