//! Settling the capture's grid when the music stops. The streaming tracker decides each beat
//! as it is heard, with 16 frames (372 ms) of look-ahead, and never takes one back; once the
//! transport stops, the whole capture is there to be analysed the way `trainer analyze`
//! analyses a file (Viterbi over the whole track, tempo, beats and bars decided together), and
//! that grid replaces the streaming one. On the real-music set the streaming beats score F
//! 0.810 and the capture's bar lines downbeat F 0.662 where the offline analysis of the same
//! audio scores 0.844 and 0.768 (`analysis/shipped/BEATS.md`, cross-validated).
//!
//! A capture whose track id is fixed (a decision or a Teach answer was logged on it) keeps its
//! streaming grid: the log's edits are beat indices of the analysis saved with them, and a
//! capture keeps one id for all its decisions (issue #18), so from then on its grid only grows.
//!
//! The work runs on a thread of its own ([`Settler`]), so the analysis thread keeps draining
//! the capture ring if the transport starts again; the result is dropped if audio came in
//! meanwhile, and the next stop settles again.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cutscore_analysis::analyze_interleaved;

use crate::jobs::Job;
use crate::session::{Capture, FitState, Proposals, Session, lock};

/// How long no audio must have come in (the transport stopped, or the host stopped calling)
/// before the grid is settled. Hosts deliver blocks every few to a few hundred milliseconds
/// while playing.
pub const SETTLE_AFTER: Duration = Duration::from_millis(750);

/// What a settle did.
#[derive(Debug, Clone, PartialEq)]
pub enum Settled {
    /// The capture's grid is now the offline analysis of its audio.
    Settled { beats: usize, tempo_bpm: f64 },
    /// Audio came in, or a new capture started, while it was analysed: nothing changed.
    Superseded,
    /// A decision was logged on the capture meanwhile: its grid stays as it is.
    Decided,
    /// The offline analysis failed (a sample rate it cannot read): nothing changed.
    Failed(String),
}

/// What a settle would settle: the capture's epoch, its length in frames and the settles the
/// user asked for ([`Recount::asks`](crate::session::Recount::asks): tempi and half-beat moves).
pub type SettleKey = (u64, usize, u64);

/// What a settle would settle if the capture has audio its grid was not settled over, or the
/// user asked for a settle since the last one, and no decision on it fixes its grid.
pub fn wants_settling(session: &Session) -> Option<SettleKey> {
    let (key, unsettled) = {
        let capture = lock(&session.capture);
        let frames = capture.audio.frames();
        let unsettled = capture.error.is_none()
            && frames > 0
            && (frames > capture.settled_frames || capture.settle_asked());
        ((capture.epoch, frames, capture.recount().asks()), unsettled)
    };
    (unsettled && !decided(&lock(&session.track_id), key.0)).then_some(key)
}

/// Runs `change` on the capture unless a decision has fixed its grid, under the track id's
/// lock, so no decision can fix it in between (and leave a tempo asked for pending for good).
/// `None` where the grid is fixed.
fn unless_fixed<T>(session: &Session, change: impl FnOnce(&mut Capture) -> T) -> Option<T> {
    let track_id = lock(&session.track_id);
    let mut capture = lock(&session.capture);
    (!decided(&track_id, capture.epoch)).then(|| change(&mut capture))
}

/// Asks for the capture's beats to be counted at `factor` times its grid's tempo
/// ([`Capture::count_at`]) unless a decision has fixed its grid ([`unless_fixed`]). Returns the
/// tempo asked for.
pub fn count_at(session: &Session, factor: f64) -> Option<f64> {
    unless_fixed(session, |capture| capture.count_at(factor)).flatten()
}

/// Moves the capture's bar lines `by` beats around the bar line nearest `near_s`
/// ([`Capture::move_bar_lines`]) unless a decision has fixed its grid ([`unless_fixed`]); then
/// has the proposals scored again on the new bars, and the fit made again. Returns whether they
/// moved.
pub fn move_bar_lines(session: &Session, by: i8, near_s: Option<f64>) -> bool {
    let moved = unless_fixed(session, |capture| capture.move_bar_lines(by, near_s)) == Some(true);
    if moved {
        rescore(session);
    }
    moved
}

