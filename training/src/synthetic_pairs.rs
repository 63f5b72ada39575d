//! Synthetic preference pairs: edits of generated songs judged by the [`crate::oracle`],
//! written as `comparison` records in the decision-log format (`docs/prefs-format.md`), so the
//! trainer reads them with the same loader as the user's decisions.
//!
//! Each song is a [`SongSpec::random`] (30-60 s) rendered at 22.05 kHz (the analysis rate, so
//! nothing is resampled); its beat grid is the exact ground truth and its 121 features are
//! computed on that grid. Per song a target length (55-85 % of the song, whole bars) is drawn.
//! Each pair follows one [`EditPlan`] (how many spans, about how much removed, only between
//! the intro and the outro), and its two edits are drawn independently within it: each span
//! sometimes whole bars or whole phrases from a downbeat, sometimes any length from any beat.
//! A pair whose edits differ only by a beat or so at every boundary is redrawn, so no pair is a
//! trivial ±1-beat variant, and so is a pair the oracle scores closer than a margin (or, when
//! asked, further apart than a ceiling, to gather the close calls a model still gets wrong). The
//! preferred side alternates between `a` and `b`, so labels are balanced exactly 50/50.
//! `docs/oracle.md` says why the whole-edit rules are constraints here rather than labels.

use std::ops::Range;
use std::path::Path;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::oracle::{DEFAULT_TEMPERATURE, Oracle, OracleError, OracleWeights, target_beats};
use cutscore_analysis::{AnalysisError, features_for_grid};
use cutscore_core::edit::Edit;
use cutscore_core::features::FeatureMatrix;
use cutscore_core::grid::BeatGrid;
use cutscore_core::prefs::{
    Comparison, PrefsError, PrefsLog, RECORD_VERSION, Record, Side, TrackRecord, track_id,
};
use cutscore_synth::{SongSpec, SongTruth, SynthError, render};

/// The `source` of every comparison written here.
pub const SOURCE: &str = "synthetic-oracle";
/// Default [`PairOptions::min_margin`], in craft points (half a clear flaw).
pub const DEFAULT_MIN_MARGIN: f32 = 0.5;
/// Songs too short to edit that are skipped before giving up (about 2 % of songs are).
const MAX_SKIPPED_SONGS: usize = 1000;
/// Sample rate the songs are rendered at (the analysis rate).
pub const SAMPLE_RATE: u32 = 22_050;

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct PairOptions {
    /// Pairs in all.
    pub count: usize,
    /// Seeds the songs, targets, edits and labels.
    pub seed: u64,
    /// Pairs per song (the last song may get fewer).
    pub pairs_per_song: usize,
    /// Width of the oracle's logistic curve (see [`Oracle::with_temperature`]).
    pub temperature: f32,
    /// Pairs the oracle scores closer than this (craft points) are redrawn: a close call
    /// teaches the model nothing but noise.
    pub min_margin: f32,
    /// Pairs the oracle scores further apart than this are redrawn too (infinite by default).
    /// A finite ceiling makes a set of hard pairs: past two craft points a trained model is
    /// practically never wrong, so such pairs cost training time and teach it little.
    pub max_margin: f32,
    /// Whether both margins are per join: a pair of `n`-join edits is kept when the oracle
    /// scores it `n * min_margin` to `n * max_margin` apart. An edit's reward is the mean of its
    /// joins' windows, so this keeps each window's share of the margin in the range.
    pub margin_per_join: bool,
    /// Soft labels: each pair's label is the oracle's majority, never sampled, and its confidence
    /// is the oracle's probability with the curve as many times as wide as the edits have joins
    /// (an edit's reward is the mean of its joins' windows, so this is the probability a model
    /// scoring every join as the oracle does would give). Training on these distils the oracle's
    /// margins, not only its calls.
    pub soft_labels: bool,
    /// Songs rendered at once.
    pub threads: usize,
}

