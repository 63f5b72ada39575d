//! Beats the user hears on the off-beats: the steady stretch around a time moved half a beat.
//!
//! On some songs the network hears the off-beats (a hi-hat's "and"s, an off-beat bass) as the
//! beats, at the right tempo, and the decoder follows them: every cut then starts and lands
//! between the song's beats. The network's own probabilities do not give it away (on the held-out
//! tracker songs it mistook so, the beat and downbeat probabilities are higher on its beats than
//! halfway between them: `analysis/shipped/BEATS.md`, session 52), but a person hears it at
//! once, as with the tempo level (½×, 2×) and the bar lines ([`crate::given_bar_line`]). So the
//! user may say where: each beat of the steady stretch around that time
//! ([`beat_stretch::steady_stretch`]) moves half a period later (half its gap to the next), one
//! more comes half a period before the first, and the analysis then reads the features, the
//! downbeat evidence and the bar lines on the new beats as on any grid. A beat the tracker left
//! out stays out. To take a move back, the analysis is run again without it (the plugin's ½ beat
//! pressed again).

use std::ops::RangeInclusive;

use crate::beat_stretch::{self, local_period, nearest_beat};

/// How far before the track's start a new beat may fall and be kept, at its start: rounding.
const EDGE_S: f64 = 1e-9;

/// `beats` (in time order, within `0..duration_s`) with the steady stretch around the beat
/// nearest `time_s` moved half a beat ([`shift_each`] with one time). `None` where there is no
/// stretch to move (fewer than two beats there).
pub fn shift_half_beat(beats: &[f64], time_s: f64, duration_s: f64) -> Option<Vec<f64>> {
    let (stretch, period) = stretch_at(beats, time_s)?;
    Some(shift_stretch(beats, &stretch, period, duration_s))
}

/// `beats` (in time order, within `0..duration_s`) with the steady stretch around the beat
/// nearest each of `times_s` moved half a beat, each stretch once however many times lie in it
/// (where two overlap, the later from the beat after the earlier's last): each beat of it half
/// its gap to the next later (the last, half the period there), and one more half a period
/// before its first. A new beat closer than half a period to a beat outside the stretch, or
/// outside the track, is left out. Times with no stretch to move (fewer than two beats there)
/// change nothing. Also returns what was moved for each time ([`Move`]).
pub fn shift_each(beats: &[f64], times_s: &[f64], duration_s: f64) -> (Vec<f64>, Vec<Move>) {
    let found = stretches(beats, times_s);
    // From the last: a move changes the indices after its stretch only.
    let mut shifted = beats.to_vec();
    for (stretch, period, _) in found.iter().rev() {
        shifted = shift_stretch(&shifted, stretch, *period, duration_s);
    }
    let moves = found
        .iter()
        .flat_map(|(stretch, period, times)| {
            let moved = MovedStretch {
                from_s: beats[*stretch.start()],
                to_s: beats[*stretch.end()],
                half_s: 0.5 * period,
            };
            times.iter().map(move |&named_s| Move {
                named_s,
                stretch: moved,
            })
        })
        .collect();
    (shifted, moves)
}

/// A stretch of beats [`shift_each`] moves, on the beats before the move.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MovedStretch {
    /// Its first and last beats before the move.
    pub from_s: f64,
    pub to_s: f64,
    /// Half its beat period: how far its beats move.
    pub half_s: f64,
}

impl MovedStretch {
    /// Whether a beat at `time_s`, before or after the move, is one of the stretch's.
    pub fn covers(&self, time_s: f64) -> bool {
        (self.from_s - self.half_s..=self.to_s + self.half_s).contains(&time_s)
    }
}

/// A time named to [`shift_each`] and the stretch moved around it: as the grid grows, that
/// stretch may reach further than it did when the user named the time, and two times named
/// apart may fall in one stretch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Move {
    pub named_s: f64,
    pub stretch: MovedStretch,
}

/// The steady stretches around the beats nearest `times_s`, their periods and the times each
/// came from, in time order, each once; where two overlap, the later starts at the beat after
/// the earlier's last (two stretches may share the beat where the tempo changes), and a stretch
/// left with fewer than two beats gives its times to the one before.
fn stretches(beats: &[f64], times_s: &[f64]) -> Vec<(RangeInclusive<usize>, f64, Vec<f64>)> {
    let mut found: Vec<(RangeInclusive<usize>, f64, f64)> = times_s
        .iter()
        .filter_map(|&t| stretch_at(beats, t).map(|(stretch, period)| (stretch, period, t)))
        .collect();
    found.sort_by_key(|(stretch, _, _)| *stretch.start());
    let mut kept: Vec<(RangeInclusive<usize>, f64, Vec<f64>)> = Vec::new();
    for (stretch, period, t) in found {
        let start = kept.last().map_or(*stretch.start(), |(before, _, _)| {
            (before.end() + 1).max(*stretch.start())
        });
        match kept.last_mut() {
            Some((_, _, times)) if start >= *stretch.end() => times.push(t),
            _ => kept.push((start..=*stretch.end(), period, vec![t])),
        }
    }
    kept
}

