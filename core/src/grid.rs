//! The beat grid of a track: when each beat falls and where it sits in its bar.
//!
//! Everything in Cutscore is positioned on this grid: the 121 beat features are computed per
//! beat, edits remove spans of beats, and candidate cuts are spans of whole bars. The beat
//! trackers in `cutscore-analysis` produce it; the decision log stores it once per track.

use serde::{Deserialize, Serialize};

/// Why a beat grid was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GridError {
    #[error(
        "beat grid has {beats} beat times but {positions} bar positions; expected one position per beat"
    )]
    LengthMismatch { beats: usize, positions: usize },
    #[error("beat {index} is at {time} s; expected finite, non-negative times")]
    InvalidTime { index: usize, time: f64 },
    #[error(
        "beat {index} at {time} s does not come after the previous beat at {previous} s; expected strictly increasing times"
    )]
    NotIncreasing {
        index: usize,
        time: f64,
        previous: f64,
    },
    #[error(
        "beat {index} is at position {position} of a bar of {meter} beats; expected a position below the meter"
    )]
    PositionOutOfBar {
        index: usize,
        position: u8,
        meter: u8,
    },
    #[error("meter of {meter} beats per bar; expected 1 to 16")]
    InvalidMeter { meter: u8 },
    #[error("track duration {duration} s ends before the last beat at {last} s")]
    DurationTooShort { duration: f64, last: f64 },
}

/// Beats and bars of one track.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BeatGrid {
    /// Beat times in seconds from the start of the track, strictly increasing.
    pub beats: Vec<f64>,
    /// Position of each beat in its bar: 0 is the downbeat, `meter - 1` the last beat.
    pub beat_in_bar: Vec<u8>,
    /// Beats per bar of the prevailing meter (4 for 4/4, 3 for 3/4).
    pub meter: u8,
    /// Length of the whole track in seconds, so the last beat has an end.
    pub duration_s: f64,
}

impl BeatGrid {
    /// Checks and builds a grid.
    pub fn new(
        beats: Vec<f64>,
        beat_in_bar: Vec<u8>,
        meter: u8,
        duration_s: f64,
    ) -> Result<Self, GridError> {
        let grid = Self {
            beats,
            beat_in_bar,
            meter,
            duration_s,
        };
        grid.validate()?;
        Ok(grid)
    }

    /// A grid with a constant tempo: `count` beats every `period_s` seconds from `first_s`, the
    /// first beat at bar position `first_position`. Used by tests and the synthetic songs.
    pub fn regular(
        first_s: f64,
        period_s: f64,
        count: usize,
        meter: u8,
        first_position: u8,
    ) -> Result<Self, GridError> {
        let beats: Vec<f64> = (0..count).map(|i| first_s + i as f64 * period_s).collect();
        let beat_in_bar = (0..count)
            .map(|i| ((first_position as usize + i) % meter.max(1) as usize) as u8)
            .collect();
        let duration_s = beats.last().map_or(first_s, |&last| last + period_s);
        Self::new(beats, beat_in_bar, meter, duration_s)
    }

    /// A grid without beats for a track of `duration_s` seconds (negative or non-finite
    /// durations become 0).
    pub fn empty(duration_s: f64) -> Self {
        Self {
            beats: Vec::new(),
            beat_in_bar: Vec::new(),
            meter: 4,
            duration_s: if duration_s.is_finite() {
                duration_s.max(0.0)
            } else {
                0.0
            },
        }
    }

