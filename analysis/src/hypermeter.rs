//! Which bar lines are strong: where every other bar line of a grid is a weak one, cuts start
//! and resume on the stronger ones only.
//!
//! Two kinds of grid show it. A grid at twice the song's tempo (eighth notes tracked as beats,
//! the commonest error on electronic productions, `analysis/shipped/BEATS.md`) has bars of half
//! a true bar: every other bar line falls on the true bar's third beat, and a cut between two
//! of those removes whole true bars but joins off the downbeat. A song phrased in pairs of bars
//! shows it too, on a right grid: there every bar line is a downbeat, and cutting on the
//! stronger ones keeps the pairs whole. So the rule costs a right grid nothing but the odd bar
//! counts, and moves a doubled grid's joins onto the true downbeats whenever the evidence tells
//! the halves apart. A doubled grid whose halves look alike is left as it was, and one whose
//! evidence points the wrong way loses its joins. Which level the beat is at is not decided
//! here: the tempo-octave check, [`super::tempo_octave`], does that with its own, stricter
//! evidence, because a wrong halving costs every beat and a wrong parity only the joins.
//!
//! The evidence, averaged over the even and the odd bar lines of the whole grid, is first the
//! chord change at each bar line (the cosine distance of its beat's mean chroma from the
//! previous beat's, [`super::bar_phase::chroma_change`]: harmony changes on true bar lines far
//! more often than on third beats), then, when the chords do not tell the halves apart, the
//! downbeat's share of the beat probability (the logistic of
//! [`super::bar_phase::downbeat_log_odds`]). When the weaker half's mean is under
//! [`WEAK_CHANGE_RATIO`] (chords) or [`WEAK_BAR_RATIO`] (network) of the stronger's, the
//! stronger half are the bar lines cuts may use. Chords first because on the sets measured they
//! told the halves of doubled grids apart more often, and the wrong way round less often, than
//! the network (BEATS.md, session 42).

use super::bar_phase::{CHROMA_FEATURES, chroma_change};
use super::beat_model::sigmoid;
use cutscore_core::features::BEAT_FEATURES;
use cutscore_core::grid::BeatGrid;

/// Below this ratio of the weaker half's mean chord change to the stronger's, every other bar
/// line is weak (asked first). Only 0.7 was measured: with it the fit's joins on true
/// downbeats went T 254 -> 266 of 358, E 261 -> 279 of 375 against the network's word alone
/// (`analysis/shipped/BEATS.md`, session 42).
pub const WEAK_CHANGE_RATIO: f32 = 0.7;
/// Below this ratio of the weaker half's mean downbeat share to the stronger's, every other bar
/// line is weak (asked when the chords do not say). Chosen between 0.7 and 0.8 on the tracker
/// set's T and E, when it was the only evidence, by the fit's joins on true downbeats (T 236
/// -> 254 of 357, E 255 -> 261 of 375).
pub const WEAK_BAR_RATIO: f32 = 0.7;
/// Bar lines needed before the halves are compared: fewer say too little.
const MIN_BAR_LINES: usize = 8;
/// Added to each half's mean chord change, so a song whose chords never change (or whose
/// chroma is silent) does not divide by nothing.
const CHANGE_FLOOR: f32 = 1e-3;

/// The parity (0 or 1) of the strong bar lines among `grid.bar_starts()`, when every other bar
/// line is weak: by the chord change at the bar lines (the chroma features of each beat in
/// `features`, 121 a beat, as far as they go), else by the network's downbeat log-odds (one per
/// beat of `grid`). `None` when neither tells the halves apart, or there are too few bar lines.
pub fn strong_bar_parity(
    grid: &BeatGrid,
    features: &[f32],
    downbeat_log_odds: &[f32],
) -> Option<usize> {
    let bar_lines = grid.bar_starts();
    if bar_lines.len() < MIN_BAR_LINES {
        return None;
    }
    let chroma = |beat: usize| {
        features
            .get(beat * BEAT_FEATURES..(beat + 1) * BEAT_FEATURES)
            .map(|row| &row[CHROMA_FEATURES])
    };
    let change = |beat: usize| match (beat.checked_sub(1).and_then(chroma), chroma(beat)) {
        (Some(before), Some(at)) => Some(chroma_change(at, before)),
        _ => None,
    };
    let share = |beat: usize| {
        downbeat_log_odds
            .get(beat)
            .map(|&log_odds| sigmoid(log_odds))
    };
    stronger_half(&bar_lines, change, CHANGE_FLOOR, WEAK_CHANGE_RATIO)
        .or_else(|| stronger_half(&bar_lines, share, 0.0, WEAK_BAR_RATIO))
}