impl Default for PairOptions {
    fn default() -> Self {
        Self {
            count: 5000,
            seed: 0,
            pairs_per_song: 50,
            temperature: DEFAULT_TEMPERATURE,
            min_margin: DEFAULT_MIN_MARGIN,
            max_margin: f32::INFINITY,
            margin_per_join: false,
            soft_labels: false,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

/// Synthetic pairs `trainer finetune` replays when not given a set: 75 songs of
/// [`REPLAY_PAIRS_PER_SONG`], about 6 s to make on 2 cores. Cross-validation judges the craft a
/// taste costs on these pairs, and with fewer that judgement did not hold on fresh songs (issue
/// #18: with 600 pairs, of 12 or of 30 songs, the keep-the-chorus layer judged to cost at most 1
/// point cost 2.0 and 2.3 on fresh pairs; with these 1,500, 0.2). Three times as many (4,500,
/// session 55) made fine-tuning 100 decisions take 51-58 s instead of 18-23 s (each beside one
/// other such run on 2 cores) and judged the craft no closer on the two seeds run (recordings,
/// 3,000 fresh pairs per seed: 7 of 8 runs within a point against 8 of 8).
pub const REPLAY_PAIRS: usize = 1500;
/// Pairs per replay song.
pub const REPLAY_PAIRS_PER_SONG: usize = 20;
/// Keeps the replay songs apart from the ones `trainer pairs --seed S` makes.
const REPLAY_SEED: u64 = 0x5eed_f00d;

/// The pairs fine-tuning replays by default (and measures kept skill on): songs no model was
/// trained on, drawn from `seed` (the fine-tuning seed).
pub fn replay_options(seed: u64) -> PairOptions {
    PairOptions {
        count: REPLAY_PAIRS,
        pairs_per_song: REPLAY_PAIRS_PER_SONG,
        seed: seed ^ REPLAY_SEED,
        ..PairOptions::default()
    }
}

/// What was written.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct PairSummary {
    pub songs: usize,
    pub pairs: usize,
    /// Pairs whose preferred side is `a`.
    pub a_preferred: usize,
    /// Mean label confidence: the accuracy a model that knew the oracle exactly would reach.
    pub mean_confidence: f32,
    /// Labels that went against the oracle's own majority (sampled noise).
    pub flipped: usize,
    /// Drawn pairs redrawn for being closer than the margin.
    pub close_redrawn: usize,
    /// Drawn pairs redrawn for being further apart than the ceiling.
    pub far_redrawn: usize,
    /// Songs left out for having too little music between their intro and outro.
    pub songs_skipped: usize,
}

/// Why pairs could not be generated.
#[derive(Debug, thiserror::Error)]
pub enum PairsError {
    #[error("asked for {count} pairs at {per_song} per song; expected at least 1 of each")]
    Count { count: usize, per_song: usize },
    #[error("margins {min}..={max} craft points; expected 0 <= min <= max")]
    Margins { min: f32, max: f32 },
    #[error("rendering song seed {seed}: {source}")]
    Synth { seed: u64, source: SynthError },
    #[error("analysing song seed {seed}: {source}")]
    Analysis { seed: u64, source: AnalysisError },
    #[error("song seed {seed}: {source}")]
    Grid {
        seed: u64,
        source: cutscore_core::grid::GridError,
    },
    #[error("judging edits of song seed {seed}: {source}")]
    Oracle { seed: u64, source: OracleError },
    #[error("song seed {seed} is too short to edit ({beats} beats)")]
    TooShort { seed: u64, beats: usize },
    #[error(transparent)]
    Prefs(#[from] PrefsError),
}

/// A rendered, analysed song ready for judging.
#[derive(Debug, Clone)]
pub struct SongData {
    pub seed: u64,
    pub track: String,
    pub truth: SongTruth,
    pub grid: BeatGrid,
    pub features: FeatureMatrix,
}

impl SongData {
    /// The song as a prefs folder stores it (`tracks/<id>.json`).
    pub fn track_record(&self) -> TrackRecord {
        TrackRecord::new(
            self.track.clone(),
            Some(format!("synthetic song, seed {}", self.seed)),
            self.grid.clone(),
            self.features.clone(),
        )
    }
}

/// Renders song `seed` ([`SongSpec::random`] at [`SAMPLE_RATE`]) and computes its features on
/// the true grid.
pub fn prepare_song(seed: u64) -> Result<SongData, PairsError> {
    let spec = SongSpec {
        sample_rate: SAMPLE_RATE,
        ..SongSpec::random(seed)
    };
    let song = render(&spec).map_err(|source| PairsError::Synth { seed, source })?;
    let mono = song.mono();
    let grid = song
        .truth
        .grid()
        .map_err(|source| PairsError::Grid { seed, source })?;
    let features = features_for_grid(&mono, song.sample_rate, &grid)
        .map_err(|source| PairsError::Analysis { seed, source })?;
    Ok(SongData {
        seed,
        track: track_id(&mono, song.sample_rate),
        truth: song.truth,
        grid,
        features,
    })
}

/// [`prepare_song`] of each seed, all at once on threads of their own, in seed order.
pub fn prepare_songs(seeds: &[u64]) -> Vec<Result<SongData, PairsError>> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = seeds
            .iter()
            .map(|&seed| scope.spawn(move || prepare_song(seed)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("song preparation does not panic"))
            .collect()
    })
}

/// Generates `options.count` pairs into the prefs folder `dir` (created if needed; records are
/// appended). `progress(pairs_done)` is called after each song.
pub fn generate(
    dir: &Path,
    options: &PairOptions,
    mut progress: impl FnMut(usize),
) -> Result<PairSummary, PairsError> {
    if options.count == 0 || options.pairs_per_song == 0 {
        return Err(PairsError::Count {
            count: options.count,
            per_song: options.pairs_per_song,
        });
    }
    let (min, max) = (options.min_margin, options.max_margin);
    if !(min >= 0.0 && min <= max) {
        return Err(PairsError::Margins { min, max });
    }
    let log = PrefsLog::create(dir)?;
    let mut seeds = StdRng::seed_from_u64(options.seed);
    let mut summary = PairSummary::default();
    let mut confidence_sum = 0.0;
    while summary.pairs < options.count {
        let songs_left = (options.count - summary.pairs).div_ceil(options.pairs_per_song);
        let batch: Vec<u64> = (0..songs_left.min(options.threads.max(1)))
            .map(|_| seeds.random())
            .collect();
        let prepared = prepare_songs(&batch);
        for song in prepared {
            let song = song?;
            let wanted = options.pairs_per_song.min(options.count - summary.pairs);
            let judged = match song_pairs(&song, wanted, summary.pairs, options) {
                Ok(judged) => judged,
                // A song with too little between its intro and outro: take the next seed.
                Err(PairsError::TooShort { .. }) if summary.songs_skipped < MAX_SKIPPED_SONGS => {
                    summary.songs_skipped += 1;
                    continue;
                }
                Err(e) => return Err(e),
            };
            log.save_track(&song.track_record())?;
            summary.flipped += judged.flipped;
            summary.close_redrawn += judged.close_redrawn;
            summary.far_redrawn += judged.far_redrawn;
            for comparison in judged.comparisons {
                summary.a_preferred += usize::from(comparison.preferred == Side::A);
                confidence_sum += f64::from(comparison.confidence);
                log.append(&Record::Comparison(comparison))?;
            }
            summary.songs += 1;
            summary.pairs += wanted;
            progress(summary.pairs);
        }
    }
    summary.mean_confidence = (confidence_sum / summary.pairs as f64) as f32;
    Ok(summary)
}

/// The judged comparisons of one song.
#[derive(Debug, Clone, PartialEq)]
pub struct SongPairs {
    pub comparisons: Vec<Comparison>,
    /// Labels that went against the oracle's majority.
    pub flipped: usize,
    /// Drawn pairs the oracle scored closer than the margin, redrawn.
    pub close_redrawn: usize,
    /// Drawn pairs the oracle scored further apart than the ceiling, redrawn.
    pub far_redrawn: usize,
}

/// `count` judged comparisons of edits of `song`; pair `first_index + k` puts the preferred
/// edit on side `a` when even, `b` when odd. Both edits of a pair come from one
/// [`EditPlan`] and have as many joins; a pair the oracle scores apart by less than
/// `options.min_margin` or more than `options.max_margin` (per join when
/// `options.margin_per_join`) is redrawn (up to [`MARGIN_TRIES`] times, then the pair drawn
/// nearest to the range is kept). Labels are judged at `options.temperature` (sampled, or soft
/// with `options.soft_labels`); the count, seed
/// and threads of `options` are [`generate`]'s.
pub fn song_pairs(
    song: &SongData,
    count: usize,
    first_index: usize,
    options: &PairOptions,
) -> Result<SongPairs, PairsError> {
    let margins = options.min_margin..=options.max_margin;
    let seed = song.seed;
    let beats = song.grid.len();
    let meter = usize::from(song.grid.meter.max(1));
    if beats < 8 * meter {
        return Err(PairsError::TooShort { seed, beats });
    }
    let mut rng = StdRng::seed_from_u64(seed ^ 0x0dd5_ca1e_0000_0003);
    let fraction = rng.random_range(0.55..0.85);
    let target = target_beats(&song.grid, fraction);
    let oracle = Oracle::new(&song.truth, &song.features, target)
        .map_err(|source| PairsError::Oracle { seed, source })?
        .with_weights(pair_weights())
        .with_temperature(options.temperature);
    let region = oracle.editable_region();
    if region.len() < 4 * meter {
        return Err(PairsError::TooShort { seed, beats });
    }
    let time = Record::now();
    let mut out = SongPairs {
        comparisons: Vec::with_capacity(count),
        flipped: 0,
        close_redrawn: 0,
        far_redrawn: 0,
    };
    for k in 0..count {
        // The pair drawn nearest to the margin range (its distance outside it) and its edits.
        let mut nearest: Option<(f32, Edit, Edit)> = None;
        for _ in 0..MARGIN_TRIES {
            let Some((first, second)) = draw_pair(&mut rng, &song.grid, target, &region) else {
                continue;
            };
            let score = |edit: &Edit| {
                oracle
                    .score(edit)
                    .map_err(|source| PairsError::Oracle { seed, source })
            };
            let joins = if options.margin_per_join {
                first.joins().len().max(1)
            } else {
                1
            };
            let margin = (score(&first)? - score(&second)?).abs() / joins as f32;
            let outside = (margins.start() - margin)
                .max(margin - margins.end())
                .max(0.0);
            if nearest.as_ref().is_none_or(|(d, ..)| outside < *d) {
                nearest = Some((outside, first, second));
            }
            if outside == 0.0 {
                break;
            }
            if margin < *margins.start() {
                out.close_redrawn += 1;
            } else {
                out.far_redrawn += 1;
            }
        }
        let Some((_, first, second)) = nearest else {
            return Err(PairsError::TooShort { seed, beats });
        };
        let judgement = if options.soft_labels {
            oracle.judge_expected(&first, &second, first.joins().len() as f32)
        } else {
            oracle.judge(&first, &second, &mut rng)
        }
        .map_err(|source| PairsError::Oracle { seed, source })?;
        if judgement.a_preferred != (judgement.p_a >= 0.5) {
            out.flipped += 1;
        }
        let (better, worse) = if judgement.a_preferred {
            (first, second)
        } else {
            (second, first)
        };
        let (a, b, preferred) = if (first_index + k).is_multiple_of(2) {
            (better, worse, Side::A)
        } else {
            (worse, better, Side::B)
        };
        out.comparisons.push(Comparison {
            v: RECORD_VERSION,
            time: time.clone(),
            track: song.track.clone(),
            a,
            b,
            preferred,
            confidence: judgement.confidence,
            source: Some(SOURCE.to_string()),
        });
    }
    Ok(out)
}

/// Draws before a close pair is kept anyway.
pub const MARGIN_TRIES: usize = 64;

/// The oracle's weights for pairs: its length term is off. Both edits of a pair remove about
/// the same amount (one [`EditPlan`]), and hitting a length is the fit search's hard
/// constraint, not a taste; left on, the term only adds labels no join can explain.
pub fn pair_weights() -> OracleWeights {
    OracleWeights {
        length: 0.0,
        ..OracleWeights::default()
    }
}

/// What both edits of a pair share: how many spans, about how many beats in all, and the beats
/// they may remove (the song between its intro and its outro).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditPlan {
    pub spans: usize,
    pub removed: usize,
    pub region: Range<usize>,
}

