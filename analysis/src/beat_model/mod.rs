//! The learned beat and downbeat activation: a small temporal convolutional network over the
//! front end's log-mel frames that says, for every frame, how likely a beat and a downbeat
//! start there.
//!
//! The method follows the TCN beat trackers of Davies & Böck ("Temporal convolutional networks
//! for musical audio beat tracking", EUSIPCO 2019) and Böck & Davies ("Deconstruct, analyse,
//! reconstruct", ISMIR 2020): a convolutional stem over the spectrum, then residual blocks of
//! dilated convolutions whose receptive field doubles block by block, and a per-frame head with
//! two outputs (beat, downbeat). Unlike those, every convolution here has three taps placed so
//! that the network looks only a fixed, short time ahead ([`BeatModelConfig::look_ahead`]):
//! blocks with small dilations are centred (`t - d, t, t + d`), larger ones causal
//! (`t - 2d, t - d, t`). So the same weights run offline over a whole track and causally in the
//! plugin, where the look-ahead is latency of the analysis, never of the audio.
//!
//! - [`BeatModelConfig`]: the architecture, stored with the weights.
//! - [`BeatModel`]: checked weights in plain `f32` arrays and the hand-written inference
//!   ([`BeatModel::activations`] for a whole track, [`ActivationStream`] frame by frame with no
//!   allocation after construction). Analysis never calls candle.
//! - The same network as a candle graph, for training (`trainer beats`), is
//!   `cutscore_training::beat_net`; a parity test there checks both give the same activations.
//! - [`file`](mod@file): `.safetensors` files with metadata, and the shipped model.

pub mod file;
mod stream;

use serde::{Deserialize, Serialize};

pub use file::{BeatModelError, BeatModelInfo};
pub use stream::ActivationStream;

use super::frontend::{Frame, N_MELS};

/// Inputs per frame: the normalised log-mel spectrum of [`Frame::mel`].
pub const INPUT_BANDS: usize = N_MELS;
/// Taps of every convolution.
pub const TAPS: usize = 3;
/// Outputs per frame: beat and downbeat logits.
pub const OUTPUTS: usize = 2;

/// The network's shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BeatModelConfig {
    /// Channels of the stem and of every block.
    pub channels: usize,
    /// Dilation of each residual block, in frames.
    pub dilations: Vec<usize>,
    /// Blocks whose dilation is at most this are centred (they look `d` frames ahead); the
    /// others are causal.
    pub centred_up_to: usize,
    /// Dropout after each block's convolution while training (never used in inference).
    pub dropout: f32,
}

impl Default for BeatModelConfig {
    fn default() -> Self {
        Self {
            channels: 64,
            dilations: vec![1, 2, 4, 8, 16, 32, 64, 128, 256],
            centred_up_to: 8,
            dropout: 0.1,
        }
    }
}

impl BeatModelConfig {
    /// Checks the shape: at least one channel and block, dilations from 1 to 4096, dropout in
    /// `[0, 1)`.
    pub fn validate(&self) -> Result<(), BeatModelError> {
        let bad = |reason: String| Err(BeatModelError::Config(reason));
        if !(1..=512).contains(&self.channels) {
            return bad(format!("{} channels; expected 1 to 512", self.channels));
        }
        if self.dilations.is_empty() || self.dilations.len() > 24 {
            return bad(format!("{} blocks; expected 1 to 24", self.dilations.len()));
        }
        if let Some(d) = self.dilations.iter().find(|d| !(1..=4096).contains(*d)) {
            return bad(format!("dilation {d}; expected 1 to 4096"));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return bad(format!("dropout {}; expected 0 to below 1", self.dropout));
        }
        Ok(())
    }

    /// Frame offsets of the stem's taps.
    pub fn stem_offsets(&self) -> [isize; TAPS] {
        [-1, 0, 1]
    }

    /// Frame offsets of the taps of a block with dilation `d`.
    pub fn block_offsets(&self, d: usize) -> [isize; TAPS] {
        let d = d as isize;
        if d as usize <= self.centred_up_to {
            [-d, 0, d]
        } else {
            [-2 * d, -d, 0]
        }
    }

    /// Frames the network looks ahead: its output for frame `t` needs input up to
    /// `t + look_ahead()`.
    pub fn look_ahead(&self) -> usize {
        1 + self
            .dilations
            .iter()
            .filter(|&&d| d <= self.centred_up_to)
            .sum::<usize>()
    }

