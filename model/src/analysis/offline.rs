//! The offline beat tracker: a whole track at once, free to look ahead.
//!
//! 1. Detection function ([`tempo::detection`]) of every frame, with its moving average removed
//!    and scaled to unit standard deviation.
//! 2. Tempo: autocorrelation in 6-second windows every 0.75 s; the track's tempo is the peak of
//!    their mean under the log-normal prior, then each window follows its own peak near its
//!    neighbour's, giving a tempo curve that follows ramps and steps.
//! 3. Beats: dynamic programming over the detection function (Ellis 2007, "Beat tracking by
//!    dynamic programming", as in librosa's `beat_track`), with the local period of the tempo
//!    curve and Ellis's tightness of 100; beat times are refined to a fraction of a frame.
//! 4. Octave: [`tempo::octave_vote`] on the tracked beats (its midpoint ratio from
//!    [`tempo::midpoint_ratio`], so a half-time groove at 55 BPM is doubled to 110); a vote to
//!    halve or double the tempo re-runs steps 2-3 at that level. Where the midpoints have some
//!    onsets but too few to vote, the harmony decides: chords change on beats, so beats whose
//!    midpoints carry more chord change than they do are the off-beats of a level twice as
//!    slow (a fast song followed on its backbeats).
//! 5. Bars: each meter (3 or 4) and phase is scored by how much more the harmony (chroma) and
//!    the low-band onsets change at its bar starts than elsewhere; chord changes and kicks mark
//!    downbeats (the bar-level periodicity idea of Goto 2001 and Davies & Plumbley 2006).
//!
//! Silence, DC and noise give an empty or low-confidence grid, never an error.

use super::beat_features::{BeatSummary, summarize_beat};
use super::frontend::{Frame, frame_time};
use super::tempo::{self, OctaveVote};
use crate::grid::BeatGrid;

/// Autocorrelation window, in frames (about 6 s).
const WINDOW: usize = 256;
/// Hop between tempo windows, in frames (about 0.75 s).
const WINDOW_HOP: usize = 32;
/// Ellis's tightness: how strongly beat intervals are held to the local period.
const TIGHTNESS: f64 = 100.0;
/// Half-width of the moving average removed from the detection function, in frames.
const DETREND: usize = 8;
/// Mean autocorrelation at the beat period that counts as fully periodic.
const PERIODIC_ACF: f32 = 0.3;
/// Chords changing this much more at the midpoints than at the beats mark a level twice as
/// slow as the true beat, tracked on its off-beats.
const HARMONY_MIDPOINT_RATIO: f32 = 1.2;
/// ... provided the midpoints carry at least this fraction of the beats' onsets.
const MIN_MIDPOINT_ONSETS: f32 = 0.25;
/// Meters considered for bars.
pub const METERS: [u8; 2] = [4, 3];

/// What the offline tracker found.
#[derive(Debug, Clone, PartialEq)]
pub struct OfflineBeats {
    pub grid: BeatGrid,
    /// Median tempo of the beats, BPM (0 without beats).
    pub tempo_bpm: f64,
    /// 0 (no pulse found) to 1 (beats sit on strong, regular onsets).
    pub confidence: f32,
}

/// The normalised detection function of a track.
pub fn detection_function(frames: &[Frame]) -> Vec<f32> {
    let raw: Vec<f32> = frames.iter().map(tempo::detection).collect();
    let n = raw.len();
    let mut prefix = vec![0.0f64; n + 1];
    for (i, v) in raw.iter().enumerate() {
        prefix[i + 1] = prefix[i] + *v as f64;
    }
    let mut odf: Vec<f32> = (0..n)
        .map(|i| {
            let lo = i.saturating_sub(DETREND);
            let hi = (i + DETREND + 1).min(n);
            let mean = (prefix[hi] - prefix[lo]) / (hi - lo) as f64;
            (raw[i] - mean as f32).max(0.0)
        })
        .collect();
    let mean = odf.iter().sum::<f32>() / n.max(1) as f32;
    let std = (odf.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / n.max(1) as f32).sqrt();
    if std > 1e-6 {
        for v in &mut odf {
            *v /= std;
        }
    } else {
        odf.fill(0.0);
    }
    odf
}

