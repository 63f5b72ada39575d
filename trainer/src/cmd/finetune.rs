//! `trainer finetune`: learn the user's taste from their accept/reject decisions (a taste layer
//! over the model's transformer, `cutscore_training::finetune`), with synthetic replay so the
//! craft is kept, and install it as the user's model (the previous one is kept as
//! `model.prev.safetensors`). The prefs folder is only read.

use std::path::PathBuf;

use anyhow::Context;
use cutscore_reward::device::{self, DeviceChoice};
use cutscore_reward::user_model;
use cutscore_training::finetune::{self, FinetuneOptions, FinetuneReport, FinetuneTarget, Stage};
use cutscore_training::pair_set::PairSet;
use cutscore_training::synthetic_pairs;
use indicatif::{ProgressBar, ProgressStyle};

use super::shared::{TasteArgs, resolve_model};

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
    /// [default: 1,500 freshly generated pairs of 75 songs].
    #[arg(long, value_name = "DIR")]
    synthetic: Option<PathBuf>,
    #[command(flatten)]
    taste: TasteArgs,
    /// Also draw agreement on the held-out songs against the number of decisions learned from
    /// into this PNG.
    #[arg(long, value_name = "PNG")]
    curve: Option<PathBuf>,
    /// Seeds which songs are held out, the cross-validation folds and the replay songs.
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
            let options = synthetic_pairs::replay_options(args.seed);
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
        curve: args.curve.is_some(),
        ..args.taste.options(args.seed)
    };
    let target = FinetuneTarget {
        device: &selected.device,
        out: &out,
        command: Some(std::env::args().collect::<Vec<_>>().join(" ")),
    };
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("{msg:24} [{bar:30}] {pos}/{len} {elapsed}")
            .expect("the template is valid")
            .progress_chars("=> "),
    );
    let report = finetune::finetune(&base, &user, Some(&synthetic), &options, &target, |stage| {
        let (message, done, total) = match stage {
            Stage::Scoring { done, total } => ("scoring your edits", done, total),
            Stage::Choosing { done, total } => ("learning your taste", done, total),
            Stage::Writing => ("writing the model", 1, 1),
        };
        if bar.message() != message {
            // Where no terminal shows the bar (the plugin's Learn button), the log says it.
            log::info!("{message}");
            bar.set_message(message);
        }
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    })
    .context("fine-tuning")?;
    bar.finish_and_clear();
    // One song leaves none to measure on: no curve, but the model is written all the same.
    let curve = args.curve.as_deref().filter(|_| !report.curve.is_empty());
    if let Some(path) = curve {
        crate::learning_curve::draw(path, &report.curve, report.user_agreement_before, 800, 500)
            .with_context(|| format!("drawing {}", path.display()))?;
    } else if args.curve.is_some() {
        log::warn!("no learning curve: a single song leaves none to measure on");
    }
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    print_report(&report, curve);
    Ok(())
}

fn print_report(report: &FinetuneReport, curve: Option<&std::path::Path>) {
    let pct = |v: Option<f32>| v.map_or("n/a".to_string(), |v| format!("{:.1} %", v * 100.0));
    println!(
        "{} pairs from your decisions on {} songs; {} synthetic pairs replayed",
        report.user_pairs, report.user_songs, report.synthetic_train
    );
    if report.held_out_songs == 0 {
        println!("agreement with you: not measured (a single song: none to hold out)");
    } else {
        println!(
            "agreement with you on {} songs learned without ({} pairs): {} -> {}",
            report.held_out_songs,
            report.held_out_pairs,
            pct(report.user_agreement_before),
            pct(report.user_agreement_after)
        );
    }
    println!(
        "craft kept, on {} synthetic pairs of unseen songs: {} -> {}",
        report.synthetic_val,
        pct(report.base_accuracy_before),
        pct(report.base_accuracy_after)
    );
    for point in &report.curve {
        println!(
            "  after {:>5} decisions ({:>3} songs): {}",
            point.decisions,
            point.songs,
            pct(Some(point.agreement))
        );
    }
    if let Some(path) = curve {
        println!("learning curve drawn to {}", path.display());
    }
    println!(
        "wrote {} (model {}, taste layer with sparsity {} and bound {}, {}{}) in {:.1} s",
        report.written.display(),
        report.model_id,
        report.sparsity,
        report.bound,
        if report.gated {
            "fading out below the edits you judged"
        } else {
            "acting on every edit"
        },
        if report.focused_on.is_empty() {
            String::new()
        } else {
            format!(", reading only the {}", report.focused_on.join(" and the "))
        },
        report.seconds
    );
    if let Some(backup) = &report.backup {
        println!("previous model kept as {}", backup.display());
    }
}