/// Moves the capture's beats half a beat around `near_s` from the next settle on, or takes that
/// back ([`Capture::move_half_beat`]), unless a decision has fixed its grid ([`unless_fixed`]).
/// Returns whether a settle was asked for.
pub fn move_half_beat(session: &Session, near_s: Option<f64>) -> bool {
    unless_fixed(session, |capture| capture.move_half_beat(near_s)) == Some(true)
}

/// Forgets the bar lines the user gave the capture and places its bars as the tracker does
/// ([`Capture::reset_bar_lines`]), unless a decision has fixed its grid; then scores and fits
/// again as [`move_bar_lines`]. Returns whether they moved.
pub fn reset_bar_lines(session: &Session) -> bool {
    let moved = unless_fixed(session, Capture::reset_bar_lines) == Some(true);
    if moved {
        rescore(session);
    }
    moved
}

/// Has the scoring worker score the proposals again on the capture's new bars, and fit again to
/// the same length if a fit was made on the old ones.
fn rescore(session: &Session) {
    let refit = match &*lock(&session.fit) {
        Some(FitState::Running { target_s } | FitState::Done { target_s, .. }) => Some(*target_s),
        _ => None,
    };
    if let Some(target_s) = refit {
        let asked = session.request(Job::Fit { target_s });
        *lock(&session.fit) = asked.then_some(FitState::Running { target_s });
    }
    session.request(Job::NewBar(Instant::now()));
}

/// Whether a decision or a Teach answer logged on the current capture fixes its grid.
pub fn grid_fixed(session: &Session) -> bool {
    let epoch = lock(&session.capture).epoch;
    decided(&lock(&session.track_id), epoch)
}

/// Whether the session's track id (`Session::track_id`) was fixed for capture `epoch`.
fn decided(track_id: &Option<(u64, String)>, epoch: u64) -> bool {
    track_id
        .as_ref()
        .is_some_and(|(decided, _)| *decided == epoch)
}

/// Analyses everything captured so far offline and, unless audio came in or a decision was
/// logged meanwhile, makes it the capture's grid; then has the scoring worker rescore, and
/// fit again to the same length if a fit was made on the old grid.
pub fn settle(session: &Session) -> Settled {
    let (epoch, audio, (anchor, tempo), recount, half_beats_s) = {
        let capture = lock(&session.capture);
        (
            capture.epoch,
            capture.audio.snapshot(),
            capture.settle_source(),
            capture.recount(),
            capture.half_beats_s(),
        )
    };
    let frames = audio.frames();
    let analysis = match analyze_interleaved(
        audio.slices(0, frames),
        usize::from(audio.channels),
        audio.sample_rate,
        anchor,
        tempo,
        &half_beats_s,
    ) {
        Ok(analysis) => analysis,
        Err(e) => return Settled::Failed(e.to_string()),
    };
    let (beats, tempo_bpm) = (analysis.grid.len(), analysis.tempo_bpm);
    // The track id's lock first, then the capture's, as the decisions take them: a decision
    // either fixed the id before this (the grid stays) or snapshots the settled grid.
    let track_id = lock(&session.track_id);
    if decided(&track_id, epoch) {
        return Settled::Decided;
    }
    let mut capture = lock(&session.capture);
    if capture.epoch != epoch || !capture.settle(analysis, frames, recount) {
        return Settled::Superseded;
    }
    let scorable = capture.scoring_view().is_some();
    drop(capture);
    drop(track_id);
    if !scorable {
        // Too few bars to propose anything (the whole capture holds no steady pulse): the
        // worker will not publish, so the streaming grid's proposals go now (unless Start over
        // has already replaced them).
        let mut shown = lock(&session.proposals);
        if shown.epoch == epoch {
            *shown = Proposals {
                epoch,
                ..Proposals::default()
            };
        }
    }
    rescore(session);
    Settled::Settled { beats, tempo_bpm }
}

