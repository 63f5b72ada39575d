//! The streaming (causal) beat tracker the plugin's analysis thread runs on live audio.
//!
//! [`StreamingAnalyzer::prepare`] sizes every buffer; after it, [`StreamingAnalyzer::push`]
//! takes blocks of any size and allocates nothing, takes no lock, and keeps memory fixed: the
//! frames live in a ring of [`FRAME_RING`] frames (95 s) and reported beats wait in a queue of
//! [`BEAT_QUEUE`] until polled.
//!
//! Method: the offline tracker's, run causally. Each front-end frame goes into the learned
//! activation network ([`super::beat_model::ActivationStream`], the shipped model), whose
//! beat and downbeat probabilities come out [`super::beat_model::BeatModelConfig::look_ahead`]
//! frames (372 ms) later: latency of the analysis, never of the audio. They are filtered
//! forward over the same tempo × bar-position state space the offline decoder searches
//! ([`super::bar_filter`]), which reports each beat with its place in the bar and the meter,
//! decided together. A grid whose beats and bar lines alternate strong and weak is halved as it
//! goes, as the offline tracker halves it ([`super::tempo_octave::OctaveGuard`]), unless the
//! beats are counted at a tempo given ([`StreamingAnalyzer::count_at`]). After a second of
//! silence no beats are reported.
//!
//! Features: [`StreamingAnalyzer::features_into`] computes the 121 features of a beat of any
//! grid from the frames still in the ring, with the functions the offline path uses.

use super::bar_decoder::StateSpace;
use super::bar_filter::BarFilter;
use super::bar_phase;
use super::beat_features::{
    BeatSummary, CONTEXT_BEATS, FrameSource, beat_features_into, span_frame_range, summarize_beat,
};
use super::beat_model::{self, Activation, ActivationStream, BeatModel};
use super::decode::{MAX_CHANNELS, MAX_SAMPLE_RATE, MIN_SAMPLE_RATE};
use super::frontend::{Frame, FrameAnalyzer};
use super::resample::ResampleError;
use super::tempo_octave::{GuardedBeat, OctaveGuard, ScoredBeat, TEMPO_JUMP};
use crate::TempoHint;
use cutscore_core::features::BEAT_FEATURES;
use cutscore_core::grid::{BeatGrid, steady_tempo_in};

/// Frames kept for features (about 95 s).
pub const FRAME_RING: usize = 4096;
/// Beats waiting to be polled.
pub const BEAT_QUEUE: usize = 256;
/// Frame level below which the stream counts as silent: -70 dBFS in the front end's
/// `(dB + 40) / 20` units.
const SILENT_LOUDNESS: f32 = -1.5;
/// Silent frames in a row after which no beat is reported (about 1 s).
const SILENCE_ENDS_BEATS: usize = 43;
/// Weight of each new beat in the running confidence.
const CONFIDENCE_RATE: f32 = 0.2;
/// Weight of each frame in the slow average of the beat probability (about 2 s).
const LEVEL_RATE: f32 = 0.01;
/// Reported beats the tempo is read over ([`steady_tempo_in`]): 16 periods.
const TEMPO_BEATS: usize = 17;
/// Steady beats the tempo is read from once there are this many (8 periods, whose mean is
/// within 0.6 % of the true one: an analysis frame over 8 periods); until then the filter's own
/// tempo is reported (within about 2 %).
const MIN_TEMPO_BEATS: usize = 9;
/// Activations kept for a reported beat's downbeat evidence: more than the bar filter's delay
/// between a beat and its report.
const RECENT_ACTIVATIONS: usize = 32;

/// A beat reported by the streaming tracker.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StreamingBeat {
    /// When the beat fell, in seconds from the start of the stream.
    pub time_s: f64,
    /// Position in the bar, 0 = downbeat.
    pub beat_in_bar: u8,
    /// Beats per bar the tracker currently believes.
    pub meter: u8,
    /// Tempo at this beat, BPM.
    pub tempo_bpm: f32,
    /// 0 (guessing) to 1 (beats on strong, regular onsets).
    pub confidence: f32,
    /// The network's log-odds that this beat is a downbeat: evidence for placing the bar lines
    /// over everything captured ([`bar_phase::place_bars`]).
    pub downbeat_log_odds: f32,
}

