//! Stretches of a grid's beats that keep one tempo: the beat nearest a time, the beat period
//! around a beat, and the run of beats whose gaps follow it. What the user's bar lines
//! ([`crate::given_bar_line`]) and half-beat moves ([`crate::half_beat`]) reach over: a change
//! of tempo, or a gap the tracker put in or left out of the pulse, bounds them.

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
    let periods = (beats[j] - beats[j - 1]) / period;
    (periods - periods.round().max(1.0)).abs() <= ANCHOR_FOLLOW_TOLERANCE
}

/// The beats around beat `i` whose gaps follow the period there ([`gap_follows`],
/// [`local_period`]).
pub fn steady_stretch(beats: &[f64], i: usize) -> RangeInclusive<usize> {
    let period = local_period(beats, i);
    let first = (1..=i)
        .rev()
        .take_while(|&j| gap_follows(beats, j, period))
        .last()
        .map_or(i, |j| j - 1);
    let last = (i + 1..beats.len())
        .take_while(|&j| gap_follows(beats, j, period))
        .last()
        .unwrap_or(i);
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
