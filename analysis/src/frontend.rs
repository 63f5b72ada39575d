//! The analysis front end: STFT, log-mel spectrogram, onset strength and per-frame descriptors.
//!
//! Audio at [`ANALYSIS_RATE`] is cut into frames of [`FFT_SIZE`] samples every [`HOP`] samples
//! (a periodic Hann window, transformed with `realfft`). Frame `k` covers analysis samples
//! `k * HOP .. k * HOP + FFT_SIZE` and is dated at its centre, [`frame_time`]. From each power
//! spectrum the [`FrameAnalyzer`] derives one [`Frame`]:
//!
//! - a 40-band log-mel spectrum (triangular filters on the HTK mel scale, 30 Hz to Nyquist,
//!   each filter averaging the power it covers), in dB mapped to `(dB + 60) / 20`;
//! - 13 MFCCs: the orthonormal DCT-II of that normalised log-mel spectrum (Davis & Mermelstein);
//! - a 12-bin chroma vector (80 Hz to 5 kHz, each bin shared between its two nearest pitch
//!   classes, scaled so the largest is 1, as librosa's `chroma_stft` does);
//! - spectral centroid, bandwidth and 85 % rolloff as fractions of Nyquist, spectral flatness
//!   (geometric over arithmetic mean of the power), and 7-band spectral contrast (octave bands
//!   from 200 Hz, peak minus valley as the means of the top and bottom fifth of each band, dB/20:
//!   Jiang et al. 2002, as in librosa's `spectral_contrast`);
//! - loudness: the frame's RMS in dB mapped to `(dB + 40) / 20`;
//! - onset strength: the half-wave rectified rise of the normalised log-mel spectrum from the
//!   previous frame, averaged over all bands and over low (< 200 Hz), mid and high band groups
//!   (spectral flux on a log-mel spectrogram, as in Böck & Widmer 2013 and librosa's
//!   `onset_strength`).
//!
//! Both beat trackers and the beat features read these frames, and the streaming and offline
//! paths produce them with this same code from the same resampled samples, so they agree
//! exactly. After [`FrameAnalyzer::new`] nothing here allocates.

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};

use super::resample::{AnalysisResampler, ResampleError};
use super::{ANALYSIS_RATE, FFT_SIZE, HOP};

/// Mel bands of the log-mel spectrum.
pub const N_MELS: usize = 40;
/// MFCCs kept.
pub const N_MFCC: usize = 13;
/// Pitch classes.
pub const N_CHROMA: usize = 12;
/// Spectral-contrast bands.
pub const N_CONTRAST: usize = 7;
/// Mel bands below about 200 Hz: the kick and bass region of the low-band onset strength.
pub const LOW_BANDS: usize = 6;
/// First mel band of the high group (about 2.2 kHz up).
pub const HIGH_BANDS_FROM: usize = 24;

const BINS: usize = FFT_SIZE / 2 + 1;
const MEL_FMIN: f32 = 30.0;
const CHROMA_FMIN: f32 = 80.0;
const CHROMA_FMAX: f32 = 5000.0;
const POWER_FLOOR: f32 = 1e-10;

/// Time in seconds of the centre of frame `k`.
pub fn frame_time(k: usize) -> f64 {
    (k * HOP + FFT_SIZE / 2) as f64 / ANALYSIS_RATE as f64
}

/// The frame whose centre is nearest to time `t` seconds (0 before the first).
pub fn frame_index_at(t: f64) -> usize {
    let k = ((t - frame_time(0)) * frame_rate()).round();
    if k > 0.0 { k as usize } else { 0 }
}

/// Frames per second.
pub fn frame_rate() -> f64 {
    ANALYSIS_RATE as f64 / HOP as f64
}

