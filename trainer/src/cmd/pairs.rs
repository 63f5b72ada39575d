//! `trainer pairs`: synthetic preference pairs judged by the editing oracle, written as a
//! prefs folder (`docs/prefs-format.md`, `docs/oracle.md`).

use std::path::PathBuf;

use anyhow::Context;
use cutscore_training::synthetic_pairs::{PairOptions, generate};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Pairs to generate.
    #[arg(long, default_value_t = 5000)]
    count: usize,
    /// Seeds the songs, edits and labels: the same seed writes the same pairs.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Pairs per song (songs are 30-60 s; rendering and analysing one is the slow part).
    #[arg(long, default_value_t = 50)]
    per_song: usize,
    /// Width of the oracle's logistic curve in craft points: smaller gives surer, less noisy
    /// labels.
    #[arg(long, default_value_t = cutscore_training::oracle::DEFAULT_TEMPERATURE)]
    temperature: f32,
    /// Pairs the oracle scores closer than this many craft points are redrawn.
    #[arg(long, default_value_t = cutscore_training::synthetic_pairs::DEFAULT_MIN_MARGIN)]
    min_margin: f32,
    /// Pairs the oracle scores further apart than this many craft points are redrawn too: a
    /// set of close calls, the pairs a trained model still gets wrong [default: no ceiling].
    #[arg(long)]
    max_margin: Option<f32>,
    /// Both margins are per join: pairs of n-join edits are kept n * min to n * max apart.
    #[arg(long)]
    margin_per_join: bool,
    /// Soft labels: the oracle's majority call, never sampled, with its probability (on a curve
    /// as many times as wide as the edits have joins) as the confidence; training on them
    /// distils the oracle's margins (docs/oracle.md).
    #[arg(long)]
    soft_labels: bool,
    /// Prefs folder to write (created if needed; must not already hold a decision log).
    #[arg(long)]
    out: PathBuf,
    /// Print a JSON summary instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let log = args.out.join(cutscore_core::prefs::DECISIONS_FILE);
    anyhow::ensure!(
        !log.exists(),
        "{} already exists; expected a new or empty folder (pairs are never appended to an existing log)",
        log.display()
    );
    let options = PairOptions {
        count: args.count,
        seed: args.seed,
        pairs_per_song: args.per_song,
        temperature: args.temperature,
        min_margin: args.min_margin,
        max_margin: args.max_margin.unwrap_or(f32::INFINITY),
        margin_per_join: args.margin_per_join,
        soft_labels: args.soft_labels,
        ..PairOptions::default()
    };
    let bar = ProgressBar::new(args.count as u64).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} pairs, {per_sec}, eta {eta}")
            .expect("the template is valid"),
    );
    let started = std::time::Instant::now();
    let summary = generate(&args.out, &options, |done| bar.set_position(done as u64))
        .with_context(|| format!("generating pairs into {}", args.out.display()))?;
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    if args.json {
        let mut value = serde_json::to_value(&summary)?;
        value["seconds"] = seconds.into();
        value["out"] = args.out.display().to_string().into();
        println!("{value}");
    } else {
        println!(
            "{} pairs on {} songs ({} too short to edit, skipped) in {seconds:.1} s ({:.0} pairs/s) -> {}",
            summary.pairs,
            summary.songs,
            summary.songs_skipped,
            summary.pairs as f64 / seconds,
            args.out.display()
        );
        println!(
            "a preferred {} / b preferred {}; mean label confidence {:.3}; {} labels against the oracle's majority; {} close calls and {} clear ones redrawn",
            summary.a_preferred,
            summary.pairs - summary.a_preferred,
            summary.mean_confidence,
            summary.flipped,
            summary.close_redrawn,
            summary.far_redrawn
        );
    }
    Ok(())
}
