//! One module per `trainer` subcommand.

pub mod info;
pub mod synth;
