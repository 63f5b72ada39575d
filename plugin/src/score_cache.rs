//! The scoring worker's scores by span, and which of them the capture's changes leave current.
//!
//! A span's score reads the feature rows of the beats its scoring windows cover: at most
//! `reach` (the model's window) beats either side of the cut, and the cut itself (a taste
//! layer summarises what is removed). When the bar lines move ([`Capture::place_bars`]) only
//! the rows of the beats whose bar position changed are rewritten, often a few bars of a long
//! capture: a score that read none of them is still exact and is kept; one that read any is
//! marked dirty, shown as it was until it is rescored. New beat times (the grid was settled over
//! the whole capture), a new meter or a new capture make every span's audio or bars different,
//! and the cache starts afresh.
//!
//! A score also depends on the track's length, in two ways. A span whose windows reach past the
//! track's end ([`whole_at`]) is scored on windows shifted back from the end, as if the song
//! ended there, and its score is off by a median of 1.5 (of a spread of 1.7, `examples/
//! score_drift.rs` on the real set): it is stale as soon as the track grows, and the scoring
//! worker does not propose such spans while the capture is still growing. The `kept_fraction`
//! input and, with a taste layer, the mean of all rows drift slowly as the capture grows:
//! [`ScoreCache::is_stale`] rescores a span once the track is [`STALE_GROWTH`] times longer.
//!
//! A taste layer's gate is not kept: it reads where the transformer's score stands against the
//! track's reference score (the best of a sample of its cuts, scored and kept here like the
//! proposals), which moves whenever a better cut is heard, so each entry keeps the transformer's
//! score and the layer's offset before the gate, and [`Scored::score`] applies the gate with the
//! reference of the moment.
//!
//! [`Capture::place_bars`]: crate::session::Capture::place_bars

use std::collections::HashMap;

use cutscore_core::features::FeatureMatrix;
use cutscore_core::grid::BeatGrid;
use cutscore_core::taste::TasteLayer;

/// A score goes stale when the track has grown by this factor since it was computed: the
/// `kept_fraction` input moves with the track's length. Measured on the real set
/// (`examples/score_drift.rs`), 1.2x growth moves the scores of spans with whole windows by a
/// median of 0.015 and a 95th percentile of 0.054 (the scores' spread is 1.7; the editor shows
/// two decimals), while rescoring everything at every 5 % of growth, as before, scored each span
/// up to about 20 times (1 / (1 - 1/1.05)). With this, the whole-window rule and the dirty
/// marking above, the soak's process (10 minutes at 2x) used 99 s of CPU instead of 226 s.
pub const STALE_GROWTH: f64 = 1.2;

/// A cut from beat `.0` up to (not including) beat `.1`.
pub type Span = (usize, usize);

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    /// The reward transformer's score.
    pub transformer: f32,
    /// The taste layer's offset before its gate ([`TasteLayer::ungated`]; 0 without a layer).
    pub ungated: f32,
    /// Complete beats of the track when it was scored.
    pub beats: usize,
    /// The model generation that scored it.
    pub generation: u64,
    /// A row it read has changed since: shown as it was, rescored soon.
    pub dirty: bool,
    /// Its windows reached past the track's end ([`whole_at`]).
    pub clipped: bool,
}

impl Scored {
    /// The score the proposal is ranked by: the transformer's, plus the taste layer's offset
    /// gated by where the transformer's score stands against the track's `reference` (read
    /// when the scores are published, so every score of a ranking reads the same one).
    pub fn score(&self, taste: Option<&TasteLayer>, reference: Option<f32>) -> f32 {
        self.transformer
            + taste.map_or(0.0, |t| {
                self.ungated * t.gate(t.standing(self.transformer, reference))
            })
    }
}

/// How many beats the track needs for `span`'s scoring windows of `window` beats to be whole:
/// each is centred on the join (`Edit::scoring_windows`), or starts at the track's start when
/// the cut is that close to it, and a shorter track shifts it back from its end.
pub fn whole_at((start, end): Span, window: usize) -> usize {
    end + window - start.min(window / 2)
}

/// Scores by span for one capture, one meter and one set of beat times.
#[derive(Debug, Default)]
pub struct ScoreCache {
    epoch: u64,
    bar_lines: u64,
    meter: u8,
    /// How many beats either side of a cut its score reads.
    reach: usize,
    /// The beat times the scores were computed on.
    beats: Vec<f64>,
    /// A fingerprint of each complete beat's feature row.
    rows: Vec<u64>,
    scores: HashMap<Span, Scored>,
}

