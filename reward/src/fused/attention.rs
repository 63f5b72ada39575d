//! Multi-head attention over short windows, straight from the packed `q k v` projection to the
//! merged heads, with its backward pass.
//!
//! Candle would permute the projection into heads (three copies), run one tiny matrix product
//! per batch item and head (thousands of 16 x 16 products, each paying the GEMM's set-up and
//! thread hand-off), softmax and dropout in passes of their own, and merge the heads back (one
//! more copy). Here each batch item is one task that reads its rows of the projection where
//! they lie and writes its rows of the merged output; scores live in a `beats x beats` scratch.
//!
//! Backwards, the scores and weights are recomputed from `q` and `k` (cheaper than keeping
//! them at these lengths) and the dropout mask from its seed ([`super::dropout`]'s hash). With
//! `P` the softmax weights, `D` the dropout factors and `g` the output gradient:
//! `dV = (P∘D)^T g`, `dP = (g V^T)∘D`, `dS = P∘(dP - rowsum(dP∘P))`, `dQ = s dS K`,
//! `dK = s dS^T Q`, for the scale `s = 1/√head_width`.

use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor, bail};
use multiversion::multiversion;
use rayon::prelude::*;

use super::dropout::Mask;
use super::simd::{dot, exp, sum};
use super::values;

/// Attention of `qkv` (batch, beats, 3·width), packed as PyTorch's `in_proj` packs it (all of
/// `q`, then `k`, then `v`, each split into `heads` contiguous heads), with `key_bias` (batch,
/// beats) added to every score of that key (0, or a large negative number for padding).
/// Dropout `p` applies to the attention weights. Returns the merged heads (batch, beats,
/// width). CPU only: the caller keeps candle's operations for other devices.
pub fn attention(qkv: &Tensor, key_bias: &Tensor, heads: usize, p: f32) -> Result<Tensor> {
    let mask = (p > 0.0).then(|| Mask::new(p, rand::random::<u64>()));
    Attention { heads, mask }.apply(qkv, key_bias)
}

/// The attention op: its heads, and its dropout mask while training.
#[derive(Clone, Copy)]
pub(super) struct Attention {
    pub(super) heads: usize,
    pub(super) mask: Option<Mask>,
}

/// The dimensions of one call, checked against the operands.
#[derive(Clone, Copy)]
struct Dims {
    beats: usize,
    width: usize,
    head_width: usize,
}

impl Attention {
    pub(super) fn apply(self, qkv: &Tensor, key_bias: &Tensor) -> Result<Tensor> {
        qkv.contiguous()?.apply_op2(&key_bias.contiguous()?, self)
    }

    fn dims(&self, qkv: &Layout, bias: &Layout) -> Result<Dims> {
        let &[batch, beats, packed] = qkv.dims() else {
            bail!(
                "attention: expected (batch, beats, 3 x width), got {:?}",
                qkv.dims()
            )
        };
        if packed % (3 * self.heads.max(1)) != 0 || self.heads == 0 {
            bail!(
                "attention: {packed} packed values do not split into q, k, v of {} heads",
                self.heads
            )
        }
        if bias.dims() != [batch, beats] {
            bail!(
                "attention: key bias {:?} for input {:?}",
                bias.dims(),
                qkv.dims()
            )
        }
        let width = packed / 3;
        Ok(Dims {
            beats,
            width,
            head_width: width / self.heads,
        })
    }

    /// Every batch item's attention: `qkv` (items·beats, 3·width) and its key bias in, the
    /// merged heads (items·beats, width) written to `out`, whatever it held before.
    fn attend_all(&self, d: Dims, (qkv, bias): (&[f32], &[f32]), out: &mut [f32]) {
        let (t, w) = (d.beats, d.width);
        out.par_chunks_mut(t * w.max(1))
            .enumerate()
            .for_each(|(item, out)| self.attend_one(d, item, (qkv, bias), out));
    }

    /// Batch item `item` of [`Self::attend_all`]'s operands, written to its rows `out`.
    fn attend_one(&self, d: Dims, item: usize, (qkv, bias): (&[f32], &[f32]), out: &mut [f32]) {
        let (t, w) = (d.beats, d.width);
        let qkv = &qkv[item * t * 3 * w..(item + 1) * t * 3 * w];
        let bias = &bias[item * t..(item + 1) * t];
        out.fill(0.0);
        attend_item(self, d, item, (qkv, bias), out);
    }

