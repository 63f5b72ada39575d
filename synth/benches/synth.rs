//! Rendering cost of the synthetic songs: one evaluation song (about 40 s of 44.1 kHz stereo,
//! the budget is 0.2 s) and the metrics on a 10-minute beat sequence.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use cutscore_analysis::metrics;
use cutscore_synth::{evaluation_set, render};

fn synth(c: &mut Criterion) {
    let set = evaluation_set();
    let (_, spec) = set
        .iter()
        .find(|(name, _)| name == "tempo_120")
        .expect("tempo_120 exists");
    let mut group = c.benchmark_group("synth");
    group.sample_size(10);
    group.bench_function("render tempo_120 (40 s, 44.1 kHz)", |b| {
        b.iter(|| render(black_box(spec)).expect("valid spec"))
    });
    group.finish();

    let reference: Vec<f64> = (0..1200).map(|i| 0.3 + i as f64 * 0.5).collect();
    let estimated: Vec<f64> = reference
        .iter()
        .enumerate()
        .map(|(i, t)| t + 0.05 * (1.3 * i as f64).sin())
        .collect();
    c.bench_function("metrics evaluate (10 min of beats)", |b| {
        b.iter(|| metrics::evaluate(black_box(&reference), black_box(&estimated)).expect("valid"))
    });
}

criterion_group!(benches, synth);
criterion_main!(benches);
