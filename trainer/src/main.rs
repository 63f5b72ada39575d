//! `trainer`: Cutscore's command line. Each subcommand is a thin layer over the Cutscore libraries
//! and lives in its own module under `cmd/`; this file only parses arguments and reports errors.

mod cmd;
mod curves;
mod gm_songs;
mod learning_curve;

use clap::{Parser, Subcommand};

// Candle allocates a fresh buffer for every tensor op; the system allocator hands large ones
// back to the OS each time, so every op paid page faults and zeroing. mimalloc keeps them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc's option enum (`mimalloc.h`, the same in v2 and v3).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Keeps freed pages instead of handing them back to the OS 10 ms later, as mimalloc does by
/// default: a training step frees and reallocates the same few hundred megabytes every step,
/// and each page handed back came back as a fault and a zeroed page (100,000 faults in a
/// `trainer bench` run before, 2,000 after). The trainer's memory stays at its peak instead.
fn keep_freed_pages() {
    // SAFETY: setting an option is allowed at any time and takes plain integers.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) }
}

/// Cutscore's trainer: inspect, benchmark, train and use the reward model.
#[derive(Debug, Parser)]
#[command(name = "trainer", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The whole pipeline in one go: synthesise (or read) a song, analyse it, list the best
    /// cuts, fit it to 75 % and write the edited WAV and markers here.
    Demo(cmd::demo::Args),
    /// Train the beat and downbeat network, or score the beat tracker on songs with known beats.
    Beats(cmd::beats::Args),
    /// Describe a reward model: config, parameter count, feature schema, metrics, device.
    Info(cmd::info::Args),
    /// Time inference and a training step of the reward model at a chosen shape.
    Bench(cmd::bench::Args),
    /// Render a synthetic song with exact beat/bar truth (or the whole evaluation set).
    Synth(cmd::synth::Args),
    /// Find tempo, meter, beats and downbeats of an audio file; optionally write its 121 beat features.
    Analyze(cmd::analyze::Args),
    /// List the best candidate cuts of a song, ranked by the reward model.
    Score(cmd::score::Args),
    /// Fit a song to a target length and write the edited audio and markers.
    Edit(cmd::edit::Args),
    /// Generate synthetic preference pairs judged by the editing oracle (a prefs folder).
    Pairs(cmd::pairs::Args),
    /// Train a reward model on preference pairs, with early stopping and curves.
    Train(cmd::train::Args),
    /// Fine-tune a model on your own decisions and install it as your model.
    Finetune(cmd::finetune::Args),
    /// Measure how fine-tuning learns simulated users' tastes: agreement on songs they never
    /// decided on, skill kept, time.
    TasteEval(cmd::taste_eval::Args),
    /// Measure a model on preference pairs: accuracy, loss, calibration, rewards.
    Eval(cmd::eval::Args),
}

fn main() {
    keep_freed_pages();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format_timestamp(None)
        .init();
    if let Err(error) = run(Cli::parse()) {
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Demo(args) => cmd::demo::run(args),
        Command::Beats(args) => cmd::beats::run(args),
        Command::Info(args) => cmd::info::run(args),
        Command::Bench(args) => cmd::bench::run(args),
        Command::Synth(args) => cmd::synth::run(args),
        Command::Analyze(args) => cmd::analyze::run(args),
        Command::Score(args) => cmd::score::run(args),
        Command::Edit(args) => cmd::edit::run(args),
        Command::Pairs(args) => cmd::pairs::run(args),
        Command::Train(args) => cmd::train::run(args),
        Command::Finetune(args) => cmd::finetune::run(args),
        Command::Eval(args) => cmd::eval::run(args),
        Command::TasteEval(args) => cmd::taste_eval::run(args),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
