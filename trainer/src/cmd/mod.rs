//! One module per `trainer` subcommand.

pub mod analyze;
pub mod info;
pub mod synth;
