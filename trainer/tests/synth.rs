//! `trainer synth` end to end: the real binary writes WAV + truth files that read back.

mod common;

use common::{SOUNDFONT, trainer};
use cutscore_synth::{SongTruth, evaluation_set, read_truth};

#[test]
fn writes_a_song_and_its_truth_with_the_flags_applied() {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("song.wav");
    trainer()
        .args([
            "synth", "--seed", "3", "--bpm", "100", "--meter", "3", "--bars", "20",
        ])
        .args(["--sample-rate", "22050", "--out"])
        .arg(&wav)
        .assert()
        .success();
    let truth: SongTruth = read_truth(&dir.path().join("song.truth.json")).unwrap();
    assert_eq!(truth.meter, 3);
    assert_eq!(truth.bpm, 100.0);
    assert_eq!(truth.beats.len(), 60);
    assert_eq!(truth.downbeats.len(), 20);
    truth.grid().unwrap();

    let reader = hound::WavReader::open(&wav).unwrap();
    assert_eq!(reader.spec().sample_rate, 22_050);
    assert_eq!(reader.spec().channels, 2);
    let seconds = f64::from(reader.duration()) / 22_050.0;
    assert!((seconds - truth.duration_s).abs() < 1e-9);
}

#[test]
fn the_same_seed_writes_the_same_file() {
    let dir = tempfile::tempdir().unwrap();
    let render = |name: &str| {
        let wav = dir.path().join(name);
        trainer()
            .args([
                "synth",
                "--seed",
                "11",
                "--bars",
                "4",
                "--sample-rate",
                "16000",
                "--out",
            ])
            .arg(&wav)
            .assert()
            .success();
        std::fs::read(wav).unwrap()
    };
    assert_eq!(render("a.wav"), render("b.wav"));
}

#[test]
fn writes_the_whole_evaluation_set() {
    let dir = tempfile::tempdir().unwrap();
    trainer()
        .args(["synth", "--sample-rate", "8000", "--evaluation-set"])
        .arg(dir.path())
        .assert()
        .success();
    for (name, spec) in evaluation_set() {
        let truth = read_truth(&dir.path().join(format!("{name}.truth.json"))).unwrap();
        assert_eq!(truth.meter, spec.meter, "{name}");
        assert_eq!(truth.beats.len(), spec.beats(), "{name}");
        assert!(dir.path().join(format!("{name}.wav")).is_file(), "{name}");
    }
}

#[test]
fn bad_flags_fail_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.wav");
    let stderr = |args: &[&str]| {
        let assert = trainer().args(args).arg(&out).assert().failure();
        String::from_utf8_lossy(&assert.get_output().stderr).into_owned()
    };
    let tempo = stderr(&["synth", "--bpm", "1000", "--out"]);
    assert!(tempo.contains("expected 40 to 300 BPM"), "{tempo}");
    let meter = stderr(&["synth", "--meter", "5", "--out"]);
    assert!(meter.contains("--meter"), "{meter}");
    trainer().args(["synth"]).assert().failure();
    assert!(!out.exists());
}

#[test]
fn a_soundfont_song_has_the_truth_of_the_synthesised_one_and_its_own_sound() {
    let dir = tempfile::tempdir().unwrap();
    let render = |name: &str, extra: &[&str]| {
        let wav = dir.path().join(format!("{name}.wav"));
        trainer()
            .args([
                "synth",
                "--seed",
                "5",
                "--bars",
                "8",
                "--sample-rate",
                "22050",
            ])
            .args(extra)
            .arg("--out")
            .arg(&wav)
            .assert()
            .success();
        let truth = read_truth(&dir.path().join(format!("{name}.truth.json"))).unwrap();
        let samples: Vec<i16> = hound::WavReader::open(&wav)
            .unwrap()
            .into_samples()
            .map(Result::unwrap)
            .collect();
        (truth, samples)
    };
    let (truth, synthesised) = render("synth", &[]);
    let (gm_truth, gm) = render("gm", &["--soundfont", SOUNDFONT]);
    let (_, default_font) = render("default", &["--soundfont"]);
    let (_, revoiced) = render("revoiced", &["--soundfont", SOUNDFONT, "--voicing", "6"]);
    assert_eq!(gm_truth, truth);
    assert_eq!(gm.len(), synthesised.len());
    assert_ne!(gm, synthesised);
    assert_eq!(default_font, gm, "FluidR3 GM is the default");
    assert_ne!(revoiced, gm);
    let peak = gm.iter().map(|&x| i32::from(x).abs()).max().unwrap();
    assert!(
        (28_500..=29_500).contains(&peak),
        "peak {peak}, -1 dBFS expected"
    );
}

#[test]
fn a_missing_soundfont_fails_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let font = dir.path().join("missing.sf2");
    let wav = dir.path().join("x.wav");
    let assert = trainer()
        .args(["synth", "--bars", "4", "--soundfont"])
        .arg(&font)
        .arg("--out")
        .arg(&wav)
        .assert()
        .failure();
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr);
    assert!(
        stderr.contains(&format!("no SoundFont at {}", font.display())),
        "{stderr}"
    );
    assert!(!wav.exists());
    trainer()
        .args(["synth", "--voicing", "3", "--out"])
        .arg(&wav)
        .assert()
        .failure();
}