impl ScoreCache {
    /// Follows the capture to `grid` and `features` (its complete beats), capture `epoch` with
    /// its bar lines placed for the `bar_lines`-th time; a score reads `reach` beats either side
    /// of its cut. Returns how many scores a bar-line move made dirty.
    pub fn follow(
        &mut self,
        epoch: u64,
        bar_lines: u64,
        grid: &BeatGrid,
        features: &FeatureMatrix,
        reach: usize,
    ) -> usize {
        let rows = features.beats();
        let common = self.rows.len().min(rows);
        let same_beats = self.beats[..common.min(self.beats.len())]
            .iter()
            .zip(&grid.beats)
            .all(|(a, b)| a == b);
        if epoch != self.epoch || grid.meter != self.meter || reach != self.reach || !same_beats {
            *self = Self {
                epoch,
                bar_lines,
                meter: grid.meter,
                reach,
                beats: grid.beats.clone(),
                rows: (0..rows).map(|i| fingerprint(features.row(i))).collect(),
                scores: HashMap::new(),
            };
            return 0;
        }
        let mut dirtied = 0;
        if bar_lines != self.bar_lines {
            // changed_before[i]: how many of the rows before `i` changed.
            let mut changed_before = Vec::with_capacity(common + 1);
            changed_before.push(0usize);
            for (i, old) in self.rows[..common].iter().enumerate() {
                let changed = fingerprint(features.row(i)) != *old;
                changed_before.push(changed_before[i] + usize::from(changed));
            }
            if changed_before[common] > 0 {
                for (&(start, end), scored) in &mut self.scores {
                    let from = start.saturating_sub(reach).min(common);
                    let to = (end + reach).min(common);
                    if !scored.dirty && changed_before[to] > changed_before[from] {
                        scored.dirty = true;
                        dirtied += 1;
                    }
                }
            }
            self.bar_lines = bar_lines;
        }
        self.rows.truncate(common);
        self.rows
            .extend((self.rows.len()..rows).map(|i| fingerprint(features.row(i))));
        self.beats.clone_from(&grid.beats);
        dirtied
    }

    pub fn get(&self, span: &Span) -> Option<&Scored> {
        self.scores.get(span)
    }

    pub fn insert(&mut self, span: Span, scored: Scored) {
        self.scores.insert(span, scored);
    }

    /// Forgets the spans that are no longer candidates (the bar lines moved off them).
    pub fn keep_only(&mut self, spans: &[Span]) {
        if self.scores.len() > spans.len() {
            let wanted: std::collections::HashSet<&Span> = spans.iter().collect();
            self.scores.retain(|span, _| wanted.contains(span));
        }
    }

    /// Whether `scored` should be rescored on a track of `beats` complete beats: a row it read
    /// changed, its windows were clipped by an end the track has grown past, or the track grew
    /// by [`STALE_GROWTH`].
    pub fn is_stale(scored: &Scored, beats: usize) -> bool {
        scored.dirty
            || (scored.clipped && beats > scored.beats)
            || beats as f64 > scored.beats as f64 * STALE_GROWTH
    }
}

