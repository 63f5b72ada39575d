//! `trainer bench`: median inference and training-step times of the default-size reward model
//! at a chosen shape, so users can compare their CPU and GPU.

use anyhow::Context;
use cutscore_reward::Config;
use cutscore_reward::device::{self, DeviceChoice};
use cutscore_training::bench::{Workload, forward_flops, median_time};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Sequences per inference batch, and pairs per training step.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Beats per sequence.
    #[arg(long, default_value_t = 128)]
    beats: usize,
    /// Where to run: auto (CUDA if available), cpu or cuda.
    #[arg(long, default_value = "auto")]
    device: DeviceChoice,
    /// Timed runs per measurement (the median is reported).
    #[arg(long, default_value_t = 10)]
    runs: usize,
    /// Print one JSON line instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let selected = device::select(args.device)?;
    let config = Config::default();
    anyhow::ensure!(args.batch > 0, "--batch must be at least 1");
    anyhow::ensure!(
        (1..=config.max_len).contains(&args.beats),
        "--beats must be between 1 and {}",
        config.max_len
    );
    let mut workload = Workload::new(&config, args.batch, args.beats, &selected.device)
        .context("building the benchmark model")?;
    let inference = median_time(3, args.runs, || workload.infer())?;
    let train = median_time(2, args.runs.div_ceil(2), || workload.train_step())?;
    let inference_ms = inference.as_secs_f64() * 1e3;
    let train_step_ms = train.as_secs_f64() * 1e3;
    let gflops = forward_flops(&config, args.batch, args.beats) / inference.as_secs_f64() / 1e9;
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "device": selected.name,
                "device_reason": selected.reason,
                "batch": args.batch,
                "beats": args.beats,
                "threads": std::thread::available_parallelism().map_or(1, |n| n.get()),
                "inference_ms": inference_ms,
                "inference_gflops": gflops,
                "train_step_ms": train_step_ms,
            })
        );
    } else {
        println!("device {} ({})", selected.name, selected.reason);
        println!(
            "batch {} x {} beats: inference {inference_ms:.2} ms ({gflops:.1} GFLOP/s), training step {train_step_ms:.1} ms ({} pairs)",
            args.batch, args.beats, args.batch
        );
    }
    Ok(())
}
