//! How far a proposal's score moves as the capture grows behind it: the measure behind the
//! scoring worker's rules for when a score is stale and which spans it proposes while the
//! capture grows (`plugin/src/score_cache.rs`).
//!
//! For each WAV in a folder, the offline analysis gives its beats and features; for prefixes of
//! a quarter, half and three quarters of its beats, every candidate span (1-16 bars, the
//! plugin's defaults) is scored on the prefix and again on longer prefixes, as the plugin's
//! capture would have grown. Printed per growth factor, over all songs and prefixes: the median,
//! 95th percentile and maximum of |score change| for spans whose scoring windows the prefix held
//! whole and for those its end clipped ([`whole_at`]), beside the spread of the scores
//! themselves, and how many of the ten best spans (with whole windows) stay among the ten best.
//!
//! `cargo run --release -p cutscore-plugin --example score_drift -- FOLDER [MODEL]`
//! (MODEL: a checkpoint, e.g. a fine-tuned user model with a taste layer; default the shipped
//! model).

use std::path::{Path, PathBuf};

use candle_core::Device;
use cutscore_core::edit::Edit;
use cutscore_core::features::{BEAT_FEATURES, FeatureMatrix};
use cutscore_editing::candidates::{CandidateOptions, candidate_spans};
use cutscore_plugin::score_cache::whole_at;
use cutscore_plugin::session::grid_prefix;
use cutscore_reward::RewardModel;
use cutscore_reward::checkpoint::Checkpoint;
use cutscore_reward::scoring::{Track, score_edits};

const GROWTHS: [f64; 7] = [1.05, 1.1, 1.2, 1.25, 1.5, 2.0, 3.0];
const PREFIXES: [f64; 3] = [0.25, 0.5, 0.75];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let folder = PathBuf::from(args.first().map_or(".", String::as_str));
    let checkpoint = match args.get(1) {
        Some(path) => Checkpoint::read(Path::new(path))?,
        None => cutscore_reward::shipped::checkpoint()?,
    };
    let model = checkpoint.model(&Device::Cpu)?;
    let mut songs: Vec<PathBuf> = std::fs::read_dir(&folder)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "wav"))
        .collect();
    songs.sort();
    // Per growth: |changes| of spans whose windows the prefix held whole, of those it clipped
    // (the newest spans), top-10 overlaps; and every score, for their spread.
    let mut changes = vec![Vec::new(); GROWTHS.len()];
    let mut clipped_changes = vec![Vec::new(); GROWTHS.len()];
    let window = model.config().scoring_window();
    let mut kept_top = vec![Vec::new(); GROWTHS.len()];
    let mut all_scores = Vec::new();
    for song in &songs {
        let analysis = cutscore_analysis::analyze_file(song)?;
        let beats = analysis.features.beats();
        for prefix in PREFIXES {
            let short = (beats as f64 * prefix) as usize;
            let grid = grid_prefix(&analysis.grid, short);
            let options = CandidateOptions {
                min_bars: 1,
                max_bars: 16,
                ..CandidateOptions::default()
            };
            let spans = candidate_spans(&grid, &options);
            if spans.len() < 10 {
                continue;
            }
            let before = score(&model, &analysis.features, short, grid.meter, &spans)?;
            all_scores.extend_from_slice(&before);
            for (g, growth) in GROWTHS.iter().enumerate() {
                let long = ((short as f64 * growth).ceil() as usize).min(beats);
                if long <= short {
                    continue;
                }
                let after = score(&model, &analysis.features, long, grid.meter, &spans)?;
                let mut whole = (Vec::new(), Vec::new());
                for ((a, b), &span) in before.iter().zip(&after).zip(&spans) {
                    if whole_at(span, window) > short {
                        clipped_changes[g].push((a - b).abs());
                    } else {
                        changes[g].push((a - b).abs());
                        whole.0.push(*a);
                        whole.1.push(*b);
                    }
                }
                // The plugin proposes only spans with whole windows while the capture grows.
                let (top_before, top_after) = (top(&whole.0, 10), top(&whole.1, 10));
                kept_top[g].push(top_before.iter().filter(|i| top_after.contains(i)).count());
            }
        }
        eprintln!("{}: {beats} beats", song.display());
    }
    let mean = all_scores.iter().sum::<f32>() / all_scores.len() as f32;
    let spread = (all_scores.iter().map(|s| (s - mean).powi(2)).sum::<f32>()
        / all_scores.len() as f32)
        .sqrt();
    println!(
        "{} songs, {} scores: spread (std) of the scores {spread:.3}",
        songs.len(),
        all_scores.len()
    );
    println!(
        "growth | windows whole: median, p95, max |change| | windows clipped by the end: \
         median, p95, max | of the 10 best (whole windows), still among the 10 best"
    );
    for (g, growth) in GROWTHS.iter().enumerate() {
        let overlap = kept_top[g].iter().sum::<usize>() as f64 / kept_top[g].len() as f64;
        println!(
            "{growth:.2}x | {} | {} | {overlap:.1}",
            quantiles(&mut changes[g]),
            quantiles(&mut clipped_changes[g])
        );
    }
    Ok(())
}

/// "median, p95, max" of `values`.
fn quantiles(values: &mut [f32]) -> String {
    values.sort_by(f32::total_cmp);
    let q = |p: f64| values[((values.len() - 1) as f64 * p) as usize];
    format!("{:.4}, {:.4}, {:.4}", q(0.5), q(0.95), q(1.0))
}

/// Scores of `spans` on the first `beats` beats of the track.
fn score(
    model: &RewardModel,
    features: &FeatureMatrix,
    beats: usize,
    meter: u8,
    spans: &[(usize, usize)],
) -> Result<Vec<f32>, Box<dyn std::error::Error>> {
    let rows = FeatureMatrix::new(beats, features.as_slice()[..beats * BEAT_FEATURES].to_vec())?;
    let edits = spans
        .iter()
        .map(|&span| Edit::new(beats, [span]))
        .collect::<Result<Vec<_>, _>>()?;
    let track = Track {
        features: &rows,
        meter,
    };
    Ok(score_edits(model, track, &edits, 64)?)
}

/// Indices of the `n` highest scores.
fn top(scores: &[f32], n: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    order.truncate(n);
    order
}
