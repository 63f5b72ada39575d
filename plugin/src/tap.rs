//! The audio thread's side of the plugin: copying the input into a pre-sized lock-free ring
//! for the analysis thread ([`AudioTap`]) and playing auditions from another ring
//! ([`AuditionPlayer`]). Both only copy samples and touch atomics: no allocation, no lock, no
//! logging, no candle. Where the captured audio stops being continuous (the transport starts
//! or stops, the host's position jumps, a block was dropped) the tap also says so in a small
//! ring of its own ([`SegmentStart`]), with where the host's bars were at that moment; and when
//! a new capture starts while the host plays (Start over), the analysis thread asks it to mark
//! the next block the same way ([`TapStats::mark_next`]), so the new capture knows where the
//! host's bars stand at its first frame.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Seconds of audio the capture ring holds: how long the analysis thread may fall behind (a
/// render or a model load holding the capture) before blocks are dropped.
pub const CAPTURE_RING_S: f64 = 4.0;
/// Seconds of audition audio queued ahead of the audio thread.
pub const AUDITION_RING_S: f64 = 1.0;
/// Longest an offline render waits for the analysis thread to make room in the ring.
pub const OFFLINE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Segment starts the tap can queue before the analysis thread reads them (each needs a
/// transport change, a jump or a dropped block; the analysis thread reads every few ms).
const SEGMENT_RING: usize = 256;

/// Where the host's bars stood at a block's first frame, from its transport.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HostBar {
    /// Seconds since the host's last bar line.
    pub since_bar_line_s: f64,
    /// The host's tempo, quarter notes a minute.
    pub tempo_bpm: f64,
}

/// What the host's transport says about a block.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct HostPosition {
    pub playing: bool,
    /// The block's first frame on the host's timeline, if the host says.
    pub pos_samples: Option<i64>,
    /// Where its bars stand, if the host says (tempo and bar position known).
    pub bar: Option<HostBar>,
}

impl HostPosition {
    /// What `transport` says (nothing allocated: the audio thread calls it every block).
    pub fn from_transport(transport: &nice_plug::prelude::Transport) -> Self {
        let bar = match (
            transport.tempo,
            transport.pos_beats(),
            transport.bar_start_pos_beats(),
        ) {
            (Some(tempo), Some(pos), Some(bar_start))
                if tempo > 0.0 && tempo.is_finite() && pos >= bar_start =>
            {
                Some(HostBar {
                    since_bar_line_s: (pos - bar_start) * 60.0 / tempo,
                    tempo_bpm: tempo,
                })
            }
            _ => None,
        };
        Self {
            playing: transport.playing,
            pos_samples: transport.pos_samples(),
            bar,
        }
    }

    /// A host that says only whether it plays.
    pub fn playing(playing: bool) -> Self {
        Self {
            playing,
            ..Self::default()
        }
    }
}

/// The first frame of captured audio that does not continue the audio before it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SegmentStart {
    /// Frames written to the capture ring before it.
    pub frame: u64,
    /// Where the host's bars stood there, if it was playing and said.
    pub host: Option<HostBar>,
    /// Marked only because the analysis thread asked ([`TapStats::mark_next`]): the audio
    /// continues the block before it, and the mark only says where the host's bars stand.
    pub asked: bool,
}

