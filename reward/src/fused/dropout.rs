//! Dropout as one pass each way, its mask drawn from a counter-based hash instead of stored.
//!
//! Candle's dropout draws a uniform tensor with a ChaCha generator on one thread, compares,
//! converts and multiplies: five passes and the slowest random numbers it has. Here value `i`
//! is kept when `splitmix64(seed + i)` clears the drop probability, so the backward pass
//! regenerates the same mask from the seed and nothing but the seed is kept between them.

use std::mem::MaybeUninit;

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor, bail};
use multiversion::multiversion;

use super::{fresh_values, values};

/// Zeroes each value of `x` with probability `p` and scales the rest by `1/(1-p)`, with a fresh
/// mask on every call (candle's dropout on devices other than the CPU).
pub fn dropout(x: &Tensor, p: f32) -> Result<Tensor> {
    if p <= 0.0 {
        return Ok(x.clone());
    }
    if !x.device().is_cpu() || p >= 1.0 {
        return candle_nn::ops::dropout(x, p);
    }
    let seed = rand::random::<u64>();
    x.contiguous()?.apply_op1(Dropout(Mask::new(p, seed)))
}

/// `x + dropout(y, p)`: a residual connection with its branch's dropout, in one pass each way
/// and one node of the graph (a separate dropout would be one more activation whose gradient
/// candle accumulates through a zeroed buffer and an add).
pub fn residual_dropout(x: &Tensor, y: &Tensor, p: f32) -> Result<Tensor> {
    if p <= 0.0 || p >= 1.0 || !x.device().is_cpu() {
        return x + dropout(y, p)?;
    }
    Residual(Mask::new(p, rand::random::<u64>())).apply(x, y)
}

/// Which values a dropout keeps: value `i` of a tensor is kept when its 24-bit hash under
/// `seed` reaches `threshold`. Also drawn by [`super::attention`] over its weights.
#[derive(Clone, Copy)]
pub(super) struct Mask {
    threshold: u32,
    scale: f32,
    seed: u64,
}

impl Mask {
    pub(super) fn new(p: f32, seed: u64) -> Self {
        Self {
            threshold: (p as f64 * (1u64 << 24) as f64) as u32,
            scale: 1.0 / (1.0 - p),
            seed,
        }
    }

    /// The multiplier of value `i`: 0 or `1/(1-p)`.
    #[inline(always)]
    pub(super) fn factor(&self, i: usize) -> f32 {
        let mut z = self
            .seed
            .wrapping_add((i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        if ((z >> 40) as u32) < self.threshold {
            0.0
        } else {
            self.scale
        }
    }

    /// `out[i] = x[i] · factor(i)`.
    fn apply(&self, x: &[f32]) -> Vec<f32> {
        // SAFETY: the kernel writes every value of its chunk, its inputs sliced to the chunk.
        unsafe { fresh_values(x.len(), |start, out| apply_from(self, start, x, out)) }
    }
}

/// `out[k] = x[start + k] · factor(start + k)`. Compiled for the wider instruction sets too:
/// the hash's 64-bit products are one instruction per lane with AVX-512 and four without.
#[multiversion(targets = "simd")]
fn apply_from(mask: &Mask, start: usize, x: &[f32], out: &mut [MaybeUninit<f32>]) {
    let x = &x[start..start + out.len()];
    for (k, (y, &v)) in out.iter_mut().zip(x).enumerate() {
        y.write(v * mask.factor(start + k));
    }
}

/// Dropout as a custom op: the mask applied forwards, and to the gradient backwards.
struct Dropout(Mask);

impl CustomOp1 for Dropout {
    fn name(&self) -> &'static str {
        "fused-dropout"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = values(storage, layout, "dropout input")?;
        Ok((CpuStorage::F32(self.0.apply(x)), layout.shape().clone()))
    }

    /// The same mask applied to the gradient.
    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(grad.contiguous()?.apply_op1_no_bwd(&Dropout(self.0))?))
    }
}

/// `x + y · mask` as a custom op; backwards the gradient passes to `x` as it is and to `y`
/// through the mask.
pub(super) struct Residual(pub Mask);

impl Residual {
    pub(super) fn apply(self, x: &Tensor, y: &Tensor) -> Result<Tensor> {
        x.contiguous()?.apply_op2(&y.contiguous()?, self)
    }
}

impl CustomOp2 for Residual {
    fn name(&self) -> &'static str {
        "fused-residual-dropout"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ys: &CpuStorage,
        yl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = values(xs, xl, "residual input")?;
        let y = values(ys, yl, "residual branch")?;
        if xl.dims() != yl.dims() {
            bail!(
                "residual connection: the input {:?} and the branch {:?} differ in shape",
                xl.dims(),
                yl.dims()
            );
        }
        // SAFETY: the kernel writes every value of its chunk, its inputs sliced to the chunk.
        let out =
            unsafe { fresh_values(x.len(), |start, out| add_from(&self.0, start, (x, y), out)) };
        Ok((CpuStorage::F32(out), xl.shape().clone()))
    }

    fn bwd(
        &self,
        _x: &Tensor,
        _y: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let branch = grad.contiguous()?.apply_op1_no_bwd(&Dropout(self.0))?;
        Ok((Some(grad.clone()), Some(branch)))
    }
}

/// `out[k] = x[start + k] + y[start + k] · factor(start + k)`.
#[multiversion(targets = "simd")]
fn add_from(mask: &Mask, start: usize, (x, y): (&[f32], &[f32]), out: &mut [MaybeUninit<f32>]) {
    let at = start..start + out.len();
    for (k, ((o, &x), &y)) in out.iter_mut().zip(&x[at.clone()]).zip(&y[at]).enumerate() {
        o.write(x + y * mask.factor(start + k));
    }
}
