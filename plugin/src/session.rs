//! What the plugin's threads share: the captured track and its analysis (written by the
//! analysis thread, and replaced whole when the transport stops: [`crate::settle`]), the
//! scored proposals and fit results (written by the scoring worker), and the status line. The
//! audio thread never touches any of it; the locks here are only ever contended by the analysis
//! thread and its settle, the worker, the editor and the editor's actions.

use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use cutscore_analysis::bar_phase;
use cutscore_analysis::beat_features::rewrite_bar_features;
use cutscore_analysis::beat_stretch;
use cutscore_analysis::given_bar_line;
use cutscore_analysis::hypermeter;
use cutscore_analysis::streaming::StreamingAnalyzer;
use cutscore_analysis::{TempoHint, TempoSource, TrackAnalysis};
use cutscore_core::edit::Edit;
use cutscore_core::features::{BEAT_FEATURES, FeatureMatrix};
use cutscore_core::grid::BeatGrid;
use cutscore_core::taste::{SUMMARY_WIDTH, TASTE_INPUTS, taste_inputs};
use cutscore_editing::candidates::BarBeat;
use cutscore_editing::fit::FitResult;

use crossbeam_channel::Sender;

use crate::capture_audio::{AudioSnapshot, CaptureAudio};
use crate::half_beats::HalfBeats;
use crate::jobs::Job;
use crate::tap::{AuditionFlags, HostBar, TapStats};

/// Longest track the plugin captures: 20 minutes. Stereo 48 kHz audio takes 23 MB a minute,
/// so a full capture holds about 460 MB; memory grows with what was actually heard.
pub const MAX_CAPTURE_S: f64 = 20.0 * 60.0;
/// Below this confidence (`TrackAnalysis::confidence`, 0 to 1) a settled grid is reported as
/// having found no steady pulse, as `trainer` reports a file.
pub use cutscore_analysis::LOW_CONFIDENCE;
/// After a settle at half the streaming tracker's tempo, the least share of the settled beat
/// period between two beats the grid takes from the streaming tracker (its in-between beats
/// fall at a half).
pub const LEVEL_KEPT: f64 = 0.75;
/// Frames per point of the overview envelope.
pub const ENVELOPE_FRAMES: usize = 1024;
/// The most bar lines a capture keeps from the user ([`Capture::move_bar_lines`]); beyond it
/// the one farthest from the newest goes.
pub const MAX_GIVEN_BAR_LINES: usize = 64;
/// The first bar line the host gave in a capture ([`Capture::start_segment`]), while the host's
/// playback has not jumped.
#[derive(Debug, Clone, Copy, PartialEq)]
struct HostAnchor {
    anchor: bar_phase::BarAnchor,
    tempo_bpm: f64,
}

/// The track heard so far and its analysis.
#[derive(Debug)]
pub struct Capture {
    /// Which capture this is: every new capture (Start over, a new sample rate) gets a new
    /// epoch, and scores, fits and the track's identity belong to one epoch.
    pub epoch: u64,
    /// Interleaved audio at the host's rate, non-finite samples replaced by zeros.
    pub audio: CaptureAudio,
    /// Every beat the streaming analysis reported, its bar lines placed over everything heard
    /// ([`Capture::place_bars`]); the last beat may still be incomplete.
    pub grid: BeatGrid,
    /// The network's log-odds that each beat is a downbeat: evidence for placing the bar lines.
    downbeat_log_odds: Vec<f32>,
    /// How many times the bar lines have moved, so scores of the old bars are not reused.
    pub bar_lines: u64,
    /// Features of the complete beats, `BEAT_FEATURES` values per beat.
    pub features: Vec<f32>,
    /// RMS level of every [`ENVELOPE_FRAMES`] frames (all channels), for the editor's
    /// overview.
    pub envelope: Vec<f32>,
    /// Sum of squares and samples of the envelope point being measured.
    envelope_open: (f64, usize),
    pub tempo_bpm: f64,
    /// Non-finite input samples replaced by zeros.
    pub non_finite: u64,
    /// Beats whose features could not be computed (the analysis fell too far behind) and
    /// repeat the previous beat's.
    pub feature_gaps: usize,
    /// The capture reached [`MAX_CAPTURE_S`]; later audio passes through unanalysed.
    pub full: bool,
    /// Frames of audio the grid was last settled over ([`Capture::settle`]); 0 before.
    pub settled_frames: usize,
    /// How sure the settled grid is of a steady pulse, 0 to 1 (`TrackAnalysis::confidence`);
    /// `None` before a settle.
    pub confidence: Option<f32>,
    /// Half the settled grid's tempo where a reading leaning towards slower tempi found it
    /// (`TrackAnalysis::half_tempo_bpm`): the grid may be at the song's eighth notes, and the
    /// editor offers ½× ([`Capture::half_tempo_offer`]).
    half_tempo_bpm: Option<f64>,
    /// After a settle, the earliest time the streaming tracker's next beat may take: the
    /// tracker reports late, so its first beats after the settle may be ones the settled grid
    /// already holds, a few milliseconds apart.
    resume_after_s: Option<f64>,
    /// After a settle at half the streaming tracker's tempo (a project at half the heard tempo,
    /// or the offline tracker halving a grid), the settled beat period: a streaming beat closer
    /// than [`LEVEL_KEPT`] of it to the last beat is one of the streaming tracker's in-between
    /// beats and is not added, so the grid keeps the settled level as it grows.
    settled_period_s: Option<f64>,
    /// Why the analysis stopped, if it did.
    pub error: Option<String>,
    /// The first bar line the host gave, if it said where one was.
    host_anchor: Option<HostAnchor>,
    /// The tempo the user counts the capture's beats at and how many times they asked
    /// ([`Capture::count_at`]): every settle from then on decodes the grid at it, a settle is
    /// wanted again at the same length of audio, and the streaming tracker counts the audio
    /// still to come at it ([`Capture::counted_tempo`]). `tempo: None`: as heard, or as the
    /// host's project says.
    asked: Recount,
    /// What the grid was last settled with ([`Capture::settle`]).
    settled_with: Recount,
    /// Settles so far: each moves the beats under the indices of whatever was scored, fitted
    /// or selected before it.
    pub settles: u64,
    /// The times of the beats the user made bar lines ([`Capture::move_bar_lines`]), in time
    /// order, at most [`MAX_GIVEN_BAR_LINES`]: after every placement of the bar lines and every
    /// settle the bars are counted from the beat at each in turn (`given_bar_line`), where the
    /// grid has one, each over its stretch up to the next one's beat, as a DAW's bar marker
    /// holds up to the next.
    given_bar_lines_s: Vec<f64>,
    /// Where the user moved the beats half a beat ([`Capture::move_half_beat`]): every settle
    /// moves the beats of the steady stretch around each (`half_beat`) before it reads anything
    /// on them.
    half_beats: HalfBeats,
}

/// Which state of a capture the streaming tracker last went on from
/// ([`Capture::counted_phase`]): its epoch, settles and tempo requests.
pub type PhaseKey = (u64, u64, u64);

/// What the user asked a settle for: the tempo asked for, if any, and how many times one was
/// asked for ([`Capture::count_at`]); how many times the beats were moved half a beat or a move
/// taken back ([`Capture::move_half_beat`]).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Recount {
    pub tempo: Option<TempoHint>,
    pub requests: u64,
    pub half_beat_requests: u64,
}

impl Recount {
    /// Everything asked for so far, counted: it grows with every ask.
    pub fn asks(&self) -> u64 {
        self.requests + self.half_beat_requests
    }
}