/// Why the streaming analyzer could not be set up.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StreamingSetupError {
    #[error("sample rate {actual} Hz is not supported; expected {min} to {max} Hz")]
    SampleRate { min: u32, max: u32, actual: u32 },
    #[error("maximum block of {actual} frames; expected 1 to {max}")]
    MaxBlock { max: usize, actual: usize },
    #[error(transparent)]
    Resampler(#[from] ResampleError),
}

/// Why a streaming call failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StreamingError {
    #[error("the analyzer is not prepared; call prepare(max_block, sample_rate) first")]
    NotPrepared,
    #[error("block of {actual} frames is longer than the prepared maximum of {expected}")]
    BlockTooLong { expected: usize, actual: usize },
    #[error("{actual} channels; expected 1 to {expected}")]
    Channels { expected: usize, actual: usize },
    #[error("interleaved block of {samples} samples is not whole frames of {channels} channels")]
    PartialFrame { samples: usize, channels: usize },
    #[error(
        "beat {beat} needs frames {first}..{end}, but only frames {available_from}..{available_to} are held"
    )]
    FramesUnavailable {
        beat: usize,
        first: usize,
        end: usize,
        available_from: usize,
        available_to: usize,
    },
    #[error("beat {beat} is outside the grid's {beats} beats")]
    BeatOutOfRange { beat: usize, beats: usize },
    #[error("feature buffer holds {actual} values; expected {expected}")]
    FeatureBuffer { expected: usize, actual: usize },
    #[error(transparent)]
    Resample(#[from] ResampleError),
}

/// The frames the ring still holds.
struct FrameRing {
    frames: Vec<Frame>,
    /// Frames written so far (the next frame's index).
    end: usize,
}

impl FrameSource for FrameRing {
    fn end(&self) -> usize {
        self.end
    }
    fn start(&self) -> usize {
        self.end.saturating_sub(self.frames.len())
    }
    fn frame(&self, k: usize) -> Option<&Frame> {
        (k >= FrameSource::start(self) && k < self.end).then(|| &self.frames[k % self.frames.len()])
    }
}

/// The learned tracker: activations, filtered.
struct Tracker {
    activations: ActivationStream,
    beats: BeatState,
}

/// What the tracker knows after the network: the filter, the silence and the latest beat.
struct BeatState {
    filter: BarFilter,
    /// Frames in a row quieter than [`SILENT_LOUDNESS`].
    silent_frames: usize,
    /// Silent-frame count of each frame still in the network's look-ahead, by frame.
    silence: Vec<usize>,
    tempo_bpm: f64,
    meter: u8,
    confidence: f32,
    /// Slow average of the beat probability over all frames.
    level: f32,
    /// The latest activations by frame, for the downbeat evidence of a reported beat.
    recent: [Activation; RECENT_ACTIVATIONS],
    /// Activations received (the next one's frame).
    activations_seen: usize,
    /// Halves a grid that follows the "and"s (not at a tempo given: [`StreamingAnalyzer::count_at`]).
    octave: OctaveGuard,
    /// The tempo the beats are counted at, if one was given.
    counted_at: Option<TempoHint>,
    /// Reads the tempo from the beats reported.
    tempo: TempoReader,
}

impl Tracker {
    fn new(model: &BeatModel) -> Self {
        let activations = ActivationStream::new(model);
        let look_ahead = activations.latency_frames() + 1;
        Self {
            activations,
            beats: BeatState {
                filter: BarFilter::new(StateSpace::default()),
                // The stream starts as silence: no beat before the music.
                silent_frames: SILENCE_ENDS_BEATS,
                silence: vec![SILENCE_ENDS_BEATS; look_ahead],
                tempo_bpm: 0.0,
                meter: 4,
                confidence: 0.0,
                level: 0.0,
                recent: [Activation::default(); RECENT_ACTIVATIONS],
                activations_seen: 0,
                octave: OctaveGuard::default(),
                counted_at: None,
                tempo: TempoReader::default(),
            },
        }
    }

    fn reset(&mut self) {
        self.activations.reset();
        let beats = &mut self.beats;
        beats.filter.reset();
        beats.silent_frames = SILENCE_ENDS_BEATS;
        beats.silence.fill(SILENCE_ENDS_BEATS);
        beats.tempo_bpm = 0.0;
        beats.meter = 4;
        beats.confidence = 0.0;
        beats.level = 0.0;
        beats.recent = [Activation::default(); RECENT_ACTIVATIONS];
        beats.activations_seen = 0;
        beats.octave.reset();
        beats.tempo = TempoReader::default();
    }

