//! `trainer score` and `trainer edit` end to end on a synthetic song with known bars.

mod common;

use std::path::{Path, PathBuf};

use common::{SOUNDFONT, json, tiny_model, trainer};
use cutscore_synth::{SongSpec, SongTruth, render, write_wav};

/// A 32-bar 4/4 song at 120 BPM (64 s) written to `dir/song.wav`.
fn song(dir: &Path) -> (PathBuf, SongTruth) {
    let spec = SongSpec {
        seed: 5,
        bpm: 120.0,
        meter: 4,
        bars: 32,
        sample_rate: 22_050,
        ..SongSpec::random(5)
    };
    let song = render(&spec).unwrap();
    let path = dir.join("song.wav");
    write_wav(&path, &song).unwrap();
    (path, song.truth)
}

#[test]
fn score_lists_bar_aligned_candidates_best_first() {
    let dir = tempfile::tempdir().unwrap();
    let (audio, truth) = song(dir.path());
    let model = tiny_model(dir.path(), "m.safetensors");
    let output = trainer()
        .arg("score")
        .arg(&audio)
        .arg("--model")
        .arg(&model)
        .args(["--top", "5", "--json"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = json(&output);
    let candidates = report["candidates"].as_array().unwrap();
    assert_eq!(candidates.len(), 5);
    let scores: Vec<f64> = candidates
        .iter()
        .map(|c| c["score"].as_f64().unwrap())
        .collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]));
    for c in candidates {
        let (from, to) = (c["from_s"].as_f64().unwrap(), c["to_s"].as_f64().unwrap());
        assert!(to > from);
        // Cuts start and resume on true downbeats (within 50 ms).
        let on_downbeat = |t: f64| truth.downbeats.iter().any(|d| (d - t).abs() < 0.05);
        assert!(on_downbeat(from) && on_downbeat(to), "{from} -> {to}");
    }
    assert_eq!(report["meter"], 4);
}

#[test]
fn edit_writes_audio_within_the_slack_and_markers() {
    let dir = tempfile::tempdir().unwrap();
    let (audio, truth) = song(dir.path());
    let model = tiny_model(dir.path(), "m.safetensors");
    let out = dir.path().join("short.wav");
    let labels = dir.path().join("short.txt");
    let output = trainer()
        .arg("edit")
        .arg(&audio)
        .args(["--target", "0:48", "--slack", "3", "--json", "--model"])
        .arg(&model)
        .arg("-o")
        .arg(&out)
        .arg("--markers")
        .arg(&labels)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = json(&output);
    let seconds = report["output_seconds"].as_f64().unwrap();
    assert!((seconds - 48.0).abs() <= 3.0, "{seconds}");
    assert_eq!(report["met_target"], true);
    assert_eq!(report["steady_pulse"], true, "a drum-led song at 120 BPM");
    assert!(!String::from_utf8_lossy(&output.stderr).contains("no steady pulse"));
    let reader = hound::WavReader::open(&out).unwrap();
    assert_eq!(
        (
            reader.spec().channels,
            reader.spec().sample_rate,
            reader.spec().bits_per_sample
        ),
        (2, 22_050, 24)
    );
    assert!((f64::from(reader.duration()) / 22_050.0 - seconds).abs() < 1e-3);
    let joins = report["joins"].as_array().unwrap();
    assert!(!joins.is_empty());
    for join in joins {
        let from = join["from_s"].as_f64().unwrap();
        assert!(truth.downbeats.iter().any(|d| (d - from).abs() < 0.05));
        assert!(
            from >= truth.downbeats[4] - 0.05,
            "the intro's 4 bars are kept"
        );
    }
    assert!(!report["variations"].as_array().unwrap().is_empty());
    let labels = std::fs::read_to_string(&labels).unwrap();
    assert_eq!(labels.lines().count(), joins.len());
}

