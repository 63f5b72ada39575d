//! The streaming (causal) beat tracker the plugin's analysis thread runs on live audio.
//!
//! [`StreamingAnalyzer::prepare`] sizes every buffer; after it, [`StreamingAnalyzer::push`]
//! takes blocks of any size and allocates nothing, takes no lock, and keeps memory fixed: the
//! frames live in a ring of [`FRAME_RING`] frames (95 s), the detection function in a ring of
//! [`ODF_RING`] frames, and reported beats wait in a queue of [`BEAT_QUEUE`] until polled.
//!
//! Method: the same front end as the offline tracker, its detection function with the hats
//! weighted up ([`tempo::streaming_detection`]) and a causal moving average removed. Every
//! [`TEMPO_EVERY`] frames the tempo is re-estimated from the autocorrelation of the last
//! [`TEMPO_WINDOW`] frames under the tempo prior, and its octave is checked with the same
//! strong/weak vote the offline tracker uses, on the beats of a comb aligned to the recent
//! onsets; a slow period whose thirds carry hats as strong as its teeth is a 3/4 bar taken for
//! a beat, and is divided by three. Beats are placed by a phase-locked predictor: each beat is
//! expected one period after the last, and is reported [`LOOKAHEAD`] frames after that moment,
//! snapped to the strongest onset near the prediction (or at the prediction when there is
//! none, so the pulse carries through breaks). A tempo change that persists re-phases the
//! predictor from the comb (the "predict and correct" scheme of Goto's and Davies &
//! Plumbley's causal trackers).
//!
//! Bars: after each beat, the chroma change and low-band onset of the beat just completed add
//! to decaying scores per bar position for 3/4 and 4/4, as in
//! [`super::offline::choose_bars`]. The meter follows a slow average of each meter's contrast
//! and changes only when the other is clearly stronger (a 4/4 song whose chords change every
//! other beat would otherwise flicker between 3/4 and 4/4); the downbeat moves only to a bar
//! position that clearly outscores the current one.
//!
//! Features: [`StreamingAnalyzer::features_into`] computes the 121 features of a beat of any
//! grid from the frames still in the ring, with the functions the offline path uses.

use super::beat_features::{
    BeatSummary, CONTEXT_BEATS, FrameSource, beat_features_into, span_frame_range, summarize_beat,
    summarize_span,
};
use super::decode::{MAX_CHANNELS, MAX_SAMPLE_RATE, MIN_SAMPLE_RATE};
use super::frontend::{Frame, FrameAnalyzer, frame_time};
use super::resample::ResampleError;
use super::tempo::{self, OctaveVote};
use crate::features::BEAT_FEATURES;
use crate::grid::BeatGrid;

/// Frames kept for features and bar detection (about 95 s).
pub const FRAME_RING: usize = 4096;
/// Detection-function values kept for tempo and phase (about 11.9 s).
pub const ODF_RING: usize = 512;
/// Frames in each tempo estimate (about 4.5 s).
pub const TEMPO_WINDOW: usize = 192;
/// Frames between tempo estimates (about 93 ms).
pub const TEMPO_EVERY: usize = 4;
/// Frames after a predicted beat before it is reported (about 70 ms): the onset has shown.
pub const LOOKAHEAD: usize = 3;
/// Beats waiting to be polled.
pub const BEAT_QUEUE: usize = 256;
/// Tempo (BPM) at or below which the streaming tracker checks for a bar of three beats taken
/// for one beat (a 3/4 bar at 120 BPM lasts as long as a beat at 40).
const THIRDS_BELOW_BPM: f64 = 64.0;
/// Onsets at both thirds of the period, relative to those on the beats, that divide it by three.
const THIRDS_RATIO: f32 = 0.5;
/// Frames of history needed before the first tempo estimate (about 1.5 s).
const MIN_HISTORY: usize = 64;
/// Half-width of the causal moving average removed from the detection function.
const DETREND: usize = 16;
/// Tempo estimates in a row that must agree before a tempo change is taken.
const SWITCH_AFTER: usize = 3;
/// Weak-beat strength (relative to the strong beats) that halves the streaming tempo.
const STREAMING_ALTERNATION_RATIO: f32 = 0.15;
/// Midpoint strength (relative to the beats) that doubles the streaming tempo.
const STREAMING_MIDPOINT_RATIO: f32 = 0.65;
/// Frame level below which the stream counts as silent: -70 dBFS in the front end's
/// `(dB + 40) / 20` units.
const SILENT_LOUDNESS: f32 = -1.5;
/// Relative tempo difference that counts as a change.
const TEMPO_TOLERANCE: f64 = 0.06;

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