    /// Takes frame `k`; `report` receives the beats it reveals.
    fn on_frame(&mut self, k: usize, frame: &Frame, report: &mut impl FnMut(StreamingBeat)) {
        let beats = &mut self.beats;
        beats.silent_frames = if frame.loudness < SILENT_LOUDNESS {
            beats.silent_frames + 1
        } else {
            0
        };
        let slots = beats.silence.len();
        beats.silence[k % slots] = beats.silent_frames;
        self.activations.push(&frame.mel, |activation| {
            beats.on_activation(activation, report)
        });
    }

    /// Ends the stream: the frames in the look-ahead are decided with silence after them.
    fn finish(&mut self, report: &mut impl FnMut(StreamingBeat)) {
        let beats = &mut self.beats;
        self.activations
            .finish(|activation| beats.on_activation(activation, report));
    }
}

impl BeatState {
    /// Filters the next activation and reports the beat it reveals, unless the music had
    /// stopped by then.
    fn on_activation(&mut self, activation: Activation, report: &mut impl FnMut(StreamingBeat)) {
        self.level += LEVEL_RATE * (activation.beat - self.level);
        self.recent[self.activations_seen % RECENT_ACTIVATIONS] = activation;
        self.activations_seen += 1;
        let Self {
            filter,
            silence,
            tempo_bpm,
            meter,
            confidence,
            level,
            recent,
            activations_seen,
            octave,
            tempo,
            ..
        } = self;
        let filter_halves = filter.space().spans_an_octave();
        filter.push(activation, |beat| {
            let k = super::frontend::frame_index_at(beat.time_s);
            if silence[k % silence.len()] >= SILENCE_ENDS_BEATS {
                return;
            }
            // Frame `j`'s activation while the ring still holds it.
            let held = |j: usize| {
                (j < *activations_seen && j + RECENT_ACTIVATIONS >= *activations_seen)
                    .then(|| recent[j % RECENT_ACTIVATIONS])
            };
            let mut near = [Activation::default(); 3];
            let mut n = 0;
            for activation in (k.saturating_sub(1)..=k + 1).filter_map(held) {
                near[n] = activation;
                n += 1;
            }
            let scored = ScoredBeat {
                time_s: beat.time_s,
                beat_in_bar: beat.beat_in_bar,
                beat: beat.strength,
                // The downbeat probability at the beat's frame, as the offline check reads it.
                downbeat: held(k).map_or(0.0, |a| a.downbeat),
            };
            // At a tempo given the level is the user's: nothing is halved, as offline.
            let guarded = if filter_halves {
                let Some(guarded) = octave.admit(scored, beat.meter) else {
                    return;
                };
                guarded
            } else {
                GuardedBeat {
                    beat_in_bar: beat.beat_in_bar,
                    tempo_divisor: 1,
                }
            };
            let filtered = f64::from(beat.tempo_bpm / f32::from(guarded.tempo_divisor));
            *tempo_bpm = tempo.read(beat.time_s).unwrap_or(filtered);
            let tempo = *tempo_bpm as f32;
            *meter = beat.meter;
            // How much the beat stands out from the average frame.
            let salience = (beat.strength - *level).clamp(0.0, 1.0);
            *confidence += CONFIDENCE_RATE * (salience - *confidence);
            report(StreamingBeat {
                time_s: beat.time_s,
                beat_in_bar: guarded.beat_in_bar,
                meter: beat.meter,
                tempo_bpm: tempo,
                confidence: *confidence,
                downbeat_log_odds: bar_phase::downbeat_log_odds(&near[..n]),
            });
        });
    }
}

/// The tempo of the latest beats reported at one tempo ([`steady_tempo_in`]). The filter's own
/// tempo is its state's beat interval in whole decoding frames, which flips between neighbouring
/// intervals from beat to beat (a 128 BPM click track reads 127.1 or 129.2); the beats' times,
/// placed between frames, give the tempo to a tenth of a BPM. Fixed size: nothing is allocated.
#[derive(Debug, Clone, Copy, Default)]
struct TempoReader {
    /// The latest beats' times, by report count.
    times: [f64; TEMPO_BEATS],
    /// Beats reported.
    reported: usize,
    /// Of the latest beats, how many are at the current tempo (at most [`TEMPO_BEATS`]).
    steady: usize,
}

