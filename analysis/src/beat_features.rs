//! The 121 features of each beat, aggregated from the front end's frames.
//!
//! Two stages, both shared by the streaming and the offline path so that, given the same beat
//! grid, they produce the same numbers:
//!
//! 1. [`summarize_beat`] reduces the frames whose centre falls inside a beat (from its time to
//!    the next beat's) to a [`BeatSummary`]: means and spreads of the frame descriptors, onset
//!    strength at the beat and in each quarter of it.
//! 2. [`beat_features_into`] writes the 121 features of beat `i` from the summaries of beat `i`
//!    and up to [`CONTEXT_BEATS`] beats before it (self-similarity and novelty look back only,
//!    so the streaming path can compute them causally) and from the beat grid (tempo, position
//!    in the bar and the phrase).
//!
//! The table ([`FEATURE_TABLE`], also in `docs/features.md`) names each index range with its
//! units and normalisation. Self-similarity is the cosine similarity of the beats' timbre and
//! harmony vectors (mean chroma and MFCC 1..13), the self-similarity-matrix view of Foote
//! (2000); novelty compares the last four beats with the four before them, a causal version of
//! Foote's checkerboard kernel.

use super::frontend::{Frame, N_CHROMA, N_CONTRAST, N_MELS, N_MFCC, frame_time};
use super::{ANALYSIS_RATE, FFT_SIZE, HOP};
use cutscore_core::features::BEAT_FEATURES;
use cutscore_core::grid::BeatGrid;

/// Beats before the current one that the context features read.
pub const CONTEXT_BEATS: usize = 32;
/// Log-mel bands of the summary (pairs of the 40 front-end bands).
pub const MEL_SUMMARY_BANDS: usize = N_MELS / 2;
const SIMILARITY_WIDTH: usize = N_CHROMA + N_MFCC - 1;

/// One contiguous group of features.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FeatureGroup {
    pub name: &'static str,
    pub start: usize,
    pub len: usize,
    pub units: &'static str,
    pub normalisation: &'static str,
}

macro_rules! group {
    ($name:expr, $start:expr, $len:expr, $units:expr, $norm:expr) => {
        FeatureGroup {
            name: $name,
            start: $start,
            len: $len,
            units: $units,
            normalisation: $norm,
        }
    };
}

/// The feature table: contiguous groups covering indices 0..121.
pub const FEATURE_TABLE: &[FeatureGroup] = &[
    group!(
        "log_mel",
        0,
        20,
        "dB",
        "mean over the beat of 20 log-mel bands (30 Hz-11 kHz, pairs of 40 HTK bands), (dB + 60) / 20"
    ),
    group!(
        "mfcc_mean",
        20,
        13,
        "cepstral",
        "mean over the beat of MFCC 0-12 (orthonormal DCT-II of the normalised log-mel)"
    ),
    group!(
        "mfcc_std",
        33,
        13,
        "cepstral",
        "standard deviation over the beat of MFCC 0-12"
    ),
    group!(
        "chroma",
        46,
        12,
        "ratio",
        "mean over the beat of chroma C..B, each frame scaled so its largest bin is 1"
    ),
    group!(
        "spectral_contrast",
        58,
        7,
        "dB",
        "mean over the beat of 7-band spectral contrast (bands: <200 Hz, then octaves), dB / 20"
    ),
    group!(
        "spectral_shape_mean",
        65,
        4,
        "ratio",
        "mean over the beat of centroid, bandwidth, 85 % rolloff (fractions of 11.025 kHz) and flatness (0-1)"
    ),
    group!(
        "spectral_shape_std",
        69,
        4,
        "ratio",
        "standard deviation over the beat of the same four"
    ),
    group!(
        "loudness",
        73,
        4,
        "dB",
        "frame RMS level (dB + 40) / 20: mean, max, min over the beat, and mean minus the previous beat's mean"
    ),
    group!(
        "onset",
        77,
        6,
        "flux",
        "log-mel spectral flux (mean rise of the normalised log-mel): mean, max, at the beat (max within one frame), std; low band (<200 Hz) mean and at the beat"
    ),
    group!(
        "tempo",
        83,
        4,
        "log2",
        "log2(local BPM / 120), beat period in s, log2(period / previous period), log2(period / median of the last 8 periods)"
    ),
    group!(
        "bar_position",
        87,
        8,
        "one-hot",
        "one-hot beat-in-bar 0,1,2,3, flag for >= 4, meter / 4, sin and cos of 2 pi beat-in-bar / meter"
    ),
    group!(
        "phrase_position",
        95,
        6,
        "phase",
        "sin and cos of 2 pi x (position in a 2-, 4- and 8-bar phrase), bars counted from the first downbeat"
    ),
    group!(
        "self_similarity",
        101,
        6,
        "cosine",
        "cosine similarity of the beat's chroma+MFCC vector with beats i-1, i-2, i-4, i-8, i-16, i-32 (0 before the track)"
    ),
    group!(
        "bar_similarity",
        107,
        4,
        "cosine",
        "the same with the beat 1, 2, 4 and 8 bars back (i - k x meter)"
    ),
    group!(
        "novelty",
        111,
        3,
        "distance",
        "1 - cosine between the mean vectors of beats i-3..i and i-7..i-4; chroma change from beat i-1 (L1 / 12); MFCC distance from beat i-1 (L2 / 13)"
    ),
    group!(
        "onset_quarters",
        114,
        4,
        "flux",
        "mean onset strength in each quarter of the beat"
    ),
    group!(
        "band_flux",
        118,
        3,
        "flux",
        "mean onset strength of the low (<200 Hz), mid and high (>2.2 kHz) bands"
    ),
];