/// What the front end knows about one frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Frame {
    /// Normalised log-mel spectrum, `(dB + 60) / 20`.
    pub mel: [f32; N_MELS],
    /// MFCCs of the normalised log-mel spectrum.
    pub mfcc: [f32; N_MFCC],
    /// Chroma, largest bin 1 (all 0 in silence).
    pub chroma: [f32; N_CHROMA],
    /// Spectral contrast per band, dB / 20.
    pub contrast: [f32; N_CONTRAST],
    /// Spectral centroid / Nyquist.
    pub centroid: f32,
    /// Spectral bandwidth / Nyquist.
    pub bandwidth: f32,
    /// 85 % rolloff frequency / Nyquist.
    pub rolloff: f32,
    /// Spectral flatness, 0 (tonal) to 1 (white).
    pub flatness: f32,
    /// RMS level, `(dB + 40) / 20`.
    pub loudness: f32,
    /// Onset strength over all bands.
    pub onset: f32,
    /// Onset strength of the low bands (kick, bass).
    pub onset_low: f32,
    /// Onset strength of the mid bands.
    pub onset_mid: f32,
    /// Onset strength of the high bands (hats, noise).
    pub onset_high: f32,
}

impl Default for Frame {
    fn default() -> Self {
        Self {
            mel: [0.0; N_MELS],
            mfcc: [0.0; N_MFCC],
            chroma: [0.0; N_CHROMA],
            contrast: [0.0; N_CONTRAST],
            centroid: 0.0,
            bandwidth: 0.0,
            rolloff: 0.0,
            flatness: 0.0,
            loudness: 0.0,
            onset: 0.0,
            onset_low: 0.0,
            onset_mid: 0.0,
            onset_high: 0.0,
        }
    }
}

/// Mel filters evaluated side by side, one per lane.
const MEL_LANES: usize = 8;

/// [`MEL_LANES`] adjacent triangular mel filters over the union of their FFT bins, stored bin by
/// bin so that one pass over the bins accumulates all of them (vectorised across the lanes).
/// Each lane adds its own filter's terms in bin order and exact zeros elsewhere, so every sum is
/// bit-identical to that of the filter on its own.
#[derive(Debug, Clone)]
struct MelGroup {
    first_bin: usize,
    weights: Vec<[f32; MEL_LANES]>,
}

/// Turns source-rate mono audio into [`Frame`]s. Built once; pushing allocates nothing.
pub struct FrameAnalyzer {
    resampler: AnalysisResampler,
    /// The last `FFT_SIZE` analysis-rate samples.
    window_buf: Vec<f32>,
    filled: usize,
    frames_done: usize,
    fft: Arc<dyn RealToComplex<f32>>,
    hann: Vec<f32>,
    fft_in: Vec<f32>,
    spectrum: Vec<Complex<f32>>,
    scratch: Vec<Complex<f32>>,
    power: Vec<f32>,
    /// Running sum of `power` in bin order.
    cumulative: Vec<f32>,
    contrast_scratch: Vec<u32>,
    mel_groups: Vec<MelGroup>,
    /// The DCT-II matrix by mel band: row `m` holds band `m`'s weight in each MFCC.
    dct: Vec<[f32; N_MFCC]>,
    /// First FFT bin of the chroma range.
    chroma_first_bin: usize,
    /// Per bin of the chroma range, its weight in each pitch class (two are non-zero).
    chroma_weights: Vec<[f32; N_CHROMA]>,
    contrast_edges: [usize; N_CONTRAST + 1],
    previous_mel: [f32; N_MELS],
    has_previous: bool,
}

impl std::fmt::Debug for FrameAnalyzer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameAnalyzer")
            .field("resampler", &self.resampler)
            .field("frames_done", &self.frames_done)
            .finish()
    }
}

fn hz_to_mel(hz: f32) -> f32 {
    2595.0 * (1.0 + hz / 700.0).log10()
}

fn mel_to_hz(mel: f32) -> f32 {
    700.0 * (10f32.powf(mel / 2595.0) - 1.0)
}

fn bin_hz(bin: usize) -> f32 {
    bin as f32 * ANALYSIS_RATE as f32 / FFT_SIZE as f32
}

