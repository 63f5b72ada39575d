//! The shipped default reward model, embedded in the library so `trainer` and the plugin work
//! with no files on disk. It was trained on synthetic preference pairs judged by the editing
//! oracle (`docs/oracle.md`) with the seeded command recorded in its metadata and in
//! `model/shipped/README.md`, which also lists its validation figures.

use crate::checkpoint::{Checkpoint, CheckpointError};

/// The checkpoint file's bytes (`model/shipped/cutscore-default.safetensors`).
pub const MODEL_BYTES: &[u8] = include_bytes!("../shipped/cutscore-default.safetensors");

/// What the shipped model is called where a path would be shown.
pub const MODEL_NAME: &str = "the shipped default model";

/// Parses the embedded checkpoint.
pub fn checkpoint() -> Result<Checkpoint, CheckpointError> {
    Checkpoint::from_bytes(MODEL_BYTES)
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
        assert_eq!(checkpoint.info.config, Config::default());
        let model = checkpoint.model(&candle_core::Device::Cpu).unwrap();
        assert_eq!(model.config().max_len, Config::default().max_len);
    }
}