/// A hash of a feature row's bits: equal rows, equal fingerprints.
fn fingerprint(row: &[f32]) -> u64 {
    // FNV-1a over the values' bits: fast, and a changed value changes it.
    row.iter().fold(0xcbf2_9ce4_8422_2325, |hash, value| {
        (hash ^ u64::from(value.to_bits())).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use cutscore_core::features::BEAT_FEATURES;

    const REACH: usize = 8;

    fn grid(beats: usize) -> BeatGrid {
        let times: Vec<f64> = (0..beats).map(|i| i as f64 * 0.5).collect();
        let positions = (0..beats).map(|i| (i % 4) as u8).collect();
        BeatGrid::new(times, positions, 4, beats as f64 * 0.5).expect("a valid grid")
    }

    /// Seeded rows that differ from beat to beat.
    fn features(beats: usize) -> FeatureMatrix {
        let values = (0..beats * BEAT_FEATURES)
            .map(|i| ((i * 7919) % 1000) as f32 / 1000.0)
            .collect();
        FeatureMatrix::new(beats, values).expect("a valid matrix")
    }

    fn scored() -> Scored {
        Scored {
            transformer: 1.0,
            ungated: 0.0,
            beats: 100,
            generation: 0,
            dirty: false,
            clipped: false,
        }
    }

    fn cache_with(spans: &[Span], grid: &BeatGrid, features: &FeatureMatrix) -> ScoreCache {
        let mut cache = ScoreCache::default();
        cache.follow(1, 0, grid, features, REACH);
        for &span in spans {
            cache.insert(span, scored());
        }
        cache
    }

    #[test]
    fn a_bar_line_move_dirties_only_the_scores_that_read_the_moved_rows() {
        let (grid, mut features) = (grid(100), features(100));
        let spans = [(4, 12), (20, 28), (40, 48), (44, 60), (80, 88)];
        let mut cache = cache_with(&spans, &grid, &features);
        // Bars 12 and 13 (beats 48..56) are rewritten.
        for beat in 48..56 {
            features.row_mut(beat)[0] += 1.0;
        }
        assert_eq!(cache.follow(1, 1, &grid, &features, REACH), 2);
        let dirty: Vec<Span> = spans
            .iter()
            .copied()
            .filter(|s| cache.get(s).unwrap().dirty)
            .collect();
        // (40, 48) reads up to beat 56 after its cut, (44, 60) removes them; (20, 28) reads
        // up to 36 and (80, 88) from 72.
        assert_eq!(dirty, vec![(40, 48), (44, 60)]);
        assert!(ScoreCache::is_stale(cache.get(&(40, 48)).unwrap(), 100));
        assert!(!ScoreCache::is_stale(cache.get(&(80, 88)).unwrap(), 100));
    }

    #[test]
    fn rows_that_did_not_change_dirty_nothing_and_growth_alone_keeps_scores() {
        let (grid, features) = (grid(100), features(100));
        let mut cache = cache_with(&[(40, 48)], &grid, &features);
        // A new placing of the bar lines that rewrote nothing the cache scored on.
        assert_eq!(cache.follow(1, 1, &grid, &features, REACH), 0);
        // The capture grows: the new rows are not changes.
        let (longer, more) = (self::grid(104), self::features(104));
        assert_eq!(cache.follow(1, 1, &longer, &more, REACH), 0);
        assert_eq!(cache.get(&(40, 48)), Some(&scored()));
        // Grown past STALE_GROWTH, the score is stale without being dirty.
        assert!(!ScoreCache::is_stale(&scored(), 110));
        assert!(ScoreCache::is_stale(&scored(), 121));
        // A score whose windows the end clipped is stale on the next beat.
        let clipped = Scored {
            clipped: true,
            ..scored()
        };
        assert!(!ScoreCache::is_stale(&clipped, 100));
        assert!(ScoreCache::is_stale(&clipped, 101));
    }

    #[test]
    fn a_span_s_windows_are_whole_from_the_length_where_a_longer_track_leaves_them_unchanged() {
        use cutscore_core::edit::Edit;
        for window in [8, 16] {
            for span in [(2, 6), (4, 12), (8, 12), (40, 48), (40, 72)] {
                let need = whole_at(span, window);
                let windows = |beats: usize| {
                    let edit = Edit::new(beats, [span]).unwrap();
                    edit.scoring_windows(window)
                };
                assert_eq!(
                    windows(need),
                    windows(need + 50),
                    "{span:?}, window {window}"
                );
                assert_ne!(
                    windows(need - 1),
                    windows(need + 50),
                    "{span:?}, window {window}"
                );
            }
        }
    }

    #[test]
    fn new_beat_times_a_new_meter_or_a_new_capture_start_afresh() {
        let (grid, features) = (grid(100), features(100));
        let mut settled = grid.clone();
        settled.beats[30] += 0.01;
        let mut waltz = grid.clone();
        waltz.meter = 3;
        for (epoch, changed) in [(1, &settled), (1, &waltz), (2, &grid)] {
            let mut cache = cache_with(&[(4, 12)], &grid, &features);
            cache.follow(epoch, 1, changed, &features, REACH);
            assert_eq!(cache.get(&(4, 12)), None);
        }
    }

    #[test]
    fn spans_that_are_no_longer_candidates_are_forgotten() {
        let (grid, features) = (grid(100), features(100));
        let mut cache = cache_with(&[(4, 12), (20, 28)], &grid, &features);
        cache.keep_only(&[(20, 28)]);
        assert_eq!(cache.get(&(4, 12)), None);
        assert!(cache.get(&(20, 28)).is_some());
    }
}
