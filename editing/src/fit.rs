//! Fitting a song to a target length: the set of bar-aligned cuts whose result lands within
//! `target ± slack` and that the reward model likes best, with as few joins as the music
//! allows, under hard constraints. Any target from the kept intro and outro alone up to the
//! whole song can be met, on a 4-minute song or a 20-minute track.
//!
//! Method (dynamic programming over join candidates, as radiotool's `retarget` does with a
//! hand-made join cost, but with the reward model's scores in the objective):
//! 1. **Candidate cuts.** A cut removes whole bars: it starts on a downbeat, resumes on a later
//!    one and lies between the kept intro and outro, outside the keep-regions; where every
//!    other bar line is weak ([`FitOptions::strong_bar_parity`]), on the strong ones only,
//!    phrases counted from the first of them. Each is scored by
//!    the reward model as a one-join edit; scoring reads a bounded window around the join, so
//!    every cut costs the same whatever its length or the song's. Scoring every pair of
//!    downbeats would cost O(bars²) model evaluations (180,000 on a 20-minute track), so two
//!    kinds of cut are scored:
//!    - *short cuts*, [`FitOptions::lengths`] bars long (by default 1 to 16), from every
//!      downbeat: joins anywhere, and fine adjustment of the length;
//!    - *section cuts*, of any length up to the whole removable middle, whose start and end both
//!      lie on *phrase boundaries*: the downbeats of the bars whose index (counted from the
//!      first downbeat, as the oracle counts phrases) is a multiple of a phrase of `P` bars, and
//!      the edges of the removable stretches (the end of the kept intro, the start of the kept
//!      outro, the first bar of each keep- or remove-region and the first bar after it, so a
//!      section cut can stop right before a kept stretch or resume right after it). `P` is the
//!      smallest of 4, 8, 16, … bars that keeps the section cuts that are not already short cuts
//!      to at most [`MAX_SECTION_CUTS`]: 4 bars up to about 130 bars between the intro and the
//!      outro (a 4-minute song at 120 BPM in 4/4), 8 bars up to about 230, 16 up to about 450
//!      and 32 bars up to about 860 (a 20-minute track at 120 BPM: 592 bars).
//!
//!    So a fit scores at most `lengths.len()` cuts per bar plus [`MAX_SECTION_CUTS`]. One
//!    section cut removes whole phrases, up to everything between the intro and the outro, and
//!    a short cut makes up the rest: every length from the intro and outro alone to the whole
//!    song is within a few joins (and, at the default slack, within the slack).
//! 2. **Objective: few good joins.** Editors make a radio edit with one to three joins. An
//!    edit's value is the sum over its cuts of `score - best - join_cost`, where `best` is the
//!    best score of any cut of this song and [`FitOptions::join_cost`] a fixed charge per join
//!    ([`DEFAULT_JOIN_COST`]). Every join so costs its shortfall from the song's best join plus
//!    the charge: one long cut beats several short ones unless their scores are clearly better,
//!    and no cut at all beats any cut when the target allows it. Measuring from `best` makes the
//!    trade independent of the model's offset, which preference pairs with as many joins on both
//!    sides never fix.
//! 3. **Search.** Because the value is a sum over cuts, a DP over downbeats needs one state per
//!    (downbeat, removed duration in 0.25 s steps), O(bars × buckets) memory (16 bytes a state:
//!    44 MB for a 20-minute track at 120 BPM fitted to 60 s), and finds for each removed
//!    duration the cut set of the largest value, respecting the minimum distance between joins
//!    and the regions that must be removed.
//! 4. **Rescoring.** The DP results that land within the slack are ranked by value; the best
//!    few are rescored exactly as whole edits (the model then hears each join in the context of
//!    the whole edit, and an edit's score is the mean over its join windows), ranked by the
//!    same value computed from the exact score ([`FitEdit::value`]), and the best
//!    [`FitOptions::variations`] distinct edits are returned, best first.
//!
//! When no combination meets the target, the edit whose length is closest to it is returned
//! with `met_target == false` and a message saying why.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;