impl Capture {
    pub fn new(epoch: u64, sample_rate: u32, channels: u16) -> Self {
        Self {
            epoch,
            audio: CaptureAudio::new(sample_rate, channels),
            grid: BeatGrid {
                beats: Vec::new(),
                beat_in_bar: Vec::new(),
                meter: 4,
                duration_s: 0.0,
            },
            downbeat_log_odds: Vec::new(),
            bar_lines: 0,
            features: Vec::new(),
            envelope: Vec::new(),
            envelope_open: (0.0, 0),
            tempo_bpm: 0.0,
            non_finite: 0,
            feature_gaps: 0,
            full: false,
            settled_frames: 0,
            confidence: None,
            half_tempo_bpm: None,
            resume_after_s: None,
            settled_period_s: None,
            error: None,
            host_anchor: None,
            asked: Recount::default(),
            settled_with: Recount::default(),
            settles: 0,
            given_bar_lines_s: Vec::new(),
            half_beats: HalfBeats::default(),
        }
    }

    /// Audio from `at_s` on does not continue the audio before it (the transport started or
    /// stopped, the host's position jumped); `host` is where the host's bars stood there. The
    /// first bar line a host gives (at the capture's start, or where playback started after
    /// audio heard while the transport was stopped) anchors the bars from there; at the next
    /// segment the anchor ends.
    pub fn start_segment(&mut self, at_s: f64, host: Option<HostBar>) {
        match &mut self.host_anchor {
            Some(held) if at_s > 0.0 => held.anchor.until_s = held.anchor.until_s.min(at_s),
            _ => {
                self.host_anchor = host.map(|bar| HostAnchor {
                    anchor: bar_phase::BarAnchor {
                        time_s: at_s - bar.since_bar_line_s,
                        until_s: f64::INFINITY,
                    },
                    tempo_bpm: bar.tempo_bpm,
                })
            }
        }
    }

    /// The host's first bar line in the capture, if the host said where it was and its tempo
    /// is the tracked one (`bar_phase::host_tempo_agrees`).
    pub fn bar_anchor(&self) -> Option<bar_phase::BarAnchor> {
        let host = self.host_anchor?;
        bar_phase::host_tempo_agrees(self.tempo_bpm, host.tempo_bpm).then_some(host.anchor)
    }

    /// What the settled grid is anchored by and where its tempo comes from: the host's bar
    /// line and tempo, if it said where its bars were ([`Capture::start_segment`]). A project at
    /// the song's tempo (or its double or half) counts the song's beats, so the offline
    /// analysis decodes the grid at the project's tempo where its beats run through the
    /// project's bar line (the capture alone may be heard at its eighth notes, or every other
    /// beat); a project at another tempo says nothing, and its bar line is not used
    /// ([`TempoSource::Host`]). A tempo the user set ([`Capture::count_at`]) goes before both.
    pub fn settle_source(&self) -> (Option<bar_phase::BarAnchor>, TempoSource) {
        match (self.asked.tempo, self.host_anchor) {
            (Some(user), _) => (None, TempoSource::Given(user)),
            (None, Some(host)) => (Some(host.anchor), TempoSource::Host(host.tempo_bpm)),
            (None, None) => (None, TempoSource::Heard),
        }
    }

    /// Counts the beats at `factor` times the grid's tempo ([`Capture::grid_tempo_bpm`];
    /// `0.5`: the tracker heard the song's eighth notes, `2`: every other beat) from the next
    /// settle on, which analyses the whole capture again at that tempo once no audio comes in
    /// (unless a decision has fixed the capture's grid: [`crate::settle`]). Returns the tempo
    /// asked for, or `None` when there is no tempo yet or that one lies outside what a tempo
    /// hint may be (`bar_decoder::HINT_BPM`). Half the tempo where the settle offered one
    /// ([`Capture::half_tempo_offer`]) is the tempo offered, which the editor shows.
    pub fn count_at(&mut self, factor: f64) -> Option<f64> {
        let bpm = match self.half_tempo_offer() {
            Some(offered) if factor == 0.5 => offered,
            _ => self.grid_tempo_bpm() * factor,
        };
        let hint = TempoHint::new(bpm).ok()?;
        self.asked = Recount {
            tempo: Some(hint),
            requests: self.asked.requests + 1,
            ..self.asked
        };
        // The tracker counts at the user's level from here on: none of its beats is an
        // in-between one to leave out (`LEVEL_KEPT`), whatever the last settle found.
        self.settled_period_s = None;
        Some(hint.bpm())
    }

    /// The user's tempo as it stands now, for a settle to take.
    pub fn recount(&self) -> Recount {
        self.asked
    }

    /// The tempo the user counts the beats at, if they set one: the streaming tracker counts
    /// the audio still to come at it (the analysis thread), as the next settle counts all of
    /// it (unless a decision fixed the grid first; the tracker keeps it then, so the grid the
    /// decision fixes grows at one level).
    pub fn counted_tempo(&self) -> Option<TempoHint> {
        self.asked.tempo
    }

    /// Where the streaming tracker should go on from at the tempo it counts at
    /// ([`Capture::counted_tempo`]), or with the beats the user moved half a beat
    /// ([`Capture::move_half_beat`]), when that is new since `aligned` (the capture's epoch,
    /// settles and tempo requests when it last did): after a settle at that tempo, or with those
    /// beats, the settled grid's last beat (time, place in the bar); otherwise, for a tempo (the
    /// user asked for it while the grid is at another level, or a tracker of an earlier
    /// activation goes on), the grid's last bar line, which is a beat at every level. So the
    /// tracker keeps the grid's phase rather than finding one of its own, which at a slow song's
    /// tempo may be the other half of its eighth notes, or the off-beats the user moved the beats
    /// from.
    pub fn counted_phase(&self, aligned: Option<PhaseKey>) -> Option<(PhaseKey, f64, u8)> {
        let counted = self.asked.tempo;
        if counted.is_none() && self.asked.half_beat_requests == 0 {
            return None;
        }
        let key = (self.epoch, self.settles, self.asked.requests);
        if aligned == Some(key) {
            return None;
        }
        // Without a tempo, only once a settle has taken every half-beat move (or taken one
        // back): the grid before it is where the tracker is anyway.
        let settled_at_it = self.settles > 0
            && self.settled_with.tempo == counted
            && self.settled_with.requests == self.asked.requests
            && (counted.is_some()
                || self.settled_with.half_beat_requests == self.asked.half_beat_requests);
        let (beat, place) = if settled_at_it {
            let last = self.grid.len().checked_sub(1)?;
            (last, self.grid.beat_in_bar[last])
        } else {
            counted?;
            (*self.grid.bar_starts().last()?, 0)
        };
        Some((key, self.grid.beats[beat], place))
    }

    /// Whether the user asked for something only a settle gives (another tempo, the beats moved
    /// half a beat) that no settle has given yet.
    pub fn settle_asked(&self) -> bool {
        self.asked.asks() > self.settled_with.asks()
    }

    /// The tempo asked for that no settle has taken yet, BPM.
    pub fn recount_pending(&self) -> Option<f64> {
        (self.asked.requests > self.settled_with.requests)
            .then_some(self.asked.tempo.map(TempoHint::bpm))
            .flatten()
    }

    /// Drops the settle a tempo asked for was waiting for: a decision has fixed the grid, which
    /// no settle changes from then on. The tempo stays the streaming tracker's
    /// ([`Capture::counted_tempo`]).
    pub fn drop_recount(&mut self) {
        self.settled_with.requests = self.asked.requests;
        self.settled_with.half_beat_requests = self.asked.half_beat_requests;
    }

