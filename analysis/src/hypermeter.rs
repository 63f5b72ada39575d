//! Which bar lines are strong: where the network hears every other bar line of a grid as a
//! weaker downbeat, cuts start and resume on the stronger ones only.
//!
//! Two kinds of grid show it. A grid at twice the song's tempo (eighth notes tracked as beats,
//! the commonest error on electronic productions, `analysis/shipped/BEATS.md`) has bars of half
//! a true bar: every other bar line falls on the true bar's third beat, and a cut between two
//! of those removes whole true bars but joins off the downbeat. A song phrased in pairs of bars
//! shows it too, on a right grid: there every bar line is a downbeat, and cutting on the
//! stronger ones keeps the pairs whole. So the rule costs a right grid nothing but the odd bar
//! counts, and moves a doubled grid's joins onto the true downbeats whenever the network's
//! downbeat probability tells them apart. A doubled grid whose bar lines the network hears
//! alike is left as it was, and one it hears the wrong way round loses its joins (on the sets
//! measured, one song at a threshold of 0.8, none at 0.7). Which level the beat is at is not
//! decided here: the tempo-octave check, [`super::tempo_octave`], does that with its own,
//! stricter evidence, because a wrong halving costs every beat and a wrong parity only the
//! joins.
//!
//! The evidence is the downbeat's share of the beat probability at each bar line (the logistic
//! of [`super::bar_phase::downbeat_log_odds`]), averaged over the even and the odd bar lines of
//! the whole grid; when the weaker half's mean is under [`WEAK_BAR_RATIO`] of the stronger's,
//! the stronger half are the bar lines cuts may use.

use cutscore_core::grid::BeatGrid;

/// Below this ratio of the weaker half's mean downbeat share to the stronger's, every other bar
/// line is weak. Chosen between 0.7 and 0.8 on the tracker set's T and E by the fit's joins on
/// true downbeats (T 236 -> 254 of 357, E 255 -> 261 of 375; held-out N 140 -> 152 of 218:
/// `analysis/shipped/BEATS.md`, session 42).
pub const WEAK_BAR_RATIO: f32 = 0.7;
/// Bar lines needed before the halves are compared: fewer say too little.
const MIN_BAR_LINES: usize = 8;

/// The parity (0 or 1) of the strong bar lines among `grid.bar_starts()`, when every other bar
/// line is weak by the network's downbeat log-odds (one per beat of `grid`); `None` when they
/// are alike, or there are too few bar lines or log-odds to tell.
pub fn strong_bar_parity(grid: &BeatGrid, downbeat_log_odds: &[f32]) -> Option<usize> {
    let mut sum = [0f32; 2];
    let mut count = [0usize; 2];
    for (bar, &beat) in grid.bar_starts().iter().enumerate() {
        let log_odds = *downbeat_log_odds.get(beat)?;
        sum[bar % 2] += 1.0 / (1.0 + (-log_odds).exp());
        count[bar % 2] += 1;
    }
    if count[0] + count[1] < MIN_BAR_LINES {
        return None;
    }
    let mean = [sum[0] / count[0] as f32, sum[1] / count[1] as f32];
    let strong = usize::from(mean[1] > mean[0]);
    (mean[strong] > 0.0 && mean[1 - strong] < WEAK_BAR_RATIO * mean[strong]).then_some(strong)
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
        assert_eq!(strong_bar_parity(&grid, &log_odds), None);
    }

    #[test]
    fn every_other_weak_bar_line_leaves_the_strong_parity() {
        // A doubled grid: the weak bar lines are the true bars' third beats.
        let (grid, log_odds) = grid_with(16, 2.0, -1.0);
        assert_eq!(strong_bar_parity(&grid, &log_odds), Some(0));
        let (grid, log_odds) = grid_with(16, -1.0, 2.0);
        assert_eq!(strong_bar_parity(&grid, &log_odds), Some(1));
    }

    #[test]
    fn too_few_bars_or_missing_log_odds_say_nothing() {
        let (grid, log_odds) = grid_with(6, 2.0, -1.0);
        assert_eq!(strong_bar_parity(&grid, &log_odds), None);
        let (grid, log_odds) = grid_with(16, 2.0, -1.0);
        assert_eq!(strong_bar_parity(&grid, &log_odds[..20]), None);
    }
}
