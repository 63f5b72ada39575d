//! A bar line the user gives: the bars counted from a beat they name.
//!
//! The tracker places the bar lines by the chord changes, the network's downbeats and where a
//! song (or a host's bar) starts ([`crate::bar_phase`]); on music it has not heard they are
//! often a beat or two from the song's, and every cut then starts and lands off the downbeat. A
//! person hears where the bar starts at once, as with the tempo level (½× and 2×), so the user
//! may name a beat that starts a bar: the plugin's editor moves the bar lines a beat earlier or
//! later, `trainer analyze`, `edit` and `score --bar-line SECONDS` name a time. The places in
//! the bar then move by the same number of beats, so that the beat named starts a bar, over the
//! stretch of beats around it that the tracker counted alike at its tempo: where their place
//! less their count ([`bar_phase::counted_positions`]) is the named beat's and their gaps follow
//! its period. The beats do not move, and a change of phase the tracker found (a bar of another
//! length) or of tempo (a song's first seconds heard at another) bounds what moves.
//!
//! Turning the whole grid, as a DJ program does when the user moves its first beat, was tried
//! first and not kept: the tracker is often a beat off for a song's first bars and right after
//! them, and a user who mended the start broke the rest. Without the bound at a change of tempo,
//! a bar line named in the first seconds of a real recording the tracker heard at another tempo
//! carried into the rest by a count that is not the song's (`analysis/shipped/BEATS.md`, session
//! 51, where the rules that chose between the three are).

use cutscore_core::features::BEAT_FEATURES;
use cutscore_core::grid::BeatGrid;

use crate::bar_phase;
use crate::beat_features::rewrite_bar_features;
use crate::beat_stretch::{gap_follows, local_period, nearest_beat};

/// How far, in beat periods, the time named may lie from the beat it names: the tracker's own
/// jitter is under a tenth of a period, an off-beat half a period away. Set by that reasoning,
/// not swept.
pub const TOLERANCE: f64 = 0.25;

/// No beat of the grid lies at the time the user named.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[error(
    "no beat lies within a quarter of a beat of {time_s:.3} s{}; expected the time of a beat \
     that starts a bar",
    .nearest_s.map_or_else(
        || " (no beats were found)".to_owned(),
        |t| format!(" (the nearest is at {t:.3} s)"),
    )
)]
pub struct NoBeatThere {
    pub time_s: f64,
    pub nearest_s: Option<f64>,
}

/// The beat of `grid` at `time_s`: the nearest one, where it lies within [`TOLERANCE`] of its
/// beat period (the shorter of its gaps to its neighbours).
pub fn beat_at(grid: &BeatGrid, time_s: f64) -> Result<usize, NoBeatThere> {
    let beats = &grid.beats;
    let nearest = nearest_beat(beats, time_s);
    let missing = NoBeatThere {
        time_s,
        nearest_s: nearest.map(|i| beats[i]),
    };
    let i = nearest.ok_or(missing)?;
    let gaps = [
        i.checked_sub(1).map(|j| beats[i] - beats[j]),
        beats.get(i + 1).map(|t| t - beats[i]),
    ];
    let period = gaps
        .into_iter()
        .flatten()
        .min_by(f64::total_cmp)
        .ok_or(missing)?;
    if (beats[i] - time_s).abs() <= TOLERANCE * period {
        Ok(i)
    } else {
        Err(missing)
    }
}

/// Counts the bars of `grid` so that the beat at `time_s` ([`beat_at`]) starts one: the places
/// of the beats the tracker counted alike around it ([`counted_alike`]) move by the same number
/// of beats. Rewrites the bar features of the beats `features` holds (its first rows,
/// [`BEAT_FEATURES`] values each). Returns whether the places moved (not where the beat named
/// already starts a bar).
pub fn count_bars_from(
    grid: &mut BeatGrid,
    features: &mut [f32],
    time_s: f64,
) -> Result<bool, NoBeatThere> {
    beat_at(grid, time_s)?;
    Ok(count_bars_from_each(grid, features, &[time_s]))
}