    /// The grid's tempo: the tracked one, except while the streaming tracker plays on over a
    /// grid settled at the user's tempo, where the tempo it reports may still be its old level
    /// until its first beat at the user's (it counts at the user's tempo from the ask on,
    /// [`Capture::counted_tempo`]).
    pub fn grid_tempo_bpm(&self) -> f64 {
        match self.settled_with.tempo {
            Some(user) if !self.is_settled() => user.bpm(),
            _ => self.tempo_bpm,
        }
    }

    /// Whether the bars are counted from the host's bar line: it said where it was, its tempo
    /// is the tracked one and the beats run through it (the editor says so).
    pub fn on_host_grid(&self) -> bool {
        self.bar_anchor().is_some_and(|anchor| {
            bar_phase::anchored_position(&self.grid.beats, self.grid.meter, anchor).is_some()
        })
    }

    /// Appends interleaved audio and extends the envelope.
    pub fn append(&mut self, block: &[f32]) {
        self.audio.append(block);
        let step = ENVELOPE_FRAMES * usize::from(self.audio.channels);
        let (mut energy, mut count) = self.envelope_open;
        for &s in block {
            energy += f64::from(s) * f64::from(s);
            count += 1;
            if count == step {
                self.envelope.push((energy / count as f64).sqrt() as f32);
                (energy, count) = (0.0, 0);
            }
        }
        self.envelope_open = (energy, count);
    }

    /// What an action needs: the audio's sealed chunks shared, the rest (grid, features, the
    /// open chunk) copied, so the lock is held for a copy, never for the action.
    pub fn snapshot(&self) -> CaptureSnapshot {
        CaptureSnapshot {
            epoch: self.epoch,
            audio: self.audio.snapshot(),
            grid: self.grid.clone(),
            features: self.features.clone(),
        }
    }

    /// Adds a beat reported by the streaming tracker at `time_s`, `beat_in_bar` into a bar of
    /// `meter` beats, with the network's `downbeat_log_odds`. Returns `false` (and adds
    /// nothing) unless it is later than the last beat. When the tracker changes its mind about
    /// the meter, the beats before are renumbered backwards from this one so the grid stays
    /// one consistent bar grid.
    pub fn push_beat(
        &mut self,
        time_s: f64,
        beat_in_bar: u8,
        meter: u8,
        downbeat_log_odds: f32,
    ) -> bool {
        let grid = &mut self.grid;
        let last = grid.beats.last().copied();
        if last.is_some_and(|t| time_s <= t)
            || self.resume_after_s.is_some_and(|t| time_s < t)
            || last
                .zip(self.settled_period_s)
                .is_some_and(|(t, period)| time_s - t < LEVEL_KEPT * period)
        {
            return false;
        }
        self.resume_after_s = None;
        let meter = meter.max(1);
        let beat_in_bar = beat_in_bar.min(meter - 1);
        if meter != grid.meter {
            let n = grid.beat_in_bar.len() as i64;
            for (i, position) in grid.beat_in_bar.iter_mut().enumerate() {
                *position =
                    (i64::from(beat_in_bar) - (n - i as i64)).rem_euclid(i64::from(meter)) as u8;
            }
            grid.meter = meter;
            let rows = self.features.len() / BEAT_FEATURES;
            rewrite_bar_features(
                &grid_prefix(grid, rows),
                &mut self.features[..rows * BEAT_FEATURES],
            );
            self.bar_lines += 1;
        }
        grid.beats.push(time_s);
        grid.beat_in_bar.push(beat_in_bar);
        grid.duration_s = grid.duration_s.max(time_s);
        self.downbeat_log_odds.push(downbeat_log_odds);
        true
    }

    /// Places the bar lines over every beat heard (`bar_phase::place_bars`: the chord changes,
    /// the network's downbeats and the host's bar lines, [`Capture::bar_anchor`]), rewriting
    /// the bar features of the complete beats when they move. Returns whether they moved.
    pub fn place_bars(&mut self) -> bool {
        // Only beats with features count as moved (as in `bar_phase::place_bars`), and only
        // where they end up: a bar line the user gave turns the tracker's placement back.
        let rows = self.complete_beats().min(self.grid.len());
        let before = self.grid.beat_in_bar[..rows].to_vec();
        let anchor = self.bar_anchor();
        bar_phase::place_bars(
            &mut self.grid,
            &mut self.features,
            &self.downbeat_log_odds,
            anchor,
        );
        self.count_from_given_bar_lines();
        let moved = self.grid.beat_in_bar[..rows] != before[..];
        self.bar_lines += u64::from(moved);
        moved
    }

    /// Moves the bar lines `by` beats (-1: a beat earlier, 1: a beat later) around the bar line
    /// nearest `near_s` (the newest of the scored beats where `None`), as far as the tracker
    /// counted the beats alike (`given_bar_line::counted_alike`), and keeps them counted from
    /// there ([`Capture::given_bar_lines_s`]) through every later placement and settle. Returns
    /// whether any scored beat's place moved (nothing moves in bars of one beat, without a bar
    /// line, or where no beat of that stretch lies `by` beats from one of its bar lines).
    pub fn move_bar_lines(&mut self, by: i8, near_s: Option<f64>) -> bool {
        let rows = self.complete_beats().min(self.grid.len());
        let bar_lines = self.grid.bar_starts();
        let beats = &self.grid.beats;
        let bar_line = match near_s {
            Some(t) => bar_lines
                .iter()
                .min_by(|&&a, &&b| (beats[a] - t).abs().total_cmp(&(beats[b] - t).abs())),
            None => bar_lines
                .iter()
                .rev()
                .find(|&&b| b < rows)
                .or(bar_lines.last()),
        };
        let (Some(&b), true) = (bar_line, self.grid.meter > 1 && by != 0) else {
            return false;
        };
        // The beat `by` from the bar line, or a bar the other way where that one lies past the
        // stretch (its place in the bar is the same): the tracker's stretch, which the user's
        // earlier moves may have lined up with its neighbour's on the grid as it stands.
        let tracked = self.tracked_grid();
        let stretch = given_bar_line::counted_alike(&tracked, b);
        let (b, by, m) = (b as i64, i64::from(by), i64::from(self.grid.meter));
        let Some(named) = [b + by, b + by - by.signum() * m]
            .into_iter()
            .filter_map(|i| usize::try_from(i).ok())
            .find(|i| stretch.contains(i))
        else {
            return false;
        };
        // The new bar line replaces those the user gave in that stretch (pressed again, the
        // button moves the same bars once more).
        let t = self.grid.beats[named];
        let alike = given_bar_line::counted_alike(&tracked, named);
        self.given_bar_lines_s.retain(|&given| {
            given_bar_line::beat_at(&tracked, given).is_ok_and(|beat| !alike.contains(&beat))
        });
        if self.given_bar_lines_s.len() >= MAX_GIVEN_BAR_LINES {
            // The one farthest from the new one goes.
            let farthest = (0..self.given_bar_lines_s.len())
                .max_by(|&a, &b| {
                    let distance = |i: usize| (self.given_bar_lines_s[i] - t).abs();
                    distance(a).total_cmp(&distance(b))
                })
                .unwrap_or(0);
            self.given_bar_lines_s.remove(farthest);
        }
        let at = self.given_bar_lines_s.partition_point(|&given| given < t);
        self.given_bar_lines_s.insert(at, t);
        self.place_bars()
    }

    /// The grid with its bars where the tracker places them, none given by the user.
    fn tracked_grid(&self) -> BeatGrid {
        let mut grid = self.grid.clone();
        let mut features = self.features.clone();
        bar_phase::place_bars(
            &mut grid,
            &mut features,
            &self.downbeat_log_odds,
            self.bar_anchor(),
        );
        grid
    }

