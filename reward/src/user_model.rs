//! Where the user's own reward model lives: the file `trainer finetune` writes and the plugin
//! loads in place of the shipped default. The folder is the platform's per-user data folder
//! (via the `dirs` crate): `$XDG_DATA_HOME/cutscore` (else `~/.local/share/cutscore`) on
//! Linux, `~/Library/Application Support/Cutscore` on macOS, `%APPDATA%\Cutscore` on Windows.

use std::path::{Path, PathBuf};

/// File name of the user's model.
pub const MODEL_FILE: &str = "model.safetensors";
/// File name of the model it replaced, kept as a backup.
pub const PREVIOUS_MODEL_FILE: &str = "model.prev.safetensors";

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

#[cfg(test)]
mod tests {
    use super::*;

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
