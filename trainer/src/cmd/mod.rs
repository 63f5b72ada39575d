//! One module per `trainer` subcommand.

pub mod analyze;
pub mod bench;
pub mod info;
pub mod synth;