impl FrameAnalyzer {
    /// Plans the STFT, filter banks and the resampler from `source_rate`.
    pub fn new(source_rate: u32) -> Result<Self, ResampleError> {
        let resampler = AnalysisResampler::new(source_rate)?;
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(FFT_SIZE);
        let spectrum = fft.make_output_vec();
        let scratch = fft.make_scratch_vec();
        let hann = (0..FFT_SIZE)
            .map(|n| {
                let x = std::f32::consts::TAU * n as f32 / FFT_SIZE as f32;
                0.5 - 0.5 * x.cos()
            })
            .collect();
        Ok(Self {
            resampler,
            window_buf: vec![0.0; FFT_SIZE],
            filled: 0,
            frames_done: 0,
            fft,
            hann,
            fft_in: vec![0.0; FFT_SIZE],
            spectrum,
            scratch,
            power: vec![0.0; BINS],
            cumulative: vec![0.0; BINS],
            contrast_scratch: vec![0; BINS],
            mel_groups: Self::mel_groups(),
            dct: Self::dct_by_band(),
            chroma_first_bin: Self::chroma_bins().start,
            chroma_weights: Self::chroma_weights(),
            contrast_edges: Self::contrast_edges(),
            previous_mel: [0.0; N_MELS],
            has_previous: false,
        })
    }

    /// The triangular mel filters, each as its first bin and its (normalised) weights.
    fn mel_filters() -> Vec<(usize, Vec<f32>)> {
        let nyquist = ANALYSIS_RATE as f32 / 2.0;
        let (low, high) = (hz_to_mel(MEL_FMIN), hz_to_mel(nyquist));
        let edges: Vec<f32> = (0..N_MELS + 2)
            .map(|i| mel_to_hz(low + (high - low) * i as f32 / (N_MELS + 1) as f32))
            .collect();
        (0..N_MELS)
            .map(|m| {
                let (left, centre, right) = (edges[m], edges[m + 1], edges[m + 2]);
                let mut weights: Vec<(usize, f32)> = (0..BINS)
                    .filter_map(|bin| {
                        let f = bin_hz(bin);
                        let w = if f > left && f <= centre {
                            (f - left) / (centre - left)
                        } else if f > centre && f < right {
                            (right - f) / (right - centre)
                        } else {
                            0.0
                        };
                        (w > 0.0).then_some((bin, w))
                    })
                    .collect();
                if weights.is_empty() {
                    // Narrow low filters fall between bins: use the nearest bin.
                    let nearest = (centre / bin_hz(1)).round() as usize;
                    weights.push((nearest.min(BINS - 1), 1.0));
                }
                let total: f32 = weights.iter().map(|(_, w)| w).sum();
                let first_bin = weights[0].0;
                let mut dense = vec![0.0; weights.last().map_or(0, |(b, _)| b - first_bin + 1)];
                for (bin, w) in weights {
                    dense[bin - first_bin] = w / total;
                }
                (first_bin, dense)
            })
            .collect()
    }

    fn mel_groups() -> Vec<MelGroup> {
        Self::mel_filters()
            .chunks(MEL_LANES)
            .map(|filters| {
                let first_bin = filters.iter().map(|(first, _)| *first).min().unwrap_or(0);
                let end = filters
                    .iter()
                    .map(|(first, w)| first + w.len())
                    .max()
                    .unwrap_or(0);
                let mut weights = vec![[0.0; MEL_LANES]; end - first_bin];
                for (lane, (first, w)) in filters.iter().enumerate() {
                    for (i, &weight) in w.iter().enumerate() {
                        weights[first + i - first_bin][lane] = weight;
                    }
                }
                MelGroup { first_bin, weights }
            })
            .collect()
    }

    /// The DCT-II matrix, one row per coefficient.
    fn dct_matrix() -> Vec<f32> {
        let n = N_MELS as f32;
        let mut dct = vec![0.0; N_MFCC * N_MELS];
        for k in 0..N_MFCC {
            let scale = if k == 0 {
                (1.0 / n).sqrt()
            } else {
                (2.0 / n).sqrt()
            };
            for m in 0..N_MELS {
                dct[k * N_MELS + m] =
                    scale * (std::f32::consts::PI * k as f32 * (m as f32 + 0.5) / n).cos();
            }
        }
        dct
    }

