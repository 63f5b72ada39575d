//! `trainer analyze AUDIO`: tempo, meter, beats and downbeats of a file, and optionally its
//! 121-feature matrix.
//!
//! The offline tracker runs by default; `--streaming` pushes the file through the plugin's
//! causal tracker in host-sized blocks instead, featurising each beat as soon as it is
//! complete, exactly as the plugin's analysis thread does.
//!
//! `--features FILE` writes JSON: `{"schema_version", "beat_features": 121, "beats": N,
//! "times": [N seconds], "values": [N rows of 121]}`, rows in beat order, columns as in
//! `docs/features.md`.

use std::path::PathBuf;

use anyhow::Context;
use cutscore_model::analysis::decode::decode_file;
use cutscore_model::analysis::{StreamingAnalyzer, analyze_file};
use cutscore_model::features::{BEAT_FEATURES, FEATURE_SCHEMA_VERSION, FeatureMatrix};
use cutscore_model::grid::BeatGrid;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Audio file (WAV, AIFF, FLAC, MP3, Ogg Vorbis).
    audio: PathBuf,
    /// Run the causal (plugin) tracker over the file in host-sized blocks.
    #[arg(long)]
    streaming: bool,
    /// Host block size in frames for --streaming.
    #[arg(long, default_value_t = 512)]
    block: usize,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Write the 121-feature matrix to this JSON file.
    #[arg(long)]
    features: Option<PathBuf>,
}

/// What either tracker found.
struct Found {
    grid: BeatGrid,
    features: FeatureMatrix,
    tempo_bpm: f64,
    confidence: f32,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let found = if args.streaming {
        streaming(&args)?
    } else {
        let analysis = analyze_file(&args.audio)
            .with_context(|| format!("analysing {}", args.audio.display()))?;
        Found {
            grid: analysis.grid,
            features: analysis.features,
            tempo_bpm: analysis.tempo_bpm,
            confidence: analysis.confidence,
        }
    };
    let downbeats: Vec<f64> = found
        .grid
        .bar_starts()
        .iter()
        .map(|&i| found.grid.beats[i])
        .collect();
    if let Some(path) = &args.features {
        let rows: Vec<&[f32]> = (0..found.features.beats())
            .map(|b| found.features.row(b))
            .collect();
        let document = serde_json::json!({
            "schema_version": FEATURE_SCHEMA_VERSION,
            "beat_features": BEAT_FEATURES,
            "beats": found.features.beats(),
            "times": found.grid.beats,
            "values": rows,
        });
        std::fs::write(path, serde_json::to_vec(&document)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if args.json {
        let document = serde_json::json!({
            "tempo_bpm": found.tempo_bpm,
            "meter": found.grid.meter,
            "beats": found.grid.beats,
            "downbeats": downbeats,
            "seconds": found.grid.duration_s,
            "confidence": found.confidence,
            "tracker": if args.streaming { "streaming" } else { "offline" },
        });
        println!("{document}");
    } else {
        println!(
            "{}: {:.1} s, {:.1} BPM, {}/4, {} beats, {} bars, confidence {:.2} ({})",
            args.audio.display(),
            found.grid.duration_s,
            found.tempo_bpm,
            found.grid.meter,
            found.grid.len(),
            downbeats.len(),
            found.confidence,
            if args.streaming {
                "streaming"
            } else {
                "offline"
            },
        );
        let beats: Vec<String> = found.grid.beats.iter().map(|t| format!("{t:.3}")).collect();
        println!("beats: {}", beats.join(" "));
        let bars: Vec<String> = downbeats.iter().map(|t| format!("{t:.3}")).collect();
        println!("downbeats: {}", bars.join(" "));
    }
    Ok(())
}

fn streaming(args: &Args) -> anyhow::Result<Found> {
    let audio =
        decode_file(&args.audio).with_context(|| format!("decoding {}", args.audio.display()))?;
    let mut analyzer = StreamingAnalyzer::new();
    analyzer.prepare(args.block, audio.sample_rate)?;
    let mut beats: Vec<f64> = Vec::new();
    let mut positions: Vec<u8> = Vec::new();
    let mut meter = 4u8;
    let mut confidence = 0.0f32;
    let mut rows: Vec<f32> = Vec::new();
    let mut row = vec![0.0f32; BEAT_FEATURES];
    for block in audio.mono.chunks(args.block.max(1)) {
        analyzer.push(block)?;
        let before = beats.len();
        while let Some(beat) = analyzer.poll_beat() {
            beats.push(beat.time_s);
            positions.push(beat.beat_in_bar);
            meter = beat.meter;
            confidence = beat.confidence;
        }
        // Every beat but the newest is complete once a later beat has been reported.
        if beats.len() > before {
            let grid = partial_grid(&beats, &positions, meter, analyzer.duration_s())?;
            while rows.len() / BEAT_FEATURES + 1 < beats.len() {
                let index = rows.len() / BEAT_FEATURES;
                analyzer.features_into(&grid, index, &mut row)?;
                rows.extend_from_slice(&row);
            }
        }
    }
    analyzer.finish()?;
    let duration = audio.duration_s();
    let grid = partial_grid(&beats, &positions, meter, duration)?;
    while rows.len() / BEAT_FEATURES < beats.len() {
        let index = rows.len() / BEAT_FEATURES;
        analyzer.features_into(&grid, index, &mut row)?;
        rows.extend_from_slice(&row);
    }
    let features = FeatureMatrix::new(beats.len(), rows)?;
    Ok(Found {
        tempo_bpm: grid.tempo_bpm().unwrap_or(0.0),
        grid,
        features,
        confidence,
    })
}

/// The beats so far as a grid in one meter (the latest belief), positions as reported.
fn partial_grid(
    beats: &[f64],
    positions: &[u8],
    meter: u8,
    duration_s: f64,
) -> anyhow::Result<BeatGrid> {
    let meter = positions
        .iter()
        .copied()
        .max()
        .map_or(meter, |p| meter.max(p + 1));
    let duration_s = duration_s.max(beats.last().copied().unwrap_or(0.0));
    Ok(BeatGrid::new(
        beats.to_vec(),
        positions.to_vec(),
        meter,
        duration_s,
    )?)
}