/// Tracker state that moves with every frame.
struct Tracker {
    /// Raw detection values, for the causal moving average.
    raw: Vec<f32>,
    /// Detrended detection function.
    odf: Vec<f32>,
    /// High-band onset strength (hats and cymbals), for telling a beat from a bar.
    high: Vec<f32>,
    /// Scratch: the tempo window, unrolled.
    window: Vec<f32>,
    /// Scratch: its autocorrelation.
    acf: Vec<f32>,
    /// Frames seen.
    now: usize,
    /// Frames in a row quieter than [`SILENT_LOUDNESS`].
    silent_frames: usize,
    /// Frame the detection function first rose above silence.
    music_from: Option<usize>,
    /// Current beat period, frames (0 until the first tempo estimate).
    period: f64,
    /// Strength of the last tempo estimate's autocorrelation peak.
    tempo_strength: f32,
    /// A different tempo seen in the last estimates, and how many times in a row.
    candidate: f64,
    candidate_count: usize,
    /// Next predicted beat, fractional frames; `None` until locked.
    expected: Option<f64>,
    /// Last reported beat, fractional frames.
    last_beat: Option<f64>,
    /// Phase checks in a row that disagreed with the predictor.
    phase_disagreements: usize,
    /// Slow averages of the detection function overall and at reported beats.
    mean_odf: f32,
    mean_beat_odf: f32,
    confidence: f32,
}

/// Bar-position evidence.
struct Bars {
    beats_seen: usize,
    /// Times of the last reported beats (seconds), newest last; `beats_seen` of them at most.
    recent: [f64; 3],
    previous_summary: Option<BeatSummary>,
    score3: [f32; 3],
    score4: [f32; 4],
    /// Slow averages of the 3/4 and 4/4 contrasts: the meter follows these, not one bar.
    trend3: f32,
    trend4: f32,
    mean_change: f32,
    mean_low: f32,
    meter: u8,
    /// Beat count (0-based) of a downbeat.
    downbeat_at: usize,
}

/// The streaming analyzer: push audio, poll beats, ask for features.
pub struct StreamingAnalyzer {
    max_block: usize,
    sample_rate: u32,
    analyzer: Option<FrameAnalyzer>,
    ring: FrameRing,
    tracker: Tracker,
    bars: Bars,
    queue: Vec<StreamingBeat>,
    queue_head: usize,
    queue_len: usize,
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
    /// An unprepared analyzer; holds no buffers until [`prepare`](Self::prepare).
    pub fn new() -> Self {
        Self {
            max_block: 0,
            sample_rate: 0,
            analyzer: None,
            ring: FrameRing {
                frames: Vec::new(),
                end: 0,
            },
            tracker: Tracker::new(0),
            bars: Bars::new(),
            queue: Vec::new(),
            queue_head: 0,
            queue_len: 0,
            mono: Vec::new(),
            finished: false,
            samples: 0,
        }
    }

