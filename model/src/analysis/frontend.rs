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

/// One triangular mel filter over a range of FFT bins.
#[derive(Debug, Clone)]
struct MelFilter {
    first_bin: usize,
    weights: Vec<f32>,
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
    contrast_scratch: Vec<u32>,
    mel_filters: Vec<MelFilter>,
    dct: Vec<f32>,
    /// Per bin: (pitch class a, weight a, pitch class b, weight b), weights 0 outside the range.
    chroma_map: Vec<(usize, f32, usize, f32)>,
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
            contrast_scratch: vec![0; BINS],
            mel_filters: Self::mel_filters(),
            dct: Self::dct_matrix(),
            chroma_map: Self::chroma_map(),
            contrast_edges: Self::contrast_edges(),
            previous_mel: [0.0; N_MELS],
            has_previous: false,
        })
    }

    fn mel_filters() -> Vec<MelFilter> {
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
                MelFilter {
                    first_bin,
                    weights: dense,
                }
            })
            .collect()
    }

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

    fn chroma_map() -> Vec<(usize, f32, usize, f32)> {
        (0..BINS)
            .map(|bin| {
                let f = bin_hz(bin);
                if !(CHROMA_FMIN..=CHROMA_FMAX).contains(&f) {
                    return (0, 0.0, 0, 0.0);
                }
                // Pitch class with C = 0: A4 = 440 Hz is class 9.
                let class = (12.0 * (f / 440.0).log2() + 9.0).rem_euclid(12.0);
                let a = class.floor();
                let frac = class - a;
                let a = a as usize % N_CHROMA;
                (a, 1.0 - frac, (a + 1) % N_CHROMA, frac)
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
        let mut sum_sq = 0.0f32;
        for ((dst, &x), &w) in self.fft_in.iter_mut().zip(&self.window_buf).zip(&self.hann) {
            sum_sq += x * x;
            *dst = x * w;
        }
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

        for (m, filter) in self.mel_filters.iter().enumerate() {
            let bins = &self.power[filter.first_bin..filter.first_bin + filter.weights.len()];
            let energy: f32 = bins.iter().zip(&filter.weights).map(|(p, w)| p * w).sum();
            let db = 10.0 * (energy + POWER_FLOOR).log10();
            frame.mel[m] = (db + 60.0) / 20.0;
        }
        for k in 0..N_MFCC {
            frame.mfcc[k] = self.dct[k * N_MELS..(k + 1) * N_MELS]
                .iter()
                .zip(&frame.mel)
                .map(|(d, m)| d * m)
                .sum();
        }

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

    fn chroma(&self, frame: &mut Frame) {
        for (&p, &(a, wa, b, wb)) in self.power.iter().zip(&self.chroma_map) {
            frame.chroma[a] += p * wa;
            frame.chroma[b] += p * wb;
        }
        let max = frame.chroma.iter().copied().fold(0.0f32, f32::max);
        if max > 1e-8 {
            for c in &mut frame.chroma {
                *c /= max;
            }
        } else {
            frame.chroma = [0.0; N_CHROMA];
        }
    }

    fn spectral_shape(&self, frame: &mut Frame) {
        let total: f32 = self.power.iter().sum();
        if total <= POWER_FLOOR * BINS as f32 {
            return;
        }
        let nyquist_bin = (BINS - 1) as f32;
        let centroid: f32 = self
            .power
            .iter()
            .enumerate()
            .map(|(k, p)| k as f32 * p)
            .sum::<f32>()
            / total;
        let spread: f32 = self
            .power
            .iter()
            .enumerate()
            .map(|(k, p)| (k as f32 - centroid).powi(2) * p)
            .sum::<f32>()
            / total;
        frame.centroid = centroid / nyquist_bin;
        frame.bandwidth = spread.sqrt() / nyquist_bin;
        let target = 0.85 * total;
        let mut running = 0.0;
        let mut rolloff = BINS - 1;
        for (k, p) in self.power.iter().enumerate() {
            running += p;
            if running >= target {
                rolloff = k;
                break;
            }
        }
        frame.rolloff = rolloff as f32 / nyquist_bin;
        // Logs of products of 8 (in f64, which cannot underflow here) instead of 513 logs.
        let log_sum: f64 = self
            .power
            .chunks(8)
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