    /// [`Self::dct_matrix`] transposed: one row per mel band. Transposed rather than computed in
    /// this order, because the optimiser evaluates some of the cosines itself depending on the
    /// loop's shape, one ulp away from libm's: this way the coefficients stay those the shipped
    /// model was trained with.
    fn dct_by_band() -> Vec<[f32; N_MFCC]> {
        let dct = Self::dct_matrix();
        (0..N_MELS)
            .map(|m| std::array::from_fn(|k| dct[k * N_MELS + m]))
            .collect()
    }

    /// The FFT bins from [`CHROMA_FMIN`] to [`CHROMA_FMAX`].
    fn chroma_bins() -> std::ops::Range<usize> {
        let in_range = |bin: &usize| (CHROMA_FMIN..=CHROMA_FMAX).contains(&bin_hz(*bin));
        let first = (0..BINS).find(in_range).unwrap_or(BINS);
        let end = (first..BINS).find(|bin| !in_range(bin)).unwrap_or(BINS);
        first..end
    }

    /// Each bin's weights in the pitch classes: shared between its two nearest classes.
    fn chroma_weights() -> Vec<[f32; N_CHROMA]> {
        Self::chroma_bins()
            .map(|bin| {
                // Pitch class with C = 0: A4 = 440 Hz is class 9.
                let class = (12.0 * (bin_hz(bin) / 440.0).log2() + 9.0).rem_euclid(12.0);
                let a = class.floor();
                let frac = class - a;
                let a = a as usize % N_CHROMA;
                let mut weights = [0.0; N_CHROMA];
                weights[a] = 1.0 - frac;
                weights[(a + 1) % N_CHROMA] = frac;
                weights
            })
            .collect()
    }

    fn contrast_edges() -> [usize; N_CONTRAST + 1] {
        let mut edges = [0; N_CONTRAST + 1];
        let mut hz = 200.0f32;
        for edge in edges.iter_mut().take(N_CONTRAST).skip(1) {
            *edge = (hz / bin_hz(1)).round() as usize;
            hz *= 2.0;
        }
        edges[N_CONTRAST] = BINS;
        edges
    }

    /// Frames produced so far.
    pub fn frames_done(&self) -> usize {
        self.frames_done
    }

    /// Most frames one `push` of `input_len` source samples can produce, for sizing buffers.
    pub fn max_frames_for(&self, input_len: usize) -> usize {
        self.resampler.max_output_for(input_len) / HOP + 1
    }

    /// Feeds source-rate mono samples; `on_frame` receives each completed frame with its index.
    /// Non-finite samples are read as silence. Allocates nothing.
    pub fn push(
        &mut self,
        mono: &[f32],
        on_frame: &mut impl FnMut(usize, &Frame),
    ) -> Result<(), ResampleError> {
        let mut resampler = std::mem::replace(&mut self.resampler, AnalysisResampler::idle());
        let result = resampler.push_into(mono, &mut |chunk: &[f32]| {
            self.take_samples(chunk, on_frame);
        });
        self.resampler = resampler;
        result
    }

    /// Ends the stream: flushes the resampler so the last samples reach a frame.
    pub fn finish(
        &mut self,
        on_frame: &mut impl FnMut(usize, &Frame),
    ) -> Result<(), ResampleError> {
        let mut resampler = std::mem::replace(&mut self.resampler, AnalysisResampler::idle());
        let result = resampler.finish_into(&mut |chunk: &[f32]| {
            self.take_samples(chunk, on_frame);
        });
        self.resampler = resampler;
        result
    }

