//! One module per `trainer` subcommand.

pub mod analyze;
pub mod bench;
pub mod edit;
pub mod info;
mod model_arg;
pub mod score;
pub mod synth;