    /// Forgets the bar lines the user gave and places the bars as the tracker does. Returns
    /// whether any scored beat's place moved.
    pub fn reset_bar_lines(&mut self) -> bool {
        if self.given_bar_lines_s.is_empty() {
            return false;
        }
        self.given_bar_lines_s.clear();
        self.place_bars()
    }

    /// Moves the beats half a beat, for a song whose beats the tracker found on its off-beats:
    /// those of the steady stretch around the beat nearest `near_s` (the newest of the scored
    /// beats where `None`; `beat_stretch::steady_stretch`), from the next settle on, which
    /// analyses the whole capture again with them moved before it reads anything on them. Asked
    /// again where it moved them, it takes that move back ([`HalfBeats::toggle`]). Bar lines the
    /// user gave there move with their beats when the settle moves them ([`HalfBeats::settle`]).
    /// Returns whether a settle was asked for (not where the grid has fewer than two beats).
    pub fn move_half_beat(&mut self, near_s: Option<f64>) -> bool {
        let Some((beat, stretch)) = self.half_beat_stretch(near_s) else {
            return false;
        };
        let beats = &self.grid.beats;
        self.half_beats.toggle(
            beats[beat],
            beats[*stretch.start()],
            beats[*stretch.end()],
            0.5 * beat_stretch::local_period(beats, beat),
        );
        self.asked.half_beat_requests += 1;
        true
    }

    /// Whether the beats around `near_s` (as [`Capture::move_half_beat`] takes it) are moved
    /// half a beat, or will be at the next settle (the editor marks the button).
    pub fn half_beat_moved(&self, near_s: Option<f64>) -> bool {
        self.half_beat_stretch(near_s)
            .is_some_and(|(beat, _)| self.half_beats.covers(self.grid.beats[beat]))
    }

    /// Where the user moved the beats half a beat, for the settle.
    pub fn half_beats_s(&self) -> Vec<f64> {
        self.half_beats.times_s()
    }

    /// The beat nearest `near_s` (the newest scored one where `None`) and the steady stretch
    /// around it, where the grid has two beats or more.
    fn half_beat_stretch(&self, near_s: Option<f64>) -> Option<(usize, RangeInclusive<usize>)> {
        let beats = &self.grid.beats;
        if beats.len() < 2 {
            return None;
        }
        let beat = match near_s {
            Some(t) => beat_stretch::nearest_beat(beats, t)?,
            None => self.complete_beats().clamp(1, beats.len()) - 1,
        };
        Some((beat, beat_stretch::steady_stretch(beats, beat)))
    }

    /// Whether the bars are counted from a bar line the user gave ([`Capture::move_bar_lines`])
    /// that lies on the grid as it stands (the editor says so).
    pub fn bar_line_given(&self) -> bool {
        self.given_bar_lines_s
            .iter()
            .any(|&t| given_bar_line::beat_at(&self.grid, t).is_ok())
    }

    /// Counts the bars from each bar line the user gave where the grid has a beat there
    /// (`given_bar_line::count_bars_from_each`: each over its stretch up to the next one).
    fn count_from_given_bar_lines(&mut self) {
        let rows = self.complete_beats().min(self.grid.len());
        given_bar_line::count_bars_from_each(
            &mut self.grid,
            &mut self.features[..rows * BEAT_FEATURES],
            &self.given_bar_lines_s,
        );
    }

    /// Replaces the streaming tracker's grid with `analysis`, the offline tracker's over the
    /// first `frames` frames of the audio: its beats, bars, features and downbeat evidence, the
    /// last beat left incomplete (its end is the next beat the streaming tracker reports).
    /// Nothing happens, and `false` is returned, if audio came in after those frames: the
    /// analysis would describe a shorter track than the one captured. `recount` is what the
    /// user had asked for when the analysis started (a tempo, beats moved half a beat); bar
    /// lines the user gave on beats the analysis moved half a beat, or moved back, move with
    /// them ([`HalfBeats::settle`]). Old scores are dropped (a new
    /// [`Capture::bar_lines`]). Settled at half the streaming tracker's tempo, the grid goes on
    /// growing at the settled level ([`LEVEL_KEPT`]).
    pub fn settle(&mut self, analysis: TrackAnalysis, frames: usize, recount: Recount) -> bool {
        if frames != self.audio.frames() || frames == 0 {
            return false;
        }
        self.settled_with = recount;
        self.half_beats.settle(
            &self.grid,
            &analysis.grid,
            &analysis.half_beat_moves,
            &mut self.given_bar_lines_s,
        );
        let beats = analysis.grid.len();
        let complete = beats.saturating_sub(1);
        let features = analysis.features.as_slice()[..complete * BEAT_FEATURES].to_vec();
        self.grid = analysis.grid;
        self.grid.duration_s = self.audio.seconds().max(self.grid.duration_s);
        self.features = features;
        self.downbeat_log_odds = analysis.downbeat_log_odds;
        self.downbeat_log_odds.resize(beats, 0.0);
        let streaming_bpm = self.tempo_bpm;
        self.settled_period_s = (analysis.tempo_bpm > 0.0
            && (streaming_bpm / (2.0 * analysis.tempo_bpm) - 1.0).abs()
                <= bar_phase::HOST_TEMPO_AGREEMENT)
            .then(|| 60.0 / analysis.tempo_bpm);
        self.tempo_bpm = analysis.tempo_bpm;
        self.confidence = Some(analysis.confidence);
        self.half_tempo_bpm = analysis.half_tempo_bpm;
        self.feature_gaps = 0;
        self.count_from_given_bar_lines();
        self.bar_lines += 1;
        self.settles += 1;
        self.settled_frames = frames;
        self.resume_after_s = match self.grid.beats[..] {
            [.., before, last] => Some(last + 0.5 * (last - before)),
            _ => None,
        };
        true
    }

    /// Beats whose features are known.
    pub fn complete_beats(&self) -> usize {
        self.features.len() / BEAT_FEATURES
    }

    /// Whether the grid is the offline analysis of everything captured ([`Capture::settle`]),
    /// nothing heard, no other tempo asked for and no beats moved half a beat
    /// ([`Capture::count_at`], [`Capture::move_half_beat`]) since.
    pub fn is_settled(&self) -> bool {
        self.settled_frames > 0
            && self.settled_frames == self.audio.frames()
            && !self.settle_asked()
    }

    /// The tempo to offer the user beside ½×, BPM: half the settled grid's, where a reading
    /// leaning towards slower tempi found it ([`cutscore_analysis::half_tempo`]), while the grid
    /// is that settle's and no other tempo has been asked for.
    pub fn half_tempo_offer(&self) -> Option<f64> {
        self.half_tempo_bpm
            .filter(|_| self.is_settled() && self.asked.tempo.is_none())
    }

    /// What to tell the user when the settled grid found no steady pulse (its confidence below
    /// [`LOW_CONFIDENCE`]): the proposals then stand on beats the tracker doubts.
    pub fn pulse_warning(&self) -> Option<String> {
        self.confidence
            .filter(|&c| c < LOW_CONFIDENCE && self.is_settled())
            .map(|c| {
                format!(
                    "No steady pulse found in the capture (confidence {c:.2}): cuts may not land on the beat"
                )
            })
    }

