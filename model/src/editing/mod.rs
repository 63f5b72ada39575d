//! The editing engine: turning beat grids and reward scores into edits a person can hear.
//!
//! - [`render`]: kept audio with equal-power crossfades at the joins.

pub mod render;
