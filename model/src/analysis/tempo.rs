//! Tempo from the onset envelope: the beat-tracking detection function, windowed
//! autocorrelation with a log-normal tempo prior, and the metrical-level (octave) test.
//!
//! The detection function weights the front end's band fluxes towards low and mid bands (kick,
//! snare, bass and chord attacks) and away from the high band, where off-beat hi-hats would
//! otherwise pull the tempo up an octave. The tempo of a window is the autocorrelation lag that
//! maximises `acf(L) * prior(L)`, the prior a log-normal around 120 BPM as in Ellis (2007) and
//! librosa's `beat.tempo`, refined to a fraction of a frame by a parabola through the peak.
//!
//! The octave is then settled by where the strong onsets fall (see [`octave_vote`]): a level
//! whose every other beat is weak is a subdivision, so the beat is twice as slow; a level whose
//! midpoints are as strong as its beats is half the true beat, so the beat is twice as fast.
//! This follows the metrical-salience reasoning of Klapuri, Eronen & Astola (2006) in a simple
//! form: the beat is the fastest level at which onsets do not alternate strong/weak.

use super::frontend::{Frame, frame_rate};

/// Slowest tempo considered, in BPM.
pub const MIN_BPM: f64 = 40.0;
/// Fastest tempo considered, in BPM.
pub const MAX_BPM: f64 = 240.0;
/// Centre of the tempo prior, in BPM.
pub const PRIOR_BPM: f64 = 120.0;
/// Width of the tempo prior, in octaves.
pub const PRIOR_OCTAVES: f64 = 1.0;

/// The beat-tracking detection function of one frame.
pub fn detection(frame: &Frame) -> f32 {
    frame.onset_low + frame.onset_mid + 0.25 * frame.onset_high
}

/// The streaming tracker's detection function: the hats count twice as much as in
/// [`detection`]. The offline tracker sees the whole song and finds the beat where the band is
/// full; the streaming one must lock in the first bars, where a sparse intro may mark its
/// beats with hats alone (a 3/4 intro with a kick on each downbeat and hats on every beat
/// otherwise reads as a pulse every bar).
pub fn streaming_detection(frame: &Frame) -> f32 {
    frame.onset_low + frame.onset_mid + 0.5 * frame.onset_high
}

/// Beat period in frames for a tempo in BPM.
pub fn period_frames(bpm: f64) -> f64 {
    60.0 * frame_rate() / bpm
}

/// Tempo in BPM for a beat period in frames.
pub fn bpm_of(period_frames: f64) -> f64 {
    60.0 * frame_rate() / period_frames
}

/// Shortest lag searched (fastest tempo), in frames.
pub fn min_lag() -> usize {
    period_frames(MAX_BPM).floor() as usize
}

/// Longest lag searched (slowest tempo), in frames.
pub fn max_lag() -> usize {
    period_frames(MIN_BPM).ceil() as usize
}

/// Weight of the tempo prior for a lag.
pub fn prior(lag: f64) -> f64 {
    let octaves = (bpm_of(lag) / PRIOR_BPM).log2();
    (-0.5 * (octaves / PRIOR_OCTAVES).powi(2)).exp()
}

/// Normalised autocorrelation of `odf` (mean removed) for lags `0..acf.len()`, written into
/// `acf`. `acf[0]` is 1 unless the envelope is flat, then all are 0.
pub fn autocorrelation_into(odf: &[f32], acf: &mut [f32]) {
    acf.fill(0.0);
    let n = odf.len();
    if n < 2 {
        return;
    }
    let mean = odf.iter().sum::<f32>() / n as f32;
    let energy: f32 = odf.iter().map(|v| (v - mean) * (v - mean)).sum();
    if energy <= 1e-9 {
        return;
    }
    for (lag, slot) in acf.iter_mut().enumerate().take(n) {
        let sum: f32 = odf[lag..]
            .iter()
            .zip(odf)
            .map(|(a, b)| (a - mean) * (b - mean))
            .sum();
        // Unbiased: divide by the overlap so long lags are not penalised.
        *slot = sum / energy * n as f32 / (n - lag) as f32;
    }
}

/// The best beat period (fractional frames) of an autocorrelation under the prior, with the
/// strength of its peak (`acf * prior`), or `None` when nothing periodic is there.
pub fn best_period(acf: &[f32]) -> Option<(f64, f32)> {
    let hi = max_lag().min(acf.len().saturating_sub(2));
    let lo = min_lag().max(2);
    if hi <= lo {
        return None;
    }
    let mut best: Option<(usize, f32)> = None;
    for lag in lo..=hi {
        let is_peak = acf[lag] >= acf[lag - 1] && acf[lag] >= acf[lag + 1];
        if !is_peak || acf[lag] <= 0.0 {
            continue;
        }
        let score = acf[lag] * prior(lag as f64) as f32;
        if best.is_none_or(|(_, s)| score > s) {
            best = Some((lag, score));
        }
    }
    let (lag, score) = best?;
    Some((refine_peak(acf, lag), score))
}

