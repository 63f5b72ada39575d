//! Edits (sets of removed beat spans), their joins, and the 4 edit-aware per-beat features.
//!
//! An [`Edit`] removes half-open spans of beats from a track. What the listener hears is the
//! kept beats in order; wherever a removed span has kept beats on both sides, playback jumps
//! from the last kept beat before it to the first kept beat after it: that is a [`Join`]. A span
//! that reaches the start or the end of the track is a trim, not a join.
//!
//! # The edit-aware features (indices 121..125 of the model input)
//! Computed for every kept beat `i` of the edited sequence (see `docs/features.md`):
//!
//! | index | name | value |
//! |---|---|---|
//! | 121 | `join_distance` | signed beats from the nearest join, `clamp(i - k + 0.5, -16, 16) / 16`, where the join sits just before edited beat `k`; negative before the join, positive after; `1.0` when the edit has no join |
//! | 122 | `join_marker` | `1.0` on the first beat after a join, else `0.0` |
//! | 123 | `kept_fraction` | kept beats / beats of the original track, the same on every beat |
//! | 124 | `removed_bars` | `log2(1 + removed beats at the nearest join / meter) / 4`; `0.0` without a join |
//!
//! # Scoring windows
//! The reward model reads at most `window` beats of the edited sequence at once (the window it
//! was trained on, stored with it; [`DEFAULT_WINDOW`] for new models), so scoring cost does not
//! grow with the length of the song. Each join gets a window centred on it (shifted to stay
//! inside the edited sequence); windows that come out identical, as when the whole edit fits in
//! one, are scored once. An edit's score is the mean of its windows' scores, so every join is
//! heard in context and neighbouring joins inside a window are seen together. An edit without
//! joins is scored on one window at the middle.

use std::ops::Range;

use serde::{Deserialize, Serialize};

/// Beats a new reward model reads around each join: 2 bars of 4/4 on each side, which hold the
/// bars the oracle compares across a join and the phrase position of both ends. A model's own
/// window is stored with it (`cutscore_reward::Config::window`; its learned positions past it
/// are untrained). 16-beat windows cost half as much as 32-beat ones (the previous default) to
/// train and to score, which pays for training on many more songs and keeps fitting a
/// 4-minute song within 2 s.
pub const DEFAULT_WINDOW: usize = 16;

/// Why an edit was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EditError {
    #[error("removed span {start}..{end} is empty or reversed; expected start < end")]
    EmptySpan { start: usize, end: usize },
    #[error("removed span {start}..{end} reaches past the track's {beats} beats")]
    OutOfRange {
        start: usize,
        end: usize,
        beats: usize,
    },
    #[error("removed spans {first:?} and {second:?} overlap")]
    Overlap {
        first: (usize, usize),
        second: (usize, usize),
    },
    #[error("the edit removes all {beats} beats; expected at least one beat kept")]
    NothingKept { beats: usize },
    #[error(
        "the edit of {from} beats cannot be read over {to} beats: its cut {start}..{end} would change meaning; expected a longer track and cuts that end before the track does"
    )]
    NotExtendable {
        start: usize,
        end: usize,
        from: usize,
        to: usize,
    },
}

/// A half-open span `start..end` of removed beats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct BeatSpan {
    pub start: usize,
    pub end: usize,
}

impl BeatSpan {
    /// Beats in the span.
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// True for a span of no beats (never inside a valid [`Edit`]).
    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }
}

/// A place where playback jumps over a removed span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Join {
    /// Source index of the last kept beat before the removed span.
    pub before: usize,
    /// Source index of the first kept beat after it.
    pub after: usize,
    /// Index of `after` in the edited sequence.
    pub position: usize,
    /// Beats removed at this join.
    pub removed_beats: usize,
}

/// A set of removed beat spans on a track of `beats` beats: sorted, disjoint and non-adjacent.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "EditRecord", into = "EditRecord")]
pub struct Edit {
    beats: usize,
    removed: Vec<BeatSpan>,
}