    /// The grid of the complete beats and their features: what proposals are scored on.
    /// `None` until there are at least two bars.
    pub fn scoring_view(&self) -> Option<ScoringView> {
        let beats = self.complete_beats();
        let meter = usize::from(self.grid.meter.max(1));
        if beats < 2 * meter {
            return None;
        }
        let grid = self.grid_prefix(beats);
        let features = FeatureMatrix::new(beats, self.features.clone()).ok()?;
        let strong_bar_parity =
            hypermeter::strong_bar_parity(&grid, &self.features, &self.downbeat_log_odds);
        Some(ScoringView {
            epoch: self.epoch,
            bar_lines: self.bar_lines,
            settled: self.is_settled(),
            grid,
            features,
            strong_bar_parity,
        })
    }

    /// The first `beats` beats as a grid that ends where beat `beats` starts.
    pub fn grid_prefix(&self, beats: usize) -> BeatGrid {
        grid_prefix(&self.grid, beats)
    }

    pub fn seconds(&self) -> f64 {
        self.audio.seconds()
    }
}

/// The first `beats` beats of `grid` as a grid that ends where beat `beats` starts.
pub fn grid_prefix(grid: &BeatGrid, beats: usize) -> BeatGrid {
    let beats = beats.min(grid.len());
    let end = grid.beats.get(beats).copied().unwrap_or(grid.duration_s);
    BeatGrid {
        beats: grid.beats[..beats].to_vec(),
        beat_in_bar: grid.beat_in_bar[..beats].to_vec(),
        meter: grid.meter,
        duration_s: end,
    }
}

/// The capture as it was at one moment, for the actions (render, export, decisions,
/// auditions), which read it on their own thread.
#[derive(Debug, Clone)]
pub struct CaptureSnapshot {
    pub epoch: u64,
    pub audio: AudioSnapshot,
    pub grid: BeatGrid,
    /// Features of the complete beats, `BEAT_FEATURES` values per beat.
    pub features: Vec<f32>,
}

impl CaptureSnapshot {
    /// Beats whose features are known.
    pub fn complete_beats(&self) -> usize {
        self.features.len() / BEAT_FEATURES
    }

    /// The first `beats` beats as a grid that ends where beat `beats` starts.
    pub fn grid_prefix(&self, beats: usize) -> BeatGrid {
        grid_prefix(&self.grid, beats)
    }
}

/// A copy of what proposals are scored on, taken under the capture's lock.
#[derive(Debug, Clone)]
pub struct ScoringView {
    pub epoch: u64,
    /// [`Capture::bar_lines`] when the view was taken.
    pub bar_lines: u64,
    /// [`Capture::is_settled`]: the grid is the whole capture's, its end the song's end for now.
    pub settled: bool,
    pub grid: BeatGrid,
    pub features: FeatureMatrix,
    /// The bar lines cuts start and resume on, where every other one is weak
    /// (`cutscore_analysis::hypermeter`): proposals and the fit use these only.
    pub strong_bar_parity: Option<usize>,
}

/// One scored cut proposal.
#[derive(Debug, Clone, PartialEq)]
pub struct Proposal {
    /// First removed beat and the first beat played after the cut, in source beats.
    pub start: usize,
    pub end: usize,
    pub from_s: f64,
    pub to_s: f64,
    pub start_at: BarBeat,
    pub resume_at: BarBeat,
    /// Whole bars removed: the cut runs from a downbeat to a later downbeat.
    pub bars: usize,
    pub score: f32,
    /// What a taste layer reads about the cut ([`cutscore_core::taste`]), for the proposals
    /// the editor can list (Teach chooses its questions by it); `None` further down.
    pub summary: Option<[f32; TASTE_INPUTS]>,
}

impl Proposal {
    /// The proposal to cut beats `start..end` of `grid`; `positions` is `bar_beats(grid)`.
    pub fn on_grid(
        grid: &BeatGrid,
        positions: &[BarBeat],
        (start, end): (usize, usize),
        score: f32,
    ) -> Self {
        Self {
            start,
            end,
            from_s: grid.time_of(start),
            to_s: grid.time_of(end),
            start_at: positions[start],
            resume_at: positions[end],
            bars: positions[end].bar.saturating_sub(positions[start].bar),
            score,
            summary: None,
        }
    }

    /// Reads the proposal's taste summary from the track's `features` (`mean` is their
    /// [`track_mean`](cutscore_core::taste::track_mean)) on a grid of `beats` beats in `meter`.
    pub fn summarise(
        &mut self,
        features: &FeatureMatrix,
        mean: &[f32; SUMMARY_WIDTH],
        beats: usize,
        meter: u8,
    ) {
        self.summary = Edit::new(beats, [(self.start, self.end)])
            .ok()
            .map(|edit| taste_inputs(features, mean, meter, &edit));
    }
}

/// The scoring worker's latest results.
#[derive(Debug, Clone, Default)]
pub struct Proposals {
    /// The capture these proposals are for.
    pub epoch: u64,
    /// Beats of the grid the proposals refer to (their edits are over this many beats).
    pub beats: usize,
    /// Every proposal scored so far, best first.
    pub ranked: Vec<Proposal>,
    /// Proposals still waiting for a score with the current model and track length.
    pub pending: usize,
    /// Time from the newest bar's arrival to its proposals being published.
    pub latency: Option<Duration>,
}

/// Which model scores, for the status line.
#[derive(Debug, Clone, Default)]
pub struct ModelStatus {
    pub device: String,
    pub model_id: String,
    pub created: Option<String>,
    /// "your model" or "the shipped model".
    pub source: String,
    /// Preference pairs from the user's own decisions the model was fine-tuned on.
    pub user_pairs: usize,
    /// A problem with the user's model file, if any (the previous model keeps serving).
    pub problem: Option<String>,
}

/// What a fit-to-length request produced.
#[derive(Debug, Clone)]
pub enum FitState {
    Running {
        target_s: f64,
    },
    Done {
        target_s: f64,
        beats: usize,
        result: FitResult,
    },
    Failed(String),
}

/// Everything the plugin's threads share.
#[derive(Debug)]
pub struct Session {
    pub capture: Mutex<Capture>,
    pub proposals: Mutex<Proposals>,
    pub model: Mutex<ModelStatus>,
    pub fit: Mutex<Option<FitState>>,
    /// An audition waiting for the analysis thread to feed it to the audio thread.
    pub audition_request: Mutex<Option<Vec<f32>>>,
    pub audition: Arc<AuditionFlags>,
    pub tap: Arc<TapStats>,
    /// Decisions in the prefs log (counted at start, then as they are written).
    pub decisions: AtomicU64,
    /// Asks the analysis thread to forget the capture and start a new track.
    pub restart: AtomicBool,
    /// Where the last action (accept, render, ...) left a message for the user.
    pub message: Mutex<Option<String>>,
    /// The user model file the worker watches; `None` where the platform has none.
    pub user_model: Option<PathBuf>,
    /// "Learn from my decisions": the trainer run, stopped when the plugin goes away.
    pub learner: crate::learn::Learner,
    /// The scoring worker's queue while the plugin is active.
    pub jobs: Mutex<Option<Sender<Job>>>,
    /// The streaming analysis between activations, so a re-activation at the same rate
    /// carries on with the capture.
    pub parked: Mutex<Option<ParkedAnalysis>>,
    /// The last epoch handed out.
    epochs: AtomicU64,
    /// The prefs-log track id of a capture (by epoch), fixed by its first decision.
    pub track_id: Mutex<Option<(u64, String)>>,
    /// Writes to the prefs folder, one at a time and in the order the user asked for them.
    pub prefs_turns: Turns,
    /// The actions running in the background (render, export, ...), by name.
    busy: Mutex<Vec<String>>,
    /// Outcomes of background actions the editor has not seen yet.
    finished: Mutex<Vec<Finished>>,
}