    /// Frames of past context that reach an output.
    pub fn receptive_past(&self) -> usize {
        let offsets = std::iter::once(self.stem_offsets())
            .chain(self.dilations.iter().map(|&d| self.block_offsets(d)));
        offsets.map(|o| (-o[0]).max(0) as usize).sum()
    }

    /// Trainable parameters.
    pub fn parameters(&self) -> usize {
        let c = self.channels;
        let stem = c * TAPS * INPUT_BANDS + c;
        let block = c * TAPS * c + c + c * c + c;
        stem + block * self.dilations.len() + OUTPUTS * c + OUTPUTS
    }
}

/// Beat and downbeat probability of one frame.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Activation {
    /// Probability that a beat (downbeats included) starts in this frame.
    pub beat: f32,
    /// Probability that a downbeat starts in this frame.
    pub downbeat: f32,
}

impl Activation {
    fn from_logits(logits: [f32; OUTPUTS]) -> Self {
        Self {
            beat: sigmoid(logits[0]),
            downbeat: sigmoid(logits[1]),
        }
    }
}

/// The logistic function, from log-odds to a probability.
pub(crate) fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// The exponential linear unit (alpha 1), as candle's `elu(1.0)`.
pub(crate) fn elu(x: f32) -> f32 {
    if x >= 0.0 { x } else { x.exp() - 1.0 }
}

/// One three-tap convolution (or, with one tap, a 1x1 projection): `out = bias + W · taps`,
/// `W` row-major `[outputs, taps * inputs]`, tap-major within a row (the candle graph
/// concatenates the shifted inputs on the channel axis in tap order).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Conv {
    pub outputs: usize,
    pub inputs: usize,
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
}

impl Conv {
    /// `out = bias + W · x` for the concatenated taps `x` (length `weight.len() / outputs`).
    pub fn apply(&self, x: &[f32], out: &mut [f32]) {
        let width = x.len();
        debug_assert_eq!(self.weight.len(), self.outputs * width);
        for (o, (row, b)) in self.weight.chunks_exact(width).zip(&self.bias).enumerate() {
            out[o] = b + dot(row, x);
        }
    }
}

/// Dot product in eight independent lanes, so the compiler vectorises it.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let (a8, a_rest) = a.split_at(a.len() / 8 * 8);
    let (b8, b_rest) = b.split_at(a8.len());
    for (x, y) in a8.chunks_exact(8).zip(b8.chunks_exact(8)) {
        for l in 0..8 {
            lanes[l] += x[l] * y[l];
        }
    }
    let tail: f32 = a_rest.iter().zip(b_rest).map(|(x, y)| x * y).sum();
    lanes.iter().sum::<f32>() + tail
}

/// One residual block: `h + proj(elu(conv_d(h)))`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Block {
    pub dilation: usize,
    pub conv: Conv,
    pub proj: Conv,
}

/// Checked weights of the activation network, ready for inference on the CPU.
#[derive(Debug, Clone, PartialEq)]
pub struct BeatModel {
    pub info: BeatModelInfo,
    pub(crate) stem: Conv,
    pub(crate) blocks: Vec<Block>,
    pub(crate) head: Conv,
}

impl BeatModel {
    /// The architecture.
    pub fn config(&self) -> &BeatModelConfig {
        &self.info.config
    }

    /// Activations of every frame of a whole track (the input beyond both ends is zero, as in
    /// training). Same numbers as [`ActivationStream`] fed the same frames and finished.
    pub fn activations(&self, frames: &[Frame]) -> Vec<Activation> {
        let mut stream = ActivationStream::new(self);
        let mut out = Vec::with_capacity(frames.len());
        for frame in frames {
            stream.push(&frame.mel, |a| out.push(a));
        }
        stream.finish(|a| out.push(a));
        out
    }
}

/// The shipped beat model, embedded in the library.
pub fn shipped() -> &'static BeatModel {
    static MODEL: std::sync::OnceLock<BeatModel> = std::sync::OnceLock::new();
    MODEL.get_or_init(|| {
        file::from_bytes(file::SHIPPED_BYTES)
            .expect("the shipped beat model is checked by a unit test and always loads")
    })
}

#[cfg(test)]
mod tests;