/// What the frames of one beat reduce to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BeatSummary {
    pub mel: [f32; MEL_SUMMARY_BANDS],
    pub mfcc_mean: [f32; N_MFCC],
    pub mfcc_std: [f32; N_MFCC],
    pub chroma: [f32; N_CHROMA],
    pub contrast: [f32; N_CONTRAST],
    pub shape_mean: [f32; 4],
    pub shape_std: [f32; 4],
    pub loudness: [f32; 3],
    pub onset: [f32; 6],
    pub onset_quarters: [f32; 4],
    pub band_flux: [f32; 3],
}

impl Default for BeatSummary {
    fn default() -> Self {
        Self {
            mel: [0.0; MEL_SUMMARY_BANDS],
            mfcc_mean: [0.0; N_MFCC],
            mfcc_std: [0.0; N_MFCC],
            chroma: [0.0; N_CHROMA],
            contrast: [0.0; N_CONTRAST],
            shape_mean: [0.0; 4],
            shape_std: [0.0; 4],
            loudness: [0.0; 3],
            onset: [0.0; 6],
            onset_quarters: [0.0; 4],
            band_flux: [0.0; 3],
        }
    }
}

impl BeatSummary {
    fn similarity_vector(&self) -> [f32; SIMILARITY_WIDTH] {
        let mut v = [0.0; SIMILARITY_WIDTH];
        v[..N_CHROMA].copy_from_slice(&self.chroma);
        v[N_CHROMA..].copy_from_slice(&self.mfcc_mean[1..]);
        v
    }
}

/// Frames a beat summary can read: the offline path's whole list, or the streaming path's ring.
pub trait FrameSource {
    /// Index one past the last frame available.
    fn end(&self) -> usize;
    /// Index of the oldest frame still available.
    fn start(&self) -> usize;
    /// Frame `k`, if still available.
    fn frame(&self, k: usize) -> Option<&Frame>;
}

impl FrameSource for [Frame] {
    fn end(&self) -> usize {
        self.len()
    }
    fn start(&self) -> usize {
        0
    }
    fn frame(&self, k: usize) -> Option<&Frame> {
        self.get(k)
    }
}

/// First frame whose centre is at or after `t` seconds.
pub fn first_frame_at_or_after(t: f64) -> usize {
    let samples = t * ANALYSIS_RATE as f64 - (FFT_SIZE / 2) as f64;
    if samples <= 0.0 {
        0
    } else {
        (samples / HOP as f64).ceil() as usize
    }
}

/// Frames of beat `beat` of `grid`: centres from its time up to the next beat's (or the end).
pub fn beat_frame_range(grid: &BeatGrid, beat: usize) -> std::ops::Range<usize> {
    span_frame_range(grid.time_of(beat), grid.time_of(beat + 1))
}

