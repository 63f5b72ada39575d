//! The editing engine: turning beat grids and reward scores into edits a person can hear.
//!
//! - [`candidates`]: bar-aligned candidate cuts, ranked by the reward model.
//! - [`render`]: kept audio with equal-power crossfades at the joins.

pub mod candidates;
pub mod render;
