//! `cutscore-core`: the types every part of Cutscore shares, with no machine learning in them.
//!
//! - [`grid`]: beat grids (beats, bars, meter).
//! - [`features`]: the 125-input per-beat schema shared by analysis, training and scoring.
//! - [`edit`]: edits as removed beat spans, their joins, edit-aware features, scoring windows.
//! - [`taste`]: the summary of an edit a user's taste layer reads, and the layer.
//! - [`question`]: which "which is better?" question teaches a taste most (Teach).
//! - [`prefs`]: the decision log the plugin writes and the trainer reads.
//! - [`audio`]: interleaved audio and WAV output.
//! - [`atomic`]: crash-safe file writes for user data.

pub mod atomic;
pub mod audio;
pub mod edit;
pub mod features;
pub mod grid;
pub mod prefs;
pub mod question;
pub mod taste;