/// The serialized form of an edit: `{"beats": N, "removed": [[start, end], ...]}`.
#[derive(Serialize, Deserialize)]
struct EditRecord {
    beats: usize,
    removed: Vec<(usize, usize)>,
}

impl TryFrom<EditRecord> for Edit {
    type Error = EditError;
    fn try_from(record: EditRecord) -> Result<Self, EditError> {
        Edit::new(record.beats, record.removed)
    }
}

impl From<Edit> for EditRecord {
    fn from(edit: Edit) -> Self {
        Self {
            beats: edit.beats,
            removed: edit.removed.iter().map(|s| (s.start, s.end)).collect(),
        }
    }
}

impl Edit {
    /// Builds an edit of a track of `beats` beats that removes the given `(start, end)` spans.
    /// Spans may come in any order; touching spans are merged.
    pub fn new(
        beats: usize,
        spans: impl IntoIterator<Item = (usize, usize)>,
    ) -> Result<Self, EditError> {
        let mut spans: Vec<BeatSpan> = spans
            .into_iter()
            .map(|(start, end)| BeatSpan { start, end })
            .collect();
        for span in &spans {
            if span.is_empty() {
                return Err(EditError::EmptySpan {
                    start: span.start,
                    end: span.end,
                });
            }
            if span.end > beats {
                return Err(EditError::OutOfRange {
                    start: span.start,
                    end: span.end,
                    beats,
                });
            }
        }
        spans.sort();
        let mut removed: Vec<BeatSpan> = Vec::with_capacity(spans.len());
        for span in spans {
            match removed.last_mut() {
                Some(last) if span.start < last.end => {
                    return Err(EditError::Overlap {
                        first: (last.start, last.end),
                        second: (span.start, span.end),
                    });
                }
                Some(last) if span.start == last.end => last.end = span.end,
                _ => removed.push(span),
            }
        }
        let edit = Self { beats, removed };
        if edit.kept_len() == 0 {
            return Err(EditError::NothingKept { beats });
        }
        Ok(edit)
    }

    /// The edit that keeps everything.
    pub fn identity(beats: usize) -> Self {
        Self {
            beats,
            removed: Vec::new(),
        }
    }

    /// The same cuts over a longer source of `beats` beats: the beats past this edit's source
    /// are kept. Fails if `beats` is shorter than the source, or if a cut reaches the end of
    /// the source (a trim of the end would silently become a cut in the middle).
    pub fn extended_to(&self, beats: usize) -> Result<Self, EditError> {
        if beats == self.beats {
            return Ok(self.clone());
        }
        let shorter = beats < self.beats;
        if let Some(span) = self.removed.iter().find(|s| shorter || s.end == self.beats) {
            return Err(EditError::NotExtendable {
                start: span.start,
                end: span.end,
                from: self.beats,
                to: beats,
            });
        }
        Self::new(beats, self.removed.iter().map(|s| (s.start, s.end)))
    }

    /// Beats of the original track.
    pub fn source_beats(&self) -> usize {
        self.beats
    }

    /// The removed spans, sorted.
    pub fn removed(&self) -> &[BeatSpan] {
        &self.removed
    }

    /// Beats removed in all.
    pub fn removed_len(&self) -> usize {
        self.removed.iter().map(BeatSpan::len).sum()
    }

    /// Beats the listener hears.
    pub fn kept_len(&self) -> usize {
        self.beats - self.removed_len()
    }

    /// Source indices of the kept beats, in playback order.
    pub fn kept_beats(&self) -> Vec<usize> {
        let mut kept = Vec::with_capacity(self.kept_len());
        let mut next = 0;
        for span in &self.removed {
            kept.extend(next..span.start);
            next = span.end;
        }
        kept.extend(next..self.beats);
        kept
    }

