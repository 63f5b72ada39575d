//! `cutscore-model`: everything Cutscore knows about music and taste, with no plugin code.
//!
//! - [`grid`]: beat grids (beats, bars, meter).
//! - [`features`]: the 125-input per-beat schema shared by analysis, training and scoring.
//! - [`edit`]: edits as removed beat spans, their joins, edit-aware features, scoring windows.
//! - [`synth`]: deterministic synthetic songs with exact ground truth (beats, bars, sections).

pub mod analysis;
pub mod edit;
pub mod features;
pub mod grid;
pub mod synth;
