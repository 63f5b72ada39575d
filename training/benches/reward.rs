//! Reward-model speed at the shapes the issue names: inference at (32, 128), (256, 16) (the
//! windows fitting and the plugin score), (1, 512) and (256, 128), and a training step on 64
//! pairs x 128 beats. Compare with `shared/bench/torch_reward_model.py` run in the same session.

use candle_core::Device;
use criterion::{Criterion, criterion_group, criterion_main};
use cutscore_reward::Config;
use cutscore_training::bench::Workload;

// As in the `trainer` binary: candle allocates per op, and the system allocator returns large
// buffers to the OS each time (page faults and zeroing on every op).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn inference(c: &mut Criterion) {
    let mut group = c.benchmark_group("reward_inference");
    group.sample_size(10);
    for (batch, beats) in [(32, 128), (256, 16), (1, 512), (256, 128)] {
        let workload = Workload::new(&Config::default(), batch, beats, &Device::Cpu).unwrap();
        group.bench_function(format!("batch{batch}_beats{beats}"), |b| {
            b.iter(|| workload.infer().unwrap())
        });
    }
    group.finish();
}

fn training(c: &mut Criterion) {
    let mut group = c.benchmark_group("reward_train_step");
    group.sample_size(10);
    let mut workload = Workload::new(&Config::default(), 64, 128, &Device::Cpu).unwrap();
    group.bench_function("pairs64_beats128", |b| {
        b.iter(|| workload.train_step().unwrap())
    });
    group.finish();
}

criterion_group!(benches, inference, training);
criterion_main!(benches);
