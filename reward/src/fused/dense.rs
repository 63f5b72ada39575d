//! A dense layer, `x W^T + b`, as one matrix product whose destination starts as the bias
//! (no separate broadcast add forwards, no broadcast reduction backwards).
//!
//! The product runs on the `gemm` crate, the one candle's own matmul uses. Backwards, the
//! gradient of `x` is computed only when something before the layer needs it (the input
//! projection's raw features do not).

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor, bail};

use super::values;

/// `x W^T + b` over `x`'s last dimension, for `W` (outputs, inputs) and `b` (outputs); leading
/// dimensions are flattened into the rows of one product.
pub fn dense(x: &Tensor, weight: &Tensor, bias: &Tensor) -> Result<Tensor> {
    let dims = x.dims();
    let inputs = *dims.last().unwrap_or(&0);
    let rows = x.elem_count() / inputs.max(1);
    let mut out_dims = dims.to_vec();
    if let Some(last) = out_dims.last_mut() {
        *last = bias.dim(0)?;
    }
    let flat = x.reshape((rows, inputs))?;
    let y = if x.device().is_cpu() {
        flat.contiguous()?
            .apply_op3(&weight.contiguous()?, &bias.contiguous()?, Dense)?
    } else {
        flat.matmul(&weight.t()?)?.broadcast_add(bias)?
    };
    y.reshape(out_dims)
}

struct Dense;

fn parallelism() -> gemm::Parallelism {
    match candle_core::utils::get_num_threads() {
        0 | 1 => gemm::Parallelism::None,
        n => gemm::Parallelism::Rayon(n),
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
        let (&[rows, inputs], &[outputs, weight_inputs]) = (l1.dims(), l2.dims()) else {
            bail!(
                "dense layer: expected a (rows, inputs) input and an (outputs, inputs) weight, got {:?} and {:?}",
                l1.dims(),
                l2.dims()
            )
        };
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
        if rows > 0 && inputs > 0 && outputs > 0 {
            // SAFETY: `out` is rows x outputs, `x` rows x inputs and `weight` outputs x inputs,
            // all contiguous and row-major as the strides say; `out` is written by this call
            // only. The right-hand side is W^T, read through W's strides.
            unsafe {
                gemm::gemm(
                    rows,
                    outputs,
                    inputs,
                    out.as_mut_ptr(),
                    1,
                    outputs as isize,
                    true,
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
                    parallelism(),
                );
            }
        }
        Ok((CpuStorage::F32(out), Shape::from((rows, outputs))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        weight: &Tensor,
        _bias: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let dx = match x.track_op() {
            true => Some(grad.matmul(weight)?),
            false => None,
        };
        let dweight = grad.t()?.matmul(x)?;
        let dbias = grad.sum(0)?;
        Ok((dx, Some(dweight), Some(dbias)))
    }
}
