//! Synthetic preference pairs: edits of generated songs judged by the [`crate::oracle`],
//! written as `comparison` records in the decision-log format (`docs/prefs-format.md`), so the
//! trainer reads them with the same loader as the user's decisions.
//!
//! Each song is a [`SongSpec::random`] (30-60 s) rendered at 22.05 kHz (the analysis rate, so
//! nothing is resampled); its beat grid is the exact ground truth and its 121 features are
//! computed on that grid. Per song a target length (55-85 % of the song, whole bars) is drawn,
//! then pairs of edits drawn independently of each other: one to three removed spans whose
//! total is near the target, each span sometimes whole bars or whole phrases from a downbeat,
//! sometimes any length from any beat, sometimes a trim of the start or the end. A pair whose
//! edits differ only by a beat or so at every boundary is redrawn, so no pair is a trivial
//! ±1-beat variant. The preferred side alternates between `a` and `b`, so labels are balanced
//! exactly 50/50.

use std::path::Path;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::analysis::{AnalysisError, features_for_grid};
use crate::edit::Edit;
use crate::features::FeatureMatrix;
use crate::grid::BeatGrid;
use crate::oracle::{DEFAULT_TEMPERATURE, Oracle, OracleError, target_beats};
use crate::prefs::{
    Comparison, PrefsError, PrefsLog, RECORD_VERSION, Record, Side, TrackRecord, track_id,
};
use crate::synth::{SongSpec, SongTruth, SynthError, render};

/// The `source` of every comparison written here.
pub const SOURCE: &str = "synthetic-oracle";
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
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
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
}

