//! Fitting a song to a target length: the set of bar-aligned cuts whose result lands within
//! `target ± slack` and that the reward model likes best, under hard constraints.
//!
//! Method (dynamic programming over join candidates, as radiotool's `retarget` does with a
//! hand-made join cost, but with the reward model as the objective):
//! 1. Every allowed cut (whole bars, `lengths` bars long, on downbeats, outside the kept intro,
//!    outro and keep-regions) is scored by the reward model as a one-join edit. Scoring reads a
//!    bounded window around the join, so this costs the same per cut whatever the song length.
//! 2. Because an edit's score is the mean of its join windows' scores, a set of cuts far enough
//!    apart scores about the mean of its cuts' scores. A DP over downbeats finds, for each
//!    number of cuts `k` and each removed duration (in 0.25 s steps), the set with the largest
//!    sum of cut scores, respecting the minimum distance between joins and the regions that
//!    must be removed.
//! 3. Every DP result that lands within the slack is ranked by mean cut score; the best few are
//!    rescored exactly as whole edits, and the best [`FitOptions::variations`] distinct edits
//!    are returned, best first.
//!
//! When no combination meets the target, the edit whose length is closest to it is returned
//! with `met_target == false` and a message saying why.

use std::ops::Range;

use serde::Serialize;

use super::candidates::{BarBeat, bar_beats};
use crate::edit::Edit;
use crate::grid::BeatGrid;
use crate::reward::scoring::{Track, score_edits};
use crate::reward::{ModelError, RewardModel};

/// Constraints and search settings.
#[derive(Debug, Clone, PartialEq)]
pub struct FitOptions {
    /// Desired length of the result, in seconds.
    pub target_s: f64,
    /// Accepted distance from the target, in seconds.
    pub slack_s: f64,
    /// Bars at the start that are always kept.
    pub keep_intro_bars: usize,
    /// Bars at the end that are always kept.
    pub keep_outro_bars: usize,
    /// Source-time regions that must be kept.
    pub keep_regions: Vec<Range<f64>>,
    /// Source-time regions that must be removed.
    pub remove_regions: Vec<Range<f64>>,
    /// Least number of bars played between two joins.
    pub min_bars_between_joins: usize,
    /// Cut lengths tried, in bars. The default, [`DEFAULT_LENGTHS`], halves the model
    /// evaluations of trying every length from 1 to 16.
    pub lengths: Vec<usize>,
    /// How many distinct edits to return.
    pub variations: usize,
}

impl Default for FitOptions {
    fn default() -> Self {
        Self {
            target_s: 0.0,
            slack_s: 5.0,
            keep_intro_bars: 4,
            keep_outro_bars: 4,
            keep_regions: Vec::new(),
            remove_regions: Vec::new(),
            min_bars_between_joins: 4,
            lengths: DEFAULT_LENGTHS.to_vec(),
            variations: 3,
        }
    }
}

/// One join of a fitted edit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FitJoin {
    /// Source time where the cut starts.
    pub from_s: f64,
    /// Source time where playback resumes.
    pub to_s: f64,
    pub from: BarBeat,
    pub to: BarBeat,
    /// The reward model's score of this cut alone.
    pub score: f32,
}

/// A fitted edit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FitEdit {
    pub edit: Edit,
    pub output_seconds: f64,
    /// The reward model's score of the whole edit.
    pub score: f32,
    pub joins: Vec<FitJoin>,
}

/// The result of fitting.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FitResult {
    /// Whether `best` lands within the slack.
    pub met_target: bool,
    /// Why the target could not be met, when it could not.
    pub message: Option<String>,
    pub best: FitEdit,
    /// Up to `variations` distinct edits, best first (the first is `best`).
    pub variations: Vec<FitEdit>,
}

/// Why fitting could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum FitError {
    #[error("the song has no beats to cut on")]
    NoBeats,
    #[error("target {target_s:.1} s is not a positive length")]
    BadTarget { target_s: f64 },
    #[error(transparent)]
    Model(#[from] ModelError),
}

/// Cut lengths tried by default, in bars: whole phrases (4, 8, 12, 16 bars), their halves, and
/// 1 and 3 bars for fine length adjustment. Lengths like 5, 7 or 13 bars rarely make musical cuts
/// and each costs a model evaluation at every downbeat.
pub const DEFAULT_LENGTHS: [usize; 8] = [1, 2, 3, 4, 6, 8, 12, 16];

const STEP_S: f64 = 0.25;
/// Windows per forward pass when scoring cuts. Larger batches keep the matrix kernels busier:
/// 256 instead of 64 fits the 200 BPM 3/4 benchmark song in 1.58 s instead of 1.86 s; 1024 is
/// no faster.
const SCORING_CHUNK: usize = 256;
/// Exact rescoring of this many DP results per requested variation.
const RESCORE_PER_VARIATION: usize = 4;

struct Cut {
    start: usize,
    end: usize,
    seconds: f64,
    score: f32,
}