impl TempoReader {
    /// Records a beat at `time_s` and reads the tempo of the steady beats up to it; `None`
    /// until [`MIN_TEMPO_BEATS`] of them share a tempo.
    fn read(&mut self, time_s: f64) -> Option<f64> {
        let at = |times: &[f64; TEMPO_BEATS], i: usize| times[i % TEMPO_BEATS];
        if self.reported >= 2 {
            let last = at(&self.times, self.reported - 1);
            let ratio = (time_s - last) / (last - at(&self.times, self.reported - 2));
            if !(1.0 / TEMPO_JUMP..=TEMPO_JUMP).contains(&ratio) {
                self.steady = 1;
            }
        }
        self.times[self.reported % TEMPO_BEATS] = time_s;
        self.reported += 1;
        self.steady = (self.steady + 1).min(TEMPO_BEATS);
        if self.steady < MIN_TEMPO_BEATS {
            return None;
        }
        let mut ordered = [0.0; TEMPO_BEATS];
        for (k, slot) in ordered[..self.steady].iter_mut().enumerate() {
            *slot = at(&self.times, self.reported - self.steady + k);
        }
        let mut scratch = [0.0; TEMPO_BEATS];
        steady_tempo_in(&ordered[..self.steady], &mut scratch)
    }
}

/// The streaming analyzer: push audio, poll beats, ask for features.
pub struct StreamingAnalyzer {
    max_block: usize,
    sample_rate: u32,
    analyzer: Option<FrameAnalyzer>,
    ring: FrameRing,
    tracker: Tracker,
    queue: BeatQueue,
    mono: Vec<f32>,
    finished: bool,
    /// Samples pushed, for the stream's length.
    samples: u64,
}

impl Default for StreamingAnalyzer {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for StreamingAnalyzer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamingAnalyzer")
            .field("sample_rate", &self.sample_rate)
            .field("max_block", &self.max_block)
            .field("frames", &self.ring.end)
            .finish()
    }
}

impl StreamingAnalyzer {
    /// An unprepared analyzer with the shipped beat model; its audio buffers are sized by
    /// [`prepare`](Self::prepare).
    pub fn new() -> Self {
        Self::with_model(beat_model::shipped())
    }

    /// An unprepared analyzer that tracks with `model`'s activations.
    pub fn with_model(model: &BeatModel) -> Self {
        Self {
            max_block: 0,
            sample_rate: 0,
            analyzer: None,
            ring: FrameRing {
                frames: Vec::new(),
                end: 0,
            },
            tracker: Tracker::new(model),
            queue: BeatQueue::default(),
            mono: Vec::new(),
            finished: false,
            samples: 0,
        }
    }

    /// Sizes every buffer for blocks of up to `max_block` frames at `sample_rate` Hz and
    /// resets the stream. The only call that allocates, with [`count_at`](Self::count_at).
    pub fn prepare(
        &mut self,
        max_block: usize,
        sample_rate: u32,
    ) -> Result<(), StreamingSetupError> {
        if !(MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&sample_rate) {
            return Err(StreamingSetupError::SampleRate {
                min: MIN_SAMPLE_RATE,
                max: MAX_SAMPLE_RATE,
                actual: sample_rate,
            });
        }
        const MAX_BLOCK: usize = 1 << 20;
        if max_block == 0 || max_block > MAX_BLOCK {
            return Err(StreamingSetupError::MaxBlock {
                max: MAX_BLOCK,
                actual: max_block,
            });
        }
        self.analyzer = Some(FrameAnalyzer::new(sample_rate)?);
        self.max_block = max_block;
        self.sample_rate = sample_rate;
        self.ring = FrameRing {
            frames: vec![Frame::default(); FRAME_RING],
            end: 0,
        };
        self.tracker.reset();
        self.queue = BeatQueue {
            beats: vec![
                StreamingBeat {
                    time_s: 0.0,
                    beat_in_bar: 0,
                    meter: 4,
                    tempo_bpm: 0.0,
                    confidence: 0.0,
                    downbeat_log_odds: 0.0,
                };
                BEAT_QUEUE
            ],
            head: 0,
            len: 0,
        };
        self.mono = vec![0.0; max_block];
        self.finished = false;
        self.samples = 0;
        Ok(())
    }

