//! The beat network's training graph on CUDA against the shipped CPU inference: with the
//! shipped weights the GPU gives the activations the analysis computes by hand, and one
//! training loss has the same gradients on CUDA as on the CPU.
//!
//! Built only with `--features cuda`, and meant for a machine with a GPU: without one the tests
//! fail, saying why. CI builds no `cuda`; run them where a GPU is, e.g.
//! `cargo test --release -p cutscore-training --features cuda --test cuda`.
#![cfg(feature = "cuda")]

use candle_core::{D, Device, Tensor};
use cutscore_analysis::beat_model::{self, INPUT_BANDS, OUTPUTS};
use cutscore_analysis::frontend::Frame;
use cutscore_reward::device::{self, DeviceChoice};
use cutscore_training::beat_net;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn cuda() -> Device {
    match device::select(DeviceChoice::Cuda) {
        Ok(selected) => selected.device,
        Err(why) => panic!("these tests need a GPU: {why}"),
    }
}

/// Seeded log-mel-like frames with a pulse every 23 frames (about 112 BPM at 43 frames a
/// second), long enough for the widest dilation; and the same as a `[1, bands, frames]` input.
fn frames(n: usize, seed: u64) -> (Vec<Frame>, Tensor) {
    let mut rng = StdRng::seed_from_u64(seed);
    let frames: Vec<Frame> = (0..n)
        .map(|k| {
            let mut frame = Frame::default();
            for v in &mut frame.mel {
                *v = rng.random::<f32>() * 0.5 + if k % 23 == 0 { 1.5 } else { 0.3 };
            }
            frame
        })
        .collect();
    let mut input = vec![0.0f32; INPUT_BANDS * n];
    for (j, f) in frames.iter().enumerate() {
        for b in 0..INPUT_BANDS {
            input[b * n + j] = f.mel[b];
        }
    }
    let input = Tensor::from_vec(input, (1, INPUT_BANDS, n), &Device::Cpu).unwrap();
    (frames, input)
}

#[test]
fn the_shipped_network_on_cuda_gives_the_shipped_activations() {
    let gpu = cuda();
    let model = beat_model::shipped();
    let (net, _) = beat_net::trainable(model.config(), Some(model), &gpu).unwrap();
    let (frames, input) = frames(1200, 11);
    let logits: Vec<Vec<f32>> = net
        .forward(&input.to_device(&gpu).unwrap(), false)
        .unwrap()
        .squeeze(0)
        .unwrap()
        .to_device(&Device::Cpu)
        .unwrap()
        .to_vec2()
        .unwrap();
    let sigmoid = |x: f32| 1.0 / (1.0 + (-x).exp());
    let activations = model.activations(&frames);
    assert_eq!(activations.len(), frames.len());
    let mut largest = 0.0f32;
    let mut strongest = 0.0f32;
    for (t, a) in activations.iter().enumerate() {
        largest = largest
            .max((a.beat - sigmoid(logits[0][t])).abs())
            .max((a.downbeat - sigmoid(logits[1][t])).abs());
        strongest = strongest.max(a.beat);
    }
    assert!(
        strongest > 0.5,
        "the pulse should raise the beat activation, top {strongest}"
    );
    assert!(
        largest < 1e-4,
        "CUDA and the CPU inference differ by up to {largest}"
    );
}

#[test]
fn a_training_loss_has_the_same_gradients_on_cuda() {
    let gpu = cuda();
    let model = beat_model::shipped();
    // A batch of several excerpts, as training draws them (CUDA's matrix product once refused
    // the batched layout the CPU took).
    let batch = 3;
    let inputs: Vec<Tensor> = (0..batch as u64).map(|seed| frames(900, seed).1).collect();
    let input = Tensor::cat(&inputs, 0).unwrap();
    let n = input.dim(2).unwrap();
    // Targets on the pulse (beats) and on every fourth pulse (downbeats).
    let targets: Vec<f32> = (0..OUTPUTS)
        .flat_map(|o| (0..n).map(move |k| (k % (23 * (1 + 3 * o)) == 0) as u8 as f32))
        .collect();
    let targets = Tensor::from_vec(targets, (1, OUTPUTS, n), &Device::Cpu)
        .unwrap()
        .repeat((batch, 1, 1))
        .unwrap();
    let weights = Tensor::ones((batch, OUTPUTS, n), candle_core::DType::F32, &Device::Cpu).unwrap();
    let mut per_device = Vec::new();
    for device in [Device::Cpu, gpu] {
        let config = beat_model::BeatModelConfig {
            dropout: 0.0,
            ..model.config().clone()
        };
        let (net, varmap) = beat_net::trainable(&config, Some(model), &device).unwrap();
        let on = |t: &Tensor| t.to_device(&device).unwrap();
        let logits = net.forward(&on(&input), true).unwrap();
        let loss = beat_net::loss(&logits, &on(&targets), &on(&weights)).unwrap();
        let grads = loss.backward().unwrap();
        let mut named: Vec<(String, Tensor)> = varmap
            .data()
            .lock()
            .unwrap()
            .iter()
            .map(|(name, var)| {
                let grad = grads
                    .get(var.as_tensor())
                    .expect("every weight has a gradient");
                (name.clone(), grad.to_device(&Device::Cpu).unwrap())
            })
            .collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        per_device.push((loss.to_scalar::<f32>().unwrap(), named));
    }
    let ((cpu_loss, cpu), (gpu_loss, gpu)) = (&per_device[0], &per_device[1]);
    assert!(
        (cpu_loss - gpu_loss).abs() < 1e-5 * cpu_loss.abs().max(1.0),
        "loss {cpu_loss} on the CPU, {gpu_loss} on CUDA"
    );
    assert!(cpu.len() >= 4, "{} weight tensors", cpu.len());
    let largest = |t: &Tensor| {
        t.abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(D::Minus1)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    };
    for ((name, a), (_, b)) in cpu.iter().zip(gpu) {
        let scale = largest(a);
        assert!(scale > 0.0, "gradient of {name} is zero");
        let difference = largest(&(a - b).unwrap());
        assert!(
            difference <= 1e-3 * scale,
            "gradient of {name}: CPU and CUDA differ by {difference} (largest value {scale})"
        );
    }
}