    fn take_samples(&mut self, mut samples: &[f32], on_frame: &mut impl FnMut(usize, &Frame)) {
        while !samples.is_empty() {
            let take = (FFT_SIZE - self.filled).min(samples.len());
            for (dst, &src) in self.window_buf[self.filled..self.filled + take]
                .iter_mut()
                .zip(&samples[..take])
            {
                *dst = if src.is_finite() {
                    src.clamp(-4.0, 4.0)
                } else {
                    0.0
                };
            }
            self.filled += take;
            samples = &samples[take..];
            if self.filled == FFT_SIZE {
                let frame = self.analyse_window();
                on_frame(self.frames_done, &frame);
                self.frames_done += 1;
                self.window_buf.copy_within(HOP.., 0);
                self.filled = FFT_SIZE - HOP;
            }
        }
    }

    fn analyse_window(&mut self) -> Frame {
        let mut frame = Frame::default();
        for ((dst, &x), &w) in self.fft_in.iter_mut().zip(&self.window_buf).zip(&self.hann) {
            *dst = x * w;
        }
        let sum_sq = lane_sum(&self.window_buf, |_, x| x * x);
        let rms = (sum_sq / FFT_SIZE as f32).sqrt();
        frame.loudness = (20.0 * (rms + 1e-5).log10() + 40.0) / 20.0;
        // The planned sizes always match, so the transform cannot fail; a silent frame is the
        // safe answer if it ever did.
        if self
            .fft
            .process_with_scratch(&mut self.fft_in, &mut self.spectrum, &mut self.scratch)
            .is_err()
        {
            self.spectrum.fill(Complex::new(0.0, 0.0));
        }
        // Scaled so a full-scale sine has power 1 in its bin.
        let scale = 4.0 / (FFT_SIZE as f32 / 2.0).powi(2);
        for (p, c) in self.power.iter_mut().zip(&self.spectrum) {
            *p = c.norm_sqr() * scale;
        }

        self.mel(&mut frame);
        self.chroma(&mut frame);
        self.spectral_shape(&mut frame);
        self.contrast(&mut frame);

        if self.has_previous {
            let rise = |range: std::ops::Range<usize>| -> f32 {
                let n = range.len() as f32;
                range
                    .map(|m| (frame.mel[m] - self.previous_mel[m]).max(0.0))
                    .sum::<f32>()
                    / n
            };
            frame.onset = rise(0..N_MELS);
            frame.onset_low = rise(0..LOW_BANDS);
            frame.onset_mid = rise(LOW_BANDS..HIGH_BANDS_FROM);
            frame.onset_high = rise(HIGH_BANDS_FROM..N_MELS);
        }
        self.previous_mel = frame.mel;
        self.has_previous = true;
        frame
    }

    /// Log-mel spectrum and MFCCs.
    fn mel(&self, frame: &mut Frame) {
        for (group, mel) in self
            .mel_groups
            .iter()
            .zip(frame.mel.chunks_exact_mut(MEL_LANES))
        {
            let mut energy = [0.0f32; MEL_LANES];
            for (&p, weights) in self.power[group.first_bin..].iter().zip(&group.weights) {
                for (e, w) in energy.iter_mut().zip(weights) {
                    *e += p * w;
                }
            }
            for (m, e) in mel.iter_mut().zip(energy) {
                let db = 10.0 * (e + POWER_FLOOR).log10();
                *m = (db + 60.0) / 20.0;
            }
        }
        // Band by band, so each coefficient still sums its terms in band order.
        let mut mfcc = [0.0f32; N_MFCC];
        for (row, &m) in self.dct.iter().zip(&frame.mel) {
            for (c, d) in mfcc.iter_mut().zip(row) {
                *c += d * m;
            }
        }
        frame.mfcc = mfcc;
    }

    fn chroma(&self, frame: &mut Frame) {
        let power = &self.power[self.chroma_first_bin..];
        // Bin by bin, so each class still sums its terms in bin order.
        let mut chroma = [0.0f32; N_CHROMA];
        for (&p, weights) in power.iter().zip(&self.chroma_weights) {
            for (c, w) in chroma.iter_mut().zip(weights) {
                *c += p * w;
            }
        }
        frame.chroma = chroma;
        let max = frame.chroma.iter().copied().fold(0.0f32, f32::max);
        if max > 1e-8 {
            for c in &mut frame.chroma {
                *c /= max;
            }
        } else {
            frame.chroma = [0.0; N_CHROMA];
        }
    }