    /// Pushes a block of mono samples (any length). Allocates nothing.
    pub fn push(&mut self, mono: &[f32]) -> Result<(), StreamingError> {
        let mut analyzer = self.analyzer.take().ok_or(StreamingError::NotPrepared)?;
        self.samples += mono.len() as u64;
        let result = analyzer.push(mono, &mut |k, frame: &Frame| self.on_frame(k, frame));
        self.analyzer = Some(analyzer);
        result.map_err(Into::into)
    }

    /// Pushes a block of interleaved audio of `channels` channels (at most the prepared
    /// `max_block` frames), mixed down to mono. Allocates nothing.
    pub fn push_interleaved(
        &mut self,
        samples: &[f32],
        channels: usize,
    ) -> Result<(), StreamingError> {
        if channels == 0 || channels > MAX_CHANNELS {
            return Err(StreamingError::Channels {
                expected: MAX_CHANNELS,
                actual: channels,
            });
        }
        if !samples.len().is_multiple_of(channels) {
            return Err(StreamingError::PartialFrame {
                samples: samples.len(),
                channels,
            });
        }
        let frames = samples.len() / channels;
        if self.analyzer.is_none() {
            return Err(StreamingError::NotPrepared);
        }
        if frames > self.max_block {
            return Err(StreamingError::BlockTooLong {
                expected: self.max_block,
                actual: frames,
            });
        }
        let mut mono = std::mem::take(&mut self.mono);
        let scale = 1.0 / channels as f32;
        for (m, frame) in mono.iter_mut().zip(samples.chunks_exact(channels)) {
            *m = frame.iter().sum::<f32>() * scale;
        }
        let result = self.push(&mono[..frames]);
        self.mono = mono;
        result
    }

    /// Ends the stream: the last samples reach the front end (as the offline path's end of
    /// file does), so features of the last beats can be computed.
    pub fn finish(&mut self) -> Result<(), StreamingError> {
        let mut analyzer = self.analyzer.take().ok_or(StreamingError::NotPrepared)?;
        let result = analyzer.finish(&mut |k, frame: &Frame| self.on_frame(k, frame));
        self.analyzer = Some(analyzer);
        let queue = &mut self.queue;
        self.tracker.finish(&mut |beat| queue.push(beat));
        self.finished = true;
        result.map_err(Into::into)
    }

    /// The oldest beat not yet polled.
    pub fn poll_beat(&mut self) -> Option<StreamingBeat> {
        self.queue.pop()
    }

    /// Counts the beats at `tempo` from the next activation the network gives on (audio the
    /// look-ahead, 372 ms, before the next block pushed), or with `None` at whatever tempo it
    /// hears (the default). A tempo given narrows the state space to it as the offline tracker's
    /// is for one (`StateSpace::around`), and no grid is halved; the tracker finds the phase
    /// again within a few beats, on the same clock, and the beats already reported stay. It
    /// holds until changed, through [`prepare`](Self::prepare). The plugin's ½× and 2× while
    /// the music plays. Allocates the new state space: call it between pushes, never from the
    /// audio thread.
    pub fn count_at(&mut self, tempo: Option<TempoHint>) {
        let beats = &mut self.tracker.beats;
        if beats.counted_at == tempo {
            return;
        }
        beats.counted_at = tempo;
        beats.filter.set_space(
            tempo.map_or_else(StateSpace::default, |hint| StateSpace::around(hint.bpm())),
        );
        beats.octave.reset();
        // The tempo is read from the beats at the new level only.
        beats.tempo = TempoReader::default();
    }

    /// Goes on from a beat found elsewhere, at `beat_time_s` (seconds from the stream's start)
    /// and `beat_in_bar` of its bar: the tracker's belief moves to that beat's phase, and beats
    /// up to it are not reported again. For a grid decided over more of the audio than the
    /// tracker has heard (the plugin's capture settled at the tempo the user counts at), so
    /// that the beats after it continue it rather than find the phase again. No allocation.
    pub fn align(&mut self, beat_time_s: f64, beat_in_bar: u8) {
        let beats = &mut self.tracker.beats;
        beats.filter.align(beat_time_s, beat_in_bar);
        beats.octave.reset();
    }