/// Takes turns in order: [`Turns::ticket`] on the thread that asks (the editor), then
/// [`Turns::wait`] on the thread that works, which returns when every earlier ticket is done.
#[derive(Debug, Default)]
pub struct Turns {
    next: AtomicU64,
    serving: Mutex<u64>,
    done: std::sync::Condvar,
}

/// A place in the queue of [`Turns`]; the next one is served when it is dropped.
#[derive(Debug)]
pub struct Turn<'a> {
    turns: &'a Turns,
}

impl Turns {
    pub fn ticket(&self) -> u64 {
        self.next.fetch_add(1, Ordering::AcqRel)
    }

    pub fn wait(&self, ticket: u64) -> Turn<'_> {
        let mut serving = lock(&self.serving);
        while *serving != ticket {
            serving = self
                .done
                .wait(serving)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        Turn { turns: self }
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        *lock(&self.turns.serving) += 1;
        self.turns.done.notify_all();
    }
}

/// What a background action left for the editor.
#[derive(Debug, Clone, PartialEq)]
pub enum Finished {
    /// Nothing to report (an audition that started).
    Nothing,
    /// A message for the user.
    Message(String),
    /// A decision was logged or not (`Err`: why).
    Decided {
        span: (usize, usize),
        verdict: cutscore_core::prefs::Verdict,
        outcome: Result<crate::actions::Logged, String>,
    },
}

/// The analysis thread's tracker while the plugin is inactive.
pub struct ParkedAnalysis {
    pub analyzer: StreamingAnalyzer,
    pub sample_rate: u32,
    pub channels: usize,
}

impl std::fmt::Debug for ParkedAnalysis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParkedAnalysis")
            .field("sample_rate", &self.sample_rate)
            .field("channels", &self.channels)
            .finish_non_exhaustive()
    }
}

impl Session {
    pub fn new(user_model: Option<PathBuf>) -> Self {
        Self {
            capture: Mutex::new(Capture::new(0, 44_100, 2)),
            proposals: Mutex::new(Proposals::default()),
            model: Mutex::new(ModelStatus::default()),
            fit: Mutex::new(None),
            audition_request: Mutex::new(None),
            audition: Arc::new(AuditionFlags::default()),
            tap: Arc::new(TapStats::default()),
            decisions: AtomicU64::new(0),
            restart: AtomicBool::new(false),
            message: Mutex::new(None),
            user_model,
            learner: crate::learn::Learner::default(),
            jobs: Mutex::new(None),
            parked: Mutex::new(None),
            epochs: AtomicU64::new(0),
            track_id: Mutex::new(None),
            prefs_turns: Turns::default(),
            busy: Mutex::new(Vec::new()),
            finished: Mutex::new(Vec::new()),
        }
    }

    /// The background actions still running, by name.
    pub fn busy(&self) -> Vec<String> {
        lock(&self.busy).clone()
    }

    pub fn job_started(&self, what: &str) {
        lock(&self.busy).push(what.to_owned());
    }

    /// Records a background action's outcome; a message is also shown at once.
    pub fn job_finished(&self, finished: Finished) {
        if let Finished::Message(message) = &finished {
            self.set_message(message.clone());
        }
        let mut busy = lock(&self.busy);
        if !busy.is_empty() {
            busy.remove(0);
        }
        drop(busy);
        lock(&self.finished).push(finished);
    }

    /// The outcomes left since the last call.
    pub fn take_finished(&self) -> Vec<Finished> {
        std::mem::take(&mut *lock(&self.finished))
    }

    /// Replaces the capture with an empty one of a new epoch, and forgets what belonged to
    /// the old one (its proposals and fit).
    pub fn new_capture(&self, sample_rate: u32, channels: u16) {
        let epoch = self.epochs.fetch_add(1, Ordering::AcqRel) + 1;
        *lock(&self.capture) = Capture::new(epoch, sample_rate, channels);
        *lock(&self.proposals) = Proposals {
            epoch,
            ..Proposals::default()
        };
        *lock(&self.fit) = None;
    }

    /// Queues `job` for the scoring worker; `false` if the plugin is not active or the queue
    /// is full.
    pub fn request(&self, job: Job) -> bool {
        lock(&self.jobs)
            .as_ref()
            .is_some_and(|jobs| jobs.try_send(job).is_ok())
    }

    pub fn auditioning(&self) -> bool {
        self.audition.active.load(Ordering::Acquire)
    }

    pub fn set_message(&self, message: impl Into<String>) {
        *lock(&self.message) = Some(message.into());
    }
}

