//! `trainer info`: what a model is, what it was trained on, and where it would run.

use std::path::PathBuf;

use cutscore_core::features::{BEAT_FEATURES, EDIT_FEATURES};
use cutscore_core::taste::FloorFrom;
use cutscore_reward::checkpoint::tensor_shapes;
use cutscore_reward::device::{self, DeviceChoice};

use super::shared::resolve_model;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A model checkpoint (.safetensors) [default: your fine-tuned model if `trainer finetune`
    /// has written one, else the shipped model].
    model: Option<PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let (checkpoint, source) = resolve_model(args.model.as_deref())?;
    let (info, taste, source) = (checkpoint.info, checkpoint.taste, source.to_string());
    let shapes = tensor_shapes(&info.config)?;
    let parameters: usize = shapes.values().map(|s| s.iter().product::<usize>()).sum();
    let selected = device::select(DeviceChoice::Auto)?;
    if args.json {
        let mut metrics = serde_json::to_value(&info.metrics)?;
        metrics["best_val_accuracy"] = serde_json::json!(info.metrics.best_val_accuracy);
        println!(
            "{}",
            serde_json::json!({
                "model": source,
                "model_id": info.model_id,
                "parameters": parameters,
                "tensors": shapes.len(),
                "config": info.config,
                "feature_schema": {
                    "version": info.feature_schema,
                    "beat_features": BEAT_FEATURES,
                    "edit_features": EDIT_FEATURES,
                },
                "device": { "name": selected.name, "reason": selected.reason },
                "metrics": metrics,
                "provenance": info.provenance,
                "taste": taste.as_ref().map(|t| serde_json::json!({
                    "schema": t.schema(),
                    "weights": t.weights(),
                    "bound": t.bound(),
                    "floor": t.floor(),
                    "floor_from": t.floor().map(|_| match t.floor_from() {
                        FloorFrom::Score => "score",
                        FloorFrom::Track => "track reference",
                    }),
                    "range": t.range().map(|r| serde_json::json!({
                        "low": r.low(),
                        "high": r.high(),
                    })),
                })),
            })
        );
        return Ok(());
    }
    let c = &info.config;
    println!("model       {source}");
    println!("model id    {}", info.model_id);
    println!("parameters  {parameters} in {} tensors", shapes.len());
    println!(
        "layout      {} inputs -> d {} x {} layers x {} heads, ff {}, head {}, up to {} beats",
        c.inputs, c.d_model, c.layers, c.heads, c.ff, c.head_hidden, c.max_len
    );
    println!("window      {} beats around each join", c.window);
    println!(
        "features    schema v{} ({BEAT_FEATURES} beat + {EDIT_FEATURES} edit-aware per beat)",
        info.feature_schema
    );
    println!("device      {} ({})", selected.name, selected.reason);
    match (info.metrics.best_val_accuracy, info.metrics.best_epoch) {
        (Some(acc), epoch) => println!(
            "trained     best validation accuracy {:.1} % (epoch {}), {} epochs, {} pairs",
            acc * 100.0,
            epoch.map_or("?".into(), |e| e.to_string()),
            info.metrics.epochs.len(),
            info.provenance.pairs
        ),
        (None, _) => println!("trained     no training metrics recorded"),
    }
    if let Some(reason) = &info.metrics.stop_reason {
        println!("stopped     {reason}");
    }
    if let Some(t) = &taste {
        let used = t.weights().iter().filter(|w| **w != 0.0).count();
        let fade = match (t.floor(), t.floor_from()) {
            (None, _) => "on every edit".to_string(),
            (Some(f), FloorFrom::Score) => format!("fading out below score {f:.2}"),
            (Some(f), FloorFrom::Track) => {
                format!("fading out below the track's reference score {f:+.2}")
            }
        };
        let range = if t.range().is_some() {
            ", each read within the span of the edits it learned from"
        } else {
            ""
        };
        println!(
            "taste       {used} of {} summary inputs weighted (taste schema {}), within ±{}, {fade}{range}",
            t.weights().len(),
            t.schema(),
            t.bound()
        );
    }
    Ok(())
}
