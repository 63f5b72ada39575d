//! One module per `trainer` subcommand.

pub mod bench;
pub mod info;
