//! A second reading of a track that leans towards slower tempi, to tell the user when the grid
//! may be at twice the song's tempo: the usual mistake with a slow song whose eighth notes are
//! busy, which the tracker makes on every held-out tracker song under 101 BPM and on none of
//! 108 BPM or more (issue #15, `analysis/shipped/BEATS.md`, session 49).
//!
//! The decoder's evidence cannot settle that octave by itself: leaning towards slower tempi
//! brings most slow songs to their tempo but also halves fast songs that were right, and no
//! strength of the lean tells the two apart (session 49 tried it four ways as a decision). So
//! the reading is offered, not applied: where the slow reading finds half the tempo of the
//! grid, [`half_tempo_reading`] returns it, the editor marks its ½× button and `trainer
//! analyze` names the `--bpm` that counts it there. The user, who hears at once which one the
//! song is, decides; ½× and 2× are one click each way.
//!
//! The lean is the session-49 tempo prior: each beat on a line faster than [`PIVOT_BPM`] costs
//! [`NATS`] × ln(bpm / [`PIVOT_BPM`]) nats more (`StateSpace::leaning_slow`), chosen then on the
//! tracker songs the network was trained on and 60 generated LMMS songs, not on a held-out set.

use crate::bar_decoder::{Decoded, MIN_BPM, StateSpace, decode};
use crate::beat_model::Activation;

/// Above this tempo the slow reading's beats cost more, BPM.
pub const PIVOT_BPM: f64 = 120.0;
/// How much more, nats per beat per unit of ln(bpm / [`PIVOT_BPM`]): a beat at 190 BPM costs
/// 4.6 nats, at 150 BPM 2.2.
pub const NATS: f32 = 10.0;
/// How near half the grid's tempo the slow reading's must be, as a share of that half: a slow
/// reading at another tempo (two thirds, the same) is no octave.
const HALF_WITHIN: f64 = 0.1;

/// The tempo the slow reading finds when it is half the grid's (`heard`, decoded from the same
/// `activations` over the whole space), BPM; `None` when it agrees with the grid, finds no
/// pulse, or the grid is too slow to have a half the decoder can follow.
pub fn half_tempo_reading(
    activations: &[Activation],
    heard: &Decoded,
    duration_s: f64,
) -> Option<f64> {
    let half = heard.tempo_bpm / 2.0;
    if heard.grid.is_empty() || half < MIN_BPM {
        return None;
    }
    let slow = decode(
        &StateSpace::leaning_slow(PIVOT_BPM, NATS),
        activations,
        duration_s,
    );
    ((slow.tempo_bpm - half).abs() <= HALF_WITHIN * half).then_some(slow.tempo_bpm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_signals::{busy_eighths, ideal_activations};

    fn reading(activations: &[Activation], seconds: f64) -> (f64, Option<f64>) {
        let heard = decode(&StateSpace::default(), activations, seconds);
        (
            heard.tempo_bpm,
            half_tempo_reading(activations, &heard, seconds),
        )
    }

    #[test]
    fn a_doubled_slow_song_gets_its_half_and_a_clear_fast_one_does_not() {
        // 90 BPM with eighth notes nearly as strong as its beats: the grid is at 180, the slow
        // reading at 90.
        let (heard, half) = reading(&busy_eighths(180.0, 0.85, 40.0), 40.0);
        assert!((heard - 180.0).abs() < 4.0, "heard at {heard}");
        let half = half.expect("a half-tempo reading");
        assert!((half - 90.0).abs() < 2.0, "{half}");
        // A 170 BPM song whose every beat is as strong as the next: nothing to offer.
        let (heard, half) = reading(&ideal_activations(170.0, 4, 0, 40.0), 40.0);
        assert!((heard - 170.0).abs() < 4.0, "heard at {heard}");
        assert_eq!(half, None);
    }

    #[test]
    fn slow_grids_and_no_pulse_get_no_reading() {
        // 100 BPM: its half (50) is slower than the decoder goes, so it is not read twice.
        let (heard, half) = reading(&ideal_activations(100.0, 4, 0, 30.0), 30.0);
        assert!((heard - 100.0).abs() < 2.0, "heard at {heard}");
        assert_eq!(half, None);
        let flat = vec![
            Activation {
                beat: 0.03,
                downbeat: 0.01,
            };
            2000
        ];
        assert_eq!(reading(&flat, 46.0).1, None);
        assert_eq!(reading(&[], 0.0).1, None);
    }
}
