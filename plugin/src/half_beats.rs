//! The editor's ½ beat, kept per capture: where the user asked for the beats to move half a
//! beat, how far the last settle moved them, and the user's bar lines carried with their beats.
//!
//! A move names a beat; every settle reads the whole capture again and moves the steady stretch
//! around it (`half_beat::shift_each`) as the capture then has it, which reaches further as the
//! capture grows, and may join two moves named apart into one stretch. So a move covers the
//! stretch the last settle that took it moved around it (until one has, the one around the beat
//! on the grid as it stood), and the user's bar lines are carried from each grid to the next by
//! what happened to their beats ([`HalfBeats::settle`]): a bar line no longer on a beat moves
//! half a beat later where this settle moved the stretch it lies in and the one before had not,
//! or half a beat earlier where the settle before had moved it and this one did not, when a beat
//! lies there. Nothing is recorded per press, so nothing is carried twice or left behind however
//! the presses and the settles interleave.

use cutscore_analysis::beat_stretch::{local_period, nearest_beat};
use cutscore_analysis::given_bar_line;
use cutscore_analysis::half_beat::{Move, MovedStretch};
use cutscore_core::grid::BeatGrid;

/// The most moves a capture keeps ([`HalfBeats::toggle`]); beyond it the oldest goes.
pub const MAX_HALF_BEATS: usize = 64;
/// How far the beat period at a bar line may change from one grid to the next for the grid to
/// count the beats at the same level there (the steady stretch's bound, `beat_stretch`).
const SAME_LEVEL: f64 = 0.15;

/// The moves asked for on one capture, and what the last settle made of them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HalfBeats {
    asks: Vec<Ask>,
    /// The stretches the last settle moved, on the beats it decoded.
    settled: Vec<MovedStretch>,
}

/// One move the user asked for.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Ask {
    /// The beat named: where every settle finds the stretch to move.
    at_s: f64,
    /// The stretch it covers: around the beat on the grid as it stood (not reaching into
    /// another move's), then as the last settle moved it.
    stretch: MovedStretch,
}

impl HalfBeats {
    /// The beats named, for the settle (`half_beat::shift_each`).
    pub fn times_s(&self) -> Vec<f64> {
        self.asks.iter().map(|ask| ask.at_s).collect()
    }

    /// Whether a beat at `time_s`, moved or not, lies in a stretch asked to move.
    pub fn covers(&self, time_s: f64) -> bool {
        self.asks.iter().any(|ask| ask.stretch.covers(time_s))
    }

    /// Asks for the beats from `from_s` to `to_s` around the one at `at_s` (a steady stretch,
    /// `half_s` half its period) to move half a beat, clipped so it does not reach into another
    /// move's stretch (the grid as it stands may join them); or, where moves cover `at_s`,
    /// takes them back (two asked apart may have come to cover one stretch).
    pub fn toggle(&mut self, at_s: f64, from_s: f64, to_s: f64, half_s: f64) {
        let asked = self.asks.len();
        self.asks.retain(|ask| !ask.stretch.covers(at_s));
        if self.asks.len() < asked {
            return;
        }
        let (mut from_s, mut to_s) = (from_s, to_s);
        for ask in &self.asks {
            let MovedStretch {
                from_s: first,
                to_s: last,
                half_s: half,
            } = ask.stretch;
            if last + half < at_s {
                from_s = from_s.max(last + 2.0 * half);
            } else if first - half > at_s {
                to_s = to_s.min(first - 2.0 * half);
            }
        }
        if self.asks.len() >= MAX_HALF_BEATS {
            self.asks.remove(0);
        }
        self.asks.push(Ask {
            at_s,
            stretch: MovedStretch {
                from_s,
                to_s,
                half_s,
            },
        });
    }

    /// Takes a settle whose analysis moved `moves` (each time it was given with the stretch
    /// moved around it) and whose grid `grid` replaces `old`: carries the user's bar lines
    /// `given_bar_lines_s` to their beats on it ([`HalfBeats::carried`]), and keeps each move as
    /// far as the settle moved it; moves that fell in one stretch become one, so one press takes
    /// it back. A move asked for after the analysis began keeps the stretch it was asked on.
    pub fn settle(
        &mut self,
        old: &BeatGrid,
        grid: &BeatGrid,
        moves: &[Move],
        given_bar_lines_s: &mut [f64],
    ) {
        for t in given_bar_lines_s.iter_mut() {
            *t = self.carried(*t, old, grid, moves);
        }
        given_bar_lines_s.sort_by(f64::total_cmp);
        for ask in &mut self.asks {
            if let Some(moved) = moves.iter().find(|m| m.named_s == ask.at_s) {
                ask.stretch = moved.stretch;
            }
        }
        let mut kept: Vec<MovedStretch> = Vec::with_capacity(self.asks.len());
        self.asks.retain(|ask| {
            let new = !kept.contains(&ask.stretch);
            kept.push(ask.stretch);
            new
        });
        self.settled.clear();
        for m in moves {
            if !self.settled.contains(&m.stretch) {
                self.settled.push(m.stretch);
            }
        }
    }

