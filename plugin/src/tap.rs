//! The audio thread's side of the plugin: copying the input into a pre-sized lock-free ring
//! for the analysis thread ([`AudioTap`]) and playing auditions from another ring
//! ([`AuditionPlayer`]). Both only copy samples and touch atomics: no allocation, no lock, no
//! logging, no candle.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Seconds of audio the capture ring holds: how long the analysis thread may fall behind (a
/// render or a model load holding the capture) before blocks are dropped.
pub const CAPTURE_RING_S: f64 = 4.0;
/// Seconds of audition audio queued ahead of the audio thread.
pub const AUDITION_RING_S: f64 = 1.0;
/// Longest an offline render waits for the analysis thread to make room in the ring.
pub const OFFLINE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Counters the audio thread keeps for the status line.
#[derive(Debug, Default)]
pub struct TapStats {
    /// Frames copied into the ring.
    pub frames: AtomicU64,
    /// Frames dropped because the ring was full.
    pub dropped_frames: AtomicU64,
    /// Blocks of digital silence skipped while the transport was stopped.
    pub silent_blocks: AtomicU64,
}

/// Copies every host block into the capture ring, interleaved.
pub struct AudioTap {
    producer: rtrb::Producer<f32>,
    channels: usize,
    stats: Arc<TapStats>,
    /// The host renders offline (a bounce): no deadline, so a full ring is waited on instead
    /// of dropping audio the analysis has not seen.
    offline: bool,
}

impl AudioTap {
    /// A tap for `channels` channels holding `capacity_frames` frames, and the ring's reading
    /// end for the analysis thread.
    pub fn new(
        channels: usize,
        capacity_frames: usize,
        stats: Arc<TapStats>,
    ) -> (Self, rtrb::Consumer<f32>) {
        let channels = channels.max(1);
        let (producer, consumer) = rtrb::RingBuffer::new(capacity_frames.max(1) * channels);
        (
            Self {
                producer,
                channels,
                stats,
                offline: false,
            },
            consumer,
        )
    }

    /// Waits for ring space instead of dropping blocks (for offline rendering only: it sleeps).
    pub fn set_offline(&mut self, offline: bool) {
        self.offline = offline;
    }

