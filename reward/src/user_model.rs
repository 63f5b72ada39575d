//! Where the user's own reward model lives: the file `trainer finetune` writes and the plugin
//! loads in place of the shipped default. The folder is the platform's per-user data folder
//! (via the `dirs` crate): `$XDG_DATA_HOME/cutscore` (else `~/.local/share/cutscore`) on
//! Linux, `~/Library/Application Support/Cutscore` on macOS, `%APPDATA%\Cutscore` on Windows.
//! `trainer finetune` keeps the model it replaces beside it; [`revert`] and
//! [`reset_to_shipped`] (the editor's "Revert to previous model" and "Reset to the shipped
//! model") switch between them by renames: a revert loses nothing, and a reset keeps the
//! user's model as the previous one (in place of the older backup) so a revert brings it back.

use std::io;
use std::path::{Path, PathBuf};

use cutscore_core::atomic::sync_dir;

/// File name of the user's model.
pub const MODEL_FILE: &str = "model.safetensors";
/// File name of the model it replaced, kept as a backup.
pub const PREVIOUS_MODEL_FILE: &str = "model.prev.safetensors";
/// File name the current model has for a moment while [`revert`] swaps it with the previous.
pub const SWAP_FILE: &str = "model.swap.safetensors";

/// Why the user's models could not be switched. Nothing is lost either way: every step is a
/// rename within the folder.
#[derive(Debug, thiserror::Error)]
pub enum UserModelError {
    #[error("there is no previous model to go back to ({0} does not exist)")]
    NoPrevious(PathBuf),
    #[error(
        "there is no model of yours to put aside ({0} does not exist): the shipped model is in use"
    )]
    NoUserModel(PathBuf),
    #[error("cannot move {from} to {to}: {source}")]
    Move {
        from: PathBuf,
        to: PathBuf,
        source: io::Error,
    },
    #[error("moved, but cannot flush {folder} to disk: {source}")]
    Sync { folder: PathBuf, source: io::Error },
}

/// The user's model path, or `None` where the platform has no per-user data folder (no home).
pub fn user_model_path() -> Option<PathBuf> {
    let folder = if cfg!(any(target_os = "macos", target_os = "windows")) {
        "Cutscore"
    } else {
        "cutscore"
    };
    dirs::data_dir().map(|d| d.join(folder).join(MODEL_FILE))
}

/// The backup path beside `model`: `model.prev.safetensors` in the same folder.
pub fn backup_path(model: &Path) -> PathBuf {
    model.with_file_name(PREVIOUS_MODEL_FILE)
}

/// Goes back to the model `model` replaced: the two swap places, so a second revert undoes the
/// first. With no current model (after [`reset_to_shipped`]) the previous one comes back.
pub fn revert(model: &Path) -> Result<(), UserModelError> {
    finish_interrupted_swap(model)?;
    let previous = backup_path(model);
    if !previous.exists() {
        return Err(UserModelError::NoPrevious(previous));
    }
    if model.exists() {
        let swap = model.with_file_name(SWAP_FILE);
        rename(model, &swap)?;
        rename(&previous, model)?;
        rename(&swap, &previous)?;
    } else {
        rename(&previous, model)?;
    }
    synced(model)
}

/// Puts the user's model aside as the previous model (replacing the older backup), so the
/// shipped model scores again and [`revert`] brings the user's back.
pub fn reset_to_shipped(model: &Path) -> Result<(), UserModelError> {
    finish_interrupted_swap(model)?;
    if !model.exists() {
        return Err(UserModelError::NoUserModel(model.to_owned()));
    }
    rename(model, &backup_path(model))?;
    synced(model)
}

/// Completes a [`revert`] that stopped between its renames (a crash or a full disk): the file
/// in the swap place is the model that was current, and it goes where the swap would have put it.
fn finish_interrupted_swap(model: &Path) -> Result<(), UserModelError> {
    let swap = model.with_file_name(SWAP_FILE);
    if !swap.exists() {
        return Ok(());
    }
    if model.exists() {
        rename(&swap, &backup_path(model))
    } else {
        rename(&swap, model)
    }
}

fn rename(from: &Path, to: &Path) -> Result<(), UserModelError> {
    std::fs::rename(from, to).map_err(|source| UserModelError::Move {
        from: from.to_owned(),
        to: to.to_owned(),
        source,
    })
}

fn synced(model: &Path) -> Result<(), UserModelError> {
    let folder = model.parent();
    sync_dir(folder).map_err(|source| UserModelError::Sync {
        folder: folder.unwrap_or(Path::new(".")).to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revert_swaps_the_two_models_and_reset_puts_the_users_aside() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join(MODEL_FILE);
        let previous = backup_path(&model);
        let read = |p: &Path| std::fs::read(p).ok();
        assert!(matches!(revert(&model), Err(UserModelError::NoPrevious(_))));
        assert!(matches!(
            reset_to_shipped(&model),
            Err(UserModelError::NoUserModel(_))
        ));

        std::fs::write(&model, b"newer").unwrap();
        std::fs::write(&previous, b"older").unwrap();
        revert(&model).unwrap();
        assert_eq!(read(&model).as_deref(), Some(&b"older"[..]));
        assert_eq!(read(&previous).as_deref(), Some(&b"newer"[..]));
        revert(&model).unwrap();
        assert_eq!(
            read(&model).as_deref(),
            Some(&b"newer"[..]),
            "a revert is undone by another"
        );

        reset_to_shipped(&model).unwrap();
        assert!(!model.exists(), "the shipped model scores");
        assert_eq!(read(&previous).as_deref(), Some(&b"newer"[..]));
        revert(&model).unwrap();
        assert_eq!(
            read(&model).as_deref(),
            Some(&b"newer"[..]),
            "and the user's comes back"
        );
        assert!(!previous.exists());
        assert!(!model.with_file_name(SWAP_FILE).exists());
    }

    #[test]
    fn an_interrupted_revert_is_completed_without_losing_either_model() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join(MODEL_FILE);
        let swap = model.with_file_name(SWAP_FILE);
        // Stopped after the first rename: the current model is in the swap place.
        std::fs::write(&swap, b"current").unwrap();
        std::fs::write(backup_path(&model), b"previous").unwrap();
        revert(&model).unwrap();
        assert_eq!(std::fs::read(&model).unwrap(), b"previous");
        assert_eq!(std::fs::read(backup_path(&model)).unwrap(), b"current");
        // Stopped after the second: the previous model is in place, the backup is missing.
        std::fs::rename(backup_path(&model), &swap).unwrap();
        revert(&model).unwrap();
        assert!(!swap.exists());
        assert_eq!(std::fs::read(&model).unwrap(), b"current");
        assert_eq!(std::fs::read(backup_path(&model)).unwrap(), b"previous");
    }

    #[test]
    fn the_user_model_sits_in_a_cutscore_data_folder() {
        let path = user_model_path().expect("the test machine has a home folder");
        assert_eq!(path.file_name().unwrap(), MODEL_FILE);
        let folder = path
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy();
        assert_eq!(folder.to_lowercase(), "cutscore");
        assert_eq!(
            backup_path(&path).parent(),
            path.parent(),
            "the backup stays beside the model"
        );
        assert_eq!(backup_path(&path).file_name().unwrap(), PREVIOUS_MODEL_FILE);
    }
}