    /// The tempo the beats are counted at ([`count_at`](Self::count_at)), if one was given.
    pub fn counted_at(&self) -> Option<TempoHint> {
        self.tracker.beats.counted_at
    }

    /// Current tempo in BPM (0 before the first estimate).
    pub fn tempo_bpm(&self) -> f64 {
        self.tracker.beats.tempo_bpm
    }

    /// Current confidence, 0 to 1.
    pub fn confidence(&self) -> f32 {
        self.tracker.beats.confidence
    }

    /// Beats per bar currently believed.
    pub fn meter(&self) -> u8 {
        self.tracker.beats.meter
    }

    /// Seconds of audio pushed so far.
    pub fn duration_s(&self) -> f64 {
        if self.sample_rate == 0 {
            0.0
        } else {
            self.samples as f64 / self.sample_rate as f64
        }
    }

    /// Frames analysed so far.
    pub fn frames_done(&self) -> usize {
        self.ring.end
    }

    /// Writes the 121 features of beat `beat` of `grid` into `out`, from the frames held.
    /// The beat and the [`CONTEXT_BEATS`] before it must still be in the ring, and the beat
    /// must be complete (its next beat pushed, or the stream finished). Allocates nothing.
    pub fn features_into(
        &self,
        grid: &BeatGrid,
        beat: usize,
        out: &mut [f32],
    ) -> Result<(), StreamingError> {
        if out.len() != BEAT_FEATURES {
            return Err(StreamingError::FeatureBuffer {
                expected: BEAT_FEATURES,
                actual: out.len(),
            });
        }
        if beat >= grid.len() {
            return Err(StreamingError::BeatOutOfRange {
                beat,
                beats: grid.len(),
            });
        }
        let from = beat.saturating_sub(CONTEXT_BEATS);
        let first = span_frame_range(grid.time_of(from), grid.time_of(from + 1)).start;
        let end = span_frame_range(grid.time_of(beat), grid.time_of(beat + 1)).end;
        let held_from = FrameSource::start(&self.ring);
        let complete = self.finished || end <= self.ring.end;
        if first < held_from || !complete {
            return Err(StreamingError::FramesUnavailable {
                beat,
                first,
                end,
                available_from: held_from,
                available_to: self.ring.end,
            });
        }
        let mut history = [BeatSummary::default(); CONTEXT_BEATS + 1];
        let count = beat - from + 1;
        for (slot, b) in history.iter_mut().zip(from..=beat) {
            *slot = summarize_beat(&self.ring, grid, b);
        }
        let first_downbeat = grid.beat_in_bar.iter().position(|&p| p == 0);
        beat_features_into(grid, beat, &history[..count], first_downbeat, out);
        Ok(())
    }

    fn on_frame(&mut self, k: usize, frame: &Frame) {
        let capacity = self.ring.frames.len();
        self.ring.frames[k % capacity] = *frame;
        self.ring.end = k + 1;
        let queue = &mut self.queue;
        self.tracker
            .on_frame(k, frame, &mut |beat| queue.push(beat));
    }
}

/// Reported beats waiting to be polled, in a ring sized by `prepare`.
#[derive(Default)]
struct BeatQueue {
    beats: Vec<StreamingBeat>,
    head: usize,
    len: usize,
}

impl BeatQueue {
    /// Adds a beat; when nobody polls, the oldest is dropped rather than grow.
    fn push(&mut self, beat: StreamingBeat) {
        let capacity = self.beats.len();
        if capacity == 0 {
            return;
        }
        if self.len == capacity {
            self.head = (self.head + 1) % capacity;
            self.len -= 1;
        }
        self.beats[(self.head + self.len) % capacity] = beat;
        self.len += 1;
    }

