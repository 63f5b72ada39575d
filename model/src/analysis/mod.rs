//! Beat analysis: decoding, the front end, the streaming and offline beat trackers, and the
//! 121 beat features.

pub mod beat_features;
pub mod decode;
pub mod frontend;
pub mod metrics;
pub mod offline;
pub mod resample;
pub mod tempo;

/// Sample rate of all analysis, in Hz. 22.05 kHz keeps everything up to 11 kHz (all the
/// spectral shape the features describe), halves the work of 44.1 kHz sources exactly, and is
/// the rate librosa analyses at by default.
pub const ANALYSIS_RATE: u32 = 22_050;
/// STFT frame length in analysis samples (46 ms).
pub const FFT_SIZE: usize = 1024;
/// STFT hop in analysis samples (23.2 ms, 43.07 frames per second).
pub const HOP: usize = 512;
