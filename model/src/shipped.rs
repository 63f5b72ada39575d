//! The shipped default reward model, embedded in the library so `trainer` and the plugin work
//! with no files on disk. It was trained on synthetic preference pairs judged by the editing
//! oracle (`docs/oracle.md`) with the seeded command recorded in its metadata and in
//! `model/shipped/README.md`, which also lists its validation figures.

use std::path::{Path, PathBuf};

use crate::checkpoint::{Checkpoint, CheckpointError};

/// The checkpoint file's bytes (`model/shipped/cutscore-default.safetensors`).
pub const MODEL_BYTES: &[u8] = include_bytes!("../shipped/cutscore-default.safetensors");

/// What the shipped model is called where a path would be shown.
pub const MODEL_NAME: &str = "the shipped default model";

/// Parses the embedded checkpoint.
pub fn checkpoint() -> Result<Checkpoint, CheckpointError> {
    Checkpoint::from_bytes(MODEL_BYTES)
}

/// Where a checkpoint in use came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSource {
    /// A file named on the command line.
    Given(PathBuf),
    /// The user's fine-tuned model (`crate::user_model::user_model_path`).
    User(PathBuf),
    /// The embedded default.
    Shipped,
}

impl std::fmt::Display for ModelSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Given(path) => write!(f, "{}", path.display()),
            Self::User(path) => write!(f, "your model ({})", path.display()),
            Self::Shipped => f.write_str(MODEL_NAME),
        }
    }
}

/// The model to use: `given` if any; else the user's model if the trainer has written one;
/// else the shipped model. A user model that does not load is an error (it is never silently
/// skipped: the user asked for their taste).
pub fn resolve(given: Option<&Path>) -> Result<(Checkpoint, ModelSource), CheckpointError> {
    if let Some(path) = given {
        return Ok((
            Checkpoint::read(path)?,
            ModelSource::Given(path.to_path_buf()),
        ));
    }
    if let Some(path) = crate::user_model::user_model_path().filter(|p| p.exists()) {
        return Ok((Checkpoint::read(&path)?, ModelSource::User(path)));
    }
    Ok((checkpoint()?, ModelSource::Shipped))
}

/// `given` if any, else the shipped model (for evaluation, which should not depend on who runs
/// it).
pub fn given_or_shipped(
    given: Option<&Path>,
) -> Result<(Checkpoint, ModelSource), CheckpointError> {
    match given {
        Some(path) => Ok((
            Checkpoint::read(path)?,
            ModelSource::Given(path.to_path_buf()),
        )),
        None => Ok((checkpoint()?, ModelSource::Shipped)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::FEATURE_SCHEMA_VERSION;
    use crate::reward::Config;

    #[test]
    fn the_shipped_model_loads_and_matches_this_build() {
        let checkpoint = checkpoint().unwrap();
        assert_eq!(checkpoint.info.feature_schema, FEATURE_SCHEMA_VERSION);
        // Same architecture and window as a new model; the dropout it was last trained at
        // (see `model/shipped/README.md`) does not act when scoring.
        let trained = &checkpoint.info.config;
        let architecture = Config {
            dropout: Config::default().dropout,
            ..trained.clone()
        };
        assert_eq!(architecture, Config::default());
        let model = checkpoint.model(&candle_core::Device::Cpu).unwrap();
        assert_eq!(model.config().max_len, Config::default().max_len);
    }
}
