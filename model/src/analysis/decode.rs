//! Decoding audio files to mono `f32` at the source rate.
//!
//! WAV, AIFF, FLAC, MP3 and Ogg Vorbis are read with [symphonia](https://docs.rs/symphonia)
//! (its format probe picks the container from the bytes, the extension is only a hint). Every
//! decoded packet is mixed down to mono (the mean of its channels) and handed to a visitor, so
//! the analysis can resample and frame a file without ever holding it whole at the source rate.
//!
//! Limits that keep bad files from taking unbounded memory or time: 1 to
//! [`MAX_CHANNELS`] channels, [`MIN_SAMPLE_RATE`]..=[`MAX_SAMPLE_RATE`] Hz, and at most
//! [`MAX_DURATION_S`] seconds of audio. Non-finite samples are not refused here; the front end
//! treats them as silence.

use std::fs::File;
use std::path::{Path, PathBuf};

use symphonia::core::codecs::audio::AudioDecoderOptions;
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, TrackType};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;

/// Most channels a file may have.
pub const MAX_CHANNELS: usize = 8;
/// Lowest accepted source sample rate in Hz.
pub const MIN_SAMPLE_RATE: u32 = 8_000;
/// Highest accepted source sample rate in Hz.
pub const MAX_SAMPLE_RATE: u32 = 192_000;
/// Longest accepted file, in seconds (one hour).
pub const MAX_DURATION_S: f64 = 3600.0;

/// Why a file could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is empty (0 bytes); expected an audio file")]
    EmptyFile { path: PathBuf },
    #[error("{path} is not audio in a known format (WAV, AIFF, FLAC, MP3, Ogg Vorbis): {reason}")]
    UnknownFormat { path: PathBuf, reason: String },
    #[error("{path} has no audio track")]
    NoAudioTrack { path: PathBuf },
    #[error("{path} uses a codec that cannot be decoded: {reason}")]
    UnsupportedCodec { path: PathBuf, reason: String },
    #[error("{path} has {actual} channels; expected 1 to {expected}")]
    Channels {
        path: PathBuf,
        expected: usize,
        actual: usize,
    },
    #[error("{path} has a sample rate of {actual} Hz; expected {min} to {max} Hz")]
    SampleRate {
        path: PathBuf,
        min: u32,
        max: u32,
        actual: u32,
    },
    #[error("{path} is longer than {max_s} s; expected at most an hour of audio")]
    TooLong { path: PathBuf, max_s: f64 },
    #[error("{path} holds no audio samples (zero-length or truncated before the first packet)")]
    NoSamples { path: PathBuf },
    #[error("{path} is malformed: {reason}")]
    Malformed { path: PathBuf, reason: String },
}

/// A decoded file, mixed down to mono at its own sample rate.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedAudio {
    /// Sample rate of the file in Hz.
    pub sample_rate: u32,
    /// Channels the file had before the mixdown.
    pub channels: usize,
    /// Mono samples (mean of the channels).
    pub mono: Vec<f32>,
}

impl DecodedAudio {
    /// Length in seconds.
    pub fn duration_s(&self) -> f64 {
        self.mono.len() as f64 / self.sample_rate as f64
    }
}

/// What the visitor learns before the first samples: the stream's rate and channel count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamInfo {
    pub sample_rate: u32,
    pub channels: usize,
}

/// Decodes a whole file to mono. Holds the file at its source rate in memory; prefer
/// [`decode_with`] for long files.
pub fn decode_file(path: &Path) -> Result<DecodedAudio, DecodeError> {
    let mut mono = Vec::new();
    let info = decode_with(path, |_, chunk| mono.extend_from_slice(chunk))?;
    Ok(DecodedAudio {
        sample_rate: info.sample_rate,
        channels: info.channels,
        mono,
    })
}

