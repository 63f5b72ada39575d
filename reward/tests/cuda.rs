//! The reward model on CUDA against the CPU. The two run different code: the CPU the fused
//! kernels of `fused` (with hand-written gradients) and its scoring pass, CUDA candle's own
//! operations. The shipped weights must give the same scores and the same training gradients
//! on both.
//!
//! Built only with `--features cuda`, and meant for a machine with a GPU: without one the tests
//! fail, saying why (a cuda build does not even start where the NVIDIA driver is missing). CI
//! builds no `cuda`; run them where a GPU is, e.g.
//! `cargo test --release -p cutscore-reward --features cuda --test cuda`.
#![cfg(feature = "cuda")]

use candle_core::{D, Device, Tensor, Var};
use cutscore_reward::device::{self, DeviceChoice};
use cutscore_reward::shipped;

fn cuda() -> Device {
    match device::select(DeviceChoice::Cuda) {
        Ok(selected) => selected.device,
        Err(why) => panic!("these tests need a GPU: {why}"),
    }
}

/// `batch` windows of `beats` seeded pseudo-random inputs in [-2, 2] (the features are
/// standardised), the later windows padded to fewer beats; on the CPU.
fn windows(batch: usize, beats: usize, inputs: usize) -> (Tensor, Tensor) {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let values: Vec<f32> = (0..batch * beats * inputs)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32 * 4.0 - 2.0
        })
        .collect();
    let mask: Vec<f32> = (0..batch)
        .flat_map(|b| {
            let real = beats - (b % 4) * beats / 8;
            (0..beats).map(move |t| if t < real { 1.0 } else { 0.0 })
        })
        .collect();
    (
        Tensor::from_vec(values, (batch, beats, inputs), &Device::Cpu).unwrap(),
        Tensor::from_vec(mask, (batch, beats), &Device::Cpu).unwrap(),
    )
}

fn largest_difference(a: &Tensor, b: &Tensor) -> f32 {
    let a = a.to_device(&Device::Cpu).unwrap().flatten_all().unwrap();
    let b = b.to_device(&Device::Cpu).unwrap().flatten_all().unwrap();
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .max(D::Minus1)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

#[test]
fn scores_on_cuda_match_the_cpu() {
    let gpu = cuda();
    let checkpoint = shipped::checkpoint().unwrap();
    let on_cpu = checkpoint.model(&Device::Cpu).unwrap();
    let on_gpu = checkpoint.model(&gpu).unwrap();
    let inputs = on_cpu.config().inputs;
    // What the plugin and fit-to-length score (windows of 16 beats), and long windows.
    for (batch, beats) in [(256, 16), (8, 128)] {
        let (x, mask) = windows(batch, beats, inputs);
        let cpu = on_cpu.forward(&x, &mask, false).unwrap();
        let gpu_scores = on_gpu
            .forward(
                &x.to_device(&gpu).unwrap(),
                &mask.to_device(&gpu).unwrap(),
                false,
            )
            .unwrap();
        let spread = cpu.max(0).unwrap().to_scalar::<f32>().unwrap()
            - cpu.min(0).unwrap().to_scalar::<f32>().unwrap();
        assert!(
            spread > 1.0,
            "the inputs should give different scores, spread {spread}"
        );
        let difference = largest_difference(&cpu, &gpu_scores);
        assert!(
            difference < 1e-3,
            "{batch} x {beats}: scores differ by up to {difference} (of [-10, 10])"
        );
    }
}

#[test]
fn training_gradients_on_cuda_match_the_cpu() {
    let gpu = cuda();
    let checkpoint = shipped::checkpoint().unwrap();
    let (batch, beats) = (16, 24);
    let mut gradients = Vec::new();
    for device in [Device::Cpu, gpu] {
        // Dropout 0: the training path, deterministic.
        let (model, varmap) = checkpoint.trainable(0.0, &device).unwrap();
        let (x, mask) = windows(batch, beats, model.config().inputs);
        let scores = model
            .forward(
                &x.to_device(&device).unwrap(),
                &mask.to_device(&device).unwrap(),
                true,
            )
            .unwrap();
        // A loss whose gradient differs from window to window.
        let weights: Vec<f32> = (0..batch).map(|i| (i as f32 - 7.5) / 8.0).collect();
        let weights = Tensor::from_vec(weights, batch, &device).unwrap();
        let loss = (scores * weights).unwrap().sum_all().unwrap();
        let grads = loss.backward().unwrap();
        let mut named: Vec<(String, Var)> =
            varmap.data().lock().unwrap().clone().into_iter().collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let per_var: Vec<(String, Tensor)> = named
            .into_iter()
            .map(|(name, var)| {
                let grad = grads
                    .get(var.as_tensor())
                    .unwrap_or_else(|| panic!("no gradient for {name}"))
                    .to_device(&Device::Cpu)
                    .unwrap();
                (name, grad)
            })
            .collect();
        gradients.push(per_var);
    }
    let (cpu, gpu) = (&gradients[0], &gradients[1]);
    assert_eq!(cpu.len(), gpu.len());
    assert!(cpu.len() > 30, "the model has {} tensors", cpu.len());
    for ((name, a), (_, b)) in cpu.iter().zip(gpu) {
        let scale = a
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(D::Minus1)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        let difference = largest_difference(a, b);
        assert!(
            difference <= 1e-3 * scale.max(1e-6),
            "gradient of {name}: CPU and CUDA differ by {difference} (largest value {scale})"
        );
    }
}
