//! Editing-engine speed: ranking candidate cuts and fitting a 4-minute song (120 BPM, 4/4, 120
//! bars) to 75 % of its length with the default-size reward model, and the costliest 4-minute
//! song in the synthesiser's 60-200 BPM range (200 BPM in 3/4: 266 bars) to half its length,
//! where every cut length fits. Issue goal: any 4-minute song to any target in under 2 s.

use candle_core::Device;
use candle_nn::VarMap;
use criterion::{Criterion, criterion_group, criterion_main};
use cutscore_model::editing::candidates::{CandidateOptions, rank_candidates};
use cutscore_model::editing::fit::{FitOptions, fit_to_length};
use cutscore_model::features::FeatureMatrix;
use cutscore_model::grid::BeatGrid;
use cutscore_model::reward::scoring::Track;
use cutscore_model::reward::{Config, RewardModel};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Four minutes of beats `period` seconds apart, in bars of `meter`, with arbitrary features.
fn song(period: f64, meter: u8) -> (BeatGrid, FeatureMatrix) {
    let beats = (240.0 / period).round() as usize;
    let grid = BeatGrid::regular(0.0, period, beats, meter, 0).unwrap();
    let values = (0..beats * 121)
        .map(|i| ((i * 2_654_435_761usize) % 1000) as f32 / 500.0 - 1.0)
        .collect();
    (grid, FeatureMatrix::new(beats, values).unwrap())
}

fn editing(c: &mut Criterion) {
    let (grid, features) = song(0.5, 4);
    let model = RewardModel::init(&Config::default(), &VarMap::new(), &Device::Cpu, 0).unwrap();
    let track = Track {
        features: &features,
        meter: 4,
    };
    let mut group = c.benchmark_group("editing_4min");
    group.sample_size(10);
    group.bench_function("rank_candidates_1_to_16_bars", |b| {
        b.iter(|| rank_candidates(&model, &grid, track, &CandidateOptions::default(), 64).unwrap())
    });
    let options = FitOptions {
        target_s: 180.0,
        ..FitOptions::default()
    };
    group.bench_function("fit_to_75_percent", |b| {
        b.iter(|| fit_to_length(&model, &grid, track, &options).unwrap())
    });
    let (fast_grid, fast_features) = song(0.3, 3);
    let fast = Track {
        features: &fast_features,
        meter: 3,
    };
    let half = FitOptions {
        target_s: 120.0,
        ..FitOptions::default()
    };
    group.bench_function("fit_200bpm_3_4_to_50_percent", |b| {
        b.iter(|| fit_to_length(&model, &fast_grid, fast, &half).unwrap())
    });
    group.finish();
}

criterion_group!(benches, editing);
criterion_main!(benches);
