//! `trainer synth`: render synthetic songs with exact ground truth.
//!
//! Writes `song.wav` and `song.truth.json` beside it (see `cutscore_synth`); with
//! `--evaluation-set DIR` writes every song of the fixed evaluation set into `DIR` instead,
//! which is what `bench/librosa_beats.py` and the beat-tracker evaluation read. With
//! `--soundfont FILE` the same songs are played by a General MIDI SoundFont's sampled
//! instruments instead of the synthesiser's voices (see `crate::gm_songs`); the truth is the same.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use cutscore_synth::spec::{MAX_BPM, MIN_BPM};
use cutscore_synth::{SongSpec, TempoChange};
use rustysynth::SoundFont;

use crate::gm_songs;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Seed of the song: key, chords, patterns and timbres are drawn from it.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Start tempo in beats per minute (default: drawn from the seed, 60-200).
    #[arg(long, conflicts_with = "evaluation_set")]
    bpm: Option<f64>,
    /// Beats per bar, 3 or 4 (default: drawn from the seed).
    #[arg(long, value_parser = clap::value_parser!(u8).range(3..=4), conflicts_with = "evaluation_set")]
    meter: Option<u8>,
    /// Length in bars (default: drawn from the seed, 30-60 s).
    #[arg(long, conflicts_with = "evaluation_set")]
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
    /// Play the songs with this General MIDI SoundFont's sampled instruments instead of the
    /// synthesiser's voices; without FILE, FluidR3 GM where Debian's fluid-soundfont-gm puts it.
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = gm_songs::DEFAULT_SOUNDFONT)]
    soundfont: Option<PathBuf>,
    /// Seed of the instruments, mix and humanisation of a --soundfont song (default: the
    /// song's own seed).
    #[arg(long, value_name = "SEED", requires = "soundfont")]
    voicing: Option<u64>,
}

/// How the songs are voiced.
enum Voices {
    /// The synthesiser's own voices.
    Synthesised,
    /// A General MIDI SoundFont; the voicing seed, if one was given.
    SoundFont(Arc<SoundFont>, Option<u64>),
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let voices = match &args.soundfont {
        Some(path) => Voices::SoundFont(gm_songs::load_soundfont(path)?, args.voicing),
        None => Voices::Synthesised,
    };
    if let Some(dir) = &args.evaluation_set {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create folder {}", dir.display()))?;
        for (name, spec) in cutscore_synth::evaluation_set() {
            let spec = SongSpec {
                sample_rate: args.sample_rate.unwrap_or(spec.sample_rate),
                ..spec
            };
            write_song(&spec, &voices, &dir.join(format!("{name}.wav")))
                .with_context(|| format!("evaluation song {name}"))?;
        }
        return Ok(());
    }
    let Some(out) = &args.out else {
        anyhow::bail!("give --out FILE or --evaluation-set DIR");
    };
    write_song(&spec_from(&args), &voices, out)
}

/// `SongSpec::random(seed)` with the flags applied. A new tempo scales a drawn ramp or step
/// target by the same factor, and a new tempo or meter keeps the drawn length in seconds.
fn spec_from(args: &Args) -> SongSpec {
    let drawn = SongSpec::random(args.seed);
    let mut spec = drawn.clone();
    if let Some(bpm) = args.bpm {
        let factor = bpm / drawn.bpm;
        spec.bpm = bpm;
        match &mut spec.tempo {
            TempoChange::Constant => {}
            TempoChange::Ramp { to_bpm } | TempoChange::Step { to_bpm, .. } => {
                *to_bpm = (*to_bpm * factor).clamp(MIN_BPM, MAX_BPM);
            }
        }
    }
    if let Some(meter) = args.meter {
        spec.meter = meter;
    }
    spec.bars = match args.bars {
        Some(bars) => bars,
        None if args.bpm.is_some() || args.meter.is_some() => {
            spec.bars_for_seconds(drawn.nominal_duration_s())
        }
        None => drawn.bars,
    };
    if let TempoChange::Step { at_bar, .. } = &mut spec.tempo {
        *at_bar = (spec.bars / 2).max(1);
    }
    if let Some(rate) = args.sample_rate {
        spec.sample_rate = rate;
    }
    spec
}

fn write_song(spec: &SongSpec, voices: &Voices, wav: &Path) -> anyhow::Result<()> {
    let song = match voices {
        Voices::Synthesised => cutscore_synth::render(spec).context("cannot render the song")?,
        Voices::SoundFont(font, voicing) => {
            gm_songs::render_gm(spec, font, voicing.unwrap_or(spec.seed))
                .context("cannot render the song with the SoundFont")?
        }
    };
    cutscore_synth::write_wav(wav, &song)?;
    let truth = cutscore_synth::truth_path_for(wav);
    cutscore_synth::write_truth(&truth, &song.truth)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn args(seed: u64, bpm: Option<f64>, meter: Option<u8>, bars: Option<usize>) -> Args {
        Args {
            seed,
            bpm,
            meter,
            bars,
            sample_rate: None,
            out: Some(PathBuf::from("song.wav")),
            evaluation_set: None,
            soundfont: None,
            voicing: None,
        }
    }

    #[test]
    fn flags_override_the_drawn_spec_and_keep_it_valid() {
        assert_eq!(spec_from(&args(5, None, None, None)), SongSpec::random(5));
        for seed in 0..64 {
            let drawn = SongSpec::random(seed);
            let bpm = (drawn.bpm * 1.5).min(MAX_BPM);
            let spec = spec_from(&args(seed, Some(bpm), Some(3), None));
            spec.validate().unwrap();
            assert_eq!(spec.meter, 3);
            // Same length in seconds, to within a bar.
            let bar_s = 180.0 / spec.bpm;
            let difference = (spec.nominal_duration_s() - drawn.nominal_duration_s()).abs();
            assert!(
                difference <= bar_s || spec.bars == spec.min_bars(),
                "seed {seed}"
            );
            if let (TempoChange::Ramp { to_bpm: a }, TempoChange::Ramp { to_bpm: b }) =
                (drawn.tempo, spec.tempo)
            {
                assert!((b - (a * bpm / drawn.bpm).clamp(MIN_BPM, MAX_BPM)).abs() < 1e-9);
            }
        }
        let fixed = spec_from(&args(9, None, None, Some(20)));
        assert_eq!(fixed.bars, 20);
    }
}