impl EditPlan {
    /// A plan aiming (loosely) at `target` kept beats of `grid`, removing only inside `region`.
    pub fn draw(rng: &mut impl Rng, grid: &BeatGrid, target: usize, region: &Range<usize>) -> Self {
        let meter = usize::from(grid.meter.max(1));
        let spans = match rng.random_range(0..20) {
            0..11 => 1,
            11..17 => 2,
            _ => 3,
        };
        // Each span needs a kept beat or two beside it; leave a bar per span free.
        let room = region.len().saturating_sub(spans * meter).max(spans);
        let wanted = (grid.len() - target) as f64 * rng.random_range(0.6..1.4);
        Self {
            spans,
            removed: (wanted.round() as usize).clamp(spans, room),
            region: region.clone(),
        }
    }
}

/// Two edits of one plan with as many joins, not near variants of each other; `None` when the
/// draws keep colliding.
pub fn draw_pair(
    rng: &mut impl Rng,
    grid: &BeatGrid,
    target: usize,
    region: &Range<usize>,
) -> Option<(Edit, Edit)> {
    let plan = EditPlan::draw(rng, grid, target, region);
    let first = draw_edit(rng, grid, &plan)?;
    for _ in 0..32 {
        if let Some(second) = draw_edit(rng, grid, &plan)
            && !near_variant(&first, &second)
        {
            return Some((first, second));
        }
    }
    None
}

