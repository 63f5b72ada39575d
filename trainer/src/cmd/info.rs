//! `trainer info`: what a model is and where it would run.

use cutscore_model::features::{BEAT_FEATURES, EDIT_FEATURES, FEATURE_SCHEMA_VERSION};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let schema = serde_json::json!({
        "version": FEATURE_SCHEMA_VERSION,
        "beat_features": BEAT_FEATURES,
        "edit_features": EDIT_FEATURES,
    });
    if args.json {
        println!("{}", serde_json::json!({ "feature_schema": schema }));
    } else {
        println!(
            "feature schema v{FEATURE_SCHEMA_VERSION}: {BEAT_FEATURES} beat + {EDIT_FEATURES} edit features"
        );
    }
    Ok(())
}
