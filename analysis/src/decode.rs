//! Decoding audio files to mono `f32` at the source rate.
//!
//! WAV, AIFF, FLAC, MP3 and Ogg Vorbis are read with [symphonia](https://docs.rs/symphonia)
//! (its format probe picks the container from the bytes, the extension is only a hint). Every
//! decoded packet is mixed down to mono (the mean of its channels) and handed to a visitor, so
//! the analysis can resample and frame a file without ever holding it whole at the source rate.
//! 16-bit PCM, the usual WAV, is converted straight from the packets' bytes with symphonia's own
//! formula (several times faster than its sample-by-sample PCM decoder); every other codec goes
//! through symphonia's decoders.
//!
//! Limits that keep bad files from taking unbounded memory or time: 1 to
//! [`MAX_CHANNELS`] channels, [`MIN_SAMPLE_RATE`]..=[`MAX_SAMPLE_RATE`] Hz, and at most
//! [`MAX_DURATION_S`] seconds of audio. Non-finite samples are not refused here; the front end
//! treats them as silence.

use std::fs::File;
use std::path::{Path, PathBuf};

use symphonia::core::codecs::audio::well_known::CODEC_ID_PCM_S16LE;
use symphonia::core::codecs::audio::{AudioCodecParameters, AudioDecoder, AudioDecoderOptions};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader, TrackType};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::packet::Packet;

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
pub fn decode_audio(path: &Path) -> Result<cutscore_core::audio::Audio, DecodeError> {
    let mut samples = Vec::new();
    let info = decode_interleaved_with(path, |_, interleaved| {
        samples.extend_from_slice(interleaved)
    })?;
    // The stream's format was checked while decoding: 1 to MAX_CHANNELS channels.
    Ok(cutscore_core::audio::Audio {
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
    let (mut format, track_id, mut decoder) = open(path)?;
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
        let Some(packet_info) = decoder.decode(path, &packet, &mut interleaved)? else {
            continue;
        };
        let current = check_stream(path, &mut info, packet_info)?;
        let frames = interleaved.len() / current.channels;
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
        on_packet(current, &interleaved);
    }
    match info {
        Some(known) if frames_total > 0 => Ok(known),
        _ => Err(DecodeError::NoSamples {
            path: path.to_owned(),
        }),
    }
}

/// Probes `path` and opens its default audio track: the format reader, the track's id and
/// its decoder.
fn open(path: &Path) -> Result<(Box<dyn FormatReader>, u32, PacketDecoder), DecodeError> {
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
    let format = symphonia::default::get_probe()
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
    let decoder = PacketDecoder::new(path, params)?;
    let track_id = track.id;
    Ok((format, track_id, decoder))
}

/// Turns packets into interleaved `f32` samples.
enum PacketDecoder {
    /// Any codec, through symphonia's decoder.
    Symphonia(Box<dyn AudioDecoder>),
    /// 16-bit little-endian PCM (most WAV files), converted straight from the packet's bytes.
    /// Symphonia's PCM decoder reads such packets sample by sample into an intermediate buffer;
    /// this is several times faster and gives the same numbers (`s / 32768`, as symphonia's
    /// `i16` to `f32` conversion).
    PcmS16Le(StreamInfo),
}

impl PacketDecoder {
    fn new(path: &Path, params: &AudioCodecParameters) -> Result<Self, DecodeError> {
        let plain_16_bit = params.codec == CODEC_ID_PCM_S16LE
            && params.bits_per_sample.unwrap_or(16) == 16
            && params.bits_per_coded_sample.unwrap_or(16) == 16;
        let channels = params.channels.as_ref().map_or(0, |c| c.count());
        if plain_16_bit
            && channels > 0
            && let Some(sample_rate) = params.sample_rate
        {
            return Ok(Self::PcmS16Le(StreamInfo {
                sample_rate,
                channels,
            }));
        }
        symphonia::default::get_codecs()
            .make_audio_decoder(params, &AudioDecoderOptions::default())
            .map(Self::Symphonia)
            .map_err(|error| DecodeError::UnsupportedCodec {
                path: path.to_owned(),
                reason: error.to_string(),
            })
    }

    /// Decodes `packet` into `interleaved` and returns its format, or `None` for a corrupt
    /// packet to skip (as players do).
    fn decode(
        &mut self,
        path: &Path,
        packet: &Packet,
        interleaved: &mut Vec<f32>,
    ) -> Result<Option<StreamInfo>, DecodeError> {
        match self {
            Self::PcmS16Le(info) => {
                let whole_frames = packet.data.len() / (2 * info.channels) * 2 * info.channels;
                interleaved.clear();
                interleaved.extend(
                    packet.data[..whole_frames]
                        .chunks_exact(2)
                        .map(|b| i16::from_le_bytes([b[0], b[1]]) as f32 / 32_768.0),
                );
                Ok(Some(*info))
            }
            Self::Symphonia(decoder) => {
                let buffer = match decoder.decode(packet) {
                    Ok(buffer) => buffer,
                    Err(SymphoniaError::DecodeError(_)) | Err(SymphoniaError::IoError(_)) => {
                        return Ok(None);
                    }
                    Err(error) => {
                        return Err(DecodeError::UnsupportedCodec {
                            path: path.to_owned(),
                            reason: error.to_string(),
                        });
                    }
                };
                let spec = buffer.spec();
                let info = StreamInfo {
                    sample_rate: spec.rate(),
                    channels: spec.channels().count(),
                };
                if buffer.frames() == 0 || info.channels == 0 {
                    interleaved.clear();
                } else {
                    buffer.copy_to_vec_interleaved(interleaved);
                }
                Ok(Some(info))
            }
        }
    }
}

/// Checks a packet's format: the first sets the stream's (within the limits), later ones must
/// match it. Returns the stream's format.
fn check_stream(
    path: &Path,
    known: &mut Option<StreamInfo>,
    packet: StreamInfo,
) -> Result<StreamInfo, DecodeError> {
    let StreamInfo {
        sample_rate,
        channels,
    } = packet;
    let current = match *known {
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
            *known.insert(packet)
        }
    };
    if packet != current {
        return Err(DecodeError::Malformed {
            path: path.to_owned(),
            reason: format!(
                "the stream changes from {} channels at {} Hz to {channels} channels at {sample_rate} Hz",
                current.channels, current.sample_rate
            ),
        });
    }
    Ok(current)
}