/// One random edit following `plan`: `plan.spans` joins inside `plan.region`, each span whole
/// 4-bar phrases, whole bars or any length (±2 beats around its share), starting on a
/// downbeat or on any beat; `None` when the spans could not be placed or the region is empty
/// or outside the track.
pub fn draw_edit(rng: &mut impl Rng, grid: &BeatGrid, plan: &EditPlan) -> Option<Edit> {
    let meter = usize::from(grid.meter.max(1));
    let region = &plan.region;
    if region.is_empty() || region.end > grid.len() {
        return None;
    }
    let downbeats: Vec<usize> = grid
        .bar_starts()
        .into_iter()
        .filter(|b| region.contains(b))
        .collect();
    let mut spans: Vec<(usize, usize)> = Vec::with_capacity(plan.spans);
    for part in 0..plan.spans {
        let share =
            plan.removed / plan.spans + usize::from(part == 0) * (plan.removed % plan.spans);
        for _ in 0..20 {
            let len = match rng.random_range(0..10) {
                // Whole phrases of four bars.
                0..3 => (share as f64 / (4 * meter) as f64).round().max(1.0) as usize * 4 * meter,
                // Whole bars.
                3..7 => (share as f64 / meter as f64).round().max(1.0) as usize * meter,
                // Any length.
                _ => (share as i64 + rng.random_range(-2..=2)).max(1) as usize,
            };
            if len >= region.len() {
                continue;
            }
            let start = if rng.random_bool(0.6) && !downbeats.is_empty() {
                downbeats[rng.random_range(0..downbeats.len())]
            } else {
                rng.random_range(region.clone())
            };
            let end = start + len;
            let clear = spans.iter().all(|&(s, e)| end + 1 < s || e + 1 < start);
            if end <= region.end && clear {
                spans.push((start, end));
                break;
            }
        }
    }
    Edit::new(grid.len(), spans.iter().copied())
        .ok()
        .filter(|e| e.joins().len() == plan.spans)
}

