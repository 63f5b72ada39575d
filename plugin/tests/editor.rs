//! The editor's buttons, driven through egui_kittest on a real analysed synthetic song:
//! Accept and Reject each append exactly one valid decision to the prefs log (with the track's
//! analysis saved once), and Render writes a WAV of the edited length; the header says when the
//! bars stand on the host's grid.

use std::path::Path;
use std::sync::Arc;

use cutscore_analysis::analyze_samples;
use cutscore_core::prefs::{PrefsContents, Record, Verdict};
use cutscore_core::taste::track_mean;
use cutscore_editing::candidates::bar_beats;
use cutscore_plugin::editor::{CutscoreEditor, minutes_seconds, parse_minutes_seconds, plural};
use cutscore_plugin::params::CutscoreParams;
use cutscore_plugin::session::{Capture, Proposal, Session, lock};
use cutscore_plugin::tap::HostBar;
use cutscore_plugin::teach;
use cutscore_synth::{SongSpec, render};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;

/// A session holding 24 s of an analysed synthetic song and three proposals on its bars.
fn session_with_song() -> (Arc<Session>, Vec<Proposal>) {
    let session = Arc::new(Session::new(None));
    let proposals = feed_song(&session);
    (session, proposals)
}

/// Puts 24 s of an analysed synthetic song and three proposals on its bars into `session`.
fn feed_song(session: &Session) -> Vec<Proposal> {
    let mut spec = SongSpec::random(11);
    spec.sample_rate = 44_100;
    spec.bars = spec.bars_for_seconds(24.0);
    let song = render(&spec).unwrap();
    let analysis = analyze_samples(&song.mono(), song.sample_rate).unwrap();
    let grid = analysis.grid;
    let downbeats = grid.bar_starts();
    assert!(
        downbeats.len() >= 6,
        "the song needs bars to cut: {}",
        downbeats.len()
    );
    let positions = bar_beats(&grid);
    let mean = track_mean(&analysis.features);
    let proposals: Vec<Proposal> = [(1, 2, 1.5f32), (2, 4, 0.5), (3, 4, -2.0)]
        .into_iter()
        .map(|(a, b, score)| {
            let mut p = Proposal::on_grid(&grid, &positions, (downbeats[a], downbeats[b]), score);
            p.summarise(&analysis.features, &mean, grid.len(), grid.meter);
            p
        })
        .collect();
    {
        let mut capture = lock(&session.capture);
        *capture = Capture::new(1, song.sample_rate, song.channels);
        capture.append(&song.samples);
        capture.features = analysis.features.as_slice().to_vec();
        capture.grid = grid.clone();
        capture.tempo_bpm = analysis.tempo_bpm;
    }
    {
        let mut shown = lock(&session.proposals);
        shown.beats = grid.len();
        shown.ranked = proposals.clone();
    }
    proposals
}

/// An editor over [`session_with_song`] that logs decisions to `prefs`, after its first frame.
fn editor_logging_to(
    prefs: &Path,
) -> (
    Harness<'static, CutscoreEditor>,
    Arc<Session>,
    Vec<Proposal>,
) {
    let (session, proposals) = session_with_song();
    let params = Arc::new(CutscoreParams::default());
    *params.prefs_dir.write().unwrap() = Some(prefs.to_path_buf());
    let editor = CutscoreEditor::new(params, session.clone());
    let mut harness =
        Harness::new_ui_state(|ui, editor: &mut CutscoreEditor| editor.show(ui), editor);
    harness.run();
    (harness, session, proposals)
}

/// Runs frames until the background actions the last click started have finished, and one
/// more so the editor takes their outcome.
fn settle(harness: &mut Harness<'_, CutscoreEditor>, session: &Session) {
    let started = std::time::Instant::now();
    harness.step();
    while !session.busy().is_empty() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "still busy: {:?}",
            session.busy()
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    harness.run();
}

fn decisions(prefs: &Path) -> Vec<(Verdict, (usize, usize))> {
    let contents = PrefsContents::read(prefs).unwrap();
    assert_eq!(contents.report.skipped.len(), 0, "every line is valid");
    contents
        .records
        .iter()
        .map(|r| match r {
            Record::Decision(d) => {
                let span = d.edit.removed()[0];
                (d.verdict, (span.start, span.end))
            }
            other => panic!("unexpected record {other:?}"),
        })
        .collect()
}

