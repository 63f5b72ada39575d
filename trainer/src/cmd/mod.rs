//! One module per `trainer` subcommand.

pub mod analyze;
pub mod bench;
pub mod edit;
pub mod info;
pub mod score;
mod shared;
pub mod synth;
