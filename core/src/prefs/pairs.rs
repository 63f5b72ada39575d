//! The rule that turns logged records into preference pairs (chosen ≻ rejected, same track).
//!
//! - A comparison is one pair: the preferred side is chosen, with the record's confidence
//!   (clamped to [0.5, 1]).
//! - Decisions are grouped by track; for each distinct edit only its latest verdict counts (the
//!   user may change their mind). Every accepted edit is preferred to every rejected edit of the
//!   same track, with confidence 1, pairing each accepted edit with at most
//!   [`MAX_REJECTS_PER_ACCEPT`] of the most recent rejects so one track cannot dominate.
//! - An undo withdraws the latest verdict on its edit; the one before it, if any, counts again.
//! - Accepts or rejects alone form no pair: there is nothing to compare them with.

use std::collections::HashMap;

use super::record::{Record, Side, Verdict};
use crate::edit::Edit;

/// Most rejected edits each accepted edit is paired with.
pub const MAX_REJECTS_PER_ACCEPT: usize = 32;

/// Where a pair came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairSource {
    /// The user's accept/reject decisions.
    User,
    /// A comparison record (synthetic oracle or another tool).
    Comparison,
}

/// One preference pair.
#[derive(Debug, Clone, PartialEq)]
pub struct Preference {
    pub track: String,
    pub chosen: Edit,
    pub rejected: Edit,
    pub confidence: f32,
    pub source: PairSource,
}

/// The verdicts on one edit that no undo has withdrawn, with their places in the log.
type Standing = Vec<(usize, Verdict)>;

/// Applies the rule above to records in log order.
pub fn pairs_from_records(records: &[Record]) -> Vec<Preference> {
    let mut pairs = Vec::new();
    // track -> edit -> the verdicts standing, in order (an undo withdraws the last)
    let mut latest: HashMap<&str, HashMap<&Edit, Standing>> = HashMap::new();
    let mut track_order: Vec<&str> = Vec::new();
    for (order, record) in records.iter().enumerate() {
        match record {
            Record::Comparison(c) => {
                let (chosen, rejected) = match c.preferred {
                    Side::A => (&c.a, &c.b),
                    Side::B => (&c.b, &c.a),
                };
                pairs.push(Preference {
                    track: c.track.clone(),
                    chosen: chosen.clone(),
                    rejected: rejected.clone(),
                    confidence: c.confidence.clamp(0.5, 1.0),
                    source: PairSource::Comparison,
                });
            }
            Record::Decision(d) => {
                let edits = latest.entry(&d.track).or_insert_with(|| {
                    track_order.push(&d.track);
                    HashMap::new()
                });
                edits.entry(&d.edit).or_default().push((order, d.verdict));
            }
            Record::Undo(u) => {
                if let Some(stack) = latest
                    .get_mut(u.track.as_str())
                    .and_then(|edits| edits.get_mut(&u.edit))
                {
                    stack.pop();
                }
            }
        }
    }
    for track in track_order {
        let mut accepted = Vec::new();
        let mut rejected = Vec::new();
        for (edit, stack) in &latest[track] {
            let Some((order, verdict)) = stack.last() else {
                continue;
            };
            match verdict {
                Verdict::Accept => accepted.push((*order, *edit)),
                Verdict::Reject => rejected.push((*order, *edit)),
            }
        }
        accepted.sort_by_key(|(order, _)| *order);
        rejected.sort_by_key(|(order, _)| std::cmp::Reverse(*order));
        for (_, chosen) in &accepted {
            for (_, worse) in rejected.iter().take(MAX_REJECTS_PER_ACCEPT) {
                pairs.push(Preference {
                    track: track.to_string(),
                    chosen: (*chosen).clone(),
                    rejected: (*worse).clone(),
                    confidence: 1.0,
                    source: PairSource::User,
                });
            }
        }
    }
    pairs
}
