//! Interleaved multichannel audio in memory, and writing it to WAV files.
//!
//! Renders keep the source's native rate and channel count. WAV output is 16-bit (with TPDF
//! dither, as mastering tools do when reducing word length), 24-bit or 32-bit float, written
//! through [`crate::atomic`] so no half-written file is ever left at the destination.

use std::io::BufWriter;
use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Interleaved f32 audio.
#[derive(Debug, Clone, PartialEq)]
pub struct Audio {
    pub sample_rate: u32,
    pub channels: u16,
    /// Interleaved samples, `frames() * channels` long.
    pub samples: Vec<f32>,
}

/// Why audio could not be used or written.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    #[error("audio has {samples} samples, not a whole number of {channels}-channel frames")]
    PartialFrame { channels: u16, samples: usize },
    #[error(
        "audio has {channels} channels at {sample_rate} Hz; expected 1 to 32 channels at 1 Hz or more"
    )]
    Format { channels: u16, sample_rate: u32 },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl Audio {
    /// Checks the frame structure.
    pub fn new(sample_rate: u32, channels: u16, samples: Vec<f32>) -> Result<Self, AudioError> {
        if channels == 0 || channels > 32 || sample_rate == 0 {
            return Err(AudioError::Format {
                channels,
                sample_rate,
            });
        }
        if !samples.len().is_multiple_of(usize::from(channels)) {
            return Err(AudioError::PartialFrame {
                channels,
                samples: samples.len(),
            });
        }
        Ok(Self {
            sample_rate,
            channels,
            samples,
        })
    }

    /// Frames (samples per channel).
    pub fn frames(&self) -> usize {
        self.samples.len() / usize::from(self.channels.max(1))
    }

    /// Length in seconds.
    pub fn seconds(&self) -> f64 {
        self.frames() as f64 / f64::from(self.sample_rate)
    }

    /// The frame at time `seconds`, clamped to the audio.
    pub fn frame_at(&self, seconds: f64) -> usize {
        ((seconds * f64::from(self.sample_rate)).round().max(0.0) as usize).min(self.frames())
    }
}

/// Sample format of a written WAV file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WavFormat {
    /// 16-bit integer with TPDF dither.
    Int16,
    /// 24-bit integer.
    #[default]
    Int24,
    /// 32-bit float, unclipped.
    Float32,
}

impl std::str::FromStr for WavFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "16" | "int16" => Ok(Self::Int16),
            "24" | "int24" => Ok(Self::Int24),
            "32f" | "float" | "float32" => Ok(Self::Float32),
            _ => Err(format!(
                "unknown WAV format `{s}`; expected 16, 24 or float"
            )),
        }
    }
}

/// Writes `audio` to `path` as WAV, atomically.
pub fn write_wav(path: &Path, audio: &Audio, format: WavFormat) -> Result<(), AudioError> {
    let (bits_per_sample, sample_format) = match format {
        WavFormat::Int16 => (16, hound::SampleFormat::Int),
        WavFormat::Int24 => (24, hound::SampleFormat::Int),
        WavFormat::Float32 => (32, hound::SampleFormat::Float),
    };
    let spec = hound::WavSpec {
        channels: audio.channels,
        sample_rate: audio.sample_rate,
        bits_per_sample,
        sample_format,
    };
    let to_io = |e: hound::Error| match e {
        hound::Error::IoError(io) => io,
        other => std::io::Error::other(other),
    };
    crate::atomic::write_with(path, |file| {
        let mut writer = hound::WavWriter::new(BufWriter::new(file), spec).map_err(to_io)?;
        match format {
            WavFormat::Float32 => {
                for &x in &audio.samples {
                    writer.write_sample(x).map_err(to_io)?;
                }
            }
            WavFormat::Int24 => {
                let scale = 8_388_607.0;
                for &x in &audio.samples {
                    writer
                        .write_sample((x.clamp(-1.0, 1.0) * scale).round() as i32)
                        .map_err(to_io)?;
                }
            }
            WavFormat::Int16 => {
                // TPDF dither of +-1 LSB, seeded so renders are reproducible.
                let mut rng = StdRng::seed_from_u64(0x5EED);
                let scale = 32_767.0;
                for &x in &audio.samples {
                    let dither = rng.random::<f32>() - rng.random::<f32>();
                    let q = (x.clamp(-1.0, 1.0) * scale + dither)
                        .round()
                        .clamp(-32_768.0, 32_767.0);
                    writer.write_sample(q as i16).map_err(to_io)?;
                }
            }
        }
        writer.finalize().map_err(to_io)
    })
    .map_err(|source| AudioError::Write {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(frames: usize) -> Audio {
        let samples = (0..frames)
            .flat_map(|i| {
                let x = (i as f32 * 0.05).sin() * 0.5;
                [x, -x]
            })
            .collect();
        Audio::new(48_000, 2, samples).unwrap()
    }

    #[test]
    fn writes_every_format_with_the_right_header_and_values() {
        let dir = tempfile::tempdir().unwrap();
        let audio = sine(1000);
        for (format, bits) in [
            (WavFormat::Int16, 16),
            (WavFormat::Int24, 24),
            (WavFormat::Float32, 32),
        ] {
            let path = dir.path().join(format!("out{bits}.wav"));
            write_wav(&path, &audio, format).unwrap();
            let mut reader = hound::WavReader::open(&path).unwrap();
            let spec = reader.spec();
            assert_eq!(
                (spec.channels, spec.sample_rate, spec.bits_per_sample),
                (2, 48_000, bits)
            );
            assert_eq!(reader.len() as usize, audio.samples.len());
            let back: Vec<f32> = match format {
                WavFormat::Float32 => reader.samples::<f32>().map(Result::unwrap).collect(),
                _ => {
                    let full = (1i64 << (bits - 1)) as f32;
                    reader
                        .samples::<i32>()
                        .map(|s| s.unwrap() as f32 / full)
                        .collect()
                }
            };
            let tolerance = 2.0 / (1u64 << (bits - 1)) as f32 + 1e-7;
            for (a, b) in audio.samples.iter().zip(&back) {
                assert!((a - b).abs() <= tolerance, "{format:?}: {a} vs {b}");
            }
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 3);
    }

    #[test]
    fn refuses_partial_frames_and_impossible_formats() {
        assert!(matches!(
            Audio::new(44_100, 2, vec![0.0; 3]),
            Err(AudioError::PartialFrame { .. })
        ));
        assert!(matches!(
            Audio::new(44_100, 0, vec![]),
            Err(AudioError::Format { .. })
        ));
        assert!(matches!(
            Audio::new(0, 1, vec![]),
            Err(AudioError::Format { .. })
        ));
    }

    #[test]
    fn an_unwritable_destination_is_an_error_not_a_panic() {
        let err = write_wav(
            Path::new("/nonexistent/folder/out.wav"),
            &sine(10),
            WavFormat::Int24,
        )
        .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/folder/out.wav"));
    }
}
