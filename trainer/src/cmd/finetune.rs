//! `trainer finetune`: fine-tune a reward model on the user's own accept/reject decisions,
//! replaying synthetic pairs so earlier skills are kept, and install it as the user's model
//! (the previous one is kept as `model.prev.safetensors`). The prefs folder is only read.

use std::path::PathBuf;

use anyhow::Context;
use cutscore_reward::device::{self, DeviceChoice};
use cutscore_reward::user_model;
use cutscore_training::pair_set::PairSet;
use cutscore_training::run::{self, FinetuneOptions, FinetuneTarget, Progress};
use cutscore_training::synthetic_pairs::{self, PairOptions};

use super::shared::resolve_model;

/// Synthetic pairs generated for replay when `--synthetic` is not given: 24 songs, about 2 s.
const REPLAY_PAIRS: usize = 600;
/// Keeps the generated replay songs apart from the ones `trainer pairs --seed S` makes.
const REPLAY_SEED: u64 = 0x5eed_f00d;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The prefs folder the plugin writes (decisions.jsonl + tracks/).
    prefs: PathBuf,
    /// Model to start from [default: your current model, else the shipped one].
    #[arg(long)]
    base: Option<PathBuf>,
    /// Where to write the fine-tuned model (default: the user's model path).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Synthetic pairs (`trainer pairs --out`) to replay and to measure kept skill on
    /// [default: 600 freshly generated pairs].
    #[arg(long, value_name = "DIR")]
    synthetic: Option<PathBuf>,
    /// Passes over the user's pairs.
    #[arg(long, default_value_t = 8)]
    epochs: usize,
    /// AdamW learning rate.
    #[arg(long, default_value_t = 1e-4)]
    learning_rate: f64,
    /// Seeds the hold-out, the replay sample and the shuffling; use the `trainer train` seed
    /// so the synthetic validation songs are the ones the base was validated on.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Where to run: auto (CUDA if available), cpu or cuda.
    #[arg(long, default_value = "auto")]
    device: DeviceChoice,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let user_path = user_model::user_model_path();
    let no_home =
        || anyhow::anyhow!("this system has no per-user data folder; pass --base and --out");
    let out = match args.out.clone() {
        Some(out) => out,
        None => user_path.ok_or_else(no_home)?,
    };
    let user = PairSet::load(&args.prefs)
        .with_context(|| format!("reading decisions from {}", args.prefs.display()))?;
    let (base, base_source) =
        resolve_model(args.base.as_deref()).context("loading the base model")?;
    log::info!("fine-tuning {base_source}");
    // Without a replay set, a fresh one is generated (songs the base model never saw): the
    // replay keeps the base's skills, and its validation share measures that they were kept.
    let replay_dir;
    let synthetic_dir = match &args.synthetic {
        Some(dir) => dir.clone(),
        None => {
            replay_dir = tempfile::tempdir().context("creating a folder for replay pairs")?;
            let options = PairOptions {
                count: REPLAY_PAIRS,
                seed: args.seed ^ REPLAY_SEED,
                ..PairOptions::default()
            };
            synthetic_pairs::generate(replay_dir.path(), &options, |_| {})
                .context("generating synthetic replay pairs")?;
            replay_dir.path().to_path_buf()
        }
    };
    let synthetic = PairSet::load(&synthetic_dir)
        .with_context(|| format!("reading synthetic pairs from {}", synthetic_dir.display()))?;
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let selected = device::select(args.device)?;
    let options = FinetuneOptions {
        epochs: args.epochs,
        learning_rate: args.learning_rate,
        seed: args.seed,
        ..FinetuneOptions::default()
    };
    let target = FinetuneTarget {
        device: &selected.device,
        device_name: &selected.name,
        out: &out,
        command: Some(std::env::args().collect::<Vec<_>>().join(" ")),
    };
    let report = run::finetune(&base, &user, Some(&synthetic), &options, &target, |p| {
        if let Progress::EpochEnd { metrics, .. } = p {
            log::info!(
                "epoch {}: train loss {:.4} acc {:.3}",
                metrics.epoch,
                metrics.train_loss,
                metrics.train_accuracy
            );
        }
    })
    .context("fine-tuning")?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    let pct = |v: Option<f32>| v.map_or("n/a".to_string(), |v| format!("{:.1} %", v * 100.0));
    println!(
        "{} user pairs ({} held out), {} synthetic pairs replayed from",
        report.user_pairs, report.user_held_out, report.synthetic_train
    );
    println!(
        "agreement with you (held out): {} -> {}",
        pct(report.user_agreement_before),
        pct(report.user_agreement_after)
    );
    println!(
        "synthetic validation accuracy: {} -> {}",
        pct(report.base_accuracy_before),
        pct(report.base_accuracy_after)
    );
    println!(
        "wrote {} (model {})",
        report.written.display(),
        report.model_id
    );
    if let Some(backup) = &report.backup {
        println!("previous model kept as {}", backup.display());
    }
    Ok(())
}