#[test]
fn accept_and_reject_each_log_one_decision_and_render_writes_the_edited_length() {
    let dir = tempfile::tempdir().unwrap();
    let prefs = dir.path().join("prefs");
    let renders = dir.path().join("renders");
    let (session, proposals) = session_with_song();
    let params = Arc::new(CutscoreParams::default());
    *params.prefs_dir.write().unwrap() = Some(prefs.clone());
    let editor = CutscoreEditor::new(params, session.clone()).with_output_dir(renders.clone());
    let mut harness =
        Harness::new_ui_state(|ui, editor: &mut CutscoreEditor| editor.show(ui), editor);
    harness.run();

    // Nothing is selected until the user chooses: the buttons wait for a row.
    harness.get_by_label("Accept").click();
    settle(&mut harness, &session);
    assert!(PrefsContents::read(&prefs).is_err() || decisions(&prefs).is_empty());
    harness.get_by_label("1").click();
    harness.run();
    harness.get_by_label("Accept").click();
    settle(&mut harness, &session);
    let best = (proposals[0].start, proposals[0].end);
    assert_eq!(decisions(&prefs), vec![(Verdict::Accept, best)]);
    let contents = PrefsContents::read(&prefs).unwrap();
    assert_eq!(
        contents.tracks.len(),
        1,
        "the track's analysis is saved once"
    );
    let track = contents.tracks.values().next().unwrap();
    track.validate().unwrap();
    assert_eq!(track.grid.len(), lock(&session.capture).complete_beats());
    assert_eq!(harness.state().accepted(), &[best]);

    harness.get_by_label("Reject").click();
    settle(&mut harness, &session);
    assert_eq!(
        decisions(&prefs),
        vec![(Verdict::Accept, best), (Verdict::Reject, best)]
    );
    assert_eq!(PrefsContents::read(&prefs).unwrap().tracks.len(), 1);

    harness.get_by_label("Render").click();
    settle(&mut harness, &session);
    let wavs: Vec<_> = std::fs::read_dir(&renders)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wav"))
        .collect();
    assert_eq!(wavs.len(), 1, "one render: {wavs:?}");
    let reader = hound::WavReader::open(&wavs[0]).unwrap();
    let spec = reader.spec();
    assert_eq!((spec.sample_rate, spec.channels), (44_100, 2));
    let seconds = f64::from(reader.duration()) / 44_100.0;
    let captured = lock(&session.capture).seconds();
    let expected = captured - (proposals[0].to_s - proposals[0].from_s);
    assert!(
        (seconds - expected).abs() < 0.05,
        "rendered {seconds:.3} s; expected {expected:.3} s"
    );
}

#[test]
fn the_header_says_when_the_bars_are_on_the_hosts_grid() {
    let (session, _) = session_with_song();
    let editor = CutscoreEditor::new(Arc::new(CutscoreParams::default()), session.clone());
    let mut harness =
        Harness::new_ui_state(|ui, editor: &mut CutscoreEditor| editor.show(ui), editor);
    harness.run();
    let on_host_grid = |harness: &Harness<'_, CutscoreEditor>| {
        harness
            .query_by_label_contains("bars on the host's grid")
            .is_some()
    };
    assert!(!on_host_grid(&harness), "no host said where its bars are");
    {
        // The host's playback started a whole number of beats before the first beat found, at
        // the tracked tempo.
        let mut capture = lock(&session.capture);
        let beats = &capture.grid.beats;
        let period = (beats[8] - beats[0]) / 8.0;
        let since_bar_line_s = (beats[0] / period).ceil() * period - beats[0];
        let tempo_bpm = capture.tempo_bpm;
        capture.start_segment(
            0.0,
            Some(HostBar {
                since_bar_line_s,
                tempo_bpm,
            }),
        );
    }
    harness.run();
    assert!(on_host_grid(&harness));
}

#[test]
fn decisions_to_an_unwritable_folder_report_and_log_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("not-a-folder");
    let contents = b"a file where the prefs folder should be";
    std::fs::write(&blocker, contents).unwrap();
    let (mut harness, session, _) = editor_logging_to(&blocker.join("prefs"));
    harness.get_by_label("1").click();
    harness.run();
    harness.get_by_label("Accept").click();
    settle(&mut harness, &session);
    let message = lock(&session.message).clone().unwrap();
    assert!(message.starts_with("Not logged"), "{message}");
    assert!(harness.state().accepted().is_empty());
    assert_eq!(std::fs::read(&blocker).unwrap(), contents);
}

