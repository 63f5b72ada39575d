//! One module per `trainer` subcommand.

pub mod analyze;
pub mod beats;
pub mod bench;
pub mod demo;
pub mod edit;
pub mod eval;
pub mod finetune;
pub mod info;
pub mod pairs;
pub mod score;
mod shared;
pub mod synth;
pub mod taste_eval;
pub mod train;