/// Autocorrelations of the tempo windows, and the frame at each window's centre.
fn window_acfs(odf: &[f32]) -> Vec<(usize, Vec<f32>)> {
    let lags = tempo::max_lag() + 3;
    let mut out = Vec::new();
    if odf.len() < 2 * lags {
        return out;
    }
    let mut start = 0;
    loop {
        let end = (start + WINDOW).min(odf.len());
        let mut acf = vec![0.0; lags];
        tempo::autocorrelation_into(&odf[start..end], &mut acf);
        out.push(((start + end) / 2, acf));
        if end == odf.len() {
            break;
        }
        start += WINDOW_HOP;
    }
    out
}

/// The local period of each window, following peaks within a quarter of the neighbour's.
fn follow_periods(acfs: &[(usize, Vec<f32>)], seed: f64) -> Vec<f64> {
    let lo_lag = tempo::min_lag().max(2) as f64;
    let hi_lag = (tempo::max_lag() as f64 * 2.0).min(acfs[0].1.len() as f64 - 2.0);
    let search = |acf: &[f32], around: f64| -> Option<f64> {
        let lo = ((around * 0.8).floor() as usize).max(1);
        let hi = ((around * 1.25).ceil() as usize).min(acf.len() - 2);
        let mut best: Option<(usize, f32)> = None;
        for lag in lo..=hi {
            let is_peak = acf[lag] >= acf[lag - 1] && acf[lag] >= acf[lag + 1];
            // Closeness to the expected period breaks near-ties.
            let closeness = 1.0 - 0.5 * ((lag as f64 / around).ln().abs() as f32);
            let score = acf[lag] * closeness;
            if is_peak && acf[lag] > 0.1 && best.is_none_or(|(_, s)| score > s) {
                best = Some((lag, score));
            }
        }
        best.map(|(lag, _)| tempo::refine_peak(acf, lag))
    };
    // Start from the window that agrees best with the seed, then walk both ways.
    let anchor = (0..acfs.len())
        .max_by(|&a, &b| {
            let value = |i: usize| {
                let lag = seed.round() as usize;
                acfs[i].1.get(lag).copied().unwrap_or(0.0)
            };
            value(a).total_cmp(&value(b))
        })
        .unwrap_or(0);
    let mut periods = vec![seed; acfs.len()];
    let clamp = |p: f64| p.clamp(lo_lag, hi_lag.max(lo_lag));
    periods[anchor] = clamp(search(&acfs[anchor].1, seed).unwrap_or(seed));
    for i in anchor + 1..acfs.len() {
        let previous = periods[i - 1];
        periods[i] = clamp(search(&acfs[i].1, previous).unwrap_or(previous));
    }
    for i in (0..anchor).rev() {
        let next = periods[i + 1];
        periods[i] = clamp(search(&acfs[i].1, next).unwrap_or(next));
    }
    // A median of three removes single-window slips.
    let mut smoothed = periods.clone();
    for i in 1..periods.len().saturating_sub(1) {
        let mut three = [periods[i - 1], periods[i], periods[i + 1]];
        three.sort_by(f64::total_cmp);
        smoothed[i] = three[1];
    }
    smoothed
}

/// The period at every frame, interpolated between window centres.
fn period_curve(acfs: &[(usize, Vec<f32>)], periods: &[f64], frames: usize) -> Vec<f64> {
    (0..frames)
        .map(|k| {
            let next = acfs.partition_point(|(centre, _)| *centre <= k);
            if next == 0 {
                periods[0]
            } else if next == acfs.len() {
                periods[acfs.len() - 1]
            } else {
                let (c0, c1) = (acfs[next - 1].0 as f64, acfs[next].0 as f64);
                let w = (k as f64 - c0) / (c1 - c0);
                periods[next - 1] * (1.0 - w) + periods[next] * w
            }
        })
        .collect()
}