/// Summarises the frames of beat `beat`. Frames missing from `frames` are left out; a beat with
/// none gets the nearest available frame, and an empty source a zero summary.
pub fn summarize_beat<S: FrameSource + ?Sized>(
    frames: &S,
    grid: &BeatGrid,
    beat: usize,
) -> BeatSummary {
    summarize_span(frames, grid.time_of(beat), grid.time_of(beat + 1))
}

/// Frames whose centres fall in `start_s..end_s` (at least one).
pub fn span_frame_range(start_s: f64, end_s: f64) -> std::ops::Range<usize> {
    let start = first_frame_at_or_after(start_s);
    let end = first_frame_at_or_after(end_s);
    start..end.max(start + 1)
}

/// Summarises the frames of a beat from `start_s` to `end_s` (see [`summarize_beat`]).
pub fn summarize_span<S: FrameSource + ?Sized>(
    frames: &S,
    start_s: f64,
    end_s: f64,
) -> BeatSummary {
    let mut summary = BeatSummary::default();
    if frames.end() <= frames.start() {
        return summary;
    }
    let range = span_frame_range(start_s, end_s);
    let mut lo = range.start.max(frames.start());
    let mut hi = range.end.min(frames.end());
    if lo >= hi {
        let nearest = range.start.clamp(frames.start(), frames.end() - 1);
        lo = nearest;
        hi = nearest + 1;
    }
    let n = (hi - lo) as f32;
    let mut mfcc_sq = [0.0f32; N_MFCC];
    let mut shape_sq = [0.0f32; 4];
    let mut onset_sq = 0.0f32;
    summary.loudness[1] = f32::NEG_INFINITY;
    summary.loudness[2] = f32::INFINITY;
    let beat_time = start_s;
    let quarter_len = ((hi - lo) as f32 / 4.0).max(1.0);
    let mut quarter_counts = [0.0f32; 4];
    for k in lo..hi {
        let Some(f) = frames.frame(k) else { continue };
        for (b, m) in summary.mel.iter_mut().enumerate() {
            *m += 0.5 * (f.mel[2 * b] + f.mel[2 * b + 1]);
        }
        for ((mean, sq), &v) in summary.mfcc_mean.iter_mut().zip(&mut mfcc_sq).zip(&f.mfcc) {
            *mean += v;
            *sq += v * v;
        }
        for c in 0..N_CHROMA {
            summary.chroma[c] += f.chroma[c];
        }
        for c in 0..N_CONTRAST {
            summary.contrast[c] += f.contrast[c];
        }
        let shape = [f.centroid, f.bandwidth, f.rolloff, f.flatness];
        for c in 0..4 {
            summary.shape_mean[c] += shape[c];
            shape_sq[c] += shape[c] * shape[c];
        }
        summary.loudness[0] += f.loudness;
        summary.loudness[1] = summary.loudness[1].max(f.loudness);
        summary.loudness[2] = summary.loudness[2].min(f.loudness);
        summary.onset[0] += f.onset;
        summary.onset[1] = summary.onset[1].max(f.onset);
        onset_sq += f.onset * f.onset;
        summary.onset[4] += f.onset_low;
        if (frame_time(k) - beat_time).abs() <= 1.5 * HOP as f64 / ANALYSIS_RATE as f64 {
            summary.onset[2] = summary.onset[2].max(f.onset);
            summary.onset[5] = summary.onset[5].max(f.onset_low);
        }
        let quarter = (((k - lo) as f32 / quarter_len) as usize).min(3);
        summary.onset_quarters[quarter] += f.onset;
        quarter_counts[quarter] += 1.0;
        summary.band_flux[0] += f.onset_low;
        summary.band_flux[1] += f.onset_mid;
        summary.band_flux[2] += f.onset_high;
    }
    let std = |sum: f32, sq: f32| (sq / n - (sum / n).powi(2)).max(0.0).sqrt();
    for m in &mut summary.mel {
        *m /= n;
    }
    for ((mean, deviation), sq) in summary
        .mfcc_mean
        .iter_mut()
        .zip(&mut summary.mfcc_std)
        .zip(mfcc_sq)
    {
        *deviation = std(*mean, sq);
        *mean /= n;
    }
    for c in &mut summary.chroma {
        *c /= n;
    }
    for c in &mut summary.contrast {
        *c /= n;
    }
    for ((mean, deviation), sq) in summary
        .shape_mean
        .iter_mut()
        .zip(&mut summary.shape_std)
        .zip(shape_sq)
    {
        *deviation = std(*mean, sq);
        *mean /= n;
    }
    summary.loudness[0] /= n;
    summary.onset[3] = std(summary.onset[0], onset_sq);
    summary.onset[0] /= n;
    summary.onset[4] /= n;
    for (q, count) in summary.onset_quarters.iter_mut().zip(quarter_counts) {
        if count > 0.0 {
            *q /= count;
        }
    }
    for b in &mut summary.band_flux {
        *b /= n;
    }
    summary
}