/// [`count_bars_from`] for several bar lines, in time order (those with no beat of the grid
/// there are passed over): the stretches are those of `grid` as it comes, and each bar line moves
/// its own from its beat up to the next bar line's, and back to where the one before it stops,
/// as a DAW's bar marker holds up to the next. Returns whether any place moved.
pub fn count_bars_from_each(grid: &mut BeatGrid, features: &mut [f32], times_s: &[f64]) -> bool {
    let named: Vec<usize> = times_s
        .iter()
        .filter_map(|&t| beat_at(grid, t).ok())
        .collect();
    let m = grid.meter.max(1);
    let mut moves = Vec::with_capacity(named.len());
    let mut reached = 0;
    for (i, &beat) in named.iter().enumerate() {
        let stretch = counted_alike(grid, beat);
        let next = named.get(i + 1).copied().unwrap_or(grid.len());
        let (from, to) = (
            (*stretch.start()).max(reached),
            (*stretch.end() + 1).min(next),
        );
        moves.push((from..to.max(from), grid.beat_in_bar[beat] % m));
        reached = to.max(reached);
    }
    let mut moved = false;
    for (beats, by) in moves {
        if by == 0 || beats.is_empty() {
            continue;
        }
        for place in &mut grid.beat_in_bar[beats] {
            *place = (*place % m + m - by) % m;
        }
        moved = true;
    }
    if moved {
        let rows = (features.len() / BEAT_FEATURES).min(grid.len());
        rewrite_bar_features(grid, &mut features[..rows * BEAT_FEATURES]);
    }
    moved
}