#[test]
fn an_editor_opened_before_any_audio_aims_the_fit_at_the_default_target() {
    let session = Arc::new(Session::new(None));
    let params = Arc::new(CutscoreParams::default());
    let editor = CutscoreEditor::new(params.clone(), session.clone());
    let mut harness =
        Harness::new_ui_state(|ui, editor: &mut CutscoreEditor| editor.show(ui), editor);
    harness.run();
    assert_eq!(harness.state().typed_fit_target(), None);

    feed_song(&session);
    harness.run();
    assert_eq!(
        harness.state().typed_fit_target(),
        None,
        "nothing the user typed: the target follows the capture"
    );
    let captured = lock(&session.capture).seconds();
    let expected = minutes_seconds(captured * f64::from(params.fit_target.value()));
    assert_ne!(expected, "0:01");
    let field = harness.get_by_label("Target length");
    let shown = field.value().unwrap_or_default();
    assert_eq!(shown, expected, "the field shows 75 % of {captured:.1} s");
}

#[test]
fn lengths_read_as_minutes_and_seconds() {
    assert_eq!(minutes_seconds(185.4), "3:05");
    assert_eq!(parse_minutes_seconds("3:05"), Some(185.0));
    assert_eq!(parse_minutes_seconds(" 2:30.5 "), Some(150.5));
    assert_eq!(parse_minutes_seconds("95"), Some(95.0));
    assert_eq!(parse_minutes_seconds("1:75"), None);
    assert_eq!(parse_minutes_seconds("-3"), None);
    assert_eq!(parse_minutes_seconds("soon"), None);
}

#[test]
fn keys_select_accept_and_reject_one_decision_each() {
    let dir = tempfile::tempdir().unwrap();
    let prefs = dir.path().join("prefs");
    let (mut harness, session, proposals) = editor_logging_to(&prefs);
    // Down selects the first row, down again the second; A accepts it.
    harness.key_press(egui::Key::ArrowDown);
    harness.run();
    harness.key_press(egui::Key::ArrowDown);
    harness.run();
    harness.key_press(egui::Key::A);
    settle(&mut harness, &session);
    let second = (proposals[1].start, proposals[1].end);
    assert_eq!(decisions(&prefs), vec![(Verdict::Accept, second)]);
    // Up goes back to the first; R rejects it.
    harness.key_press(egui::Key::ArrowUp);
    harness.run();
    harness.key_press(egui::Key::R);
    settle(&mut harness, &session);
    let first = (proposals[0].start, proposals[0].end);
    assert_eq!(
        decisions(&prefs),
        vec![(Verdict::Accept, second), (Verdict::Reject, first)]
    );
}

#[test]
fn undo_takes_back_an_accept_with_a_record_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let prefs = dir.path().join("prefs");
    let (mut harness, session, proposals) = editor_logging_to(&prefs);
    harness.get_by_label("1").click();
    harness.run();
    harness.get_by_label("Accept").click();
    settle(&mut harness, &session);
    let best = (proposals[0].start, proposals[0].end);
    assert_eq!(harness.state().accepted(), &[best]);
    harness.get_by_label("Undo").click();
    settle(&mut harness, &session);
    assert!(
        harness.state().accepted().is_empty(),
        "the cut left the edit"
    );
    let contents = PrefsContents::read(&prefs).unwrap();
    assert_eq!(
        (contents.report.decisions, contents.report.undos),
        (1, 1),
        "the log keeps the decision and adds the undo"
    );
    assert!(
        matches!(contents.records.last(), Some(Record::Undo(u)) if u.edit.removed()[0].start == best.0)
    );
}

#[test]
fn revert_and_reset_switch_the_user_model_files_and_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model.safetensors");
    let previous = cutscore_reward::user_model::backup_path(&model);
    let session = Arc::new(Session::new(Some(model.clone())));
    let editor = CutscoreEditor::new(Arc::new(CutscoreParams::default()), session.clone());
    let mut harness =
        Harness::new_ui_state(|ui, editor: &mut CutscoreEditor| editor.show(ui), editor);
    harness.run();
    assert!(
        harness
            .query_by_label("Reset to the shipped model")
            .is_none(),
        "no model of the user's, nothing to reset"
    );

    std::fs::write(&model, b"fine-tuned twice").unwrap();
    std::fs::write(&previous, b"fine-tuned once").unwrap();
    harness.run();
    harness.get_by_label("Revert to previous model").click();
    harness.run();
    assert_eq!(std::fs::read(&model).unwrap(), b"fine-tuned once");
    assert_eq!(std::fs::read(&previous).unwrap(), b"fine-tuned twice");
    let message = lock(&session.message).clone().unwrap_or_default();
    assert!(message.contains("previous model"), "{message}");

    harness.get_by_label("Reset to the shipped model").click();
    harness.run();
    assert!(!model.exists(), "the shipped model scores");
    assert_eq!(std::fs::read(&previous).unwrap(), b"fine-tuned once");
    assert!(
        harness
            .query_by_label("Reset to the shipped model")
            .is_none()
    );
    let message = lock(&session.message).clone().unwrap_or_default();
    assert!(message.contains("shipped model"), "{message}");
}

