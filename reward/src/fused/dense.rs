//! A dense layer, `x W^T + b`, as one matrix product whose destination starts as the bias
//! (no separate broadcast add forwards, no broadcast reduction backwards).
//!
//! The feed-forward block's first layer also takes its erf-GELU and dropout ([`dense_gelu`]):
//! the op keeps the values before GELU for its backward pass, so neither they nor a separate
//! dropout's output (activations of the model's widest layer) become nodes of the graph, whose
//! gradients candle would accumulate through a zeroed buffer and an add each.
//!
//! The product runs on the `gemm` crate, the one candle's own matmul uses. Backwards, the
//! gradient of `x` is computed only when something before the layer needs it (the input
//! projection's raw features do not).

use std::sync::OnceLock;

use candle_core::{CpuStorage, CustomOp1, CustomOp3, Device, Layout, Result, Shape, Tensor, bail};
use rayon::prelude::*;

use super::dropout::Mask;
use super::gelu::{GeluGrad, gelu_of_all};
use super::{rows_per_task, values};

/// `x W^T + b` over `x`'s last dimension, for `W` (outputs, inputs) and `b` (outputs); leading
/// dimensions are the rows of one product. On the CPU the op takes and gives the leading
/// dimensions as they are: reshaping around it would add graph nodes whose gradients candle
/// accumulates through a zeroed buffer and an add each.
pub fn dense(x: &Tensor, weight: &Tensor, bias: &Tensor) -> Result<Tensor> {
    if x.device().is_cpu() {
        return Dense::plain().apply(x, weight, bias);
    }
    let dims = x.dims();
    let inputs = *dims.last().unwrap_or(&0);
    let mut out_dims = dims.to_vec();
    if let Some(last) = out_dims.last_mut() {
        *last = bias.dim(0)?;
    }
    x.reshape((x.elem_count() / inputs.max(1), inputs))?
        .matmul(&weight.t()?)?
        .broadcast_add(bias)?
        .reshape(out_dims)
}

/// `gelu(x W^T + b)`, then dropout with probability `p` (a fresh mask on every call; none when
/// `p` is 0): [`dense`], [`super::gelu`] and [`super::dropout`] as one op on the CPU.
pub fn dense_gelu(x: &Tensor, weight: &Tensor, bias: &Tensor, p: f32) -> Result<Tensor> {
    if !x.device().is_cpu() || p >= 1.0 {
        return super::dropout(&dense(x, weight, bias)?.gelu_erf()?, p);
    }
    let mask = (p > 0.0).then(|| Mask::new(p, rand::random::<u64>()));
    Dense::with_gelu(mask).apply(x, weight, bias)
}

/// The dense layer as a custom op, with GELU and dropout after it when `gelu` is set.
pub(super) struct Dense {
    gelu: Option<GeluAfter>,
}

/// GELU after the product: its dropout mask, and the (rows, outputs) values before it, kept for
/// backwards.
struct GeluAfter {
    mask: Option<Mask>,
    before: OnceLock<Tensor>,
}

impl Dense {
    fn plain() -> Self {
        Self { gelu: None }
    }

    pub(super) fn with_gelu(mask: Option<Mask>) -> Self {
        let before = OnceLock::new();
        Self {
            gelu: Some(GeluAfter { mask, before }),
        }
    }

    pub(super) fn apply(self, x: &Tensor, weight: &Tensor, bias: &Tensor) -> Result<Tensor> {
        x.contiguous()?
            .apply_op3(&weight.contiguous()?, &bias.contiguous()?, self)
    }
}

/// `out += x W^T` for `out` (rows, outputs), `x` (rows, inputs) and `weight` (outputs, inputs),
/// all contiguous and row-major: one GEMM on candle's thread count.
pub(super) fn accumulate_product(
    out: &mut [f32],
    x: &[f32],
    weight: &[f32],
    dims: (usize, usize, usize),
) {
    let parallelism = match candle_core::utils::get_num_threads() {
        0 | 1 => gemm::Parallelism::None,
        n => gemm::Parallelism::Rayon(n),
    };
    product(out, x, weight, dims, true, parallelism);
}

/// `out = x W^T`, plus what `out` held when `accumulate`, on this thread alone (for callers
/// that run one task per block of rows).
pub(super) fn serial_product(
    out: &mut [f32],
    x: &[f32],
    weight: &[f32],
    dims: (usize, usize, usize),
    accumulate: bool,
) {
    product(out, x, weight, dims, accumulate, gemm::Parallelism::None);
}