    /// The joins, in playback order.
    pub fn joins(&self) -> Vec<Join> {
        let mut joins = Vec::new();
        let mut removed_before = 0;
        for span in &self.removed {
            if span.start > 0 && span.end < self.beats {
                joins.push(Join {
                    before: span.start - 1,
                    after: span.end,
                    position: span.end - removed_before - span.len(),
                    removed_beats: span.len(),
                });
            }
            removed_before += span.len();
        }
        joins
    }

    /// The 4 edit-aware features of every kept beat, row-major (`kept_len() * 4` values).
    pub fn features(&self, meter: u8) -> Vec<f32> {
        let kept = self.kept_len();
        let joins = self.joins();
        let kept_fraction = kept as f32 / self.beats as f32;
        let mut out = Vec::with_capacity(kept * crate::features::EDIT_FEATURES);
        let mut nearest = 0;
        for i in 0..kept {
            // Joins are sorted by position, so the nearest one only ever moves forward.
            while nearest + 1 < joins.len()
                && distance(i, joins[nearest + 1].position) <= distance(i, joins[nearest].position)
            {
                nearest += 1;
            }
            match joins.get(nearest) {
                Some(join) => {
                    let signed = i as f32 - join.position as f32 + 0.5;
                    out.push(signed.clamp(-16.0, 16.0) / 16.0);
                    out.push(if i == join.position { 1.0 } else { 0.0 });
                    out.push(kept_fraction);
                    out.push((1.0 + join.removed_beats as f32 / meter.max(1) as f32).log2() / 4.0);
                }
                None => out.extend_from_slice(&[1.0, 0.0, kept_fraction, 0.0]),
            }
        }
        out
    }

    /// The windows of the edited sequence the reward model scores, as ranges of edited-beat
    /// indices of at most `window` beats (see the module docs).
    pub fn scoring_windows(&self, window: usize) -> Vec<Range<usize>> {
        let kept = self.kept_len();
        let window = window.max(1).min(kept);
        let place = |centre: usize| {
            let start = centre.saturating_sub(window / 2).min(kept - window);
            start..start + window
        };
        let mut windows: Vec<Range<usize>> = match self.joins().as_slice() {
            [] => vec![place(kept / 2)],
            joins => joins.iter().map(|j| place(j.position)).collect(),
        };
        windows.dedup();
        windows
    }
}

fn distance(i: usize, join_position: usize) -> f32 {
    (i as f32 - join_position as f32 + 0.5).abs()
}

#[cfg(test)]
mod tests {

    #[test]
    fn an_edit_extends_to_a_longer_track_unless_that_changes_its_meaning() {
        let edit = Edit::new(32, [(8, 12)]).unwrap();
        assert_eq!(
            edit.extended_to(40).unwrap(),
            Edit::new(40, [(8, 12)]).unwrap()
        );
        assert_eq!(edit.extended_to(32).unwrap(), edit);
        assert!(matches!(
            edit.extended_to(16),
            Err(EditError::NotExtendable {
                from: 32,
                to: 16,
                ..
            })
        ));
        let trim = Edit::new(32, [(28, 32)]).unwrap();
        assert!(matches!(
            trim.extended_to(40),
            Err(EditError::NotExtendable {
                start: 28,
                end: 32,
                ..
            })
        ));
    }

    use super::*;

    #[test]
    fn merges_touching_spans_and_lists_joins_in_edited_positions() {
        let edit = Edit::new(20, [(8, 12), (4, 6), (6, 8)]).unwrap();
        assert_eq!(edit.removed(), &[BeatSpan { start: 4, end: 12 }]);
        assert_eq!(
            edit.kept_beats(),
            [0, 1, 2, 3, 12, 13, 14, 15, 16, 17, 18, 19]
        );
        assert_eq!(
            edit.joins(),
            vec![Join {
                before: 3,
                after: 12,
                position: 4,
                removed_beats: 8
            }]
        );
    }

