//! The captured audio, append-only, kept in sealed chunks shared by `Arc`: a snapshot of
//! everything heard so far is a list of pointers (plus a copy of the last, open chunk, at most
//! [`CHUNK_FRAMES`] frames), cheap to take under the capture's lock. Renders, exports, hashing
//! and auditions then read the snapshot on their own thread, without the lock the analysis
//! thread needs.

use std::sync::Arc;

use cutscore_core::audio::Audio;

/// Frames per sealed chunk: about 1.4 s at 48 kHz.
pub const CHUNK_FRAMES: usize = 1 << 16;

/// Interleaved audio growing at the end.
#[derive(Debug, Clone)]
pub struct CaptureAudio {
    pub sample_rate: u32,
    pub channels: u16,
    sealed: Vec<Arc<[f32]>>,
    open: Vec<f32>,
}

/// Everything captured up to one moment; it never changes.
#[derive(Debug, Clone)]
pub struct AudioSnapshot {
    pub sample_rate: u32,
    pub channels: u16,
    chunks: Vec<Arc<[f32]>>,
    samples: usize,
}

impl CaptureAudio {
    pub fn new(sample_rate: u32, channels: u16) -> Self {
        Self {
            sample_rate,
            channels: channels.max(1),
            sealed: Vec::new(),
            open: Vec::new(),
        }
    }

    fn chunk_samples(&self) -> usize {
        CHUNK_FRAMES * usize::from(self.channels)
    }

    /// Appends interleaved samples (whole frames).
    pub fn append(&mut self, mut block: &[f32]) {
        let chunk = self.chunk_samples();
        while !block.is_empty() {
            if self.open.capacity() < chunk {
                self.open.reserve_exact(chunk - self.open.len());
            }
            let take = (chunk - self.open.len()).min(block.len());
            self.open.extend_from_slice(&block[..take]);
            block = &block[take..];
            if self.open.len() == chunk {
                let full = std::mem::take(&mut self.open);
                self.sealed.push(full.into());
            }
        }
    }

    pub fn samples(&self) -> usize {
        self.sealed.len() * self.chunk_samples() + self.open.len()
    }

    pub fn frames(&self) -> usize {
        self.samples() / usize::from(self.channels)
    }

    pub fn seconds(&self) -> f64 {
        self.frames() as f64 / f64::from(self.sample_rate.max(1))
    }

    /// What has been captured so far.
    pub fn snapshot(&self) -> AudioSnapshot {
        let mut chunks = self.sealed.clone();
        if !self.open.is_empty() {
            chunks.push(self.open.as_slice().into());
        }
        AudioSnapshot {
            sample_rate: self.sample_rate,
            channels: self.channels,
            chunks,
            samples: self.samples(),
        }
    }
}

impl AudioSnapshot {
    pub fn frames(&self) -> usize {
        self.samples / usize::from(self.channels.max(1))
    }

    pub fn seconds(&self) -> f64 {
        self.frames() as f64 / f64::from(self.sample_rate.max(1))
    }

    /// The frame at `seconds`, clamped to the audio.
    pub fn frame_at(&self, seconds: f64) -> usize {
        ((seconds.max(0.0) * f64::from(self.sample_rate)).round() as usize).min(self.frames())
    }

    /// The interleaved samples of frames `from..to` (clamped), as consecutive slices.
    pub fn slices(&self, from: usize, to: usize) -> impl Iterator<Item = &[f32]> {
        let channels = usize::from(self.channels.max(1));
        let frames = self.frames();
        let (mut start, end) = (from.min(frames) * channels, to.min(frames) * channels);
        let mut at = 0;
        self.chunks.iter().filter_map(move |chunk| {
            let (lo, hi) = (at, at + chunk.len());
            at = hi;
            if start >= end || hi <= start || lo >= end {
                return None;
            }
            let slice = &chunk[start - lo..end.min(hi) - lo];
            start = end.min(hi);
            Some(slice)
        })
    }

    /// Frames `from..to` (clamped) as audio of their own.
    pub fn excerpt(&self, from: usize, to: usize) -> Audio {
        let frames = to.min(self.frames()).saturating_sub(from);
        let mut samples = Vec::with_capacity(frames * usize::from(self.channels));
        for slice in self.slices(from, to) {
            samples.extend_from_slice(slice);
        }
        Audio {
            sample_rate: self.sample_rate,
            channels: self.channels,
            samples,
        }
    }

    /// All of it as one [`Audio`].
    pub fn to_audio(&self) -> Audio {
        self.excerpt(0, self.frames())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_hold_what_was_appended_across_chunk_boundaries() {
        let mut audio = CaptureAudio::new(48_000, 2);
        let total = 2 * (2 * CHUNK_FRAMES + 1234);
        let samples: Vec<f32> = (0..total).map(|i| i as f32).collect();
        for block in samples.chunks(2 * 1000) {
            audio.append(block);
        }
        assert_eq!(audio.frames(), 2 * CHUNK_FRAMES + 1234);
        let snapshot = audio.snapshot();
        audio.append(&[-1.0, -1.0]);
        assert_eq!(
            snapshot.frames(),
            2 * CHUNK_FRAMES + 1234,
            "a snapshot never grows"
        );
        assert_eq!(snapshot.to_audio().samples, samples);
        let from = CHUNK_FRAMES - 3;
        let excerpt = snapshot.excerpt(from, from + CHUNK_FRAMES + 10);
        assert_eq!(
            excerpt.samples,
            samples[2 * from..2 * (from + CHUNK_FRAMES + 10)]
        );
        assert!(snapshot.excerpt(10, 5).samples.is_empty());
        assert_eq!(snapshot.excerpt(0, usize::MAX).samples.len(), total);
    }
}
