//! The plugin's threads across the host's activation cycle, driven through [`Engine`] as the
//! plugin drives it, with a synthetic song fed through the audio tap in host-sized blocks:
//! a re-activation at the same rate keeps the capture; a new sample rate starts a new one and
//! says so; after Start over, the proposals are the new song's own scores; a meter change
//! keeps a grid that Accept can log; the host's bar line where the capture starts anchors its
//! bars until the playback jumps.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use candle_core::Device;
use cutscore_core::edit::Edit;
use cutscore_core::features::FeatureMatrix;
use cutscore_core::grid::BeatGrid;
use cutscore_core::prefs::{PrefsContents, Record, Verdict};
use cutscore_plugin::actions::decide;
use cutscore_plugin::editor::CutscoreEditor;
use cutscore_plugin::engine::{AudioEnds, Engine};
use cutscore_plugin::jobs::Job;
use cutscore_plugin::params::CutscoreParams;
use cutscore_plugin::session::{Capture, Proposal, Session, lock};
use cutscore_plugin::settle;
use cutscore_plugin::tap::{HostBar, HostPosition};
use cutscore_reward::scoring::{Track, score_edits};
use cutscore_synth::{Song, SongSpec, TempoChange, render};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use nice_plug_egui::RepaintNotifier;

const BLOCK: usize = 512;
const WAIT: Duration = Duration::from_secs(120);

fn song(seed: u64, seconds: f64, sample_rate: u32) -> Song {
    render(&steady(SongSpec::random(seed), seconds, sample_rate)).unwrap()
}

/// A song at 44.1 kHz at `bpm` throughout, in 4/4.
fn song_at(seed: u64, bpm: f64, seconds: f64) -> Song {
    let mut spec = SongSpec::random(seed);
    spec.bpm = bpm;
    spec.meter = 4;
    render(&steady(spec, seconds, 44_100)).unwrap()
}

/// `spec` at one tempo, without a quiet intro, `seconds` long.
fn steady(mut spec: SongSpec, seconds: f64, sample_rate: u32) -> SongSpec {
    spec.sample_rate = sample_rate;
    spec.tempo = TempoChange::Constant;
    spec.quiet_intro = false;
    spec.bars = spec.bars_for_seconds(seconds);
    spec
}

fn start(session: &Arc<Session>, sample_rate: u32) -> (Engine, AudioEnds) {
    Engine::start(
        session,
        &Arc::new(CutscoreParams::default()),
        &RepaintNotifier::new(),
        sample_rate,
        2,
    )
    .unwrap()
}

/// Plays `frames` of `song` from frame `from` through the tap, as a host does, without
/// outrunning the analysis (the ring holds 4 s), then waits until the capture holds it all.
fn play(session: &Session, audio: &mut AudioEnds, song: &Song, from: usize, frames: usize) {
    play_hosted(session, audio, song, from, frames, |_| {
        HostPosition::playing(true)
    });
}

