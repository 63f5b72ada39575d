//! What `score` and `edit` share: the `--model`/`--device` arguments and analysing a song
//! that must have bars to cut.

use std::path::{Path, PathBuf};

use anyhow::Context;
use cutscore_model::analysis::{TrackAnalysis, analyze_file};
use cutscore_model::checkpoint::{Checkpoint, CheckpointInfo};
use cutscore_model::device::{self, DeviceChoice};
use cutscore_model::reward::RewardModel;

#[derive(Debug, Clone, clap::Args)]
pub struct ModelArgs {
    /// Reward model checkpoint (.safetensors) to score with.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Where to run the model: auto (CUDA if available), cpu or cuda.
    #[arg(long, default_value = "auto")]
    device: DeviceChoice,
}

impl ModelArgs {
    /// Loads and checks the model on the chosen device.
    pub fn load(&self) -> anyhow::Result<(RewardModel, CheckpointInfo)> {
        let path = self.model.as_ref().context(
            "no reward model given: pass --model PATH (a .safetensors checkpoint made by `trainer train` or `trainer finetune`)",
        )?;
        let checkpoint =
            Checkpoint::read(path).with_context(|| format!("loading {}", path.display()))?;
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