    #[test]
    fn trims_at_the_ends_are_not_joins() {
        let edit = Edit::new(16, [(0, 4), (8, 10), (14, 16)]).unwrap();
        let joins = edit.joins();
        assert_eq!(joins.len(), 1);
        assert_eq!(joins[0].before, 7);
        assert_eq!(joins[0].after, 10);
        assert_eq!(joins[0].position, 4);
        assert_eq!(edit.kept_len(), 8);
    }

    #[test]
    fn refuses_overlaps_out_of_range_and_removing_everything() {
        assert!(matches!(
            Edit::new(10, [(2, 5), (4, 6)]),
            Err(EditError::Overlap { .. })
        ));
        assert!(matches!(
            Edit::new(10, [(2, 11)]),
            Err(EditError::OutOfRange { .. })
        ));
        assert!(matches!(
            Edit::new(10, [(3, 3)]),
            Err(EditError::EmptySpan { .. })
        ));
        assert!(matches!(
            Edit::new(10, [(0, 10)]),
            Err(EditError::NothingKept { beats: 10 })
        ));
    }

    #[test]
    fn edit_features_mark_the_join_and_its_distance() {
        // 16 beats in 4/4, remove bar 2 (beats 4..8): join before edited beat 4.
        let edit = Edit::new(16, [(4, 8)]).unwrap();
        let f = edit.features(4);
        assert_eq!(f.len(), 12 * 4);
        let row = |i: usize| &f[i * 4..i * 4 + 4];
        assert_eq!(row(3), &[-0.5 / 16.0, 0.0, 0.75, 1.0 / 4.0]);
        assert_eq!(row(4), &[0.5 / 16.0, 1.0, 0.75, 1.0 / 4.0]);
        assert_eq!(row(11)[0], 7.5 / 16.0);
        assert_eq!(row(0)[0], -3.5 / 16.0);
    }

    #[test]
    fn nearest_join_switches_halfway_between_two_joins() {
        let edit = Edit::new(40, [(4, 8), (20, 24)]).unwrap();
        let joins = edit.joins();
        assert_eq!(joins[1].position, 16);
        let f = edit.features(4);
        // Beat 9 is 5.5 after the first join and 6.5 before the second: the first is nearer.
        assert_eq!(f[9 * 4], 5.5 / 16.0);
        assert_eq!(f[10 * 4], -5.5 / 16.0);
        assert_eq!(f[16 * 4 + 1], 1.0);
    }

    #[test]
    fn no_join_features_say_far_from_any_join() {
        let f = Edit::identity(8).features(4);
        assert_eq!(&f[0..4], &[1.0, 0.0, 1.0, 0.0]);
    }

    #[test]
    fn windows_centre_on_joins_and_stay_inside_the_song() {
        let edit = Edit::new(400, [(100, 116), (300, 316)]).unwrap();
        let windows = edit.scoring_windows(128);
        assert_eq!(windows, vec![36..164, 220..348]);
        // A join near the end is shifted so the window keeps its full width.
        let late = Edit::new(400, [(380, 390)]).unwrap();
        assert_eq!(late.scoring_windows(128), vec![262..390]);
        // Short songs collapse to one whole-song window.
        let short = Edit::new(40, [(8, 12), (20, 24)]).unwrap();
        assert_eq!(short.scoring_windows(128), vec![0..32]);
        assert_eq!(Edit::identity(300).scoring_windows(128), vec![86..214]);
    }

    #[test]
    fn serializes_as_beats_and_span_pairs_and_validates_on_read() {
        let edit = Edit::new(16, [(4, 8)]).unwrap();
        let json = serde_json::to_string(&edit).unwrap();
        assert_eq!(json, r#"{"beats":16,"removed":[[4,8]]}"#);
        assert_eq!(serde_json::from_str::<Edit>(&json).unwrap(), edit);
        assert!(serde_json::from_str::<Edit>(r#"{"beats":4,"removed":[[2,9]]}"#).is_err());
    }
}