/// [`play`] with the host's transport at each block, given the block's first frame.
fn play_hosted(
    session: &Session,
    audio: &mut AudioEnds,
    song: &Song,
    from: usize,
    frames: usize,
    host: impl Fn(usize) -> HostPosition,
) {
    let before = lock(&session.capture).audio.frames();
    let mut left = vec![0f32; BLOCK];
    let mut right = vec![0f32; BLOCK];
    for block in (from..from + frames).step_by(BLOCK) {
        let n = BLOCK.min(from + frames - block);
        for i in 0..n {
            left[i] = song.samples[2 * (block + i)];
            right[i] = song.samples[2 * (block + i) + 1];
        }
        let mut channels = [&mut left[..n], &mut right[..n]];
        while !audio.tap.capture_at(&channels, host(block)) {
            std::thread::sleep(Duration::from_millis(5));
        }
        audio.player.play(&mut channels, true);
    }
    wait_for("the capture to take the audio", || {
        lock(&session.capture).audio.frames() >= before + frames
    });
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < WAIT, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until the analysis has caught up with the audio played so far, the grid has been
/// settled over it (the audio stopped), and the scoring worker has published a complete
/// ranking of that final grid: every complete beat (at least `beats`), nothing pending, every
/// proposal where its beats are. A ranking published while the last blocks were still being
/// analysed, or before the settle, is not enough: the bars and beats may move, and with them
/// every score.
fn proposals(session: &Session, beats: usize) -> (u64, usize, Vec<Proposal>) {
    wait_for("proposals of the whole capture", || {
        let (epoch, complete, grid) = {
            let capture = lock(&session.capture);
            // `analyse_block` extends the grid to the audio's end after its last beat.
            if capture.grid.duration_s < capture.seconds() || !capture.is_settled() {
                return false;
            }
            (
                capture.epoch,
                capture.complete_beats(),
                capture.grid.clone(),
            )
        };
        let shown = lock(&session.proposals);
        let stands = |p: &Proposal| grid.beats.get(p.start) == Some(&p.from_s);
        shown.epoch == epoch
            && shown.beats == complete
            && shown.beats >= beats
            && !shown.ranked.is_empty()
            && shown.pending == 0
            && shown.ranked.iter().all(stands)
    });
    let shown = lock(&session.proposals);
    (shown.epoch, shown.beats, shown.ranked.clone())
}

#[test]
fn reactivation_at_the_same_rate_keeps_the_capture_and_a_new_rate_starts_a_new_one() {
    let session = Arc::new(Session::new(None));
    let music = song(3, 12.0, 44_100);
    let (engine, mut audio) = start(&session, 44_100);
    play(&session, &mut audio, &music, 0, 5 * 44_100);
    let epoch = lock(&session.capture).epoch;
    let beats = lock(&session.capture).grid.len();
    assert!(beats >= 4, "the tracker found {beats} beats in 5 s");

    // The host re-activates twice in a row (a buffer-size change, say).
    drop(audio);
    engine.stop();
    let (engine, audio) = start(&session, 44_100);
    drop(audio);
    engine.stop();
    let (engine, mut audio) = start(&session, 44_100);
    play(&session, &mut audio, &music, 5 * 44_100, 5 * 44_100);
    {
        let capture = lock(&session.capture);
        assert_eq!(capture.epoch, epoch, "the same capture carries on");
        assert_eq!(capture.audio.frames(), 10 * 44_100);
        assert!(
            capture.grid.len() > beats,
            "beats keep coming after the re-activation"
        );
        capture.grid.validate().unwrap();
    }
    assert!(lock(&session.message).is_none());

    drop(audio);
    engine.stop();
    let (_engine, _audio) = start(&session, 48_000);
    wait_for("the new capture", || lock(&session.capture).epoch != epoch);
    let capture = lock(&session.capture);
    assert_eq!(capture.audio.frames(), 0);
    assert_eq!(capture.audio.sample_rate, 48_000);
    let message = lock(&session.message).clone().unwrap_or_default();
    assert!(
        message.contains("44100") && message.contains("48000") && message.contains("new capture"),
        "{message}"
    );
}

#[test]
fn the_hosts_bar_line_where_the_capture_starts_anchors_its_bars_until_the_playback_jumps() {
    let session = Arc::new(Session::new(None));
    let music = song_at(3, 120.0, 16.0);
    let (_engine, mut audio) = start(&session, 44_100);
    // A project at the song's tempo in 4/4 (2 s bars), played from 0.25 s into its bar 3 ...
    let start_at = (4.25 * 44_100.0) as i64;
    let hosted = |pos: i64| HostPosition {
        playing: true,
        pos_samples: Some(pos),
        bar: Some(HostBar {
            since_bar_line_s: (pos as f64 / 44_100.0) % 2.0,
            tempo_bpm: 120.0,
        }),
    };
    let first = 10 * 44_100;
    play_hosted(&session, &mut audio, &music, 0, first, |frame| {
        hosted(start_at + frame as i64)
    });
    // ... and looped back to where it started.
    play_hosted(&session, &mut audio, &music, first, 4 * 44_100, |frame| {
        hosted(start_at + (frame - first) as i64)
    });
    let capture = lock(&session.capture);
    let anchor = capture
        .bar_anchor()
        .expect("the host's tempo is the song's");
    assert_eq!(
        anchor.time_s, -0.25,
        "the bar line before the capture's start"
    );
    assert!(
        (anchor.until_s - 10.0).abs() < 1e-9,
        "until the loop: {anchor:?}"
    );
}

#[test]
fn start_over_while_the_host_plays_anchors_the_new_captures_bars_on_the_hosts() {
    let session = Arc::new(Session::new(None));
    let music = song_at(3, 120.0, 20.0);
    let (bpm, bar_s) = (120.0, 2.0);
    let (_engine, mut audio) = start(&session, 44_100);
    // A project at the song's tempo in 4/4, played from 0.3 s into a bar, straight through.
    let start_at = (0.3 * 44_100.0) as i64;
    let hosted = |frame: usize| {
        let pos = start_at + frame as i64;
        HostPosition {
            playing: true,
            pos_samples: Some(pos),
            bar: Some(HostBar {
                since_bar_line_s: (pos as f64 / 44_100.0) % bar_s,
                tempo_bpm: bpm,
            }),
        }
    };
    let first = 6 * 44_100;
    play_hosted(&session, &mut audio, &music, 0, first, hosted);
    let old_epoch = lock(&session.capture).epoch;
    session.restart.store(true, Ordering::Release);
    wait_for("the restart", || lock(&session.capture).epoch != old_epoch);
    // Start over 6 s in, the host playing on: the new capture starts at the next block.
    play_hosted(&session, &mut audio, &music, first, 10 * 44_100, hosted);
    let capture = lock(&session.capture);
    assert_eq!(
        capture.audio.frames(),
        10 * 44_100,
        "nothing before the mark"
    );
    let anchor = capture
        .bar_anchor()
        .expect("the host said where its bars were when the new capture started");
    let since = ((start_at + first as i64) as f64 / 44_100.0) % bar_s;
    assert!(
        (anchor.time_s + since).abs() < 1e-9 && anchor.until_s == f64::INFINITY,
        "the host's bar line before the new capture's start: {anchor:?}, {since}"
    );
}

#[test]
fn in_a_project_at_half_the_songs_tempo_the_settled_grid_counts_the_projects_beats() {
    // A song at 148 BPM in a project at 74, whose bar lines (two of the song's bars each) fall
    // on the song's downbeats: the streaming tracker hears 148, the settled grid counts 74.
    let music = song_at(41, 148.0, 30.0);
    let host_bar_s = 4.0 * 60.0 / 74.0;
    let first_downbeat = music.truth.downbeats[0];
    let session = Arc::new(Session::new(None));
    let (_engine, mut audio) = start(&session, 44_100);
    play_hosted(&session, &mut audio, &music, 0, music.frames(), |frame| {
        let at_s = frame as f64 / 44_100.0;
        HostPosition {
            playing: true,
            pos_samples: Some(frame as i64),
            bar: Some(HostBar {
                since_bar_line_s: (at_s - first_downbeat).rem_euclid(host_bar_s),
                tempo_bpm: 74.0,
            }),
        }
    });
    wait_for("the grid to be settled", || {
        lock(&session.capture).is_settled()
    });
    let capture = lock(&session.capture);
    let beats: Vec<f64> = capture
        .grid
        .beats
        .iter()
        .copied()
        .filter(|&b| b > 3.0 && b < music.truth.beats.last().unwrap() + 0.1)
        .collect();
    let tempo = cutscore_core::grid::steady_tempo(&beats).unwrap_or(0.0);
    assert!((tempo - 74.0).abs() < 1.5, "settled at {tempo} BPM");
    assert!(
        beats
            .iter()
            .all(|b| music.truth.beats.iter().any(|t| (t - b).abs() < 0.07)),
        "on the song's beats: {beats:?}"
    );
    assert!(capture.on_host_grid(), "and its bars on the project's");
}

#[test]
fn half_tempo_asked_in_the_editor_settles_the_capture_again_at_half_its_tempo() {
    // The plugin's threads: a stopped capture of a 148 BPM song, then the editor's "½×".
    let music = song_at(41, 148.0, 30.0);
    let session = Arc::new(Session::new(None));
    let (_engine, mut audio) = start(&session, 44_100);
    play(&session, &mut audio, &music, 0, music.frames());
    wait_for("the grid to be settled", || {
        lock(&session.capture).is_settled()
    });
    let heard = lock(&session.capture).tempo_bpm;
    assert!((heard - 148.0).abs() < 3.0, "heard {heard} BPM");
    cutscore_plugin::settle::count_at(&session, 0.5).unwrap();
    wait_for("the grid to be settled at half the tempo", || {
        lock(&session.capture).is_settled()
    });
    let capture = lock(&session.capture);
    assert!(
        (capture.tempo_bpm - 74.0).abs() < 1.5,
        "{} BPM",
        capture.tempo_bpm
    );
    assert_on_the_songs_beats(&music, &capture.grid.beats);
}

/// Accepts cutting the second bar of the capture's first `beats` beats, as the editor does.
fn accept_second_bar(session: &Session, prefs: &std::path::Path, beats: usize) {
    let grid = lock(&session.capture).grid_prefix(beats);
    let positions = cutscore_editing::candidates::bar_beats(&grid);
    let downbeats = grid.bar_starts();
    let proposal = Proposal::on_grid(&grid, &positions, (downbeats[1], downbeats[2]), 1.0);
    decide(session, Some(prefs), beats, &proposal, &[], Verdict::Accept).unwrap();
}

/// All of `beats` but two on a beat of `music` (within 70 ms).
fn assert_on_the_songs_beats(music: &Song, beats: &[f64]) {
    let on_beats = beats
        .iter()
        .filter(|&&b| music.truth.beats.iter().any(|t| (t - b).abs() < 0.07))
        .count();
    assert!(
        on_beats + 2 >= beats.len(),
        "{on_beats} of {} on the song's beats",
        beats.len()
    );
}

#[test]
fn half_tempo_asked_while_playing_grows_the_grid_at_half_its_tempo() {
    // A 148 BPM song playing on; at 15 s the user asks for "½×" (no settle yet: the audio keeps
    // coming). The beats the capture grows by from then on come at 74 BPM, on the song's beats.
    let music = song_at(41, 148.0, 40.0);
    let session = Arc::new(Session::new(None));
    let (_engine, mut audio) = start(&session, 44_100);
    let ask_at = 15 * 44_100;
    let asked = std::cell::Cell::new(None);
    play_hosted(&session, &mut audio, &music, 0, music.frames(), |frame| {
        if frame >= ask_at && asked.get().is_none() {
            // Asked where the capture is at 15 s (it runs behind the tap), so the same every run.
            wait_until_captured(&session, frame);
            asked.set(Some(
                settle::count_at(&session, 0.5).expect("a tempo by 15 s"),
            ));
        }
        HostPosition::playing(true)
    });
    let beats = beats_before_settle(&session, 0);
    let asked = asked.get().unwrap();
    assert!((asked - 74.0).abs() < 2.0, "asked {asked} BPM");
    // From the capture's last bar line at the ask, one beat at 74 BPM at a time.
    assert_steady_after(&beats, 18.5, 60.0 / 74.0, 24, 2);
    let after: Vec<f64> = beats.into_iter().filter(|&t| t > 18.5).collect();
    assert_on_the_songs_beats(&music, &after);
}

/// The capture's beats as the music stopped, before the settle that follows (`SETTLE_AFTER`
/// later) replaced them; `settles` is how many settles it had before the music.
fn beats_before_settle(session: &Session, settles: u64) -> Vec<f64> {
    // `analyse_block` extends the grid to the audio's end after polling its last beats.
    wait_for("the last block's beats", || {
        let capture = lock(&session.capture);
        capture.grid.duration_s >= capture.seconds()
    });
    let capture = lock(&session.capture);
    assert_eq!(capture.settles, settles, "settled before the grid was read");
    capture.grid.beats.clone()
}

/// Waits until the capture holds `frames` frames (the analysis thread runs behind the tap).
fn wait_until_captured(session: &Session, frames: usize) {
    wait_for("the capture to catch up", || {
        lock(&session.capture).audio.frames() >= frames
    });
}

/// At least `at_least` beats of `beats` after `from_s`, each `period` after the one before
/// (within 10 %), but for at most `moves` gaps of one and a half periods: where the tracker,
/// counting at half a song's tempo, moves to the other half of its beats (the settle when the
/// music stops decides between them over the whole capture).
fn assert_steady_after(beats: &[f64], from_s: f64, period: f64, at_least: usize, moves: usize) {
    let after: Vec<f64> = beats.iter().copied().filter(|&t| t > from_s).collect();
    assert!(after.len() >= at_least, "{after:?}");
    let mut moved = 0;
    for pair in after.windows(2) {
        let gap = pair[1] - pair[0];
        let at = |periods: f64| (gap - periods * period).abs() < 0.1 * period;
        moved += usize::from(at(1.5));
        assert!(at(1.0) || at(1.5), "gap {gap:.3} s at {:.2} s", pair[1]);
    }
    assert!(moved <= moves, "moved {moved} times: {after:?}");
}

#[test]
fn half_tempo_asked_while_stopped_is_played_on_from_the_settled_phase() {
    // A 148 BPM song played for 20 s and stopped; "½×" settles it at 74; played on, the beats
    // the capture grows by go on from the settled grid's last beat, a 74 BPM beat at a time.
    let music = song_at(41, 148.0, 40.0);
    let session = Arc::new(Session::new(None));
    let (_engine, mut audio) = start(&session, 44_100);
    play(&session, &mut audio, &music, 0, 20 * 44_100);
    wait_for("the grid to be settled", || {
        lock(&session.capture).is_settled()
    });
    cutscore_plugin::settle::count_at(&session, 0.5).unwrap();
    wait_for("the grid to be settled at half the tempo", || {
        lock(&session.capture).is_settled()
    });
    let (last, settles) = {
        let capture = lock(&session.capture);
        (*capture.grid.beats.last().unwrap(), capture.settles)
    };
    play(&session, &mut audio, &music, 20 * 44_100, 20 * 44_100);
    let beats = beats_before_settle(&session, settles);
    // From the settled grid's last beat on: no beat in between, none skipped.
    assert_steady_after(&beats, last - 0.1, 60.0 / 74.0, 24, 0);
}

#[test]
fn a_decision_after_half_tempo_keeps_the_grid_growing_at_half_tempo() {
    // "½×" at 15 s while the 148 BPM song plays; a decision at 25 s fixes the capture's grid
    // before any settle took the tempo; the beats after it still come at 74 BPM.
    let music = song_at(41, 148.0, 40.0);
    let session = Arc::new(Session::new(None));
    let (_engine, mut audio) = start(&session, 44_100);
    let dir = tempfile::tempdir().unwrap();
    let (ask_at, decide_at) = (15 * 44_100, 25 * 44_100);
    let decided_at = std::cell::Cell::new(None);
    play_hosted(&session, &mut audio, &music, 0, music.frames(), |frame| {
        if frame == ask_at / BLOCK * BLOCK {
            wait_until_captured(&session, frame);
            settle::count_at(&session, 0.5).expect("a tempo by 15 s");
        }
        if frame >= decide_at && decided_at.get().is_none() {
            let beats = lock(&session.capture).complete_beats();
            accept_second_bar(&session, dir.path(), beats);
            decided_at.set(Some(lock(&session.capture).grid.beats[beats - 1]));
        }
        HostPosition::playing(true)
    });
    let beats = beats_before_settle(&session, 0);
    assert!(settle::grid_fixed(&session), "the decision fixed the grid");
    assert_steady_after(&beats, decided_at.get().unwrap(), 60.0 / 74.0, 14, 2);
}

#[test]
fn deactivation_does_not_wait_for_a_fit_and_drops_its_result() {
    let music = song(4, 40.0, 44_100);
    // The fit races the analysis thread's shutdown; on a loaded machine the fit may win, and
    // then its result rightly stands. Try again until deactivation catches it running (or
    // cancels it: the worker then ends at once).
    for attempt in 1..=4 {
        let session = Arc::new(Session::new(None));
        let (engine, mut audio) = start(&session, 44_100);
        play(&session, &mut audio, &music, 0, music.frames());
        proposals(&session, 32);
        assert!(session.request(Job::Fit { target_s: 30.0 }));
        drop(audio);
        let Some(worker) = engine.stop() else {
            // The worker had already finished: the fit was cancelled by the stop (nothing
            // stored), or it ran to the end before the stop (and rightly stands: try again).
            if lock(&session.fit).is_none() {
                return;
            }
            eprintln!("attempt {attempt}: the fit finished before deactivation");
            continue;
        };
        worker.join().unwrap();
        assert!(
            lock(&session.fit).is_none(),
            "the fit finished after deactivation and was dropped"
        );
        return;
    }
    panic!("in 4 attempts the fit always finished before the analysis thread stopped");
}

#[test]
fn after_start_over_the_proposals_are_the_new_songs_own_scores() {
    let session = Arc::new(Session::new(None));
    let (_engine, mut audio) = start(&session, 44_100);
    let first = song(5, 14.0, 44_100);
    play(&session, &mut audio, &first, 0, first.frames());
    let (old_epoch, _, old) = proposals(&session, 16);

    session.restart.store(true, Ordering::Release);
    wait_for("the restart", || lock(&session.capture).epoch != old_epoch);
    let second = song(9, 14.0, 44_100);
    play(&session, &mut audio, &second, 0, second.frames());
    let (epoch, beats, ranked) = proposals(&session, 16);
    assert_ne!(epoch, old_epoch);
    assert!(!old.is_empty());

    // Every published score is the shipped model's score of that cut on the new song (to the
    // rescoring tolerance: a score is kept until the track grows by 5 %, which moves the
    // `kept_fraction` input slightly; the old song's scores differ by whole points).
    let view = lock(&session.capture).scoring_view().unwrap();
    let grid = view.grid.clone();
    let grid = BeatGrid {
        beats: grid.beats[..beats].to_vec(),
        beat_in_bar: grid.beat_in_bar[..beats].to_vec(),
        duration_s: grid.time_of(beats),
        meter: grid.meter,
    };
    let width = cutscore_core::features::BEAT_FEATURES;
    let features =
        FeatureMatrix::new(beats, view.features.as_slice()[..beats * width].to_vec()).unwrap();
    let model = cutscore_reward::shipped::checkpoint()
        .unwrap()
        .model(&Device::Cpu)
        .unwrap();
    let edits: Vec<Edit> = ranked
        .iter()
        .map(|p| Edit::new(grid.len(), [(p.start, p.end)]).unwrap())
        .collect();
    let track = Track {
        features: &features,
        meter: grid.meter,
    };
    let scores = score_edits(&model, track, &edits, 64).unwrap();
    for (proposal, score) in ranked.iter().zip(scores) {
        assert!(
            (proposal.score - score).abs() < 0.05,
            "{proposal:?} scored {score} on the new song"
        );
    }
}

#[test]
fn a_meter_change_keeps_a_grid_that_accept_can_log() {
    let session = Session::new(None);
    let dir = tempfile::tempdir().unwrap();
    let music = song(7, 8.0, 44_100);
    {
        let mut capture = lock(&session.capture);
        *capture = Capture::new(1, 44_100, 2);
        capture.append(&music.samples);
        // Two bars of 4/4, then the tracker decides the song is in 3/4.
        for k in 0..8u8 {
            assert!(capture.push_beat(0.5 * f64::from(k), k % 4, 4, 0.0));
        }
        for k in 8..14u8 {
            assert!(capture.push_beat(0.5 * f64::from(k), (k - 8) % 3, 3, 0.0));
        }
        assert!(
            !capture.push_beat(1.0, 0, 3, 0.0),
            "a beat in the past is refused"
        );
        capture.grid.validate().unwrap();
        assert_eq!(capture.grid.meter, 3);
        assert_eq!(&capture.grid.beat_in_bar[6..], &[1, 2, 0, 1, 2, 0, 1, 2]);
        capture.features = vec![0.1; 13 * cutscore_core::features::BEAT_FEATURES];
    }
    accept_second_bar(&session, dir.path(), 13);
    let contents = PrefsContents::read(dir.path()).unwrap();
    let decisions = contents
        .records
        .iter()
        .filter(|r| matches!(r, Record::Decision(_)))
        .count();
    assert_eq!(decisions, 1);
}

#[test]
fn accept_and_render_of_a_nineteen_minute_capture_run_beside_the_audio_without_dropping_any() {
    const RATE: u32 = 22_050;
    let dir = tempfile::tempdir().unwrap();
    let session = Arc::new(Session::new(None));
    let params = Arc::new(CutscoreParams::default());
    *params.prefs_dir.write().unwrap() = Some(dir.path().join("prefs"));
    let (_engine, mut audio) = start(&session, RATE);
    wait_for("the capture", || lock(&session.capture).epoch > 0);

    // 19 minutes of a song looped, its beats on a 120 BPM grid: what a long session holds
    // (the capture's limit is 20, and the audio arriving meanwhile is still analysed).
    let music = song(12, 30.0, RATE);
    let seconds = 19.0 * 60.0;
    let beats = (seconds / 0.5) as usize - 1;
    let grid = BeatGrid::regular(0.0, 0.5, beats, 4, 0).unwrap();
    {
        let mut capture = lock(&session.capture);
        let frames = (seconds * f64::from(RATE)) as usize;
        let mut left = frames;
        while left > 0 {
            let n = left.min(music.frames());
            capture.append(&music.samples[..2 * n]);
            left -= n;
        }
        for (&t, &b) in grid.beats.iter().zip(&grid.beat_in_bar) {
            capture.push_beat(t, b, 4, 0.0);
        }
        capture.features = vec![0.0; (beats - 1) * cutscore_core::features::BEAT_FEATURES];
        // This grid is the one to decide on: no settle over the 19 minutes while the test
        // sets up the editor (playing on does not settle, and a decision fixes the grid).
        capture.settled_frames = capture.audio.frames();
    }
    let view = lock(&session.capture).grid_prefix(beats - 1);
    let positions = cutscore_editing::candidates::bar_beats(&view);
    let bars = view.bar_starts();
    let cut = Proposal::on_grid(&view, &positions, (bars[100], bars[300]), 1.0);
    {
        let mut shown = lock(&session.proposals);
        shown.beats = view.len();
        shown.ranked = vec![cut.clone()];
    }

    let renders = dir.path().join("renders");
    let editor = CutscoreEditor::new(params, session.clone()).with_output_dir(renders.clone());
    let mut harness =
        Harness::new_ui_state(|ui, editor: &mut CutscoreEditor| editor.show(ui), editor);
    harness.step();
    harness.get_by_label("1").click();
    harness.step();
    harness.get_by_label("Accept").click();
    harness.step();
    assert!(
        !session.busy().is_empty(),
        "the click returned while the decision is still being written"
    );
    // Audio keeps arriving, in real-time-sized blocks, while the jobs run.
    let live = song(13, 60.0, RATE);
    let mut at = 0;
    let mut keep_playing = |session: &Session, audio: &mut AudioEnds| {
        let mut left = vec![0f32; BLOCK];
        let mut right = vec![0f32; BLOCK];
        for i in 0..BLOCK {
            left[i] = live.samples[2 * ((at + i) % live.frames())];
            right[i] = live.samples[2 * ((at + i) % live.frames()) + 1];
        }
        at += BLOCK;
        let mut channels = [&mut left[..], &mut right[..]];
        audio.tap.capture(&channels, true);
        audio.player.play(&mut channels, true);
        std::thread::sleep(Duration::from_secs_f64(BLOCK as f64 / f64::from(RATE)));
        !session.busy().is_empty()
    };
    let started = Instant::now();
    while keep_playing(&session, &mut audio) {
        assert!(started.elapsed() < WAIT, "the decision never finished");
        harness.step();
    }
    harness.step();
    assert_eq!(harness.state().accepted(), &[(cut.start, cut.end)]);

    harness.get_by_label("Render").click();
    harness.step();
    assert!(
        !session.busy().is_empty(),
        "the render runs in the background"
    );
    while keep_playing(&session, &mut audio) {
        assert!(started.elapsed() < WAIT, "the render never finished");
        harness.step();
    }
    harness.step();
    let message = lock(&session.message).clone().unwrap_or_default();
    assert!(message.starts_with("Rendered"), "{message}");
    assert_eq!(
        session.tap.dropped_frames.load(Ordering::Relaxed),
        0,
        "the analysis kept up with the audio while the jobs ran"
    );
    let wav = std::fs::read_dir(&renders)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let rendered = f64::from(hound::WavReader::open(&wav).unwrap().duration()) / f64::from(RATE);
    let removed = cut.to_s - cut.from_s;
    let heard = lock(&session.capture).seconds();
    assert!(
        seconds - removed <= rendered && rendered <= heard - removed,
        "rendered {rendered:.1} s of {heard:.1} s less a {removed:.1} s cut"
    );
}

#[test]
fn decisions_on_one_capture_pair_however_long_it_had_grown() {
    let session = Session::new(None);
    let dir = tempfile::tempdir().unwrap();
    let width = cutscore_core::features::BEAT_FEATURES;
    let grid = BeatGrid::regular(0.0, 0.5, 76, 4, 0).unwrap();
    let grow_to = |music: &Song, beats: usize| {
        let mut capture = lock(&session.capture);
        let frames = ((grid.time_of(beats) + 0.25) * 44_100.0) as usize;
        let have = capture.audio.frames();
        capture.append(&music.samples[2 * have..2 * frames]);
        for b in capture.grid.len()..=beats {
            capture.push_beat(grid.beats[b], grid.beat_in_bar[b], 4, 0.0);
        }
        let rows = capture.features.len() / width;
        capture
            .features
            .extend((rows..beats).flat_map(|beat| vec![beat as f32 / 100.0; width]));
    };
    session.new_capture(44_100, 2);
    let decide_on = |beats: usize, span: (usize, usize), verdict| {
        let view = lock(&session.capture).grid_prefix(beats);
        let positions = cutscore_editing::candidates::bar_beats(&view);
        let proposal = Proposal::on_grid(&view, &positions, span, 0.0);
        decide(&session, Some(dir.path()), beats, &proposal, &[], verdict).unwrap()
    };
    let music = song(8, 40.0, 44_100);
    grow_to(&music, 40);
    let first = decide_on(40, (8, 16), Verdict::Accept);
    grow_to(&music, 72);
    let second = decide_on(72, (32, 40), Verdict::Reject);
    assert_eq!(first.track, second.track, "one capture, one track");

    let contents = PrefsContents::read(dir.path()).unwrap();
    assert!(
        contents.report.skipped.is_empty(),
        "{:?}",
        contents.report.skipped
    );
    assert_eq!(contents.tracks[&first.track].grid.len(), 72);
    let pairs = cutscore_core::prefs::pairs_from_records(&contents.records);
    assert_eq!(pairs.len(), 1, "the accept and the reject pair");

    // A new capture of other audio is another track; of the same audio (the host played the
    // same bars again after Start over), the same one.
    session.new_capture(44_100, 2);
    grow_to(&song(9, 40.0, 44_100), 40);
    let other = decide_on(40, (8, 16), Verdict::Accept);
    assert_ne!(other.track, first.track);
    session.new_capture(44_100, 2);
    grow_to(&music, 40);
    let again = decide_on(40, (12, 20), Verdict::Reject);
    assert_eq!(again.track, first.track);
}

/// Beat F of `beats` against `truth` (mir_eval's rules: the first 5 s left out).
fn beat_f(truth: &[f64], beats: &[f64]) -> f64 {
    use cutscore_analysis::metrics::{f_measure, trim_beats};
    f_measure(&trim_beats(truth), &trim_beats(beats)).unwrap()
}

#[test]
fn when_the_music_stops_the_grid_is_settled_over_the_whole_capture() {
    use cutscore_plugin::actions::ActionError;

    // The streaming tracker's hard case (trainer/tests/analyze.rs): 120 BPM stepping to 99,
    // where it reports eighth notes for a while after the step.
    let mut spec = SongSpec::random(5);
    spec.sample_rate = 44_100;
    spec.bpm = 120.0;
    spec.meter = 4;
    spec.bars = 14;
    spec.tempo = TempoChange::Step {
        at_bar: 6,
        to_bpm: 99.0,
    };
    spec.quiet_intro = false;
    let music = render(&spec).unwrap();
    let session = Arc::new(Session::new(None));
    let (engine, mut audio) = start(&session, 44_100);
    let half = music.frames() * 5 / 6;
    play(&session, &mut audio, &music, 0, half);
    let streaming = lock(&session.capture).grid.beats.clone();

    wait_for("the grid to be settled", || {
        let capture = lock(&session.capture);
        capture.is_settled()
    });
    let offline = cutscore_analysis::analyze_interleaved(
        music.samples[..2 * half].chunks(2 * 4096),
        2,
        44_100,
        None,
        cutscore_analysis::TempoSource::Heard,
        &[],
    )
    .unwrap();
    let (grid, features) = {
        let capture = lock(&session.capture);
        (capture.grid.clone(), capture.features.clone())
    };
    assert_eq!(
        grid.beats, offline.grid.beats,
        "the offline tracker's beats"
    );
    assert_eq!(grid.beat_in_bar, offline.grid.beat_in_bar, "and its bars");
    let rows = grid.len() - 1;
    assert_eq!(
        features,
        offline.features.as_slice()[..rows * cutscore_core::features::BEAT_FEATURES],
        "its features, the last beat left open"
    );
    let truth: Vec<f64> = music
        .truth
        .beats
        .iter()
        .copied()
        .filter(|&t| t < half as f64 / 44_100.0)
        .collect();
    let (before, after) = (beat_f(&truth, &streaming), beat_f(&truth, &grid.beats));
    eprintln!("beat F {before:.3} streaming, {after:.3} settled");
    assert!(
        after > 0.9 && after > before,
        "beat F {before:.3} streaming, {after:.3} settled"
    );

    // Proposals of the settled grid; one scored on the streaming grid is refused.
    let (_, beats, shown) = proposals(&session, rows);
    assert_eq!(beats, rows);
    let stale = Proposal {
        from_s: shown[0].from_s + 0.05,
        ..shown[0].clone()
    };
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        decide(
            &session,
            Some(dir.path()),
            beats,
            &stale,
            &[],
            Verdict::Accept
        ),
        Err(ActionError::MovedBeats)
    ));

    // Playing on: the streaming tracker continues the settled grid, no beat doubled at the
    // seam.
    play(&session, &mut audio, &music, half, music.frames() - half);
    let seam = lock(&session.capture).grid.beats.clone();
    let period = 60.0 / 99.0;
    let joined: Vec<f64> = seam
        .windows(2)
        .filter(|w| w[1] > grid.beats[rows] - 2.0)
        .map(|w| w[1] - w[0])
        .collect();
    assert!(
        joined.len() > 4 && joined.iter().all(|&g| (g - period).abs() < 0.25 * period),
        "beats {period:.3} s apart across the seam: {joined:?}"
    );
    wait_for("the grid to be settled again", || {
        let capture = lock(&session.capture);
        capture.is_settled()
    });
    let (_, beats, shown) = proposals(&session, rows + 4);
    let logged = decide(
        &session,
        Some(dir.path()),
        beats,
        &shown[0],
        &[],
        Verdict::Accept,
    );
    assert!(logged.is_ok(), "{logged:?}");
    let whole = lock(&session.capture).grid.clone();
    assert!(beat_f(&music.truth.beats, &whole.beats) > 0.9);

    // A decision fixes the grid: more audio is tracked on, never settled again.
    let settled = lock(&session.capture).settled_frames;
    play(&session, &mut audio, &music, 0, 44_100 * 4);
    std::thread::sleep(settle::SETTLE_AFTER * 3);
    let capture = lock(&session.capture);
    assert_eq!(capture.settled_frames, settled);
    assert!(capture.grid.len() > whole.len());
    assert_eq!(&capture.grid.beats[..whole.len()], &whole.beats[..]);
    drop(capture);
    drop(engine);
}
