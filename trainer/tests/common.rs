//! Shared helpers for the `trainer` integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use candle_core::Device;
use candle_nn::VarMap;
use cutscore_reward::checkpoint::{Provenance, StorageType, TrainingMetrics, save};
use cutscore_reward::{Config, RewardModel};

/// Debian's fluid-soundfont-gm, which the SoundFont songs play (`.ci/run` installs it).
pub const SOUNDFONT: &str = "/usr/share/sounds/sf2/FluidR3_GM.sf2";

/// The `trainer` binary, quiet logging, with a per-user data folder of its own (empty unless
/// a test puts a user model there), so the developer's own model never changes a result.
pub fn trainer() -> Command {
    let mut cmd = Command::cargo_bin("trainer").expect("the trainer binary is built");
    cmd.env("RUST_LOG", "warn");
    let data = std::env::temp_dir().join(format!("cutscore-tests-{}", std::process::id()));
    cmd.env("XDG_DATA_HOME", data);
    cmd
}

/// Saves a freshly initialised tiny model to `dir/name` and returns its path.
pub fn tiny_model(dir: &Path, name: &str) -> PathBuf {
    let varmap = VarMap::new();
    RewardModel::init(&Config::tiny(), &varmap, &Device::Cpu, 0).expect("tiny model builds");
    let path = dir.join(name);
    let metrics = TrainingMetrics {
        best_val_accuracy: Some(0.9),
        best_epoch: Some(2),
        ..Default::default()
    };
    save(
        &path,
        &varmap,
        &Config::tiny(),
        &metrics,
        &Provenance::default(),
        StorageType::F32,
    )
    .expect("model saves");
    path
}

/// Parses stdout as one JSON value.
pub fn json(output: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// Asserts that a run succeeded, showing its stderr if not.
pub fn assert_succeeded(output: &std::process::Output) {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Asserts that a run failed and said `needle` on stderr.
pub fn assert_fails_saying(output: &std::process::Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "expected a failure; stderr: {stderr}"
    );
    assert!(stderr.contains(needle), "expected {needle:?} in: {stderr}");
}
