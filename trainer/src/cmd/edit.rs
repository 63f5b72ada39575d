//! `trainer edit`: fit a song to a target length, render it with crossfades, write markers.

use std::path::PathBuf;

use anyhow::{Context, bail};
use cutscore_core::audio::{WavFormat, write_wav};
use cutscore_editing::fit::{FitEdit, FitOptions, fit_to_length};
use cutscore_editing::markers::{MarkerFormat, clock, join_markers, write_markers};
use cutscore_editing::render::DEFAULT_CROSSFADE_S;
use cutscore_reward::scoring::Track;

use super::shared::{ModelArgs, TrackerArgs, decode_and_analyze_bars, render_fit};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Audio file to edit (WAV, AIFF, FLAC, MP3, Ogg Vorbis).
    audio: PathBuf,
    #[command(flatten)]
    tracker: TrackerArgs,
    /// Target length: seconds (`150`) or minutes:seconds (`2:30`).
    #[arg(long, value_parser = parse_duration)]
    target: f64,
    /// Accepted distance from the target, in seconds.
    #[arg(long, default_value_t = 5.0)]
    slack: f64,
    /// Bars at the start that are always kept.
    #[arg(long, default_value_t = 4)]
    keep_intro: usize,
    /// Bars at the end that are always kept.
    #[arg(long, default_value_t = 4)]
    keep_outro: usize,
    /// Least number of bars played between two joins.
    #[arg(long, default_value_t = 4)]
    min_gap_bars: usize,
    /// Crossfade at each join, in seconds (shortened where a join needs it).
    #[arg(long, default_value_t = DEFAULT_CROSSFADE_S)]
    crossfade: f64,
    /// Where to write the edited audio (WAV).
    #[arg(short, long)]
    out: PathBuf,
    /// WAV sample format: 16 (dithered), 24 or float.
    #[arg(long, default_value = "24")]
    format: WavFormat,
    /// Also write markers: .txt (Audacity labels), .csv (REAPER) or .json (edit list).
    #[arg(long)]
    markers: Option<PathBuf>,
    #[command(flatten)]
    model: ModelArgs,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// Parses `150`, `150.5`, `2:30` or `2:30.5` into seconds.
pub fn parse_duration(text: &str) -> Result<f64, String> {
    let seconds = match text.split_once(':') {
        Some((minutes, seconds)) => {
            let minutes: u32 = minutes
                .trim()
                .parse()
                .map_err(|_| format!("`{text}`: minutes must be a whole number"))?;
            let seconds: f64 = seconds
                .trim()
                .parse()
                .map_err(|_| format!("`{text}`: expected MM:SS"))?;
            if !(0.0..60.0).contains(&seconds) {
                return Err(format!("`{text}`: seconds must be below 60"));
            }
            f64::from(minutes) * 60.0 + seconds
        }
        None => text
            .trim()
            .parse()
            .map_err(|_| format!("`{text}`: expected seconds or MM:SS"))?,
    };
    if seconds.is_finite() && seconds > 0.0 {
        Ok(seconds)
    } else {
        Err(format!("`{text}`: expected a positive length"))
    }
}

fn joins_json(edit: &FitEdit) -> serde_json::Value {
    serde_json::json!({
        "output_seconds": edit.output_seconds,
        "score": edit.score,
        "joins": edit.joins.iter().map(|j| serde_json::json!({
            "from_s": j.from_s,
            "to_s": j.to_s,
            "from": j.from.to_string(),
            "to": j.to.to_string(),
            "score": j.score,
        })).collect::<Vec<_>>(),
    })
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if let Some(markers) = &args.markers
        && MarkerFormat::from_path(markers).is_none()
    {
        bail!(
            "{}: markers must be a .txt (Audacity), .csv (REAPER) or .json (edit list) file",
            markers.display()
        );
    }
    let (model, _) = args.model.load()?;
    let network = args.tracker.beat_model()?;
    let (audio, analysis) =
        decode_and_analyze_bars(&network, &args.audio, args.tracker.tracking()?)?;
    let options = FitOptions {
        target_s: args.target,
        slack_s: args.slack,
        keep_intro_bars: args.keep_intro,
        keep_outro_bars: args.keep_outro,
        min_bars_between_joins: args.min_gap_bars,
        strong_bar_parity: analysis.strong_bar_parity(),
        ..FitOptions::default()
    };
    let track = Track {
        features: &analysis.features,
        meter: analysis.meter,
    };
    let fit = fit_to_length(&model, &analysis.grid, track, &options)?;
    if let Some(message) = &fit.message {
        if fit.best.joins.is_empty() && fit.best.edit.removed().is_empty() {
            bail!(
                "cannot fit {} to {}: {message}",
                args.audio.display(),
                clock(args.target)
            );
        }
        eprintln!(
            "warning: {message}; writing the closest edit ({})",
            clock(fit.best.output_seconds)
        );
    }
    let (rendered, list) = render_fit(&audio, &analysis.grid, &fit.best, args.crossfade)?;
    write_wav(&args.out, &rendered.audio, args.format)?;
    if let Some(path) = &args.markers {
        write_markers(path, &list, &join_markers(&list.joins))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if args.json {
        let mut json = joins_json(&fit.best);
        json["output_seconds"] = serde_json::json!(rendered.audio.seconds());
        json["met_target"] = serde_json::json!(fit.met_target);
        json["message"] = serde_json::json!(fit.message);
        json["confidence"] = serde_json::json!(analysis.confidence);
        json["steady_pulse"] = serde_json::json!(analysis.steady_pulse());
        json["output"] = serde_json::json!(args.out);
        json["variations"] = fit.variations.iter().map(joins_json).collect();
        println!("{json}");
        return Ok(());
    }
    println!(
        "{}: {} -> {} (target {} +- {:.0} s), score {:.2}, written to {}",
        args.audio.display(),
        clock(audio.seconds()),
        clock(rendered.audio.seconds()),
        clock(args.target),
        args.slack,
        fit.best.score,
        args.out.display()
    );
    for (i, variation) in fit.variations.iter().enumerate() {
        println!(
            "variation {} ({}, score {:.2}):",
            i + 1,
            clock(variation.output_seconds),
            variation.score
        );
        for j in &variation.joins {
            println!(
                "  cut {} {} -> resume {} {}  (join score {:.2})",
                j.from,
                clock(j.from_s),
                j.to,
                clock(j.to_s),
                j.score
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_duration;

    #[test]
    fn durations_parse_as_seconds_or_minutes_and_seconds() {
        assert_eq!(parse_duration("150"), Ok(150.0));
        assert_eq!(parse_duration("2:30"), Ok(150.0));
        assert_eq!(parse_duration("2:30.5"), Ok(150.5));
        assert!(parse_duration("2:75").is_err());
        assert!(parse_duration("-3").is_err());
        assert!(parse_duration("abc").is_err());
        assert!(parse_duration("0").is_err());
    }
}