/// `out = x W^T`, plus what `out` held when `accumulate`.
fn product(
    out: &mut [f32],
    x: &[f32],
    weight: &[f32],
    (rows, inputs, outputs): (usize, usize, usize),
    accumulate: bool,
    parallelism: gemm::Parallelism,
) {
    assert!(
        out.len() == rows * outputs && x.len() == rows * inputs && weight.len() == outputs * inputs,
        "dense product: operands do not fit {rows} x {inputs} -> {outputs}"
    );
    if rows == 0 || inputs == 0 || outputs == 0 {
        return;
    }
    // SAFETY: the lengths are checked above; `out` is borrowed mutably, so this call is its only
    // writer. The right-hand side is W^T, read through W's strides.
    unsafe {
        gemm::gemm(
            rows,
            outputs,
            inputs,
            out.as_mut_ptr(),
            1,
            outputs as isize,
            accumulate,
            x.as_ptr(),
            1,
            inputs as isize,
            weight.as_ptr(),
            inputs as isize,
            1,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

impl CustomOp3 for Dense {
    fn name(&self) -> &'static str {
        "fused-dense"
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
        let x = values(s1, l1, "dense input")?;
        let weight = values(s2, l2, "dense weight")?;
        let bias = values(s3, l3, "dense bias")?;
        let (Some((&inputs, leading)), &[outputs, weight_inputs]) =
            (l1.dims().split_last(), l2.dims())
        else {
            bail!(
                "dense layer: expected an (..., inputs) input and an (outputs, inputs) weight, got {:?} and {:?}",
                l1.dims(),
                l2.dims()
            )
        };
        let rows: usize = leading.iter().product();
        if weight_inputs != inputs || bias.len() != outputs {
            bail!(
                "dense layer: input {:?}, weight {:?} and bias {:?} do not fit together",
                l1.dims(),
                l2.dims(),
                l3.dims()
            )
        }
        let mut out = Vec::with_capacity(rows * outputs);
        for _ in 0..rows {
            out.extend_from_slice(bias);
        }
        accumulate_product(&mut out, x, weight, (rows, inputs, outputs));
        if let Some(gelu) = &self.gelu {
            let activated = gelu_of_all(gelu.mask.as_ref(), &out);
            let before = Tensor::from_vec(out, (rows, outputs), &Device::Cpu)?;
            if gelu.before.set(before).is_err() {
                bail!("a dense + GELU op ran forwards twice");
            }
            out = activated;
        }
        let mut out_dims = leading.to_vec();
        out_dims.push(outputs);
        Ok((CpuStorage::F32(out), Shape::from(out_dims)))
    }

    fn bwd(
        &self,
        x: &Tensor,
        weight: &Tensor,
        _bias: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (outputs, inputs) = weight.dims2()?;
        let rows = grad.elem_count() / outputs.max(1);
        let grad = match &self.gelu {
            None => grad.reshape((rows, outputs))?,
            Some(gelu) => {
                let Some(before) = gelu.before.get() else {
                    bail!("a dense + GELU op ran backwards before forwards");
                };
                let op = GeluGrad { mask: gelu.mask };
                before.apply_op2_no_bwd(&grad.contiguous()?, &op)?
            }
        };
        let dx = match x.track_op() {
            true => Some(grad.matmul(weight)?.reshape(x.shape())?),
            false => None,
        };
        let dweight = grad.t()?.matmul(&x.reshape((rows, inputs))?)?;
        let dbias = grad.apply_op1_no_bwd(&ColumnSums)?;
        Ok((dx, Some(dweight), Some(dbias)))
    }
}

/// The sum of each column of a (rows, columns) matrix: the bias gradient. Candle's `sum(0)`
/// reduces down the columns with a stride and took a tenth of a training step.
struct ColumnSums;

impl CustomOp1 for ColumnSums {
    fn name(&self) -> &'static str {
        "fused-column-sums"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let values = values(storage, layout, "dense output gradient")?;
        let &[_, columns] = layout.dims() else {
            bail!("column sums of a matrix, got shape {:?}", layout.dims())
        };
        let add = |mut sums: Vec<f32>, rows: &[f32]| {
            for row in rows.chunks_exact(columns.max(1)) {
                sums.iter_mut().zip(row).for_each(|(s, v)| *s += v);
            }
            sums
        };
        let sums = values
            .par_chunks(rows_per_task(columns) * columns.max(1))
            .fold(|| vec![0f32; columns], add)
            .reduce(
                || vec![0f32; columns],
                |a, b| a.into_iter().zip(b).map(|(a, b)| a + b).collect(),
            );
        Ok((CpuStorage::F32(sums), Shape::from(columns)))
    }
}
