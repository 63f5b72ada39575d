//! Scores the offline and streaming beat trackers on the synthetic evaluation set.
//!
//! `cargo run --release -p cutscore-training --example beat_eval` renders every song of
//! `synth::evaluation_set()`, runs both trackers (the streaming one in 512-frame host blocks)
//! and prints per-song and mean F-measure, CMLt, AMLt and downbeat F (mir_eval rules, first
//! 5 s discarded), tempo, and the streaming tracker's time to lock.

use cutscore_synth::evaluation_set;
use cutscore_training::beat_eval::{SongReport, evaluate_song};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut reports: Vec<SongReport> = Vec::new();
    println!(
        "{:<22} {:>5} {:>2} | {:>6} {:>5} {:>5} {:>5} {:>5} {:>2} | {:>6} {:>5} {:>5} {:>5} {:>5} {:>6} {:>5}",
        "song",
        "bpm",
        "m",
        "tempo",
        "F",
        "CMLt",
        "AMLt",
        "DbF",
        "m",
        "tempo",
        "F",
        "CMLt",
        "AMLt",
        "DbF",
        "lock_s",
        "lockB"
    );
    for (name, spec) in evaluation_set() {
        let r = evaluate_song(&name, &spec)?;
        println!(
            "{:<22} {:>5.1} {:>2} | {:>6.1} {:>5.3} {:>5.3} {:>5.3} {:>5.3} {:>2} | {:>6.1} {:>5.3} {:>5.3} {:>5.3} {:>5.3} {:>6} {:>5}",
            r.name,
            r.true_bpm,
            r.meter,
            r.offline.tempo_bpm,
            r.offline.beats.f_measure,
            r.offline.beats.cml_t,
            r.offline.beats.aml_t,
            r.offline.downbeat_f,
            r.offline_meter,
            r.streaming.tempo_bpm,
            r.streaming.beats.f_measure,
            r.streaming.beats.cml_t,
            r.streaming.beats.aml_t,
            r.streaming.downbeat_f,
            r.lock_s.map_or("never".to_owned(), |s| format!("{s:.2}")),
            r.lock_beats_after_drums
                .map_or("-".to_owned(), |b| b.to_string()),
        );
        reports.push(r);
    }
    let summary = |label: &str, set: &[&SongReport]| {
        let n = set.len().max(1) as f64;
        let mean = |f: &dyn Fn(&SongReport) -> f64| set.iter().map(|r| f(r)).sum::<f64>() / n;
        println!(
            "{label:<30} offline F {:.3} CMLt {:.3} AMLt {:.3} DbF {:.3} | streaming F {:.3} CMLt {:.3} AMLt {:.3} DbF {:.3} ({} songs)",
            mean(&|r| r.offline.beats.f_measure),
            mean(&|r| r.offline.beats.cml_t),
            mean(&|r| r.offline.beats.aml_t),
            mean(&|r| r.offline.downbeat_f),
            mean(&|r| r.streaming.beats.f_measure),
            mean(&|r| r.streaming.beats.cml_t),
            mean(&|r| r.streaming.beats.aml_t),
            mean(&|r| r.streaming.downbeat_f),
            set.len(),
        );
    };
    let all: Vec<&SongReport> = reports.iter().collect();
    let steady: Vec<&SongReport> = reports.iter().filter(|r| r.has_drums).collect();
    summary("mean, all songs", &all);
    summary("mean, songs with drums", &steady);
    let locks: Vec<usize> = steady
        .iter()
        .filter_map(|r| r.lock_beats_after_drums)
        .collect();
    let within = locks.iter().filter(|&&b| b <= 4).count();
    println!(
        "streaming lock: {within} of {} songs with drums locked within 4 beats of the drums entering; beats to lock: {locks:?}",
        steady.len()
    );
    Ok(())
}
