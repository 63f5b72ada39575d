//! `cutscore-editing`: the editing engine, which turns beat grids and reward scores into edits
//! a person can hear.
//!
//! - [`candidates`]: bar-aligned candidate cuts, ranked by the reward model.
//! - `bars`: where whole-bar cuts may lie, shared by the candidates and the fit.
//! - [`fit`]: reward-guided fit to a target length, with variations.
//! - [`render`]: kept audio with a crossfade at each join.
//! - [`crossfade`]: the join's crossfade law, chosen from the correlation of its two sides.
//! - [`markers`]: Audacity labels, REAPER marker CSV and edit-list JSON.

mod bars;
pub mod candidates;
pub mod crossfade;
pub mod fit;
pub mod markers;
pub mod render;
