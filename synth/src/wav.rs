//! Writing songs and their truth to disk, and reading the truth back.
//!
//! Audio is 16-bit PCM WAV (dithered, via [`cutscore_core::audio`]), the format every decoder reads; the
//! truth is pretty JSON. Both are written through [`cutscore_core::atomic`], so a reader never sees
//! half a file.

use std::path::{Path, PathBuf};

use cutscore_core::audio::{Audio, AudioError, WavFormat};

use super::{Song, SongTruth};

/// Why a song or its truth could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum SongFileError {
    #[error("cannot write or read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Audio(#[from] AudioError),
    #[error("truth file {path} is not valid truth JSON: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// `song.wav` -> `song.truth.json` (the truth file that belongs beside an audio file).
pub fn truth_path_for(audio: &Path) -> PathBuf {
    audio.with_extension("truth.json")
}

/// Writes `song` as a 16-bit PCM WAV file at `path`, atomically.
pub fn write_wav(path: &Path, song: &Song) -> Result<(), SongFileError> {
    let audio = Audio::new(song.sample_rate, song.channels, song.samples.clone())?;
    Ok(cutscore_core::audio::write_wav(
        path,
        &audio,
        WavFormat::Int16,
    )?)
}

/// Writes `truth` as pretty JSON at `path` (atomically: temp file, then rename).
pub fn write_truth(path: &Path, truth: &SongTruth) -> Result<(), SongFileError> {
    let json = serde_json::to_vec_pretty(truth).map_err(|source| SongFileError::Json {
        path: path.to_owned(),
        source,
    })?;
    cutscore_core::atomic::write(path, &json).map_err(|source| SongFileError::Io {
        path: path.to_owned(),
        source,
    })
}

/// Reads a truth file written by [`write_truth`].
pub fn read_truth(path: &Path) -> Result<SongTruth, SongFileError> {
    let bytes = std::fs::read(path).map_err(|source| SongFileError::Io {
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|source| SongFileError::Json {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SongSpec, render};

    #[test]
    fn wav_and_truth_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let spec = SongSpec {
            bars: 4,
            sample_rate: 22_050,
            ..SongSpec::default()
        };
        let song = render(&spec).unwrap();
        let wav = dir.path().join("song.wav");
        write_wav(&wav, &song).unwrap();
        let truth_path = truth_path_for(&wav);
        assert_eq!(truth_path, dir.path().join("song.truth.json"));
        write_truth(&truth_path, &song.truth).unwrap();

        let mut reader = hound::WavReader::open(&wav).unwrap();
        assert_eq!(reader.spec().channels, 2);
        assert_eq!(reader.spec().sample_rate, 22_050);
        let read: Vec<i16> = reader.samples::<i16>().map(|s| s.unwrap()).collect();
        assert_eq!(read.len(), song.samples.len());
        let worst = read
            .iter()
            .zip(&song.samples)
            .map(|(&q, &x)| (f32::from(q) / 32767.0 - x).abs())
            .fold(0.0f32, f32::max);
        assert!(
            worst <= 1.5 / 32767.0 + 1e-6,
            "quantisation error {worst} (dither is +-1 LSB)"
        );
        assert_eq!(read_truth(&truth_path).unwrap(), song.truth);
        // Nothing but the two files is left in the folder.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn unreadable_truth_is_a_typed_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.truth.json");
        std::fs::write(&path, b"{\"beats\": [1, 2").unwrap();
        assert!(matches!(read_truth(&path), Err(SongFileError::Json { .. })));
        assert!(matches!(
            read_truth(&dir.path().join("missing.truth.json")),
            Err(SongFileError::Io { .. })
        ));
        assert!(matches!(
            write_wav(
                &dir.path().join("no/such/dir/x.wav"),
                &render(&SongSpec {
                    bars: 4,
                    ..SongSpec::default()
                })
                .unwrap()
            ),
            Err(SongFileError::Audio(_))
        ));
    }
}
