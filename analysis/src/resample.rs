//! Resampling mono audio to the analysis rate ([`ANALYSIS_RATE`] = 22 050 Hz).
//!
//! Uses rubato's synchronous FFT resampler (`rubato::Fft`, fixed input chunks). Input of any
//! block size is gathered into fixed chunks of [`CHUNK`] source frames, so the output depends
//! only on the sample sequence, never on how it was split into blocks: this is what makes the
//! streaming and offline paths see bit-identical analysis-rate audio. The resampler's own delay
//! (`output_delay`) is dropped from the start of the output, so sample `n` of the output sits at
//! time `n / ANALYSIS_RATE` of the input. At the analysis rate itself the audio passes through.
//!
//! Real-time pair: [`AnalysisResampler::push_into`] allocates nothing after construction;
//! [`resample_to_analysis_rate`] is the allocating convenience for whole signals.

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Indexing, Resampler};

use super::ANALYSIS_RATE;

/// Source frames gathered before each resampler call.
pub const CHUNK: usize = 1024;

/// Why a resampler could not be built or run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ResampleError {
    #[error("cannot resample from {actual} Hz: {reason}")]
    Setup { actual: u32, reason: String },
    #[error("resampling failed: {reason}")]
    Process { reason: String },
}

/// Mono resampler from one source rate to [`ANALYSIS_RATE`].
pub struct AnalysisResampler {
    /// `None` when the source is already at the analysis rate.
    fft: Option<Fft<f32>>,
    /// Source frames waiting for a full chunk.
    pending: Vec<f32>,
    filled: usize,
    /// Output of one resampler call.
    output: Vec<f32>,
    /// Output frames still to drop to cancel the resampler's delay.
    delay_left: usize,
    /// Source samples taken and analysis samples given out, so `finish_into` knows what is owed.
    taken: u64,
    given: u64,
    source_rate: u32,
}

impl std::fmt::Debug for AnalysisResampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnalysisResampler")
            .field("source_rate", &self.source_rate)
            .field("filled", &self.filled)
            .finish()
    }
}

impl AnalysisResampler {
    /// Plans a resampler from `source_rate` Hz. All buffers are sized here.
    pub fn new(source_rate: u32) -> Result<Self, ResampleError> {
        if source_rate == 0 {
            return Err(ResampleError::Setup {
                actual: source_rate,
                reason: "the rate is zero".into(),
            });
        }
        if source_rate == ANALYSIS_RATE {
            return Ok(Self::idle());
        }
        let fft = Fft::<f32>::new(
            source_rate as usize,
            ANALYSIS_RATE as usize,
            CHUNK,
            1,
            FixedSync::Input,
        )
        .map_err(|error| ResampleError::Setup {
            actual: source_rate,
            reason: error.to_string(),
        })?;
        let output = vec![0.0; fft.output_frames_max()];
        let pending = vec![0.0; fft.input_frames_max()];
        let delay_left = fft.output_delay();
        Ok(Self {
            fft: Some(fft),
            pending,
            filled: 0,
            output,
            delay_left,
            taken: 0,
            given: 0,
            source_rate,
        })
    }

    /// A pass-through resampler that holds no buffers (allocates nothing); a placeholder while
    /// the real one is borrowed out of its owner.
    pub(crate) fn idle() -> Self {
        Self {
            fft: None,
            pending: Vec::new(),
            filled: 0,
            output: Vec::new(),
            delay_left: 0,
            taken: 0,
            given: 0,
            source_rate: ANALYSIS_RATE,
        }
    }

    /// The source rate this resampler was planned for.
    pub fn source_rate(&self) -> u32 {
        self.source_rate
    }

    /// Most analysis-rate samples one `push_into` call can produce for `input_len` source
    /// samples, for sizing the caller's buffers.
    pub fn max_output_for(&self, input_len: usize) -> usize {
        match &self.fft {
            None => input_len,
            Some(fft) => (input_len / fft.input_frames_next() + 1) * fft.output_frames_max(),
        }
    }

    /// Feeds source samples; `sink` receives the analysis-rate samples as they become ready.
    /// Non-finite samples are replaced by silence (the FFT resampler cannot take them).
    /// Allocates nothing.
    pub fn push_into(
        &mut self,
        mut input: &[f32],
        sink: &mut impl FnMut(&[f32]),
    ) -> Result<(), ResampleError> {
        if self.fft.is_none() {
            if !input.is_empty() {
                sink(input);
            }
            return Ok(());
        }
        while !input.is_empty() {
            let need = self.pending.len() - self.filled;
            let take = need.min(input.len());
            for (dst, &src) in self.pending[self.filled..self.filled + take]
                .iter_mut()
                .zip(&input[..take])
            {
                *dst = if src.is_finite() { src } else { 0.0 };
            }
            self.taken += take as u64;
            self.filled += take;
            input = &input[take..];
            if self.filled == self.pending.len() {
                self.run_chunk(None, sink)?;
                self.filled = 0;
            }
        }
        Ok(())
    }

