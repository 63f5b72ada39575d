//! `trainer analyze` end to end on synthetic songs written by `trainer synth`, and on bad input.

mod common;

use common::{assert_fails_saying, assert_succeeded, trainer};
use cutscore_analysis::metrics;
use cutscore_synth::read_truth;

fn song(dir: &std::path::Path) -> std::path::PathBuf {
    song_of_seed(dir, "5")
}

/// A 24-second song at 120 BPM in 4/4 (seed 5 changes tempo on the way; seed 6 does not).
fn song_of_seed(dir: &std::path::Path, seed: &str) -> std::path::PathBuf {
    let wav = dir.join("song.wav");
    trainer()
        .args([
            "synth", "--seed", seed, "--bpm", "120", "--meter", "4", "--bars", "12",
        ])
        .arg("--out")
        .arg(&wav)
        .assert()
        .success();
    wav
}

fn assert_tempo_within_truth(tempo: f64, beats: &[f64]) {
    let tempi: Vec<f64> = beats.windows(2).map(|w| 60.0 / (w[1] - w[0])).collect();
    let slowest = tempi.iter().copied().fold(f64::INFINITY, f64::min);
    let fastest = tempi.iter().copied().fold(0.0, f64::max);
    assert!(
        tempo >= slowest * 0.97 && tempo <= fastest * 1.03,
        "tempo {tempo} outside the song's {slowest}..{fastest} BPM"
    );
}

fn json_of(output: &[u8]) -> serde_json::Value {
    serde_json::from_slice(output).expect("analyze --json prints one JSON object")
}

#[test]
fn offline_json_has_the_beats_of_the_song_and_features_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let wav = song(dir.path());
    let truth = read_truth(&dir.path().join("song.truth.json")).unwrap();
    let features = dir.path().join("features.json");
    let output = trainer()
        .arg("analyze")
        .arg(&wav)
        .arg("--json")
        .arg("--features")
        .arg(&features)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let result = json_of(&output.stdout);
    // The drawn song may change tempo: the reported tempo lies within the song's tempi.
    assert_tempo_within_truth(result["tempo_bpm"].as_f64().unwrap(), &truth.beats);
    assert_eq!(result["meter"], 4);
    assert!((result["seconds"].as_f64().unwrap() - truth.duration_s).abs() < 0.05);
    let beats: Vec<f64> = serde_json::from_value(result["beats"].clone()).unwrap();
    let f = metrics::f_measure(
        &metrics::trim_beats(&truth.beats),
        &metrics::trim_beats(&beats),
    )
    .unwrap();
    assert!(f > 0.9, "F {f}");
    assert!(!result["downbeats"].as_array().unwrap().is_empty());
    assert_eq!(result["steady_pulse"], true);

    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&features).unwrap()).unwrap();
    assert_eq!(written["beat_features"], 121);
    let rows = written["values"].as_array().unwrap();
    assert_eq!(rows.len(), beats.len());
    assert!(rows.iter().all(|r| r.as_array().unwrap().len() == 121));
}

#[test]
fn streaming_runs_the_causal_tracker_in_host_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let wav = song(dir.path());
    let features = dir.path().join("features.json");
    let output = trainer()
        .arg("analyze")
        .arg(&wav)
        .args(["--streaming", "--block", "256", "--json", "--features"])
        .arg(&features)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let result = json_of(&output.stdout);
    assert_eq!(result["tracker"], "streaming");
    let truth = read_truth(&dir.path().join("song.truth.json")).unwrap();
    assert_tempo_within_truth(result["tempo_bpm"].as_f64().unwrap(), &truth.beats);
    let beats: Vec<f64> = serde_json::from_value(result["beats"].clone()).unwrap();
    let f = metrics::f_measure(
        &metrics::trim_beats(&truth.beats),
        &metrics::trim_beats(&beats),
    )
    .unwrap();
    assert!(f > 0.8, "streaming F {f}");
    let beats = beats.len();
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&features).unwrap()).unwrap();
    assert_eq!(written["values"].as_array().unwrap().len(), beats);
}

#[test]
fn bad_files_give_an_error_that_says_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.wav");
    std::fs::write(&empty, b"").unwrap();
    let text = dir.path().join("notes.mp3");
    std::fs::write(
        &text,
        b"these are not the bytes of an audio file\n".repeat(50),
    )
    .unwrap();
    for (path, says) in [(&empty, "empty"), (&text, "not audio")] {
        let output = trainer().arg("analyze").arg(path).output().unwrap();
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(says), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn noise_is_reported_as_having_no_steady_pulse() {
    // Twenty seconds of seeded white noise: beats are found (the decoder always finds a path),
    // but the analysis says it is not sure of them, in JSON and as a warning.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("noise.wav");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 44_100,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(&path, spec).unwrap();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..20 * 44_100 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        writer.write_sample((state >> 52) as i16 - 2048).unwrap();
    }
    writer.finalize().unwrap();
    let output = trainer()
        .arg("analyze")
        .arg(&path)
        .arg("--json")
        .output()
        .unwrap();
    assert!(output.status.success());
    let result = json_of(&output.stdout);
    assert_eq!(result["steady_pulse"], false, "{result}");
    assert!(result["confidence"].as_f64().unwrap() < 0.3);
    let output = trainer().arg("analyze").arg(&path).output().unwrap();
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no steady pulse found"), "{stderr}");
}