/// Cosine similarity (0 when either vector is all zero).
pub(crate) fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    if na < 1e-9 || nb < 1e-9 {
        0.0
    } else {
        dot / (na * nb)
    }
}

fn period_of(grid: &BeatGrid, beat: usize) -> f64 {
    let n = grid.len();
    if n < 2 {
        return 0.5;
    }
    if beat + 1 < n {
        grid.beats[beat + 1] - grid.beats[beat]
    } else {
        grid.beats[n - 1] - grid.beats[n - 2]
    }
}

/// Bars completed before beat `beat`, counted from the first downbeat (negative before it).
fn bar_index(grid: &BeatGrid, beat: usize, first_downbeat: Option<usize>) -> i64 {
    match first_downbeat {
        Some(first) if beat >= first => {
            grid.beat_in_bar[first..=beat]
                .iter()
                .filter(|&&p| p == 0)
                .count() as i64
                - 1
        }
        _ => -1,
    }
}

/// Writes the 121 features of beat `beat` into `out`.
///
/// `history` holds the summaries of beats `beat + 1 - history.len() ..= beat` (the current beat
/// last); at most the last [`CONTEXT_BEATS`] + 1 are read.
pub fn beat_features_into(
    grid: &BeatGrid,
    beat: usize,
    history: &[BeatSummary],
    first_downbeat: Option<usize>,
    out: &mut [f32],
) {
    debug_assert_eq!(out.len(), BEAT_FEATURES);
    out.fill(0.0);
    let Some(current) = history.last() else {
        return;
    };
    let back = |k: usize| -> Option<&BeatSummary> {
        (k < history.len() && k <= beat).then(|| &history[history.len() - 1 - k])
    };
    out[0..20].copy_from_slice(&current.mel);
    out[20..33].copy_from_slice(&current.mfcc_mean);
    out[33..46].copy_from_slice(&current.mfcc_std);
    out[46..58].copy_from_slice(&current.chroma);
    out[58..65].copy_from_slice(&current.contrast);
    out[65..69].copy_from_slice(&current.shape_mean);
    out[69..73].copy_from_slice(&current.shape_std);
    out[73..76].copy_from_slice(&current.loudness);
    out[76] = back(1).map_or(0.0, |p| current.loudness[0] - p.loudness[0]);
    out[77..83].copy_from_slice(&current.onset);

    let period = period_of(grid, beat).max(1e-3);
    out[83] = (60.0 / period / 120.0).log2() as f32;
    out[84] = period as f32;
    if beat > 0 {
        out[85] = (period / period_of(grid, beat - 1).max(1e-3)).log2() as f32;
    }
    let from = beat.saturating_sub(7);
    let mut recent = [0.0f64; 8];
    let count = beat - from + 1;
    for (slot, b) in recent.iter_mut().zip(from..=beat) {
        *slot = period_of(grid, b).max(1e-3);
    }
    let recent = &mut recent[..count];
    recent.sort_by(f64::total_cmp);
    out[86] = (period / recent[count / 2]).log2() as f32;

    let meter = grid.meter.max(1) as usize;
    bar_features_into(grid, beat, bar_index(grid, beat, first_downbeat), out);

    let vector = current.similarity_vector();
    for (slot, k) in [1usize, 2, 4, 8, 16, 32].into_iter().enumerate() {
        out[101 + slot] = back(k).map_or(0.0, |p| cosine(&vector, &p.similarity_vector()));
    }
    for (slot, bars) in [1usize, 2, 4, 8].into_iter().enumerate() {
        let k = bars * meter;
        if k <= CONTEXT_BEATS {
            out[107 + slot] = back(k).map_or(0.0, |p| cosine(&vector, &p.similarity_vector()));
        }
    }
    if let (Some(_), Some(_)) = (back(7), back(0)) {
        let mut recent = [0.0f32; SIMILARITY_WIDTH];
        let mut earlier = [0.0f32; SIMILARITY_WIDTH];
        for k in 0..4 {
            for (r, v) in recent
                .iter_mut()
                .zip(back(k).map(|s| s.similarity_vector()).unwrap_or_default())
            {
                *r += v;
            }
            for (e, v) in earlier.iter_mut().zip(
                back(k + 4)
                    .map(|s| s.similarity_vector())
                    .unwrap_or_default(),
            ) {
                *e += v;
            }
        }
        out[111] = 1.0 - cosine(&recent, &earlier);
    }
    if let Some(previous) = back(1) {
        out[112] = current
            .chroma
            .iter()
            .zip(&previous.chroma)
            .map(|(a, b)| (a - b).abs())
            .sum::<f32>()
            / N_CHROMA as f32;
        out[113] = current
            .mfcc_mean
            .iter()
            .zip(&previous.mfcc_mean)
            .map(|(a, b)| (a - b) * (a - b))
            .sum::<f32>()
            .sqrt()
            / N_MFCC as f32;
    }
    out[114..118].copy_from_slice(&current.onset_quarters);
    out[118..121].copy_from_slice(&current.band_flux);
}