    fn spectral_shape(&mut self, frame: &mut Frame) {
        // The running sum in bin order: its last value is the total, and the rolloff is where
        // it crosses 85 % of that (the powers are non-negative, so it never decreases).
        let mut running = 0.0f32;
        for (c, &p) in self.cumulative.iter_mut().zip(&self.power) {
            running += p;
            *c = running;
        }
        let total = running;
        if total <= POWER_FLOOR * BINS as f32 {
            return;
        }
        let nyquist_bin = (BINS - 1) as f32;
        let centroid = lane_sum(&self.power, |k, p| k * p) / total;
        let spread = lane_sum(&self.power, |k, p| (k - centroid).powi(2) * p) / total;
        frame.centroid = centroid / nyquist_bin;
        frame.bandwidth = spread.sqrt() / nyquist_bin;
        let target = 0.85 * total;
        let rolloff = self.cumulative.partition_point(|&c| c < target);
        frame.rolloff = rolloff.min(BINS - 1) as f32 / nyquist_bin;
        // Logs of products of 27 (in f64, which cannot underflow or overflow here: each factor
        // is 1e-10 to 64) instead of 513 logs.
        let log_sum: f64 = self
            .power
            .chunks(27)
            .map(|chunk| {
                chunk
                    .iter()
                    .map(|&p| (p + POWER_FLOOR) as f64)
                    .product::<f64>()
                    .ln()
            })
            .sum();
        let mean_log = (log_sum / BINS as f64) as f32;
        let mean: f32 = total / BINS as f32 + POWER_FLOOR;
        frame.flatness = (mean_log.exp() / mean).clamp(0.0, 1.0);
    }

    fn contrast(&mut self, frame: &mut Frame) {
        for band in 0..N_CONTRAST {
            let (lo, hi) = (self.contrast_edges[band], self.contrast_edges[band + 1]);
            let values = &mut self.contrast_scratch[..hi - lo];
            // Powers are non-negative, so their bit patterns sort as the numbers do, and
            // integer comparisons are cheaper.
            for (v, p) in values.iter_mut().zip(&self.power[lo..hi]) {
                *v = p.to_bits();
            }
            let len = values.len();
            let fifth = (len / 5).max(1);
            // Partition instead of sorting: the bottom and top fifths, each in any order.
            values.select_nth_unstable(fifth - 1);
            let mean_of = |bits: &[u32]| {
                bits.iter().map(|&b| f32::from_bits(b)).sum::<f32>() / bits.len() as f32
            };
            let valley = mean_of(&values[..fifth]);
            values[fifth..].select_nth_unstable(len - 2 * fifth);
            let peak = mean_of(&values[len - fifth..]);
            let db = |p: f32| 10.0 * (p + POWER_FLOOR).log10();
            frame.contrast[band] = (db(peak) - db(valley)) / 20.0;
        }
    }
}

/// Accumulators of [`lane_sum`].
const SUM_LANES: usize = 8;

/// The sum of `term(k, values[k])` over all `k` (the index `k` as an `f32`, exact below 2^24), in
/// [`SUM_LANES`] interleaved partial sums: these vectorise and do not wait on one another, unlike
/// one running sum. The result differs from a running sum's only by rounding (about 1e-7
/// relative), so it serves the descriptors that no threshold or beat decision reads.
fn lane_sum(values: &[f32], term: impl Fn(f32, f32) -> f32) -> f32 {
    let mut lanes = [0.0f32; SUM_LANES];
    let mut index: [f32; SUM_LANES] = std::array::from_fn(|lane| lane as f32);
    let chunks = values.chunks_exact(SUM_LANES);
    let tail = chunks.remainder();
    for chunk in chunks {
        for ((sum, k), &v) in lanes.iter_mut().zip(&mut index).zip(chunk) {
            *sum += term(*k, v);
            *k += SUM_LANES as f32;
        }
    }
    let tail_sum: f32 = tail.iter().zip(index).map(|(&v, k)| term(k, v)).sum();
    lanes.iter().sum::<f32>() + tail_sum
}

