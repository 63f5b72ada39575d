//! The editor as a user sees it: a picture of the window at its default size, over a minute of
//! a synthetic song analysed by the offline tracker, its cuts proposed and scored by the shipped
//! model, the best one selected, rendered by egui's wgpu renderer on a software Vulkan device
//! (Debian's `mesa-vulkan-drivers`; `.ci/run` installs it). The test fails when the window
//! drifts from `tests/snapshots/editor.png` (the picture in the README) by more than a few
//! pixels; `UPDATE_SNAPSHOTS=1 cargo test -p cutscore-plugin --test snapshot` rewrites it after
//! an intended change.

use std::sync::Arc;

use candle_core::Device;
use cutscore_analysis::analyze_samples;
use cutscore_core::edit::Edit;
use cutscore_editing::candidates::{CandidateOptions, bar_beats, candidate_spans};
use cutscore_plugin::editor::CutscoreEditor;
use cutscore_plugin::params::{CutscoreParams, DEFAULT_WINDOW_SIZE};
use cutscore_plugin::session::{Capture, ModelStatus, Proposal, Session, lock};
use cutscore_reward::scoring::{Track, score_edits};
use cutscore_synth::{SongSpec, TempoChange, render};
use egui_kittest::kittest::Queryable;
use egui_kittest::{Harness, SnapshotOptions};

/// A session as the plugin leaves it after hearing 64 s of a song: the capture, its grid and
/// features, and the shipped model's 16 best cuts.
fn analysed_session() -> Arc<Session> {
    let mut spec = SongSpec::random(21);
    spec.sample_rate = 44_100;
    spec.tempo = TempoChange::Constant;
    spec.bars = spec.bars_for_seconds(64.0);
    let song = render(&spec).unwrap();
    let analysis = analyze_samples(&song.mono(), song.sample_rate).unwrap();
    let grid = analysis.grid;
    let model = cutscore_reward::shipped::checkpoint()
        .unwrap()
        .model(&Device::Cpu)
        .unwrap();
    let spans = candidate_spans(&grid, &CandidateOptions::default());
    let edits: Vec<Edit> = spans
        .iter()
        .map(|&span| Edit::new(grid.len(), [span]).unwrap())
        .collect();
    let track = Track {
        features: &analysis.features,
        meter: grid.meter,
    };
    let scores = score_edits(&model, track, &edits, 64).unwrap();
    let positions = bar_beats(&grid);
    let mut ranked: Vec<Proposal> = spans
        .iter()
        .zip(scores)
        .map(|(&span, score)| Proposal::on_grid(&grid, &positions, span, score))
        .collect();
    ranked.sort_by(|a, b| b.score.total_cmp(&a.score));

    let session = Arc::new(Session::new(None));
    {
        let mut capture = lock(&session.capture);
        *capture = Capture::new(1, song.sample_rate, song.channels);
        capture.append(&song.samples);
        for (&t, &b) in grid.beats.iter().zip(&grid.beat_in_bar) {
            capture.push_beat(t, b, grid.meter, 0.0);
        }
        capture.features = analysis.features.as_slice().to_vec();
        capture.tempo_bpm = analysis.tempo_bpm;
    }
    {
        let mut shown = lock(&session.proposals);
        shown.epoch = 1;
        shown.beats = grid.len();
        shown.ranked = ranked;
    }
    *lock(&session.model) = ModelStatus {
        device: "cpu".into(),
        model_id: "shipped".into(),
        source: "the shipped model".into(),
        ..ModelStatus::default()
    };
    session
}

#[test]
fn the_editor_looks_as_in_the_readme() {
    let session = analysed_session();
    let params = Arc::new(CutscoreParams::default());
    // No trainer: the status shows the command to run, wherever the test runs.
    let editor = CutscoreEditor::new(params, session).with_trainer(None);
    let (width, height) = DEFAULT_WINDOW_SIZE;
    let mut harness = Harness::builder()
        .with_size(egui::vec2(width as f32, height as f32))
        .build_ui_state(|ui, editor: &mut CutscoreEditor| editor.show(ui), editor);
    harness.run();
    harness.get_by_label("1").click();
    harness.run();
    harness.snapshot_options(
        "editor",
        &SnapshotOptions::new().threshold(0.6).max_failed_pixels(40),
    );
}
