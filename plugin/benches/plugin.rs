//! The plugin's costs, per thread:
//! - audio thread: one `process()` block's work (capture into the ring) at 64, 512, 4096 frames;
//! - analysis thread: streaming beat tracking plus per-beat features for 10 s of 48 kHz
//!   stereo (divide by 10 s for its CPU share);
//! - scoring worker: a new bar's rescoring of 64 candidates with the shipped model on the CPU
//!   (issue goal: under 250 ms from a new bar to updated candidates).

use std::sync::Arc;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use cutscore_analysis::analyze_samples;
use cutscore_analysis::streaming::StreamingAnalyzer;
use cutscore_core::edit::Edit;
use cutscore_core::features::BEAT_FEATURES;
use cutscore_core::grid::BeatGrid;
use cutscore_editing::candidates::{CandidateOptions, candidate_spans};
use cutscore_plugin::scoring_worker::BATCH;
use cutscore_plugin::tap::{AudioTap, TapStats};
use cutscore_reward::scoring::{Track, score_edits};
use cutscore_synth::{Song, SongSpec, render};

fn song(seconds: f64, rate: u32) -> Song {
    let mut spec = SongSpec::random(21);
    spec.sample_rate = rate;
    spec.bars = spec.bars_for_seconds(seconds);
    render(&spec).unwrap()
}

fn audio_thread(c: &mut Criterion) {
    let mut group = c.benchmark_group("audio_thread_capture_stereo");
    for frames in [64usize, 512, 4096] {
        let (mut tap, mut ring) = AudioTap::new(2, 1 << 16, Arc::new(TapStats::default()));
        let mut channels: Vec<Vec<f32>> = (0..2)
            .map(|c| (0..frames).map(|i| ((i + c) as f32 * 0.01).sin()).collect())
            .collect();
        group.bench_function(format!("{frames}_frames"), |b| {
            b.iter(|| {
                let block: Vec<&mut [f32]> = channels.iter_mut().map(|c| &mut c[..]).collect();
                tap.capture(&block, true);
                let queued = ring.slots();
                ring.read_chunk(queued).unwrap().commit_all();
            })
        });
    }
    group.finish();
}

fn analysis_thread(c: &mut Criterion) {
    let song = song(10.0, 48_000);
    let mut group = c.benchmark_group("analysis_thread_48k");
    group.sample_size(10);
    group.bench_function("10_s_stereo_beats_and_features", |b| {
        b.iter_batched(
            || {
                let mut analyzer = StreamingAnalyzer::new();
                analyzer.prepare(4096, 48_000).unwrap();
                analyzer
            },
            |mut analyzer| {
                let mut beats = Vec::new();
                let mut in_bar = Vec::new();
                let mut row = vec![0f32; BEAT_FEATURES];
                for block in song.samples.chunks(4096 * 2) {
                    analyzer.push_interleaved(block, 2).unwrap();
                    while let Some(beat) = analyzer.poll_beat() {
                        beats.push(beat.time_s);
                        in_bar.push(beat.beat_in_bar);
                        if beats.len() >= 2 {
                            let grid = BeatGrid {
                                beats: beats.clone(),
                                beat_in_bar: in_bar.clone(),
                                meter: beat.meter,
                                duration_s: beat.time_s,
                            };
                            analyzer
                                .features_into(&grid, beats.len() - 2, &mut row)
                                .unwrap();
                        }
                    }
                }
                beats.len()
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

fn scoring_worker(c: &mut Criterion) {
    let song = song(180.0, 22_050);
    let analysis = analyze_samples(&song.mono(), song.sample_rate).unwrap();
    let model = cutscore_reward::shipped::checkpoint()
        .unwrap()
        .model(&candle_core::Device::Cpu)
        .unwrap();
    let spans = candidate_spans(&analysis.grid, &CandidateOptions::default());
    let beats = analysis.grid.len();
    let edits: Vec<Edit> = spans
        .iter()
        .rev()
        .take(64)
        .map(|&span| Edit::new(beats, [span]).unwrap())
        .collect();
    let track = Track {
        features: &analysis.features,
        meter: analysis.meter,
    };
    let mut group = c.benchmark_group("scoring_worker_cpu");
    group.sample_size(10);
    group.bench_function("rescore_64_candidates_3_min_song", |b| {
        b.iter(|| score_edits(&model, track, &edits, BATCH).unwrap())
    });
    group.bench_function("candidate_spans_3_min_song", |b| {
        b.iter(|| candidate_spans(&analysis.grid, &CandidateOptions::default()).len())
    });
    group.finish();
}

criterion_group!(benches, audio_thread, analysis_thread, scoring_worker);
criterion_main!(benches);