/// The settle thread, at most one at a time, and at most one try per length of a capture and
/// tempo asked for (a failed one is not retried until more audio comes in or the user asks for
/// another tempo).
#[derive(Debug, Default)]
pub struct Settler {
    running: Option<JoinHandle<Settled>>,
    tried: Option<SettleKey>,
}

impl Settler {
    /// Starts a settle of `session`'s capture unless one is running or nothing needs it.
    /// Returns whether one started.
    pub fn start_if_wanted(&mut self, session: &Arc<Session>) -> bool {
        if self.running.as_ref().is_some_and(|h| !h.is_finished()) {
            return false;
        }
        let Some(wanted) = wants_settling(session) else {
            return false;
        };
        if self.tried == Some(wanted) {
            return false;
        }
        self.finish();
        self.tried = Some(wanted);
        let session = session.clone();
        self.running = std::thread::Builder::new()
            .name("cutscore-settle".into())
            .spawn(move || settle(&session))
            .ok();
        self.running.is_some()
    }

    /// Waits for the running settle, if any, and returns what it did.
    pub fn finish(&mut self) -> Option<Settled> {
        self.running.take().and_then(|h| h.join().ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cutscore_editing::candidates::BarBeat;
    use cutscore_synth::{SongSpec, TempoChange, render};

    /// A session whose capture holds `seconds` of a steady synthetic song and a streaming grid
    /// of beats every 0.3 s (not the song's).
    fn captured(seconds: f64) -> (Session, cutscore_synth::Song) {
        let mut spec = SongSpec::random(21);
        spec.sample_rate = 22_050;
        spec.tempo = TempoChange::Constant;
        spec.bpm = 116.0;
        spec.meter = 4;
        spec.quiet_intro = false;
        spec.bars = spec.bars_for_seconds(seconds);
        let song = render(&spec).unwrap();
        let session = Session::new(None);
        session.new_capture(22_050, 2);
        {
            let mut capture = lock(&session.capture);
            capture.append(&song.samples);
            for k in 0..(seconds / 0.3) as usize {
                capture.push_beat(0.3 * k as f64, (k % 4) as u8, 4, 0.0);
            }
        }
        (session, song)
    }

    #[test]
    fn a_settle_takes_the_offline_grid_once_and_not_after_a_decision() {
        let (session, song) = captured(16.0);
        assert!(wants_settling(&session).is_some());
        let before = lock(&session.capture).bar_lines;
        let Settled::Settled { beats, tempo_bpm } = settle(&session) else {
            panic!("settled");
        };
        let capture = lock(&session.capture);
        assert_eq!(capture.grid.len(), beats);
        assert!((tempo_bpm - song.truth.bpm).abs() < 0.04 * song.truth.bpm);
        assert_eq!(
            capture.complete_beats(),
            beats - 1,
            "the last beat stays open"
        );
        assert!(capture.bar_lines > before, "old scores are dropped");
        assert!(
            capture.pulse_warning().is_none(),
            "{:?}",
            capture.confidence
        );
        drop(capture);
        assert_eq!(wants_settling(&session), None, "nothing new to settle");

        // New audio, but a decision fixed the capture's id: the grid stays.
        let epoch = {
            let mut capture = lock(&session.capture);
            capture.append(&song.samples[..22_050 * 2]);
            capture.epoch
        };
        *lock(&session.track_id) = Some((epoch, "ab".into()));
        assert_eq!(wants_settling(&session), None);
        assert_eq!(settle(&session), Settled::Decided);
        // Nor can another tempo be asked for.
        assert_eq!(count_at(&session, 0.5), None);
        assert_eq!(lock(&session.capture).recount_pending(), None);
    }

    #[test]
    fn a_tempo_the_user_sets_is_settled_at_once_and_kept_as_the_capture_grows() {
        let (session, song) = captured(16.0);
        let Settled::Settled { beats, tempo_bpm } = settle(&session) else {
            panic!("settled");
        };
        assert_eq!(wants_settling(&session), None);
        // Half the tempo: the same audio is settled again, at the tempo asked for.
        let asked = lock(&session.capture).count_at(0.5).unwrap();
        assert!((asked - tempo_bpm / 2.0).abs() < 1e-9);
        assert!(
            !lock(&session.capture).is_settled(),
            "asked, not yet settled"
        );
        let wanted = wants_settling(&session).expect("a settle is wanted at the same length");
        let Settled::Settled {
            beats: half_beats,
            tempo_bpm: half_bpm,
        } = settle(&session)
        else {
            panic!("settled at half");
        };
        assert!(
            (half_bpm - song.truth.bpm / 2.0).abs() < 0.04 * song.truth.bpm,
            "{half_bpm}"
        );
        assert!(
            half_beats.abs_diff(beats / 2) <= 2,
            "{half_beats} of {beats}"
        );
        assert!(lock(&session.capture).is_settled());
        assert_eq!(wants_settling(&session), None);
        // More audio, and the tracker reporting its old level until its first beat at the
        // user's: the grid's tempo is still the user's, and the next settle keeps it.
        {
            let mut capture = lock(&session.capture);
            capture.append(&song.samples[..22_050 * 2 * 4]);
            capture.tempo_bpm = tempo_bpm;
            assert_eq!(capture.grid_tempo_bpm(), asked);
        }
        let grown = wants_settling(&session).unwrap();
        assert_ne!(grown, wanted);
        let Settled::Settled { tempo_bpm, .. } = settle(&session) else {
            panic!("settled again");
        };
        assert!(
            (tempo_bpm - half_bpm).abs() < 0.04 * half_bpm,
            "{tempo_bpm}"
        );
        // Back to twice that: the song's own tempo.
        lock(&session.capture).count_at(2.0).unwrap();
        let Settled::Settled { tempo_bpm, .. } = settle(&session) else {
            panic!("settled at double");
        };
        assert!(
            (tempo_bpm - song.truth.bpm).abs() < 0.04 * song.truth.bpm,
            "{tempo_bpm}"
        );
        // No tempo outside what a hint may be is asked for.
        let mut capture = lock(&session.capture);
        let asked = capture.recount();
        assert_eq!(capture.count_at(4.0), None, "464 BPM");
        assert_eq!(capture.recount(), asked);
        assert_eq!(capture.recount_pending(), None);
    }

    #[test]
    fn bar_lines_the_user_moves_hold_through_a_settle_until_a_decision_fixes_the_grid() {
        let (session, song) = captured(16.0);
        assert!(matches!(settle(&session), Settled::Settled { .. }));
        let near = |a: f64, b: f64| (a - b).abs() < 0.07;
        let on_truth = |times: &[f64]| {
            times
                .iter()
                .filter(|&&t| song.truth.downbeats.iter().any(|&d| near(t, d)))
                .count()
        };
        let settled = bar_times(&session);
        assert!(on_truth(&settled) + 1 >= settled.len(), "{settled:?}");
        // A beat later: every bar line moves to the beat after it, none on a true downbeat.
        assert!(move_bar_lines(&session, 1, None));
        let moved = bar_times(&session);
        assert_eq!(on_truth(&moved), 0, "{moved:?}");
        let beats = lock(&session.capture).grid.beats.clone();
        for t in &settled {
            let i = beats.iter().position(|b| b == t).unwrap();
            assert!(i + 1 == beats.len() || moved.contains(&beats[i + 1]), "{t}");
        }
        // Two seconds more of audio (the song's first two again), settled again: the bars are
        // still counted from the beat the user moved them to.
        lock(&session.capture).append(&song.samples[..22_050 * 2 * 2]);
        assert!(matches!(settle(&session), Settled::Settled { .. }));
        assert!(lock(&session.capture).bar_line_given());
        let again = bar_times(&session);
        assert_eq!(on_truth(&again), 0, "{again:?}");
        assert!(again.len() > moved.len());
        // A decision fixes the grid: the bar lines no longer move.
        let epoch = lock(&session.capture).epoch;
        *lock(&session.track_id) = Some((epoch, "ab".into()));
        assert!(!move_bar_lines(&session, -1, None));
        assert_eq!(bar_times(&session), again);
    }

    /// The times of the capture's bar lines.
    fn bar_times(session: &Session) -> Vec<f64> {
        let capture = lock(&session.capture);
        let grid = &capture.grid;
        grid.bar_starts().iter().map(|&i| grid.beats[i]).collect()
    }

    /// The share of the capture's beats from 3 s to `song`'s last beat within 70 ms of one of
    /// `truth`.
    fn share_of_beats_on(session: &Session, song: &cutscore_synth::Song, truth: &[f64]) -> f64 {
        let last = song.truth.beats[song.truth.beats.len() - 1];
        let capture = lock(&session.capture);
        let beats: Vec<f64> = capture
            .grid
            .beats
            .iter()
            .copied()
            .filter(|&t| t > 3.0 && t < last)
            .collect();
        let on = beats
            .iter()
            .filter(|&&b| truth.iter().any(|&t| (t - b).abs() < 0.07))
            .count();
        on as f64 / beats.len().max(1) as f64
    }

    /// A song's first 6 s captured and settled, ½ beat pressed at 3 s; and where the rest of
    /// its samples starts.
    fn six_seconds_moved_at_three() -> (Session, cutscore_synth::Song, usize) {
        let (session, song) = captured(16.0);
        assert!(song.truth.beats[song.truth.beats.len() - 1] > 20.0);
        let rest = 6 * 22_050 * 2;
        {
            let mut capture = lock(&session.capture);
            let mut first = Capture::new(capture.epoch, 22_050, 2);
            first.append(&song.samples[..rest]);
            for k in 0..(6.0 / 0.3) as usize {
                first.push_beat(0.3 * k as f64, (k % 4) as u8, 4, 0.0);
            }
            *capture = first;
        }
        assert!(matches!(settle(&session), Settled::Settled { .. }));
        assert!(move_half_beat(&session, Some(3.0)));
        (session, song, rest)
    }

    #[test]
    fn bar_lines_given_as_the_capture_grows_move_once_with_the_beats_the_settles_move() {
        // ½ beat at 3 s of the first 6 s; the music plays on, the streaming tracker reporting
        // the song's beats, and the user gives bar lines on them between settles.
        let (session, song, _) = six_seconds_moved_at_three();
        let half = 30.0 / song.truth.bpm;
        let play_on = |to_s: f64| {
            let mut capture = lock(&session.capture);
            let from = capture.audio.frames() * 2;
            let to = ((to_s * 22_050.0) as usize * 2).min(song.samples.len());
            capture.append(&song.samples[from..to]);
            let after_s = from as f64 / (2.0 * 22_050.0) + 0.5;
            for (k, &t) in song.truth.beats.iter().enumerate() {
                if t > after_s && t <= to_s && capture.push_beat(t, (k % 4) as u8, 4, 0.0) {
                    capture
                        .features
                        .extend_from_slice(&[0.0; cutscore_core::features::BEAT_FEATURES]);
                }
            }
        };
        // The bar line nearest `t`, if the grid has one within 70 ms.
        let bar_line_near = |t: f64| {
            bar_times(&session)
                .into_iter()
                .find(|b| (b - t).abs() < 0.07)
        };
        // Bar +1 at `t`: the bar line the user gave there, the new one nearest `t`.
        let give_bar_line = |t: f64| {
            let before = bar_times(&session);
            assert!(move_bar_lines(&session, 1, Some(t)));
            bar_times(&session)
                .into_iter()
                .filter(|b| before.iter().all(|a| (a - b).abs() > 0.07))
                .min_by(|a, b| (a - t).abs().total_cmp(&(b - t).abs()))
                .unwrap()
        };
        play_on(16.0);
        let at_12 = give_bar_line(12.0);
        assert!(matches!(settle(&session), Settled::Settled { .. }));
        assert!(lock(&session.capture).half_beat_moved(Some(14.0)));
        assert!(bar_line_near(at_12 + half).is_some(), "moved with its beat");
        // On to the end: a bar line on the beats streamed since, and ½ beat pressed there too
        // (the settle moved the stretch only as far as the capture went). The next settle
        // moves one stretch to the end, and each bar line once.
        play_on(30.0);
        // Out of phase with the bars counted from the first, so only it puts a bar line there:
        // Bar +1 twice.
        give_bar_line(20.0);
        let at_20 = give_bar_line(20.0);
        assert!(bar_line_near(at_20 - 2.0 * half).is_none(), "out of phase");
        assert!(!lock(&session.capture).half_beat_moved(Some(20.0)));
        assert!(move_half_beat(&session, Some(22.0)));
        assert_eq!(lock(&session.capture).half_beats_s().len(), 2);
        assert!(matches!(settle(&session), Settled::Settled { .. }));
        assert!(bar_line_near(at_20 + half).is_some(), "moved once");
        assert!(
            bar_line_near(at_12 + half).is_some(),
            "the first stays moved"
        );
        assert_eq!(lock(&session.capture).half_beats_s().len(), 1, "one move");
        // One press takes it back; the bar lines go back with their beats.
        assert!(move_half_beat(&session, Some(20.0)));
        assert!(matches!(settle(&session), Settled::Settled { .. }));
        let capture = lock(&session.capture);
        assert!(!capture.half_beat_moved(Some(20.0)) && !capture.half_beat_moved(Some(3.0)));
        drop(capture);
        assert!(bar_line_near(at_20).is_some(), "back with its beat");
        assert!(
            bar_line_near(at_12).is_some(),
            "the first back with its beat"
        );
    }

    #[test]
    fn beats_moved_half_a_beat_early_in_a_capture_are_marked_and_taken_back_as_it_grows() {
        // ½ beat pressed at 3 s of a capture 6 s long; the capture then grows to the whole
        // song, and the next settle moves the stretch as it now stands, to the end.
        let (session, song, rest) = six_seconds_moved_at_three();
        lock(&session.capture).append(&song.samples[rest..]);
        assert!(matches!(settle(&session), Settled::Settled { .. }));
        let beats = &song.truth.beats;
        let share_on = |truth: &[f64]| share_of_beats_on(&session, &song, truth);
        let halfway: Vec<f64> = beats.windows(2).map(|w| 0.5 * (w[0] + w[1])).collect();
        assert!(share_on(&halfway) > 0.95, "moved to the end of the capture");
        assert!(
            lock(&session.capture).half_beat_moved(Some(20.0)),
            "marked where the settle moved them, past where the press found the stretch"
        );
        // Pressed there, the move is taken back.
        assert!(move_half_beat(&session, Some(20.0)));
        assert!(matches!(settle(&session), Settled::Settled { .. }));
        assert!(share_on(beats) > 0.95);
        assert!(!lock(&session.capture).half_beat_moved(Some(20.0)));
        assert!(!lock(&session.capture).half_beat_moved(Some(3.0)));
    }

    #[test]
    fn beats_moved_half_a_beat_are_settled_between_the_songs_beats_and_back() {
        let (session, song) = captured(16.0);
        assert!(matches!(settle(&session), Settled::Settled { .. }));
        let share_on = |session: &Session, truth: &[f64]| share_of_beats_on(session, &song, truth);
        let beats = &song.truth.beats;
        let halfway: Vec<f64> = beats.windows(2).map(|w| 0.5 * (w[0] + w[1])).collect();
        assert!(share_on(&session, beats) > 0.95);
        // A bar line the user gave there moves with its beat.
        assert!(move_bar_lines(&session, 1, Some(8.0)));
        assert!(move_half_beat(&session, Some(8.0)));
        assert!(lock(&session.capture).half_beat_moved(Some(8.0)));
        assert!(
            wants_settling(&session).is_some(),
            "asked at the same length"
        );
        assert!(matches!(settle(&session), Settled::Settled { .. }));
        assert!(
            share_on(&session, &halfway) > 0.95,
            "{:?}",
            lock(&session.capture).grid.beats
        );
        let capture = lock(&session.capture);
        assert!(capture.is_settled() && capture.half_beat_moved(Some(8.0)));
        assert!(capture.bar_line_given(), "the bar line moved with its beat");
        assert!(
            capture.grid.bar_starts().len() >= 4,
            "bars on the new beats"
        );
        // The streaming tracker goes on from the moved grid's last beat, once.
        let last = capture.grid.len() - 1;
        let (key, time_s, place) = capture.counted_phase(None).expect("a phase to go on from");
        assert_eq!(
            (time_s, place),
            (capture.grid.beats[last], capture.grid.beat_in_bar[last])
        );
        assert_eq!(capture.counted_phase(Some(key)), None);
        drop(capture);
        // Pressed again: back where the tracker found them.
        assert!(move_half_beat(&session, Some(8.0)));
        assert!(matches!(settle(&session), Settled::Settled { .. }));
        assert!(share_on(&session, beats) > 0.95);
        assert!(!lock(&session.capture).half_beat_moved(Some(8.0)));
        assert!(lock(&session.capture).bar_line_given(), "and back");
        // A decision fixes the grid.
        let epoch = lock(&session.capture).epoch;
        *lock(&session.track_id) = Some((epoch, "ab".into()));
        assert!(!move_half_beat(&session, Some(8.0)));
    }

    #[test]
    fn a_capture_too_short_for_two_bars_settles_to_no_proposals() {
        let session = Session::new(None);
        session.new_capture(22_050, 2);
        let epoch = {
            let mut capture = lock(&session.capture);
            // A second and a half: too short for two bars, whatever is in it.
            capture.append(&vec![0.0; 2 * 22_050 * 3 / 2]);
            for k in 0..5 {
                capture.push_beat(0.3 * f64::from(k), (k % 4) as u8, 4, 0.0);
            }
            capture.epoch
        };
        lock(&session.proposals)
            .ranked
            .push(crate::session::Proposal {
                start: 4,
                end: 8,
                from_s: 1.2,
                to_s: 2.4,
                start_at: BarBeat { bar: 2, beat: 1 },
                resume_at: BarBeat { bar: 3, beat: 1 },
                bars: 1,
                score: 1.0,
                summary: None,
            });
        assert!(matches!(settle(&session), Settled::Settled { .. }));
        assert!(
            lock(&session.capture).scoring_view().is_none(),
            "no two bars in 1.5 s"
        );
        let shown = lock(&session.proposals);
        assert_eq!(shown.epoch, epoch);
        assert!(shown.ranked.is_empty(), "{:?}", shown.ranked);
    }

    #[test]
    fn ten_seconds_of_silence_settle_with_a_warning_that_no_pulse_was_found() {
        let session = Session::new(None);
        session.new_capture(22_050, 2);
        lock(&session.capture).append(&vec![0.0; 2 * 22_050 * 10]);
        assert!(
            lock(&session.capture).pulse_warning().is_none(),
            "nothing settled yet"
        );
        assert!(matches!(settle(&session), Settled::Settled { .. }));
        let warning = lock(&session.capture).pulse_warning();
        assert!(
            warning
                .as_deref()
                .is_some_and(|w| w.contains("No steady pulse")),
            "{warning:?}"
        );
    }

    #[test]
    fn a_settle_of_a_capture_that_grew_meanwhile_changes_nothing() {
        let (session, _) = captured(8.0);
        let analysis = {
            let capture = lock(&session.capture);
            let audio = capture.audio.snapshot();
            analyze_interleaved(
                audio.slices(0, audio.frames()),
                2,
                22_050,
                None,
                cutscore_analysis::TempoSource::Heard,
                &[],
            )
            .unwrap()
        };
        let mut capture = lock(&session.capture);
        let (frames, grid) = (capture.audio.frames(), capture.grid.clone());
        capture.append(&[0.0; 512]);
        let recount = capture.recount();
        assert!(!capture.settle(analysis.clone(), frames, recount));
        assert_eq!(capture.grid, grid);
        let frames = capture.audio.frames();
        let recount = capture.recount();
        assert!(capture.settle(analysis, frames, recount));
        // The streaming tracker's next beats: one at the settled last beat's heels is the
        // same beat, reported late, and refused; the next one is taken.
        let beats = &capture.grid.beats;
        let (last, period) = (beats[beats.len() - 1], beats[1] - beats[0]);
        assert!(!capture.push_beat(last + 0.1 * period, 0, 4, 0.0));
        assert!(capture.push_beat(last + period, 0, 4, 0.0));
    }
}
