//! The analysis thread: drains the capture ring, appends the audio to the [`Capture`](crate::session::Capture), runs the
//! streaming beat tracker over it, computes each beat's 121 features as soon as the beat is
//! complete, and wakes the scoring worker when a new bar is in. It also feeds auditions to the
//! audio thread's audition ring.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use cutscore_analysis::streaming::{StreamingAnalyzer, StreamingBeat};
use cutscore_core::features::BEAT_FEATURES;

use crate::jobs::Job;
use crate::session::{MAX_CAPTURE_S, ParkedAnalysis, PhaseKey, Session, lock};
use crate::settle::{SETTLE_AFTER, Settler};
use crate::tap::SegmentStart;

/// Frames handed to the streaming analyzer at once.
const CHUNK_FRAMES: usize = 4096;
/// How long the thread sleeps when the ring is empty.
const IDLE: Duration = Duration::from_millis(5);

/// Moves as many whole frames as fit in `scratch` from the ring into it; returns how many
/// samples it moved.
fn read_frames(ring: &mut rtrb::Consumer<f32>, channels: usize, scratch: &mut [f32]) -> usize {
    let take = (ring.slots() / channels * channels).min(scratch.len());
    if take == 0 {
        return 0;
    }
    let Ok(chunk) = ring.read_chunk(take) else {
        return 0;
    };
    let (a, b) = chunk.as_slices();
    scratch[..a.len()].copy_from_slice(a);
    scratch[a.len()..take].copy_from_slice(b);
    chunk.commit_all();
    take
}

/// What the analysis thread owns.
pub struct AnalysisThread {
    pub session: Arc<Session>,
    pub ring: rtrb::Consumer<f32>,
    /// Where the captured audio stops being continuous, from the audio thread.
    pub segments: Option<rtrb::Consumer<SegmentStart>>,
    /// Frames read from `ring` so far (the frame numbers of `segments`).
    pub ring_frames: u64,
    pub audition: rtrb::Producer<f32>,
    pub jobs: Sender<Job>,
    pub sample_rate: u32,
    pub channels: usize,
    pub stop: Arc<std::sync::atomic::AtomicBool>,
}

impl AnalysisThread {
    /// Runs until `stop` is set, then parks the tracker in the session for the next
    /// activation.
    pub fn run(mut self) {
        let Some(mut analyzer) = self.resume_or_start() else {
            self.drain_until_stopped();
            return;
        };
        let mut scratch = vec![0f32; CHUNK_FRAMES * self.channels];
        let mut row = vec![0f32; BEAT_FEATURES];
        let mut feeding: Option<(Vec<f32>, usize)> = None;
        let mut settler = Settler::default();
        // The state of the capture the tracker last went on from.
        let mut aligned = None;
        let mut last_audio = Instant::now();
        // A new capture (Start over) waiting for the audio thread's mark, asked at this ring
        // frame.
        let mut waiting: Option<u64> = None;
        while !self.stop.load(Ordering::Acquire) {
            if self.session.restart.swap(false, Ordering::AcqRel) {
                // `prepare` only fails for a bad rate, which succeeded before.
                let _ = analyzer.prepare(CHUNK_FRAMES, self.sample_rate);
                self.session
                    .new_capture(self.sample_rate, self.channels as u16);
                // The new capture starts at the next block the audio thread writes, which it
                // marks with where the host's bars stand there: their bar line anchors the new
                // capture's bars as it does a capture started with the transport.
                self.session.tap.mark_next.store(true, Ordering::Release);
                waiting = Some(self.ring_frames);
            }
            self.feed_audition(&mut feeding);
            let read = read_frames(&mut self.ring, self.channels, &mut scratch);
            if read == 0 {
                if last_audio.elapsed() >= SETTLE_AFTER {
                    settler.start_if_wanted(&self.session);
                }
                std::thread::sleep(IDLE);
                continue;
            }
            last_audio = Instant::now();
            let skip = self.start_segments(read / self.channels, &mut waiting) * self.channels;
            if skip < read {
                self.analyse_block(
                    &mut analyzer,
                    &mut scratch[skip..read],
                    &mut row,
                    &mut aligned,
                );
            }
        }
        // A settle holds the session, not the plugin: it ends within its analysis.
        settler.finish();
        // What the audio thread queued before deactivation belongs to the capture, which the
        // next activation continues (a bounce can stop with the ring full).
        loop {
            let read = read_frames(&mut self.ring, self.channels, &mut scratch);
            if read == 0 {
                break;
            }
            let skip = self.start_segments(read / self.channels, &mut waiting) * self.channels;
            if skip < read {
                self.analyse_block(
                    &mut analyzer,
                    &mut scratch[skip..read],
                    &mut row,
                    &mut aligned,
                );
            }
        }
        *lock(&self.session.parked) = Some(ParkedAnalysis {
            analyzer,
            sample_rate: self.sample_rate,
            channels: self.channels,
        });
    }

