//! `trainer synth`: render synthetic songs with exact ground truth.
//!
//! Writes `song.wav` and `song.truth.json` beside it (see `cutscore_model::synth`); with
//! `--evaluation-set DIR` writes every song of the fixed evaluation set into `DIR` instead,
//! which is what `bench/librosa_beats.py` and the beat-tracker evaluation read.

use std::path::{Path, PathBuf};

use anyhow::Context;
use cutscore_model::synth::{self, SongSpec};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Seed of the song: key, chords, patterns and timbres are drawn from it.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Start tempo in beats per minute (default: drawn from the seed, 60-200).
    #[arg(long)]
    bpm: Option<f64>,
    /// Beats per bar, 3 or 4 (default: drawn from the seed).
    #[arg(long, value_parser = clap::value_parser!(u8).range(3..=4))]
    meter: Option<u8>,
    /// Length in bars (default: drawn from the seed, 30-60 s).
    #[arg(long)]
    bars: Option<usize>,
    /// Sample rate of the WAV file in Hz.
    #[arg(long)]
    sample_rate: Option<u32>,
    /// Where to write the song; the truth goes beside it as `<name>.truth.json`.
    #[arg(
        long,
        required_unless_present = "evaluation_set",
        conflicts_with = "evaluation_set"
    )]
    out: Option<PathBuf>,
    /// Write the whole evaluation set (`<name>.wav` + `<name>.truth.json` each) into this
    /// folder, creating it if needed.
    #[arg(long, value_name = "DIR")]
    evaluation_set: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if let Some(dir) = &args.evaluation_set {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create folder {}", dir.display()))?;
        for (name, spec) in synth::evaluation_set() {
            let spec = SongSpec {
                sample_rate: args.sample_rate.unwrap_or(spec.sample_rate),
                ..spec
            };
            write_song(&spec, &dir.join(format!("{name}.wav")))
                .with_context(|| format!("evaluation song {name}"))?;
        }
        return Ok(());
    }
    let Some(out) = &args.out else {
        anyhow::bail!("give --out FILE or --evaluation-set DIR");
    };
    let mut spec = SongSpec::random(args.seed);
    if let Some(bpm) = args.bpm {
        spec.bpm = bpm;
    }
    if let Some(meter) = args.meter {
        spec.meter = meter;
    }
    // Keep the drawn length in seconds when the tempo or meter changed.
    if args.bpm.is_some() || args.meter.is_some() {
        let seconds = SongSpec::random(args.seed).nominal_duration_s();
        spec.bars = spec.bars_for_seconds(seconds);
        if let synth::TempoChange::Step { at_bar, .. } = &mut spec.tempo {
            *at_bar = spec.bars / 2;
        }
    }
    if let Some(bars) = args.bars {
        spec.bars = bars;
        if let synth::TempoChange::Step { at_bar, .. } = &mut spec.tempo {
            *at_bar = (bars / 2).max(1);
        }
    }
    if let Some(rate) = args.sample_rate {
        spec.sample_rate = rate;
    }
    write_song(&spec, out)
}

fn write_song(spec: &SongSpec, wav: &Path) -> anyhow::Result<()> {
    let song = synth::render(spec).context("cannot render the song")?;
    synth::write_wav(wav, &song)?;
    let truth = synth::truth_path_for(wav);
    synth::write_truth(&truth, &song.truth)?;
    log::info!(
        "wrote {} ({:.1} s, {} BPM, {}/4, {} beats) and {}",
        wav.display(),
        song.truth.duration_s,
        spec.bpm,
        spec.meter,
        song.truth.beats.len(),
        truth.display()
    );
    Ok(())
}