    /// Sizes every buffer for blocks of up to `max_block` frames at `sample_rate` Hz and
    /// resets the stream. The only call that allocates.
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
        self.tracker = Tracker::new(tempo::max_lag() + 3);
        self.bars = Bars::new();
        self.queue = vec![
            StreamingBeat {
                time_s: 0.0,
                beat_in_bar: 0,
                meter: 4,
                tempo_bpm: 0.0,
                confidence: 0.0,
            };
            BEAT_QUEUE
        ];
        self.queue_head = 0;
        self.queue_len = 0;
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
        self.finished = true;
        result.map_err(Into::into)
    }

    /// The oldest beat not yet polled.
    pub fn poll_beat(&mut self) -> Option<StreamingBeat> {
        if self.queue_len == 0 {
            return None;
        }
        let beat = self.queue[self.queue_head];
        self.queue_head = (self.queue_head + 1) % self.queue.len();
        self.queue_len -= 1;
        Some(beat)
    }

    /// Current tempo in BPM (0 before the first estimate).
    pub fn tempo_bpm(&self) -> f64 {
        if self.tracker.period > 0.0 {
            tempo::bpm_of(self.tracker.period)
        } else {
            0.0
        }
    }

    /// Current confidence, 0 to 1.
    pub fn confidence(&self) -> f32 {
        self.tracker.confidence
    }

    /// Beats per bar currently believed.
    pub fn meter(&self) -> u8 {
        self.bars.meter
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
        if let Some(beat) = self.tracker.on_frame(
            tempo::streaming_detection(frame),
            frame.onset_high,
            frame.loudness,
        ) {
            self.report(beat);
        }
    }

    fn report(&mut self, beat_frame: f64) {
        let time_s = frame_time(0) + beat_frame * (frame_time(1) - frame_time(0));
        let bars = &mut self.bars;
        // The beat before this one is now complete: add its evidence.
        if bars.beats_seen >= 1 {
            let start = bars.recent[2];
            let summary = summarize_span(&self.ring, start, time_s);
            if let Some(previous) = bars.previous_summary {
                let change: f32 = summary
                    .chroma
                    .iter()
                    .zip(&previous.chroma)
                    .map(|(a, b)| (a - b).abs())
                    .sum();
                bars.add_evidence(bars.beats_seen - 1, change, summary.onset[5]);
            }
            bars.previous_summary = Some(summary);
        }
        bars.recent.rotate_left(1);
        bars.recent[2] = time_s;
        let index = bars.beats_seen;
        bars.beats_seen += 1;
        let meter = bars.meter as usize;
        let position = ((index + meter * 4 - bars.downbeat_at % meter) % meter) as u8;
        let beat = StreamingBeat {
            time_s,
            beat_in_bar: position,
            meter: bars.meter,
            tempo_bpm: tempo::bpm_of(self.tracker.period) as f32,
            confidence: self.tracker.confidence,
        };
        if self.queue_len == self.queue.len() {
            // Nobody is polling: drop the oldest rather than grow.
            self.queue_head = (self.queue_head + 1) % self.queue.len();
            self.queue_len -= 1;
        }
        let tail = (self.queue_head + self.queue_len) % self.queue.len();
        self.queue[tail] = beat;
        self.queue_len += 1;
    }
}

/// Weight of each beat's contrasts in the slow per-meter averages.
const METER_TREND_RATE: f32 = 0.05;
/// How much stronger the other meter's average contrast must be to switch to it.
const METER_SWITCH: f32 = 1.5;
/// How much stronger another bar position's score must be to move the downbeat there.
const PHASE_SWITCH: f32 = 1.2;

impl Bars {
    fn new() -> Self {
        Self {
            beats_seen: 0,
            recent: [0.0; 3],
            previous_summary: None,
            score3: [0.0; 3],
            score4: [0.0; 4],
            trend3: 0.0,
            trend4: 0.0,
            mean_change: 0.0,
            mean_low: 0.0,
            meter: 4,
            downbeat_at: 0,
        }
    }

    /// Adds the evidence that beat `index` started a bar, and re-decides meter and phase.
    fn add_evidence(&mut self, index: usize, change: f32, low: f32) {
        const RATE: f32 = 0.05;
        self.mean_change += RATE * (change - self.mean_change);
        self.mean_low += RATE * (low - self.mean_low);
        let unit = |v: f32, mean: f32| if mean > 1e-9 { v / mean } else { 0.0 };
        let evidence = unit(change, self.mean_change) + 0.25 * unit(low, self.mean_low);
        for s in self.score3.iter_mut().chain(self.score4.iter_mut()) {
            *s *= 0.92;
        }
        self.score3[index % 3] += evidence;
        self.score4[index % 4] += evidence;
        let contrast = |scores: &[f32]| -> (f32, usize) {
            let (best, at) =
                scores
                    .iter()
                    .enumerate()
                    .fold(
                        (f32::NEG_INFINITY, 0),
                        |(b, i), (j, &s)| if s > b { (s, j) } else { (b, i) },
                    );
            let others = (scores.iter().sum::<f32>() - best) / (scores.len() - 1) as f32;
            // Per beat of the bar, so a longer bar's fewer downbeats are not penalised.
            ((best - others) / scores.len() as f32, at)
        };
        let (c3, p3) = contrast(&self.score3);
        let (c4, p4) = contrast(&self.score4);
        self.trend3 += METER_TREND_RATE * (c3 - self.trend3);
        self.trend4 += METER_TREND_RATE * (c4 - self.trend4);
        self.meter = match self.meter {
            3 if self.trend4 * METER_SWITCH > self.trend3 => 4,
            4 if self.trend3 > self.trend4 * METER_SWITCH => 3,
            m => m,
        };
        let (scores, best) = if self.meter == 3 {
            (&self.score3[..], p3)
        } else {
            (&self.score4[..], p4)
        };
        if scores[best] > PHASE_SWITCH * scores[self.downbeat_at % scores.len()] {
            self.downbeat_at = best;
        }
    }
}

