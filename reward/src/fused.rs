//! Fused CPU kernels for the reward transformer's hot operations (issue #19).
//!
//! Candle runs each tensor operation as its own pass over memory into a fresh buffer, and its
//! backward pass rebuilds every gradient from more of them: erf-GELU's gradient alone is a
//! dozen passes over the feed-forward activations. Here each operation is one pass forwards and
//! one backwards, with a hand-written gradient:
//!
//! - [`attention`]: multi-head attention over short windows, from the packed `q k v`
//!   projection to the merged heads, without permuting them into heads and back;
//! - [`dense`]: `x W^T + b` as one matrix product, the bias written into the destination first,
//!   and [`dense_gelu`], the feed-forward block's first layer with its GELU and dropout;
//! - [`gelu`]: erf-GELU and its derivative from one shared exponential;
//! - [`layer_norm`]: normalisation, scale and shift per row, and all three gradients in one
//!   pass;
//! - [`dropout`]: a mask regenerated from a seed instead of drawn, stored and multiplied, and
//!   [`residual_dropout`], a residual connection's sum with its branch's dropout;
//! - [`scoring`]: the same kernels chained without autograd for scoring, over buffers reused
//!   from layer to layer.
//!
//! They are candle custom ops, so candle's autograd chains them with everything else. They run
//! on the CPU only: on other devices the same functions fall back to candle's own operations,
//! which are also the reference the tests compare the kernels with (values and gradients).

mod attention;
mod dense;
mod dropout;
mod gelu;
mod norm;
pub(crate) mod scoring;
mod simd;
#[cfg(test)]
mod tests;

pub use attention::attention;
pub use dense::{dense, dense_gelu};
pub use dropout::{dropout, residual_dropout};
pub use gelu::gelu;
pub use norm::layer_norm;

use std::mem::MaybeUninit;

use candle_core::{CpuStorage, Layout, Result, Storage, Tensor, bail};
use rayon::prelude::*;

/// The values of a contiguous f32 tensor, or an error naming what was expected.
fn values<'a>(storage: &'a CpuStorage, layout: &Layout, what: &str) -> Result<&'a [f32]> {
    let Some((start, end)) = layout.contiguous_offsets() else {
        bail!(
            "{what}: expected a contiguous tensor, got strides {:?}",
            layout.stride()
        )
    };
    Ok(&storage.as_slice::<f32>()?[start..end])
}

/// Runs `f` over the values of `tensors` (f32, on the CPU, contiguous), each read-locked
/// meanwhile.
pub(crate) fn with_values<R>(
    tensors: &[&Tensor],
    f: impl FnOnce(&[&[f32]]) -> Result<R>,
) -> Result<R> {
    let guards: Vec<_> = tensors.iter().map(|t| t.storage_and_layout()).collect();
    let slices = guards
        .iter()
        .map(|(storage, layout)| match &**storage {
            Storage::Cpu(cpu) => values(cpu, layout, "scoring operand"),
            _ => bail!("the fused scoring pass runs on the CPU only"),
        })
        .collect::<Result<Vec<_>>>()?;
    f(&slices)
}

/// Rows per parallel task: enough work (about 16k values) that a task outweighs its scheduling.
fn rows_per_task(width: usize) -> usize {
    (16_384 / width.max(1)).max(1)
}

/// A new vector of `len` values written by `f(first_value, values_out)` in parallel tasks, without
/// zeroing it first (a pass over memory of its own at these sizes).
///
/// # Safety
///
/// `f` must write every value of the chunk it is given (the element-wise kernels zip it with
/// inputs sliced to exactly its length, so a short input panics instead). A panic in `f` leaves
/// the vector empty and drops it.
unsafe fn fresh_values(len: usize, f: impl Fn(usize, &mut [MaybeUninit<f32>]) + Sync) -> Vec<f32> {
    let per_task = rows_per_task(1);
    let mut out = Vec::with_capacity(len);
    out.spare_capacity_mut()[..len]
        .par_chunks_mut(per_task)
        .enumerate()
        .for_each(|(task, chunk)| f(task * per_task, chunk));
    // SAFETY: the capacity is `len`, and the tasks above wrote all `len` values (the caller's
    // promise about `f`).
    unsafe { out.set_len(len) };
    out
}

/// Runs `f(first_row, rows_out)` over `out`'s rows of `width` values in parallel tasks. With
/// `width` 1, the kernels that go value by value get `f(first_value, values_out)`.
fn for_each_rows(out: &mut [f32], width: usize, f: impl Fn(usize, &mut [f32]) + Sync) {
    let rows = rows_per_task(width);
    out.par_chunks_mut(rows * width)
        .enumerate()
        .for_each(|(task, chunk)| f(task * rows, chunk));
}
