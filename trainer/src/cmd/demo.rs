//! `trainer demo [AUDIO]`: the whole pipeline with nothing but the binary. Synthesises a song
//! (or takes the given file), analyses it, lists the best candidate cuts with their scores,
//! fits it to about 75 % of its length and writes the edited WAV and its markers.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use cutscore_analysis::{TrackAnalysis, analyze_samples, beat_model};
use cutscore_core::audio::{Audio, WavFormat, write_wav};
use cutscore_editing::candidates::{CandidateOptions, rank_candidates};
use cutscore_editing::fit::{FitOptions, fit_to_length};
use cutscore_editing::markers::{audacity_labels, clock, join_markers, reaper_csv};
use cutscore_editing::render::DEFAULT_CROSSFADE_S;
use cutscore_reward::scoring::Track;
use cutscore_synth::{SongSpec, render as render_song};

use super::shared::{ModelArgs, Tracking, decode_and_analyze_bars, render_fit};

/// Length of the synthetic demo song.
const SONG_SECONDS: f64 = 75.0;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Audio file to edit (WAV, AIFF, FLAC, MP3, Ogg Vorbis) [default: a synthetic song, also
    /// written as `cutscore-demo.wav`].
    audio: Option<PathBuf>,
    /// Seed of the synthetic song.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Fit to this share of the song's length.
    #[arg(long, default_value_t = 0.75)]
    fraction: f64,
    /// Candidate cuts to list.
    #[arg(long, default_value_t = 5)]
    top: usize,
    /// Folder for the outputs.
    #[arg(long, default_value = ".")]
    out_dir: PathBuf,
    #[command(flatten)]
    model: ModelArgs,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.fraction > 0.0 && args.fraction < 1.0,
        "--fraction {} is not a share of the song; expected a number between 0 and 1",
        args.fraction
    );
    std::fs::create_dir_all(&args.out_dir)
        .with_context(|| format!("creating {}", args.out_dir.display()))?;
    let (model, info) = args.model.load()?;
    println!("model     {} ({})", info.model_id, describe(&info.metrics));

    let started = Instant::now();
    let (name, audio, analysis) = match &args.audio {
        Some(path) => {
            let (audio, analysis) =
                decode_and_analyze_bars(beat_model::shipped(), path, Tracking::default())?;
            let stem = path
                .file_stem()
                .map_or("song".into(), |s| s.to_string_lossy().into_owned());
            (stem, audio, analysis)
        }
        None => synthetic_song(args.seed, &args.out_dir)?,
    };
    println!(
        "song      {name}: {}, {:.1} BPM, {}/4, {} beats, {} bars (analysed in {:.2} s)",
        clock(audio.seconds()),
        analysis.tempo_bpm,
        analysis.meter,
        analysis.grid.len(),
        analysis.grid.bar_starts().len(),
        started.elapsed().as_secs_f64()
    );

    let track = Track {
        features: &analysis.features,
        meter: analysis.meter,
    };
    let started = Instant::now();
    let options = CandidateOptions {
        max_bars: 8,
        keep_intro_bars: 1,
        keep_outro_bars: 1,
        limit: args.top,
        strong_bar_parity: analysis.strong_bar_parity(),
        ..CandidateOptions::default()
    };
    let candidates = rank_candidates(&model, &analysis.grid, track, &options, 64)?;
    println!(
        "\ntop {} cuts (of 1-8 bars, scored in {:.2} s):",
        candidates.len(),
        started.elapsed().as_secs_f64()
    );
    for (rank, c) in candidates.iter().enumerate() {
        println!(
            "  {}. {:+.2}  cut {} ({}) -> resume {} ({}), {:.0} bars",
            rank + 1,
            c.score,
            c.start,
            clock(c.from_s),
            c.resume,
            clock(c.to_s),
            c.bars
        );
    }

    let target_s = audio.seconds() * args.fraction;
    let started = Instant::now();
    let fit = fit_to_length(
        &model,
        &analysis.grid,
        track,
        &FitOptions {
            target_s,
            slack_s: (audio.seconds() * 0.03).max(2.0),
            keep_intro_bars: 2,
            keep_outro_bars: 2,
            strong_bar_parity: analysis.strong_bar_parity(),
            ..FitOptions::default()
        },
    )?;
    let (rendered, list) = render_fit(&audio, &analysis.grid, &fit.best, DEFAULT_CROSSFADE_S)?;
    let markers = join_markers(&list.joins);
    let edited = args.out_dir.join(format!("{name}.edited.wav"));
    let labels = args.out_dir.join(format!("{name}.edited.txt"));
    let regions = args.out_dir.join(format!("{name}.edited.csv"));
    write_wav(&edited, &rendered.audio, WavFormat::Int24)?;
    write_text(&labels, &audacity_labels(&markers))?;
    write_text(&regions, &reaper_csv(&markers))?;
    println!(
        "\nfit to {:.0} % ({}): {} with {} joins, score {:+.2} (in {:.1} s){}",
        args.fraction * 100.0,
        clock(target_s),
        clock(rendered.audio.seconds()),
        fit.best.joins.len(),
        fit.best.score,
        started.elapsed().as_secs_f64(),
        fit.message
            .as_deref()
            .map(|m| format!("; {m}"))
            .unwrap_or_default()
    );
    for j in &fit.best.joins {
        println!(
            "  cut {} ({}) -> resume {} ({}), join score {:+.2}",
            j.from,
            clock(j.from_s),
            j.to,
            clock(j.to_s),
            j.score
        );
    }
    println!(
        "\nwrote {}\n      {} (Audacity labels)\n      {} (REAPER regions)",
        edited.display(),
        labels.display(),
        regions.display()
    );
    Ok(())
}

/// Renders the demo song, writes it beside the outputs and analyses it.
fn synthetic_song(seed: u64, dir: &Path) -> anyhow::Result<(String, Audio, TrackAnalysis)> {
    let mut spec = SongSpec::random(seed);
    spec.sample_rate = 44_100;
    spec.bars = spec.bars_for_seconds(SONG_SECONDS).max(spec.min_bars());
    let song = render_song(&spec).context("rendering the demo song")?;
    let analysis = analyze_samples(&song.mono(), song.sample_rate)?;
    let audio = Audio {
        sample_rate: song.sample_rate,
        channels: song.channels,
        samples: song.samples,
    };
    let path = dir.join("cutscore-demo.wav");
    write_wav(&path, &audio, WavFormat::Int16)?;
    println!("wrote     {} (synthetic song, seed {seed})", path.display());
    Ok(("cutscore-demo".into(), audio, analysis))
}

fn write_text(path: &Path, text: &str) -> anyhow::Result<()> {
    cutscore_core::atomic::write(path, text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

fn describe(metrics: &cutscore_reward::checkpoint::TrainingMetrics) -> String {
    match metrics.best_val_accuracy {
        Some(acc) => format!("validation accuracy {:.1} %", acc * 100.0),
        None => "no validation metrics".into(),
    }
}
