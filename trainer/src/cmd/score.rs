//! `trainer score`: analyse a song and list its best candidate cuts, ranked by the reward model.

use std::path::PathBuf;

use cutscore_editing::candidates::{CandidateOptions, rank_candidates};
use cutscore_editing::markers::clock;
use cutscore_reward::scoring::Track;

use super::shared::{ModelArgs, TrackerArgs, analyze_bars};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Audio file to analyse (WAV, AIFF, FLAC, MP3, Ogg Vorbis).
    audio: PathBuf,
    #[command(flatten)]
    tracker: TrackerArgs,
    #[command(flatten)]
    model: ModelArgs,
    /// How many of the best candidates to list.
    #[arg(long, default_value_t = 10)]
    top: usize,
    /// Shortest cut, in bars.
    #[arg(long, default_value_t = 1)]
    min_bars: usize,
    /// Longest cut, in bars.
    #[arg(long, default_value_t = 16)]
    max_bars: usize,
    /// Also propose cuts that start on any beat, not only on downbeats.
    #[arg(long)]
    beat_aligned: bool,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.min_bars >= 1 && args.min_bars <= args.max_bars,
        "--min-bars must be at least 1 and at most --max-bars"
    );
    let (model, info) = args.model.load()?;
    let network = args.tracker.beat_model()?;
    let analysis = analyze_bars(&network, &args.audio, args.tracker.tracking()?)?;
    let options = CandidateOptions {
        min_bars: args.min_bars,
        max_bars: args.max_bars,
        beat_aligned: args.beat_aligned,
        limit: args.top,
        strong_bar_parity: analysis.strong_bar_parity(),
        ..CandidateOptions::default()
    };
    let track = Track {
        features: &analysis.features,
        meter: analysis.meter,
    };
    let candidates = rank_candidates(&model, &analysis.grid, track, &options, 64)?;
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "audio": args.audio,
                "seconds": analysis.duration_s,
                "tempo_bpm": analysis.tempo_bpm,
                "meter": analysis.meter,
                "model_id": info.model_id,
                "candidates": candidates,
            })
        );
        return Ok(());
    }
    println!(
        "{}: {:.1} s, {:.1} BPM, {}/4 (model {})",
        args.audio.display(),
        analysis.duration_s,
        analysis.tempo_bpm,
        analysis.meter,
        info.model_id
    );
    println!("rank  score   cut from            resume at           bars");
    for (rank, c) in candidates.iter().enumerate() {
        println!(
            "{:>4}  {:>6.2}  {:>7} {:>10}  {:>7} {:>10}  {:>4}",
            rank + 1,
            c.score,
            c.start.to_string(),
            clock(c.from_s),
            c.resume.to_string(),
            clock(c.to_s),
            c.bars
        );
    }
    Ok(())
}
