//! Scoring both beat trackers on synthetic songs with known beats (used by the `beat_eval`
//! example and the regression tests).
//!
//! Scores follow mir_eval's rules through [`cutscore_analysis::metrics`]: F-measure (±70 ms), CMLt and AMLt
//! after discarding the first 5 s, and downbeat F by the same rule. The streaming tracker runs
//! exactly as in the plugin: the song's stereo audio pushed in host blocks of
//! [`HOST_BLOCK`] frames. Its time to lock is measured without the 5 s discount: the first
//! reported beat that, with the next [`LOCK_RUN`] - 1 beats, falls within 70 ms of true beats.

use cutscore_analysis::metrics::{self, BeatScores, MetricsError};
use cutscore_analysis::{AnalysisError, StreamingAnalyzer, analyze_samples};
use cutscore_core::grid::steady_tempo;
use cutscore_synth::{Song, SongSpec, SynthError, render};

/// Host block size used to stream songs, in frames.
pub const HOST_BLOCK: usize = 512;
/// Correct beats in a row that count as locked.
pub const LOCK_RUN: usize = 4;

/// Why a song could not be scored.
#[derive(Debug, thiserror::Error)]
pub enum EvaluationError {
    #[error(transparent)]
    Synth(#[from] SynthError),
    #[error(transparent)]
    Analysis(#[from] AnalysisError),
    #[error(transparent)]
    Streaming(#[from] cutscore_analysis::streaming::StreamingError),
    #[error(transparent)]
    StreamingSetup(#[from] cutscore_analysis::streaming::StreamingSetupError),
    #[error(transparent)]
    Metrics(#[from] MetricsError),
}

/// Scores of one tracker on one song.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrackerScores {
    pub beats: BeatScores,
    pub downbeat_f: f64,
    /// Median tempo of the reported beats, BPM.
    pub tempo_bpm: f64,
}

/// Both trackers' scores on one song.
#[derive(Debug, Clone, PartialEq)]
pub struct SongReport {
    pub name: String,
    pub true_bpm: f64,
    pub meter: u8,
    pub offline: TrackerScores,
    pub offline_meter: u8,
    pub streaming: TrackerScores,
    /// Seconds from the first true beat to the streaming tracker's lock (`None`: never).
    pub lock_s: Option<f64>,
    /// True beats from the drums' entry to the lock (`None`: no drums or never locked).
    pub lock_beats_after_drums: Option<usize>,
    pub has_drums: bool,
}

/// Renders `spec`, runs both trackers and scores them.
pub fn evaluate_song(name: &str, spec: &SongSpec) -> Result<SongReport, EvaluationError> {
    let song = render(spec)?;
    evaluate_rendered(name, &song)
}

/// Scores both trackers on an already rendered song.
pub fn evaluate_rendered(name: &str, song: &Song) -> Result<SongReport, EvaluationError> {
    let truth = &song.truth;
    let mono = song.mono();
    let analysis = analyze_samples(&mono, song.sample_rate)?;
    let grid = &analysis.grid;
    let downbeats: Vec<f64> = grid.bar_starts().iter().map(|&i| grid.beats[i]).collect();
    let offline = TrackerScores {
        beats: metrics::evaluate(&truth.beats, &grid.beats)?,
        downbeat_f: metrics::downbeat_f_measure(&truth.downbeats, &downbeats)?,
        tempo_bpm: analysis.tempo_bpm,
    };

    let channels = usize::from(song.channels.max(1));
    let mut streaming = StreamingAnalyzer::new();
    streaming.prepare(HOST_BLOCK, song.sample_rate)?;
    let mut beats = Vec::new();
    let mut stream_downbeats = Vec::new();
    for block in song.samples.chunks(HOST_BLOCK * channels) {
        streaming.push_interleaved(block, channels)?;
        while let Some(beat) = streaming.poll_beat() {
            beats.push(beat.time_s);
            if beat.beat_in_bar == 0 {
                stream_downbeats.push(beat.time_s);
            }
        }
    }
    let tempo = steady_tempo(&beats).unwrap_or(0.0);
    let streaming_scores = TrackerScores {
        beats: metrics::evaluate(&truth.beats, &beats)?,
        downbeat_f: metrics::downbeat_f_measure(&truth.downbeats, &stream_downbeats)?,
        tempo_bpm: tempo,
    };
    let lock_at = lock_time(&truth.beats, &beats);
    let music_start = truth.beats.first().copied().unwrap_or(0.0);
    let lock_beats_after_drums = match (truth.drums_enter_s, lock_at) {
        (Some(drums), Some(lock)) => Some(
            truth
                .beats
                .iter()
                .filter(|&&b| b >= drums - 0.07 && b < lock - 0.07)
                .count(),
        ),
        _ => None,
    };
    Ok(SongReport {
        name: name.to_owned(),
        true_bpm: truth.bpm,
        meter: truth.meter,
        offline,
        offline_meter: analysis.meter,
        streaming: streaming_scores,
        lock_s: lock_at.map(|t| t - music_start),
        lock_beats_after_drums,
        has_drums: truth.drums_enter_s.is_some(),
    })
}

/// Time of the first estimated beat that starts [`LOCK_RUN`] correct beats in a row.
pub fn lock_time(reference: &[f64], estimated: &[f64]) -> Option<f64> {
    let correct: Vec<bool> = estimated
        .iter()
        .map(|&t| {
            reference
                .iter()
                .any(|&r| (r - t).abs() <= metrics::F_MEASURE_WINDOW_S)
        })
        .collect();
    (0..estimated.len())
        .find(|&i| i + LOCK_RUN <= estimated.len() && correct[i..i + LOCK_RUN].iter().all(|&c| c))
        .map(|i| estimated[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_needs_a_run_of_correct_beats() {
        let reference: Vec<f64> = (0..20).map(|i| i as f64 * 0.5).collect();
        let estimated = [0.25, 1.0, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0];
        assert_eq!(lock_time(&reference, &estimated), Some(2.0));
        assert_eq!(lock_time(&reference, &[0.25, 0.75]), None);
    }
}