/// Runs a whole mono signal through a fresh [`FrameAnalyzer`] (allocating convenience).
pub fn analyse_frames(mono: &[f32], rate: u32) -> Result<Vec<Frame>, ResampleError> {
    let mut analyzer = FrameAnalyzer::new(rate)?;
    let mut frames = Vec::with_capacity(analyzer.max_frames_for(mono.len()));
    analyzer.push(mono, &mut |_, f: &Frame| frames.push(*f))?;
    analyzer.finish(&mut |_, f: &Frame| frames.push(*f))?;
    Ok(frames)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(rate: u32, freq: f32, seconds: f32, amp: f32) -> Vec<f32> {
        (0..(rate as f32 * seconds) as usize)
            .map(|i| amp * (std::f32::consts::TAU * freq * i as f32 / rate as f32).sin())
            .collect()
    }

    #[test]
    fn a_sine_lands_in_its_pitch_class_and_mel_band() {
        // A4 = 440 Hz: chroma class 9 (A) is the loudest; the centroid sits near 440 Hz.
        let frames = analyse_frames(&sine(44_100, 440.0, 1.0, 0.5), 44_100).unwrap();
        let frame = &frames[20];
        let loudest = (0..N_CHROMA)
            .max_by(|&a, &b| frame.chroma[a].total_cmp(&frame.chroma[b]))
            .unwrap();
        assert_eq!(loudest, 9);
        let centroid_hz = frame.centroid * ANALYSIS_RATE as f32 / 2.0;
        assert!((centroid_hz - 440.0).abs() < 60.0, "centroid {centroid_hz}");
        assert!(frame.flatness < 0.01);
        // RMS of a 0.5 sine is -9 dB.
        let db = frame.loudness * 20.0 - 40.0;
        assert!((db + 9.03).abs() < 0.5, "level {db} dB");
    }

    #[test]
    fn white_noise_is_flat_and_a_click_makes_an_onset_at_its_time() {
        let mut state = 12345u64;
        let noise: Vec<f32> = (0..22_050)
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
                ((state >> 40) as f32 / (1u64 << 24) as f32) - 0.5
            })
            .collect();
        let frames = analyse_frames(&noise, 22_050).unwrap();
        assert!(
            frames[10].flatness > 0.3,
            "flatness {}",
            frames[10].flatness
        );

        let mut clicks = vec![0.0f32; 22_050];
        clicks[11_025..11_025 + 200].fill(0.8);
        let frames = analyse_frames(&clicks, 22_050).unwrap();
        let peak = (0..frames.len())
            .max_by(|&a, &b| frames[a].onset.total_cmp(&frames[b].onset))
            .unwrap();
        let error = frame_time(peak) - 0.5;
        assert!(error.abs() < 0.03, "onset peak at {} s", frame_time(peak));
    }

    #[test]
    fn frames_do_not_depend_on_block_size_and_survive_nan() {
        let mut signal = sine(48_000, 220.0, 0.7, 0.3);
        signal[1000] = f32::NAN;
        signal[2000] = f32::INFINITY;
        let whole = analyse_frames(&signal, 48_000).unwrap();
        for block in [1usize, 100, 512, 2049] {
            let mut analyzer = FrameAnalyzer::new(48_000).unwrap();
            let mut frames = Vec::new();
            for chunk in signal.chunks(block) {
                analyzer
                    .push(chunk, &mut |_, f: &Frame| frames.push(*f))
                    .unwrap();
            }
            analyzer
                .finish(&mut |_, f: &Frame| frames.push(*f))
                .unwrap();
            assert_eq!(frames, whole, "block {block}");
        }
        assert!(
            whole
                .iter()
                .all(|f| f.mel.iter().all(|v| v.is_finite()) && f.onset.is_finite())
        );
    }
}
