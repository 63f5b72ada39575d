//! `trainer info` and `trainer bench` through the real binary.

mod common;

use common::{json, tiny_model, trainer};

#[test]
fn info_reports_a_checkpoint_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path(), "tiny.safetensors");
    let output = trainer()
        .args(["info", "--json"])
        .arg(&model)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let info = json(&output);
    let expected = cutscore_reward::Config::tiny().parameter_count();
    assert_eq!(info["parameters"], expected);
    assert_eq!(info["tensors"], 3 + 12 + 2 + 4);
    assert_eq!(
        info["feature_schema"]["version"],
        cutscore_core::features::FEATURE_SCHEMA_VERSION
    );
    assert_eq!(info["device"]["name"], "cpu");
    assert!((info["metrics"]["best_val_accuracy"].as_f64().unwrap() - 0.9).abs() < 1e-6);
    assert_eq!(info["model_id"].as_str().unwrap().len(), 16);
}

#[test]
fn info_without_a_model_describes_the_shipped_model() {
    let output = trainer().args(["info"]).output().unwrap();
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("parameters  2566145 in 45 tensors"), "{text}");
    let shipped = cutscore_reward::shipped::checkpoint().unwrap();
    assert!(text.contains("the shipped default model"), "{text}");
    assert!(text.contains(&shipped.info.model_id), "{text}");
}

#[test]
fn info_refuses_files_that_are_not_models() {
    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("song.safetensors");
    std::fs::write(&bogus, b"RIFF\x24\x00\x00\x00WAVEfmt ").unwrap();
    let output = trainer().arg("info").arg(&bogus).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not a safetensors file"), "{stderr}");
    let output = trainer()
        .args(["info", "/nonexistent/model.safetensors"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot read"));
}

#[test]
fn bench_prints_one_json_line_with_the_timings() {
    let output = trainer()
        .args([
            "bench", "--batch", "1", "--beats", "8", "--runs", "1", "--device", "cpu", "--json",
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout).lines().count(), 1);
    let bench = json(&output);
    assert_eq!(bench["device"], "cpu");
    assert_eq!(bench["batch"], 1);
    assert_eq!(bench["beats"], 8);
    assert!(bench["inference_ms"].as_f64().unwrap() > 0.0);
    assert!(bench["train_step_ms"].as_f64().unwrap() > 0.0);
}

#[test]
fn bench_refuses_impossible_shapes_and_devices() {
    let output = trainer()
        .args(["bench", "--beats", "600"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--beats must be between 1 and 512"));
    // A cuda build may have a GPU to run on.
    if !cfg!(feature = "cuda") {
        let output = trainer()
            .args(["bench", "--device", "cuda"])
            .output()
            .unwrap();
        assert!(!output.status.success());
        assert!(String::from_utf8_lossy(&output.stderr).contains("--features cuda"));
    }
    let output = trainer()
        .args(["bench", "--device", "tpu"])
        .output()
        .unwrap();
    assert!(!output.status.success());
}