/// "Learn from my decisions" runs the trainer it was given (here a stand-in script that writes
/// the model file and a report, as `trainer finetune --json` does) and says what it learned.
#[cfg(unix)]
#[test]
fn learn_runs_the_trainer_in_the_background_and_reports_its_result() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model.safetensors");
    let trainer = dir.path().join("trainer");
    std::fs::write(
        &trainer,
        "#!/bin/sh\n[ \"$1\" = finetune ] && [ \"$3\" = --out ] || exit 2\n\
         echo '[INFO  trainer] scoring your edits' >&2\n\
         printf learned > \"$4\"\n\
         echo '{\"user_pairs\": 40, \"user_songs\": 4, \"user_agreement_before\": 0.5, \"user_agreement_after\": 0.9}'\n",
    )
    .unwrap();
    std::fs::set_permissions(&trainer, std::fs::Permissions::from_mode(0o755)).unwrap();
    let session = Arc::new(Session::new(Some(model.clone())));
    let params = Arc::new(CutscoreParams::default());
    *params.prefs_dir.write().unwrap() = Some(dir.path().join("prefs"));
    let editor = CutscoreEditor::new(params, session.clone()).with_trainer(Some(trainer));
    let mut harness =
        Harness::new_ui_state(|ui, editor: &mut CutscoreEditor| editor.show(ui), editor);
    harness.run();
    // Nothing decided yet: the button is there but does nothing.
    harness.get_by_label("Learn from my decisions").click();
    harness.run();
    assert!(!model.exists());
    session
        .decisions
        .store(40, std::sync::atomic::Ordering::Relaxed);
    harness.run();
    harness.get_by_label("Learn from my decisions").click();
    let started = std::time::Instant::now();
    let summary = "Learned your taste from 40 pairs on 4 songs; on songs it held out it agrees \
                   with you 90 % of the time (50 % without your taste)";
    while harness.query_by_label(summary).is_none() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "no result"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
        harness.step();
    }
    assert_eq!(std::fs::read(&model).unwrap(), b"learned");
}

