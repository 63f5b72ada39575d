//! `trainer train`: train a reward model on preference pairs (a prefs folder, usually from
//! `trainer pairs`), split 85/15 by song, with early stopping; writes the best model, its
//! `metrics.json` and `curves.png` beside it.

use std::path::PathBuf;

use anyhow::Context;
use candle_nn::VarMap;
use cutscore_reward::checkpoint::{Checkpoint, Provenance};
use cutscore_reward::device::{self, DeviceChoice};
use cutscore_reward::{Config, RewardModel};
use cutscore_training::bradley_terry::TrainConfig;
use cutscore_training::pair_set::PairSet;
use cutscore_training::run::{self, Progress, RunOptions, RunOutput};
use indicatif::{ProgressBar, ProgressStyle};

/// Share of songs held out for validation.
const VALIDATION_SHARE: f64 = 0.15;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Prefs folder of preference pairs (`trainer pairs --out`).
    #[arg(long)]
    pairs: PathBuf,
    /// Where to write the model; `metrics.json` and `curves.png` go beside it.
    #[arg(long)]
    out: PathBuf,
    /// Where to run: auto (CUDA if available), cpu or cuda.
    #[arg(long, default_value = "auto")]
    device: DeviceChoice,
    /// Seeds the initial weights, the song split and the shuffling.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Most epochs.
    #[arg(long, default_value_t = 30)]
    epochs: usize,
    /// Stop after this many epochs without a lower validation loss.
    #[arg(long, default_value_t = 4)]
    patience: usize,
    /// Beats the model reads around each join (stored with the model, used whenever it scores).
    #[arg(long, default_value_t = cutscore_core::edit::DEFAULT_WINDOW)]
    window: usize,
    /// Pairs per optimiser step.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// AdamW learning rate.
    #[arg(long, default_value_t = 3e-4)]
    learning_rate: f64,
    /// Dropout while training, in [0, 1) (stored with the model; scoring never drops).
    /// Default: the `--init` model's, else 0.1. Going on at 0 fits a trained model more
    /// precisely once it no longer overfits.
    #[arg(long)]
    dropout: Option<f32>,
    /// Train the tiny test configuration instead of the full model.
    #[arg(long)]
    tiny: bool,
    /// Start from this model's weights and dimensions (its window included) instead of fresh
    /// ones, to go on training it on more pairs.
    #[arg(long, conflicts_with_all = ["tiny", "window"])]
    init: Option<PathBuf>,
    /// Print the final metrics as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let set = PairSet::load(&args.pairs)
        .with_context(|| format!("reading pairs from {}", args.pairs.display()))?;
    let (train, val) = set.split_by_track(VALIDATION_SHARE, args.seed);
    anyhow::ensure!(
        !val.is_empty(),
        "{} holds pairs of {} song(s); expected at least 2 so some can be held out",
        args.pairs.display(),
        set.track_ids().len()
    );
    if let Some(parent) = args.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let selected = device::select(args.device)?;
    let (model, varmap, base_model) = match &args.init {
        Some(path) => {
            let checkpoint =
                Checkpoint::read(path).with_context(|| format!("loading {}", path.display()))?;
            if checkpoint.taste.is_some() {
                log::warn!(
                    "{} has a taste layer; training goes on from its transformer only, and the \
                     model written has no layer (run `trainer finetune` on it again)",
                    path.display()
                );
            }
            let dropout = args.dropout.unwrap_or(checkpoint.info.config.dropout);
            let (model, varmap) = checkpoint.trainable(dropout, &selected.device)?;
            (model, varmap, Some(checkpoint.info.model_id))
        }
        None => {
            let base = if args.tiny {
                Config::tiny()
            } else {
                Config::default()
            };
            let config = Config {
                window: args.window,
                dropout: args.dropout.unwrap_or(base.dropout),
                ..base
            };
            let varmap = VarMap::new();
            let model = RewardModel::init(&config, &varmap, &selected.device, args.seed)
                .context("building the model")?;
            (model, varmap, None)
        }
    };
    let config = model.config().clone();
    let options = RunOptions {
        epochs: args.epochs,
        patience: args.patience,
        batch: args.batch,
        seed: args.seed,
        train: TrainConfig {
            learning_rate: args.learning_rate,
            ..TrainConfig::default()
        },
    };
    let output = RunOutput {
        model: &args.out,
        provenance: Provenance {
            pairs: train.len(),
            seeds: vec![args.seed],
            base_model,
            command: Some(std::env::args().collect::<Vec<_>>().join(" ")),
            ..Provenance::default()
        },
        device: selected.name.clone(),
    };
    log::info!(
        "{} training pairs on {} songs, {} validation pairs on {} songs; {} parameters",
        train.len(),
        train.track_ids().len(),
        val.len(),
        val.track_ids().len(),
        config.parameter_count()
    );
    let bar = ProgressBar::hidden();
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("epoch {prefix} {bar:30} {pos}/{len} steps {msg}")
            .expect("the template is valid"),
    );
    let curves = args.out.with_file_name("curves.png");
    let mut epochs = Vec::new();
    let metrics = run::train(
        model,
        varmap,
        &train,
        &val,
        &options,
        &output,
        |p| match p {
            Progress::EpochStart { epoch, steps } => {
                bar.reset();
                bar.set_length(steps as u64);
                bar.set_prefix(epoch.to_string());
            }
            Progress::Step { stats } => {
                bar.inc(1);
                bar.set_message(format!("loss {:.4} acc {:.3}", stats.loss, stats.accuracy));
            }
            Progress::EpochEnd { metrics, improved } => {
                // NOTE: `suspend`, not `println`: a hidden bar (no terminal) drops `println`.
                bar.suspend(|| {
                    eprintln!(
                        "epoch {:>3}: train loss {:.4} acc {:.3} | val loss {:.4} acc {:.3}{}",
                        metrics.epoch,
                        metrics.train_loss,
                        metrics.train_accuracy,
                        metrics.val_loss,
                        metrics.val_accuracy,
                        if improved { "  (saved)" } else { "" }
                    )
                });
                epochs.push(metrics.clone());
                if let Err(e) = crate::curves::draw(&curves, &epochs, 800, 600) {
                    log::warn!("cannot draw {}: {e:#}", curves.display());
                }
            }
        },
    )
    .context("training")?;
    bar.finish_and_clear();
    if args.json {
        println!("{}", serde_json::to_string(&metrics)?);
    } else {
        println!(
            "best epoch {} (val acc {:.3}); {}; {:.1} s on {} -> {}",
            metrics.best_epoch.unwrap_or(0),
            metrics.best_val_accuracy.unwrap_or(0.0),
            metrics.stop_reason.as_deref().unwrap_or(""),
            metrics.wall_seconds.unwrap_or(0.0),
            selected.name,
            args.out.display()
        );
    }
    Ok(())
}