    /// One head of one batch item: fills `weights` (beats x beats) with the softmax of its
    /// scores, before dropout.
    #[inline(always)]
    fn weights(&self, d: Dims, qkv: &[f32], bias: &[f32], head: usize, weights: &mut [f32]) {
        let (t, stride) = (d.beats, 3 * d.width);
        let scale = 1.0 / (d.head_width as f32).sqrt();
        let q_at = head * d.head_width;
        let k_at = d.width + q_at;
        if t >= GEMM_FROM_BEATS {
            let q = (&qkv[q_at..], stride, 1);
            let k_transposed = (&qkv[k_at..], 1, stride);
            small_product((t, t, d.head_width), (weights, t), q, k_transposed, scale);
        }
        for i in 0..t {
            let row = &mut weights[i * t..(i + 1) * t];
            if t >= GEMM_FROM_BEATS {
                row.iter_mut().zip(bias).for_each(|(s, b)| *s += b);
            } else {
                let q = &qkv[i * stride + q_at..i * stride + q_at + d.head_width];
                for (j, s) in row.iter_mut().enumerate() {
                    let k = &qkv[j * stride + k_at..j * stride + k_at + d.head_width];
                    *s = dot(q, k) * scale + bias[j];
                }
            }
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            row.iter_mut().for_each(|s| *s = exp(*s - max));
            let inv = 1.0 / sum(row);
            row.iter_mut().for_each(|s| *s *= inv);
        }
    }

    /// The dropout factor of weight (item, head, i, j); 1 without dropout.
    #[inline(always)]
    pub(super) fn factor(&self, beats: usize, item: usize, head: usize, i: usize, j: usize) -> f32 {
        match self.mask {
            Some(mask) => mask.factor(((item * self.heads + head) * beats + i) * beats + j),
            None => 1.0,
        }
    }
}

/// Scoring's attention, without dropout or autograd, on this thread: `qkv` (items·beats,
/// 3·width) as [`attention`] takes it and `key_bias` (items·beats) in, the merged heads
/// (items·beats, width) written to `out`.
pub(super) fn attend_into(
    qkv: &[f32],
    key_bias: &[f32],
    (beats, width, heads): (usize, usize, usize),
    out: &mut [f32],
) {
    assert!(
        heads > 0
            && width % heads == 0
            && qkv.len() == 3 * out.len()
            && out.len() == key_bias.len() * width,
        "attention: {} packed values, {} key biases and {} outputs do not fit beats {beats}, width {width}, {heads} heads",
        qkv.len(),
        key_bias.len(),
        out.len()
    );
    let d = Dims {
        beats,
        width,
        head_width: width / heads,
    };
    let op = Attention { heads, mask: None };
    for (item, out) in out.chunks_mut(beats * width).enumerate() {
        op.attend_one(d, item, (qkv, key_bias), out);
    }
}

/// From this many beats on, a head's scores and its weighted sum of values, and backwards its
/// recomputed scores and four gradient products, are matrix products on the `gemm` crate;
/// shorter windows loop, which costs less than setting one up.
/// At the 16-beat scoring windows the products take 5.3 % of a scoring pass's time where the
/// loops took 8.5 % (perf, 256 windows, 2 cores).
const GEMM_FROM_BEATS: usize = 16;

/// A matrix operand: its values, row stride and column stride.
type Operand<'a> = (&'a [f32], usize, usize);

