//! Candidate cuts: spans of whole bars (or beats) that could be removed, ranked by the reward
//! model.
//!
//! A candidate removes `min_bars..=max_bars` whole bars starting on a downbeat (or, with
//! `beat_aligned`, the same lengths in beats starting on any beat), inside the caller's region,
//! never touching the protected intro and outro bars, and where every other bar line is weak,
//! from and to the strong ones when the bar range allows it. Each is scored as the one-join
//! edit it is; scoring reads a bounded window around the join, so the cost per candidate does
//! not grow with the song.

use std::ops::Range;

use serde::Serialize;

use super::bars::{BarLimits, Bars};
use cutscore_core::edit::Edit;
use cutscore_core::grid::BeatGrid;
use cutscore_reward::scoring::{Track, score_edits};
use cutscore_reward::{ModelError, RewardModel};

/// Limits on which cuts are proposed.
#[derive(Debug, Clone, PartialEq)]
pub struct CandidateOptions {
    /// Shortest cut, in bars.
    pub min_bars: usize,
    /// Longest cut, in bars.
    pub max_bars: usize,
    /// Only cuts lying wholly inside this source-time region, in seconds.
    pub region: Option<Range<f64>>,
    /// Start cuts on any beat (lengths still whole bars' worth of beats), not only downbeats.
    pub beat_aligned: bool,
    /// Bars at the start that are never cut.
    pub keep_intro_bars: usize,
    /// Bars at the end that are never cut.
    pub keep_outro_bars: usize,
    /// How many of the best candidates to return.
    pub limit: usize,
    /// Whole-bar cuts start and resume only on the bar lines of this parity among the grid's
    /// (the strong ones: [`FitOptions::strong_bar_parity`](crate::fit::FitOptions)), when the
    /// bar range allows such a cut; `None`: on every bar line.
    pub strong_bar_parity: Option<usize>,
}

impl Default for CandidateOptions {
    fn default() -> Self {
        Self {
            min_bars: 1,
            max_bars: 16,
            region: None,
            beat_aligned: false,
            keep_intro_bars: 0,
            keep_outro_bars: 0,
            limit: 64,
            strong_bar_parity: None,
        }
    }
}

/// A position as musicians read it: bar and beat, both counted from 1 (bar 0 is a pickup).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BarBeat {
    pub bar: usize,
    pub beat: usize,
}

impl std::fmt::Display for BarBeat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.bar, self.beat)
    }
}

/// Bar:beat of every beat of `grid`.
pub fn bar_beats(grid: &BeatGrid) -> Vec<BarBeat> {
    let mut bar = 0;
    grid.beat_in_bar
        .iter()
        .map(|&position| {
            if position == 0 {
                bar += 1;
            }
            BarBeat {
                bar,
                beat: usize::from(position) + 1,
            }
        })
        .collect()
}

/// A proposed cut with its score.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CutCandidate {
    pub edit: Edit,
    /// Source time where the cut starts.
    pub from_s: f64,
    /// Source time where playback resumes.
    pub to_s: f64,
    /// First removed beat.
    pub start: BarBeat,
    /// First beat played after the cut.
    pub resume: BarBeat,
    /// Removed length in bars.
    pub bars: f64,
    pub score: f32,
}

/// The candidate spans `(start, end)` in beats, in source order: whole-bar cuts from
/// downbeats over the song's bars (the fit's rules), or with `beat_aligned` the same
/// lengths in beats from any beat.
pub fn candidate_spans(grid: &BeatGrid, options: &CandidateOptions) -> Vec<(usize, usize)> {
    if options.beat_aligned {
        return beat_aligned_spans(grid, options);
    }
    let downbeats = grid.bar_starts();
    // The track's first beat is never cut: a proposal leaves something to come from.
    let keep_intro_bars = match downbeats.first() {
        Some(0) => options.keep_intro_bars.max(1),
        _ => options.keep_intro_bars,
    };
    // Outside the region is kept: a cut lies wholly inside it.
    let outside: Vec<Range<f64>> = options
        .region
        .iter()
        .flat_map(|r| [f64::NEG_INFINITY..r.start, r.end..f64::INFINITY])
        .collect();
    let bars_on = |strong_parity| {
        Bars::new(
            grid,
            &downbeats,
            &BarLimits {
                keep_intro_bars,
                keep_outro_bars: options.keep_outro_bars,
                keep_regions: &outside,
                remove_regions: &[],
                strong_parity,
            },
        )
    };
    let lengths: Vec<usize> = (options.min_bars.max(1)..=options.max_bars).collect();
    let mut spans = bars_on(options.strong_bar_parity).short_cuts(&lengths, f64::INFINITY);
    // A bar range with no cut between strong bar lines (one bar only) is cut on every one.
    if spans.is_empty() && options.strong_bar_parity.is_some() {
        spans = bars_on(None).short_cuts(&lengths, f64::INFINITY);
    }
    spans
        .into_iter()
        .map(|(s, e)| (downbeats[s], downbeats[e]))
        .collect()
}