    /// The tracker of the previous activation if it listened at this rate and channel count
    /// (the capture carries on), else a new tracker and a new capture, saying why when the
    /// old capture is dropped. `None` if no tracker can run at this rate.
    fn resume_or_start(&self) -> Option<StreamingAnalyzer> {
        let parked = lock(&self.session.parked).take();
        let (rate, channels) = (self.sample_rate, self.channels);
        if let Some(parked) = parked {
            if parked.sample_rate == rate && parked.channels == channels {
                return Some(parked.analyzer);
            }
            let heard = lock(&self.session.capture).seconds();
            if heard > 0.0 {
                self.session.set_message(if parked.sample_rate == rate {
                    format!(
                        "The track changed from {} to {channels} channels: Cutscore started a new capture",
                        parked.channels
                    )
                } else {
                    format!(
                        "The sample rate changed from {} to {rate} Hz: Cutscore started a new capture",
                        parked.sample_rate
                    )
                });
            }
        }
        self.session.new_capture(rate, channels as u16);
        let mut analyzer = StreamingAnalyzer::new();
        if let Err(e) = analyzer.prepare(CHUNK_FRAMES, rate) {
            lock(&self.session.capture).error = Some(format!("analysis unavailable: {e}"));
            return None;
        }
        Some(analyzer)
    }

    /// Tells the capture where the segments that start in the next `frames` frames read from
    /// the ring start in it, before those frames are appended; returns how many of the frames,
    /// from the first, are left out. While a new capture is `waiting` for the audio thread's
    /// mark (asked at that ring frame), the frames before the mark are not its audio. A mark
    /// that never comes (the segment ring was full) is waited for while a ring's worth of audio
    /// passes, no longer: then the capture starts without the host's bars.
    fn start_segments(&mut self, frames: usize, waiting: &mut Option<u64>) -> usize {
        let first = self.ring_frames;
        self.ring_frames += frames as u64;
        let ring_capacity = (self.ring.buffer().capacity() / self.channels) as u64;
        let Some(segments) = self.segments.as_mut() else {
            *waiting = None;
            return 0;
        };
        let mut kept_from = first;
        // Where the waiting capture starts, if in this block.
        let mut started_at = None;
        if let Some(asked_at) = *waiting {
            match segments.peek() {
                Ok(start) if start.frame < self.ring_frames => {
                    kept_from = start.frame.max(first);
                    started_at = Some(start.frame);
                    *waiting = None;
                }
                _ if self.ring_frames - asked_at > ring_capacity => *waiting = None,
                _ => return frames,
            }
        }
        while let Ok(&start) = segments.peek() {
            if start.frame >= self.ring_frames {
                break;
            }
            let _ = segments.pop();
            // A mark asked for a capture that started without it (at a segment of its own, or
            // after the wait): the audio continues there, so it says nothing.
            if start.asked && started_at != Some(start.frame) {
                continue;
            }
            let mut capture = lock(&self.session.capture);
            let into_block =
                start.frame.saturating_sub(kept_from) as f64 / f64::from(self.sample_rate);
            let at_s = capture.seconds() + into_block;
            capture.start_segment(at_s, start.host);
        }
        (kept_from - first) as usize
    }

