//! Scoring on the CPU: the input projection and the encoder layers without autograd, over a few
//! buffers reused from layer to layer (issue #19).
//!
//! Through candle's graph every operation writes a fresh buffer: a layer allocates 18·d values
//! per beat, d the model's width (layer norms, `q k v`, merged heads, projections, the hidden
//! layer before and after GELU, residual sums), and the residual adds are passes of their own.
//! Here the residual stream is one buffer updated in place: the attention's output projection
//! and the second feed-forward product accumulate straight into it after its bias is added,
//! GELU runs in place on the hidden layer and adds its bias, and the normalised rows, the
//! packed `q k v`, the merged heads and the hidden layer each have one scratch buffer for the
//! whole pass. The kernels are the graph's own ([`super::dense`], [`super::attention`],
//! [`super::layer_norm`], [`super::gelu`]), so both paths compute the same values.

use super::attention::attend_into;
use super::dense::{accumulate_product, write_product};
use super::for_each_rows;
use super::gelu::gelu_in_place;
use super::norm::normalise_rows;

/// A weight and a bias: a dense layer's (outputs, inputs) matrix and (outputs) bias, or a layer
/// norm's scale and shift.
#[derive(Clone, Copy)]
pub struct Params<'a> {
    pub weight: &'a [f32],
    pub bias: &'a [f32],
}

/// One pre-norm encoder layer's weights, as [`crate::layers::EncoderLayer`] holds them.
#[derive(Clone, Copy)]
pub struct LayerWeights<'a> {
    pub norm1: Params<'a>,
    pub in_proj: Params<'a>,
    pub out_proj: Params<'a>,
    pub norm2: Params<'a>,
    pub ff1: Params<'a>,
    pub ff2: Params<'a>,
}

/// The sizes of one scoring pass.
#[derive(Clone, Copy, Debug)]
pub struct Sizes {
    /// Sequences times beats: the rows of every matrix.
    pub rows: usize,
    pub beats: usize,
    pub width: usize,
    pub ff: usize,
    pub heads: usize,
    pub eps: f32,
}

/// The projected inputs plus positions: `inputs` (rows, inputs) through `proj`, with the first
/// `beats` rows of `positions` added to each sequence. Returns the residual stream
/// (rows, width).
pub fn project(inputs: &[f32], proj: Params, positions: &[f32], sizes: Sizes) -> Vec<f32> {
    let Sizes {
        rows, beats, width, ..
    } = sizes;
    let mut x = vec![0f32; rows * width];
    let start = &positions[..beats * width];
    for_each_rows(&mut x, width, |first, out| {
        for (i, row) in out.chunks_exact_mut(width).enumerate() {
            let at = (first + i) % beats * width;
            for ((v, p), b) in row.iter_mut().zip(&start[at..at + width]).zip(proj.bias) {
                *v = p + b;
            }
        }
    });
    let inputs_per_row = proj.weight.len() / width;
    accumulate_product(&mut x, inputs, proj.weight, (rows, inputs_per_row, width));
    x
}

/// Runs `layers` over the residual stream `x` (rows, width) in place; `key_bias` (rows) is 0
/// for real beats and a large negative number for padding.
///
/// All rows go through each layer together. Taking a few sequences at a time through all the
/// layers (so that the buffers stay cached), with the products either shared between the
/// threads or one task per thread, measured no faster on 2 cores, within the machine's noise.
pub fn encode(x: &mut [f32], key_bias: &[f32], layers: &[LayerWeights], sizes: Sizes) {
    let Sizes {
        rows, width, ff, ..
    } = sizes;
    let mut scratch = Scratch {
        normed: vec![0f32; rows * width],
        qkv: vec![0f32; rows * 3 * width],
        merged: vec![0f32; rows * width],
        hidden: vec![0f32; rows * ff],
    };
    for layer in layers {
        encode_layer(x, key_bias, layer, sizes, &mut scratch);
    }
}

/// The buffers one layer works in.
struct Scratch {
    normed: Vec<f32>,
    qkv: Vec<f32>,
    merged: Vec<f32>,
    hidden: Vec<f32>,
}

/// One encoder layer over the residual stream `x`, in place.
fn encode_layer(
    x: &mut [f32],
    key_bias: &[f32],
    layer: &LayerWeights,
    sizes: Sizes,
    scratch: &mut Scratch,
) {
    let Sizes {
        rows,
        beats,
        width,
        ff,
        heads,
        eps,
    } = sizes;
    let Scratch {
        normed,
        qkv,
        merged,
        hidden,
    } = scratch;
    normalise(x, layer.norm1, normed, eps);
    fill_rows(qkv, layer.in_proj.bias);
    accumulate_product(qkv, normed, layer.in_proj.weight, (rows, width, 3 * width));
    attend_into(qkv, key_bias, (beats, width, heads), merged);
    add_rows(x, layer.out_proj.bias);
    accumulate_product(x, merged, layer.out_proj.weight, (rows, width, width));
    normalise(x, layer.norm2, normed, eps);
    write_product(hidden, normed, layer.ff1.weight, (rows, width, ff));
    gelu_in_place(hidden, layer.ff1.bias);
    add_rows(x, layer.ff2.bias);
    accumulate_product(x, hidden, layer.ff2.weight, (rows, ff, width));
}

/// Layer norm of every row of `x` into `out`.
fn normalise(x: &[f32], norm: Params, out: &mut [f32], eps: f32) {
    let width = norm.weight.len();
    for_each_rows(out, width, |first, out| {
        let x = &x[first * width..first * width + out.len()];
        normalise_rows(x, norm.weight, norm.bias, out, eps);
    });
}

/// Writes `row` into every row of `out`.
fn fill_rows(out: &mut [f32], row: &[f32]) {
    for_each_rows(out, row.len(), |_, out| {
        out.chunks_exact_mut(row.len())
            .for_each(|r| r.copy_from_slice(row));
    });
}

/// Adds `row` to every row of `out`.
fn add_rows(out: &mut [f32], row: &[f32]) {
    for_each_rows(out, row.len(), |_, out| {
        for r in out.chunks_exact_mut(row.len()) {
            r.iter_mut().zip(row).for_each(|(v, b)| *v += b);
        }
    });
}
