//! Timing the reward model at given shapes, shared by `trainer bench` and the criterion
//! benchmarks so both measure the same work: inference is one forward pass over a
//! (batch, beats, 125) tensor; a training step is Bradley–Terry on `batch` pairs (2 x batch
//! sequences in one forward pass), backward, and an AdamW update, as in
//! `shared/bench/torch_reward_model.py`.

use std::time::{Duration, Instant};

use candle_core::{Device, Tensor};
use candle_nn::VarMap;

use crate::bradley_terry::{TrainConfig, Trainer};
use cutscore_reward::{Batch, Config, ModelError, RewardModel};

/// A model and random inputs of one shape.
pub struct Workload {
    pub model: RewardModel,
    trainer: Trainer,
    inference: Batch,
    pairs: Batch,
}

impl Workload {
    /// A default-size model on `device` with seeded random inputs of `batch` x `beats`.
    pub fn new(
        config: &Config,
        batch: usize,
        beats: usize,
        device: &Device,
    ) -> Result<Self, ModelError> {
        let varmap = VarMap::new();
        let model = RewardModel::init(config, &varmap, device, 0)?;
        let random = |b: usize| -> Result<Batch, ModelError> {
            let inputs = Tensor::randn(0f32, 1.0, (b, beats, config.inputs), device)?;
            let mask = Tensor::ones((b, beats), candle_core::DType::F32, device)?;
            Ok(Batch { inputs, mask })
        };
        let inference = random(batch)?;
        let pairs = random(2 * batch)?;
        let trainer = Trainer::new(model.clone(), varmap, TrainConfig::default())?;
        Ok(Self {
            model,
            trainer,
            inference,
            pairs,
        })
    }

    /// One forward pass, waiting for the device to finish.
    pub fn infer(&self) -> Result<(), ModelError> {
        let scores = self
            .model
            .forward(&self.inference.inputs, &self.inference.mask, false)?;
        scores.to_vec1::<f32>()?;
        Ok(())
    }

    /// One training step.
    pub fn train_step(&mut self) -> Result<(), ModelError> {
        self.trainer.step_sequences(&self.pairs)?;
        Ok(())
    }
}

/// Median of `runs` timings of `f` after `warmup` untimed calls.
pub fn median_time(
    warmup: usize,
    runs: usize,
    mut f: impl FnMut() -> Result<(), ModelError>,
) -> Result<Duration, ModelError> {
    for _ in 0..warmup {
        f()?;
    }
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        let start = Instant::now();
        f()?;
        times.push(start.elapsed());
    }
    times.sort();
    Ok(times[times.len() / 2])
}

/// Floating-point operations of one forward pass (matrix products only), the same count the
/// PyTorch reference prints its GFLOP/s from.
pub fn forward_flops(config: &Config, batch: usize, beats: usize) -> f64 {
    let (d, ff) = (config.d_model as f64, config.ff as f64);
    let n = beats as f64;
    let per_layer = 4.0 * d * d + 2.0 * d * ff + 2.0 * n * d;
    2.0 * batch as f64 * n * (config.layers as f64 * per_layer + config.inputs as f64 * d)
}