/// The features read from the bar lines alone: position in the bar, meter, and the phase in
/// 2-, 4- and 8-bar phrases. They change when bar lines move ([`rewrite_bar_features`]).
pub const BAR_FEATURES: std::ops::Range<usize> = 87..101;

/// Writes the [`BAR_FEATURES`] of beat `beat`, which lies in bar `bar` (counted from the
/// first downbeat, -1 before it), into the beat's row `out`.
fn bar_features_into(grid: &BeatGrid, beat: usize, bar: i64, out: &mut [f32]) {
    out[BAR_FEATURES].fill(0.0);
    let meter = grid.meter.max(1) as usize;
    let position = grid.beat_in_bar.get(beat).copied().unwrap_or(0) as usize;
    if position < 4 {
        out[87 + position] = 1.0;
    } else {
        out[91] = 1.0;
    }
    out[92] = meter as f32 / 4.0;
    let bar_phase = std::f64::consts::TAU * position as f64 / meter as f64;
    out[93] = bar_phase.sin() as f32;
    out[94] = bar_phase.cos() as f32;
    for (slot, bars) in [2i64, 4, 8].into_iter().enumerate() {
        let phase = (bar.rem_euclid(bars) as f64 + position as f64 / meter as f64) / bars as f64;
        let angle = std::f64::consts::TAU * phase;
        out[95 + 2 * slot] = angle.sin() as f32;
        out[96 + 2 * slot] = angle.cos() as f32;
    }
}

/// Rewrites the [`BAR_FEATURES`] of every row of `features` (the first beats of `grid`, 121
/// values each) for `grid`'s bar lines: what [`beat_features_into`] would write for them, the
/// rest of each row untouched.
pub fn rewrite_bar_features(grid: &BeatGrid, features: &mut [f32]) {
    let mut downbeats_seen = 0i64;
    for (beat, row) in features.chunks_exact_mut(BEAT_FEATURES).enumerate() {
        if grid.beat_in_bar.get(beat) == Some(&0) {
            downbeats_seen += 1;
        }
        bar_features_into(grid, beat, downbeats_seen - 1, row);
    }
}

