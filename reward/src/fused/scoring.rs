//! Scoring on the CPU: the input projection and the encoder layers without autograd, in
//! blocks of whole sequences, one task per block (issue #19).
//!
//! Through candle's graph every operation writes a fresh buffer: a layer allocates 18·d values
//! per beat, d the model's width (layer norms, `q k v`, merged heads, projections, the hidden
//! layer before and after GELU, residual sums), and the residual adds are passes of their own.
//! Here the residual stream is one buffer updated in place: the attention's output projection
//! and the second feed-forward product accumulate straight into it after its bias is added,
//! GELU runs in place on the hidden layer and adds its bias, and the normalised rows, the
//! packed `q k v`, the merged heads and the hidden layer each have one scratch buffer per task.
//! The kernels are the graph's own ([`super::dense`], [`super::attention`],
//! [`super::layer_norm`], [`super::gelu`]), so both paths compute the same values.
//!
//! Sequences never look at each other, so each task takes its block of sequences through the
//! projection and every layer on its own thread, with single-threaded matrix products: the
//! threads meet once per pass instead of at every operation. Measured against the same pass
//! with every operation shared between the threads (2 cores, alternating in one process, 30
//! passes each), blocks of half the rows took 195 ms against 246 ms at 32 x 128 beats and 181
//! ms against 215 ms at 256 x 16 (medians); blocks of 256 to 1024 rows fell between.

use rayon::prelude::*;

use super::attention::attend_into;
use super::dense::serial_product;
use super::gelu::gelu_in_place;
use super::norm::normalise_rows;

/// The most rows one task takes: its scratch is about 9 KiB per row at the shipped width.
const MAX_BLOCK_ROWS: usize = 4096;

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

/// The encoder's output (rows, width): `inputs` (rows, inputs) through `proj`, plus the first
/// `beats` rows of `positions` for each sequence, then through `layers`; `key_bias` (rows) is 0
/// for real beats and a large negative number for padding.
pub fn encode(
    inputs: &[f32],
    key_bias: &[f32],
    (proj, positions): (Params, &[f32]),
    layers: &[LayerWeights],
    sizes: Sizes,
) -> Vec<f32> {
    let Sizes {
        rows, beats, width, ..
    } = sizes;
    let mut x = vec![0f32; rows * width];
    if rows == 0 || beats == 0 {
        return x;
    }
    let block = block_rows(rows, beats);
    let inputs_per_row = inputs.len() / rows;
    x.par_chunks_mut(block * width)
        .zip(inputs.par_chunks(block * inputs_per_row))
        .zip(key_bias.par_chunks(block))
        .for_each(|((x, inputs), key_bias)| {
            let sizes = Sizes {
                rows: key_bias.len(),
                ..sizes
            };
            project(x, inputs, proj, positions, sizes);
            let mut scratch = Scratch::new(sizes);
            for layer in layers {
                encode_layer(x, key_bias, layer, sizes, &mut scratch);
            }
        });
    x
}

/// Rows per task: whole sequences, an equal share of them per thread, at most
/// [`MAX_BLOCK_ROWS`] rows unless one sequence is longer.
fn block_rows(rows: usize, beats: usize) -> usize {
    let sequences = rows / beats;
    let share = sequences.div_ceil(rayon::current_num_threads().max(1));
    share.clamp(1, (MAX_BLOCK_ROWS / beats).max(1)) * beats
}

/// `inputs` (rows, inputs) through `proj` plus each sequence's positions, written to `x`.
fn project(x: &mut [f32], inputs: &[f32], proj: Params, positions: &[f32], sizes: Sizes) {
    let Sizes {
        rows, beats, width, ..
    } = sizes;
    let start = &positions[..beats * width];
    for (row, position) in x
        .chunks_exact_mut(width)
        .zip(start.chunks_exact(width).cycle())
    {
        for ((v, p), b) in row.iter_mut().zip(position).zip(proj.bias) {
            *v = p + b;
        }
    }
    let inputs_per_row = proj.weight.len() / width;
    serial_product(x, inputs, proj.weight, (rows, inputs_per_row, width), true);
}

/// The buffers one layer works in.
struct Scratch {
    normed: Vec<f32>,
    qkv: Vec<f32>,
    merged: Vec<f32>,
    hidden: Vec<f32>,
}

impl Scratch {
    fn new(
        Sizes {
            rows, width, ff, ..
        }: Sizes,
    ) -> Self {
        Self {
            normed: vec![0f32; rows * width],
            qkv: vec![0f32; rows * 3 * width],
            merged: vec![0f32; rows * width],
            hidden: vec![0f32; rows * ff],
        }
    }
}

/// One encoder layer over the residual stream `x` of one block, in place.
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
    let norm =
        |x: &[f32], p: Params, out: &mut [f32]| normalise_rows(x, p.weight, p.bias, out, eps);
    norm(x, layer.norm1, normed);
    fill_rows(qkv, layer.in_proj.bias);
    serial_product(
        qkv,
        normed,
        layer.in_proj.weight,
        (rows, width, 3 * width),
        true,
    );
    attend_into(qkv, key_bias, (beats, width, heads), merged);
    add_rows(x, layer.out_proj.bias);
    serial_product(x, merged, layer.out_proj.weight, (rows, width, width), true);
    norm(x, layer.norm2, normed);
    serial_product(hidden, normed, layer.ff1.weight, (rows, width, ff), false);
    gelu_in_place(hidden, layer.ff1.bias);
    add_rows(x, layer.ff2.bias);
    serial_product(x, hidden, layer.ff2.weight, (rows, ff, width), true);
}

/// Writes `row` into every row of `out`.
fn fill_rows(out: &mut [f32], row: &[f32]) {
    out.chunks_exact_mut(row.len())
        .for_each(|r| r.copy_from_slice(row));
}

/// Adds `row` to every row of `out`.
fn add_rows(out: &mut [f32], row: &[f32]) {
    for r in out.chunks_exact_mut(row.len()) {
        r.iter_mut().zip(row).for_each(|(v, b)| *v += b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_share_whole_sequences_between_the_threads() {
        let two_threads = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        two_threads.install(|| {
            assert_eq!(block_rows(32 * 128, 128), 16 * 128);
            assert_eq!(block_rows(3 * 40, 40), 2 * 40);
            assert_eq!(block_rows(1000 * 16, 16), MAX_BLOCK_ROWS);
            // A sequence longer than the cap is still one block.
            assert_eq!(block_rows(2 * 5000, 5000), 5000);
        });
    }
}