impl Tracker {
    fn new(lags: usize) -> Self {
        let sized = |n: usize| if lags == 0 { Vec::new() } else { vec![0.0; n] };
        Self {
            raw: sized(ODF_RING),
            odf: sized(ODF_RING),
            high: sized(ODF_RING),
            window: sized(TEMPO_WINDOW),
            acf: sized(lags),
            now: 0,
            silent_frames: 0,
            music_from: None,
            period: 0.0,
            tempo_strength: 0.0,
            candidate: 0.0,
            candidate_count: 0,
            expected: None,
            last_beat: None,
            phase_disagreements: 0,
            mean_odf: 0.0,
            mean_beat_odf: 0.0,
            confidence: 0.0,
        }
    }

    fn odf_at(&self, k: usize) -> f32 {
        self.ring_at(&self.odf, k)
    }

    /// Frame `k` of one of the [`ODF_RING`]-long rings, 0 when it is not (or no longer) there.
    fn ring_at(&self, ring: &[f32], k: usize) -> f32 {
        if k < self.now && k + ODF_RING >= self.now {
            ring[k % ODF_RING]
        } else {
            0.0
        }
    }

    /// Takes one frame's detection value; returns a beat (fractional frame) when one is due.
    fn on_frame(&mut self, detection: f32, high: f32, loudness: f32) -> Option<f64> {
        if self.odf.is_empty() {
            return None;
        }
        let k = self.now;
        self.raw[k % ODF_RING] = detection;
        self.high[k % ODF_RING] = high;
        let lo = k.saturating_sub(DETREND);
        let mean = (lo..=k).map(|j| self.raw[j % ODF_RING]).sum::<f32>() / (k - lo + 1) as f32;
        let value = (detection - mean).max(0.0);
        self.odf[k % ODF_RING] = value;
        self.now = k + 1;
        self.silent_frames = if loudness < SILENT_LOUDNESS {
            self.silent_frames + 1
        } else {
            0
        };
        self.mean_odf += 0.01 * (value - self.mean_odf);
        if self.music_from.is_none() && value > 1e-4 {
            self.music_from = Some(k);
        }

        if self.now.is_multiple_of(TEMPO_EVERY) {
            self.update_tempo();
        }
        self.next_beat()
    }

    /// Frames of usable history.
    fn history(&self) -> usize {
        match self.music_from {
            Some(from) => (self.now - from).min(ODF_RING),
            None => 0,
        }
    }

    fn update_tempo(&mut self) {
        let history = self.history().min(TEMPO_WINDOW);
        if history < MIN_HISTORY {
            return;
        }
        let start = self.now - history;
        for (i, slot) in self.window[..history].iter_mut().enumerate() {
            *slot = self.odf[(start + i) % ODF_RING];
        }
        let lags = self.acf.len().min(history);
        tempo::autocorrelation_into(&self.window[..history], &mut self.acf[..lags]);
        self.acf[lags..].fill(0.0);
        let Some((mut period, strength)) = tempo::best_period(&self.acf) else {
            return;
        };
        // Settle the octave on a comb aligned with the recent onsets.
        for _ in 0..2 {
            let (phase, _) = self.comb_phase(period);
            let (even, odd, mid) = self.comb_strengths(period, phase);
            match tempo::octave_vote_with(
                even,
                odd,
                mid,
                STREAMING_ALTERNATION_RATIO,
                STREAMING_MIDPOINT_RATIO,
            ) {
                OctaveVote::Slower if period * 2.0 <= tempo::max_lag() as f64 => period *= 2.0,
                OctaveVote::Faster if period / 2.0 >= tempo::min_lag() as f64 => period /= 2.0,
                _ if self.is_bar_of_three(period, phase) => period /= 3.0,
                _ => break,
            }
        }
        self.tempo_strength = strength;
        if self.period <= 0.0 {
            self.period = period;
            return;
        }
        let relative = (period / self.period - 1.0).abs();
        if relative <= TEMPO_TOLERANCE {
            self.period += 0.25 * (period - self.period);
            self.candidate_count = 0;
        } else if self.candidate > 0.0 && (period / self.candidate - 1.0).abs() <= TEMPO_TOLERANCE {
            self.candidate_count += 1;
            if self.candidate_count >= SWITCH_AFTER {
                self.period = period;
                self.candidate_count = 0;
                self.rephase();
            }
        } else {
            self.candidate = period;
            self.candidate_count = 1;
        }
        self.check_phase();
    }