use super::bars::{BarLimits, Bars};
use super::candidates::{BarBeat, bar_beats};
use cutscore_core::edit::Edit;
use cutscore_core::grid::BeatGrid;
use cutscore_reward::scoring::{Track, score_edits_at, taste_reference};
use cutscore_reward::{ModelError, RewardModel};

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
    /// Short cut lengths tried from every downbeat, in bars. The default, [`DEFAULT_LENGTHS`],
    /// halves the model evaluations of trying every length from 1 to 16. Longer cuts come from
    /// the section cuts (module docs).
    pub lengths: Vec<usize>,
    /// What each join costs on top of its shortfall from the song's best join, in reward-model
    /// score units (module docs, step 2). Larger values mean fewer joins.
    pub join_cost: f32,
    /// How many distinct edits to return.
    pub variations: usize,
    /// Cut only on every other bar line, those of this parity among the grid's bar lines (0 or
    /// 1): the strong ones, where the others are weak by their chord change or the network's
    /// downbeat probability (`cutscore_analysis::hypermeter::strong_bar_parity`). `None`: on
    /// every bar line. The bar counts above still count every bar.
    pub strong_bar_parity: Option<usize>,
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
            join_cost: DEFAULT_JOIN_COST,
            variations: 3,
            strong_bar_parity: None,
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
    /// What the fit ranks edits by: `joins × (score - best - join_cost)`, with `best` the best
    /// score of one cut of this song (module docs, step 2); 0 for an edit without joins.
    pub value: f32,
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
    #[error("the fit was cancelled")]
    Cancelled,
}

/// Short cut lengths tried by default, in bars: whole phrases (4, 8, 12, 16 bars), their halves,
/// and 1 and 3 bars for fine length adjustment. Lengths like 5, 7 or 13 bars rarely make musical
/// cuts and each costs a model evaluation at every downbeat.
pub const DEFAULT_LENGTHS: [usize; 8] = [1, 2, 3, 4, 6, 8, 12, 16];

/// Most section cuts (cuts between phrase boundaries that are not short cuts) scored per fit.
/// The phrase doubles until the section cuts fit. Each costs one model evaluation: 400 cost
/// as much as the short cuts of 50 bars at the default lengths (a 4-minute song at 120 BPM in
/// 4/4 has 112 bars of short cuts, a 20-minute track 592).
pub const MAX_SECTION_CUTS: usize = 400;

/// Default [`FitOptions::join_cost`]: 2 score units. The editing oracle charges half a clear
/// flaw (0.5 craft points) per join (`docs/oracle.md`); the shipped model was last trained on
/// soft labels `σ(Δcraft / 0.25)` per join, so one craft point is about 4 score units. Its
/// one-cut scores on synthetic 2-minute songs spread over 4 to 7 units between the 10th and
/// the 90th percentile, long cuts as short ones.
pub const DEFAULT_JOIN_COST: f32 = 2.0;

/// Shortest phrase for section cuts, in bars.
const FIRST_PHRASE_BARS: usize = 4;
const STEP_S: f64 = 0.25;
/// Windows per forward pass when scoring cuts. Larger batches keep the matrix kernels busier:
/// 256 instead of 64 fits the 200 BPM 3/4 benchmark song in 1.58 s instead of 1.86 s; 1024 is
/// no faster.
const SCORING_CHUNK: usize = 256;
/// Cuts whose model inputs are built at once: bounds the memory of scoring thousands of cuts
/// (8 KB of inputs per cut with a 16-beat window) while keeping every pass full.
const CUTS_PER_SCORING_CALL: usize = 4 * SCORING_CHUNK;
/// Exact rescoring of this many DP results per requested variation.
const RESCORE_PER_VARIATION: usize = 4;

/// A candidate cut: bars `start_bar..end_bar` (downbeat indices), beats `start..end`.
#[derive(Debug, Clone, PartialEq)]
struct Cut {
    start_bar: usize,
    end_bar: usize,
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
    fit_to_length_unless(model, grid, track, options, &AtomicBool::new(false))
}

