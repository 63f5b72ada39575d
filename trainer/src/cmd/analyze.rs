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
use cutscore_analysis::beat_model::BeatModel;
use cutscore_analysis::decode::decode_with;
use cutscore_analysis::{StreamingAnalyzer, TempoHint, analyze_file_with, steady_pulse};
use cutscore_core::features::{BEAT_FEATURES, FEATURE_SCHEMA_VERSION, FeatureMatrix};
use cutscore_core::grid::BeatGrid;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Audio file (WAV, AIFF, FLAC, MP3, Ogg Vorbis).
    audio: PathBuf,
    /// Run the causal (plugin) tracker over the file in host-sized blocks.
    #[arg(long)]
    streaming: bool,
    #[command(flatten)]
    tracker: super::shared::TrackerArgs,
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
    /// Half the tempo, where the offline tracker's slow reading found it.
    half_tempo_bpm: Option<f64>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let tracking = args.tracker.tracking()?;
    let hint = tracking.hint;
    let model = args.tracker.beat_model()?;
    let mut found = if args.streaming {
        anyhow::ensure!(
            tracking.half_beat_s.is_none(),
            "--half-beat moves the offline tracker's beats; the streaming tracker decides each \
             beat as it is heard (the plugin moves them when it settles the grid): leave out \
             --streaming or --half-beat"
        );
        streaming(&args, &model, hint)?
    } else {
        let analysis = analyze_file_with(&model, &args.audio, hint, tracking.half_beats_s())
            .with_context(|| format!("analysing {}", args.audio.display()))?;
        Found {
            grid: analysis.grid,
            features: analysis.features,
            tempo_bpm: analysis.tempo_bpm,
            confidence: analysis.confidence,
            half_tempo_bpm: analysis.half_tempo_bpm,
        }
    };
    super::shared::count_bars_from(
        &mut found.grid,
        &mut found.features,
        tracking.bar_line_s,
        &args.audio,
    )?;
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
    let steady = steady_pulse(&found.grid, found.confidence);
    if args.json {
        let document = serde_json::json!({
            "tempo_bpm": found.tempo_bpm,
            "meter": found.grid.meter,
            "beats": found.grid.beats,
            "downbeats": downbeats,
            "seconds": found.grid.duration_s,
            "confidence": found.confidence,
            "steady_pulse": steady,
            "half_tempo_bpm": found.half_tempo_bpm,
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
        if !steady {
            eprintln!(
                "warning: {}",
                super::shared::no_steady_pulse(&args.audio, found.confidence)
            );
        }
        if let Some(half) = found.half_tempo_bpm {
            eprintln!(
                "note: {}",
                super::shared::half_tempo_note(&args.audio, found.tempo_bpm, half)
            );
        }
    }
    Ok(())
}

/// The streaming tracker over the file, counting at `hint` from the start if given (as the
/// plugin's does after the editor's ½× or 2×).
fn streaming(args: &Args, model: &BeatModel, hint: Option<TempoHint>) -> anyhow::Result<Found> {
    let block = args.block.max(1);
    let mut state: Option<StreamState> = None;
    let mut failure: Option<anyhow::Error> = None;
    // Decoded packets are regrouped into host blocks of exactly `block` frames, as a host
    // delivers them; the file is never held whole.
    let mut pending: Vec<f32> = Vec::with_capacity(block);
    let mut samples = 0u64;
    let info = decode_with(&args.audio, |info, mono| {
        if failure.is_some() {
            return;
        }
        let stream = match state.as_mut() {
            Some(stream) => stream,
            None => match StreamState::new(model, block, info.sample_rate, hint) {
                Ok(stream) => state.insert(stream),
                Err(error) => {
                    failure = Some(error);
                    return;
                }
            },
        };
        samples += mono.len() as u64;
        for &sample in mono {
            pending.push(sample);
            if pending.len() == block {
                if let Err(error) = stream.push(&pending) {
                    failure = Some(error);
                    return;
                }
                pending.clear();
            }
        }
    })
    .with_context(|| format!("decoding {}", args.audio.display()))?;
    if let Some(error) = failure {
        return Err(error);
    }
    let mut stream = state.context("the file decoded to no audio")?;
    if !pending.is_empty() {
        stream.push(&pending)?;
    }
    stream.finish(samples as f64 / info.sample_rate as f64)
}

/// The streaming analyzer with what it reported so far, featurising beats as they complete.
struct StreamState {
    analyzer: StreamingAnalyzer,
    beats: Vec<f64>,
    positions: Vec<u8>,
    meter: u8,
    confidence: f32,
    rows: Vec<f32>,
    row: Vec<f32>,
}

impl StreamState {
    fn new(
        model: &BeatModel,
        block: usize,
        sample_rate: u32,
        hint: Option<TempoHint>,
    ) -> anyhow::Result<Self> {
        let mut analyzer = StreamingAnalyzer::with_model(model);
        analyzer.prepare(block, sample_rate)?;
        analyzer.count_at(hint);
        Ok(Self {
            analyzer,
            beats: Vec::new(),
            positions: Vec::new(),
            meter: 4,
            confidence: 0.0,
            rows: Vec::new(),
            row: vec![0.0; BEAT_FEATURES],
        })
    }

    fn push(&mut self, block: &[f32]) -> anyhow::Result<()> {
        self.analyzer.push(block)?;
        let before = self.beats.len();
        while let Some(beat) = self.analyzer.poll_beat() {
            self.beats.push(beat.time_s);
            self.positions.push(beat.beat_in_bar);
            self.meter = beat.meter;
            self.confidence = beat.confidence;
        }
        // Every beat but the newest is complete once a later beat has been reported.
        if self.beats.len() > before {
            let grid = partial_grid(
                &self.beats,
                &self.positions,
                self.meter,
                self.analyzer.duration_s(),
            )?;
            self.featurise(&grid, self.beats.len() - 1)?;
        }
        Ok(())
    }

    /// Features of the beats not yet featurised, up to (not including) `until`.
    fn featurise(&mut self, grid: &BeatGrid, until: usize) -> anyhow::Result<()> {
        while self.rows.len() / BEAT_FEATURES < until {
            let index = self.rows.len() / BEAT_FEATURES;
            self.analyzer.features_into(grid, index, &mut self.row)?;
            self.rows.extend_from_slice(&self.row);
        }
        Ok(())
    }

    fn finish(mut self, duration_s: f64) -> anyhow::Result<Found> {
        self.analyzer.finish()?;
        let grid = partial_grid(&self.beats, &self.positions, self.meter, duration_s)?;
        self.featurise(&grid, self.beats.len())?;
        let features = FeatureMatrix::new(self.beats.len(), std::mem::take(&mut self.rows))?;
        Ok(Found {
            tempo_bpm: grid.tempo_bpm().unwrap_or(0.0),
            grid,
            features,
            confidence: self.confidence,
            // The slow reading needs the whole track: the plugin offers it after a settle.
            half_tempo_bpm: None,
        })
    }
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