/// Fractional position of the peak at `index` from a parabola through it and its neighbours.
pub fn refine_peak(values: &[f32], index: usize) -> f64 {
    if index == 0 || index + 1 >= values.len() {
        return index as f64;
    }
    let (a, b, c) = (values[index - 1], values[index], values[index + 1]);
    let denominator = a - 2.0 * b + c;
    if denominator.abs() < 1e-12 {
        return index as f64;
    }
    let offset = (0.5 * (a - c) / denominator).clamp(-0.5, 0.5);
    index as f64 + offset as f64
}

/// Which metrical level the onsets at some beats point to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OctaveVote {
    /// The beats alternate strong and weak: the true beat is every other one (half the tempo).
    Slower,
    /// The midpoints between beats are as strong as the beats: the true beat is twice as fast.
    Faster,
    /// The level is consistent.
    Keep,
}

/// Every other beat weaker than this fraction of the strong ones marks a subdivision.
pub const ALTERNATION_RATIO: f32 = 0.3;
/// Midpoints at least this fraction as strong as the beats mark a level twice as fast.
pub const MIDPOINT_RATIO: f32 = 0.5;

/// Votes on the metrical level from the mean detection at even beats, odd beats and the
/// midpoints between beats.
pub fn octave_vote(even: f32, odd: f32, midpoints: f32) -> OctaveVote {
    octave_vote_with(even, odd, midpoints, ALTERNATION_RATIO, MIDPOINT_RATIO)
}

/// The midpoint ratio for beats `period` frames apart: [`MIDPOINT_RATIO`], lowered by how much
/// likelier the tempo prior finds twice the tempo when that is closer to the prior's centre.
/// Doubling a slow tempo towards the centre (55 -> 110 BPM, where a half-time groove hides the
/// beat) takes less evidence than doubling one already near it (100 -> 200 BPM), where
/// off-beat chords and bass would otherwise win.
pub fn midpoint_ratio(period: f64) -> f32 {
    (f64::from(MIDPOINT_RATIO) * (prior(period) / prior(period / 2.0)).min(1.0)) as f32
}

/// [`octave_vote`] with other ratios (the streaming tracker, which sees only a few seconds,
/// asks for stronger evidence before changing octave).
pub fn octave_vote_with(
    even: f32,
    odd: f32,
    midpoints: f32,
    alternation_ratio: f32,
    midpoint_ratio: f32,
) -> OctaveVote {
    let strong = even.max(odd);
    let weak = even.min(odd);
    if strong <= 1e-9 {
        return OctaveVote::Keep;
    }
    if weak < alternation_ratio * strong {
        OctaveVote::Slower
    } else if midpoints > midpoint_ratio * 0.5 * (even + odd) {
        OctaveVote::Faster
    } else {
        OctaveVote::Keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pulses(period: usize, len: usize, strong_every: usize, weak: f32) -> Vec<f32> {
        (0..len)
            .map(|i| {
                if i % period == 0 {
                    if (i / period).is_multiple_of(strong_every) {
                        1.0
                    } else {
                        weak
                    }
                } else {
                    0.0
                }
            })
            .collect()
    }

    #[test]
    fn finds_the_period_of_a_pulse_train() {
        // 21.5 frames = 120 BPM at 43.07 frames/s; use an integer train of 22 frames.
        let odf = pulses(22, 400, 1, 1.0);
        let mut acf = vec![0.0; 80];
        autocorrelation_into(&odf, &mut acf);
        let (period, _) = best_period(&acf).unwrap();
        assert!((period - 22.0).abs() < 0.3, "period {period}");
        let flat = vec![0.5; 400];
        autocorrelation_into(&flat, &mut acf);
        assert!(best_period(&acf).is_none());
    }

    #[test]
    fn votes_follow_the_strength_of_alternate_beats_and_midpoints() {
        assert_eq!(octave_vote(1.0, 0.2, 0.1), OctaveVote::Slower);
        assert_eq!(octave_vote(1.0, 0.9, 0.8), OctaveVote::Faster);
        assert_eq!(octave_vote(1.0, 0.9, 0.2), OctaveVote::Keep);
        assert_eq!(octave_vote(0.0, 0.0, 0.0), OctaveVote::Keep);
    }

    #[test]
    fn doubling_towards_the_prior_centre_takes_less_evidence() {
        let at = |bpm: f64| midpoint_ratio(period_frames(bpm));
        assert_eq!(at(100.0), MIDPOINT_RATIO);
        assert_eq!(at(170.0), MIDPOINT_RATIO);
        assert!(at(55.0) < 0.3 && at(55.0) > 0.2, "{}", at(55.0));
        assert!(at(72.0) < at(85.0) && at(85.0) <= MIDPOINT_RATIO);
    }

    #[test]
    fn the_prior_prefers_moderate_tempi() {
        assert!(prior(period_frames(120.0)) > prior(period_frames(60.0)));
        assert!(prior(period_frames(120.0)) > prior(period_frames(240.0)));
        assert!((bpm_of(period_frames(97.0)) - 97.0).abs() < 1e-9);
    }
}