/// The parity of `bar_lines` whose mean `value` (plus `floor`) is the larger, when the other's
/// is under `ratio` of it. Bar lines without a value are left out; `None` when either half has
/// fewer than [`MIN_BAR_LINES`] / 2 values.
fn stronger_half(
    bar_lines: &[usize],
    value: impl Fn(usize) -> Option<f32>,
    floor: f32,
    ratio: f32,
) -> Option<usize> {
    let mut sum = [0f32; 2];
    let mut count = [0usize; 2];
    for (bar, &beat) in bar_lines.iter().enumerate() {
        if let Some(v) = value(beat) {
            sum[bar % 2] += v;
            count[bar % 2] += 1;
        }
    }
    if count.iter().any(|&c| c < MIN_BAR_LINES / 2) {
        return None;
    }
    let mean = [
        sum[0] / count[0] as f32 + floor,
        sum[1] / count[1] as f32 + floor,
    ];
    let strong = usize::from(mean[1] > mean[0]);
    (mean[strong] > 0.0 && mean[1 - strong] < ratio * mean[strong]).then_some(strong)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 4/4 grid of `bars` bars at 120 BPM whose bar lines have log-odds `strong` and `weak`
    /// by parity (bar 0 strong), every other beat -3.
    fn grid_with(bars: usize, strong: f32, weak: f32) -> (BeatGrid, Vec<f32>) {
        let grid = BeatGrid::regular(0.0, 0.5, bars * 4, 4, 0).unwrap();
        let log_odds = (0..grid.len())
            .map(|i| match (i % 4, (i / 4) % 2) {
                (0, 0) => strong,
                (0, _) => weak,
                _ => -3.0,
            })
            .collect();
        (grid, log_odds)
    }

    #[test]
    fn bar_lines_heard_alike_are_all_strong() {
        let (grid, log_odds) = grid_with(16, 2.0, 1.8);
        assert_eq!(strong_bar_parity(&grid, &[], &log_odds), None);
    }

    #[test]
    fn every_other_weak_bar_line_leaves_the_strong_parity() {
        // A doubled grid: the weak bar lines are the true bars' third beats.
        let (grid, log_odds) = grid_with(16, 2.0, -1.0);
        assert_eq!(strong_bar_parity(&grid, &[], &log_odds), Some(0));
        let (grid, log_odds) = grid_with(16, -1.0, 2.0);
        assert_eq!(strong_bar_parity(&grid, &[], &log_odds), Some(1));
    }

    /// Features of `grid`'s beats whose chord changes on the bar lines of `parity` only (C
    /// major and G major taking turns over two bars each), or on every bar line (`None`).
    fn chords_changing_on(grid: &BeatGrid, parity: Option<usize>) -> Vec<f32> {
        let mut features = vec![0.0; grid.len() * BEAT_FEATURES];
        for (i, row) in features.chunks_exact_mut(BEAT_FEATURES).enumerate() {
            let bar = i / 4;
            let chord = match parity {
                Some(p) => (bar + 2 - p) / 2 % 2,
                None => bar % 2,
            };
            let notes: &[usize] = if chord == 0 { &[0, 4, 7] } else { &[7, 11, 2] };
            notes
                .iter()
                .for_each(|&n| row[CHROMA_FEATURES.start + n] = 1.0);
        }
        features
    }

    #[test]
    fn chords_changing_on_every_other_bar_line_leave_that_parity_whatever_the_network_hears() {
        // The network hears bar lines alike, or even the wrong half stronger: the chords say.
        for (strong, weak) in [(2.0, 1.8), (-1.0, 2.0)] {
            let (grid, log_odds) = grid_with(16, strong, weak);
            for parity in [0, 1] {
                let features = chords_changing_on(&grid, Some(parity));
                assert_eq!(strong_bar_parity(&grid, &features, &log_odds), Some(parity));
            }
            // Chords changing on every bar line leave the network's word.
            let features = chords_changing_on(&grid, None);
            let heard = (weak > strong).then_some(1);
            assert_eq!(strong_bar_parity(&grid, &features, &log_odds), heard);
        }
    }

    #[test]
    fn too_few_bars_or_missing_log_odds_say_nothing() {
        let (grid, log_odds) = grid_with(6, 2.0, -1.0);
        assert_eq!(strong_bar_parity(&grid, &[], &log_odds), None);
        let (grid, log_odds) = grid_with(16, 2.0, -1.0);
        assert_eq!(strong_bar_parity(&grid, &[], &log_odds[..20]), None);
    }
}