    fn pop(&mut self) -> Option<StreamingBeat> {
        if self.len == 0 {
            return None;
        }
        let beat = self.beats[self.head];
        self.head = (self.head + 1) % self.beats.len();
        self.len -= 1;
        Some(beat)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_signals::click_track;

    #[test]
    fn reads_the_tempo_from_the_beats_not_from_the_filters_whole_frames() {
        // 128 BPM is 60.6 decoding frames a beat; the filter's intervals of 60 and 61 frames
        // read 129.2 and 127.1 BPM.
        let audio = click_track(128.0, 4, 30.0, 44_100);
        let mut analyzer = StreamingAnalyzer::new();
        analyzer.prepare(512, 44_100).unwrap();
        let mut beats = Vec::new();
        for chunk in audio.chunks(512) {
            analyzer.push(chunk).unwrap();
            while let Some(beat) = analyzer.poll_beat() {
                beats.push(beat);
            }
        }
        let read = analyzer.tempo_bpm();
        assert!((read - 128.0).abs() < 0.5, "{read}");
        let last = beats.last().unwrap();
        assert_eq!(f64::from(last.tempo_bpm), read as f32 as f64);
        // The first beats, too few to read a tempo from, carry the filter's.
        assert!(
            beats[..MIN_TEMPO_BEATS - 1]
                .iter()
                .all(|b| b.tempo_bpm > 0.0)
        );
    }

    #[test]
    fn follows_a_click_track_from_any_block_size() {
        let audio = click_track(120.0, 4, 20.0, 44_100);
        let mut first: Option<Vec<StreamingBeat>> = None;
        for block in [64usize, 512, 1000, 4096] {
            let mut analyzer = StreamingAnalyzer::new();
            analyzer.prepare(block, 44_100).unwrap();
            let mut beats = Vec::new();
            for chunk in audio.chunks(block) {
                analyzer.push(chunk).unwrap();
                while let Some(beat) = analyzer.poll_beat() {
                    beats.push(beat);
                }
            }
            assert!(
                (analyzer.tempo_bpm() - 120.0).abs() < 3.0,
                "{}",
                analyzer.tempo_bpm()
            );
            let late: Vec<&StreamingBeat> = beats.iter().filter(|b| b.time_s > 5.0).collect();
            assert!(late.len() >= 28, "block {block}: {} beats", late.len());
            for beat in &late {
                let error = beat.time_s - (beat.time_s / 0.5).round() * 0.5;
                assert!(error.abs() < 0.05, "block {block}: beat at {}", beat.time_s);
            }
            assert!(analyzer.confidence() > 0.3);
            // The block size changes nothing.
            match &first {
                None => first = Some(beats),
                Some(first) => assert_eq!(&beats, first, "block {block}"),
            }
        }
    }

    #[test]
    fn counts_at_a_tempo_given_while_it_runs_and_back_at_the_heard_one() {
        // A slow song's busy eighth notes: clicks at 60 BPM in bars of four, quieter ones
        // between them, which the tracker hears at 120. Counted at 120 from 15 s (as heard, but
        // within 10 % of it), at 60 from 35 s (the user's ½×: the loud clicks), at whatever it
        // hears from 55 s.
        let loud = click_track(60.0, 4, 75.0, 44_100);
        let eighths = click_track(120.0, 4, 75.0, 44_100);
        let audio: Vec<f32> = loud
            .iter()
            .zip(&eighths)
            .map(|(a, b)| 0.85 * a + 0.15 * b)
            .collect();
        let mut analyzer = StreamingAnalyzer::new();
        analyzer.prepare(4096, 44_100).unwrap();
        let mut beats = Vec::new();
        let mut read = Vec::new();
        for (i, chunk) in audio.chunks(4096).enumerate() {
            let t = (i * 4096) as f64 / 44_100.0;
            analyzer.count_at(match t {
                _ if t < 15.0 => None,
                _ if t < 35.0 => TempoHint::new(120.0).ok(),
                _ if t < 55.0 => TempoHint::new(60.0).ok(),
                _ => None,
            });
            analyzer.push(chunk).unwrap();
            while let Some(beat) = analyzer.poll_beat() {
                beats.push(beat.time_s);
            }
            read.push((t, analyzer.tempo_bpm(), analyzer.counted_at()));
        }
        // The gaps between the beats of a span, each beat on a click of the span's level.
        let gaps = |from: f64, to: f64, period: f64| -> Vec<f64> {
            let span: Vec<f64> = beats
                .iter()
                .copied()
                .filter(|t| (from..to).contains(t))
                .collect();
            let off = |t: f64| (t - (t / period).round() * period).abs();
            assert!(
                span.iter().all(|&t| off(t) < 0.05),
                "{from}-{to} s: {span:?}"
            );
            span.windows(2).map(|w| w[1] - w[0]).collect()
        };
        // Four beats to find the phase after each change, then one beat a period.
        let double = gaps(17.0, 35.0, 0.5);
        assert!(
            double.len() >= 34 && double.iter().all(|g| (g - 0.5).abs() < 0.05),
            "{double:?}"
        );
        let half = gaps(39.0, 55.0, 1.0);
        assert!(
            half.len() >= 14 && half.iter().all(|g| (g - 1.0).abs() < 0.05),
            "{half:?}"
        );
        // The tempo read follows the level; the tempo given is the analyzer's until changed.
        let at = |s: f64| *read.iter().rev().find(|(t, ..)| *t <= s).unwrap();
        assert!((at(34.0).1 - 120.0).abs() < 1.0, "{:?}", at(34.0));
        assert!((at(54.0).1 - 60.0).abs() < 1.0, "{:?}", at(54.0));
        assert_eq!(at(54.0).2, TempoHint::new(60.0).ok());
        assert_eq!(at(74.0).2, None);
        // As heard, before and after, the tracker follows every click: the tempo given is
        // what took it to the loud ones.
        for (from, to) in [(5.0, 15.0), (59.0, 75.0)] {
            let heard = gaps(from, to, 0.5);
            assert!(
                heard.len() as f64 >= 1.8 * (to - from)
                    && heard.iter().all(|g| (g - 0.5).abs() < 0.05),
                "{from}-{to} s: {heard:?}"
            );
        }
    }

    #[test]
    fn stops_reporting_beats_when_the_music_stops() {
        let mut audio = click_track(120.0, 4, 12.0, 22_050);
        audio.extend(std::iter::repeat_n(0.0, 22_050 * 6));
        let mut analyzer = StreamingAnalyzer::new();
        analyzer.prepare(512, 22_050).unwrap();
        let mut last = 0.0f64;
        for chunk in audio.chunks(512) {
            analyzer.push(chunk).unwrap();
            while let Some(beat) = analyzer.poll_beat() {
                last = beat.time_s;
            }
        }
        // Two periods of silence (1 s) end the reports; 6 s of silence follow the music.
        assert!(last > 11.0 && last < 13.5, "last beat at {last} s");
    }

    #[test]
    fn refuses_bad_setup_and_unprepared_pushes() {
        let mut analyzer = StreamingAnalyzer::new();
        assert_eq!(analyzer.push(&[0.0; 16]), Err(StreamingError::NotPrepared));
        assert!(matches!(
            analyzer.prepare(512, 1_000),
            Err(StreamingSetupError::SampleRate { actual: 1_000, .. })
        ));
        assert!(matches!(
            analyzer.prepare(0, 44_100),
            Err(StreamingSetupError::MaxBlock { actual: 0, .. })
        ));
        analyzer.prepare(256, 48_000).unwrap();
        assert_eq!(
            analyzer.push_interleaved(&[0.0; 1024], 2),
            Err(StreamingError::BlockTooLong {
                expected: 256,
                actual: 512
            })
        );
        assert!(matches!(
            analyzer.push_interleaved(&[0.0; 9], 2),
            Err(StreamingError::PartialFrame { .. })
        ));
        assert!(matches!(
            analyzer.push_interleaved(&[0.0; 9], 9),
            Err(StreamingError::Channels { actual: 9, .. })
        ));
    }

    #[test]
    fn silence_and_noise_report_no_confident_beats() {
        let mut analyzer = StreamingAnalyzer::new();
        analyzer.prepare(512, 22_050).unwrap();
        for _ in 0..(22_050 * 10 / 512) {
            analyzer.push(&[0.0; 512]).unwrap();
        }
        assert!(analyzer.poll_beat().is_none());
        let mut state = 7u64;
        let mut block = [0.0f32; 512];
        for _ in 0..(22_050 * 10 / 512) {
            for s in &mut block {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                *s = ((state >> 40) as f32 / (1u64 << 24) as f32) - 0.5;
            }
            analyzer.push(&block).unwrap();
        }
        let mut confident = 0;
        while let Some(beat) = analyzer.poll_beat() {
            if beat.confidence > 0.5 {
                confident += 1;
            }
        }
        assert!(confident < 3, "{confident} confident beats in noise");
    }
}
