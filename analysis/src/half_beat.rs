//! Beats the user hears on the off-beats: the steady stretch around a time moved half a beat.
//!
//! On some songs the network hears the off-beats (a hi-hat's "and"s, an off-beat bass) as the
//! beats, at the right tempo, and the decoder follows them: every cut then starts and lands
//! between the song's beats. The network's own probabilities do not give it away (on the held-out
//! tracker songs it mistook so, the beat and downbeat probabilities are higher on its beats than
//! halfway between them: `analysis/shipped/BEATS.md`, session 52), but a person hears it at
//! once, as with the tempo level (½×, 2×) and the bar lines ([`crate::given_bar_line`]). So the
//! user may say where: the beats of the steady stretch around that time ([`steady_stretch`])
//! move to the middles of their gaps, one more at its start, and the analysis then reads the
//! features, the downbeat evidence and the bar lines on the new beats as on any grid. Moved
//! twice, a stretch is back where it was.

use std::ops::RangeInclusive;

use crate::bar_phase::ANCHOR_FOLLOW_TOLERANCE;

/// How far before the track's start a new beat may fall and be kept, at its start: rounding.
const EDGE_S: f64 = 1e-9;

/// The beats around beat `i` that follow its tempo: each gap within [`ANCHOR_FOLLOW_TOLERANCE`]
/// of a whole number of the beat period there (the median of the gaps up to four beats either
/// side). A change of tempo, or a beat put in or left out of the pulse, bounds it.
pub fn steady_stretch(beats: &[f64], i: usize) -> RangeInclusive<usize> {
    let period = local_period(beats, i);
    let follows = |j: usize| {
        let periods = (beats[j] - beats[j - 1]) / period;
        (periods - periods.round().max(1.0)).abs() <= ANCHOR_FOLLOW_TOLERANCE
    };
    let first = (1..=i)
        .rev()
        .take_while(|&j| follows(j))
        .last()
        .map_or(i, |j| j - 1);
    let last = (i + 1..beats.len())
        .take_while(|&j| follows(j))
        .last()
        .unwrap_or(i);
    first..=last
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

/// The beat of `beats` nearest `time_s`, if any.
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

/// `beats` (in time order, within `0..duration_s`) with the steady stretch around the beat
/// nearest `time_s` moved half a beat: each of its gaps of `k` periods holds `k` beats at the
/// middles of its periods, and one more comes half a period before its first beat and after its
/// last. A new beat closer than half a period to a beat outside the stretch, or outside the
/// track, is left out.
/// `None` where there is no stretch to move (fewer than two beats).
pub fn shift_half_beat(beats: &[f64], time_s: f64, duration_s: f64) -> Option<Vec<f64>> {
    let i = nearest_beat(beats, time_s)?;
    let stretch = steady_stretch(beats, i);
    let (first, last) = (*stretch.start(), *stretch.end());
    if first == last {
        return None;
    }
    let period = local_period(beats, i);
    let mut moved = Vec::with_capacity(last - first + 2);
    moved.push(beats[first] - 0.5 * period);
    for j in first + 1..=last {
        let gap = beats[j] - beats[j - 1];
        let k = (gap / period).round().max(1.0);
        moved.extend((0..k as usize).map(|n| beats[j - 1] + (n as f64 + 0.5) * gap / k));
    }
    moved.push(beats[last] + 0.5 * period);
    let before = first.checked_sub(1).map(|j| beats[j]);
    let after = beats.get(last + 1).copied();
    let clear = |t: f64| {
        (-EDGE_S..duration_s).contains(&t)
            && before.is_none_or(|b| t - b >= 0.5 * period)
            && after.is_none_or(|a| a - t >= 0.5 * period)
    };
    let mut shifted = beats[..first].to_vec();
    shifted.extend(moved.into_iter().filter(|&t| clear(t)).map(|t| t.max(0.0)));
    shifted.extend_from_slice(&beats[last + 1..]);
    Some(shifted)
}

/// [`shift_half_beat`] at each of `times_s` in turn, each on the beats as the ones before left
/// them (two in one stretch move it back). Times with no stretch to move change nothing.
pub fn shift_each(beats: &[f64], times_s: &[f64], duration_s: f64) -> Vec<f64> {
    let mut beats = beats.to_vec();
    for &t in times_s {
        if let Some(shifted) = shift_half_beat(&beats, t, duration_s) {
            beats = shifted;
        }
    }
    beats
}

#[cfg(test)]
mod tests {
    use super::*;

    fn near(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn a_steady_grid_moves_half_a_beat_and_back() {
        // 120 BPM on the off-beats: 0.25, 0.75, ... 15.75 s of a 15.9 s track.
        let beats: Vec<f64> = (0..32).map(|i| 0.25 + 0.5 * f64::from(i)).collect();
        let shifted = shift_half_beat(&beats, 7.0, 15.9).unwrap();
        // On the beats: 0 to 15.5 s (16 s lies past the track's end).
        let truth: Vec<f64> = (0..32).map(|i| 0.5 * f64::from(i)).collect();
        assert_eq!(shifted.len(), truth.len(), "{shifted:?}");
        assert!(shifted.iter().zip(&truth).all(|(a, b)| near(*a, *b)));
        // Again: back on the off-beats (-0.25 s lies before the track).
        let back = shift_half_beat(&shifted, 7.0, 15.9).unwrap();
        assert_eq!(back.len(), beats.len(), "{back:?}");
        assert!(back.iter().zip(&beats).all(|(a, b)| near(*a, *b)));
        assert_eq!(shift_each(&beats, &[7.0, 3.0], 15.9).len(), beats.len());
    }

    #[test]
    fn only_the_stretch_at_the_tempo_around_the_time_moves() {
        // Ten beats every 0.6 s from 0.3 s, then twelve every 0.5 s from 6.1 s (0.4 s after
        // 5.7 s: a change of phase and tempo).
        let mut beats: Vec<f64> = (0..10).map(|i| 0.3 + 0.6 * f64::from(i)).collect();
        let later: Vec<f64> = (0..12).map(|i| 6.1 + 0.5 * f64::from(i)).collect();
        beats.extend(&later);
        // Named in the first: 0 to 5.4 s every 0.6 s; 6.0 s lies too close to 6.1 s.
        let shifted = shift_half_beat(&beats, 2.0, 20.0).unwrap();
        let expected: Vec<f64> = (0..10)
            .map(|i| 0.6 * f64::from(i))
            .chain(later.iter().copied())
            .collect();
        assert_eq!(shifted.len(), expected.len(), "{shifted:?}");
        assert!(
            shifted.iter().zip(&expected).all(|(a, b)| near(*a, *b)),
            "{shifted:?}"
        );
        // Named in the second: 6.35 to 11.85 s every 0.5 s; 5.85 s lies too close to 5.7 s.
        let shifted = shift_half_beat(&beats, 9.0, 20.0).unwrap();
        assert_eq!(shifted[..10], beats[..10]);
        let expected: Vec<f64> = (0..12).map(|i| 6.35 + 0.5 * f64::from(i)).collect();
        assert_eq!(shifted[10..].len(), expected.len(), "{shifted:?}");
        assert!(
            shifted[10..]
                .iter()
                .zip(&expected)
                .all(|(a, b)| near(*a, *b))
        );
    }

    #[test]
    fn a_gap_of_two_periods_gets_two_beats_and_a_neighbour_too_close_keeps_its_place() {
        // Off-beats every 0.5 s from 1.25 s with the one at 3.25 s missing, and a beat 0.2 s
        // after the last (5.75 s).
        let mut beats: Vec<f64> = (0..10)
            .filter(|&i| i != 4)
            .map(|i| 1.25 + 0.5 * f64::from(i))
            .collect();
        beats.push(5.95);
        let shifted = shift_half_beat(&beats, 3.0, 20.0).unwrap();
        // 1.0 to 5.5 s every 0.5 s (3.0 and 3.5 s in the long gap; 6.0 s lies too close to
        // 5.95 s), then 5.95 s.
        let mut expected: Vec<f64> = (0..10).map(|i| 1.0 + 0.5 * f64::from(i)).collect();
        expected.push(5.95);
        assert_eq!(shifted.len(), expected.len(), "{shifted:?}");
        assert!(
            shifted.iter().zip(&expected).all(|(a, b)| near(*a, *b)),
            "{shifted:?}"
        );
    }

    #[test]
    fn too_few_beats_move_nothing() {
        assert_eq!(shift_half_beat(&[], 1.0, 4.0), None);
        assert_eq!(shift_half_beat(&[1.0], 1.0, 4.0), None);
        assert_eq!(shift_each(&[1.0], &[1.0, 2.0], 4.0), vec![1.0]);
    }
}
