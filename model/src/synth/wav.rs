//! Writing songs and their truth to disk, and reading the truth back.
//!
//! Audio is 16-bit PCM WAV (via `hound`), the format every decoder reads; the truth is pretty
//! JSON. Both are written to a temporary file in the destination folder and renamed over the
//! destination, so a reader never sees half a file.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::{Song, SongTruth};

/// Why a song or its truth could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum SongFileError {
    #[error("cannot write or read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot encode WAV {path}: {source}")]
    Wav { path: PathBuf, source: hound::Error },
    #[error("truth file {path} is not valid truth JSON: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("song has {channels} channels and {samples} samples; expected whole frames")]
    PartialFrame { channels: u16, samples: usize },
}

/// `song.wav` -> `song.truth.json` (the truth file that belongs beside an audio file).
pub fn truth_path_for(audio: &Path) -> PathBuf {
    audio.with_extension("truth.json")
}

/// Writes `song` as a 16-bit PCM WAV file at `path` (atomically: temp file, then rename).
pub fn write_wav(path: &Path, song: &Song) -> Result<(), SongFileError> {
    let channels = usize::from(song.channels.max(1));
    if song.channels == 0 || !song.samples.len().is_multiple_of(channels) {
        return Err(SongFileError::PartialFrame {
            channels: song.channels,
            samples: song.samples.len(),
        });
    }
    let spec = hound::WavSpec {
        channels: song.channels,
        sample_rate: song.sample_rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    write_atomically(path, |file| {
        let wav_error = |source| SongFileError::Wav {
            path: path.to_owned(),
            source,
        };
        let mut writer = hound::WavWriter::new(BufWriter::new(file), spec).map_err(wav_error)?;
        for &x in &song.samples {
            let quantised = (x.clamp(-1.0, 1.0) * f32::from(i16::MAX)).round() as i16;
            writer.write_sample(quantised).map_err(wav_error)?;
        }
        writer.finalize().map_err(wav_error)
    })
}

/// Writes `truth` as pretty JSON at `path` (atomically: temp file, then rename).
pub fn write_truth(path: &Path, truth: &SongTruth) -> Result<(), SongFileError> {
    let json = serde_json::to_vec_pretty(truth).map_err(|source| SongFileError::Json {
        path: path.to_owned(),
        source,
    })?;
    write_atomically(path, |file| {
        let mut writer = BufWriter::new(file);
        writer
            .write_all(&json)
            .and_then(|()| writer.flush())
            .map_err(|source| SongFileError::Io {
                path: path.to_owned(),
                source,
            })
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

fn write_atomically(
    path: &Path,
    write: impl FnOnce(&std::fs::File) -> Result<(), SongFileError>,
) -> Result<(), SongFileError> {
    let io_error = |source| SongFileError::Io {
        path: path.to_owned(),
        source,
    };
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let temp = tempfile::Builder::new()
        .prefix(".cutscore-")
        .suffix(".tmp")
        .tempfile_in(folder)
        .map_err(io_error)?;
    write(temp.as_file())?;
    temp.as_file().sync_all().map_err(io_error)?;
    temp.persist(path).map_err(|e| io_error(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::{SongSpec, render};

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
        assert!(worst <= 0.5 / 32767.0 + 1e-6, "quantisation error {worst}");
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
            Err(SongFileError::Io { .. })
        ));
    }
}