/// Locks `mutex`, recovering the data if a thread panicked while holding it (the data is
/// still consistent: every writer replaces whole values).
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turns_are_served_in_ticket_order_whatever_order_the_workers_start_in() {
        let turns = Arc::new(Turns::default());
        let served = Arc::new(Mutex::new(Vec::new()));
        let tickets: Vec<u64> = (0..6).map(|_| turns.ticket()).collect();
        let workers: Vec<_> = tickets
            .into_iter()
            .rev()
            .map(|ticket| {
                let (turns, served) = (turns.clone(), served.clone());
                std::thread::spawn(move || {
                    let _turn = turns.wait(ticket);
                    lock(&served).push(ticket);
                })
            })
            .collect();
        for worker in workers {
            worker.join().unwrap();
        }
        assert_eq!(*lock(&served), vec![0, 1, 2, 3, 4, 5]);
    }

    /// The features of beat `k` of a song in 4/4 whose chord changes on beats 1, 5, 9 ...
    /// (C major, then G major), zero but for the chroma.
    fn chords_from_beat_1(k: u8) -> Vec<f32> {
        let mut row = vec![0.0f32; BEAT_FEATURES];
        let notes: &[usize] = if k.div_ceil(4).is_multiple_of(2) {
            &[0, 4, 7]
        } else {
            &[7, 11, 2]
        };
        notes.iter().for_each(|&n| row[46 + n] = 1.0);
        row
    }

    #[test]
    fn the_bar_lines_move_to_the_chord_changes_and_old_scores_are_dropped() {
        // 4/4 at 120 BPM; the tracker puts its bar lines on beats 0, 4, 8 ... and the chords
        // change on beats 1, 5, 9 ...
        let mut capture = Capture::new(1, 48_000, 2);
        let chroma = 46..58;
        for k in 0..40u8 {
            assert!(capture.push_beat(0.5 * f64::from(k), k % 4, 4, 0.0));
            capture.features.extend_from_slice(&chords_from_beat_1(k));
        }
        let before = capture.scoring_view().unwrap().bar_lines;
        assert!(capture.place_bars());
        let view = capture.scoring_view().unwrap();
        assert!(view.bar_lines > before, "a new placing of the bar lines");
        let downbeats = view.grid.bar_starts();
        assert_eq!(downbeats[..3], [1, 5, 9]);
        // The bar features say so too: beat 5 is a downbeat, beat 4 the last of its bar.
        assert_eq!(view.features.row(5)[87], 1.0);
        assert_eq!(view.features.row(4)[90], 1.0);
        assert!(
            !capture.place_bars(),
            "the same evidence places them the same"
        );
        // A new beat (no features yet) and then its features: the bars stand, nothing to
        // rescore, and the new beat continues the placed bar.
        assert!(capture.push_beat(20.0, 0, 4, 0.0));
        assert!(!capture.place_bars());
        assert_eq!(capture.grid.beat_in_bar[40], 3);
        let mut row = vec![0.0f32; BEAT_FEATURES];
        row[chroma.start] = 1.0;
        capture.features.extend_from_slice(&row);
        assert!(
            !capture.place_bars(),
            "one more beat does not move the bars"
        );
    }

    #[test]
    fn bar_lines_the_user_moves_stay_where_the_user_put_them_as_the_capture_grows() {
        // 4/4 at 120 BPM whose chords change on beats 1, 5, 9 ...: the bars are placed there,
        // and the user hears them a beat early.
        let mut capture = Capture::new(1, 48_000, 2);
        for k in 0..40u8 {
            assert!(capture.push_beat(0.5 * f64::from(k), k % 4, 4, 0.0));
            capture.features.extend_from_slice(&chords_from_beat_1(k));
        }
        capture.place_bars();
        assert_eq!(capture.grid.bar_starts()[..3], [1, 5, 9]);
        assert!(!capture.bar_line_given());
        let before = capture.bar_lines;
        assert!(capture.move_bar_lines(-1, None));
        assert!(capture.bar_lines > before, "the proposals are scored again");
        assert!(capture.bar_line_given());
        let view = capture.scoring_view().unwrap();
        assert_eq!(view.grid.bar_starts()[..3], [0, 4, 8]);
        assert_eq!(view.features.row(4)[87], 1.0, "beat 4 starts a bar");
        assert_eq!(view.features.row(5)[88], 1.0, "beat 5 is its second");
        // The chords still say otherwise, beat after beat (each reported at the tracker's own
        // place, then complete with its features, as the analysis thread goes); the user's
        // bars hold, and nothing asks for rescoring.
        let bar_lines = capture.bar_lines;
        for k in 40..48u8 {
            assert!(capture.push_beat(0.5 * f64::from(k), (k + 3) % 4, 4, 0.0));
            assert!(!capture.place_bars(), "beat {k}");
            capture.features.extend_from_slice(&chords_from_beat_1(k));
            assert!(!capture.place_bars(), "beat {k} complete");
        }
        assert_eq!(capture.bar_lines, bar_lines);
        assert_eq!(capture.grid.bar_starts().last(), Some(&44));
        // Once more, and back: a beat later each time.
        assert!(capture.move_bar_lines(1, None));
        assert_eq!(capture.grid.bar_starts()[..3], [1, 5, 9]);
        assert!(capture.move_bar_lines(1, None));
        assert_eq!(capture.grid.bar_starts()[..3], [2, 6, 10]);
        assert!(capture.reset_bar_lines());
        assert_eq!(capture.grid.bar_starts()[..3], [1, 5, 9]);
        // Nothing to move by, or in bars of one beat.
        assert!(!capture.move_bar_lines(0, None));
        // Near a time: the bars around it move, as far as the tracker counted them alike. Here
        // the chords change on beats 1, 5 ... 17, then on 20, 24 ...: two stretches.
        let mut changed = Capture::new(2, 48_000, 2);
        for k in 0..40u8 {
            assert!(changed.push_beat(0.5 * f64::from(k), 0, 4, 0.0));
            let beat = if k < 20 { k } else { k + 1 };
            changed
                .features
                .extend_from_slice(&chords_from_beat_1(beat));
        }
        changed.place_bars();
        let found = changed.grid.bar_starts();
        assert_eq!(found, [1, 5, 9, 13, 17, 20, 24, 28, 32, 36]);
        assert!(changed.move_bar_lines(-1, Some(3.0)));
        assert_eq!(
            changed.grid.bar_starts(),
            [0, 4, 8, 12, 16, 20, 24, 28, 32, 36]
        );
        // The newest bars a beat later: the first move stays where the user put it.
        assert!(changed.move_bar_lines(1, None));
        let both = [0, 4, 8, 12, 16, 21, 25, 29, 33, 37];
        assert_eq!(changed.grid.bar_starts(), both);
        assert!(
            !changed.place_bars(),
            "both hold as the evidence is read again"
        );
        assert_eq!(changed.grid.bar_starts(), both);
        // A beat earlier again near the second stretch's start: it moves back, and once more
        // (the tracker counts beats 18 and 19 with the second stretch), while the first stays
        // where the user put it.
        assert!(changed.move_bar_lines(-1, Some(10.5)));
        assert_eq!(
            changed.grid.bar_starts(),
            [0, 4, 8, 12, 16, 20, 24, 28, 32, 36]
        );
        assert!(changed.move_bar_lines(-1, Some(10.0)));
        assert_eq!(
            changed.grid.bar_starts(),
            [0, 4, 8, 12, 16, 19, 23, 27, 31, 35, 39]
        );
        // Back to the tracker's bars.
        assert!(changed.reset_bar_lines());
        assert!(!changed.bar_line_given());
        assert_eq!(changed.grid.bar_starts(), found);
        assert!(!changed.reset_bar_lines(), "nothing more to reset");
        let mut one = Capture::new(2, 48_000, 2);
        for k in 0..8u8 {
            one.push_beat(0.5 * f64::from(k), 0, 1, 0.0);
        }
        assert!(!one.move_bar_lines(1, None));
        assert!(!one.bar_line_given());
    }

    #[test]
    fn half_a_beat_asked_in_a_stretch_is_asked_once_and_taken_back_there() {
        // 120 BPM for 10 s, then 100 BPM: two steady stretches.
        let mut capture = Capture::new(1, 48_000, 2);
        let mut times: Vec<f64> = (0..20).map(|k| 0.5 * f64::from(k)).collect();
        times.extend((0..12).map(|k| 10.0 + 0.6 * f64::from(k)));
        for (k, &t) in times.iter().enumerate() {
            assert!(capture.push_beat(t, (k % 4) as u8, 4, 0.0));
            capture.features.extend_from_slice(&[0.0; BEAT_FEATURES]);
        }
        assert!(!capture.settle_asked());
        assert!(!capture.half_beat_moved(Some(3.0)));
        // The user's bar lines move with their beats when a settle moves them
        // (`half_beats::HalfBeats::settle`), not at the press.
        capture.given_bar_lines_s = vec![2.0, 12.4];
        assert!(capture.move_half_beat(Some(3.0)));
        assert!(capture.settle_asked(), "a settle moves the beats");
        assert!(capture.recount_pending().is_none(), "no tempo asked for");
        assert_eq!(capture.half_beats_s(), [3.0]);
        assert_eq!(capture.given_bar_lines_s, [2.0, 12.4]);
        assert!(capture.half_beat_moved(Some(8.0)), "the same stretch");
        assert!(
            !capture.half_beat_moved(None),
            "the newest beats are the other stretch"
        );
        // The newest beats: the second stretch.
        assert!(capture.move_half_beat(None));
        assert_eq!(capture.half_beats_s(), [3.0, 10.0 + 0.6 * 11.0]);
        // Asked again in the first stretch: taken back there only.
        assert!(capture.move_half_beat(Some(1.0)));
        assert_eq!(capture.half_beats_s(), [10.0 + 0.6 * 11.0]);
        assert!(!capture.half_beat_moved(Some(3.0)));
        assert!(capture.half_beat_moved(Some(12.0)));
        // A capture with one beat has nothing to move.
        let mut one = Capture::new(2, 48_000, 2);
        assert!(!one.move_half_beat(None));
        one.push_beat(1.0, 0, 4, 0.0);
        assert!(!one.move_half_beat(Some(1.0)));
        assert!(!one.settle_asked());
    }

    #[test]
    fn proposals_are_cut_on_the_strong_bar_lines_when_every_other_one_is_weak() {
        // 4/4 at 120 BPM whose odd bar lines the network hears as weak downbeats (a grid at
        // twice the song's tempo: they are the true bars' third beats).
        let capture_with = |weak: f32| {
            let mut capture = Capture::new(1, 48_000, 2);
            for k in 0..64u8 {
                let log_odds = match (k % 4, (k / 4) % 2) {
                    (0, 0) => 2.0,
                    (0, _) => weak,
                    _ => -3.0,
                };
                assert!(capture.push_beat(0.5 * f64::from(k), k % 4, 4, log_odds));
                capture.features.extend_from_slice(&[0.0; BEAT_FEATURES]);
            }
            capture
        };
        let view = capture_with(-1.0).scoring_view().unwrap();
        assert_eq!(view.strong_bar_parity, Some(0));
        assert_eq!(
            capture_with(1.8).scoring_view().unwrap().strong_bar_parity,
            None
        );
    }

    #[test]
    fn the_hosts_bar_lines_place_the_bars_the_music_does_not() {
        // One chord, no downbeat evidence; beats every 0.5 s from 0.3 s, in a capture whose
        // segments start at these times with the host's bars standing so there.
        let placed = |segments: &[(f64, Option<HostBar>)]| {
            let mut capture = Capture::new(1, 48_000, 2);
            for &(at_s, host) in segments {
                capture.start_segment(at_s, host);
            }
            capture.tempo_bpm = 120.0;
            for k in 0..40u8 {
                assert!(capture.push_beat(0.3 + 0.5 * f64::from(k), k % 4, 4, 0.0));
                let mut row = vec![0.0f32; BEAT_FEATURES];
                row[46] = 1.0;
                capture.features.extend_from_slice(&row);
            }
            capture.place_bars();
            (
                capture.on_host_grid(),
                capture.grid.bar_starts()[..3].to_vec(),
            )
        };
        let host = |tempo_bpm| {
            Some(HostBar {
                since_bar_line_s: 0.2,
                tempo_bpm,
            })
        };
        // The host's playback started 0.2 s into a bar, so its bar lines fall on beats 3, 7,
        // 11, ...
        let capture_with = |host: Option<HostBar>| placed(&[(0.0, host)]);
        assert_eq!(capture_with(host(120.0)), (true, vec![3, 7, 11]));
        assert_eq!(
            capture_with(host(60.0)),
            (true, vec![3, 7, 11]),
            "the host at half the tempo"
        );
        assert_eq!(
            capture_with(None),
            (false, vec![0, 4, 8]),
            "no host: counted from the first beat"
        );
        assert_eq!(
            capture_with(host(100.0)),
            (false, vec![0, 4, 8]),
            "a project at another tempo"
        );
        // Audio heard while the transport was stopped, then playback from 6 s, 0.2 s into a
        // bar: the host's bar lines from there (5.8 s, beat 11) place the bars of the whole
        // capture, the beats before counted back from them.
        assert_eq!(
            placed(&[(0.0, None), (6.0, host(120.0))]),
            (true, vec![3, 7, 11])
        );

        // The playback jumps at 12 s: the anchor holds until there.
        let mut capture = Capture::new(1, 48_000, 2);
        capture.tempo_bpm = 120.0;
        capture.start_segment(0.0, host(120.0));
        capture.start_segment(12.0, host(120.0));
        capture.start_segment(15.0, None);
        let anchor = capture.bar_anchor().unwrap();
        assert_eq!((anchor.time_s, anchor.until_s), (-0.2, 12.0));
    }

    /// An offline analysis of ten seconds at `bpm` in 4/4, its first beat at 0.25 s.
    fn ten_seconds_at(bpm: f64, half_tempo_bpm: Option<f64>) -> TrackAnalysis {
        let beats: Vec<f64> = (0..)
            .map(|k| 0.25 + 60.0 / bpm * f64::from(k))
            .take_while(|&t| t < 10.0)
            .collect();
        let n = beats.len();
        TrackAnalysis {
            grid: BeatGrid {
                beat_in_bar: (0..n).map(|k| (k % 4) as u8).collect(),
                beats,
                meter: 4,
                duration_s: 10.0,
            },
            features: FeatureMatrix::new(n, vec![0.0; n * BEAT_FEATURES]).unwrap(),
            tempo_bpm: bpm,
            meter: 4,
            confidence: 0.9,
            duration_s: 10.0,
            downbeat_log_odds: vec![0.0; n],
            half_tempo_bpm,
            half_beat_moves: Vec::new(),
        }
    }

    #[test]
    fn after_a_settle_at_half_the_streaming_tempo_the_grid_grows_at_the_settled_level() {
        // Ten seconds settled at 60 BPM (beats at 0.25, 1.25 ... 9.25 s) while the streaming
        // tracker counted 120; then it reports a beat every 0.5 s.
        let settled_at = |streaming_bpm: f64, then_asked: Option<f64>| {
            let mut capture = Capture::new(1, 1_000, 1);
            capture.append(&vec![0.0; 10_000]);
            capture.tempo_bpm = streaming_bpm;
            let recount = capture.recount();
            assert!(capture.settle(ten_seconds_at(60.0, None), 10_000, recount));
            if let Some(factor) = then_asked {
                assert_eq!(capture.count_at(factor), Some(120.0));
            }
            let taken: Vec<bool> = [9.75, 10.25, 10.75, 11.25]
                .iter()
                .map(|&t| capture.push_beat(t, 0, 4, 0.0))
                .collect();
            taken
        };
        // The in-between beats are left out: the grid stays at 60.
        assert_eq!(settled_at(120.0, None), [false, true, false, true]);
        // Settled at the streaming tracker's own level, every beat it reports is taken.
        assert_eq!(settled_at(60.0, None), [true, true, true, true]);
        // The user asked for 2× after the settle: the tracker counts at 120, every beat is one.
        assert_eq!(settled_at(120.0, Some(2.0)), [true, true, true, true]);
    }

    #[test]
    fn half_the_tempo_is_offered_while_the_grid_is_the_settle_that_found_it() {
        let settled = |half_tempo_bpm: Option<f64>| {
            let mut capture = Capture::new(1, 1_000, 1);
            capture.append(&vec![0.0; 10_000]);
            let recount = capture.recount();
            assert!(capture.settle(ten_seconds_at(120.0, half_tempo_bpm), 10_000, recount));
            capture
        };
        assert_eq!(settled(None).half_tempo_offer(), None);
        assert_eq!(settled(Some(61.0)).half_tempo_offer(), Some(61.0));
        // More audio: the grid is no longer that settle's alone.
        let mut grown = settled(Some(61.0));
        grown.append(&[0.0; 100]);
        assert_eq!(grown.half_tempo_offer(), None);
        // The user counts at half: at the tempo offered, and the offer is taken, also once a
        // decision drops the settle the count was waiting for.
        let mut counted = settled(Some(61.0));
        assert_eq!(counted.count_at(0.5), Some(61.0));
        assert_eq!(counted.half_tempo_offer(), None);
        counted.drop_recount();
        assert!(counted.is_settled());
        assert_eq!(counted.half_tempo_offer(), None);
        // Without an offer ½× halves the grid's tempo; 2× doubles it with one.
        assert_eq!(settled(None).count_at(0.5), Some(60.0));
        assert_eq!(settled(Some(61.0)).count_at(2.0), Some(240.0));
    }

    #[test]
    fn a_meter_change_renumbers_the_earlier_beats_backwards() {
        let mut capture = Capture::new(1, 48_000, 2);
        for k in 0..5u8 {
            assert!(capture.push_beat(f64::from(k), k % 4, 4, 0.0));
        }
        assert!(capture.push_beat(5.0, 0, 3, 0.0));
        assert_eq!(capture.grid.beat_in_bar, [1, 2, 0, 1, 2, 0]);
        assert_eq!(capture.grid.meter, 3);
        capture.grid.validate().unwrap();
    }
}