/// The steady stretch around the beat nearest `time_s` and the period there, where it holds two
/// beats or more.
fn stretch_at(beats: &[f64], time_s: f64) -> Option<(RangeInclusive<usize>, f64)> {
    let i = nearest_beat(beats, time_s)?;
    let stretch = beat_stretch::steady_stretch(beats, i);
    (stretch.start() < stretch.end()).then(|| (stretch, local_period(beats, i)))
}

/// `beats` with those of `stretch` moved half a beat, as [`shift_each`] says.
fn shift_stretch(
    beats: &[f64],
    stretch: &RangeInclusive<usize>,
    period: f64,
    duration_s: f64,
) -> Vec<f64> {
    let (first, last) = (*stretch.start(), *stretch.end());
    let mut moved = Vec::with_capacity(last - first + 2);
    moved.push(beats[first] - 0.5 * period);
    for j in first..last {
        let gap = beats[j + 1] - beats[j];
        let periods = (gap / period).round().max(1.0);
        moved.push(beats[j] + 0.5 * gap / periods);
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
    shifted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_beats(found: &[f64], expected: &[f64]) {
        assert_eq!(found.len(), expected.len(), "{found:?}");
        assert!(
            found
                .iter()
                .zip(expected)
                .all(|(a, b)| (a - b).abs() < 1e-9),
            "{found:?} against {expected:?}"
        );
    }

    #[test]
    fn a_steady_grid_on_the_off_beats_moves_onto_the_beats_once_however_often_named() {
        // 120 BPM on the off-beats: 0.25, 0.75, ... 15.75 s.
        let beats: Vec<f64> = (0..32).map(|i| 0.25 + 0.5 * f64::from(i)).collect();
        // On the beats: 0 to 15.5 s in a 15.9 s track (16 s lies past its end).
        let on: Vec<f64> = (0..32).map(|i| 0.5 * f64::from(i)).collect();
        assert_beats(&shift_half_beat(&beats, 7.0, 15.9).unwrap(), &on);
        // In a 20 s track, 16 s too; two times in the stretch move it once.
        let once = shift_half_beat(&beats, 7.0, 20.0).unwrap();
        assert_beats(
            &once,
            &(0..33).map(|i| 0.5 * f64::from(i)).collect::<Vec<_>>(),
        );
        assert_beats(&shift_each(&beats, &[7.0, 3.0], 20.0).0, &once);
    }

    #[test]
    fn only_the_stretch_at_the_tempo_around_the_time_moves() {
        // Ten beats every 0.6 s from 0.3 s, then twelve every 0.5 s from 6.1 s (0.4 s after
        // 5.7 s: a change of phase and tempo).
        let mut beats: Vec<f64> = (0..10).map(|i| 0.3 + 0.6 * f64::from(i)).collect();
        let later: Vec<f64> = (0..12).map(|i| 6.1 + 0.5 * f64::from(i)).collect();
        beats.extend(&later);
        // Named in the first: 0 to 5.4 s every 0.6 s; 6.0 s lies too close to 6.1 s.
        let first: Vec<f64> = (0..10).map(|i| 0.6 * f64::from(i)).collect();
        let expected: Vec<f64> = first.iter().chain(&later).copied().collect();
        assert_beats(&shift_half_beat(&beats, 2.0, 20.0).unwrap(), &expected);
        // Named in the second: 6.35 to 11.85 s every 0.5 s; 5.85 s lies too close to 5.7 s.
        let second: Vec<f64> = (0..12).map(|i| 6.35 + 0.5 * f64::from(i)).collect();
        let expected: Vec<f64> = beats[..10].iter().chain(&second).copied().collect();
        assert_beats(&shift_half_beat(&beats, 9.0, 20.0).unwrap(), &expected);
        // Both: each as on its own, and 6.0 s, half a period after 5.4 s, now clear of 6.35 s.
        let expected: Vec<f64> = first.iter().chain(&[6.0]).chain(&second).copied().collect();
        assert_beats(&shift_each(&beats, &[9.0, 2.0], 20.0).0, &expected);
    }

    #[test]
    fn two_stretches_sharing_the_beat_where_the_tempo_changes_both_move() {
        // Every 0.5 s to 10 s, then 10.62 s and every 0.6 s after: the beat at 10 s follows
        // both periods, so it ends the first stretch and starts the second.
        let mut beats: Vec<f64> = (0..=20).map(|i| 0.5 * f64::from(i)).collect();
        let later: Vec<f64> = (0..11).map(|i| 10.62 + 0.6 * f64::from(i)).collect();
        beats.extend(&later);
        let (shifted, _) = shift_each(&beats, &[3.0, 16.6], 20.0);
        assert!(shifted.windows(2).all(|w| w[0] < w[1]), "{shifted:?}");
        // Both moved: 0.25 to 9.75 s every 0.5 s, one beat between the two, and each of the
        // later ones 0.3 s later.
        let first: Vec<f64> = (0..20).map(|i| 0.25 + 0.5 * f64::from(i)).collect();
        assert_beats(&shifted[..20], &first);
        assert!((9.9..10.6).contains(&shifted[20]), "{shifted:?}");
        let second: Vec<f64> = later.iter().map(|t| t + 0.3).collect();
        assert_beats(&shifted[21..], &second);
    }

    #[test]
    fn each_time_named_gets_the_stretch_moved_around_it_which_covers_its_beats_moved_or_not() {
        // As above: 0.5 s to 10 s, then every 0.6 s from 10.62 s.
        let mut beats: Vec<f64> = (0..=20).map(|i| 0.5 * f64::from(i)).collect();
        beats.extend((0..11).map(|i| 10.62 + 0.6 * f64::from(i)));
        let (shifted, moves) = shift_each(&beats, &[16.6, 3.0, 7.0, 40.0], 20.0);
        let first = MovedStretch {
            from_s: 0.0,
            to_s: 10.0,
            half_s: 0.25,
        };
        let second = MovedStretch {
            from_s: 10.62,
            to_s: 16.62,
            half_s: 0.3,
        };
        // In time order of the stretches; the times named in each in the order given.
        let named: Vec<(f64, MovedStretch)> =
            moves.iter().map(|m| (m.named_s, m.stretch)).collect();
        let close = |a: &MovedStretch, b: &MovedStretch| {
            [a.from_s - b.from_s, a.to_s - b.to_s, a.half_s - b.half_s]
                .iter()
                .all(|d| d.abs() < 1e-9)
        };
        // 40 s: its nearest beat, 16.62 s, is the second stretch's.
        assert_eq!(named.len(), 4, "{named:?}");
        for ((t, stretch), (expected_t, expected)) in
            named
                .iter()
                .zip([(3.0, first), (7.0, first), (16.6, second), (40.0, second)])
        {
            assert!(*t == expected_t && close(stretch, &expected), "{named:?}");
        }
        // Every beat moved lies in a stretch moved, after the move too.
        for t in &shifted {
            assert!(first.covers(*t) || second.covers(*t), "{t}");
        }
        assert!(!first.covers(10.4) && second.covers(10.4) && !second.covers(17.0));
        assert!(shift_each(&beats, &[], 20.0).1.is_empty());
    }

    #[test]
    fn a_time_named_past_a_tempo_change_gets_its_own_stretch_moved() {
        // Every 0.5 s to 10 s, then every 0.56 s: the stretch around 3 s reaches past 10.56 s
        // (gaps of 0.56 s are within the bound at first); the one around 10.56 s moves from the
        // beat after that one's last to the song's last, and is the one reported for 10.56 s.
        let mut beats: Vec<f64> = (0..=20).map(|i| 0.5 * f64::from(i)).collect();
        beats.extend((1..=12).map(|i| 10.0 + 0.56 * f64::from(i)));
        let last = beats[beats.len() - 1];
        let (_, moves) = shift_each(&beats, &[3.0, 10.56], 20.0);
        let at = |t: f64| moves.iter().find(|m| m.named_s == t).unwrap().stretch;
        assert_eq!(moves.len(), 2, "{moves:?}");
        assert!(at(3.0).from_s == 0.0, "{moves:?}");
        assert!((at(10.56).to_s - last).abs() < 1e-9, "{moves:?}");
        assert!(at(3.0).to_s < at(10.56).from_s, "{moves:?}");
        // Every beat moved lies in one of them.
        let (shifted, _) = shift_each(&beats, &[3.0, 10.56], 20.0);
        for t in &shifted {
            assert!(at(3.0).covers(*t) || at(10.56).covers(*t), "{t}");
        }
    }

    #[test]
    fn a_beat_left_out_stays_out_and_a_neighbour_too_close_keeps_its_place() {
        // Off-beats every 0.5 s from 1.25 s with the one at 3.25 s left out, and a beat 0.2 s
        // after the last (5.75 s).
        let mut beats: Vec<f64> = (0..10)
            .filter(|&i| i != 4)
            .map(|i| 1.25 + 0.5 * f64::from(i))
            .collect();
        beats.push(5.95);
        // 1.0 to 5.5 s every 0.5 s but 3.5 s; 6.0 s lies too close to 5.95 s.
        let expected = [1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 4.5, 5.0, 5.5, 5.95];
        assert_beats(&shift_half_beat(&beats, 3.0, 20.0).unwrap(), &expected);
    }

    #[test]
    fn too_few_beats_move_nothing() {
        assert_eq!(shift_half_beat(&[], 1.0, 4.0), None);
        assert_eq!(shift_half_beat(&[1.0], 1.0, 4.0), None);
        assert_eq!(shift_each(&[1.0], &[1.0, 2.0], 4.0), (vec![1.0], vec![]));
    }
}