    /// The phase (frames back from now to the most recent comb tooth) that best fits the
    /// recent onsets, and its score.
    fn comb_phase(&self, period: f64) -> (f64, f32) {
        let history = self.history();
        let teeth = ((history as f64 / period) as usize).clamp(1, 8);
        let mut best = (0.0, f32::NEG_INFINITY);
        for phase in 0..period.ceil() as usize {
            let mut score = 0.0;
            for t in 0..teeth {
                let back = phase as f64 + t as f64 * period;
                let k = self.now as f64 - 1.0 - back;
                if k < 0.0 {
                    break;
                }
                // Recent teeth count more.
                score += self.peak_near(k) * 0.9f32.powi(t as i32);
            }
            if score > best.1 {
                best = (phase as f64, score);
            }
        }
        best
    }

    fn comb_strengths(&self, period: f64, phase: f64) -> (f32, f32, f32) {
        let history = self.history() as f64;
        let mut sums = [0.0f32; 3];
        let mut counts = [0.0f32; 3];
        let mut t = 0;
        loop {
            let back = phase + t as f64 * period;
            if back + 1.0 > history {
                break;
            }
            let k = self.now as f64 - 1.0 - back;
            sums[t % 2] += self.peak_near(k);
            counts[t % 2] += 1.0;
            if back + period / 2.0 + 1.0 <= history {
                sums[2] += self.peak_near(k - period / 2.0);
                counts[2] += 1.0;
            }
            t += 1;
        }
        let mean = |i: usize| {
            if counts[i] > 0.0 {
                sums[i] / counts[i]
            } else {
                0.0
            }
        };
        (mean(0), mean(1), mean(2))
    }

    /// Whether a slow `period` is a bar of three beats taken for one beat: both thirds of the way
    /// between the comb's teeth carry high-band onsets (hats) comparable to the teeth's. The
    /// detection function weights the high band down (hats on every 8th would halve the beat),
    /// so where a waltz's other beats have only hats, it sees its downbeats alone.
    fn is_bar_of_three(&self, period: f64, phase: f64) -> bool {
        if tempo::bpm_of(period) > THIRDS_BELOW_BPM || period / 3.0 < tempo::min_lag() as f64 {
            return false;
        }
        let history = self.history() as f64;
        // Each tooth and the two thirds of the period before it.
        let (mut teeth, mut early, mut late, mut n) = (0.0, 0.0, 0.0, 0.0);
        let mut back = phase;
        while back + period + 1.0 <= history {
            let k = self.now as f64 - 1.0 - back;
            teeth += self.high_near(k);
            late += self.high_near(k - period / 3.0);
            early += self.high_near(k - 2.0 * period / 3.0);
            n += 1.0;
            back += period;
        }
        n > 0.0 && early.min(late) >= THIRDS_RATIO * teeth
    }

    fn peak_near(&self, k: f64) -> f32 {
        Self::max_near(k, |j| self.odf_at(j))
    }

    fn high_near(&self, k: f64) -> f32 {
        Self::max_near(k, |j| self.ring_at(&self.high, j))
    }

    /// The largest of `value` within one frame of `k`.
    fn max_near(k: f64, value: impl Fn(usize) -> f32) -> f32 {
        if k < 0.0 {
            return 0.0;
        }
        let centre = k.round() as usize;
        (centre.saturating_sub(1)..=centre + 1)
            .map(value)
            .fold(0.0, f32::max)
    }

