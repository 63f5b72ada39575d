//! The plugin's threads across the host's activation cycle, driven through [`Engine`] as the
//! plugin drives it, with a synthetic song fed through the audio tap in host-sized blocks:
//! a re-activation at the same rate keeps the capture; a new sample rate starts a new one and
//! says so; after Start over, the proposals are the new song's own scores; a meter change
//! keeps a grid that Accept can log.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use candle_core::Device;
use cutscore_model::edit::Edit;
use cutscore_model::features::FeatureMatrix;
use cutscore_model::grid::BeatGrid;
use cutscore_model::prefs::{PrefsContents, Record, Verdict};
use cutscore_model::reward::scoring::{Track, score_edits};
use cutscore_model::synth::{Song, SongSpec, TempoChange, render};
use cutscore_plugin::actions::decide;
use cutscore_plugin::engine::{AudioEnds, Engine};
use cutscore_plugin::jobs::Job;
use cutscore_plugin::params::CutscoreParams;
use cutscore_plugin::session::{Capture, Proposal, Session, lock};
use nice_plug_egui::RepaintNotifier;

const BLOCK: usize = 512;
const WAIT: Duration = Duration::from_secs(120);

fn song(seed: u64, seconds: f64, sample_rate: u32) -> Song {
    let mut spec = SongSpec::random(seed);
    spec.sample_rate = sample_rate;
    spec.tempo = TempoChange::Constant;
    spec.quiet_intro = false;
    spec.bars = spec.bars_for_seconds(seconds);
    render(&spec).unwrap()
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
        while !audio.tap.capture(&channels, true) {
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

/// Waits for proposals of the capture's current epoch over at least `beats` beats.
fn proposals(session: &Session, beats: usize) -> (u64, usize, Vec<Proposal>) {
    wait_for("proposals", || {
        let epoch = lock(&session.capture).epoch;
        let shown = lock(&session.proposals);
        shown.epoch == epoch
            && shown.beats >= beats
            && !shown.ranked.is_empty()
            && shown.pending == 0
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
fn deactivation_does_not_wait_for_a_fit_and_drops_its_result() {
    let session = Arc::new(Session::new(None));
    let (engine, mut audio) = start(&session, 44_100);
    let music = song(4, 40.0, 44_100);
    play(&session, &mut audio, &music, 0, music.frames());
    proposals(&session, 32);
    assert!(session.request(Job::Fit { target_s: 30.0 }));
    drop(audio);
    let worker = engine
        .stop()
        .expect("the worker is still fitting when the analysis thread has stopped");
    worker.join().unwrap();
    assert!(
        lock(&session.fit).is_none(),
        "the fit finished after deactivation and was dropped"
    );
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
    let width = cutscore_model::features::BEAT_FEATURES;
    let features =
        FeatureMatrix::new(beats, view.features.as_slice()[..beats * width].to_vec()).unwrap();
    let model = cutscore_model::shipped::checkpoint()
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
            assert!(capture.push_beat(0.5 * f64::from(k), k % 4, 4));
        }
        for k in 8..14u8 {
            assert!(capture.push_beat(0.5 * f64::from(k), (k - 8) % 3, 3));
        }
        assert!(
            !capture.push_beat(1.0, 0, 3),
            "a beat in the past is refused"
        );
        capture.grid.validate().unwrap();
        assert_eq!(capture.grid.meter, 3);
        assert_eq!(&capture.grid.beat_in_bar[6..], &[1, 2, 0, 1, 2, 0, 1, 2]);
        capture.features = vec![0.1; 13 * cutscore_model::features::BEAT_FEATURES];
    }
    let grid = lock(&session.capture).grid_prefix(13);
    let positions = cutscore_model::editing::candidates::bar_beats(&grid);
    let downbeats = grid.bar_starts();
    let proposal = Proposal::on_grid(&grid, &positions, (downbeats[1], downbeats[2]), 1.0);
    decide(
        &session,
        Some(dir.path()),
        13,
        &proposal,
        &[],
        Verdict::Accept,
    )
    .unwrap();
    let contents = PrefsContents::read(dir.path()).unwrap();
    let decisions = contents
        .records
        .iter()
        .filter(|r| matches!(r, Record::Decision(_)))
        .count();
    assert_eq!(decisions, 1);
}
