//! The scoring worker and the user-model file: a corrupt file at start is reported and the
//! shipped model serves; a valid model written by the trainer is swapped in while the engine
//! runs; a corrupt file written later is reported and the current model keeps serving; the
//! editor's Reset and Revert (renames of the files) switch what scores while it runs.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use candle_core::Device;
use candle_nn::VarMap;
use cutscore_plugin::engine::Engine;
use cutscore_plugin::params::CutscoreParams;
use cutscore_plugin::session::{ModelStatus, Session, lock};
use cutscore_reward::checkpoint::{Provenance, StorageType, TrainingMetrics, save};
use cutscore_reward::{Config, RewardModel};
use nice_plug_egui::RepaintNotifier;

fn wait_for(session: &Session, what: &str, done: impl Fn(&ModelStatus) -> bool) -> ModelStatus {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = lock(&session.model).clone();
        if done(&status) {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {status:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Writes a tiny model the way the trainer does (temporary file, then rename).
fn write_model(path: &Path, seed: u64) -> String {
    let varmap = VarMap::new();
    RewardModel::init(&Config::tiny(), &varmap, &Device::Cpu, seed).unwrap();
    let temporary = path.with_extension("tmp.safetensors");
    let id = save(
        &temporary,
        &varmap,
        &Config::tiny(),
        &TrainingMetrics::default(),
        &Provenance::default(),
        StorageType::F32,
    )
    .unwrap();
    std::fs::rename(&temporary, path).unwrap();
    id
}

#[test]
fn user_models_are_validated_and_swapped_in_while_running() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    std::fs::write(&path, b"half a model").unwrap();
    let session = Arc::new(Session::new(Some(path.clone())));
    let params = Arc::new(CutscoreParams::default());
    let (engine, _audio) =
        Engine::start(&session, &params, &RepaintNotifier::new(), 48_000, 2).unwrap();

    let status = wait_for(&session, "the shipped model", |s| !s.model_id.is_empty());
    assert_eq!(status.source, "the shipped model");
    let problem = status.problem.expect("the corrupt file is reported");
    assert!(problem.contains("model.safetensors"), "{problem}");
    let shipped_id = status.model_id;

    // File times have a resolution; make sure the new file looks newer.
    std::thread::sleep(Duration::from_millis(1100));
    let id = write_model(&path, 3);
    let status = wait_for(&session, "the user model", |s| s.model_id == id);
    assert_eq!(status.source, "your model");
    assert!(status.problem.is_none(), "{:?}", status.problem);

    std::thread::sleep(Duration::from_millis(1100));
    std::fs::write(&path, b"torn write").unwrap();
    let status = wait_for(&session, "the report", |s| s.problem.is_some());
    assert_eq!(status.model_id, id, "the previous model keeps serving");
    assert_ne!(status.model_id, shipped_id);
    drop(engine);
}

#[test]
fn reset_and_revert_switch_the_serving_model_while_running() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    let older = write_model(&cutscore_reward::user_model::backup_path(&path), 4);
    let newer = write_model(&path, 3);
    let session = Arc::new(Session::new(Some(path.clone())));
    let params = Arc::new(CutscoreParams::default());
    let (engine, _audio) =
        Engine::start(&session, &params, &RepaintNotifier::new(), 48_000, 2).unwrap();
    let status = wait_for(&session, "the user model", |s| s.model_id == newer);
    assert_eq!(status.source, "your model");

    cutscore_reward::user_model::reset_to_shipped(&path).unwrap();
    let status = wait_for(&session, "the shipped model", |s| {
        s.source == "the shipped model"
    });
    assert!(status.problem.is_none(), "{:?}", status.problem);

    cutscore_reward::user_model::revert(&path).unwrap();
    let status = wait_for(&session, "the user model back", |s| s.model_id == newer);
    assert_eq!(status.source, "your model");
    assert_ne!(older, newer);
    drop(engine);
}