    /// Checks the invariants a deserialized grid may have broken.
    pub fn validate(&self) -> Result<(), GridError> {
        if self.beats.len() != self.beat_in_bar.len() {
            return Err(GridError::LengthMismatch {
                beats: self.beats.len(),
                positions: self.beat_in_bar.len(),
            });
        }
        if !(1..=16).contains(&self.meter) {
            return Err(GridError::InvalidMeter { meter: self.meter });
        }
        let mut previous = f64::NEG_INFINITY;
        for (index, (&time, &position)) in self.beats.iter().zip(&self.beat_in_bar).enumerate() {
            if !time.is_finite() || time < 0.0 {
                return Err(GridError::InvalidTime { index, time });
            }
            if time <= previous {
                return Err(GridError::NotIncreasing {
                    index,
                    time,
                    previous,
                });
            }
            if position >= self.meter {
                return Err(GridError::PositionOutOfBar {
                    index,
                    position,
                    meter: self.meter,
                });
            }
            previous = time;
        }
        if let Some(&last) = self.beats.last()
            && !(self.duration_s.is_finite() && self.duration_s >= last)
        {
            return Err(GridError::DurationTooShort {
                duration: self.duration_s,
                last,
            });
        }
        Ok(())
    }

    /// Number of beats.
    pub fn len(&self) -> usize {
        self.beats.len()
    }

    /// True when no beat was found.
    pub fn is_empty(&self) -> bool {
        self.beats.is_empty()
    }

    /// Indices of the beats that start a bar (downbeats).
    pub fn bar_starts(&self) -> Vec<usize> {
        (0..self.len())
            .filter(|&i| self.beat_in_bar[i] == 0)
            .collect()
    }

    /// Start time of beat `index`, or the track's end for `index == len()`.
    pub fn time_of(&self, index: usize) -> f64 {
        self.beats.get(index).copied().unwrap_or(self.duration_s)
    }

    /// The beat period in seconds ([`steady_tempo`]'s), if there are at least two beats.
    pub fn beat_period(&self) -> Option<f64> {
        self.tempo_bpm().map(|bpm| 60.0 / bpm)
    }

    /// Tempo in beats per minute: [`steady_tempo`] of the beats.
    pub fn tempo_bpm(&self) -> Option<f64> {
        steady_tempo(&self.beats)
    }
}

/// How far from the median beat period a period may be and still count in [`steady_tempo`]:
/// the two whole-frame periods of one tempo are within 5 % of each other, a beat skipped or
/// added makes a period twice or half as long.
pub const TEMPO_TOLERANCE: f64 = 0.1;

/// The tempo of beats at `beats` (seconds, increasing), BPM, or `None` for fewer than two: the
/// mean of the beat periods within [`TEMPO_TOLERANCE`] of their median. The trackers place
/// their beats on whole analysis frames (23 ms), so the single periods of a 125 BPM song are
/// 464 and 488 ms and their median reads 123 BPM, while their mean is 480 ms. A beat skipped or
/// added, or a stretch at another tempo, lies outside the tolerance and is not counted.
pub fn steady_tempo(beats: &[f64]) -> Option<f64> {
    let mut scratch = vec![0.0; beats.len().saturating_sub(1)];
    steady_tempo_in(beats, &mut scratch)
}