#[test]
fn a_tempo_the_user_gives_is_tracked_at_its_level() {
    let dir = tempfile::tempdir().unwrap();
    let wav = song_of_seed(dir.path(), "6");
    let truth = read_truth(&dir.path().join("song.truth.json")).unwrap();
    let at = |bpm: &str, tracker: &[&str]| {
        let output = trainer()
            .arg("analyze")
            .arg(&wav)
            .args(["--json", "--bpm", bpm])
            .args(tracker)
            .output()
            .unwrap();
        assert_succeeded(&output);
        json_of(&output.stdout)
    };
    // The song is at 120: counted at 60, every other beat of it, by both trackers (the
    // streaming one from its first beats on: it finds the phase within four of them).
    for (tracker, from_s) in [(&[][..], 1.0), (&["--streaming"][..], 5.0)] {
        let half = at("60", tracker);
        assert!(
            (half["tempo_bpm"].as_f64().unwrap() - 60.0).abs() < 1.5,
            "{tracker:?}: {half}"
        );
        let beats: Vec<f64> = serde_json::from_value(half["beats"].clone()).unwrap();
        let within: Vec<f64> = beats
            .into_iter()
            // The render rings on after the last beat.
            .filter(|&b| b > from_s && b < truth.beats.last().unwrap() + 0.1)
            .collect();
        assert!(within.len() >= 8, "{tracker:?}: {within:?}");
        assert!(
            within
                .iter()
                .all(|b| truth.beats.iter().any(|t| (t - b).abs() < 0.07)),
            "{tracker:?}: {within:?}"
        );
        // A beat a second; the streaming tracker may move once to the other half of the
        // song's beats (which is the beat at 60 is the song's choice, not the tracker's).
        let gaps: Vec<f64> = within.windows(2).map(|w| w[1] - w[0]).collect();
        let steady = gaps.iter().filter(|g| (*g - 1.0).abs() < 0.1).count();
        assert!(steady + 1 >= gaps.len(), "{tracker:?}: {within:?}");
        assert!(
            gaps.iter().all(|g| (0.9..1.6).contains(g)),
            "{tracker:?}: {within:?}"
        );
    }
    let same = at("120", &[]);
    assert!((same["tempo_bpm"].as_f64().unwrap() - 120.0).abs() < 2.5);
    // A tempo no song has: refused, saying why.
    let output = trainer()
        .arg("analyze")
        .arg(&wav)
        .args(["--bpm", "500"])
        .output()
        .unwrap();
    assert_fails_saying(&output, "30 to 300 BPM");
}

/// `trainer analyze WAV --json` with `extra` arguments.
fn analyze_json(wav: &std::path::Path, extra: &[&str]) -> std::process::Output {
    trainer()
        .arg("analyze")
        .arg(wav)
        .arg("--json")
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn a_bar_line_the_user_gives_starts_a_bar_and_an_off_beat_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let wav = song_of_seed(dir.path(), "6");
    let analyze = |extra: &[&str]| analyze_json(&wav, extra);
    let heard = analyze(&[]);
    assert_succeeded(&heard);
    let heard = json_of(&heard.stdout);
    let times = |v: &serde_json::Value, key: &str| -> Vec<f64> {
        serde_json::from_value(v[key].clone()).unwrap()
    };
    let (beats, downbeats) = (times(&heard, "beats"), times(&heard, "downbeats"));
    // The beat after the second bar line (the song holds one tempo: every bar line moves a
    // beat later).
    let second = beats.iter().position(|&b| b == downbeats[1]).unwrap();
    let named = beats[second + 1];
    let moved = analyze(&["--bar-line", &format!("{:.3}", named + 0.02)]);
    assert_succeeded(&moved);
    let moved = times(&json_of(&moved.stdout), "downbeats");
    assert!(moved.contains(&named), "{moved:?}");
    for d in &downbeats {
        let i = beats.iter().position(|b| b == d).unwrap();
        if let Some(next) = beats.get(i + 1) {
            assert!(moved.contains(next), "{d} -> {moved:?}");
        }
    }
    // Half a beat after a beat: no beat there to count from.
    let off = analyze(&["--bar-line", &format!("{:.3}", (beats[4] + beats[5]) / 2.0)]);
    assert_fails_saying(&off, "expected the time of a beat that starts a bar");
    assert_fails_saying(&analyze(&["--bar-line=-1"]), "expected a time in seconds");
}