/// [`candidate_spans`] with `beat_aligned`: lengths of whole bars' worth of beats from any beat
/// after the first, the kept intro and outro counted in bars.
fn beat_aligned_spans(grid: &BeatGrid, options: &CandidateOptions) -> Vec<(usize, usize)> {
    let n = grid.len();
    let meter = usize::from(grid.meter.max(1));
    let downbeats = grid.bar_starts();
    let first_allowed = match options.keep_intro_bars {
        0 => 1,
        k => downbeats.get(k).copied().unwrap_or(n),
    };
    let end_allowed = match options.keep_outro_bars {
        0 => n - 1.min(n),
        k if k <= downbeats.len() => downbeats[downbeats.len() - k],
        _ => 0,
    };
    let in_region = |start: usize, end: usize| match &options.region {
        Some(region) => grid.time_of(start) >= region.start && grid.time_of(end) <= region.end,
        None => true,
    };
    let mut spans = Vec::new();
    for start in first_allowed..n {
        for bars in options.min_bars.max(1)..=options.max_bars {
            let end = start + bars * meter;
            // A cut must leave a beat after it to resume on.
            if end > end_allowed || end >= n {
                break;
            }
            if in_region(start, end) {
                spans.push((start, end));
            }
        }
    }
    spans
}

/// Generates the candidates, scores them in batches of `chunk` windows, and returns the best
/// `options.limit`, highest score first.
pub fn rank_candidates(
    model: &RewardModel,
    grid: &BeatGrid,
    track: Track,
    options: &CandidateOptions,
    chunk: usize,
) -> Result<Vec<CutCandidate>, ModelError> {
    let spans = candidate_spans(grid, options);
    let edits = spans
        .iter()
        .map(|&span| Edit::new(grid.len(), [span]))
        .collect::<Result<Vec<_>, _>>()?;
    let scores = score_edits(model, track, &edits, chunk)?;
    let positions = bar_beats(grid);
    let meter = f64::from(grid.meter.max(1));
    let mut candidates: Vec<CutCandidate> = edits
        .into_iter()
        .zip(spans)
        .zip(scores)
        .map(|((edit, (start, end)), score)| CutCandidate {
            edit,
            from_s: grid.time_of(start),
            to_s: grid.time_of(end),
            start: positions[start],
            resume: positions[end],
            bars: (end - start) as f64 / meter,
            score,
        })
        .collect();
    candidates.sort_by(|a, b| b.score.total_cmp(&a.score));
    candidates.truncate(options.limit);
    Ok(candidates)
}

#[cfg(test)]
mod tests {
    use candle_core::Device;
    use candle_nn::VarMap;

    use super::*;
    use cutscore_core::features::FeatureMatrix;
    use cutscore_reward::Config;

    /// 4/4 at 120 BPM with a one-beat pickup: beat 0 is beat 4 of bar 0, bar 1 starts at beat 1.
    fn grid(bars: usize) -> BeatGrid {
        BeatGrid::regular(0.5, 0.5, bars * 4 + 1, 4, 3).unwrap()
    }

    #[test]
    fn bar_beat_positions_count_from_one_after_the_pickup() {
        let positions = bar_beats(&grid(2));
        assert_eq!(positions[0], BarBeat { bar: 0, beat: 4 });
        assert_eq!(positions[1], BarBeat { bar: 1, beat: 1 });
        assert_eq!(positions[6].to_string(), "2:2");
    }

