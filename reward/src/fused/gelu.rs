//! erf-GELU, `x/2 (1 + erf(x/√2))`, forwards and backwards in one pass each.
//!
//! erf comes from Abramowitz & Stegun's 7.1.26 (absolute error at most 1.5e-7), whose
//! exponential `exp(-x²/2)` is also the Gaussian density in the derivative
//! `(1 + erf(x/√2))/2 + x φ(x)`, so the gradient costs one exponential per value.
//!
//! The kernels also take a dropout mask, applied in the same pass: [`super::dense_gelu`] runs
//! them after the feed-forward block's first product, with its dropout.

use std::mem::MaybeUninit;

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor, bail};
use multiversion::multiversion;

use super::dropout::Mask;
use super::{fresh_values, simd, values};

/// erf-GELU of every value of `x` (candle's `gelu_erf` on devices other than the CPU).
pub fn gelu(x: &Tensor) -> Result<Tensor> {
    if !x.device().is_cpu() {
        return x.gelu_erf();
    }
    x.contiguous()?.apply_op1(Gelu)
}

/// `(erf(x/√2), exp(-x²/2))`.
#[inline(always)]
fn erf_and_gaussian(x: f32) -> (f32, f32) {
    let z = x.abs() * std::f32::consts::FRAC_1_SQRT_2;
    let gaussian = simd::exp(-0.5 * x * x);
    let t = 1.0 / (1.0 + 0.327_591_1 * z);
    let poly = t
        * (0.254_829_6
            + t * (-0.284_496_74 + t * (1.421_413_7 + t * (-1.453_152 + t * 1.061_405_4))));
    ((1.0 - poly * gaussian).copysign(x), gaussian)
}

/// `1/√(2π)`.
const INV_SQRT_TAU: f32 = 0.398_942_3;

struct Gelu;

impl CustomOp1 for Gelu {
    fn name(&self) -> &'static str {
        "fused-gelu"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = values(storage, layout, "gelu input")?;
        Ok((
            CpuStorage::F32(gelu_of_all(None, x)),
            layout.shape().clone(),
        ))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let op = GeluGrad { mask: None };
        Ok(Some(arg.apply_op2_no_bwd(&grad.contiguous()?, &op)?))
    }
}

/// `grad · mask · gelu'(x)`, from `x` and the gradient of the output: [`Gelu`]'s gradient
/// without a mask, [`super::dense_gelu`]'s with its dropout mask.
pub(super) struct GeluGrad {
    pub mask: Option<Mask>,
}

impl CustomOp2 for GeluGrad {
    fn name(&self) -> &'static str {
        "fused-gelu-grad"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        gs: &CpuStorage,
        gl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = values(xs, xl, "gelu input")?;
        let g = values(gs, gl, "gelu output gradient")?;
        if x.len() != g.len() {
            bail!(
                "gelu gradient has {} values for {} inputs",
                g.len(),
                x.len()
            );
        }
        Ok((
            CpuStorage::F32(gelu_grad_of_all(self.mask.as_ref(), x, g)),
            xl.shape().clone(),
        ))
    }
}

/// erf-GELU of every value of `x`, times `mask`'s factors when there is a mask, in parallel.
pub(super) fn gelu_of_all(mask: Option<&Mask>, x: &[f32]) -> Vec<f32> {
    // SAFETY: the kernel writes every value of its chunk, its inputs sliced to the chunk.
    unsafe { fresh_values(x.len(), |start, out| gelu_values(mask, start, x, out)) }
}

/// The gradient of [`gelu_of_all`]'s input from `x` and the gradient `g` of its output (the
/// same length, checked by the caller).
fn gelu_grad_of_all(mask: Option<&Mask>, x: &[f32], g: &[f32]) -> Vec<f32> {
    // SAFETY: the kernel writes every value of its chunk, its inputs sliced to the chunk.
    unsafe {
        fresh_values(x.len(), |start, out| {
            gelu_grad_values(mask, start, (x, g), out)
        })
    }
}

/// erf-GELU of one value.
#[inline(always)]
fn gelu_of(x: f32) -> f32 {
    let (erf, _) = erf_and_gaussian(x);
    0.5 * x * (1.0 + erf)
}

/// `out[k] = gelu(x[start + k])`, times the mask's factor of `start + k` when there is a mask.
#[multiversion(targets = "simd")]
fn gelu_values(mask: Option<&Mask>, start: usize, x: &[f32], out: &mut [MaybeUninit<f32>]) {
    let x = &x[start..start + out.len()];
    match mask {
        None => {
            for (y, &x) in out.iter_mut().zip(x) {
                y.write(gelu_of(x));
            }
        }
        Some(mask) => {
            for (k, (y, &x)) in out.iter_mut().zip(x).enumerate() {
                y.write(gelu_of(x) * mask.factor(start + k));
            }
        }
    }
}

/// erf-GELU of every value of `rows` plus the `bias` of its column, in place, for rows of
/// `bias.len()` values, on this thread (scoring, where nothing reads the input afterwards).
#[multiversion(targets = "simd")]
pub(super) fn gelu_in_place(rows: &mut [f32], bias: &[f32]) {
    for row in rows.chunks_exact_mut(bias.len()) {
        for (v, b) in row.iter_mut().zip(bias) {
            *v = gelu_of(*v + b);
        }
    }
}

/// `gelu'(x)` of one value.
#[inline(always)]
fn gelu_slope(x: f32) -> f32 {
    let (erf, gaussian) = erf_and_gaussian(x);
    0.5 * (1.0 + erf) + x * INV_SQRT_TAU * gaussian
}

/// `out[k] = g[start + k] · gelu'(x[start + k])`, times the mask's factor of `start + k` when
/// there is a mask.
#[multiversion(targets = "simd")]
fn gelu_grad_values(
    mask: Option<&Mask>,
    start: usize,
    (x, g): (&[f32], &[f32]),
    out: &mut [MaybeUninit<f32>],
) {
    let at = start..start + out.len();
    let (x, g) = (&x[at.clone()], &g[at]);
    match mask {
        None => {
            for ((d, &x), &g) in out.iter_mut().zip(x).zip(g) {
                d.write(g * gelu_slope(x));
            }
        }
        Some(mask) => {
            for (k, ((d, &x), &g)) in out.iter_mut().zip(x).zip(g).enumerate() {
                d.write(g * mask.factor(start + k) * gelu_slope(x));
            }
        }
    }
}