    /// Copies one block (one slice per channel). Blocks of exact digital silence while the
    /// transport is stopped are not analysed (a stopped host feeds zeros, which are not part of
    /// the track). Returns `false` when the ring was full and the block was dropped.
    pub fn capture(&mut self, block: &[&mut [f32]], transport_playing: bool) -> bool {
        let frames = block.first().map_or(0, |c| c.len());
        if frames == 0 || block.len() != self.channels {
            return true;
        }
        if !transport_playing && block.iter().all(|c| c.iter().all(|&s| s == 0.0)) {
            self.stats.silent_blocks.fetch_add(1, Ordering::Relaxed);
            return true;
        }
        if self.offline {
            let started = std::time::Instant::now();
            while self.producer.slots() < frames * self.channels && started.elapsed() < OFFLINE_WAIT
            {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
        match self.producer.write_chunk_uninit(frames * self.channels) {
            Ok(chunk) => {
                let interleaved = (0..frames).flat_map(|i| block.iter().map(move |c| c[i]));
                chunk.fill_from_iter(interleaved);
                self.stats
                    .frames
                    .fetch_add(frames as u64, Ordering::Relaxed);
                true
            }
            Err(_) => {
                self.stats
                    .dropped_frames
                    .fetch_add(frames as u64, Ordering::Relaxed);
                false
            }
        }
    }
}

/// Flags shared by the audition's feeder (the analysis thread) and the audio thread.
#[derive(Debug, Default)]
pub struct AuditionFlags {
    /// Set by the feeder when an audition starts; cleared by the audio thread when it ends or
    /// the transport starts.
    pub active: AtomicBool,
    /// Set by the feeder once every sample of the audition is in the ring.
    pub fed_all: AtomicBool,
}

/// Plays auditions on the audio thread: while one is active and the transport is stopped,
/// the output is the audition instead of the input.
pub struct AuditionPlayer {
    consumer: rtrb::Consumer<f32>,
    channels: usize,
    flags: Arc<AuditionFlags>,
}

impl AuditionPlayer {
    /// A player for `channels` channels and the ring's writing end for the feeder.
    pub fn new(
        channels: usize,
        capacity_frames: usize,
        flags: Arc<AuditionFlags>,
    ) -> (Self, rtrb::Producer<f32>) {
        let channels = channels.max(1);
        let (producer, consumer) = rtrb::RingBuffer::new(capacity_frames.max(1) * channels);
        (
            Self {
                consumer,
                channels,
                flags,
            },
            producer,
        )
    }

    /// Writes the audition into `block` if one is playing. Starting the transport ends it
    /// (queued audition audio is discarded) and the input passes through untouched.
    pub fn play(&mut self, block: &mut [&mut [f32]], transport_playing: bool) {
        if !self.flags.active.load(Ordering::Acquire) {
            if self.consumer.slots() > 0 {
                self.discard();
            }
            return;
        }
        if transport_playing || block.len() != self.channels {
            self.discard();
            return;
        }
        let frames = block.first().map_or(0, |c| c.len());
        let available = (self.consumer.slots() / self.channels).min(frames);
        if let Ok(chunk) = self.consumer.read_chunk(available * self.channels) {
            let (first, second) = chunk.as_slices();
            for (k, &sample) in first.iter().chain(second).enumerate() {
                block[k % self.channels][k / self.channels] = sample;
            }
            chunk.commit_all();
        }
        for channel in block.iter_mut() {
            channel[available..].fill(0.0);
        }
        if available < frames && self.flags.fed_all.load(Ordering::Acquire) {
            self.flags.active.store(false, Ordering::Release);
        }
    }

    /// Ends the audition, if one plays: the queued audition audio is discarded and the active
    /// flag cleared, so the feeder stops too. The block is left alone (the input passes).
    pub fn stop(&mut self) {
        if self.flags.active.load(Ordering::Acquire) || self.consumer.slots() > 0 {
            self.discard();
        }
    }

    fn discard(&mut self) {
        let queued = self.consumer.slots();
        if let Ok(chunk) = self.consumer.read_chunk(queued) {
            chunk.commit_all();
        }
        self.flags.active.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_of(channels: &mut [Vec<f32>]) -> Vec<&mut [f32]> {
        channels.iter_mut().map(|c| c.as_mut_slice()).collect()
    }

    #[test]
    fn tap_interleaves_and_counts_dropped_blocks() {
        let stats = Arc::new(TapStats::default());
        let (mut tap, mut ring) = AudioTap::new(2, 4, stats.clone());
        let mut channels = vec![vec![1.0, 2.0, 3.0], vec![-1.0, -2.0, -3.0]];
        assert!(tap.capture(&block_of(&mut channels), true));
        let got: Vec<f32> = (0..6).map(|_| ring.pop().unwrap()).collect();
        assert_eq!(got, [1.0, -1.0, 2.0, -2.0, 3.0, -3.0]);
        assert!(tap.capture(&block_of(&mut channels), true));
        assert!(
            !tap.capture(&block_of(&mut channels), true),
            "only 4 frames fit"
        );
        assert_eq!(stats.dropped_frames.load(Ordering::Relaxed), 3);
        assert_eq!(stats.frames.load(Ordering::Relaxed), 6);
    }

    #[test]
    fn offline_rendering_waits_for_room_instead_of_dropping() {
        let stats = Arc::new(TapStats::default());
        let (mut tap, mut ring) = AudioTap::new(1, 4, stats.clone());
        tap.set_offline(true);
        let mut block = vec![vec![0.5; 4]];
        assert!(tap.capture(&block_of(&mut block), true));
        let reader = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(20));
            let got: Vec<f32> = (0..4).map(|_| ring.pop().unwrap()).collect();
            (got, ring)
        });
        assert!(
            tap.capture(&block_of(&mut block), true),
            "waited for the reader"
        );
        let (got, ring) = reader.join().unwrap();
        assert_eq!(got, [0.5; 4]);
        assert_eq!(ring.slots(), 4);
        assert_eq!(stats.dropped_frames.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn stopped_silence_is_skipped_but_playing_silence_is_kept() {
        let stats = Arc::new(TapStats::default());
        let (mut tap, ring) = AudioTap::new(1, 16, stats.clone());
        let mut silence = vec![vec![0.0; 4]];
        tap.capture(&block_of(&mut silence), false);
        assert_eq!(ring.slots(), 0);
        tap.capture(&block_of(&mut silence), true);
        assert_eq!(ring.slots(), 4);
        assert_eq!(stats.silent_blocks.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn audition_replaces_output_only_while_stopped() {
        let flags = Arc::new(AuditionFlags::default());
        let (mut player, mut feed) = AuditionPlayer::new(2, 8, flags.clone());
        for s in [0.5, -0.5, 0.25, -0.25] {
            feed.push(s).unwrap();
        }
        flags.fed_all.store(true, Ordering::Release);
        flags.active.store(true, Ordering::Release);
        let mut channels = vec![vec![9.0; 3], vec![9.0; 3]];
        player.play(&mut block_of(&mut channels), false);
        assert_eq!(channels[0], [0.5, 0.25, 0.0]);
        assert_eq!(channels[1], [-0.5, -0.25, 0.0]);
        assert!(
            !flags.active.load(Ordering::Acquire),
            "ran dry after the last sample"
        );

        feed.push(1.0).unwrap();
        feed.push(1.0).unwrap();
        flags.active.store(true, Ordering::Release);
        let mut channels = vec![vec![9.0; 3], vec![9.0; 3]];
        player.play(&mut block_of(&mut channels), true);
        assert_eq!(
            channels[0], [9.0; 3],
            "the transport plays: the input passes"
        );
        assert!(!flags.active.load(Ordering::Acquire));
        assert_eq!(feed.slots(), 16, "queued audition audio was discarded");
    }
}