#[test]
fn half_a_beat_the_user_asks_for_moves_the_beats_and_a_bar_line_may_then_be_given_there() {
    let dir = tempfile::tempdir().unwrap();
    let wav = song_of_seed(dir.path(), "6");
    let analyze = |extra: &[&str]| analyze_json(&wav, extra);
    let heard = analyze(&[]);
    assert_succeeded(&heard);
    let beats: Vec<f64> = serde_json::from_value(json_of(&heard.stdout)["beats"].clone()).unwrap();
    let off_beat = (beats[8] + beats[9]) / 2.0;
    let half = format!("{off_beat:.3}");
    let moved = analyze(&["--half-beat", &half, "--bar-line", &half]);
    assert_succeeded(&moved);
    let moved = json_of(&moved.stdout);
    let times = |key: &str| -> Vec<f64> { serde_json::from_value(moved[key].clone()).unwrap() };
    // The song holds one tempo: every beat moves to the middle of a gap of those found.
    let halfway = |t: f64| {
        beats
            .windows(2)
            .any(|w| (t - 0.5 * (w[0] + w[1])).abs() < 0.02 * (w[1] - w[0]))
    };
    let moved_beats = times("beats");
    let on = moved_beats.iter().filter(|&&t| halfway(t)).count();
    assert!(on + 2 >= moved_beats.len(), "{on} of {moved_beats:?}");
    assert!(
        times("downbeats")
            .iter()
            .any(|t| (t - off_beat).abs() < 0.05),
        "the bar line given on the moved beats: {:?}",
        times("downbeats")
    );
    let streaming = analyze(&["--half-beat", &half, "--streaming"]);
    assert_fails_saying(&streaming, "leave out --streaming or --half-beat");
    assert_fails_saying(&analyze(&["--half-beat=-1"]), "expected a time in seconds");
}

/// A beat network that hears nothing: every weight 0, so its beat and downbeat probabilities
/// are the same in every frame.
fn deaf_beat_model(path: &std::path::Path) {
    use cutscore_analysis::beat_model::BeatModelConfig;
    use cutscore_analysis::beat_model::file::{self, BeatProvenance, BeatTrainingMetrics};
    let config = BeatModelConfig {
        channels: 4,
        ..BeatModelConfig::default()
    };
    let weights = file::tensor_shapes(&config)
        .into_iter()
        .map(|(name, shape)| (name, vec![0.0; shape.iter().product()]))
        .collect();
    let metrics = BeatTrainingMetrics::default();
    file::save(
        path,
        &config,
        &weights,
        &metrics,
        &BeatProvenance::default(),
    )
    .unwrap();
}

#[test]
fn a_beat_model_the_user_gives_tracks_the_beats_in_both_trackers() {
    let dir = tempfile::tempdir().unwrap();
    let wav = song_of_seed(dir.path(), "6");
    let truth = read_truth(&dir.path().join("song.truth.json")).unwrap();
    let shipped = dir.path().join("shipped.safetensors");
    std::fs::write(&shipped, cutscore_analysis::beat_model::file::SHIPPED_BYTES).unwrap();
    let deaf = dir.path().join("deaf.safetensors");
    deaf_beat_model(&deaf);
    let beat_f = |tracker: &[&str], model: Option<&std::path::Path>| {
        let mut command = trainer();
        command.arg("analyze").arg(&wav).arg("--json").args(tracker);
        if let Some(model) = model {
            command.arg("--beat-model").arg(model);
        }
        let output = command.output().unwrap();
        assert_succeeded(&output);
        let result = json_of(&output.stdout);
        let beats: Vec<f64> = serde_json::from_value(result["beats"].clone()).unwrap();
        let f = metrics::f_measure(
            &metrics::trim_beats(&truth.beats),
            &metrics::trim_beats(&beats),
        )
        .unwrap_or(0.0);
        (f, result)
    };
    for tracker in [&[][..], &["--streaming"]] {
        // The shipped network read from a file is the one built in, to the last beat.
        let (f, built_in) = beat_f(tracker, None);
        assert!(f > 0.9, "{tracker:?}: F {f}");
        let (_, from_file) = beat_f(tracker, Some(&shipped));
        assert_eq!(from_file, built_in, "{tracker:?}");
        // A network that hears nothing finds no steady beat in the same song.
        let (f, deaf) = beat_f(tracker, Some(&deaf));
        assert!(
            f < 0.5 || deaf["steady_pulse"] == false,
            "{tracker:?}: F {f}, {deaf}"
        );
    }
    // A file that is no beat model is refused by every command that tracks, naming it.
    let edited = dir.path().join("edited.wav");
    for command in [
        &["analyze"][..],
        &["score"],
        &["edit", "--target", "10", "--out", edited.to_str().unwrap()],
    ] {
        let output = trainer()
            .args(command)
            .arg(&wav)
            .arg("--beat-model")
            .arg(&wav)
            .output()
            .unwrap();
        assert_fails_saying(&output, "loading the beat model");
    }
}