/// Fits `grid`'s song to `options.target_s`.
pub fn fit_to_length(
    model: &RewardModel,
    grid: &BeatGrid,
    track: Track,
    options: &FitOptions,
) -> Result<FitResult, FitError> {
    if grid.len() < 2 {
        return Err(FitError::NoBeats);
    }
    if !(options.target_s.is_finite() && options.target_s > 0.0) {
        return Err(FitError::BadTarget {
            target_s: options.target_s,
        });
    }
    let duration = grid.duration_s;
    let need = duration - options.target_s;
    let slack = options.slack_s.max(0.0);
    let downbeats = grid.bar_starts();
    let forced = forced_bars(grid, &downbeats, &options.remove_regions);
    let cuts = score_cuts(model, grid, track, &downbeats, options, need + slack)?;

    let solutions = search(&downbeats, &forced, &cuts, options, need, slack);
    let feasible: Vec<&Solution> = solutions
        .iter()
        .filter(|s| (s.seconds - need).abs() <= slack)
        .collect();
    let (met_target, message, chosen): (bool, Option<String>, Vec<&Solution>) = if feasible
        .is_empty()
    {
        let closest = solutions.iter().min_by(|a, b| {
            (a.seconds - need)
                .abs()
                .total_cmp(&(b.seconds - need).abs())
        });
        let reason = if need < -slack {
            format!(
                "the target {:.1} s is longer than the song ({duration:.1} s)",
                options.target_s
            )
        } else {
            format!(
                "no set of whole-bar cuts outside the kept intro ({} bars), outro ({} bars) and regions lands within {slack:.1} s of {:.1} s",
                options.keep_intro_bars, options.keep_outro_bars, options.target_s
            )
        };
        (false, Some(reason), closest.into_iter().collect())
    } else {
        let mut ranked = feasible;
        ranked.sort_by(|a, b| b.mean().total_cmp(&a.mean()));
        ranked.truncate(options.variations.max(1) * RESCORE_PER_VARIATION);
        (true, None, ranked)
    };
    let edits = chosen
        .iter()
        .map(|s| {
            Edit::new(
                grid.len(),
                s.cuts.iter().map(|&c| (cuts[c].start, cuts[c].end)),
            )
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(ModelError::from)?;
    let scores = score_edits(model, track, &edits, SCORING_CHUNK)?;
    let positions = bar_beats(grid);
    let mut fitted: Vec<FitEdit> = chosen
        .iter()
        .zip(edits)
        .zip(scores)
        .map(|((solution, edit), score)| FitEdit {
            output_seconds: duration - solution.seconds,
            score,
            joins: solution
                .cuts
                .iter()
                .map(|&c| FitJoin {
                    from_s: grid.time_of(cuts[c].start),
                    to_s: grid.time_of(cuts[c].end),
                    from: positions[cuts[c].start],
                    to: positions[cuts[c].end.min(grid.len() - 1)],
                    score: cuts[c].score,
                })
                .collect(),
            edit,
        })
        .collect();
    fitted.sort_by(|a, b| b.score.total_cmp(&a.score));
    fitted.dedup_by(|a, b| a.edit == b.edit);
    fitted.truncate(options.variations.max(1));
    let best = fitted.first().cloned().unwrap_or_else(|| FitEdit {
        edit: Edit::identity(grid.len()),
        output_seconds: duration,
        score: f32::NAN,
        joins: Vec::new(),
    });
    Ok(FitResult {
        met_target,
        message,
        best,
        variations: fitted,
    })
}

/// For each downbeat index, whether its bar overlaps a region that must be removed.
fn forced_bars(grid: &BeatGrid, downbeats: &[usize], remove: &[Range<f64>]) -> Vec<bool> {
    downbeats
        .iter()
        .enumerate()
        .map(|(i, &start)| {
            let end = downbeats.get(i + 1).copied().unwrap_or(grid.len());
            let (a, b) = (grid.time_of(start), grid.time_of(end));
            remove.iter().any(|r| r.start < b && r.end > a)
        })
        .collect()
}

/// Scores every allowed cut no longer than `max_seconds`.
fn score_cuts(
    model: &RewardModel,
    grid: &BeatGrid,
    track: Track,
    downbeats: &[usize],
    options: &FitOptions,
    max_seconds: f64,
) -> Result<Vec<Cut>, ModelError> {
    let last_start = downbeats.len().saturating_sub(options.keep_outro_bars);
    let mut spans = Vec::new();
    for i in options.keep_intro_bars..last_start {
        for &bars in &options.lengths {
            let Some(&end) = downbeats.get(i + bars) else {
                continue;
            };
            if i + bars > last_start || end >= grid.len() {
                continue;
            }
            let (start, seconds) = (downbeats[i], grid.time_of(end) - grid.time_of(downbeats[i]));
            let kept = |r: &Range<f64>| r.start < grid.time_of(end) && r.end > grid.time_of(start);
            if seconds <= max_seconds && !options.keep_regions.iter().any(kept) {
                spans.push((start, end, seconds));
            }
        }
    }
    let edits = spans
        .iter()
        .map(|&(s, e, _)| Edit::new(grid.len(), [(s, e)]))
        .collect::<Result<Vec<_>, _>>()?;
    let scores = score_edits(model, track, &edits, SCORING_CHUNK)?;
    Ok(spans
        .into_iter()
        .zip(scores)
        .map(|((start, end, seconds), score)| Cut {
            start,
            end,
            seconds,
            score,
        })
        .collect())
}

struct Solution {
    cuts: Vec<usize>,
    seconds: f64,
    score_sum: f32,
}

impl Solution {
    fn mean(&self) -> f32 {
        if self.cuts.is_empty() {
            f32::NEG_INFINITY
        } else {
            self.score_sum / self.cuts.len() as f32
        }
    }
}

/// Most cuts one fitted edit may have.
const MAX_CUTS: usize = 16;
const SKIP: u32 = u32::MAX;

#[derive(Clone, Copy)]
struct Cell {
    sum: f32,
    seconds: f32,
    /// Downbeat index and bucket this cell was reached from.
    prev_bar: u32,
    prev_q: u32,
    /// The cut taken to get here, or [`SKIP`] when the previous bar was kept.
    cut: u32,
}

/// The DP of step 2: returns the best cut set for every (cut count, removed-seconds bucket) that
/// can finish the song, plus the empty edit.
fn search(
    downbeats: &[usize],
    forced: &[bool],
    cuts: &[Cut],
    options: &FitOptions,
    need: f64,
    slack: f64,
) -> Vec<Solution> {
    let bars = downbeats.len();
    let gap = options.min_bars_between_joins;
    let max_k = (bars / (gap + 1) + 1).min(MAX_CUTS);
    let buckets = ((need + slack).max(0.0) / STEP_S).ceil() as usize + 2;
    let bar_of: std::collections::HashMap<usize, usize> =
        downbeats.iter().enumerate().map(|(i, &d)| (d, i)).collect();
    let mut by_start: Vec<Vec<usize>> = vec![Vec::new(); bars];
    for (c, cut) in cuts.iter().enumerate() {
        by_start[bar_of[&cut.start]].push(c);
    }
    // dp[bar][k][bucket]: best cell reaching downbeat `bar` with k cuts; bar == bars is the end.
    let index = |bar: usize, k: usize, q: usize| (bar * (max_k + 1) + k) * buckets + q;
    let mut dp: Vec<Option<Cell>> = vec![None; (bars + 1) * (max_k + 1) * buckets];
    dp[index(0, 0, 0)] = Some(Cell {
        sum: 0.0,
        seconds: 0.0,
        prev_bar: 0,
        prev_q: 0,
        cut: SKIP,
    });
    let better = |slot: &Option<Cell>, sum: f32| slot.is_none_or(|c| sum > c.sum);
    for bar in 0..bars {
        for k in 0..=max_k {
            for q in 0..buckets {
                let Some(cell) = dp[index(bar, k, q)] else {
                    continue;
                };
                // Keep this bar (not allowed when it must be removed).
                if !forced[bar] {
                    let to = index(bar + 1, k, q);
                    if better(&dp[to], cell.sum) {
                        dp[to] = Some(Cell {
                            prev_bar: bar as u32,
                            prev_q: q as u32,
                            cut: SKIP,
                            ..cell
                        });
                    }
                }
                if k == max_k {
                    continue;
                }
                // Cut from this bar, then keep at least `gap` bars (none of them forced).
                for &c in &by_start[bar] {
                    let cut = &cuts[c];
                    let end_bar = bar_of[&cut.end];
                    let resume = (end_bar + gap).min(bars);
                    if forced[end_bar..resume].iter().any(|&f| f) {
                        continue;
                    }
                    let seconds = cell.seconds + cut.seconds as f32;
                    let q2 = (f64::from(seconds) / STEP_S).round() as usize;
                    if q2 >= buckets {
                        continue;
                    }
                    let to = index(resume, k + 1, q2);
                    let sum = cell.sum + cut.score;
                    if better(&dp[to], sum) {
                        dp[to] = Some(Cell {
                            sum,
                            seconds,
                            prev_bar: bar as u32,
                            prev_q: q as u32,
                            cut: c as u32,
                        });
                    }
                }
            }
        }
    }
    let mut solutions = Vec::new();
    for k in 0..=max_k {
        for q in 0..buckets {
            let Some(cell) = dp[index(bars, k, q)] else {
                continue;
            };
            let mut taken = Vec::with_capacity(k);
            let (mut bar, mut kk, mut qq) = (bars, k, q);
            while bar > 0 {
                let Some(here) = dp[index(bar, kk, qq)] else {
                    break;
                };
                if here.cut != SKIP {
                    taken.push(here.cut as usize);
                    kk -= 1;
                }
                bar = here.prev_bar as usize;
                qq = here.prev_q as usize;
            }
            taken.reverse();
            let seconds = taken.iter().map(|&c| cuts[c].seconds).sum();
            solutions.push(Solution {
                cuts: taken,
                seconds,
                score_sum: cell.sum,
            });
        }
    }
    solutions
}

#[cfg(test)]
mod tests;