/// Mixes interleaved `channels`-channel audio into `mono` (resized to the frame count): the
/// mean of the channels of each frame.
pub fn mix_to_mono(interleaved: &[f32], channels: usize, mono: &mut Vec<f32>) {
    mono.clear();
    match channels {
        0 => {}
        1 => mono.extend_from_slice(interleaved),
        // The common case spelled out so that it vectorises; the same arithmetic as below.
        2 => mono.extend(interleaved.chunks_exact(2).map(|f| (f[0] + f[1]) * 0.5)),
        _ => {
            let scale = 1.0 / channels as f32;
            mono.extend(
                interleaved
                    .chunks_exact(channels)
                    .map(|frame| frame.iter().sum::<f32>() * scale),
            );
        }
    }
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
    fn sixteen_bit_pcm_decodes_exactly_as_symphonia_converts_it() {
        let dir = tempfile::tempdir().unwrap();
        let samples: Vec<f32> = (0..3000)
            .map(|i| ((i * 7919) % 2001) as f32 / 1000.0 - 1.0)
            .collect();
        let bytes = wav_bytes(44_100, 2, &samples);
        // Cut in the middle of a frame: the half frame is dropped.
        let bytes = &bytes[..bytes.len() - 2];
        let path = write(dir.path(), "s16.wav", bytes);
        let audio = decode_file(&path).unwrap();
        let ints: Vec<i16> = bytes[44..bytes.len() - 2]
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect();
        let expected: Vec<f32> = ints
            .chunks_exact(2)
            .map(|f| (f[0] as f32 / 32_768.0 + f[1] as f32 / 32_768.0) * 0.5)
            .collect();
        assert_eq!(audio.mono, expected);
        let interleaved = decode_audio(&path).unwrap();
        assert_eq!(interleaved.channels, 2);
        assert!(
            interleaved
                .samples
                .iter()
                .zip(&ints)
                .all(|(&f, &i)| f == i as f32 / 32_768.0)
        );
        assert_eq!(interleaved.samples.len(), ints.len());
    }

    #[test]
    fn mixing_to_mono_averages_any_channel_count() {
        let mut mono = Vec::new();
        for channels in 1..=MAX_CHANNELS {
            let interleaved: Vec<f32> = (0..channels * 5).map(|i| i as f32 * 0.1 - 1.0).collect();
            mix_to_mono(&interleaved, channels, &mut mono);
            assert_eq!(mono.len(), 5);
            for (frame, &m) in interleaved.chunks_exact(channels).zip(&mono) {
                let mean = frame.iter().sum::<f32>() / channels as f32;
                assert!(
                    (m - mean).abs() < 1e-6,
                    "{channels} channels: {m} vs {mean}"
                );
            }
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
