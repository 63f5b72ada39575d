//! `trainer demo`: the whole pipeline with the shipped model and nothing on disk but the
//! binary, and with a given audio file.

mod common;

use common::trainer;

fn wav_seconds(path: &std::path::Path) -> f64 {
    let reader = hound::WavReader::open(path).unwrap();
    f64::from(reader.duration()) / f64::from(reader.spec().sample_rate)
}

#[test]
fn demo_synthesises_fits_to_three_quarters_and_writes_audio_and_markers() {
    let dir = tempfile::tempdir().unwrap();
    let output = trainer()
        .args(["demo", "--seed", "3", "--top", "3", "--out-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(text.contains("top 3 cuts"), "{text}");
    assert!(text.matches(" cut ").count() >= 3, "{text}");
    let source = wav_seconds(&dir.path().join("cutscore-demo.wav"));
    let edited = wav_seconds(&dir.path().join("cutscore-demo.edited.wav"));
    let slack = (source * 0.03).max(2.0);
    assert!(
        (edited - 0.75 * source).abs() <= slack + 0.1,
        "{edited:.2} s from {source:.2} s; expected 75 % within {slack:.1} s"
    );
    let labels = std::fs::read_to_string(dir.path().join("cutscore-demo.edited.txt")).unwrap();
    let regions = std::fs::read_to_string(dir.path().join("cutscore-demo.edited.csv")).unwrap();
    assert!(
        !labels.trim().is_empty() && regions.lines().count() >= 2,
        "{labels}\n{regions}"
    );
}

#[test]
fn demo_edits_a_given_file_and_refuses_a_missing_one() {
    let dir = tempfile::tempdir().unwrap();
    let song = dir.path().join("mine.wav");
    trainer()
        .args(["synth", "--seed", "5", "--bpm", "128", "--out"])
        .arg(&song)
        .assert()
        .success();
    let output = trainer()
        .arg("demo")
        .arg(&song)
        .arg("--out-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(dir.path().join("mine.edited.wav").exists());
    assert!(!dir.path().join("cutscore-demo.wav").exists());

    let output = trainer()
        .args(["demo", "/nonexistent/song.wav", "--out-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("/nonexistent/song.wav"));
}