/// Ellis's dynamic programme with a local period per frame; returns beat frames.
fn dynamic_programme(odf: &[f32], period: &[f64]) -> Vec<usize> {
    let n = odf.len();
    if n == 0 {
        return Vec::new();
    }
    let local: Vec<f64> = (0..n)
        .map(|k| {
            let left = if k > 0 { odf[k - 1] } else { 0.0 };
            let right = if k + 1 < n { odf[k + 1] } else { 0.0 };
            (0.25 * left + 0.5 * odf[k] + 0.25 * right) as f64
        })
        .collect();
    let mut cumulative = vec![0.0f64; n];
    let mut backlink = vec![usize::MAX; n];
    for k in 0..n {
        let p = period[k];
        let lo = k as f64 - 2.0 * p;
        let hi = k as f64 - 0.5 * p;
        let mut best = f64::NEG_INFINITY;
        let mut best_j = usize::MAX;
        if hi >= 0.0 {
            let lo = lo.max(0.0).round() as usize;
            let hi = hi.round() as usize;
            for (j, &c) in cumulative.iter().enumerate().take(hi + 1).skip(lo) {
                let gap = (k - j) as f64 / p;
                let score = c - TIGHTNESS * gap.ln().powi(2);
                if score > best {
                    best = score;
                    best_j = j;
                }
            }
        }
        if best_j != usize::MAX && best > 0.0 {
            cumulative[k] = local[k] + best;
            backlink[k] = best_j;
        } else {
            cumulative[k] = local[k];
        }
    }
    // End on the best cumulative score within the last period.
    let tail = (n as f64 - period[n - 1]).max(0.0) as usize;
    let mut k = (tail..n)
        .max_by(|&a, &b| cumulative[a].total_cmp(&cumulative[b]))
        .unwrap_or(n - 1);
    let mut beats = vec![k];
    while backlink[k] != usize::MAX {
        k = backlink[k];
        beats.push(k);
    }
    beats.reverse();
    beats
}

/// Largest detection value within one frame of `k`.
fn peak_near(odf: &[f32], k: f64) -> f32 {
    let centre = k.round().max(0.0) as usize;
    let lo = centre.saturating_sub(1);
    let hi = (centre + 2).min(odf.len());
    odf[lo.min(hi)..hi].iter().copied().fold(0.0, f32::max)
}

/// Mean detection at even beats, odd beats and the midpoints between beats.
fn beat_strengths(odf: &[f32], beats: &[usize]) -> (f32, f32, f32) {
    let mut sums = [0.0f32; 3];
    let mut counts = [0.0f32; 3];
    for (i, &b) in beats.iter().enumerate() {
        sums[i % 2] += peak_near(odf, b as f64);
        counts[i % 2] += 1.0;
        if let Some(&next) = beats.get(i + 1) {
            sums[2] += peak_near(odf, (b + next) as f64 / 2.0);
            counts[2] += 1.0;
        }
    }
    let mean = |i: usize| {
        if counts[i] > 0.0 {
            sums[i] / counts[i]
        } else {
            0.0
        }
    };
    (mean(0), mean(1), mean(2))
}

/// Mean chroma change across the tracked beats and across the midpoints between them: the L1
/// distance between the mean chroma of the quarter-beat just before a point and the quarter-beat
/// just after it. Chords change on beats (mostly on downbeats), not half-way between them.
fn harmonic_change(frames: &[Frame], beats: &[usize]) -> (f32, f32) {
    let change_at = |point: f64, half: usize| -> Option<f32> {
        let centre = point.round() as usize;
        if centre < half || centre + half > frames.len() {
            return None;
        }
        let mean = |range: std::ops::Range<usize>| {
            let mut sum = [0.0f32; super::frontend::N_CHROMA];
            for frame in &frames[range] {
                for (s, c) in sum.iter_mut().zip(&frame.chroma) {
                    *s += c;
                }
            }
            sum
        };
        let (before, after) = (mean(centre - half..centre), mean(centre..centre + half));
        Some(
            before
                .iter()
                .zip(&after)
                .map(|(a, b)| (a - b).abs())
                .sum::<f32>()
                / half as f32,
        )
    };
    let (mut on, mut mid) = ((0.0f32, 0usize), (0.0f32, 0usize));
    for pair in beats.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        let half = ((b - a) / 4).max(1);
        if let Some(c) = change_at(a as f64, half) {
            on = (on.0 + c, on.1 + 1);
        }
        if let Some(c) = change_at((a + b) as f64 / 2.0, half) {
            mid = (mid.0 + c, mid.1 + 1);
        }
    }
    let mean = |(sum, n): (f32, usize)| if n > 0 { sum / n as f32 } else { 0.0 };
    (mean(on), mean(mid))
}

