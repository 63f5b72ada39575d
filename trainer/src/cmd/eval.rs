//! `trainer eval`: how well a model agrees with a prefs folder's pairs: accuracy, loss,
//! calibration by the model's confidence, reward mean and spread.

use std::path::PathBuf;

use anyhow::Context;
use cutscore_reward::device::{self, DeviceChoice};
use cutscore_reward::shipped;
use cutscore_training::bradley_terry::TrainConfig;
use cutscore_training::pair_set::PairSet;
use cutscore_training::scorecard;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The model to evaluate [default: the shipped model].
    #[arg(long)]
    model: Option<PathBuf>,
    /// Prefs folder of pairs (synthetic comparisons or the user's decisions).
    #[arg(long)]
    pairs: PathBuf,
    /// Where to run: auto (CUDA if available), cpu or cuda.
    #[arg(long, default_value = "auto")]
    device: DeviceChoice,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let (checkpoint, _) =
        shipped::given_or_shipped(args.model.as_deref()).with_context(|| match &args.model {
            Some(path) => format!("loading {}", path.display()),
            None => "loading the shipped model".into(),
        })?;
    let set = PairSet::load(&args.pairs)
        .with_context(|| format!("reading pairs from {}", args.pairs.display()))?;
    let selected = device::select(args.device)?;
    let model = checkpoint.model(&selected.device)?;
    let card = scorecard::evaluate(&model, &set, &TrainConfig::default(), 128)
        .context("scoring the pairs")?;
    if args.json {
        let mut value = serde_json::to_value(&card)?;
        value["model_id"] = checkpoint.info.model_id.into();
        value["skipped_lines"] = set.report.skipped.len().into();
        println!("{value}");
        return Ok(());
    }
    println!(
        "{} pairs: accuracy {:.3} (labels' own confidence {:.3}), loss {:.4}",
        card.pairs, card.accuracy, card.label_confidence, card.loss
    );
    println!(
        "reward mean {:.3}, spread {:.3}; mean margin chosen - rejected {:.3}",
        card.reward_mean, card.reward_std, card.margin_mean
    );
    println!(
        "calibration (expected error {:.3}):",
        card.calibration_error
    );
    for b in &card.calibration {
        match (b.confidence, b.accuracy) {
            (Some(c), Some(a)) => println!(
                "  model confidence {:.1}-{:.1}: {:>6} pairs, mean confidence {c:.3}, accuracy {a:.3}",
                b.low, b.high, b.pairs
            ),
            _ => println!("  model confidence {:.1}-{:.1}: no pairs", b.low, b.high),
        }
    }
    Ok(())
}