/// `dst = beta · lhs · rhs` for `(m, n, k)`, on this thread (the caller runs one task per batch
/// item); `dst` is written through its row stride, columns adjacent.
fn small_product(
    (m, n, k): (usize, usize, usize),
    (dst, dst_rs): (&mut [f32], usize),
    lhs: Operand,
    rhs: Operand,
    beta: f32,
) {
    let reach =
        |rows: usize, cols: usize, rs: usize, cs: usize| (rows - 1) * rs + (cols - 1) * cs + 1;
    assert!(
        m > 0
            && n > 0
            && k > 0
            && reach(m, n, dst_rs, 1) <= dst.len()
            && reach(m, k, lhs.1, lhs.2) <= lhs.0.len()
            && reach(k, n, rhs.1, rhs.2) <= rhs.0.len(),
        "attention product out of bounds"
    );
    // SAFETY: the assertion above keeps every index the product reads or writes inside its
    // slice; `dst` is borrowed mutably, so nothing else reads it meanwhile.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_rs as isize,
            false,
            lhs.0.as_ptr(),
            lhs.2 as isize,
            lhs.1 as isize,
            rhs.0.as_ptr(),
            rhs.2 as isize,
            rhs.1 as isize,
            0.0,
            beta,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// `out += w · v`.
#[inline(always)]
fn add_scaled(out: &mut [f32], w: f32, v: &[f32]) {
    out.iter_mut().zip(v).for_each(|(o, v)| *o += w * v);
}

impl CustomOp2 for Attention {
    fn name(&self) -> &'static str {
        "fused-attention"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let d = self.dims(l1, l2)?;
        let qkv = values(s1, l1, "attention input")?;
        let bias = values(s2, l2, "attention key bias")?;
        let w = d.width;
        let mut out = vec![0f32; qkv.len() / 3];
        self.attend_all(d, (qkv, bias), &mut out);
        let &[batch, beats, _] = l1.dims() else {
            unreachable!("checked by dims")
        };
        Ok((CpuStorage::F32(out), Shape::from((batch, beats, w))))
    }

    fn bwd(
        &self,
        qkv: &Tensor,
        bias: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let dqkv = qkv.apply_op3_no_bwd(bias, &grad.contiguous()?, &AttentionGrad(*self))?;
        Ok((Some(dqkv), None))
    }
}

/// The gradient of the packed `q k v` from the output gradient, same shape as `qkv`.
struct AttentionGrad(Attention);

