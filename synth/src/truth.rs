//! The ground truth of a synthetic song, exactly as it was rendered.
//!
//! Written beside the audio as `<song>.truth.json` so external tools (the librosa reference in
//! `bench/`) score against the same beats. Beat times are whole samples divided by the sample
//! rate: beat `i` starts on sample `round(beats[i] * sample_rate)` of the audio.

use serde::{Deserialize, Serialize};

use cutscore_core::grid::{BeatGrid, GridError};

/// One section of the song's form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Section {
    /// `intro`, `verse`, `chorus`, `bridge`, `breakdown` or `outro`.
    pub name: String,
    /// Time of the section's first downbeat.
    pub start_s: f64,
    /// Time of the next section's first downbeat (or the end of the last bar).
    pub end_s: f64,
    /// Index of the section's first bar (0-based).
    pub start_bar: usize,
    /// Length in bars.
    pub bars: usize,
}

/// Beats, bars, sections and drum entry of a rendered song.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SongTruth {
    /// Beat times in seconds, strictly increasing.
    pub beats: Vec<f64>,
    /// Times of the beats with `beat_in_bar == 0`.
    pub downbeats: Vec<f64>,
    /// Position of each beat in its bar (0 = downbeat).
    pub beat_in_bar: Vec<u8>,
    /// Beats per bar.
    pub meter: u8,
    /// Tempo at the start of the song, beats per minute.
    pub bpm: f64,
    /// The form, in order, covering every bar.
    pub sections: Vec<Section>,
    /// Time of the first drum hit; `None` for a song without drums.
    pub drums_enter_s: Option<f64>,
    /// Length of the audio in seconds (the last bar plus a release tail).
    pub duration_s: f64,
}

impl SongTruth {
    /// The truth as a [`BeatGrid`], the form the analysis produces.
    pub fn grid(&self) -> Result<BeatGrid, GridError> {
        BeatGrid::new(
            self.beats.clone(),
            self.beat_in_bar.clone(),
            self.meter,
            self.duration_s,
        )
    }

    /// The section that contains time `seconds`, if any.
    pub fn section_at(&self, seconds: f64) -> Option<&Section> {
        self.sections
            .iter()
            .find(|s| s.start_s <= seconds && seconds < s.end_s)
    }
}
