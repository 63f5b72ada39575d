//! Editing-engine speed: ranking candidate cuts and fitting a 4-minute song (120 BPM, 4/4, 120
//! bars) to 75 % of its length with the default-size reward model. Issue goal: under 2 s.

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

fn song() -> (BeatGrid, FeatureMatrix) {
    let grid = BeatGrid::regular(0.0, 0.5, 480, 4, 0).unwrap();
    let values = (0..480 * 121)
        .map(|i| ((i * 2_654_435_761usize) % 1000) as f32 / 500.0 - 1.0)
        .collect();
    (grid, FeatureMatrix::new(480, values).unwrap())
}

fn editing(c: &mut Criterion) {
    let (grid, features) = song();
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
    group.finish();
}

criterion_group!(benches, editing);
criterion_main!(benches);