/// [`steady_tempo`] without allocating, the periods sorted in `scratch`: for a real-time caller.
/// With room for fewer periods than `beats` has, the latest are read.
pub fn steady_tempo_in(beats: &[f64], scratch: &mut [f64]) -> Option<f64> {
    let n = beats.len().saturating_sub(1).min(scratch.len());
    if n == 0 {
        return None;
    }
    let periods = &mut scratch[..n];
    for (period, pair) in periods
        .iter_mut()
        .zip(beats[beats.len() - n - 1..].windows(2))
    {
        *period = pair[1] - pair[0];
    }
    periods.sort_unstable_by(f64::total_cmp);
    let median = periods[n / 2];
    let (sum, count) = periods
        .iter()
        .filter(|&&p| (p / median - 1.0).abs() <= TEMPO_TOLERANCE)
        .fold((0.0, 0usize), |(s, c), &p| (s + p, c + 1));
    (median > 0.0).then(|| 60.0 * count as f64 / sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_grid_marks_downbeats_every_meter_beats() {
        let grid = BeatGrid::regular(0.5, 0.5, 10, 4, 2).unwrap();
        assert_eq!(grid.bar_starts(), vec![2, 6]);
        assert_eq!(grid.tempo_bpm(), Some(120.0));
        assert_eq!(grid.duration_s, 5.5);
        assert_eq!(grid.time_of(10), 5.5);
    }

    /// Beats of a `bpm` song from 0.3 s, placed on whole frames of 1024 samples at 44.1 kHz (as
    /// the trackers' analysis frames are).
    fn on_frames(bpm: f64, beats: usize) -> Vec<f64> {
        let frame = 1024.0 / 44_100.0;
        (0..beats)
            .map(|i| ((0.3 + i as f64 * 60.0 / bpm) / frame).round() * frame)
            .collect()
    }

    #[test]
    fn tempo_is_read_through_beats_placed_on_whole_frames() {
        for bpm in [125.0, 140.0, 174.0, 92.0] {
            let beats = on_frames(bpm, 64);
            let read = steady_tempo(&beats).unwrap();
            assert!((read - bpm).abs() < 0.002 * bpm, "{bpm}: {read}");
            // The grid reads its tempo the same way.
            let end = beats[63] + 1.0;
            let grid = BeatGrid::new(beats, vec![0; 64], 1, end).unwrap();
            assert_eq!(grid.tempo_bpm(), Some(read));
        }
        // A beat skipped, one added and a stretch of eighth notes move nothing.
        let mut beats = on_frames(125.0, 64);
        beats.remove(20);
        beats.insert(40, (beats[39] + beats[40]) / 2.0);
        let eighths: Vec<f64> = (50..58).map(|i| (beats[i] + beats[i + 1]) / 2.0).collect();
        beats.extend(eighths);
        beats.sort_by(f64::total_cmp);
        assert!((steady_tempo(&beats).unwrap() - 125.0).abs() < 0.25);
        // Two beats are a tempo, one is not.
        assert_eq!(steady_tempo(&[1.0, 1.5]), Some(120.0));
        assert_eq!(steady_tempo(&[1.0]), None);
        assert_eq!(steady_tempo(&[]), None);
    }

    #[test]
    fn tempo_in_a_small_scratch_reads_the_latest_beats() {
        // 100 BPM for 40 beats, then 120 BPM for 20.
        let mut beats: Vec<f64> = (0..40).map(|i| i as f64 * 0.6).collect();
        let start = beats[39];
        beats.extend((1..=20).map(|i| start + i as f64 * 0.5));
        let mut scratch = [0.0; 5];
        let latest = steady_tempo_in(&beats, &mut scratch).unwrap();
        assert!((latest - 120.0).abs() < 1e-9, "{latest}");
        // The whole: the tempo most of its beats are at.
        assert!((steady_tempo(&beats).unwrap() - 100.0).abs() < 1e-9);
        assert_eq!(steady_tempo_in(&beats, &mut []), None);
    }

    #[test]
    fn refuses_times_that_do_not_increase() {
        let err = BeatGrid::new(vec![0.0, 1.0, 1.0], vec![0, 1, 2], 4, 2.0).unwrap_err();
        assert_eq!(
            err,
            GridError::NotIncreasing {
                index: 2,
                time: 1.0,
                previous: 1.0
            }
        );
    }

    #[test]
    fn refuses_nan_times_and_positions_outside_the_bar() {
        assert!(matches!(
            BeatGrid::new(vec![0.0, f64::NAN], vec![0, 1], 4, 2.0),
            Err(GridError::InvalidTime { index: 1, .. })
        ));
        assert!(matches!(
            BeatGrid::new(vec![0.0, 1.0], vec![0, 3], 3, 2.0),
            Err(GridError::PositionOutOfBar { index: 1, .. })
        ));
        assert!(matches!(
            BeatGrid::new(vec![0.0], vec![0, 1], 3, 2.0),
            Err(GridError::LengthMismatch { .. })
        ));
    }
}
