//! Soak run of the plugin's real threads: feeds minutes of a synthetic song through the audio
//! thread's tap (blocks of 512 frames) at a chosen speed and reports what the issue asks to
//! measure: the analysis thread's CPU time per second of audio, the time from each new bar to
//! updated proposals, how long proposals wait to be rescored (after the bar lines move, say),
//! the process's resident memory at the end, and how long after the audio stops the grid is
//! settled over the whole capture (`plugin/src/settle.rs`).
//!
//! `cargo run --release -p cutscore-plugin --example soak -- [MINUTES] [SPEED] [RATE]`
//! (defaults: 20 minutes at 8x real time, 48 kHz).

use std::sync::Arc;
use std::time::{Duration, Instant};

use cutscore_plugin::engine::Engine;
use cutscore_plugin::params::CutscoreParams;
use cutscore_plugin::session::{Session, lock};
use cutscore_synth::{SongSpec, render};
use nice_plug_egui::RepaintNotifier;

const BLOCK: usize = 512;

fn main() {
    let args: Vec<f64> = std::env::args()
        .skip(1)
        .map(|a| {
            a.parse()
                .expect("arguments are numbers: MINUTES SPEED RATE")
        })
        .collect();
    let minutes = args.first().copied().unwrap_or(20.0);
    let speed = args.get(1).copied().unwrap_or(8.0);
    let rate = args.get(2).copied().unwrap_or(48_000.0) as u32;

    let mut spec = SongSpec::random(33);
    spec.sample_rate = rate;
    spec.bars = spec.bars_for_seconds(180.0);
    let song = render(&spec).expect("the song renders");
    let frames = song.frames();

    let session = Arc::new(Session::new(None));
    let params = Arc::new(CutscoreParams::default());
    let (engine, mut audio) = Engine::start(&session, &params, &RepaintNotifier::new(), rate, 2)
        .expect("the threads start");
    let rss_start = rss_mb();

    let total = (minutes * 60.0 * f64::from(rate)) as usize;
    let mut left = vec![0f32; BLOCK];
    let mut right = vec![0f32; BLOCK];
    let started = Instant::now();
    let mut latencies = Vec::new();
    let mut last_beats = 0;
    // Spells during which some proposals waited to be (re)scored: when each began, and lengths.
    let mut waiting_since: Option<Instant> = None;
    let mut waits = Vec::new();
    let mut next_poll = Instant::now();
    let mut fed = 0;
    while fed < total {
        for i in 0..BLOCK {
            let frame = (fed + i) % frames;
            left[i] = song.samples[2 * frame];
            right[i] = song.samples[2 * frame + 1];
        }
        let block = [&mut left[..], &mut right[..]];
        audio.tap.capture(&block, true);
        fed += BLOCK;
        let due = started + Duration::from_secs_f64(fed as f64 / f64::from(rate) / speed);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        if Instant::now() >= next_poll {
            next_poll = Instant::now() + Duration::from_millis(20);
            let proposals = lock(&session.proposals);
            if proposals.beats != last_beats {
                last_beats = proposals.beats;
                if let Some(latency) = proposals.latency {
                    latencies.push(latency);
                }
            }
            match (proposals.pending > 0, waiting_since) {
                (true, None) => waiting_since = Some(Instant::now()),
                (false, Some(since)) => {
                    waits.push(since.elapsed());
                    waiting_since = None;
                }
                _ => {}
            }
        }
    }
    // The transport stops: wait for the grid to be settled over the whole capture (which
    // also lets the analysis thread finish the last blocks).
    let stopped = Instant::now();
    let settled_after = loop {
        let capture = lock(&session.capture);
        if capture.is_settled() {
            break Some(stopped.elapsed());
        }
        drop(capture);
        if stopped.elapsed() > Duration::from_secs(300) {
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let wall = started.elapsed();
    let analysis_cpu = thread_cpu("cutscore-analys");
    let scoring_cpu = thread_cpu("cutscore-scorin");
    let model_cpu = thread_cpu("cutscore-model");
    let audio_s = fed as f64 / f64::from(rate);
    let capture = lock(&session.capture);
    let proposals = lock(&session.proposals);
    latencies.sort();
    let pct = |q: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * q).round() as usize)
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "fed {:.1} min of {} Hz stereo in {:.1} s ({speed}x); dropped {} frames",
        audio_s / 60.0,
        rate,
        wall.as_secs_f64(),
        session
            .tap
            .dropped_frames
            .load(std::sync::atomic::Ordering::Relaxed)
    );
    println!(
        "captured {:.1} min, {} beats, {} proposals ({} pending); capture full: {}",
        capture.seconds() / 60.0,
        capture.complete_beats(),
        proposals.ranked.len(),
        proposals.pending,
        capture.full
    );
    println!(
        "analysis thread: {:.2} s CPU for {:.0} s of audio = {:.3} % of one core in real time",
        analysis_cpu,
        audio_s,
        analysis_cpu / audio_s * 100.0
    );
    let process_cpu = process_cpu();
    println!(
        "scoring worker: {scoring_cpu:.2} s CPU, the model's threads {model_cpu:.2} s; the whole \
         process (with this feeder): {process_cpu:.2} s = {:.1} % of one core in real time",
        process_cpu / audio_s * 100.0
    );
    println!("threads over 1 s of CPU: {}", busy_threads(1.0));
    println!(
        "new bar -> updated proposals: median {:.0} ms, p95 {:.0} ms, max {:.0} ms over {} updates",
        pct(0.5),
        pct(0.95),
        pct(1.0),
        latencies.len()
    );
    println!(
        "proposals waiting to be rescored: {} spells, longest {:.1} s{}",
        waits.len(),
        waits.iter().max().map_or(0.0, |d| d.as_secs_f64()),
        waiting_since.map_or(String::new(), |since| format!(
            ", one still running after {:.1} s",
            since.elapsed().as_secs_f64()
        ))
    );
    println!(
        "resident memory: {:.0} MB at start, {:.0} MB after (capture holds {:.0} MB of audio)",
        rss_start,
        rss_mb(),
        capture.audio.samples() as f64 * 4.0 / 1e6
    );
    match settled_after {
        Some(after) => println!(
            "grid settled over the whole capture {:.2} s after the audio stopped (of which \
             {:.2} s waiting for silence): {} beats at {:.1} BPM",
            after.as_secs_f64(),
            cutscore_plugin::settle::SETTLE_AFTER.as_secs_f64(),
            capture.grid.len(),
            capture.tempo_bpm,
        ),
        None => println!("the grid was not settled within 5 minutes of the audio stopping"),
    }
    drop(capture);
    drop(proposals);
    drop(audio);
    drop(engine);
}

fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1000.0)
}

/// CPU seconds (user + system) of the whole process (Linux).
fn process_cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    cpu_seconds(&stat)
}

/// CPU seconds (user + system) of the threads whose names start with `name` (Linux).
fn thread_cpu(name: &str) -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return f64::NAN;
    };
    tasks
        .flatten()
        .filter(|task| {
            std::fs::read_to_string(task.path().join("comm"))
                .is_ok_and(|comm| comm.trim().starts_with(name))
        })
        .map(|task| {
            let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
            cpu_seconds(&stat)
        })
        .sum()
}

/// "name: seconds" of every thread that used more than `over` seconds of CPU (Linux).
fn busy_threads(over: f64) -> String {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return String::new();
    };
    let mut busy: Vec<(String, f64)> = tasks
        .flatten()
        .map(|task| {
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
            (comm.trim().to_string(), cpu_seconds(&stat))
        })
        .filter(|(_, cpu)| *cpu > over)
        .collect();
    busy.sort_by(|a, b| b.1.total_cmp(&a.1));
    busy.iter()
        .map(|(name, cpu)| format!("{name} {cpu:.1} s"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// utime + stime of a `/proc/.../stat` line, in seconds.
fn cpu_seconds(stat: &str) -> f64 {
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
    // After the command name: state is field 3, utime 14 and stime 15 (1-based).
    let ticks = |i: usize| fields.get(i - 3).and_then(|f| f.parse::<f64>().ok());
    match (ticks(14), ticks(15)) {
        (Some(user), Some(system)) => (user + system) / 100.0,
        _ => f64::NAN,
    }
}