/// What the audio thread and the analysis thread share about the tap: counters for the status
/// line, and a request to mark the next block.
#[derive(Debug, Default)]
pub struct TapStats {
    /// Set by the analysis thread when it starts a new capture: the next block written starts a
    /// segment ([`SegmentStart::asked`] when it continues the last), which the new capture
    /// starts at. The audio thread clears it.
    pub mark_next: AtomicBool,
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
    segments: rtrb::Producer<SegmentStart>,
    /// The reading end of `segments`, until the analysis thread takes it.
    segment_reader: Option<rtrb::Consumer<SegmentStart>>,
    /// Frames written to the ring.
    written: u64,
    /// Whether the last block written was playing, and where the host's next block would
    /// start if it continues it; `None` before the first block.
    last: Option<(bool, Option<i64>)>,
    /// A block was dropped since the last one written.
    dropped: bool,
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
        let (segments, segment_reader) = rtrb::RingBuffer::new(SEGMENT_RING);
        (
            Self {
                producer,
                channels,
                stats,
                offline: false,
                segments,
                segment_reader: Some(segment_reader),
                written: 0,
                last: None,
                dropped: false,
            },
            consumer,
        )
    }

    /// The reading end of the segment starts (once; the analysis thread's).
    pub fn take_segment_reader(&mut self) -> Option<rtrb::Consumer<SegmentStart>> {
        self.segment_reader.take()
    }

    /// Waits for ring space instead of dropping blocks (for offline rendering only: it sleeps).
    pub fn set_offline(&mut self, offline: bool) {
        self.offline = offline;
    }

    /// [`AudioTap::capture_at`] for a host that says only whether it plays.
    pub fn capture(&mut self, block: &[&mut [f32]], transport_playing: bool) -> bool {
        self.capture_at(block, HostPosition::playing(transport_playing))
    }

    /// Copies one block (one slice per channel). Blocks of exact digital silence while the
    /// transport is stopped are not analysed (a stopped host feeds zeros, which are not part of
    /// the track). A block that does not continue the last one written starts a segment.
    /// Returns `false` when the ring was full and the block was dropped.
    pub fn capture_at(&mut self, block: &[&mut [f32]], host: HostPosition) -> bool {
        let frames = block.first().map_or(0, |c| c.len());
        if frames == 0 || block.len() != self.channels {
            return true;
        }
        let transport_playing = host.playing;
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
                self.mark_segment(host, frames);
                self.written += frames as u64;
                self.stats
                    .frames
                    .fetch_add(frames as u64, Ordering::Relaxed);
                true
            }
            Err(_) => {
                self.dropped = true;
                self.stats
                    .dropped_frames
                    .fetch_add(frames as u64, Ordering::Relaxed);
                false
            }
        }
    }

    /// Queues a segment start if the block of `frames` frames written now does not continue
    /// the last one: the first block, a change of the transport, a jump in the host's position
    /// while it plays, or a dropped block where the host gives no position to tell; or if the
    /// analysis thread asked for one ([`TapStats::mark_next`]). (A full segment ring loses the
    /// mark: it holds far more than the analysis thread leaves unread.)
    fn mark_segment(&mut self, host: HostPosition, frames: usize) {
        let continues = match self.last {
            Some((was_playing, next)) => {
                was_playing == host.playing
                    && match next.zip(host.pos_samples).filter(|_| host.playing) {
                        Some((expected, at)) => expected == at,
                        None => !self.dropped,
                    }
            }
            None => false,
        };
        self.dropped = false;
        let asked = self.stats.mark_next.load(Ordering::Acquire)
            && self.stats.mark_next.swap(false, Ordering::AcqRel);
        if !continues || asked {
            let _ = self.segments.push(SegmentStart {
                frame: self.written,
                host: host.bar.filter(|_| host.playing),
                asked: continues,
            });
        }
        self.last = Some((host.playing, host.pos_samples.map(|p| p + frames as i64)));
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
    fn the_host_bar_is_read_from_its_transport() {
        let mut transport = nice_plug::prelude::Transport::new(48_000.0);
        assert_eq!(
            HostPosition::from_transport(&transport),
            HostPosition::default()
        );
        transport.playing = true;
        transport.tempo = Some(120.0);
        transport.time_sig_numerator = Some(4);
        transport.time_sig_denominator = Some(4);
        // Bar 3 (from 0) starts at quarter note 8; the block at 9.5 is 1.5 beats into it.
        transport.pos_beats = Some(9.5);
        let host = HostPosition::from_transport(&transport);
        assert_eq!(host.pos_samples, Some(228_000));
        assert_eq!(
            host.bar,
            Some(HostBar {
                since_bar_line_s: 0.75,
                tempo_bpm: 120.0
            })
        );
        transport.tempo = None;
        assert_eq!(HostPosition::from_transport(&transport).bar, None);
    }

    #[test]
    fn a_segment_starts_where_the_captured_audio_stops_being_continuous() {
        let stats = Arc::new(TapStats::default());
        let (mut tap, mut ring) = AudioTap::new(1, 64, stats);
        let mut segments = tap.take_segment_reader().unwrap();
        assert!(tap.take_segment_reader().is_none());
        let mut block = vec![vec![0.5; 4]];
        let bar = HostBar {
            since_bar_line_s: 0.25,
            tempo_bpm: 120.0,
        };
        let at = |pos| HostPosition {
            playing: true,
            pos_samples: Some(pos),
            bar: Some(bar),
        };
        // Playing from 1000, continuously: one segment.
        tap.capture_at(&block_of(&mut block), at(1000));
        tap.capture_at(&block_of(&mut block), at(1004));
        // Stopped with input (no bars said), then playing again from where it was.
        tap.capture_at(&block_of(&mut block), HostPosition::playing(false));
        tap.capture_at(&block_of(&mut block), at(1008));
        // A jump (a loop back to 0).
        tap.capture_at(&block_of(&mut block), at(0));
        tap.capture_at(&block_of(&mut block), at(4));
        let got: Vec<SegmentStart> = std::iter::from_fn(|| segments.pop().ok()).collect();
        let expected =
            [(0, Some(bar)), (8, None), (12, Some(bar)), (16, Some(bar))].map(|(frame, host)| {
                SegmentStart {
                    frame,
                    host,
                    asked: false,
                }
            });
        assert_eq!(got, expected);
        // A dropped block: the next one written starts a segment.
        for _ in 0..ring.slots() {
            ring.pop().unwrap();
        }
        let mut long = vec![vec![0.5; 64]];
        tap.capture_at(&block_of(&mut long), at(100));
        assert!(!tap.capture_at(&block_of(&mut block), at(164)), "full");
        for _ in 0..ring.slots() {
            ring.pop().unwrap();
        }
        tap.capture_at(&block_of(&mut block), at(168));
        let got: Vec<u64> = std::iter::from_fn(|| segments.pop().ok())
            .map(|s| s.frame)
            .collect();
        assert_eq!(got, [24, 88]);
    }

    #[test]
    fn a_new_capture_gets_a_mark_at_the_next_block_with_the_hosts_bars() {
        let stats = Arc::new(TapStats::default());
        let (mut tap, _ring) = AudioTap::new(1, 64, stats.clone());
        let mut segments = tap.take_segment_reader().unwrap();
        let mut block = vec![vec![0.5; 4]];
        let at = |pos: i64| HostPosition {
            playing: true,
            pos_samples: Some(pos),
            bar: Some(HostBar {
                since_bar_line_s: pos as f64 / 1000.0,
                tempo_bpm: 120.0,
            }),
        };
        tap.capture_at(&block_of(&mut block), at(0));
        tap.capture_at(&block_of(&mut block), at(4));
        // Start over while the host plays on: the next block is marked, once.
        stats.mark_next.store(true, Ordering::Release);
        tap.capture_at(&block_of(&mut block), at(8));
        tap.capture_at(&block_of(&mut block), at(12));
        // Asked at a jump: a plain segment start, not a second one.
        stats.mark_next.store(true, Ordering::Release);
        tap.capture_at(&block_of(&mut block), at(100));
        assert!(
            !stats.mark_next.load(Ordering::Acquire),
            "the audio thread cleared it"
        );
        let got: Vec<(u64, f64, bool)> = std::iter::from_fn(|| segments.pop().ok())
            .map(|s| (s.frame, s.host.unwrap().since_bar_line_s, s.asked))
            .collect();
        assert_eq!(got, [(0, 0.0, false), (8, 0.008, true), (16, 0.1, false)]);
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
