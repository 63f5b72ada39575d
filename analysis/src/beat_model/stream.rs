//! Frame-by-frame inference of the activation network, for the plugin's analysis thread and,
//! fed a whole track, for the offline tracker.
//!
//! The network is a chain of stages (stem, residual blocks, head). Each stage keeps a ring of
//! its recent inputs, just long enough for its taps, and produces its output for frame `t` as
//! soon as its input for `t + max offset` has arrived; so a frame pushed into the stem comes out
//! of the head [`BeatModelConfig::look_ahead`] frames later. Inputs before the first frame and,
//! after [`ActivationStream::finish`], after the last are zero, exactly as the zero padding of
//! the candle graph. All buffers are sized in [`ActivationStream::new`]; `push` never
//! allocates.

use super::{Activation, BeatModel, Conv, INPUT_BANDS, OUTPUTS, elu};

#[cfg(doc)]
use super::BeatModelConfig;

/// What a stage computes from its gathered taps.
#[derive(Debug, Clone)]
enum Kind {
    /// `elu(conv(taps))`.
    Stem(Conv),
    /// `x(t) + proj(elu(conv(taps)))`.
    Block { conv: Conv, proj: Conv },
    /// `conv(x(t))`: the logits.
    Head(Conv),
}

#[derive(Debug, Clone)]
struct Stage {
    kind: Kind,
    /// Frame offsets of the taps, ascending.
    offsets: Vec<isize>,
    width: usize,
    /// `capacity` frames of input, frame `s` at slot `s % capacity`.
    ring: Vec<f32>,
    capacity: usize,
    /// Frames of input received.
    received: usize,
    /// Next frame to output.
    next: usize,
    /// All input has arrived.
    finished: bool,
    taps: Vec<f32>,
    hidden: Vec<f32>,
    out: Vec<f32>,
}

impl Stage {
    fn new(kind: Kind, offsets: Vec<isize>, width: usize, out_width: usize) -> Self {
        let capacity = (offsets[offsets.len() - 1] - offsets[0]) as usize + 1;
        Self {
            kind,
            width,
            ring: vec![0.0; capacity * width],
            capacity,
            received: 0,
            next: 0,
            finished: false,
            taps: vec![0.0; offsets.len() * width],
            hidden: vec![0.0; out_width],
            out: vec![0.0; out_width],
            offsets,
        }
    }

    fn store(&mut self, input: &[f32]) {
        let slot = self.received % self.capacity;
        self.ring[slot * self.width..(slot + 1) * self.width].copy_from_slice(input);
        self.received += 1;
    }

    fn ready(&self) -> bool {
        let last = self.offsets[self.offsets.len() - 1];
        if self.finished {
            self.next < self.received
        } else {
            (self.next as isize + last) < self.received as isize
        }
    }

    /// Computes the output for frame `next` into `out`.
    fn step(&mut self) {
        let t = self.next as isize;
        for (k, &offset) in self.offsets.iter().enumerate() {
            let s = t + offset;
            let dst = &mut self.taps[k * self.width..(k + 1) * self.width];
            if s < 0 || s >= self.received as isize {
                dst.fill(0.0);
            } else {
                let slot = s as usize % self.capacity;
                dst.copy_from_slice(&self.ring[slot * self.width..(slot + 1) * self.width]);
            }
        }
        match &self.kind {
            Kind::Stem(conv) => {
                conv.apply(&self.taps, &mut self.out);
                self.out.iter_mut().for_each(|v| *v = elu(*v));
            }
            Kind::Block { conv, proj } => {
                conv.apply(&self.taps, &mut self.hidden);
                self.hidden.iter_mut().for_each(|v| *v = elu(*v));
                proj.apply(&self.hidden, &mut self.out);
                let centre = self.offsets.iter().position(|&o| o == 0).unwrap_or(0);
                let x = &self.taps[centre * self.width..(centre + 1) * self.width];
                self.out.iter_mut().zip(x).for_each(|(o, x)| *o += x);
            }
            Kind::Head(conv) => conv.apply(&self.taps, &mut self.out),
        }
        self.next += 1;
    }
}

/// The activation network run causally, one frame in at a time.
#[derive(Debug, Clone)]
pub struct ActivationStream {
    stages: Vec<Stage>,
    look_ahead: usize,
}

impl ActivationStream {
    /// Sizes every buffer for `model`.
    pub fn new(model: &BeatModel) -> Self {
        let config = model.config();
        let c = config.channels;
        let mut stages = vec![Stage::new(
            Kind::Stem(model.stem.clone()),
            config.stem_offsets().to_vec(),
            INPUT_BANDS,
            c,
        )];
        for block in &model.blocks {
            stages.push(Stage::new(
                Kind::Block {
                    conv: block.conv.clone(),
                    proj: block.proj.clone(),
                },
                config.block_offsets(block.dilation).to_vec(),
                c,
                c,
            ));
        }
        stages.push(Stage::new(
            Kind::Head(model.head.clone()),
            vec![0],
            c,
            OUTPUTS,
        ));
        Self {
            stages,
            look_ahead: config.look_ahead(),
        }
    }

    /// Frames between a frame's arrival and its activation.
    pub fn latency_frames(&self) -> usize {
        self.look_ahead
    }

    /// Frames pushed so far.
    pub fn frames_in(&self) -> usize {
        self.stages[0].received
    }

    /// Frames whose activation has been emitted.
    pub fn frames_out(&self) -> usize {
        self.stages[self.stages.len() - 1].next
    }

    /// Pushes the mel spectrum of the next frame; `emit` receives every activation that became
    /// known, in frame order (at most one per call once the pipeline is full).
    pub fn push(&mut self, mel: &[f32; INPUT_BANDS], mut emit: impl FnMut(Activation)) {
        self.stages[0].store(mel);
        self.drain_from(0, &mut emit);
    }

    /// Ends the input: the frames still waiting for look-ahead are computed with zeros beyond
    /// the end and emitted. The stream then starts over empty.
    pub fn finish(&mut self, mut emit: impl FnMut(Activation)) {
        // Stage by stage: a stage sees its input's end only once every stage before it has
        // delivered all it will.
        for i in 0..self.stages.len() {
            self.stages[i].finished = true;
            self.drain_from(i, &mut emit);
        }
        self.reset();
    }

    /// Runs stage `i` while it can, passing each output straight down the chain (depth
    /// first), so no ring ever holds more than its taps need.
    fn drain_from(&mut self, i: usize, emit: &mut impl FnMut(Activation)) {
        while self.stages[i].ready() {
            self.stages[i].step();
            if i + 1 < self.stages.len() {
                let (done, rest) = self.stages.split_at_mut(i + 1);
                rest[0].store(&done[i].out);
                self.drain_from(i + 1, emit);
            } else {
                let out = &self.stages[i].out;
                emit(Activation::from_logits([out[0], out[1]]));
            }
        }
    }

    /// Forgets everything pushed (no allocation).
    pub fn reset(&mut self) {
        for stage in &mut self.stages {
            stage.received = 0;
            stage.next = 0;
            stage.finished = false;
            stage.ring.fill(0.0);
        }
    }
}
