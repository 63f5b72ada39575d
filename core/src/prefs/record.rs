//! The records of the decision log and the per-track analysis file (`docs/prefs-format.md`).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::edit::Edit;
use crate::features::{FEATURE_SCHEMA_VERSION, FeatureMatrix};
use crate::grid::BeatGrid;

/// Version written in every record's `v` field.
pub const RECORD_VERSION: u32 = 1;

/// What the user did with a proposed edit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Accept,
    Reject,
}

/// One accept or reject in the plugin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    #[serde(default = "version")]
    pub v: u32,
    /// RFC 3339 UTC time of the decision.
    pub time: String,
    /// Track id (see [`track_id`]); names `tracks/<track>.json`.
    pub track: String,
    pub edit: Edit,
    pub verdict: Verdict,
    /// Score the model showed for this edit.
    #[serde(default)]
    pub score: Option<f32>,
    /// `model_id` of the checkpoint that scored it.
    #[serde(default)]
    pub model: Option<String>,
    /// The other candidates on screen at the time.
    #[serde(default)]
    pub shown: Vec<Edit>,
}

/// The `source` of a comparison the user answered (the plugin's Teach question).
pub const USER_SOURCE: &str = "user";

/// Which side of a comparison was preferred.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    A,
    B,
}

/// A direct comparison of two edits of one track (written by `trainer pairs`, or any tool).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    #[serde(default = "version")]
    pub v: u32,
    pub time: String,
    pub track: String,
    pub a: Edit,
    pub b: Edit,
    pub preferred: Side,
    /// Probability that the preference is right, in [0.5, 1]; 1 when absent.
    #[serde(default = "certain")]
    pub confidence: f32,
    /// Who made it, e.g. "synthetic-oracle" or "user".
    #[serde(default)]
    pub source: Option<String>,
}

/// Withdraws the latest decision on `edit` of `track`, as the editor's Undo does after a
/// mis-click. The log stays append-only; the pair rule treats the edit as if that decision had
/// not been made (an earlier decision on the same edit, if any, stands again).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Undo {
    #[serde(default = "version")]
    pub v: u32,
    pub time: String,
    pub track: String,
    pub edit: Edit,
}

fn version() -> u32 {
    RECORD_VERSION
}

fn certain() -> f32 {
    1.0
}

/// One line of `decisions.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Record {
    Decision(Decision),
    Comparison(Comparison),
    Undo(Undo),
}

impl Record {
    /// Parses one line. `Ok(None)` for a well-formed record of a kind this version does not
    /// know; unknown fields are ignored.
    pub fn parse(line: &str) -> Result<Option<Self>, serde_json::Error> {
        let value: serde_json::Value = serde_json::from_str(line)?;
        let kind = value
            .get("kind")
            .and_then(|k| k.as_str())
            .map(str::to_owned);
        match kind.as_deref() {
            Some("decision") => Ok(Some(Self::Decision(serde_json::from_value(value)?))),
            Some("comparison") => Ok(Some(Self::Comparison(serde_json::from_value(value)?))),
            Some("undo") => Ok(Some(Self::Undo(serde_json::from_value(value)?))),
            Some(_) => Ok(None),
            None => Err(serde::de::Error::missing_field("kind")),
        }
    }

    pub fn track(&self) -> &str {
        match self {
            Self::Decision(d) => &d.track,
            Self::Comparison(c) => &c.track,
            Self::Undo(u) => &u.track,
        }
    }

    /// The record with every edit over `beats` source beats, the beats after each edit's own
    /// length kept (see [`Edit::extended_to`]).
    pub fn extended_to(self, beats: usize) -> Result<Self, crate::edit::EditError> {
        Ok(match self {
            Self::Decision(mut d) => {
                d.edit = d.edit.extended_to(beats)?;
                d.shown = d
                    .shown
                    .into_iter()
                    .map(|e| e.extended_to(beats))
                    .collect::<Result<_, _>>()?;
                Self::Decision(d)
            }
            Self::Comparison(mut c) => {
                c.a = c.a.extended_to(beats)?;
                c.b = c.b.extended_to(beats)?;
                Self::Comparison(c)
            }
            Self::Undo(mut u) => {
                u.edit = u.edit.extended_to(beats)?;
                Self::Undo(u)
            }
        })
    }

    /// The edits the record names.
    pub fn edits(&self) -> Vec<&Edit> {
        match self {
            Self::Decision(d) => std::iter::once(&d.edit).chain(&d.shown).collect(),
            Self::Comparison(c) => vec![&c.a, &c.b],
            Self::Undo(u) => vec![&u.edit],
        }
    }

    /// The current time in the records' format.
    pub fn now() -> String {
        humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
    }
}

/// The analysis of one track, stored once as `tracks/<track>.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackRecord {
    #[serde(default = "version")]
    pub v: u32,
    pub track: String,
    /// Must equal this build's [`FEATURE_SCHEMA_VERSION`] to be used.
    pub feature_schema: u32,
    /// Where the audio came from (a file name, a DAW track name), for people reading the log.
    #[serde(default)]
    pub source: Option<String>,
    pub grid: BeatGrid,
    pub features: FeatureMatrix,
}

impl TrackRecord {
    pub fn new(
        track: String,
        source: Option<String>,
        grid: BeatGrid,
        features: FeatureMatrix,
    ) -> Self {
        Self {
            v: RECORD_VERSION,
            track,
            feature_schema: FEATURE_SCHEMA_VERSION,
            source,
            grid,
            features,
        }
    }

    /// Whether this analysis begins with `shorter`'s beats (the same audio, heard longer).
    pub fn extends(&self, shorter: &TrackRecord) -> bool {
        let n = shorter.grid.len();
        n <= self.grid.len()
            && self.grid.beats[..n]
                .iter()
                .zip(&shorter.grid.beats)
                .all(|(a, b)| (a - b).abs() < 1e-9)
            && (0..n).all(|beat| self.features.row(beat) == shorter.features.row(beat))
    }

    /// Checks the grid, the features, and that they describe the same beats.
    pub fn validate(&self) -> Result<(), String> {
        self.grid.validate().map_err(|e| e.to_string())?;
        self.features.validate().map_err(|e| e.to_string())?;
        if self.features.beats() != self.grid.len() {
            return Err(format!(
                "{} feature rows for {} beats",
                self.features.beats(),
                self.grid.len()
            ));
        }
        Ok(())
    }
}

/// A track's id: the first 16 hex digits of SHA-256 over the sample rate (u32 LE) and the
/// audio as f32 LE samples, as the writer captured it. Readers treat it as an opaque key.
pub fn track_id(samples: &[f32], sample_rate: u32) -> String {
    track_id_of_parts([samples], sample_rate)
}

/// [`track_id`] of the samples of `parts` in order, as if they were one slice (for audio kept
/// in chunks).
pub fn track_id_of_parts<'a>(
    parts: impl IntoIterator<Item = &'a [f32]>,
    sample_rate: u32,
) -> String {
    let mut hash = Sha256::new();
    hash.update(sample_rate.to_le_bytes());
    // Bytes are hashed in blocks: one `update` per sample costs more than the hashing.
    let mut bytes = Vec::with_capacity(4 * 4096);
    for part in parts {
        for block in part.chunks(4096) {
            bytes.clear();
            bytes.extend(block.iter().flat_map(|s| s.to_le_bytes()));
            hash.update(&bytes);
        }
    }
    hash.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
