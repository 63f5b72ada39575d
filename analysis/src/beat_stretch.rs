//! Stretches of a grid's beats that keep one tempo: the beat nearest a time, the beat period
//! around a beat, and the run of beats whose gaps follow it and whose phase holds. What the
//! user's bar lines ([`crate::given_bar_line`]) and half-beat moves ([`crate::half_beat`]) reach
//! over: a change of tempo, or a gap the tracker put in or left out of the pulse, bounds them.

use std::ops::RangeInclusive;

use crate::bar_phase::ANCHOR_FOLLOW_TOLERANCE;

/// The beat of `beats` (in time order) nearest `time_s`, if any.
pub fn nearest_beat(beats: &[f64], time_s: f64) -> Option<usize> {
    let after = beats.partition_point(|&t| t < time_s);
    [after.checked_sub(1), Some(after)]
        .into_iter()
        .flatten()
        .filter(|&i| i < beats.len())
        .min_by(|&a, &b| {
            (beats[a] - time_s)
                .abs()
                .total_cmp(&(beats[b] - time_s).abs())
        })
}

/// The beat period at beat `i`: the median of the gaps between the beats up to four either side
/// of it (up to nine gaps; infinite for a lone beat, which no gap follows).
pub fn local_period(beats: &[f64], i: usize) -> f64 {
    let from = i.saturating_sub(4).max(1);
    let to = (i + 4).min(beats.len().saturating_sub(1));
    let mut gaps: Vec<f64> = (from..=to).map(|j| beats[j] - beats[j - 1]).collect();
    if gaps.is_empty() {
        return f64::INFINITY;
    }
    gaps.sort_by(f64::total_cmp);
    gaps[gaps.len() / 2]
}

/// Whether the gap before beat `j` (at least 1) is within [`ANCHOR_FOLLOW_TOLERANCE`] of a whole
/// number of `period`s (a gap of two periods, a beat left out, follows).
pub fn gap_follows(beats: &[f64], j: usize, period: f64) -> bool {
    gap_deviation(beats, j, period).abs() <= ANCHOR_FOLLOW_TOLERANCE
}

/// How far the gap before beat `j` (at least 1) lies from a whole number (at least one) of
/// `period`s, in periods.
fn gap_deviation(beats: &[f64], j: usize, period: f64) -> f64 {
    let periods = (beats[j] - beats[j - 1]) / period;
    periods - periods.round().max(1.0)
}

/// Gaps over which a slide of the beats' phase is summed ([`steady_stretch`]): a bar of 4/4.
pub const SLIDE_GAPS: usize = 4;
/// The most the beats' phase may slide over [`SLIDE_GAPS`] gaps, in beat periods: the quarter
/// of a beat a time named may lie from its beat (`given_bar_line::TOLERANCE`).
pub const MAX_SLIDE: f64 = 0.25;

/// The beats around beat `i` whose gaps follow the period there ([`gap_follows`],
/// [`local_period`]) and whose phase does not slide: the deviations of any [`SLIDE_GAPS`]
/// gaps in a row from whole periods sum to at most [`MAX_SLIDE`] of a period. A decoder that
/// moves from the off-beats to the beats over a few beats, each gap within the bound, leaves
/// two stretches.
pub fn steady_stretch(beats: &[f64], i: usize) -> RangeInclusive<usize> {
    let period = local_period(beats, i);
    // The last beat of `gaps` (the beats whose gap before them is walked, outwards) that
    // follows the period and keeps the phase.
    let reach = |gaps: &mut dyn Iterator<Item = usize>| -> Option<usize> {
        let mut recent = [0.0; SLIDE_GAPS];
        let mut reached = None;
        for (n, j) in gaps.enumerate() {
            let deviation = gap_deviation(beats, j, period);
            recent[n % SLIDE_GAPS] = deviation;
            if deviation.abs() > ANCHOR_FOLLOW_TOLERANCE
                || recent.iter().sum::<f64>().abs() > MAX_SLIDE
            {
                break;
            }
            reached = Some(j);
        }
        reached
    };
    let first = reach(&mut (1..=i).rev()).map_or(i, |j| j - 1);
    let last = reach(&mut (i + 1..beats.len())).unwrap_or(i);
    first..=last
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stretch_ends_where_the_tempo_changes_and_spans_a_beat_left_out() {
        // 0.5 s gaps to 6.5 s with one beat left out (a gap of 1 s), then 0.6 s gaps.
        let mut beats: Vec<f64> = (0..14)
            .filter(|&k| k != 6)
            .map(|k| 0.5 * f64::from(k))
            .collect();
        beats.extend((1..8).map(|k| 6.5 + 0.6 * f64::from(k)));
        assert_eq!(local_period(&beats, 3), 0.5);
        assert_eq!(steady_stretch(&beats, 3), 0..=12);
        assert_eq!(
            steady_stretch(&beats, 16),
            12..=19,
            "6.5 s to 7.1 s follows 0.6 s"
        );
        assert_eq!(nearest_beat(&beats, 2.8), Some(5));
        // The same tempo throughout, but the beats slide half a beat earlier over four gaps
        // of 0.44 s (each within the bound, together 0.24 s): two stretches.
        let mut sliding: Vec<f64> = (0..20).map(|k| 0.5 * f64::from(k)).collect();
        sliding.extend((1..=4).map(|k| 9.5 + 0.44 * f64::from(k)));
        sliding.extend((1..20).map(|k| 11.26 + 0.5 * f64::from(k)));
        assert_eq!(steady_stretch(&sliding, 5), 0..=21);
        assert_eq!(steady_stretch(&sliding, 35), 21..=42);
        assert_eq!(
            nearest_beat(&beats, 3.1),
            Some(6),
            "3.5 s, the beat after the gap"
        );
        assert_eq!(nearest_beat(&[], 1.0), None);
        assert_eq!(local_period(&[1.0], 0), f64::INFINITY);
        assert_eq!(steady_stretch(&[1.0], 0), 0..=0);
    }
}
