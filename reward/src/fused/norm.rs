//! Layer norm over the last dimension, `(x - mean) / √(var + eps) · γ + β`, forwards in one
//! pass and backwards in one pass that yields the gradients of `x`, `γ` and `β` together.
//!
//! Backwards, each row's mean and deviation are recomputed from `x` (cheaper than storing them)
//! and, with `x̂` the normalised row and `d = g γ`:
//! `dx = (d - mean(d) - x̂ mean(d x̂)) / σ`, `dγ = Σ_rows g x̂`, `dβ = Σ_rows g`.

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor, bail};
use multiversion::multiversion;
use rayon::prelude::*;

use super::{for_each_rows, rows_per_task, simd, values};

/// Layer norm of `x` over its last dimension with scale `weight` and shift `bias` (candle's
/// differentiable `layer_norm_slow` on devices other than the CPU).
pub fn layer_norm(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f32) -> Result<Tensor> {
    if !x.device().is_cpu() {
        return candle_nn::ops::layer_norm_slow(x, weight, bias, eps);
    }
    x.contiguous()?.apply_op3(
        &weight.contiguous()?,
        &bias.contiguous()?,
        LayerNorm { eps },
    )
}

struct LayerNorm {
    eps: f32,
}

/// A row's mean and `1/√(var + eps)`.
#[inline(always)]
fn moments(row: &[f32], eps: f32) -> (f32, f32) {
    let n = row.len() as f32;
    let mean = simd::sum(row) / n;
    let var = simd::squared_deviation(row, mean) / n;
    (mean, 1.0 / (var + eps).sqrt())
}

/// The three operands of a layer norm kernel: the input, the scale, and a third of the input's
/// or the scale's size.
struct Operands<'a> {
    x: &'a [f32],
    weight: &'a [f32],
    other: &'a [f32],
    width: usize,
}

/// The three inputs as slices, checked against each other.
fn operands<'a>(
    (s1, l1): (&'a CpuStorage, &Layout),
    (s2, l2): (&'a CpuStorage, &Layout),
    (s3, l3): (&'a CpuStorage, &Layout),
    third: &str,
) -> Result<Operands<'a>> {
    let x = values(s1, l1, "layer norm input")?;
    let weight = values(s2, l2, "layer norm scale")?;
    let other = values(s3, l3, third)?;
    let width = weight.len();
    if width == 0 || l1.dims().last() != Some(&width) {
        bail!(
            "layer norm over {width} values per row; the input has shape {:?}",
            l1.dims()
        )
    }
    Ok(Operands {
        x,
        weight,
        other,
        width,
    })
}

impl CustomOp3 for LayerNorm {
    fn name(&self) -> &'static str {
        "fused-layer-norm"
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
        let Operands {
            x,
            weight,
            other: bias,
            width,
        } = operands((s1, l1), (s2, l2), (s3, l3), "layer norm shift")?;
        if bias.len() != width {
            bail!("layer norm shift has {} values for {width}", bias.len())
        }
        let mut out = vec![0f32; x.len()];
        for_each_rows(&mut out, width, |first, out| {
            let x = &x[first * width..first * width + out.len()];
            normalise_rows(x, weight, bias, out, self.eps);
        });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        weight: &Tensor,
        _bias: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let width = weight.elem_count();
        let rows = x.elem_count() / width;
        let all = x.apply_op3_no_bwd(
            weight,
            &grad.contiguous()?,
            &LayerNormGrad { eps: self.eps },
        )?;
        let dx = all.narrow(0, 0, rows)?.reshape(x.shape())?;
        let dweight = all.get(rows)?;
        let dbias = all.get(rows + 1)?;
        Ok((Some(dx), Some(dweight), Some(dbias)))
    }
}

/// The gradients of a layer norm as one (rows + 2, width) tensor: the rows of `dx`, then `dγ`
/// and `dβ`.
struct LayerNormGrad {
    eps: f32,
}

impl CustomOp3 for LayerNormGrad {
    fn name(&self) -> &'static str {
        "fused-layer-norm-grad"
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
        let Operands {
            x,
            weight,
            other: grad,
            width,
        } = operands((s1, l1), (s2, l2), (s3, l3), "layer norm output gradient")?;
        if grad.len() != x.len() {
            bail!(
                "layer norm gradient has {} values for {}",
                grad.len(),
                x.len()
            )
        }
        let rows = x.len() / width;
        let mut out = vec![0f32; (rows + 2) * width];
        let (dx, sums) = out.split_at_mut(rows * width);
        let per_task = rows_per_task(width);
        // Each task writes its rows of dx and returns its share of dγ and dβ.
        let partials = dx
            .par_chunks_mut(per_task * width)
            .enumerate()
            .map(|(task, dx)| {
                let mut partial = vec![0f32; 2 * width];
                let at = task * per_task * width..task * per_task * width + dx.len();
                let rows = Rows {
                    x: &x[at.clone()],
                    grad: &grad[at],
                    weight,
                };
                norm_grad_rows(rows, dx, &mut partial, self.eps);
                partial
            })
            .collect::<Vec<_>>();
        for partial in partials {
            for (sum, p) in sums.iter_mut().zip(partial) {
                *sum += p;
            }
        }
        Ok((CpuStorage::F32(out), Shape::from((rows + 2, width))))
    }
}

#[multiversion(targets = "simd")]
pub(super) fn normalise_rows(x: &[f32], weight: &[f32], bias: &[f32], out: &mut [f32], eps: f32) {
    let width = weight.len();
    for (row, y) in x.chunks_exact(width).zip(out.chunks_exact_mut(width)) {
        let (mean, inv_std) = moments(row, eps);
        for (((y, &v), &w), &b) in y.iter_mut().zip(row).zip(weight).zip(bias) {
            *y = (v - mean) * inv_std * w + b;
        }
    }
}

/// Rows of a layer norm's input and output gradient, with its scale.
#[derive(Clone, Copy)]
struct Rows<'a> {
    x: &'a [f32],
    grad: &'a [f32],
    weight: &'a [f32],
}

/// Writes the rows' `dx` and adds their share of `dγ` and `dβ` to `partial` (`dγ` then `dβ`).
#[multiversion(targets = "simd")]
fn norm_grad_rows(rows: Rows, dx: &mut [f32], partial: &mut [f32], eps: f32) {
    let width = rows.weight.len();
    let (dweight, dbias) = partial.split_at_mut(width);
    let (mut d, mut xhat) = (vec![0f32; width], vec![0f32; width]);
    let pairs = rows
        .x
        .chunks_exact(width)
        .zip(rows.grad.chunks_exact(width));
    for ((row, g), dx) in pairs.zip(dx.chunks_exact_mut(width)) {
        let (mean, inv_std) = moments(row, eps);
        for k in 0..width {
            xhat[k] = (row[k] - mean) * inv_std;
            d[k] = g[k] * rows.weight[k];
            dweight[k] += g[k] * xhat[k];
            dbias[k] += g[k];
        }
        let mean_d = simd::sum(&d) / width as f32;
        let mean_dx = simd::dot(&d, &xhat) / width as f32;
        for k in 0..width {
            dx[k] = (d[k] - mean_d - xhat[k] * mean_dx) * inv_std;
        }
    }
}
