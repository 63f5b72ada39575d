//! Preference pairs with the tracks they refer to, loaded from a prefs folder (the user's
//! decisions or `trainer pairs` output, `docs/prefs-format.md`), split by song for validation.
//!
//! Splitting by song (track) keeps every pair of a song on one side, so validation accuracy
//! measures taste on songs the model never saw, not memory of a song's features.

use std::collections::HashMap;
use std::path::Path;

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use crate::bradley_terry::PairInput;
use cutscore_core::prefs::{
    LoadReport, Preference, PrefsContents, PrefsError, Record, TrackRecord, USER_SOURCE,
};
use cutscore_reward::scoring::Track;

/// Why a prefs folder gave no usable pairs.
#[derive(Debug, thiserror::Error)]
pub enum PairSetError {
    #[error(transparent)]
    Prefs(#[from] PrefsError),
    #[error("{path} has no decisions.jsonl or it is empty; expected decisions or comparisons")]
    Empty { path: std::path::PathBuf },
    #[error(
        "{path}: none of the {lines} lines could be used ({skipped} skipped; first: {first}); expected records whose track files are present and of this feature schema"
    )]
    NothingUsable {
        path: std::path::PathBuf,
        lines: usize,
        skipped: usize,
        first: String,
    },
    #[error(
        "{path}: {decisions} decisions but no pair can be formed: every track has only accepts or only rejects; expected at least one accepted and one rejected edit of the same track"
    )]
    NoPairs {
        path: std::path::PathBuf,
        decisions: usize,
    },
}

/// Pairs and their tracks.
#[derive(Debug, Clone, Default)]
pub struct PairSet {
    pub tracks: HashMap<String, TrackRecord>,
    pub pairs: Vec<Preference>,
    /// The user's decisions (less those undone) and Teach answers on each track.
    pub decisions: HashMap<String, usize>,
    /// What reading the folder found (skipped lines and why).
    pub report: LoadReport,
}

impl PairSet {
    /// Reads every usable pair in the prefs folder `dir`, without modifying it. Fails with a
    /// reason when the folder yields no pair at all.
    pub fn load(dir: &Path) -> Result<Self, PairSetError> {
        let contents = PrefsContents::read(dir)?;
        let path = dir.to_path_buf();
        if contents.records.is_empty() {
            if contents.report.lines == 0 || contents.report.skipped.is_empty() {
                return Err(PairSetError::Empty { path });
            }
            return Err(PairSetError::NothingUsable {
                path,
                lines: contents.report.lines,
                skipped: contents.report.skipped.len(),
                first: contents.report.skipped[0].reason.clone(),
            });
        }
        let pairs = contents.pairs();
        // What the user did per track: decisions standing (an undo withdraws one) and answers
        // to the plugin's Teach questions.
        let mut decisions: HashMap<String, usize> = HashMap::new();
        for record in &contents.records {
            let count = decisions.entry(record.track().to_owned()).or_insert(0);
            match record {
                Record::Decision(_) => *count += 1,
                Record::Undo(_) => *count = count.saturating_sub(1),
                Record::Comparison(c) if c.source.as_deref() == Some(USER_SOURCE) => *count += 1,
                Record::Comparison(_) => {}
            }
        }
        decisions.retain(|_, n| *n > 0);
        if pairs.is_empty() {
            return Err(PairSetError::NoPairs {
                path,
                decisions: contents.report.decisions,
            });
        }
        Ok(Self {
            tracks: contents.tracks,
            pairs,
            decisions,
            report: contents.report,
        })
    }

    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// Distinct tracks that have pairs, in first-seen order.
    pub fn track_ids(&self) -> Vec<String> {
        let mut seen = std::collections::HashSet::new();
        self.pairs
            .iter()
            .filter(|p| seen.insert(p.track.as_str()))
            .map(|p| p.track.clone())
            .collect()
    }

    /// Splits by track: about `fraction` of the tracks (at least one when there are two or
    /// more) go to the second set, chosen by `seed`. Returns (train, validation).
    pub fn split_by_track(&self, fraction: f64, seed: u64) -> (Self, Self) {
        let mut ids = self.track_ids();
        ids.sort();
        ids.shuffle(&mut StdRng::seed_from_u64(seed));
        let held = if ids.len() < 2 {
            0
        } else {
            ((ids.len() as f64 * fraction).round() as usize).clamp(1, ids.len() - 1)
        };
        let held: std::collections::HashSet<&String> = ids[..held].iter().collect();
        self.partition(|_, p| held.contains(&p.track))
    }

    fn partition(&self, second: impl Fn(usize, &Preference) -> bool) -> (Self, Self) {
        let mut a = Self::default();
        let mut b = Self::default();
        for (i, pair) in self.pairs.iter().enumerate() {
            let side = if second(i, pair) { &mut b } else { &mut a };
            side.tracks
                .entry(pair.track.clone())
                .or_insert_with(|| self.tracks[&pair.track].clone());
            side.pairs.push(pair.clone());
            if let Some(&n) = self.decisions.get(&pair.track) {
                side.decisions.insert(pair.track.clone(), n);
            }
        }
        (a, b)
    }

    /// The pairs as model inputs.
    pub fn inputs(&self) -> Vec<PairInput<'_>> {
        self.pairs.iter().map(|p| self.input(p)).collect()
    }

    /// One pair as a model input.
    pub fn input<'a>(&'a self, pair: &'a Preference) -> PairInput<'a> {
        let track = &self.tracks[&pair.track];
        PairInput {
            track: Track {
                features: &track.features,
                meter: track.grid.meter,
            },
            chosen: &pair.chosen,
            rejected: &pair.rejected,
            confidence: pair.confidence,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic_pairs::{PairOptions, generate};

    #[test]
    fn a_split_by_track_never_shares_a_song() {
        let dir = tempfile::tempdir().unwrap();
        let options = PairOptions {
            count: 28,
            pairs_per_song: 4,
            seed: 2,
            ..PairOptions::default()
        };
        generate(dir.path(), &options, |_| {}).unwrap();
        let set = PairSet::load(dir.path()).unwrap();
        assert_eq!(set.len(), 28);
        assert_eq!(set.track_ids().len(), 7);
        let (train, val) = set.split_by_track(0.15, 0);
        assert_eq!(val.track_ids().len(), 1);
        assert_eq!(train.len() + val.len(), 28);
        assert!(
            train
                .track_ids()
                .iter()
                .all(|t| !val.tracks.contains_key(t))
        );
        assert_eq!(train.inputs().len(), train.len());
        let (again, _) = set.split_by_track(0.15, 0);
        assert_eq!(again.pairs, train.pairs);
    }

    #[test]
    fn an_empty_or_missing_folder_is_refused_with_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            PairSet::load(dir.path()),
            Err(PairSetError::Empty { .. })
        ));
        assert!(matches!(
            PairSet::load(&dir.path().join("missing")),
            Err(PairSetError::Prefs(PrefsError::NotAFolder { .. }))
        ));
    }
}