/// Decodes `path` packet by packet: `on_mono` gets the stream's format and each packet mixed
/// down to mono. Returns the stream's format.
///
/// A file that breaks off mid-stream (truncated) keeps what decoded before the break; one that
/// yields no samples at all is [`DecodeError::NoSamples`].
pub fn decode_with(
    path: &Path,
    mut on_mono: impl FnMut(StreamInfo, &[f32]),
) -> Result<StreamInfo, DecodeError> {
    let mut mono: Vec<f32> = Vec::new();
    decode_interleaved_with(path, |info, interleaved| {
        mix_to_mono(interleaved, info.channels, &mut mono);
        on_mono(info, &mono);
    })
}

/// Decodes a whole file keeping its channels and rate (for rendering edits of it).
pub fn decode_audio(path: &Path) -> Result<crate::audio::Audio, DecodeError> {
    let mut samples = Vec::new();
    let info = decode_interleaved_with(path, |_, interleaved| {
        samples.extend_from_slice(interleaved)
    })?;
    // The stream's format was checked while decoding: 1 to MAX_CHANNELS channels.
    Ok(crate::audio::Audio {
        sample_rate: info.sample_rate,
        channels: info.channels as u16,
        samples,
    })
}

/// Like [`decode_with`], with each packet's samples interleaved at the source channel count.
pub fn decode_interleaved_with(
    path: &Path,
    mut on_packet: impl FnMut(StreamInfo, &[f32]),
) -> Result<StreamInfo, DecodeError> {
    let file = File::open(path).map_err(|source| DecodeError::Io {
        path: path.to_owned(),
        source,
    })?;
    let length = file
        .metadata()
        .map_err(|source| DecodeError::Io {
            path: path.to_owned(),
            source,
        })?
        .len();
    if length == 0 {
        return Err(DecodeError::EmptyFile {
            path: path.to_owned(),
        });
    }
    let stream = MediaSourceStream::new(Box::new(file), Default::default());
    let mut hint = Hint::new();
    if let Some(extension) = path.extension().and_then(|e| e.to_str()) {
        hint.with_extension(extension);
    }
    let mut format = symphonia::default::get_probe()
        .probe(
            &hint,
            stream,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .map_err(|error| DecodeError::UnknownFormat {
            path: path.to_owned(),
            reason: error.to_string(),
        })?;
    let track =
        format
            .default_track(TrackType::Audio)
            .ok_or_else(|| DecodeError::NoAudioTrack {
                path: path.to_owned(),
            })?;
    let params = track
        .codec_params
        .as_ref()
        .and_then(|p| p.audio())
        .ok_or_else(|| DecodeError::UnsupportedCodec {
            path: path.to_owned(),
            reason: "the track has no audio codec parameters".into(),
        })?;
    let mut decoder = symphonia::default::get_codecs()
        .make_audio_decoder(params, &AudioDecoderOptions::default())
        .map_err(|error| DecodeError::UnsupportedCodec {
            path: path.to_owned(),
            reason: error.to_string(),
        })?;
    let track_id = track.id;

    let mut info: Option<StreamInfo> = None;
    let mut interleaved: Vec<f32> = Vec::new();
    let mut frames_total: u64 = 0;
    loop {
        let packet = match format.next_packet() {
            Ok(Some(packet)) => packet,
            Ok(None) => break,
            // A truncated file ends in an I/O error: keep what decoded before it.
            Err(SymphoniaError::IoError(_)) if info.is_some() => break,
            Err(SymphoniaError::IoError(error)) => {
                return Err(DecodeError::Malformed {
                    path: path.to_owned(),
                    reason: error.to_string(),
                });
            }
            Err(error) => {
                if info.is_some() {
                    break;
                }
                return Err(DecodeError::Malformed {
                    path: path.to_owned(),
                    reason: error.to_string(),
                });
            }
        };
        if packet.track_id != track_id {
            continue;
        }
        let buffer = match decoder.decode(&packet) {
            Ok(buffer) => buffer,
            // A corrupt packet is skipped, as players do.
            Err(SymphoniaError::DecodeError(_)) | Err(SymphoniaError::IoError(_)) => continue,
            Err(error) => {
                return Err(DecodeError::UnsupportedCodec {
                    path: path.to_owned(),
                    reason: error.to_string(),
                });
            }
        };
        let spec = buffer.spec();
        let channels = spec.channels().count();
        let sample_rate = spec.rate();
        let current = match info {
            Some(known) => known,
            None => {
                if channels == 0 || channels > MAX_CHANNELS {
                    return Err(DecodeError::Channels {
                        path: path.to_owned(),
                        expected: MAX_CHANNELS,
                        actual: channels,
                    });
                }
                if !(MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&sample_rate) {
                    return Err(DecodeError::SampleRate {
                        path: path.to_owned(),
                        min: MIN_SAMPLE_RATE,
                        max: MAX_SAMPLE_RATE,
                        actual: sample_rate,
                    });
                }
                let known = StreamInfo {
                    sample_rate,
                    channels,
                };
                info = Some(known);
                known
            }
        };
        if channels != current.channels || sample_rate != current.sample_rate {
            return Err(DecodeError::Malformed {
                path: path.to_owned(),
                reason: format!(
                    "the stream changes from {} channels at {} Hz to {channels} channels at {sample_rate} Hz",
                    current.channels, current.sample_rate
                ),
            });
        }
        let frames = buffer.frames();
        if frames == 0 {
            continue;
        }
        frames_total += frames as u64;
        if frames_total as f64 > MAX_DURATION_S * current.sample_rate as f64 {
            return Err(DecodeError::TooLong {
                path: path.to_owned(),
                max_s: MAX_DURATION_S,
            });
        }
        buffer.copy_to_vec_interleaved(&mut interleaved);
        on_packet(current, &interleaved);
    }
    match info {
        Some(known) if frames_total > 0 => Ok(known),
        _ => Err(DecodeError::NoSamples {
            path: path.to_owned(),
        }),
    }
}

/// Mixes interleaved `channels`-channel audio into `mono` (resized to the frame count): the
/// mean of the channels of each frame.
pub fn mix_to_mono(interleaved: &[f32], channels: usize, mono: &mut Vec<f32>) {
    mono.clear();
    if channels == 0 {
        return;
    }
    let scale = 1.0 / channels as f32;
    mono.extend(
        interleaved
            .chunks_exact(channels)
            .map(|frame| frame.iter().sum::<f32>() * scale),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A 16-bit PCM WAV file, written by hand so the test does not depend on an encoder crate.
    pub(crate) fn wav_bytes(sample_rate: u32, channels: u16, samples: &[f32]) -> Vec<u8> {
        let data_len = (samples.len() * 2) as u32;
        let mut bytes = Vec::with_capacity(44 + data_len as usize);
        bytes.extend_from_slice(b"RIFF");
        bytes.extend_from_slice(&(36 + data_len).to_le_bytes());
        bytes.extend_from_slice(b"WAVEfmt ");
        bytes.extend_from_slice(&16u32.to_le_bytes());
        bytes.extend_from_slice(&1u16.to_le_bytes());
        bytes.extend_from_slice(&channels.to_le_bytes());
        bytes.extend_from_slice(&sample_rate.to_le_bytes());
        bytes.extend_from_slice(&(sample_rate * channels as u32 * 2).to_le_bytes());
        bytes.extend_from_slice(&(channels * 2).to_le_bytes());
        bytes.extend_from_slice(&16u16.to_le_bytes());
        bytes.extend_from_slice(b"data");
        bytes.extend_from_slice(&data_len.to_le_bytes());
        for &s in samples {
            let v = (s.clamp(-1.0, 1.0) * 32767.0).round() as i16;
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        bytes
    }

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.join(name);
        File::create(&path).unwrap().write_all(bytes).unwrap();
        path
    }

    #[test]
    fn decodes_stereo_wav_to_the_mean_of_its_channels() {
        let dir = tempfile::tempdir().unwrap();
        let frames = 4410;
        let samples: Vec<f32> = (0..frames)
            .flat_map(|i| {
                let left = (i as f32 * 0.01).sin() * 0.5;
                [left, 0.25]
            })
            .collect();
        let path = write(dir.path(), "a.wav", &wav_bytes(44_100, 2, &samples));
        let audio = decode_file(&path).unwrap();
        assert_eq!(audio.sample_rate, 44_100);
        assert_eq!(audio.channels, 2);
        assert_eq!(audio.mono.len(), frames);
        for (i, &m) in audio.mono.iter().enumerate() {
            let expected = ((i as f32 * 0.01).sin() * 0.5 + 0.25) / 2.0;
            assert!((m - expected).abs() < 1e-4, "frame {i}: {m} vs {expected}");
        }
    }

    #[test]
    fn eight_channels_and_extreme_rates_decode() {
        let dir = tempfile::tempdir().unwrap();
        for (rate, channels) in [(8_000, 8u16), (192_000, 1), (96_000, 3)] {
            let samples = vec![0.1f32; rate as usize / 10 * channels as usize];
            let path = write(dir.path(), "x.wav", &wav_bytes(rate, channels, &samples));
            let audio = decode_file(&path).unwrap();
            assert_eq!(audio.sample_rate, rate);
            assert_eq!(audio.mono.len(), rate as usize / 10);
        }
    }

    #[test]
    fn refuses_empty_files_and_bytes_that_are_not_audio() {
        let dir = tempfile::tempdir().unwrap();
        let empty = write(dir.path(), "empty.wav", b"");
        assert!(matches!(
            decode_file(&empty),
            Err(DecodeError::EmptyFile { .. })
        ));
        let text = write(
            dir.path(),
            "text.mp3",
            &b"hello, this is not audio\n".repeat(40),
        );
        assert!(matches!(
            decode_file(&text),
            Err(DecodeError::UnknownFormat { .. } | DecodeError::NoSamples { .. })
        ));
        let missing = dir.path().join("missing.wav");
        assert!(matches!(decode_file(&missing), Err(DecodeError::Io { .. })));
    }

    #[test]
    fn truncated_and_zero_length_wavs_give_what_they_hold_or_a_typed_error() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = wav_bytes(22_050, 1, &vec![0.2; 22_050]);
        let cut = write(dir.path(), "cut.wav", &bytes[..44 + 10_000]);
        let audio = decode_file(&cut).unwrap();
        assert!(audio.mono.len() <= 5_000 && audio.mono.len() > 1_000);
        let header_only = write(dir.path(), "header.wav", &wav_bytes(22_050, 1, &[]));
        assert!(decode_file(&header_only).is_err());
        let half_header = write(dir.path(), "half.wav", &bytes[..20]);
        assert!(decode_file(&half_header).is_err());
    }

    #[test]
    fn an_unsupported_codec_is_a_typed_error() {
        let dir = tempfile::tempdir().unwrap();
        // A WAV declaring IMA ADPCM (format tag 0x11), which this build does not decode.
        let mut bytes = wav_bytes(22_050, 1, &[0.1; 2_000]);
        bytes[20..22].copy_from_slice(&0x11u16.to_le_bytes());
        let path = write(dir.path(), "adpcm.wav", &bytes);
        let error = decode_file(&path).unwrap_err();
        assert!(
            matches!(
                error,
                DecodeError::UnsupportedCodec { .. }
                    | DecodeError::UnknownFormat { .. }
                    | DecodeError::Malformed { .. }
            ),
            "{error}"
        );
    }

    #[test]
    fn refuses_rates_outside_the_supported_range() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "low.wav", &wav_bytes(4_000, 1, &[0.0; 4_000]));
        assert!(matches!(
            decode_file(&path),
            Err(DecodeError::SampleRate { actual: 4_000, .. })
        ));
    }
}
