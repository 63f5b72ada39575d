//! One module per `trainer` subcommand.

pub mod analyze;
pub mod bench;
pub mod eval;
pub mod finetune;
pub mod info;
pub mod pairs;
pub mod synth;
pub mod train;