    /// Where a bar line the user gave at `time_s` on a beat of `old` lies on `grid`: where it
    /// is on no beat of `grid`, half a beat later inside a stretch the settle moved that the one
    /// before had not, half a beat earlier inside one the settle before moved that this one did
    /// not (or later, on the beat the move had added before a stretch), and either way where
    /// the two moved different stretches there (at a change of tempo); the first of those that
    /// is a beat of `grid`. Elsewhere, or where the settle changed the tempo level there (½×,
    /// 2×: a bar line on a beat the new level does not count is passed over, not moved), it
    /// stays.
    fn carried(&self, time_s: f64, old: &BeatGrid, grid: &BeatGrid, moves: &[Move]) -> f64 {
        let on_a_beat = |t: f64| given_bar_line::beat_at(grid, t).is_ok();
        let period_at = |grid: &BeatGrid| {
            nearest_beat(&grid.beats, time_s).map(|i| local_period(&grid.beats, i))
        };
        let same_level = match (period_at(old), period_at(grid)) {
            (Some(before), Some(now)) => (now / before - 1.0).abs() <= SAME_LEVEL,
            _ => false,
        };
        if on_a_beat(time_s) || !same_level {
            return time_s;
        }
        let now = moves.iter().map(|m| m.stretch).find(|s| s.covers(time_s));
        let before = self.settled.iter().copied().find(|s| s.covers(time_s));
        let tries = match (now, before) {
            (Some(now), None) => vec![now.half_s],
            (None, Some(before)) => vec![-before.half_s, before.half_s],
            (Some(now), Some(before)) if now != before => {
                vec![now.half_s - before.half_s, now.half_s, -before.half_s]
            }
            _ => Vec::new(),
        };
        tries
            .into_iter()
            .map(|by| time_s + by)
            .find(|&t| on_a_beat(t))
            .unwrap_or(time_s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_move_taken_back_beside_a_change_of_tempo_takes_its_bar_line_back() {
        // Every 0.5 s to 10 s, then every 0.6 s. The first stretch was moved, and a bar line
        // given on it at 9.75 s; the user took that back and moved the second stretch (whose
        // window reaches back to 9.7 s, half its period before the beat they share).
        let mut half_beats = HalfBeats::default();
        let first = moved(3.0, 0.0, 10.0);
        let mut unmoved: Vec<f64> = (0..=20).map(|i| 0.5 * f64::from(i)).collect();
        unmoved.extend((1..=10).map(|i| 10.0 + 0.6 * f64::from(i)));
        let as_grid = |beats: Vec<f64>| BeatGrid {
            beat_in_bar: vec![0; beats.len()],
            beats,
            meter: 4,
            duration_s: 20.0,
        };
        let mut old: Vec<f64> = (0..=20).map(|i| 0.25 + 0.5 * f64::from(i)).collect();
        old.extend_from_slice(&unmoved[21..]);
        half_beats.toggle(3.0, 0.0, 10.0, 0.25);
        half_beats.settle(
            &as_grid(unmoved.clone()),
            &as_grid(old.clone()),
            &[first],
            &mut [],
        );
        half_beats.toggle(3.0, 0.0, 10.0, 0.25);
        half_beats.toggle(12.4, 10.0, 16.0, 0.3);
        let second = Move {
            named_s: 12.4,
            stretch: MovedStretch {
                from_s: 10.0,
                to_s: 16.0,
                half_s: 0.3,
            },
        };
        let mut new: Vec<f64> = unmoved[..20].to_vec();
        new.extend(unmoved[20..].iter().map(|t| t + 0.3));
        let mut given = [9.75];
        half_beats.settle(&as_grid(old), &as_grid(new), &[second], &mut given);
        assert!((given[0] - 9.5).abs() < 1e-9, "{given:?}");
    }

    /// A grid of beats every `period` seconds from `first` to `last`.
    fn grid(first: f64, last: f64, period: f64) -> BeatGrid {
        let beats: Vec<f64> = (0..)
            .map(|k| first + period * f64::from(k))
            .take_while(|&t| t <= last + 1e-9)
            .collect();
        BeatGrid {
            beat_in_bar: (0..beats.len()).map(|k| (k % 4) as u8).collect(),
            beats,
            meter: 4,
            duration_s: last + 1.0,
        }
    }

    fn moved(named_s: f64, from_s: f64, to_s: f64) -> Move {
        Move {
            named_s,
            stretch: MovedStretch {
                from_s,
                to_s,
                half_s: 0.25,
            },
        }
    }

    #[test]
    fn bar_lines_follow_their_beats_once_however_the_moves_were_asked() {
        // 120 BPM. Asked at 3 s on 6 s of beats, then at 15 s on the beats streamed since
        // (clipped to start after the first stretch); bar lines given at 2, 12 and 15 s.
        let mut half_beats = HalfBeats::default();
        half_beats.toggle(3.0, 0.0, 6.0, 0.25);
        half_beats.toggle(15.0, 0.0, 20.0, 0.25);
        assert_eq!(half_beats.times_s(), [3.0, 15.0]);
        assert!(half_beats.covers(6.2) && half_beats.covers(6.5) && !half_beats.covers(20.5));
        let mut given = [2.0, 12.0, 15.0];
        // The settle moved one stretch, 0-20 s, for both.
        let moves = [moved(3.0, 0.0, 20.0), moved(15.0, 0.0, 20.0)];
        half_beats.settle(
            &grid(0.0, 20.0, 0.5),
            &grid(0.25, 20.25, 0.5),
            &moves,
            &mut given,
        );
        assert_eq!(given, [2.25, 12.25, 15.25], "each moved once");
        assert_eq!(
            half_beats.times_s(),
            [3.0],
            "one move, taken back by one press"
        );
        // The capture grows to 30 s; a bar line given at 25 s on the beats streamed since. The
        // next settle moves 0-30 s: the bar lines already moved stay, the new one follows.
        let mut given = [2.25, 12.25, 15.25, 25.0];
        let moves = [moved(3.0, 0.0, 30.0)];
        half_beats.settle(
            &grid(0.25, 30.25, 0.5),
            &grid(0.25, 30.25, 0.5),
            &moves,
            &mut given,
        );
        assert_eq!(given, [2.25, 12.25, 15.25, 25.25]);
        assert!(half_beats.covers(29.0));
        // Pressed at 25 s: taken back. The settle after moves nothing; every bar line goes
        // back to its beat.
        half_beats.toggle(25.25, 0.0, 30.0, 0.25);
        assert!(half_beats.times_s().is_empty() && !half_beats.covers(25.0));
        half_beats.settle(
            &grid(0.25, 30.25, 0.5),
            &grid(0.0, 30.0, 0.5),
            &[],
            &mut given,
        );
        assert_eq!(given, [2.0, 12.0, 15.0, 25.0]);
        // A bar line off the beats in a stretch moved by both settles stays where it is.
        half_beats.toggle(3.0, 0.0, 30.0, 0.25);
        let mut off = [7.3];
        let moves = [moved(3.0, 0.0, 30.0)];
        half_beats.settle(
            &grid(0.0, 30.0, 0.5),
            &grid(0.25, 30.25, 0.5),
            &moves,
            &mut off,
        );
        half_beats.settle(
            &grid(0.25, 30.25, 0.5),
            &grid(0.25, 30.25, 0.5),
            &moves,
            &mut off,
        );
        assert_eq!(off, [7.3]);
        // At half the tempo (½× asked with it) a bar line on a beat the new level leaves out
        // is passed over, not moved.
        let mut odd = [3.5];
        half_beats.settle(
            &grid(0.25, 30.25, 0.5),
            &grid(0.5, 30.5, 1.0),
            &moves,
            &mut odd,
        );
        assert_eq!(odd, [3.5]);
    }

    #[test]
    fn a_move_asked_while_a_settle_ran_keeps_its_stretch_and_the_oldest_goes_past_the_limit() {
        let mut half_beats = HalfBeats::default();
        half_beats.toggle(3.0, 0.0, 6.0, 0.25);
        half_beats.toggle(40.0, 35.0, 45.0, 0.25);
        // The settle's analysis was given 3 s only; 12 s was asked while it ran (on the grid as
        // it stood, the beats after the first stretch).
        half_beats.toggle(12.0, 6.5, 16.0, 0.25);
        let mut given = [];
        half_beats.settle(
            &grid(0.0, 30.0, 0.5),
            &grid(0.25, 30.25, 0.5),
            &[moved(3.0, 0.0, 30.0)],
            &mut given,
        );
        assert!(half_beats.covers(20.0) && half_beats.covers(44.0) && !half_beats.covers(33.0));
        // Pressed where both the moved stretch and the later ask cover: both go.
        assert_eq!(half_beats.times_s().len(), 3);
        half_beats.toggle(12.25, 0.0, 30.0, 0.25);
        assert_eq!(half_beats.times_s(), [40.0]);
        let mut many = HalfBeats::default();
        for k in 0..=MAX_HALF_BEATS {
            let at = 10.0 * k as f64;
            many.toggle(at, at - 1.0, at + 1.0, 0.25);
        }
        assert_eq!(many.times_s().len(), MAX_HALF_BEATS);
        assert!(!many.covers(0.0) && many.covers(10.0));
    }
}
