//! The songs simulated users decide on (`trainer taste-eval`): synthetic songs, whose beats and
//! form are known, or recordings, analysed by the offline tracker as `trainer edit` analyses
//! them, so that a taste is learned and measured on a grid the tracker found, errors and all.

use std::path::{Path, PathBuf};

use cutscore_analysis::decode::{DecodeError, decode_audio, mix_to_mono};
use cutscore_analysis::{AnalysisError, analyze_samples};
use cutscore_core::features::FeatureMatrix;
use cutscore_core::grid::BeatGrid;
use cutscore_core::prefs::{TrackRecord, track_id};
use cutscore_synth::SongTruth;

use crate::synthetic_pairs::SongData;

/// Audio files [`recordings`] reads, by extension (what the decoder reads).
const AUDIO_EXTENSIONS: [&str; 6] = ["wav", "flac", "ogg", "mp3", "aiff", "aif"];

/// Why a recording could not be used.
#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    #[error("cannot list {path}: {source}")]
    List {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} holds no audio files; expected WAV, FLAC, Ogg, MP3 or AIFF recordings")]
    Empty { path: PathBuf },
    #[error("decoding {path}: {source}")]
    Decode { path: PathBuf, source: DecodeError },
    #[error("analysing {path}: {source}")]
    Analysis {
        path: PathBuf,
        source: AnalysisError,
    },
}

/// A song a simulated user decides on.
#[derive(Debug, Clone)]
pub struct Song {
    /// The id its decisions are logged under.
    pub track: String,
    /// What it is, as its track file in the prefs folder says.
    pub source: String,
    pub grid: BeatGrid,
    /// The 121 features of each beat of `grid`.
    pub features: FeatureMatrix,
    /// A synthetic song's truth (its sections); `None` for a recording, whose form is unknown.
    pub truth: Option<SongTruth>,
}

impl Song {
    /// The song as a prefs folder stores it (`tracks/<id>.json`).
    pub fn track_record(&self) -> TrackRecord {
        TrackRecord::new(
            self.track.clone(),
            Some(self.source.clone()),
            self.grid.clone(),
            self.features.clone(),
        )
    }

    /// Decodes and analyses a recording as `trainer edit` does (the whole file, then the offline
    /// tracker): its grid and the features on it.
    pub fn from_audio(path: &Path) -> Result<Self, RecordingError> {
        let audio = decode_audio(path).map_err(|source| RecordingError::Decode {
            path: path.to_path_buf(),
            source,
        })?;
        let mut mono = Vec::new();
        mix_to_mono(&audio.samples, usize::from(audio.channels), &mut mono);
        let analysis = analyze_samples(&mono, audio.sample_rate).map_err(|source| {
            RecordingError::Analysis {
                path: path.to_path_buf(),
                source,
            }
        })?;
        Ok(Self {
            track: track_id(&mono, audio.sample_rate),
            source: format!("recording {}", path.display()),
            grid: analysis.grid,
            features: analysis.features,
            truth: None,
        })
    }
}

impl From<SongData> for Song {
    fn from(song: SongData) -> Self {
        Self {
            source: format!("synthetic song, seed {}", song.seed),
            track: song.track,
            grid: song.grid,
            features: song.features,
            truth: Some(song.truth),
        }
    }
}

/// The audio files directly in `dir`, sorted by name.
pub fn recordings(dir: &Path) -> Result<Vec<PathBuf>, RecordingError> {
    let list = |source| RecordingError::List {
        path: dir.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(list)? {
        let path = entry.map_err(list)?.path();
        let audio = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| AUDIO_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()));
        if audio && path.is_file() {
            files.push(path);
        }
    }
    if files.is_empty() {
        return Err(RecordingError::Empty {
            path: dir.to_path_buf(),
        });
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cutscore_core::audio::{Audio, WavFormat, write_wav};
    use cutscore_synth::{SongSpec, render};

    #[test]
    fn a_recording_is_analysed_on_its_tracked_grid_and_a_folder_lists_its_audio() {
        let dir = tempfile::tempdir().unwrap();
        let song = render(&SongSpec {
            bpm: 120.0,
            sample_rate: 22_050,
            ..SongSpec::random(3)
        })
        .unwrap();
        let audio = Audio::new(song.sample_rate, 1, song.mono()).unwrap();
        write_wav(&dir.path().join("b.wav"), &audio, WavFormat::Float32).unwrap();
        std::fs::write(dir.path().join("a.txt"), "not audio").unwrap();
        assert_eq!(recordings(dir.path()).unwrap(), [dir.path().join("b.wav")]);

        let heard = Song::from_audio(&dir.path().join("b.wav")).unwrap();
        assert!(heard.truth.is_none());
        assert_eq!(heard.features.beats(), heard.grid.len());
        // The tracked grid, not the truth: the same number of beats within a few.
        let truth = song.truth.beats.len() as i64;
        assert!(
            (heard.grid.len() as i64 - truth).abs() <= 4,
            "{} against {truth}",
            heard.grid.len()
        );
        assert_eq!(heard.track, track_id(&song.mono(), song.sample_rate));

        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(
            recordings(empty.path()),
            Err(RecordingError::Empty { .. })
        ));
        assert!(matches!(
            Song::from_audio(&dir.path().join("a.txt")),
            Err(RecordingError::Decode { .. })
        ));
    }
}