/// Teach asks about the pair whose answer would teach most (`teach::next_question`), logs the
/// answer as a comparison of the capture's track, and moves on to another pair.
#[test]
fn teach_asks_the_most_telling_pair_and_logs_the_answer_as_a_comparison() {
    let prefs = tempfile::tempdir().unwrap();
    let (mut harness, session, proposals) = editor_logging_to(prefs.path());
    let (first, second) = teach::next_question(&proposals, &[]).expect("a pair to ask about");
    assert!(first.score >= second.score, "the better-scored is A");
    harness.get_by_label("Teach").click();
    harness.run();
    assert!(harness.query_by_label("Which is better?").is_some());
    let described = |p: &Proposal| format!("cut bar {} to bar {}", p.start_at, p.resume_at);
    for (name, p) in [("A", &first), ("B", &second)] {
        let label = format!(
            "{name}: {} ({})",
            described(p),
            plural(p.bars, "bar", "bars")
        );
        assert!(harness.query_by_label(&label).is_some(), "{label}");
    }
    harness.get_by_label("B is better").click();
    settle(&mut harness, &session);
    let contents = PrefsContents::read(prefs.path()).unwrap();
    let [Record::Comparison(c)] = contents.records.as_slice() else {
        panic!("expected one comparison: {:?}", contents.records);
    };
    assert_eq!(c.preferred, cutscore_core::prefs::Side::B);
    assert_eq!(c.a.removed()[0].start, first.start);
    assert_eq!(c.b.removed()[0].start, second.start);
    assert_eq!(c.source.as_deref(), Some("user"));
    assert!(
        contents.tracks.contains_key(&c.track),
        "the analysis is saved"
    );
    assert_eq!(
        session.decisions.load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    // The next question is another pair; Stop ends it.
    let asked = [teach::Asked::new(&first, &second).unwrap()];
    let (a, b) = teach::next_question(&proposals, &asked).expect("two pairs left");
    assert_ne!((a.start, b.start), (first.start, second.start));
    let label = format!("A: {} ({})", described(&a), plural(a.bars, "bar", "bars"));
    assert!(harness.query_by_label(&label).is_some(), "{label}");
    harness.get_by_label("Stop teaching").click();
    harness.run();
    assert!(harness.query_by_label("Which is better?").is_none());
}

#[test]
fn half_and_double_tempo_recount_the_capture_until_a_decision_fixes_its_grid() {
    use cutscore_plugin::settle::{Settled, settle as settle_capture};
    let dir = tempfile::tempdir().unwrap();
    let (mut harness, session, _) = editor_logging_to(&dir.path().join("prefs"));
    let heard = lock(&session.capture).tempo_bpm;
    let recounting = |harness: &Harness<'_, CutscoreEditor>| {
        harness
            .query_by_label_contains("when the music stops")
            .is_some()
    };
    assert!(!recounting(&harness));
    harness.get_by_label("½×").click();
    harness.run();
    assert_eq!(lock(&session.capture).recount_pending(), Some(heard / 2.0));
    assert!(recounting(&harness), "the header says what it will do");
    // The settle the analysis thread starts once no audio comes in.
    assert!(matches!(settle_capture(&session), Settled::Settled { .. }));
    harness.run();
    assert!(!recounting(&harness));
    let settled = lock(&session.capture).tempo_bpm;
    assert!(
        (settled - heard / 2.0).abs() < 0.04 * heard / 2.0,
        "{settled} for {heard}"
    );
    // A decision on the capture fixes its grid: the buttons do nothing.
    let epoch = lock(&session.capture).epoch;
    *lock(&session.track_id) = Some((epoch, "fixed".into()));
    harness.run();
    harness.get_by_label("2×").click();
    harness.run();
    assert_eq!(lock(&session.capture).recount_pending(), None);
    assert!(!recounting(&harness));
}

#[test]
fn the_bar_line_buttons_move_the_bars_a_beat_until_a_decision_fixes_the_grid() {
    let dir = tempfile::tempdir().unwrap();
    let (mut harness, session, _) = editor_logging_to(&dir.path().join("prefs"));
    let bars = |session: &Session| lock(&session.capture).grid.bar_starts();
    let beats = lock(&session.capture).grid.len();
    let found = bars(&session);
    // Every bar line `by` beats from where the tracker put it (as far as the grid reaches).
    let moved_by = |bars: &[usize], by: i64| {
        found
            .iter()
            .map(|&b| b as i64 + by)
            .filter(|b| (0..beats as i64).contains(b))
            .all(|b| bars.contains(&(b as usize)))
    };
    harness.get_by_label("Bar +1").click();
    harness.run();
    assert!(
        moved_by(&bars(&session), 1),
        "{found:?} -> {:?}",
        bars(&session)
    );
    assert!(lock(&session.capture).bar_line_given());
    // Around the selected proposal: a beat earlier, twice.
    harness.get_by_label("1").click();
    harness.run();
    harness.get_by_label("Bar -1").click();
    harness.run();
    assert_eq!(bars(&session), found);
    harness.get_by_label("Bar -1").click();
    harness.run();
    assert!(moved_by(&bars(&session), -1), "{:?}", bars(&session));
    assert!(
        harness
            .query_by_label_contains("from your bar lines")
            .is_some()
    );
    // Back where the tracker places them.
    harness.get_by_label("Reset bars").click();
    harness.run();
    assert_eq!(bars(&session), found);
    assert!(harness.query_by_label("Reset bars").is_none());
    harness.get_by_label("Bar +1").click();
    harness.run();
    assert!(moved_by(&bars(&session), 1), "{:?}", bars(&session));
    // A decision on the capture fixes its grid: the buttons do nothing.
    let epoch = lock(&session.capture).epoch;
    *lock(&session.track_id) = Some((epoch, "fixed".into()));
    let fixed = bars(&session);
    harness.run();
    harness.get_by_label("Bar +1").click();
    harness.run();
    assert_eq!(bars(&session), fixed);
}