impl CustomOp3 for AttentionGrad {
    fn name(&self) -> &'static str {
        "fused-attention-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let op = &self.0;
        let d = op.dims(l1, l2)?;
        let qkv = values(s1, l1, "attention input")?;
        let bias = values(s2, l2, "attention key bias")?;
        let grad = values(s3, l3, "attention output gradient")?;
        if grad.len() * 3 != qkv.len() {
            bail!(
                "attention gradient {:?} for input {:?}",
                l3.dims(),
                l1.dims()
            )
        }
        let (t, w) = (d.beats, d.width);
        let mut out = vec![0f32; qkv.len()];
        out.par_chunks_mut(t * 3 * w.max(1))
            .enumerate()
            .for_each(|(item, dqkv)| {
                let qkv = &qkv[item * t * 3 * w..(item + 1) * t * 3 * w];
                let bias = &bias[item * t..(item + 1) * t];
                let g = &grad[item * t * w..(item + 1) * t * w];
                attend_item_grad(op, d, item, (qkv, bias, g), dqkv);
            });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

/// One batch item's attention: `qkv` (beats, 3·width) and its key bias in, its merged heads
/// (beats, width) written to `out`.
#[multiversion(targets = "simd")]
fn attend_item(
    op: &Attention,
    d: Dims,
    item: usize,
    (qkv, bias): (&[f32], &[f32]),
    out: &mut [f32],
) {
    let (t, w) = (d.beats, d.width);
    let mut weights = vec![0f32; t * t];
    for head in 0..op.heads {
        op.weights(d, qkv, bias, head, &mut weights);
        let (o_at, v_at) = (head * d.head_width, 2 * w + head * d.head_width);
        if t >= GEMM_FROM_BEATS {
            if op.mask.is_some() {
                for (ij, p) in weights.iter_mut().enumerate() {
                    *p *= op.factor(d.beats, item, head, ij / t, ij % t);
                }
            }
            let v = (&qkv[v_at..], 3 * w, 1);
            let dims = (t, d.head_width, t);
            small_product(dims, (&mut out[o_at..], w), (&weights, t, 1), v, 1.0);
            continue;
        }
        for i in 0..t {
            let o = &mut out[i * w + o_at..i * w + o_at + d.head_width];
            for j in 0..t {
                let p = weights[i * t + j] * op.factor(d.beats, item, head, i, j);
                let v = &qkv[j * 3 * w + v_at..j * 3 * w + v_at + d.head_width];
                add_scaled(o, p, v);
            }
        }
    }
}

/// One batch item's gradient of `qkv`, from its inputs and its output gradient `g` (beats,
/// width), written to `dqkv` (beats, 3·width).
#[multiversion(targets = "simd")]
fn attend_item_grad(
    op: &Attention,
    d: Dims,
    item: usize,
    (qkv, bias, g): (&[f32], &[f32], &[f32]),
    dqkv: &mut [f32],
) {
    let (t, w, hw) = (d.beats, d.width, d.head_width);
    let scale = 1.0 / (hw as f32).sqrt();
    let mut weights = vec![0f32; t * t];
    let mut dscores = vec![0f32; t * t];
    for head in 0..op.heads {
        op.weights(d, qkv, bias, head, &mut weights);
        let (q_at, k_at, v_at) = (head * hw, w + head * hw, 2 * w + head * hw);
        if t >= GEMM_FROM_BEATS {
            head_grad_products(
                op,
                d,
                (item, head),
                (qkv, g),
                (&mut weights, &mut dscores),
                dqkv,
            );
            continue;
        }
        let g_row = |i: usize| &g[i * w + q_at..i * w + q_at + hw];
        for i in 0..t {
            // dP_ij = (g_i · v_j) D_ij; dV_j += P_ij D_ij g_i.
            let mut row_dot = 0f32;
            for j in 0..t {
                let factor = op.factor(d.beats, item, head, i, j);
                let v = &qkv[j * 3 * w + v_at..j * 3 * w + v_at + hw];
                let dp = dot(g_row(i), v) * factor;
                let p = weights[i * t + j];
                dscores[i * t + j] = dp;
                row_dot += dp * p;
                let dv = &mut dqkv[j * 3 * w + v_at..j * 3 * w + v_at + hw];
                add_scaled(dv, p * factor, g_row(i));
            }
            for j in 0..t {
                let p = weights[i * t + j];
                dscores[i * t + j] = p * (dscores[i * t + j] - row_dot) * scale;
            }
        }
        // dQ_i = Σ_j dS_ij K_j; dK_j = Σ_i dS_ij Q_i.
        for i in 0..t {
            for j in 0..t {
                let ds = dscores[i * t + j];
                let (qi, kj) = (i * 3 * w + q_at, j * 3 * w + k_at);
                let k: &[f32] = &qkv[kj..kj + hw];
                add_scaled(&mut dqkv[qi..qi + hw], ds, k);
                let q: &[f32] = &qkv[qi..qi + hw];
                add_scaled(&mut dqkv[kj..kj + hw], ds, q);
            }
        }
    }
}

/// One head's gradient as matrix products (windows of [`GEMM_FROM_BEATS`] beats or more):
/// `weights` holds the head's softmax weights `P` on entry and `P∘D` on return; `dscores` is
/// scratch of the same size. Writes the head's columns of `dq`, `dk` and `dv` in `dqkv`.
#[inline(always)]
fn head_grad_products(
    op: &Attention,
    d: Dims,
    (item, head): (usize, usize),
    (qkv, g): (&[f32], &[f32]),
    (weights, dscores): (&mut [f32], &mut [f32]),
    dqkv: &mut [f32],
) {
    let (t, w, hw) = (d.beats, d.width, d.head_width);
    let scale = 1.0 / (hw as f32).sqrt();
    let (q_at, k_at, v_at) = (head * hw, w + head * hw, 2 * w + head * hw);
    let g_head = (&g[q_at..], w, 1);
    // dP = (g V^T)∘D.
    let v_transposed = (&qkv[v_at..], 1, 3 * w);
    small_product((t, t, hw), (dscores, t), g_head, v_transposed, 1.0);
    for (i, (dp, p)) in dscores
        .chunks_exact_mut(t)
        .zip(weights.chunks_exact_mut(t))
        .enumerate()
    {
        if op.mask.is_some() {
            for (j, dp) in dp.iter_mut().enumerate() {
                *dp *= op.factor(t, item, head, i, j);
            }
        }
        // dS = P∘(dP - rowsum(dP∘P)) s, then P becomes P∘D for dV.
        let row_dot = dot(dp, p);
        dp.iter_mut()
            .zip(p.iter())
            .for_each(|(ds, p)| *ds = p * (*ds - row_dot) * scale);
        if op.mask.is_some() {
            for (j, p) in p.iter_mut().enumerate() {
                *p *= op.factor(t, item, head, i, j);
            }
        }
    }
    // dV = (P∘D)^T g, dQ = dS K, dK = dS^T Q.
    let dims = (t, hw, t);
    let stride = 3 * w;
    small_product(
        dims,
        (&mut dqkv[v_at..], stride),
        (weights, 1, t),
        g_head,
        1.0,
    );
    let k = (&qkv[k_at..], stride, 1);
    small_product(dims, (&mut dqkv[q_at..], stride), (dscores, t, 1), k, 1.0);
    let q = (&qkv[q_at..], stride, 1);
    small_product(dims, (&mut dqkv[k_at..], stride), (dscores, 1, t), q, 1.0);
}
