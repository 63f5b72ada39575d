//! The shipped default reward model, embedded in the library so `trainer` and the plugin work
//! with no files on disk. It was trained on synthetic preference pairs judged by the editing
//! oracle (`docs/oracle.md`) with the seeded command recorded in its metadata and in
//! `reward/shipped/README.md`, which also lists its validation figures.

use std::path::{Path, PathBuf};

use crate::checkpoint::{Checkpoint, CheckpointError};

/// The checkpoint file's bytes (`reward/shipped/cutscore-default.safetensors`).
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

/// The model chosen to score with, and what was wrong on the way.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub checkpoint: Checkpoint,
    pub source: ModelSource,
    /// Why the user's model was passed over, for the caller to show (the trainer prints it as
    /// a warning, the plugin shows it in its status line).
    pub problem: Option<String>,
}

/// The one rule for which model scores, used by the trainer and the plugin alike: `given` if
/// any (an error if it does not load: it was asked for by name); else the user's model at
/// `user` if that file exists; else the shipped model. A user model that does not load is
/// passed over for the shipped one, never silently (`problem` says why) and never touched:
/// the file stays for the user to inspect, and the next `trainer finetune` keeps it as the
/// previous model.
pub fn choose(given: Option<&Path>, user: Option<&Path>) -> Result<Resolved, CheckpointError> {
    if let Some(path) = given {
        return Ok(Resolved {
            checkpoint: Checkpoint::read(path)?,
            source: ModelSource::Given(path.to_path_buf()),
            problem: None,
        });
    }
    let mut problem = None;
    if let Some(path) = user.filter(|p| p.exists()) {
        match Checkpoint::read(path) {
            Ok(checkpoint) => {
                return Ok(Resolved {
                    checkpoint,
                    source: ModelSource::User(path.to_path_buf()),
                    problem: None,
                });
            }
            Err(e) => {
                problem = Some(format!(
                    "your model {} does not load ({e}); using {MODEL_NAME}",
                    path.display()
                ))
            }
        }
    }
    Ok(Resolved {
        checkpoint: checkpoint()?,
        source: ModelSource::Shipped,
        problem,
    })
}

/// [`choose`] with the user's model where `trainer finetune` writes it.
pub fn resolve(given: Option<&Path>) -> Result<Resolved, CheckpointError> {
    choose(given, crate::user_model::user_model_path().as_deref())
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
    use crate::Config;
    use cutscore_core::features::FEATURE_SCHEMA_VERSION;

    #[test]
    fn a_broken_user_model_is_passed_over_and_said_so_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let user = dir.path().join("model.safetensors");
        std::fs::write(&user, b"half a model").unwrap();
        let chosen = choose(None, Some(&user)).unwrap();
        assert_eq!(chosen.source, ModelSource::Shipped);
        let problem = chosen.problem.unwrap();
        assert!(problem.contains("does not load"), "{problem}");
        assert_eq!(std::fs::read(&user).unwrap(), b"half a model");
        // Asked for by name, the same file is an error.
        assert!(choose(Some(&user), None).is_err());
        // No user model: the shipped one, nothing to say.
        let missing = dir.path().join("none.safetensors");
        let chosen = choose(None, Some(&missing)).unwrap();
        assert_eq!(
            (chosen.source, chosen.problem),
            (ModelSource::Shipped, None)
        );
    }

    #[test]
    fn the_shipped_model_loads_and_matches_this_build() {
        let checkpoint = checkpoint().unwrap();
        assert_eq!(checkpoint.info.feature_schema, FEATURE_SCHEMA_VERSION);
        // Same architecture and window as a new model; the dropout it was last trained at
        // (see `reward/shipped/README.md`) does not act when scoring.
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
