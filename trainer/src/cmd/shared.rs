//! What `score` and `edit` share: the `--model`/`--device` arguments and analysing a song
//! that must have bars to cut.

use std::path::{Path, PathBuf};

use anyhow::Context;
use cutscore_model::analysis::{TrackAnalysis, analyze_file};
use cutscore_model::checkpoint::CheckpointInfo;
use cutscore_model::device::{self, DeviceChoice};
use cutscore_model::reward::RewardModel;
use cutscore_model::shipped;

#[derive(Debug, Clone, clap::Args)]
pub struct ModelArgs {
    /// Reward model checkpoint (.safetensors) to score with [default: your fine-tuned model if
    /// `trainer finetune` has written one, else the shipped model].
    #[arg(long)]
    model: Option<PathBuf>,
    /// Where to run the model: auto (CUDA if available), cpu or cuda.
    #[arg(long, default_value = "auto")]
    device: DeviceChoice,
}

impl ModelArgs {
    /// Loads and checks the model on the chosen device.
    pub fn load(&self) -> anyhow::Result<(RewardModel, CheckpointInfo)> {
        let (checkpoint, source) =
            shipped::resolve(self.model.as_deref()).with_context(|| match &self.model {
                Some(path) => format!("loading {}", path.display()),
                None => "loading the default model".into(),
            })?;
        log::info!("scoring with {source}");
        let selected = device::select(self.device)?;
        let model = checkpoint.model(&selected.device)?;
        Ok((model, checkpoint.info))
    }
}

/// Analyses `audio`, refusing songs without at least two bars.
pub fn analyze_bars(audio: &Path) -> anyhow::Result<TrackAnalysis> {
    let analysis = analyze_file(audio).with_context(|| format!("analysing {}", audio.display()))?;
    anyhow::ensure!(
        analysis.grid.bar_starts().len() >= 2,
        "{} has no bars to cut (found {} beats); is it music with a pulse?",
        audio.display(),
        analysis.grid.len()
    );
    Ok(analysis)
}