/// Beat times, refined between frames by a parabola through the detection peak.
fn beat_times(odf: &[f32], beats: &[usize]) -> Vec<f64> {
    let mut times: Vec<f64> = beats
        .iter()
        .map(|&k| {
            let refined =
                if k > 0 && k + 1 < odf.len() && odf[k] >= odf[k - 1] && odf[k] >= odf[k + 1] {
                    tempo::refine_peak(odf, k)
                } else {
                    k as f64
                };
            let base = frame_time(k);
            base + (refined - k as f64) * (frame_time(1) - frame_time(0))
        })
        .collect();
    times.dedup_by(|b, a| *b <= *a);
    times
}

/// Tracks beats and bars over all the frames of a track lasting `duration_s` seconds.
pub fn track(frames: &[Frame], duration_s: f64) -> OfflineBeats {
    let empty = || OfflineBeats {
        grid: BeatGrid {
            beats: Vec::new(),
            beat_in_bar: Vec::new(),
            meter: 4,
            duration_s: duration_s.max(0.0),
        },
        tempo_bpm: 0.0,
        confidence: 0.0,
    };
    let odf = detection_function(frames);
    let acfs = window_acfs(&odf);
    if acfs.is_empty() {
        return empty();
    }
    let lags = acfs[0].1.len();
    let mut mean_acf = vec![0.0f32; lags];
    for (_, acf) in &acfs {
        for (m, a) in mean_acf.iter_mut().zip(acf) {
            *m += a / acfs.len() as f32;
        }
    }
    let Some((mut seed, _)) = tempo::best_period(&mean_acf) else {
        return empty();
    };
    let (lo_lag, hi_lag) = (tempo::min_lag() as f64, tempo::max_lag() as f64);
    let mut beats = Vec::new();
    let mut last_vote = OctaveVote::Keep;
    for _ in 0..3 {
        let periods = follow_periods(&acfs, seed);
        let curve = period_curve(&acfs, &periods, odf.len());
        beats = dynamic_programme(&odf, &curve);
        let (even, odd, mid) = beat_strengths(&odf, &beats);
        let vote = match tempo::octave_vote_with(
            even,
            odd,
            mid,
            tempo::ALTERNATION_RATIO,
            tempo::midpoint_ratio(seed),
        ) {
            // Too few onsets between the beats to double the tempo, but the chords change
            // there: the beats are the off-beats of a level twice as slow as the true one.
            OctaveVote::Keep if mid > MIN_MIDPOINT_ONSETS * 0.5 * (even + odd) => {
                let (on_beats, midpoints) = harmonic_change(frames, &beats);
                match midpoints > HARMONY_MIDPOINT_RATIO * on_beats {
                    true => OctaveVote::Faster,
                    false => OctaveVote::Keep,
                }
            }
            vote => vote,
        };
        let next = match vote {
            OctaveVote::Slower if seed * 2.0 <= hi_lag => seed * 2.0,
            OctaveVote::Faster if seed / 2.0 >= lo_lag => seed / 2.0,
            _ => break,
        };
        // Never undo the previous move: that would flip-flop.
        let undoes = matches!(
            (last_vote, vote),
            (OctaveVote::Slower, OctaveVote::Faster) | (OctaveVote::Faster, OctaveVote::Slower)
        );
        if undoes {
            break;
        }
        last_vote = vote;
        seed = next;
    }

    let beats = trim_silent_ends(&odf, beats);
    let times = beat_times(&odf, &beats);
    if times.len() < 2 {
        return empty();
    }
    let on_beats: f32 = beats
        .iter()
        .map(|&b| peak_near(&odf, b as f64))
        .sum::<f32>()
        / beats.len() as f32;
    let overall = odf.iter().sum::<f32>() / odf.len() as f32;
    // Two kinds of evidence, both needed: beats sit on strong onsets, and the onsets repeat
    // at the beat period (noise has peaks to sit on but no periodicity).
    let alignment = if overall > 1e-6 {
        ((on_beats / overall - 1.0) / 4.0).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let lag = (seed.round() as usize).min(mean_acf.len() - 1);
    let periodicity = (mean_acf[lag] / PERIODIC_ACF).clamp(0.0, 1.0);
    let confidence = (alignment * periodicity).sqrt();
    let duration_s = duration_s.max(*times.last().unwrap_or(&0.0));
    let (meter, first_position) = find_bars(frames, &times, duration_s);
    let count = times.len();
    let beat_in_bar = (0..count)
        .map(|i| ((first_position as usize + i) % meter as usize) as u8)
        .collect();
    let grid = BeatGrid {
        beats: times,
        beat_in_bar,
        meter,
        duration_s,
    };
    let tempo_bpm = grid.tempo_bpm().unwrap_or(0.0);
    OfflineBeats {
        grid,
        tempo_bpm,
        confidence,
    }
}

/// Drops beats at the start and end that fall where the detection function is silent.
fn trim_silent_ends(odf: &[f32], beats: Vec<usize>) -> Vec<usize> {
    if beats.is_empty() {
        return beats;
    }
    let strengths: Vec<f32> = beats.iter().map(|&b| peak_near(odf, b as f64)).collect();
    let mut sorted = strengths.clone();
    sorted.sort_by(f32::total_cmp);
    let threshold = 0.1 * sorted[sorted.len() / 2];
    // A beat is kept once a beat near it (within two) has an onset.
    let alive = |i: usize| {
        let lo = i.saturating_sub(2);
        let hi = (i + 3).min(strengths.len());
        strengths[lo..hi].iter().any(|&s| s > threshold)
    };
    let first = (0..beats.len()).find(|&i| alive(i)).unwrap_or(beats.len());
    let last = (0..beats.len())
        .rev()
        .find(|&i| alive(i))
        .map_or(0, |i| i + 1);
    if first >= last {
        return Vec::new();
    }
    beats[first..last].to_vec()
}

/// How strongly each beat looks like the start of a bar: its chroma change from the previous
/// beat plus its low-band onset, each scaled to unit mean.
pub fn downbeat_evidence(summaries: &[BeatSummary]) -> Vec<f32> {
    let change: Vec<f32> = summaries
        .iter()
        .enumerate()
        .map(|(i, s)| {
            if i == 0 {
                return 0.0;
            }
            s.chroma
                .iter()
                .zip(&summaries[i - 1].chroma)
                .map(|(a, b)| (a - b).abs())
                .sum()
        })
        .collect();
    let low: Vec<f32> = summaries.iter().map(|s| s.onset[5]).collect();
    let unit = |v: &[f32]| {
        let mean = v.iter().sum::<f32>() / v.len().max(1) as f32;
        if mean > 1e-9 { 1.0 / mean } else { 0.0 }
    };
    let (cs, ls) = (unit(&change), unit(&low));
    change
        .iter()
        .zip(&low)
        .map(|(c, l)| c * cs + 0.5 * l * ls)
        .collect()
}

/// Picks the meter and the position of the first beat from the downbeat evidence.
pub fn choose_bars(evidence: &[f32]) -> (u8, u8) {
    let mut best = (4u8, 0u8, f32::NEG_INFINITY);
    for meter in METERS {
        let m = meter as usize;
        for phase in 0..m {
            let (mut on, mut on_n, mut off, mut off_n) = (0.0f32, 0.0f32, 0.0f32, 0.0f32);
            for (i, &e) in evidence.iter().enumerate().skip(1) {
                if i % m == phase {
                    on += e;
                    on_n += 1.0;
                } else {
                    off += e;
                    off_n += 1.0;
                }
            }
            if on_n < 1.0 || off_n < 1.0 {
                continue;
            }
            let contrast = on / on_n - off / off_n;
            if contrast > best.2 {
                // Beat `phase` is a downbeat, so the first beat is at position (m - phase) % m.
                best = (meter, ((m - phase) % m) as u8, contrast);
            }
        }
    }
    (best.0, best.1)
}

fn find_bars(frames: &[Frame], times: &[f64], duration_s: f64) -> (u8, u8) {
    let provisional = BeatGrid {
        beats: times.to_vec(),
        beat_in_bar: vec![0; times.len()],
        meter: 1,
        duration_s,
    };
    let summaries: Vec<BeatSummary> = (0..times.len())
        .map(|i| summarize_beat(frames, &provisional, i))
        .collect();
    choose_bars(&downbeat_evidence(&summaries))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::analysis::frontend::analyse_frames;

    /// A click track: a low thump on every beat, louder on the first beat of each bar, and a
    /// tone that changes at every bar.
    pub(crate) fn click_track(bpm: f64, meter: usize, seconds: f64, rate: u32) -> Vec<f32> {
        let n = (seconds * rate as f64) as usize;
        let period = 60.0 / bpm;
        let mut out = vec![0.0f32; n];
        let mut beat = 0usize;
        loop {
            let start = (beat as f64 * period * rate as f64).round() as usize;
            if start >= n {
                break;
            }
            let accent = if beat.is_multiple_of(meter) { 1.0 } else { 0.6 };
            let freq = [220.0, 330.0, 262.0, 392.0][(beat / meter) % 4];
            let len = (period * rate as f64) as usize;
            for i in 0..len.min(n - start) {
                let t = i as f32 / rate as f32;
                let thump = accent * (-t * 30.0).exp() * (std::f32::consts::TAU * 60.0 * t).sin();
                let tone = 0.15 * (std::f32::consts::TAU * freq * t).sin();
                out[start + i] += 0.7 * thump + tone;
            }
            beat += 1;
        }
        out
    }

    #[test]
    fn tracks_a_click_track_tempo_beats_and_bars() {
        for (bpm, meter) in [(120.0, 4usize), (95.0, 3), (150.0, 4)] {
            let audio = click_track(bpm, meter, 20.0, 22_050);
            let frames = analyse_frames(&audio, 22_050).unwrap();
            let result = track(&frames, 20.0);
            assert!(
                (result.tempo_bpm - bpm).abs() < 2.0,
                "{bpm}: tempo {}",
                result.tempo_bpm
            );
            assert_eq!(result.grid.meter as usize, meter, "{bpm}");
            let period = 60.0 / bpm;
            for (i, &t) in result.grid.beats.iter().enumerate() {
                let nearest = (t / period).round();
                assert!(
                    (t - nearest * period).abs() < 0.035,
                    "{bpm}: beat {i} at {t}"
                );
                let expected_position = (nearest as usize % meter) as u8;
                assert_eq!(
                    result.grid.beat_in_bar[i], expected_position,
                    "{bpm}: beat {i}"
                );
            }
            assert!(result.confidence > 0.3, "{bpm}: {}", result.confidence);
        }
    }

    #[test]
    fn silence_and_dc_give_no_beats() {
        for level in [0.0f32, 0.5] {
            let frames = analyse_frames(&vec![level; 22_050 * 5], 22_050).unwrap();
            let result = track(&frames, 5.0);
            assert!(result.grid.is_empty(), "level {level}");
            assert_eq!(result.confidence, 0.0);
        }
        let result = track(&[], 0.0);
        assert!(result.grid.is_empty());
    }
}