/// True when `a` and `b` are the same edit or differ by at most one beat at every boundary.
pub fn near_variant(a: &Edit, b: &Edit) -> bool {
    a.removed().len() == b.removed().len()
        && a.removed()
            .iter()
            .zip(b.removed())
            .all(|(x, y)| x.start.abs_diff(y.start) <= 1 && x.end.abs_diff(y.end) <= 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cutscore_core::prefs::PrefsContents;

    #[test]
    fn writes_balanced_readable_pairs_on_several_songs() {
        let dir = tempfile::tempdir().unwrap();
        let options = PairOptions {
            count: 30,
            seed: 5,
            pairs_per_song: 12,
            threads: 2,
            ..PairOptions::default()
        };
        let mut calls = Vec::new();
        let summary = generate(dir.path(), &options, |done| calls.push(done)).unwrap();
        assert_eq!(summary.songs, 3);
        assert_eq!(summary.pairs, 30);
        assert_eq!(calls, vec![12, 24, 30]);
        assert_eq!(summary.a_preferred, 15);
        assert!((0.5..=1.0).contains(&summary.mean_confidence));
        let contents = PrefsContents::read(dir.path()).unwrap();
        assert!(contents.report.skipped.is_empty(), "{:?}", contents.report);
        assert_eq!(contents.report.comparisons, 30);
        assert_eq!(contents.tracks.len(), 3);
        let pairs = contents.pairs();
        assert_eq!(pairs.len(), 30);
        assert!(pairs.iter().all(|p| !near_variant(&p.chosen, &p.rejected)));
    }

    #[test]
    fn the_same_seed_gives_the_same_pairs_and_labels_follow_the_oracle() {
        let song = prepare_song(11).unwrap();
        let options = PairOptions::default();
        let a = song_pairs(&song, 20, 0, &options).unwrap();
        let b = song_pairs(&song, 20, 0, &options).unwrap();
        assert_eq!(a, b);
        // Scores at least the margin apart at temperature 0.1: the chosen side scores higher.
        let oracle = Oracle::new(&song.truth, &song.features, song.grid.len() / 2)
            .unwrap()
            .with_weights(pair_weights());
        let region = oracle.editable_region();
        for c in &a.comparisons {
            let (sa, sb) = (oracle.score(&c.a).unwrap(), oracle.score(&c.b).unwrap());
            assert!((sa >= sb) == (c.preferred == Side::A), "{sa} vs {sb}");
            assert!((sa - sb).abs() >= DEFAULT_MIN_MARGIN, "{sa} vs {sb}");
            assert_eq!(c.a.joins().len(), c.b.joins().len());
            for span in c.a.removed().iter().chain(c.b.removed()) {
                assert!(
                    region.start <= span.start && span.end <= region.end,
                    "{span:?}"
                );
            }
        }
    }

    #[test]
    fn a_margin_ceiling_keeps_only_close_calls() {
        let song = prepare_song(11).unwrap();
        let close_calls = PairOptions {
            max_margin: 1.5,
            ..PairOptions::default()
        };
        let hard = song_pairs(&song, 20, 0, &close_calls).unwrap();
        let all = song_pairs(&song, 20, 0, &PairOptions::default()).unwrap();
        assert!(hard.far_redrawn > 0 && all.far_redrawn == 0);
        let oracle = Oracle::new(&song.truth, &song.features, song.grid.len() / 2)
            .unwrap()
            .with_weights(pair_weights());
        let margin =
            |c: &Comparison| (oracle.score(&c.a).unwrap() - oracle.score(&c.b).unwrap()).abs();
        for c in &hard.comparisons {
            assert!((0.5..=1.5).contains(&margin(c)), "{}", margin(c));
        }
        // Without the ceiling, most pairs of this song are further apart than 1.5.
        let far = all.comparisons.iter().filter(|c| margin(c) > 1.5).count();
        assert!(far >= 5, "{far} of 20 pairs past 1.5 craft points");
        // Per join, pairs of n-join edits are kept between 0.5 n and 1.5 n apart.
        let per_join_options = PairOptions {
            margin_per_join: true,
            ..close_calls
        };
        let per_join = song_pairs(&song, 40, 0, &per_join_options).unwrap();
        let mut past_the_edit_ceiling = 0;
        for c in &per_join.comparisons {
            let joins = c.a.joins().len().max(1) as f32;
            let m = margin(c);
            assert!(
                (0.5 * joins..=1.5 * joins).contains(&m),
                "{m} over {joins} joins"
            );
            past_the_edit_ceiling += usize::from(m > 1.5);
        }
        assert!(past_the_edit_ceiling > 0, "no multi-join pair past 1.5");
        let reversed = PairOptions {
            min_margin: 2.0,
            max_margin: 1.0,
            ..PairOptions::default()
        };
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            generate(dir.path(), &reversed, |_| {}),
            Err(PairsError::Margins { .. })
        ));
    }

    #[test]
    fn soft_labels_follow_the_oracle_and_carry_its_probability_per_join() {
        let song = prepare_song(11).unwrap();
        let options = PairOptions {
            temperature: 0.5,
            min_margin: 0.25,
            soft_labels: true,
            ..PairOptions::default()
        };
        let soft = song_pairs(&song, 40, 0, &options).unwrap();
        let sampled = song_pairs(
            &song,
            40,
            0,
            &PairOptions {
                soft_labels: false,
                ..options.clone()
            },
        )
        .unwrap();
        // At this width sampled labels sometimes go against the oracle; soft ones never do.
        assert_eq!(soft.flipped, 0);
        assert!(sampled.flipped > 0, "no sampled label was flipped");
        let oracle = Oracle::new(&song.truth, &song.features, song.grid.len() / 2)
            .unwrap()
            .with_weights(pair_weights());
        let mut joins_seen = std::collections::HashSet::new();
        let mut unsure = 0;
        for c in &soft.comparisons {
            let (sa, sb) = (oracle.score(&c.a).unwrap(), oracle.score(&c.b).unwrap());
            assert_eq!(sa > sb, c.preferred == Side::A, "{sa} vs {sb}");
            let joins = c.a.joins().len() as f32;
            joins_seen.insert(c.a.joins().len());
            let expected = 1.0 / (1.0 + (-(sa - sb).abs() / (0.5 * joins)).exp());
            assert!(
                (c.confidence - expected).abs() < 1e-5,
                "confidence {} for a margin of {} over {joins} joins",
                c.confidence,
                (sa - sb).abs()
            );
            unsure += usize::from(c.confidence < 0.95);
        }
        assert!(joins_seen.len() >= 2, "joins {joins_seen:?}");
        assert!(unsure >= 4, "only {unsure} of 40 soft labels under 0.95");
    }

    #[test]
    fn drawn_edits_vary_and_follow_their_plan() {
        let grid = BeatGrid::regular(0.0, 0.5, 160, 4, 0).unwrap();
        let region = 16..144;
        let mut rng = StdRng::seed_from_u64(0);
        let mut join_counts = std::collections::HashSet::new();
        let (mut on_downbeat, mut kept, mut drawn) = (0, 0, 0);
        for _ in 0..200 {
            let Some((a, b)) = draw_pair(&mut rng, &grid, 112, &region) else {
                continue;
            };
            drawn += 1;
            assert_eq!(a.joins().len(), b.joins().len());
            assert!(!near_variant(&a, &b));
            join_counts.insert(a.joins().len());
            for edit in [&a, &b] {
                assert!(edit.removed().iter().all(|s| s.start >= 16 && s.end <= 144));
                on_downbeat += usize::from(edit.removed().iter().all(|s| s.start % 4 == 0));
                kept += edit.kept_len();
            }
        }
        assert!(drawn >= 190, "{drawn} of 200 pairs drawn");
        assert_eq!(draw_pair(&mut rng, &grid, 112, &(40..40)), None);
        assert_eq!(draw_pair(&mut rng, &grid, 112, &(100..200)), None);
        assert_eq!(join_counts.len(), 3, "join counts {join_counts:?}");
        assert!((80..2 * drawn - 40).contains(&on_downbeat), "{on_downbeat}");
        let mean_kept = kept as f64 / (2 * drawn) as f64;
        assert!((95.0..135.0).contains(&mean_kept), "{mean_kept}");
    }
}
