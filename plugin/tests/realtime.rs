//! Real-time safety of everything `process()` calls, and clean thread lifetimes.
//!
//! - The audio thread's work (capturing into the ring, playing auditions) runs inside
//!   `assert_no_alloc` (nice-plug's `assert_process_allocs` puts the allocation checker in
//!   this test binary): block sizes 1 to 4096, a full ring, NaN/Inf/denormal input, auditions
//!   starting and being cut off by the transport.
//! - 100 activations' worth of engine start/stop leave no threads and no memory behind.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use cutscore_plugin::engine::Engine;
use cutscore_plugin::params::CutscoreParams;
use cutscore_plugin::session::{Session, lock};
use cutscore_plugin::tap::{AudioTap, AuditionFlags, AuditionPlayer, TapStats};
use nice_assert_no_alloc::assert_no_alloc;
use nice_plug_egui::RepaintNotifier;

fn blocks(channels: &mut [Vec<f32>], frames: usize) -> Vec<&mut [f32]> {
    channels.iter_mut().map(|c| &mut c[..frames]).collect()
}

#[test]
fn the_audio_thread_path_never_allocates() {
    let stats = Arc::new(TapStats::default());
    let (mut tap, mut ring) = AudioTap::new(2, 16_384, stats.clone());
    let flags = Arc::new(AuditionFlags::default());
    let (mut player, mut feed) = AuditionPlayer::new(2, 48_000, flags.clone());
    let mut channels = vec![vec![0f32; 4096]; 2];
    let specials = [f32::NAN, f32::INFINITY, f32::MIN_POSITIVE / 8.0, -0.5];
    let mut drained = Vec::with_capacity(2 * 48_000);
    for (round, frames) in [
        1usize, 2, 3, 64, 511, 4096, 4096, 4096, 4096, 4096, 4096, 4096, 4096, 4096, 4096, 4096,
        4096, 4096, 1,
    ]
    .into_iter()
    .enumerate()
    {
        for (i, s) in channels[0].iter_mut().enumerate() {
            *s = specials[(i + round) % specials.len()];
        }
        for (i, s) in channels[1].iter_mut().enumerate() {
            *s = (i as f32 * 0.01).sin();
        }
        if round == 8 {
            for s in [0.25f32; 512] {
                feed.push(s).unwrap();
            }
            flags.active.store(true, Ordering::Release);
        }
        let playing = round % 3 == 0;
        let mut block = blocks(&mut channels, frames);
        assert_no_alloc(|| {
            tap.capture(&block, playing);
            player.play(&mut block, playing);
        });
        if round == 12 {
            // The analysis thread catches up now and then.
            while let Ok(s) = ring.pop() {
                drained.push(s);
            }
        }
    }
    assert!(
        stats.dropped_frames.load(Ordering::Relaxed) > 0,
        "the ring filled up"
    );
    assert!(
        stats.frames.load(Ordering::Relaxed) > 16_384,
        "the drained ring took more"
    );
    assert!(
        drained.iter().any(|s| s.is_nan()),
        "the tap copies samples as they are"
    );
    assert!(
        !flags.active.load(Ordering::Acquire),
        "the transport cut the audition off"
    );
}

fn rss_kb() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn threads() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|n| n.trim().parse().ok())
        })
        .unwrap_or(0)
}

#[test]
fn engines_start_and_stop_without_leaving_threads() {
    let session = Arc::new(Session::new(None));
    let params = Arc::new(CutscoreParams::default());
    let repaint = RepaintNotifier::new();
    let cycle = |round: usize| {
        let rate = [44_100, 48_000, 96_000][round % 3];
        let (engine, mut audio) = Engine::start(&session, &params, &repaint, rate, 2).unwrap();
        let mut channels = vec![vec![0.1f32; 256]; 2];
        audio.tap.capture(&blocks(&mut channels, 256), true);
        drop(audio);
        drop(engine);
    };
    // Warm up: the first cycles fill the allocator's and candle's pools.
    for round in 0..10 {
        cycle(round);
    }
    let before = threads();
    let memory_before = rss_kb();
    for round in 0..100 {
        cycle(round);
    }
    // The last engine's worker loaded the shipped model before it stopped.
    let deadline = Instant::now() + Duration::from_secs(5);
    while threads() > before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        threads() <= before,
        "{} threads before, {} after",
        before,
        threads()
    );
    let growth_mb = (rss_kb() as f64 - memory_before as f64) / 1000.0;
    eprintln!("resident memory change over 100 activations: {growth_mb:+.1} MB");
    assert!(
        growth_mb < 16.0,
        "resident memory grew by {growth_mb:.1} MB over 100 activations"
    );
    assert!(lock(&session.jobs).is_some());
}