    /// Aligns the predictor with the comb for the current period.
    fn rephase(&mut self) {
        let (phase, _) = self.comb_phase(self.period);
        // Start from the most recent tooth: if it is not reported yet, it is reported next.
        let mut next = self.now as f64 - 1.0 - phase;
        if let Some(last) = self.last_beat {
            while next < last + 0.5 * self.period {
                next += self.period;
            }
        }
        self.expected = Some(next);
        self.phase_disagreements = 0;
    }

    /// Re-phases when the comb keeps disagreeing with the predictor by over a quarter beat.
    fn check_phase(&mut self) {
        let Some(expected) = self.expected else {
            return;
        };
        let (phase, score) = self.comb_phase(self.period);
        if score <= 0.0 {
            return;
        }
        let comb_beat = self.now as f64 - 1.0 - phase;
        let offset = ((expected - comb_beat) / self.period).rem_euclid(1.0);
        let off_by = offset.min(1.0 - offset);
        if off_by > 0.25 {
            self.phase_disagreements += 1;
            if self.phase_disagreements >= SWITCH_AFTER {
                self.rephase();
            }
        } else {
            self.phase_disagreements = 0;
        }
    }

    fn next_beat(&mut self) -> Option<f64> {
        if self.period <= 0.0 {
            return None;
        }
        let expected = match self.expected {
            Some(e) => e,
            None => {
                self.rephase();
                self.expected?
            }
        };
        let now = self.now as f64 - 1.0;
        if now < expected + LOOKAHEAD as f64 {
            return None;
        }
        // Snap to the strongest onset near the prediction, weighted by closeness.
        let sigma = 0.1 * self.period;
        let earliest = self
            .last_beat
            .map_or(0.0, |last| last + 0.5 * self.period)
            .max(expected - 0.2 * self.period)
            .max(now - (ODF_RING as f64 - 2.0));
        let mut best: Option<(usize, f32)> = None;
        let first = earliest.ceil().max(0.0) as usize;
        for j in first..=self.now - 1 {
            let distance = (j as f64 - expected) / sigma;
            let weight = (-0.5 * distance * distance).exp() as f32;
            let score = self.odf_at(j) * weight;
            if best.is_none_or(|(_, s)| score > s) {
                best = Some((j, score));
            }
        }
        let beat = match best {
            Some((j, _)) if self.odf_at(j) > 1.5 * self.mean_odf && self.odf_at(j) > 1e-4 => {
                let value = self.odf_at(j);
                self.mean_beat_odf += 0.1 * (value - self.mean_beat_odf);
                // Between frames, by a parabola through the peak (as the offline tracker does).
                let (left, right) = (self.odf_at(j.saturating_sub(1)), self.odf_at(j + 1));
                if j > 0 && j + 1 < self.now && value >= left && value >= right {
                    tempo::refine_peak(&[left, value, right], 1) - 1.0 + j as f64
                } else {
                    j as f64
                }
            }
            _ => {
                self.mean_beat_odf *= 0.9;
                expected
            }
        };
        self.last_beat = Some(beat);
        self.expected = Some(beat + self.period);
        // In silence (the music stopped) the pulse is carried on but not reported.
        if self.silent_frames as f64 > 2.0 * self.period {
            return None;
        }
        let ratio = if self.mean_odf > 1e-6 {
            self.mean_beat_odf / self.mean_odf
        } else {
            0.0
        };
        self.confidence =
            (((ratio - 1.0) / 4.0).clamp(0.0, 1.0) * self.tempo_strength.clamp(0.0, 1.0)).sqrt();
        Some(beat)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::offline::tests::click_track;

    #[test]
    fn follows_a_click_track_from_any_block_size() {
        let audio = click_track(120.0, 4, 20.0, 44_100);
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
                let expected = ((beat.time_s / 0.5).round() as usize % 4) as u8;
                if beat.time_s > 10.0 {
                    assert_eq!(
                        beat.beat_in_bar, expected,
                        "block {block} at {}",
                        beat.time_s
                    );
                }
            }
            assert!(analyzer.confidence() > 0.3);
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
