//! `trainer pairs`, `train`, `eval` and `finetune` through the real binary, on tiny inputs,
//! including the bad inputs a user's prefs folder can hold (and `beats train`'s weights).

mod common;

use std::path::{Path, PathBuf};

use common::{assert_fails_saying, json, tiny_model, trainer};
use cutscore_core::edit::Edit;
use cutscore_core::prefs::{Decision, PrefsLog, Record, TrackRecord, Verdict};
use cutscore_reward::Config;
use cutscore_reward::checkpoint::Checkpoint;
use cutscore_training::synthetic_pairs::prepare_song;
use sha2::{Digest, Sha256};

/// `trainer pairs` into `dir/name`; returns the folder.
fn make_pairs(dir: &Path, name: &str, count: usize, per_song: usize, seed: u64) -> PathBuf {
    let out = dir.join(name);
    let output = trainer()
        .args(["pairs", "--count", &count.to_string(), "--per-song"])
        .arg(per_song.to_string())
        .args(["--seed", &seed.to_string(), "--json", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    out
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// SHA-256 over every file's relative path and bytes in `dir`, sorted.
fn folder_hash(dir: &Path) -> String {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut hash = Sha256::new();
    for f in files {
        hash.update(f.strip_prefix(dir).unwrap().to_string_lossy().as_bytes());
        hash.update(std::fs::read(&f).unwrap());
    }
    format!("{:x}", hash.finalize())
}

/// A user's prefs folder: for each of `songs` synthetic songs, accepted clean phrase cuts and
/// rejected off-beat cuts (or only accepts with `accepts_only`).
fn user_prefs(dir: &Path, songs: u64, accepts_only: bool) -> PathBuf {
    let prefs = dir.join("prefs");
    let log = PrefsLog::create(&prefs).unwrap();
    for seed in 0..songs {
        let song = prepare_song(100 + seed).unwrap();
        log.save_track(&TrackRecord::new(
            song.track.clone(),
            None,
            song.grid.clone(),
            song.features.clone(),
        ))
        .unwrap();
        let beats = song.grid.len();
        let bars = song.grid.bar_starts();
        for k in 0..4 {
            let start = bars[2 + k];
            let clean = Edit::new(beats, [(start, start + 4 * usize::from(song.grid.meter))]);
            let sloppy = Edit::new(beats, [(start + 1, start + 6)]);
            for (edit, verdict) in [(clean, Verdict::Accept), (sloppy, Verdict::Reject)] {
                if accepts_only && verdict == Verdict::Reject {
                    continue;
                }
                log.append(&Record::Decision(Decision {
                    v: 1,
                    time: Record::now(),
                    track: song.track.clone(),
                    edit: edit.unwrap(),
                    verdict,
                    score: None,
                    model: None,
                    shown: Vec::new(),
                }))
                .unwrap();
            }
        }
    }
    prefs
}

#[test]
fn pairs_are_balanced_reproducible_and_never_appended() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pairs");
    let run = |out: &Path| {
        trainer()
            .args([
                "pairs",
                "--count",
                "10",
                "--per-song",
                "5",
                "--seed",
                "3",
                "--json",
                "--out",
            ])
            .arg(out)
            .output()
            .unwrap()
    };
    let output = run(&out);
    assert!(output.status.success(), "{}", stderr(&output));
    let summary = json(&output);
    assert_eq!(summary["pairs"], 10);
    assert_eq!(summary["songs"], 2);
    assert_eq!(summary["a_preferred"], 5);
    let again = run(&out);
    assert_fails_saying(&again, "already exists");
    let other = dir.path().join("again");
    assert!(run(&other).status.success());
    let pairs = |dir: &Path| {
        cutscore_core::prefs::PrefsContents::read(dir)
            .unwrap()
            .pairs()
    };
    assert_eq!(pairs(&out), pairs(&other));
    // Soft labels on a wide curve: never against the oracle, and unsure where it is.
    let soft = trainer()
        .args(["pairs", "--count", "10", "--per-song", "5", "--seed", "3"])
        .args(["--temperature", "1", "--soft-labels", "--json", "--out"])
        .arg(dir.path().join("soft"))
        .output()
        .unwrap();
    assert!(soft.status.success(), "{}", stderr(&soft));
    let summary = json(&soft);
    assert_eq!(summary["flipped"], 0);
    let confidence = summary["mean_confidence"].as_f64().unwrap();
    assert!((0.5..0.95).contains(&confidence), "{confidence}");
    let reversed = trainer()
        .args([
            "pairs",
            "--count",
            "4",
            "--min-margin",
            "2",
            "--max-margin",
            "1",
            "--out",
        ])
        .arg(dir.path().join("reversed"))
        .output()
        .unwrap();
    assert_fails_saying(&reversed, "expected 0 <= min <= max");
}

#[test]
fn train_writes_the_model_metrics_and_curves_and_eval_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let pairs = make_pairs(dir.path(), "pairs", 24, 8, 1);
    let model = dir.path().join("out").join("model.safetensors");
    std::fs::create_dir_all(model.parent().unwrap()).unwrap();
    let output = trainer()
        .args([
            "train", "--tiny", "--epochs", "2", "--window", "32", "--batch", "8",
        ])
        .args(["--device", "cpu", "--json", "--pairs"])
        .arg(&pairs)
        .arg("--out")
        .arg(&model)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let metrics = json(&output);
    assert_eq!(metrics["epochs"].as_array().unwrap().len(), 2);
    assert_eq!(metrics["device"], "cpu");
    let on_disk: serde_json::Value =
        serde_json::from_slice(&std::fs::read(model.with_file_name("metrics.json")).unwrap())
            .unwrap();
    assert_eq!(on_disk, metrics);
    let png = std::fs::read(model.with_file_name("curves.png")).unwrap();
    assert_eq!(&png[1..4], b"PNG");

    let output = trainer()
        .args(["eval", "--json", "--device", "cpu", "--model"])
        .arg(&model)
        .arg("--pairs")
        .arg(&pairs)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let card = json(&output);
    assert_eq!(card["pairs"], 24);
    let accuracy = card["accuracy"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&accuracy));
    assert!(card["loss"].as_f64().unwrap() > 0.0);
    assert!(card["reward_std"].as_f64().unwrap() > 0.0);
    let buckets = card["calibration"].as_array().unwrap();
    assert_eq!(buckets.len(), 5);
    let counted: u64 = buckets.iter().map(|b| b["pairs"].as_u64().unwrap()).sum();
    assert_eq!(counted, 24);

    // Training goes on from a model: its dimensions and window are kept, its id recorded.
    let more = dir.path().join("more").join("model.safetensors");
    let train_from_model = |flags: &[&str]| {
        trainer()
            .arg("train")
            .args(flags)
            .arg("--init")
            .arg(&model)
            .arg("--pairs")
            .arg(&pairs)
            .arg("--out")
            .arg(&more)
            .output()
            .unwrap()
    };
    let output = train_from_model(&["--epochs", "1", "--batch", "8", "--device", "cpu"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let base = Checkpoint::read(&model).unwrap().info;
    let continued = Checkpoint::read(&more).unwrap().info;
    assert_eq!(continued.config, base.config);
    assert_eq!(continued.config.window, 32);
    assert_eq!(continued.provenance.base_model, Some(base.model_id.clone()));
    assert_ne!(continued.model_id, base.model_id);
    assert!(!train_from_model(&["--tiny"]).status.success());

    // Going on without dropout changes that setting alone; an impossible rate is refused.
    let output = train_from_model(&["--epochs", "1", "--batch", "8", "--dropout", "0"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let undropped = Checkpoint::read(&more).unwrap().info.config;
    assert_eq!(undropped.dropout, 0.0);
    assert_ne!(base.config.dropout, 0.0);
    assert_eq!(
        Config {
            dropout: base.config.dropout,
            ..undropped
        },
        base.config
    );
    let output = train_from_model(&["--epochs", "1", "--dropout", "1.5"]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("dropout"), "{}", stderr(&output));
}

#[test]
fn train_refuses_pairs_from_a_single_song() {
    let dir = tempfile::tempdir().unwrap();
    let pairs = make_pairs(dir.path(), "pairs", 6, 6, 2);
    let output = trainer()
        .args(["train", "--tiny", "--epochs", "1", "--pairs"])
        .arg(&pairs)
        .arg("--out")
        .arg(dir.path().join("m.safetensors"))
        .output()
        .unwrap();
    assert_fails_saying(&output, "at least 2");
}

#[test]
fn finetune_installs_the_new_model_keeps_the_old_and_leaves_prefs_alone() {
    let dir = tempfile::tempdir().unwrap();
    let prefs = user_prefs(dir.path(), 2, false);
    let synthetic = make_pairs(dir.path(), "synthetic", 16, 4, 4);
    let models = dir.path().join("models");
    std::fs::create_dir_all(&models).unwrap();
    let base = tiny_model(&models, "model.safetensors");
    let before_model = std::fs::read(&base).unwrap();
    let before = folder_hash(&prefs);
    let output = trainer()
        .args(["finetune", "--json", "--device", "cpu", "--curve"])
        .arg(dir.path().join("curve.png"))
        .arg(&prefs)
        .arg("--base")
        .arg(&base)
        .arg("--out")
        .arg(&base)
        .arg("--synthetic")
        .arg(&synthetic)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(folder_hash(&prefs), before);
    let report = json(&output);
    // 2 songs x 4 accepts x 4 rejects.
    assert_eq!(report["user_pairs"], 32);
    for key in [
        "user_agreement_before",
        "user_agreement_after",
        "base_accuracy_before",
        "base_accuracy_after",
    ] {
        let v = report[key].as_f64().unwrap_or(-1.0);
        assert!((0.0..=1.0).contains(&v), "{key} = {}", report[key]);
    }
    assert_eq!(report["written"], base.display().to_string());
    // One of the two songs was held out to measure agreement; the curve has a point for the
    // other, and is drawn.
    assert_eq!(report["held_out_songs"], 1);
    assert_eq!(report["curve"].as_array().unwrap().len(), 1);
    assert!(
        std::fs::metadata(dir.path().join("curve.png"))
            .unwrap()
            .len()
            > 1000
    );
    let backup = models.join("model.prev.safetensors");
    assert_eq!(std::fs::read(&backup).unwrap(), before_model);
    assert_ne!(std::fs::read(&base).unwrap(), before_model);
    // `trainer info` shows the layer with its bound, the span of the edits it learned from,
    // and its floor when cross-validation kept the gate (the report says which); the backup
    // has none.
    let info = trainer()
        .args(["info", "--json"])
        .arg(&base)
        .output()
        .unwrap();
    assert!(info.status.success(), "{}", stderr(&info));
    let taste = &json(&info)["taste"];
    assert_eq!(taste["weights"].as_array().unwrap().len(), 39);
    assert_eq!(taste["schema"], 5);
    assert!(taste["bound"].as_f64().unwrap() > 0.0);
    let (low, high) = (&taste["range"]["low"], &taste["range"]["high"]);
    let side = |v: &serde_json::Value| -> Vec<f64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    };
    assert_eq!(side(low).len(), 39, "{taste}");
    assert!(
        side(low).iter().zip(side(high)).all(|(l, h)| *l <= h),
        "{taste}"
    );
    assert!(
        side(low).iter().zip(side(high)).any(|(l, h)| *l < h),
        "the decisions' edits differ: {taste}"
    );
    let gated = report["gated"]
        .as_bool()
        .expect("the report says whether the layer is gated");
    assert_eq!(
        taste["floor"].as_f64().is_some_and(f64::is_finite),
        gated,
        "{taste}"
    );
    assert_eq!(taste["floor"].is_null(), !gated, "{taste}");
    let from = if gated {
        "track reference".into()
    } else {
        serde_json::Value::Null
    };
    assert_eq!(taste["floor_from"], from, "{taste}");
    let plain = trainer()
        .args(["info", "--json"])
        .arg(&backup)
        .output()
        .unwrap();
    assert!(json(&plain)["taste"].is_null());
}

#[test]
fn finetune_explains_bad_prefs_folders_and_never_touches_them() {
    let dir = tempfile::tempdir().unwrap();
    let base = tiny_model(dir.path(), "base.safetensors");
    let out = dir.path().join("new.safetensors");
    let expect_failure = |prefs: &Path, needle: &str| {
        let before = prefs.exists().then(|| folder_hash(prefs));
        let output = trainer()
            .arg("finetune")
            .arg(prefs)
            .arg("--base")
            .arg(&base)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        assert!(!output.status.success(), "{} succeeded", prefs.display());
        let text = stderr(&output);
        assert!(text.contains(needle), "expected `{needle}` in: {text}");
        assert!(!text.contains("panicked"), "{text}");
        assert_eq!(prefs.exists().then(|| folder_hash(prefs)), before);
        assert!(!out.exists());
    };
    expect_failure(&dir.path().join("missing"), "does not exist");
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    expect_failure(&empty, "empty");

    let accepts = dir.path().join("accepts");
    std::fs::create_dir_all(&accepts).unwrap();
    let prefs = user_prefs(&accepts, 1, true);
    expect_failure(&prefs, "only accepts or only rejects");

    let corrupt = dir.path().join("corrupt");
    std::fs::create_dir_all(&corrupt).unwrap();
    std::fs::write(
        corrupt.join("decisions.jsonl"),
        "{\"kind\":\"decis\n\u{0}\u{1}garbage\n",
    )
    .unwrap();
    expect_failure(&corrupt, "torn or corrupt");

    let orphans = dir.path().join("orphans");
    std::fs::create_dir_all(&orphans).unwrap();
    let prefs = user_prefs(&orphans, 1, false);
    for entry in std::fs::read_dir(prefs.join("tracks")).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    expect_failure(&prefs, "is missing");

    let schema = dir.path().join("schema");
    std::fs::create_dir_all(&schema).unwrap();
    let prefs = user_prefs(&schema, 1, false);
    for entry in std::fs::read_dir(prefs.join("tracks")).unwrap() {
        let path = entry.unwrap().path();
        let mut track: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        track["feature_schema"] = 1.into();
        std::fs::write(&path, serde_json::to_vec(&track).unwrap()).unwrap();
    }
    expect_failure(&prefs, "feature schema v1");

    // A good prefs folder with a base model that does not load.
    let good = dir.path().join("good");
    std::fs::create_dir_all(&good).unwrap();
    let prefs = user_prefs(&good, 1, false);
    let before = folder_hash(&prefs);
    let broken = dir.path().join("broken.safetensors");
    std::fs::write(&broken, b"not a model").unwrap();
    let output = trainer()
        .arg("finetune")
        .arg(&prefs)
        .arg("--base")
        .arg(&broken)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let text = stderr(&output);
    assert!(text.contains("loading the base model"), "{text}");
    assert!(text.contains("not a safetensors file"), "{text}");
    assert_eq!(folder_hash(&prefs), before);
    assert!(!out.exists());
    // Torn last line next to good records: the good ones are still used.
    let torn = prefs.join("decisions.jsonl");
    let mut text = std::fs::read_to_string(&torn).unwrap();
    text.push_str("{\"kind\":\"decision\",\"v\":1,\"ti");
    std::fs::write(&torn, text).unwrap();
    let before = folder_hash(&prefs);
    let output = trainer()
        .args(["finetune", "--device", "cpu"])
        .arg(&prefs)
        .arg("--base")
        .arg(&base)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(folder_hash(&prefs), before);
    assert!(out.exists());
}

#[test]
fn eval_refuses_a_model_that_does_not_load() {
    let dir = tempfile::tempdir().unwrap();
    let pairs = make_pairs(dir.path(), "pairs", 4, 4, 5);
    let output = trainer()
        .args(["eval", "--model"])
        .arg(dir.path().join("none.safetensors"))
        .arg("--pairs")
        .arg(&pairs)
        .output()
        .unwrap();
    assert_fails_saying(&output, "cannot read");
}

/// A weight that is no weight is refused before any song is rendered, and says what it expects.
#[test]
fn beat_training_refuses_an_offbeat_weight_that_is_no_weight() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("beats.safetensors");
    for weight in ["-1", "NaN", "inf"] {
        let output = trainer()
            .args(["beats", "train", "--synth", "4", "--steps", "1"])
            .arg(format!("--offbeat-weight={weight}"))
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        assert_fails_saying(&output, "expected a finite weight of 0 or more");
        assert!(!out.exists());
    }
}