/// [`fit_to_length`], given up with [`FitError::Cancelled`] soon after `cancel` is set: it is
/// read between batches of model evaluations (at most `CUTS_PER_SCORING_CALL` cuts, tens of
/// milliseconds on a CPU), before the search and before the final rescoring.
pub fn fit_to_length_unless(
    model: &RewardModel,
    grid: &BeatGrid,
    track: Track,
    options: &FitOptions,
    cancel: &AtomicBool,
) -> Result<FitResult, FitError> {
    let check = || {
        if cancel.load(Ordering::Acquire) {
            Err(FitError::Cancelled)
        } else {
            Ok(())
        }
    };
    check()?;
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
    let bars = bars_of(grid, &downbeats, options);
    let spans = candidate_spans(&bars, options, need + slack);
    // A taste layer measured from the track reads its reference: once for every call here.
    let reference = taste_reference(model, track)?;
    let cuts = score_cuts(model, grid, (track, reference), &downbeats, spans, &check)?;
    check()?;
    let per_join = per_join_charge(&cuts, options.join_cost);
    let value_of = |score: f32, joins: usize| {
        if joins == 0 {
            0.0
        } else {
            joins as f32 * (score - per_join)
        }
    };

    let search = Search::run(&bars, &cuts, options, need + slack, per_join);
    let mut reached = search.reached();
    let feasible: Vec<Reached> = reached
        .iter()
        .copied()
        .filter(|r| (f64::from(r.seconds) - need).abs() <= slack)
        .collect();
    let (met_target, message, chosen): (bool, Option<String>, Vec<Reached>) = if feasible.is_empty()
    {
        reached.sort_by(|a, b| {
            (f64::from(a.seconds) - need)
                .abs()
                .total_cmp(&(f64::from(b.seconds) - need).abs())
                .then(b.value.total_cmp(&a.value))
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
        (false, Some(reason), reached.into_iter().take(1).collect())
    } else {
        let mut ranked = feasible;
        ranked.sort_by(|a, b| b.value.total_cmp(&a.value));
        ranked.truncate(options.variations.max(1) * RESCORE_PER_VARIATION);
        (true, None, ranked)
    };
    let solutions: Vec<Vec<usize>> = chosen.iter().map(|r| search.cuts_of(r)).collect();
    let edits = solutions
        .iter()
        .map(|taken| {
            Edit::new(
                grid.len(),
                taken.iter().map(|&c| (cuts[c].start, cuts[c].end)),
            )
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(ModelError::from)?;
    check()?;
    let scores = score_edits_at(model, track, reference, &edits, SCORING_CHUNK)?;
    let positions = bar_beats(grid);
    let mut fitted: Vec<FitEdit> = solutions
        .iter()
        .zip(edits)
        .zip(scores)
        .map(|((taken, edit), score)| FitEdit {
            output_seconds: duration - taken.iter().map(|&c| cuts[c].seconds).sum::<f64>(),
            score,
            value: value_of(score, edit.joins().len()),
            joins: taken
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
    fitted.sort_by(|a, b| b.value.total_cmp(&a.value));
    fitted.dedup_by(|a, b| a.edit == b.edit);
    fitted.truncate(options.variations.max(1));
    let best = fitted.first().cloned().unwrap_or_else(|| FitEdit {
        edit: Edit::identity(grid.len()),
        output_seconds: duration,
        score: f32::NAN,
        value: 0.0,
        joins: Vec::new(),
    });
    Ok(FitResult {
        met_target,
        message,
        best,
        variations: fitted,
    })
}

/// The bars of `grid` under `options`' limits.
fn bars_of(grid: &BeatGrid, downbeats: &[usize], options: &FitOptions) -> Bars {
    Bars::new(
        grid,
        downbeats,
        &BarLimits {
            keep_intro_bars: options.keep_intro_bars,
            keep_outro_bars: options.keep_outro_bars,
            keep_regions: &options.keep_regions,
            remove_regions: &options.remove_regions,
            strong_parity: options.strong_bar_parity,
        },
    )
}

/// The candidate cuts as `(start_bar, end_bar)`, no longer than `max_seconds`: the short cuts
/// and the section cuts of the module docs, step 1, in that order.
fn candidate_spans(bars: &Bars, options: &FitOptions, max_seconds: f64) -> Vec<(usize, usize)> {
    let fits = |s: usize, e: usize| bars.allows(s, e) && bars.seconds(s, e) <= max_seconds;
    let mut spans = bars.short_cuts(&options.lengths, max_seconds);
    let short = |s: usize, e: usize| options.lengths.contains(&(e - s));
    let mut phrase = FIRST_PHRASE_BARS;
    loop {
        let ends = bars.boundaries(phrase);
        let mut sections = Vec::new();
        for (i, &s) in ends.iter().enumerate() {
            for &e in &ends[i + 1..] {
                if !short(s, e) && fits(s, e) {
                    sections.push((s, e));
                }
            }
        }
        // Past the whole song only the edges are left: take them however many there are.
        if sections.len() <= MAX_SECTION_CUTS || phrase > bars.count() {
            spans.extend(sections);
            return spans;
        }
        phrase *= 2;
    }
}

/// What one join takes off an edit's value besides its own score: the best cut score of the
/// song plus `join_cost` (module docs, step 2).
fn per_join_charge(cuts: &[Cut], join_cost: f32) -> f32 {
    let best = cuts
        .iter()
        .map(|c| c.score)
        .filter(|s| s.is_finite())
        .fold(f32::NEG_INFINITY, f32::max);
    if best.is_finite() {
        best + join_cost
    } else {
        join_cost
    }
}

/// Scores each cut of `spans` as a one-join edit, on a track of this [`taste_reference`].
fn score_cuts(
    model: &RewardModel,
    grid: &BeatGrid,
    (track, reference): (Track, Option<f32>),
    downbeats: &[usize],
    spans: Vec<(usize, usize)>,
    check: &dyn Fn() -> Result<(), FitError>,
) -> Result<Vec<Cut>, FitError> {
    let mut cuts = Vec::with_capacity(spans.len());
    for chunk in spans.chunks(CUTS_PER_SCORING_CALL) {
        check()?;
        let edits = chunk
            .iter()
            .map(|&(s, e)| Edit::new(grid.len(), [(downbeats[s], downbeats[e])]))
            .collect::<Result<Vec<_>, _>>()
            .map_err(ModelError::from)?;
        let scores = score_edits_at(model, track, reference, &edits, SCORING_CHUNK)?;
        cuts.extend(chunk.iter().zip(scores).map(|(&(s, e), score)| {
            let (start, end) = (downbeats[s], downbeats[e]);
            Cut {
                start_bar: s,
                end_bar: e,
                start,
                end,
                seconds: grid.time_of(end) - grid.time_of(start),
                score,
            }
        }));
    }
    Ok(cuts)
}

/// Marks a state reached by keeping the bar before it.
const KEEP: u32 = u32::MAX;

/// One DP state: the best cut set reaching a downbeat with a given removed duration.
#[derive(Clone, Copy)]
struct State {
    /// Sum of `score - per_join` over the cuts taken; `-inf` while unreached.
    value: f32,
    /// Seconds removed so far (exact, whatever the bucket's rounding).
    seconds: f32,
    /// The cut taken to get here, or [`KEEP`] when the previous bar was kept.
    cut: u32,
    /// The bucket the cut was taken from.
    prev_q: u32,
}

const UNREACHED: State = State {
    value: f32::NEG_INFINITY,
    seconds: 0.0,
    cut: KEEP,
    prev_q: 0,
};

/// A way to finish the song: a final DP state.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Reached {
    q: usize,
    value: f32,
    seconds: f32,
}

/// The DP of step 3 over (downbeat, removed-seconds bucket); row `bars` is the song's end.
struct Search<'a> {
    cuts: &'a [Cut],
    buckets: usize,
    bars: usize,
    states: Vec<State>,
}

impl<'a> Search<'a> {
    fn run(
        bars: &Bars,
        cuts: &'a [Cut],
        options: &FitOptions,
        max_seconds: f64,
        per_join: f32,
    ) -> Self {
        let count = bars.count();
        let gap = options.min_bars_between_joins;
        let buckets = (max_seconds.max(0.0) / STEP_S).ceil() as usize + 2;
        let mut by_start: Vec<Vec<u32>> = vec![Vec::new(); count];
        for (c, cut) in cuts.iter().enumerate() {
            by_start[cut.start_bar].push(c as u32);
        }
        let mut states = vec![UNREACHED; (count + 1) * buckets];
        states[0] = State {
            value: 0.0,
            ..UNREACHED
        };
        for bar in 0..count {
            for q in 0..buckets {
                let here = states[bar * buckets + q];
                if here.value == f32::NEG_INFINITY {
                    continue;
                }
                // Keep this bar (not allowed when it must be removed).
                if !bars.forced[bar] {
                    let to = &mut states[(bar + 1) * buckets + q];
                    if here.value > to.value {
                        *to = State {
                            cut: KEEP,
                            prev_q: q as u32,
                            ..here
                        };
                    }
                }
                // Cut from this bar, then keep at least `gap` bars (none of them forced).
                for &c in &by_start[bar] {
                    let cut = &cuts[c as usize];
                    let resume = (cut.end_bar + gap).min(count);
                    if bars.forced[cut.end_bar..resume].iter().any(|&f| f) {
                        continue;
                    }
                    let seconds = here.seconds + cut.seconds as f32;
                    let q2 = (f64::from(seconds) / STEP_S).round() as usize;
                    if q2 >= buckets {
                        continue;
                    }
                    let value = here.value + (cut.score - per_join);
                    let to = &mut states[resume * buckets + q2];
                    if value > to.value {
                        *to = State {
                            value,
                            seconds,
                            cut: c,
                            prev_q: q as u32,
                        };
                    }
                }
            }
        }
        Self {
            cuts,
            buckets,
            bars: count,
            states,
        }
    }

    /// Every removed duration with which the song can be finished, and its best value.
    fn reached(&self) -> Vec<Reached> {
        (0..self.buckets)
            .filter_map(|q| {
                let state = self.states[self.bars * self.buckets + q];
                (state.value > f32::NEG_INFINITY).then_some(Reached {
                    q,
                    value: state.value,
                    seconds: state.seconds,
                })
            })
            .collect()
    }

    /// The cuts (indices into `cuts`) of the best set reaching `end`, in source order.
    fn cuts_of(&self, end: &Reached) -> Vec<usize> {
        let mut taken = Vec::new();
        let (mut bar, mut q) = (self.bars, end.q);
        while bar > 0 {
            let state = self.states[bar * self.buckets + q];
            if state.cut == KEEP {
                bar -= 1;
            } else {
                taken.push(state.cut as usize);
                bar = self.cuts[state.cut as usize].start_bar;
            }
            q = state.prev_q as usize;
        }
        taken.reverse();
        taken
    }
}

#[cfg(test)]
mod tests;