#[test]
fn the_half_beat_button_moves_the_beats_half_a_beat_once_the_capture_is_read_again() {
    use cutscore_plugin::settle::{Settled, settle as settle_capture};
    let dir = tempfile::tempdir().unwrap();
    let (mut harness, session, _) = editor_logging_to(&dir.path().join("prefs"));
    assert!(matches!(settle_capture(&session), Settled::Settled { .. }));
    harness.run();
    let found = lock(&session.capture).grid.beats.clone();
    let reading_again = |harness: &Harness<'_, CutscoreEditor>| {
        harness
            .query_by_label_contains("moving the beats half a beat")
            .is_some()
    };
    assert!(!reading_again(&harness));
    harness.get_by_label("½ beat").click();
    harness.run();
    assert!(reading_again(&harness), "the header says what it will do");
    assert_eq!(
        lock(&session.capture).grid.beats,
        found,
        "not before the settle"
    );
    assert!(matches!(settle_capture(&session), Settled::Settled { .. }));
    harness.run();
    assert!(!reading_again(&harness));
    // The newest beats' stretch (this capture's steady pulse: all of it) lies halfway between
    // the beats found before.
    let moved = lock(&session.capture).grid.beats.clone();
    let halfway = |t: f64| {
        found
            .windows(2)
            .any(|w| (t - 0.5 * (w[0] + w[1])).abs() < 0.02 * (w[1] - w[0]))
    };
    let share = moved.iter().filter(|&&t| halfway(t)).count() as f64 / moved.len() as f64;
    assert!(share > 0.9, "{share}: {found:?} -> {moved:?}");
    // Pressed again: back where the tracker found them.
    harness.get_by_label("½ beat").click();
    harness.run();
    assert!(matches!(settle_capture(&session), Settled::Settled { .. }));
    assert_eq!(lock(&session.capture).grid.beats, found);
    // A decision on the capture fixes its grid: the button does nothing.
    let epoch = lock(&session.capture).epoch;
    *lock(&session.track_id) = Some((epoch, "fixed".into()));
    harness.run();
    harness.get_by_label("½ beat").click();
    harness.run();
    assert!(!lock(&session.capture).settle_asked());
}

#[test]
fn a_decision_before_the_recount_keeps_the_grid_and_forgets_the_tempo_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let prefs = dir.path().join("prefs");
    let (mut harness, session, _) = editor_logging_to(&prefs);
    let beats = lock(&session.capture).grid.beats.clone();
    harness.get_by_label("½×").click();
    harness.run();
    assert!(lock(&session.capture).recount_pending().is_some());
    harness.get_by_label("1").click();
    harness.run();
    harness.get_by_label("Accept").click();
    settle(&mut harness, &session);
    assert_eq!(decisions(&prefs).len(), 1);
    assert_eq!(lock(&session.capture).recount_pending(), None);
    assert_eq!(cutscore_plugin::settle::wants_settling(&session), None);
    assert_eq!(lock(&session.capture).grid.beats, beats);
    assert!(
        harness
            .query_by_label_contains("when the music stops")
            .is_none()
    );
}

#[test]
fn a_settle_that_finds_half_the_tempo_marks_half_and_the_click_takes_it() {
    use cutscore_analysis::TrackAnalysis;
    use cutscore_core::features::FeatureMatrix;
    let dir = tempfile::tempdir().unwrap();
    let (mut harness, session, _) = editor_logging_to(&dir.path().join("prefs"));
    let offered =
        |harness: &Harness<'_, CutscoreEditor>| harness.query_by_label_contains("maybe ").is_some();
    assert!(!offered(&harness), "no settle, no offer");
    // The settle's analysis of the capture, as the offline tracker would report a grid whose
    // slow reading is near half its tempo.
    let offer = {
        let mut capture = lock(&session.capture);
        let offer = capture.tempo_bpm / 2.0 * 1.03;
        let grid = capture.grid.clone();
        let features = FeatureMatrix::new(grid.len(), capture.features.clone()).unwrap();
        let analysis = TrackAnalysis {
            meter: grid.meter,
            duration_s: grid.duration_s,
            downbeat_log_odds: vec![0.0; grid.len()],
            grid,
            features,
            tempo_bpm: capture.tempo_bpm,
            confidence: 0.9,
            half_tempo_bpm: Some(offer),
            half_beat_moves: Vec::new(),
        };
        let frames = capture.audio.frames();
        let recount = capture.recount();
        assert!(capture.settle(analysis, frames, recount));
        offer
    };
    harness.run();
    let label = format!("maybe {offer:.1} BPM?");
    assert!(harness.query_by_label(&label).is_some(), "{label}");
    // ½× counts at the tempo offered, not at exactly half.
    harness.get_by_label("½×").click();
    harness.run();
    assert_eq!(lock(&session.capture).recount_pending(), Some(offer));
    assert!(!offered(&harness), "the offer is taken");
}
