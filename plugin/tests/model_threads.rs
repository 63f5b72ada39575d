//! The reward model scores on a pool of its own, at most `MODEL_THREADS` threads named
//! `cutscore-model-N`, whatever the machine's core count (Linux: the threads are read from
//! `/proc`). A file of its own, so no other test's engine adds threads to the count.

#![cfg(target_os = "linux")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use cutscore_plugin::engine::Engine;
use cutscore_plugin::params::CutscoreParams;
use cutscore_plugin::scoring_worker::MODEL_THREADS;
use cutscore_plugin::session::{Session, lock};
use cutscore_synth::{SongSpec, TempoChange, render};
use nice_plug_egui::RepaintNotifier;

/// Name and CPU seconds of every thread of this process.
fn threads() -> Vec<(String, f64)> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .flatten()
        .map(|task| {
            let name = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
            let fields: Vec<&str> = stat
                .rsplit_once(')')
                .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
            // utime and stime, fields 14 and 15 of the line (11 and 12 after the name).
            let ticks: f64 = fields[11..13]
                .iter()
                .map(|f| f.parse::<f64>().unwrap())
                .sum();
            (name.trim().to_string(), ticks / 100.0)
        })
        .collect()
}

#[test]
fn the_model_scores_on_its_own_threads_and_no_more_of_them_than_allowed() {
    let mut spec = SongSpec::random(11);
    spec.sample_rate = 48_000;
    spec.tempo = TempoChange::Constant;
    spec.bars = spec.bars_for_seconds(40.0);
    let song = render(&spec).unwrap();
    let session = Arc::new(Session::new(None));
    let params = Arc::new(CutscoreParams::default());
    let (engine, mut audio) =
        Engine::start(&session, &params, &RepaintNotifier::new(), 48_000, 2).unwrap();
    let (mut left, mut right) = (vec![0f32; 512], vec![0f32; 512]);
    for block in (0..song.frames() - 512).step_by(512) {
        for i in 0..512 {
            left[i] = song.samples[2 * (block + i)];
            right[i] = song.samples[2 * (block + i) + 1];
        }
        // The ring holds 4 s: wait for the analysis rather than outrun it.
        while !audio.tap.capture(&[&mut left[..], &mut right[..]], true) {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let started = Instant::now();
    loop {
        let proposals = lock(&session.proposals);
        if proposals.ranked.len() >= 20 && proposals.pending == 0 {
            break;
        }
        drop(proposals);
        assert!(started.elapsed() < Duration::from_secs(120), "no proposals");
        std::thread::sleep(Duration::from_millis(20));
    }
    let model: Vec<(String, f64)> = threads()
        .into_iter()
        .filter(|(name, _)| name.starts_with("cutscore-model"))
        .collect();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(model.len(), cores.min(MODEL_THREADS), "{model:?}");
    let busy: f64 = model.iter().map(|(_, cpu)| cpu).sum();
    assert!(busy > 0.0, "the model's threads did the scoring: {model:?}");
    drop(audio);
    drop(engine);
}