/// The beats around beat `named` whose place in the bar less their count
/// ([`bar_phase::counted_positions`]: a gap of two periods counts two) is beat `named`'s,
/// modulo the meter, and that follow its tempo (each gap within
/// [`bar_phase::ANCHOR_FOLLOW_TOLERANCE`] of a whole number of its period, [`local_period`],
/// [`gap_follows`]): the stretch between two changes of phase or of tempo, which naming a beat
/// in it moves. A tracker that heard the first seconds of a song
/// at another tempo counts them alike with the rest, by a count that is not the song's.
pub fn counted_alike(grid: &BeatGrid, named: usize) -> std::ops::RangeInclusive<usize> {
    let beats = &grid.beats;
    let m = grid.meter.max(1);
    let counted = bar_phase::counted_positions(beats, m);
    let offset = |i: usize| (grid.beat_in_bar[i] % m + m - counted[i] % m) % m;
    let own = offset(named);
    let period = local_period(beats, named);
    let follows = |i: usize| gap_follows(beats, i, period);
    let first = (0..named)
        .rev()
        .take_while(|&i| offset(i) == own && follows(i + 1))
        .last()
        .unwrap_or(named);
    let last = (named + 1..grid.len())
        .take_while(|&i| offset(i) == own && follows(i))
        .last()
        .unwrap_or(named);
    first..=last
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::beat_features::{BAR_FEATURES, track_features};
    use crate::frontend::analyse_frames;
    use crate::test_signals;

    /// A 4/4 grid at 120 BPM from 0.25 s whose bar lines the tracker put a beat late, and a
    /// change of phase after beat 40.
    fn tracked() -> BeatGrid {
        let beats: Vec<f64> = (0..64).map(|i| 0.25 + 0.5 * i as f64).collect();
        let places = (0..64)
            .map(|i| if i <= 40 { (i + 3) % 4 } else { (i + 2) % 4 } as u8)
            .collect();
        BeatGrid::new(beats, places, 4, 32.5).unwrap()
    }

    #[test]
    fn the_named_beat_starts_a_bar_and_the_beats_counted_alike_move_with_it() {
        let mut grid = tracked();
        let before = grid.beat_in_bar.clone();
        // Beat 8 (4.25 s) starts the song's third bar; the tracker put it last in a bar. Named
        // a few milliseconds late.
        assert_eq!(before[8], 3);
        assert_eq!(count_bars_from(&mut grid, &mut [], 4.28), Ok(true));
        assert_eq!(grid.beat_in_bar[8], 0);
        // Up to the change of phase the tracker found after beat 40, and no further.
        for (i, (&was, &now)) in before.iter().zip(&grid.beat_in_bar).enumerate() {
            let expected = if i <= 40 { (was + 1) % 4 } else { was };
            assert_eq!(now, expected, "beat {i}");
        }
        // Named after the change, the bars after it move, and those before stay.
        let mut later = tracked();
        assert_eq!(
            count_bars_from(&mut later, &mut [], 0.25 + 0.5 * 44.0),
            Ok(true)
        );
        assert_eq!(later.beat_in_bar[44], 0);
        assert_eq!(later.beat_in_bar[..=40], tracked().beat_in_bar[..=40]);
        assert_eq!(later.bar_starts().last(), Some(&60));
        assert_eq!(grid.beats, tracked().beats);
        assert!(grid.validate().is_ok());
        // Naming a bar line changes nothing.
        let again = grid.clone();
        assert_eq!(count_bars_from(&mut grid, &mut [], 6.25), Ok(false));
        assert_eq!(grid, again);
    }

    #[test]
    fn several_bar_lines_each_hold_up_to_the_next() {
        // Two, in the two stretches of the tracked grid: each moves its own.
        let mut grid = tracked();
        let beat = |i: usize| 0.25 + 0.5 * i as f64;
        assert!(count_bars_from_each(
            &mut grid,
            &mut [],
            &[beat(8), beat(44)]
        ));
        let mut one_by_one = tracked();
        count_bars_from(&mut one_by_one, &mut [], beat(8)).unwrap();
        count_bars_from(&mut one_by_one, &mut [], beat(44)).unwrap();
        assert_eq!(grid, one_by_one);
        // Two at different places of one stretch: the first holds up to the second, which holds
        // from there on; a time with no beat there is passed over.
        let places = (0..64).map(|i| (i % 4) as u8).collect();
        let mut even = BeatGrid::new(tracked().beats, places, 4, 32.5).unwrap();
        assert!(count_bars_from_each(
            &mut even,
            &mut [],
            &[beat(9), beat(20) + 0.25, beat(30)]
        ));
        let expected: Vec<usize> = (1..30).step_by(4).chain((30..64).step_by(4)).collect();
        assert_eq!(even.bar_starts(), expected);
    }

    #[test]
    fn a_change_of_tempo_bounds_what_moves() {
        // The tracker heard the first ten beats at another tempo (every 0.3 s), then the
        // song's (every 0.42 s), and counted on through both.
        let beats: Vec<f64> = (0..48)
            .map(|i| {
                if i < 10 {
                    0.3 * i as f64
                } else {
                    2.7 + 0.42 * (i - 9) as f64
                }
            })
            .collect();
        let places = (0..48).map(|i| (i % 4) as u8).collect();
        let heard = BeatGrid::new(beats, places, 4, 25.0).unwrap();
        assert_eq!(
            bar_phase::counted_positions(&heard.beats, 4),
            heard.beat_in_bar,
            "counted alike throughout"
        );
        // Named in the first seconds: only they move.
        let mut grid = heard.clone();
        assert_eq!(count_bars_from(&mut grid, &mut [], 0.3 * 5.0), Ok(true));
        assert_eq!(grid.bar_starts()[..3], [1, 5, 9]);
        assert_eq!(grid.beat_in_bar[10..], heard.beat_in_bar[10..]);
        // Named after them: the beats at the song's tempo move (from the last of the first
        // seconds', a song's period before the next), the rest of the first seconds stay.
        let mut grid = heard.clone();
        assert_eq!(
            count_bars_from(&mut grid, &mut [], 2.7 + 0.42 * 4.0),
            Ok(true)
        );
        assert_eq!(grid.beat_in_bar[..9], heard.beat_in_bar[..9]);
        assert_eq!(grid.beat_in_bar[13], 0);
        assert_eq!(grid.bar_starts().last(), Some(&45));
    }

    #[test]
    fn a_time_between_beats_or_off_the_grid_is_refused_and_moves_nothing() {
        let mut grid = tracked();
        // An off-beat: a quarter of a second (half a beat) from the beats either side.
        let refused = count_bars_from(&mut grid, &mut [], 5.0).unwrap_err();
        assert_eq!(refused.nearest_s, Some(4.75));
        assert!(refused.to_string().contains("5.000 s"), "{refused}");
        // Before the first beat by more than a quarter beat, and after the last.
        assert!(count_bars_from(&mut grid, &mut [], 0.05).is_err());
        assert!(count_bars_from(&mut grid, &mut [], 40.0).is_err());
        assert_eq!(grid, tracked());
        let mut empty = BeatGrid::empty(10.0);
        let none = count_bars_from(&mut empty, &mut [], 1.0).unwrap_err();
        assert_eq!(none.nearest_s, None);
        assert!(none.to_string().contains("no beats were found"), "{none}");
    }

    #[test]
    fn the_bar_features_are_those_of_the_grid_counted_again() {
        // A click track's features on the tracked grid, counted from beat 6, are the features a
        // grid counted there from the start has.
        let rate = 22_050;
        let clicks = test_signals::click_track(120.0, 4, 33.0, rate);
        let frames = analyse_frames(&clicks, rate).unwrap();
        let mut grid = tracked();
        let mut features = track_features(&frames, &grid);
        let rows = 50;
        let moved = count_bars_from(
            &mut grid,
            &mut features.as_mut_slice()[..rows * BEAT_FEATURES],
            0.25 + 0.5 * 6.0,
        );
        assert_eq!(moved, Ok(true));
        let expected = track_features(&frames, &grid);
        for beat in 0..rows {
            assert_eq!(
                features.row(beat)[BAR_FEATURES],
                expected.row(beat)[BAR_FEATURES],
                "beat {beat}"
            );
            assert_eq!(features.row(beat), expected.row(beat), "beat {beat}");
        }
    }
}