/// The 121 features of every beat of `grid`, from all the frames of a track.
pub fn track_features(frames: &[Frame], grid: &BeatGrid) -> cutscore_core::features::FeatureMatrix {
    let summaries: Vec<BeatSummary> = (0..grid.len())
        .map(|beat| summarize_beat(frames, grid, beat))
        .collect();
    let first_downbeat = grid.beat_in_bar.iter().position(|&p| p == 0);
    let mut matrix = cutscore_core::features::FeatureMatrix::zeros(grid.len());
    for beat in 0..grid.len() {
        let from = beat.saturating_sub(CONTEXT_BEATS);
        beat_features_into(
            grid,
            beat,
            &summaries[from..=beat],
            first_downbeat,
            matrix.row_mut(beat),
        );
    }
    matrix
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frontend::analyse_frames;

    #[test]
    fn the_table_covers_every_feature_once() {
        let mut next = 0;
        for group in FEATURE_TABLE {
            assert_eq!(
                group.start, next,
                "{} starts at {}",
                group.name, group.start
            );
            next += group.len;
        }
        assert_eq!(next, BEAT_FEATURES);
    }

    #[test]
    fn the_documented_table_matches_the_code() {
        let doc = include_str!("../../docs/features.md");
        for group in FEATURE_TABLE {
            let row = format!(
                "| {}..{} | `{}` | {} |",
                group.start,
                group.start + group.len,
                group.name,
                group.len
            );
            assert!(doc.contains(&row), "docs/features.md lacks {row}");
        }
        assert!(doc.contains(&format!(
            "feature schema v{}",
            cutscore_core::features::FEATURE_SCHEMA_VERSION
        )));
    }

    /// Clicks every 0.5 s with a 440 Hz tone on even beats and 660 Hz on odd beats.
    fn clicks_and_tones(seconds: f32) -> Vec<f32> {
        let rate = 22_050usize;
        let mut out = vec![0.0f32; (seconds * rate as f32) as usize];
        for (i, chunk) in out.chunks_mut(rate / 2).enumerate() {
            let freq = if i % 2 == 0 { 440.0 } else { 660.0 };
            for (n, s) in chunk.iter_mut().enumerate() {
                let t = n as f32 / rate as f32;
                *s = 0.3 * (std::f32::consts::TAU * freq * t).sin()
                    + if n < 100 { 0.9 } else { 0.0 };
            }
        }
        out
    }

    #[test]
    fn features_follow_the_signal_and_the_grid() {
        let audio = clicks_and_tones(10.0);
        let frames = analyse_frames(&audio, 22_050).unwrap();
        let grid = BeatGrid::regular(0.0, 0.5, 20, 4, 0).unwrap();
        let matrix = track_features(&frames, &grid);
        matrix.validate().unwrap();
        for beat in 1..19 {
            let row = matrix.row(beat);
            // Chroma: A (9) on even beats, E (4) on odd beats (660 Hz).
            let loudest = (46..58).max_by(|&a, &b| row[a].total_cmp(&row[b])).unwrap() - 46;
            assert_eq!(loudest, if beat % 2 == 0 { 9 } else { 4 }, "beat {beat}");
            // 120 BPM: log2(120 / 120) = 0, period 0.5 s.
            assert!(row[83].abs() < 1e-5 && (row[84] - 0.5).abs() < 1e-6);
            // Bar position one-hot.
            assert_eq!(row[87 + beat % 4], 1.0);
            // Two beats back sounds the same; one beat back does not.
            if beat >= 2 {
                assert!(row[102] > 0.95, "beat {beat}: {}", row[102]);
                assert!(row[101] < row[102] - 0.05, "beat {beat}: {}", row[101]);
            }
            // The click is in the first quarter of the beat.
            assert!(row[114] > row[116], "beat {beat}");
            assert!(row.iter().all(|v| v.is_finite() && v.abs() < 20.0));
        }
    }

    #[test]
    fn rewriting_bar_features_gives_what_the_moved_grid_computes() {
        let audio = clicks_and_tones(10.0);
        let frames = analyse_frames(&audio, 22_050).unwrap();
        let tracked = BeatGrid::regular(0.0, 0.5, 20, 4, 0).unwrap();
        // The same beats with the bar lines one beat later.
        let moved = BeatGrid::regular(0.0, 0.5, 20, 4, 1).unwrap();
        assert_eq!(tracked.beats, moved.beats);
        let mut features = track_features(&frames, &tracked);
        rewrite_bar_features(&moved, features.as_mut_slice());
        assert_eq!(features, track_features(&frames, &moved));
        assert_ne!(features, track_features(&frames, &tracked));
    }
}