#[test]
fn impossible_targets_and_missing_models_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (audio, _) = song(dir.path());
    let model = tiny_model(dir.path(), "m.safetensors");
    let out = dir.path().join("long.wav");
    let output = trainer()
        .arg("edit")
        .arg(&audio)
        .args(["--target", "5:00", "--model"])
        .arg(&model)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("longer than the song"));
    assert!(!out.exists());
    // A broken user model is passed over for the shipped one, said so, and left in place.
    let data = dir.path().join("data");
    std::fs::create_dir_all(data.join("cutscore")).unwrap();
    let user_model = data.join("cutscore/model.safetensors");
    std::fs::write(&user_model, b"not a model").unwrap();
    let output = trainer()
        .env("XDG_DATA_HOME", &data)
        .arg("edit")
        .arg(&audio)
        .args(["--target", "40"])
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{text}");
    assert!(
        text.contains("does not load") && text.contains("using the shipped default model"),
        "{text}"
    );
    assert_eq!(std::fs::read(&user_model).unwrap(), b"not a model");
    std::fs::remove_file(&out).unwrap();
    let output = trainer()
        .arg("edit")
        .arg(&audio)
        .args(["--target", "40", "--markers", "m.doc", "--model"])
        .arg(&model)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(!out.exists());
    let not_audio = dir.path().join("notes.wav");
    std::fs::write(&not_audio, b"these are not samples").unwrap();
    let output = trainer()
        .arg("score")
        .arg(&not_audio)
        .arg("--model")
        .arg(&model)
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(!String::from_utf8_lossy(&output.stderr).contains("panicked"));
}

/// Peak magnitude of a float WAV's samples.
fn float_peak(path: &Path) -> f32 {
    hound::WavReader::open(path)
        .unwrap()
        .into_samples::<f32>()
        .map(|s| s.unwrap().abs())
        .fold(0.0, f32::max)
}

#[test]
fn a_brickwall_mastered_song_is_edited_without_exceeding_its_own_peak() {
    // A song played by sampled instruments, then driven 12 dB into a hard limit at 0.9 as a
    // loud master is: its bars are dense with samples at the peak, so an equal-power fade of
    // two similar bars would rise up to 3 dB above it.
    let dir = tempfile::tempdir().unwrap();
    let gm = dir.path().join("gm.wav");
    trainer()
        .args([
            "synth",
            "--seed",
            "11",
            "--bars",
            "32",
            "--sample-rate",
            "22050",
        ])
        .args(["--soundfont", SOUNDFONT, "--out"])
        .arg(&gm)
        .assert()
        .success();
    let mut reader = hound::WavReader::open(&gm).unwrap();
    let spec = reader.spec();
    let limited: Vec<f32> = reader
        .samples::<i16>()
        .map(|s| (f32::from(s.unwrap()) / 32_768.0 * 4.0).clamp(-0.9, 0.9))
        .collect();
    let master = dir.path().join("master.wav");
    let mut writer = hound::WavWriter::create(
        &master,
        hound::WavSpec {
            bits_per_sample: 32,
            sample_format: hound::SampleFormat::Float,
            ..spec
        },
    )
    .unwrap();
    for &s in &limited {
        writer.write_sample(s).unwrap();
    }
    writer.finalize().unwrap();
    let seconds = limited.len() as f64 / f64::from(spec.channels) / f64::from(spec.sample_rate);

    let edited = dir.path().join("edited.wav");
    trainer()
        .args(["edit", "--format", "float", "--slack", "6", "--target"])
        .arg(format!("{:.1}", seconds * 0.6))
        .arg("--out")
        .arg(&edited)
        .arg(&master)
        .assert()
        .success();
    let peak = float_peak(&edited);
    assert!(
        peak <= 0.9,
        "the edit peaks at {peak}, over the master's 0.9"
    );
    let length =
        hound::WavReader::open(&edited).unwrap().duration() as f64 / f64::from(spec.sample_rate);
    assert!(
        length < seconds * 0.75,
        "something was cut: {length:.1} of {seconds:.1} s"
    );
}