    /// Ends the stream: resamples what is pending and the resampler's tail (the source is
    /// treated as followed by silence), so the output covers all of the input.
    pub fn finish_into(&mut self, sink: &mut impl FnMut(&[f32])) -> Result<(), ResampleError> {
        if self.fft.is_none() {
            return Ok(());
        }
        // Output still owed: all the input at the new rate, less what was given out already.
        let ratio = ANALYSIS_RATE as f64 / self.source_rate as f64;
        let expected = (self.taken as f64 * ratio).round() as u64;
        let mut owed = expected.saturating_sub(self.given) as usize;
        let mut partial = self.filled;
        while owed > 0 {
            let written = self.run_chunk(Some(partial), &mut |out: &[f32]| {
                let keep = out.len().min(owed);
                sink(&out[..keep]);
            })?;
            owed = owed.saturating_sub(written);
            partial = 0;
        }
        self.filled = 0;
        Ok(())
    }

    /// Runs one chunk; returns how many output samples were passed on (after delay removal).
    fn run_chunk(
        &mut self,
        partial: Option<usize>,
        sink: &mut impl FnMut(&[f32]),
    ) -> Result<usize, ResampleError> {
        let Some(fft) = self.fft.as_mut() else {
            return Ok(0);
        };
        let frames_in = self.pending.len();
        let frames_out = self.output.len();
        let input = InterleavedSlice::new(&self.pending[..], 1, frames_in).map_err(|error| {
            ResampleError::Process {
                reason: error.to_string(),
            }
        })?;
        let mut output =
            InterleavedSlice::new_mut(&mut self.output[..], 1, frames_out).map_err(|error| {
                ResampleError::Process {
                    reason: error.to_string(),
                }
            })?;
        let indexing = partial.map(|len| Indexing {
            input_offset: 0,
            output_offset: 0,
            partial_len: Some(len),
            active_channels_mask: None,
        });
        let (_, written) = fft
            .process_into_buffer(&input, &mut output, indexing.as_ref())
            .map_err(|error| ResampleError::Process {
                reason: error.to_string(),
            })?;
        let skip = self.delay_left.min(written);
        self.delay_left -= skip;
        if written > skip {
            sink(&self.output[skip..written]);
        }
        self.given += (written - skip) as u64;
        Ok(written - skip)
    }
}

/// Resamples a whole mono signal to the analysis rate (allocating convenience).
pub fn resample_to_analysis_rate(mono: &[f32], rate: u32) -> Result<Vec<f32>, ResampleError> {
    let mut resampler = AnalysisResampler::new(rate)?;
    let mut out = Vec::with_capacity(
        (mono.len() as f64 * ANALYSIS_RATE as f64 / rate as f64) as usize + CHUNK,
    );
    resampler.push_into(mono, &mut |chunk: &[f32]| out.extend_from_slice(chunk))?;
    resampler.finish_into(&mut |chunk: &[f32]| out.extend_from_slice(chunk))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(rate: u32, freq: f32, seconds: f32) -> Vec<f32> {
        (0..(rate as f32 * seconds) as usize)
            .map(|i| (std::f32::consts::TAU * freq * i as f32 / rate as f32).sin())
            .collect()
    }

    #[test]
    fn keeps_length_and_phase_of_a_sine_across_rates() {
        for rate in [8_000u32, 22_050, 44_100, 48_000, 96_000, 192_000] {
            let input = sine(rate, 440.0, 1.0);
            let out = resample_to_analysis_rate(&input, rate).unwrap();
            let expected_len = ANALYSIS_RATE as usize;
            assert!(
                out.len().abs_diff(expected_len) <= 2,
                "{rate} Hz: {} samples",
                out.len()
            );
            // Away from the edges the output is the same sine at the analysis rate, in phase.
            let mut worst = 0.0f32;
            for (n, &y) in out.iter().enumerate().skip(2_000).take(15_000) {
                let t = n as f32 / ANALYSIS_RATE as f32;
                let x = (std::f32::consts::TAU * 440.0 * t).sin();
                worst = worst.max((y - x).abs());
            }
            // The delay is dropped in whole output samples, so up to half a sample (23 us) of
            // shift remains: at 440 Hz that is a difference of up to 0.064.
            assert!(worst < 0.07, "{rate} Hz: worst error {worst}");
        }
    }

    #[test]
    fn block_size_does_not_change_the_output() {
        let input: Vec<f32> = sine(44_100, 1000.0, 0.5)
            .iter()
            .enumerate()
            .map(|(i, s)| s * (i % 7) as f32 / 7.0)
            .collect();
        let whole = resample_to_analysis_rate(&input, 44_100).unwrap();
        for block in [1usize, 64, 333, 512, 4096] {
            let mut resampler = AnalysisResampler::new(44_100).unwrap();
            let mut out = Vec::new();
            for chunk in input.chunks(block) {
                resampler
                    .push_into(chunk, &mut |c: &[f32]| out.extend_from_slice(c))
                    .unwrap();
            }
            resampler
                .finish_into(&mut |c: &[f32]| out.extend_from_slice(c))
                .unwrap();
            assert_eq!(out, whole, "block {block}");
        }
    }

    #[test]
    fn refuses_a_zero_rate() {
        assert!(matches!(
            AnalysisResampler::new(0),
            Err(ResampleError::Setup { actual: 0, .. })
        ));
    }
}