    #[test]
    fn spans_are_whole_bars_on_downbeats_within_the_limits() {
        let g = grid(8);
        let spans = candidate_spans(
            &g,
            &CandidateOptions {
                max_bars: 3,
                ..Default::default()
            },
        );
        assert!(
            spans
                .iter()
                .all(|&(s, e)| g.beat_in_bar[s] == 0 && (e - s) % 4 == 0 && e < g.len())
        );
        assert!(spans.iter().all(|&(s, e)| (4..=12).contains(&(e - s))));
        // Bars 1..8 start at beats 1, 5, ..., 29 and beat 32 is the last; a cut must resume on a
        // downbeat that exists, so nothing can remove bar 8.
        assert!(spans.contains(&(1, 5)) && spans.contains(&(25, 29)) && !spans.contains(&(29, 33)));
        let protected = candidate_spans(
            &g,
            &CandidateOptions {
                keep_intro_bars: 2,
                keep_outro_bars: 2,
                ..Default::default()
            },
        );
        assert!(
            protected.iter().all(|&(s, e)| s >= 9 && e <= 25),
            "{protected:?}"
        );
        assert!(protected.contains(&(9, 25)));
        let region = candidate_spans(
            &g,
            &CandidateOptions {
                region: Some(2.0..7.0),
                ..Default::default()
            },
        );
        assert!(
            region
                .iter()
                .all(|&(s, e)| g.time_of(s) >= 2.0 && g.time_of(e) <= 7.0)
        );
        assert_eq!(region, vec![(5, 9), (5, 13), (9, 13)]);
        let beats = candidate_spans(
            &g,
            &CandidateOptions {
                beat_aligned: true,
                max_bars: 1,
                ..Default::default()
            },
        );
        assert!(beats.contains(&(2, 6)) && beats.contains(&(3, 7)));
    }

    #[test]
    fn on_strong_bar_lines_only_cuts_start_and_resume_on_them_unless_none_would_fit() {
        let g = grid(12);
        let bars = g.bar_starts();
        let parity_of = |beat: usize| bars.binary_search(&beat).unwrap() % 2;
        for parity in [0, 1] {
            let spans = candidate_spans(
                &g,
                &CandidateOptions {
                    strong_bar_parity: Some(parity),
                    ..Default::default()
                },
            );
            assert!(!spans.is_empty());
            assert!(
                spans
                    .iter()
                    .all(|&(s, e)| parity_of(s) == parity && parity_of(e) == parity),
                "{spans:?}"
            );
        }
        // One-bar cuts cannot join two strong bar lines: every bar line is used then.
        let one_bar = CandidateOptions {
            max_bars: 1,
            ..Default::default()
        };
        let strong = CandidateOptions {
            strong_bar_parity: Some(1),
            ..one_bar.clone()
        };
        assert_eq!(candidate_spans(&g, &strong), candidate_spans(&g, &one_bar));
    }

    #[test]
    fn ranking_returns_the_best_scores_first_with_times_and_positions() {
        let g = grid(12);
        let features = FeatureMatrix::new(
            g.len(),
            (0..g.len() * 121)
                .map(|i| ((i * 7) % 13) as f32 / 13.0)
                .collect(),
        )
        .unwrap();
        let varmap = VarMap::new();
        let model = RewardModel::init(&Config::tiny(), &varmap, &Device::Cpu, 0).unwrap();
        let options = CandidateOptions {
            max_bars: 4,
            limit: 5,
            ..Default::default()
        };
        let ranked = rank_candidates(
            &model,
            &g,
            Track {
                features: &features,
                meter: 4,
            },
            &options,
            16,
        )
        .unwrap();
        assert_eq!(ranked.len(), 5);
        assert!(ranked.windows(2).all(|w| w[0].score >= w[1].score));
        let best = &ranked[0];
        let span = best.edit.removed()[0];
        assert_eq!(best.from_s, g.time_of(span.start));
        assert_eq!(best.to_s, g.time_of(span.end));
        assert_eq!(best.start.beat, 1);
        assert_eq!(best.bars, (span.end - span.start) as f64 / 4.0);
        // Every candidate's score equals scoring its edit alone.
        let alone = score_edits(
            &model,
            Track {
                features: &features,
                meter: 4,
            },
            std::slice::from_ref(&best.edit),
            1,
        )
        .unwrap();
        assert!((alone[0] - best.score).abs() < 1e-5);
    }
}