/// Why pairs could not be generated.
#[derive(Debug, thiserror::Error)]
pub enum PairsError {
    #[error("asked for {count} pairs at {per_song} per song; expected at least 1 of each")]
    Count { count: usize, per_song: usize },
    #[error("rendering song seed {seed}: {source}")]
    Synth { seed: u64, source: SynthError },
    #[error("analysing song seed {seed}: {source}")]
    Analysis { seed: u64, source: AnalysisError },
    #[error("song seed {seed}: {source}")]
    Grid {
        seed: u64,
        source: crate::grid::GridError,
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
    let log = PrefsLog::create(dir)?;
    let songs = options.count.div_ceil(options.pairs_per_song);
    let mut seeds = StdRng::seed_from_u64(options.seed);
    let song_seeds: Vec<u64> = (0..songs).map(|_| seeds.random()).collect();
    let mut summary = PairSummary::default();
    let mut confidence_sum = 0.0;
    for batch in song_seeds.chunks(options.threads.max(1)) {
        let prepared: Vec<Result<SongData, PairsError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = batch
                .iter()
                .map(|&seed| scope.spawn(move || prepare_song(seed)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("song preparation does not panic"))
                .collect()
        });
        for song in prepared {
            let song = song?;
            let wanted = options.pairs_per_song.min(options.count - summary.pairs);
            log.save_track(&TrackRecord::new(
                song.track.clone(),
                Some(format!("synthetic song, seed {}", song.seed)),
                song.grid.clone(),
                song.features.clone(),
            ))?;
            let judged = song_pairs(&song, wanted, summary.pairs, options.temperature)?;
            summary.flipped += judged.flipped;
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
}

/// `count` judged comparisons of edits of `song`; pair `first_index + k` puts the preferred
/// edit on side `a` when even, `b` when odd.
pub fn song_pairs(
    song: &SongData,
    count: usize,
    first_index: usize,
    temperature: f32,
) -> Result<SongPairs, PairsError> {
    let seed = song.seed;
    let beats = song.grid.len();
    let meter = usize::from(song.grid.meter.max(1));
    if beats < 8 * meter {
        return Err(PairsError::TooShort { seed, beats });
    }
    let mut rng = StdRng::seed_from_u64(seed ^ 0x0dd5_ca1e_0000_0002);
    let fraction = rng.random_range(0.55..0.85);
    let target = target_beats(&song.grid, fraction);
    let oracle = Oracle::new(&song.truth, &song.features, target)
        .map_err(|source| PairsError::Oracle { seed, source })?
        .with_temperature(temperature);
    let time = Record::now();
    let mut out = SongPairs {
        comparisons: Vec::with_capacity(count),
        flipped: 0,
    };
    for k in 0..count {
        let first = draw_edit(&mut rng, &song.grid, target);
        let mut second = draw_edit(&mut rng, &song.grid, target);
        for _ in 0..32 {
            if !near_variant(&first, &second) {
                break;
            }
            second = draw_edit(&mut rng, &song.grid, target);
        }
        let judgement = oracle
            .judge(&first, &second, &mut rng)
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

/// One random edit aiming (loosely) at `target` kept beats; see the module docs.
pub fn draw_edit(rng: &mut impl Rng, grid: &BeatGrid, target: usize) -> Edit {
    let beats = grid.len();
    let meter = usize::from(grid.meter.max(1));
    let downbeats = grid.bar_starts();
    let wanted_removed = ((beats - target) as f64 * rng.random_range(0.6..1.4)).round() as usize;
    let wanted_removed = wanted_removed.clamp(1, beats - meter);
    let spans_wanted = match rng.random_range(0..20) {
        0..11 => 1,
        11..17 => 2,
        _ => 3,
    };
    let mut spans: Vec<(usize, usize)> = Vec::new();
    for part in 0..spans_wanted {
        let share = wanted_removed / spans_wanted
            + usize::from(part == 0) * (wanted_removed % spans_wanted);
        for _ in 0..20 {
            let mut len = share.max(1);
            match rng.random_range(0..10) {
                // Whole phrases of four bars.
                0..3 => {
                    len = (len as f64 / (4 * meter) as f64).round().max(1.0) as usize * 4 * meter
                }
                // Whole bars.
                3..7 => len = (len as f64 / meter as f64).round().max(1.0) as usize * meter,
                // Any length.
                _ => len = (len as i64 + rng.random_range(-2..=2)).max(1) as usize,
            }
            let start = match rng.random_range(0..20) {
                // A trim of the start or the end.
                0 => 0,
                1 => beats.saturating_sub(len),
                2..13 if !downbeats.is_empty() => downbeats[rng.random_range(0..downbeats.len())],
                _ => rng.random_range(0..beats),
            };
            let end = (start + len).min(beats);
            let clear = spans.iter().all(|&(s, e)| end + 1 < s || e + 1 < start);
            if start < end && clear {
                spans.push((start, end));
                break;
            }
        }
    }
    Edit::new(beats, spans.iter().copied())
        .ok()
        .filter(|e| e.kept_len() >= meter)
        .unwrap_or_else(|| fallback_edit(grid, target))
}

/// A single whole-bar cut in the middle (used when random draws keep colliding).
fn fallback_edit(grid: &BeatGrid, target: usize) -> Edit {
    let beats = grid.len();
    let removed = (beats - target).max(1).min(beats - 1);
    let start = (beats - removed) / 2;
    Edit::new(beats, [(start, start + removed)])
        .expect("a middle cut of a non-empty track is valid")
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
    use crate::prefs::PrefsContents;

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
    fn the_same_seed_gives_the_same_pairs() {
        let song = prepare_song(11).unwrap();
        let a = song_pairs(&song, 20, 0, DEFAULT_TEMPERATURE).unwrap();
        let b = song_pairs(&song, 20, 0, DEFAULT_TEMPERATURE).unwrap();
        assert_eq!(a, b);
        // The oracle's choice is mostly the better-crafted edit: the chosen side scores higher.
        let target = target_beats(
            &song.grid,
            StdRng::seed_from_u64(11 ^ 0x0dd5_ca1e_0000_0002).random_range(0.55..0.85),
        );
        let oracle = Oracle::new(&song.truth, &song.features, target).unwrap();
        let agree = a
            .comparisons
            .iter()
            .filter(|c| {
                let (sa, sb) = (oracle.score(&c.a).unwrap(), oracle.score(&c.b).unwrap());
                (sa >= sb) == (c.preferred == Side::A)
            })
            .count();
        assert!(
            agree >= 14,
            "{agree} of 20 labels agree with the oracle's scores"
        );
    }

    #[test]
    fn drawn_edits_vary_and_stay_valid() {
        let grid = BeatGrid::regular(0.0, 0.5, 160, 4, 0).unwrap();
        let mut rng = StdRng::seed_from_u64(0);
        let edits: Vec<Edit> = (0..200).map(|_| draw_edit(&mut rng, &grid, 112)).collect();
        let joins: std::collections::HashSet<usize> =
            edits.iter().map(|e| e.joins().len()).collect();
        assert!(joins.len() >= 3, "join counts {joins:?}");
        let on_downbeat = edits
            .iter()
            .filter(|e| e.removed().iter().all(|s| s.start % 4 == 0))
            .count();
        assert!((40..190).contains(&on_downbeat), "{on_downbeat}");
        let mean_kept = edits.iter().map(|e| e.kept_len()).sum::<usize>() as f64 / 200.0;
        assert!((90.0..135.0).contains(&mean_kept), "{mean_kept}");
    }
}
