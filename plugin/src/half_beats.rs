//! The editor's ½ beat, kept per capture: where the user asked for the beats to move half a
//! beat, how far the last settle moved them, and the user's bar lines carried with their beats.
//!
//! A move names a beat; every settle reads the whole capture again and moves the steady stretch
//! around it (`half_beat::shift_each`) as the capture then has it, which reaches further as the
//! capture grows, and may join two moves named apart into one stretch. So a move covers the
//! stretch the last settle moved around it (before any settle, the one around the beat on the
//! grid as it stood), and the user's bar lines are carried from each grid to the next by what
//! happened to their beats: a bar line no longer on a beat moves half a beat later where the
//! settle moved the stretch it lies in, or half a beat earlier where the settle before had moved
//! it and this one did not, when a beat lies there.

use cutscore_analysis::given_bar_line;
use cutscore_analysis::half_beat::{Move, MovedStretch};
use cutscore_core::grid::BeatGrid;

/// The most moves a capture keeps ([`HalfBeats::toggle`]); beyond it the oldest goes.
pub const MAX_HALF_BEATS: usize = 64;

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
    /// move's stretch (the grid as it stands may join them); or, where a move covers `at_s`,
    /// takes that move back.
    pub fn toggle(&mut self, at_s: f64, from_s: f64, to_s: f64, half_s: f64) {
        if let Some(k) = self.asks.iter().position(|ask| ask.stretch.covers(at_s)) {
            self.asks.remove(k);
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
    /// moved around it) and whose grid is `grid`: carries the user's bar lines
    /// `given_bar_lines_s` to their beats on it (above), and keeps each move as far as the
    /// settle moved it; moves that fell in one stretch become one, so one press takes it back. A
    /// move asked for after the analysis began keeps the stretch it was asked on.
    pub fn settle(&mut self, grid: &BeatGrid, moves: &[Move], given_bar_lines_s: &mut [f64]) {
        let on_a_beat = |t: f64| given_bar_line::beat_at(grid, t).is_ok();
        for t in given_bar_lines_s.iter_mut() {
            if on_a_beat(*t) {
                continue;
            }
            let later = moves.iter().find(|m| m.stretch.covers(*t));
            let earlier = self.settled.iter().find(|s| s.covers(*t));
            let by = later
                .map(|m| m.stretch.half_s)
                .or(earlier.map(|s| -s.half_s));
            if let Some(by) = by.filter(|by| on_a_beat(*t + by)) {
                *t += by;
            }
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
        half_beats.settle(&grid(0.25, 20.25, 0.5), &moves, &mut given);
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
        half_beats.settle(&grid(0.25, 30.25, 0.5), &moves, &mut given);
        assert_eq!(given, [2.25, 12.25, 15.25, 25.25]);
        assert!(half_beats.covers(29.0));
        // Pressed at 25 s: taken back. The settle after moves nothing; every bar line goes
        // back to its beat.
        half_beats.toggle(25.25, 0.0, 30.0, 0.25);
        assert!(half_beats.times_s().is_empty() && !half_beats.covers(25.0));
        half_beats.settle(&grid(0.0, 30.0, 0.5), &[], &mut given);
        assert_eq!(given, [2.0, 12.0, 15.0, 25.0]);
        // Nothing moved before or now: a bar line off the beats stays where it was given.
        let mut off = [7.3];
        half_beats.settle(&grid(0.0, 30.0, 0.5), &[], &mut off);
        assert_eq!(off, [7.3]);
    }

    #[test]
    fn a_move_asked_while_a_settle_ran_keeps_its_stretch_and_the_oldest_goes_past_the_limit() {
        let mut half_beats = HalfBeats::default();
        half_beats.toggle(3.0, 0.0, 6.0, 0.25);
        half_beats.toggle(40.0, 35.0, 45.0, 0.25);
        // The settle's analysis was given 3 s only.
        let mut given = [];
        half_beats.settle(
            &grid(0.25, 30.25, 0.5),
            &[moved(3.0, 0.0, 30.0)],
            &mut given,
        );
        assert!(half_beats.covers(20.0) && half_beats.covers(44.0) && !half_beats.covers(33.0));
        let mut many = HalfBeats::default();
        for k in 0..=MAX_HALF_BEATS {
            let at = 10.0 * k as f64;
            many.toggle(at, at - 1.0, at + 1.0, 0.25);
        }
        assert_eq!(many.times_s().len(), MAX_HALF_BEATS);
        assert!(!many.covers(0.0) && many.covers(10.0));
    }
}