    /// Appends `block` to the capture and tracks it; `aligned` is the state of the capture the
    /// tracker last went on from
    /// ([`Capture::counted_phase`](crate::session::Capture::counted_phase)).
    fn analyse_block(
        &self,
        analyzer: &mut StreamingAnalyzer,
        block: &mut [f32],
        row: &mut [f32],
        aligned: &mut Option<PhaseKey>,
    ) {
        let mut non_finite = 0;
        for s in block.iter_mut() {
            if !s.is_finite() {
                *s = 0.0;
                non_finite += 1;
            }
        }
        let (counted_at, phase) = {
            let mut capture = lock(&self.session.capture);
            capture.non_finite += non_finite;
            if capture.full || capture.error.is_some() {
                return;
            }
            if capture.seconds() >= MAX_CAPTURE_S {
                capture.full = true;
                return;
            }
            capture.append(block);
            (capture.counted_tempo(), capture.counted_phase(*aligned))
        };
        // The audio from here on is counted at the tempo the user set (½×, 2×), if any, so the
        // grid grows at their level while the music plays. A change allocates the tracker's new
        // state space: here, outside the capture's lock, never on the audio thread.
        analyzer.count_at(counted_at);
        // From the grid's phase: its last bar line after an ask, its last beat after a settle.
        if let Some((key, time_s, beat_in_bar)) = phase {
            *aligned = Some(key);
            analyzer.align(time_s, beat_in_bar);
        }
        if let Err(e) = analyzer.push_interleaved(block, self.channels) {
            lock(&self.session.capture).error = Some(format!("analysis stopped: {e}"));
            return;
        }
        let mut new_bar = None;
        while let Some(beat) = analyzer.poll_beat() {
            if self.add_beat(analyzer, beat, row) {
                new_bar = Some(Instant::now());
            }
        }
        let mut capture = lock(&self.session.capture);
        capture.grid.duration_s = capture.seconds().max(capture.grid.duration_s);
        capture.tempo_bpm = analyzer.tempo_bpm();
        drop(capture);
        if let Some(at) = new_bar {
            // A full queue already holds a wake-up; the worker reads the newest capture.
            let _ = self.jobs.try_send(Job::NewBar(at));
        }
    }

    /// Adds a beat and the features of the beat it completes. Returns whether a new bar
    /// became complete.
    fn add_beat(&self, analyzer: &StreamingAnalyzer, beat: StreamingBeat, row: &mut [f32]) -> bool {
        let mut capture = lock(&self.session.capture);
        if !capture.push_beat(
            beat.time_s,
            beat.beat_in_bar,
            beat.meter,
            beat.downbeat_log_odds,
        ) {
            return false;
        }
        let grid = &capture.grid;
        // The previous beat is now complete: its end is this beat.
        let complete = grid.len() - 1;
        let mut new_bar = false;
        for index in capture.complete_beats()..complete {
            match analyzer.features_into(&capture.grid, index, row) {
                Ok(()) => capture.features.extend_from_slice(row),
                // Too old for the analyzer's frame ring (after a stall): reuse the last row
                // so indices stay aligned, and count it for the status line.
                Err(_) => {
                    let fallback = capture
                        .features
                        .len()
                        .checked_sub(BEAT_FEATURES)
                        .map(|start| capture.features[start..].to_vec())
                        .unwrap_or_else(|| vec![0.0; BEAT_FEATURES]);
                    capture.features.extend_from_slice(&fallback);
                    capture.feature_gaps += 1;
                }
            }
            new_bar |= beat.beat_in_bar == 0;
        }
        // Every beat sharpens the reading of where the bars start; when they move, the
        // proposals are rescored on the new bars.
        new_bar |= capture.place_bars();
        new_bar
    }

    fn feed_audition(&mut self, feeding: &mut Option<(Vec<f32>, usize)>) {
        let flags = &self.session.audition;
        let mut request = lock(&self.session.audition_request);
        if request.is_some() {
            // A new audition replaces the one playing: stop it, wait for the audio thread to
            // discard what was queued, then start.
            if flags.active.swap(false, Ordering::AcqRel) {
                *feeding = None;
            }
            if self.audition.slots() == self.audition.buffer().capacity() {
                *feeding = request.take().map(|samples| (samples, 0));
                flags.fed_all.store(false, Ordering::Release);
                flags.active.store(true, Ordering::Release);
            }
        }
        drop(request);
        let Some((samples, at)) = feeding else {
            return;
        };
        if !self.session.audition.active.load(Ordering::Acquire) {
            *feeding = None;
            return;
        }
        let n = self.audition.slots().min(samples.len() - *at);
        if let Ok(chunk) = self.audition.write_chunk_uninit(n) {
            chunk.fill_from_iter(samples[*at..*at + n].iter().copied());
            *at += n;
        }
        if *at == samples.len() {
            self.session.audition.fed_all.store(true, Ordering::Release);
            *feeding = None;
        }
    }

    fn drain_until_stopped(&mut self) {
        while !self.stop.load(Ordering::Acquire) {
            let queued = self.ring.slots();
            if let Ok(chunk) = self.ring.read_chunk(queued) {
                chunk.commit_all();
            }
            std::thread::sleep(IDLE);
        }
    }
}
