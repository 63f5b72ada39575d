//! Real-time safety of everything `process()` calls, and clean thread lifetimes.
//!
//! - The audio thread's work (capturing into the ring, playing auditions) runs inside
//!   `assert_no_alloc` (nice-plug's `assert_process_allocs` puts the allocation checker in
//!   this test binary): block sizes 1 to 4096, a full ring, NaN/Inf/denormal input, auditions
//!   starting and being cut off by the transport, the host's position read from its transport
//!   and jumping (segment starts queued for the analysis thread).
//! - Bypassed, the audio thread ([`AudioEnds::process`]) passes the input through bit for bit,
//!   captures nothing and stops a playing audition; un-bypassed it captures again.
//! - 100 activations' worth of engine start/stop leave no threads and no memory behind (glibc's
//!   mmap threshold fixed, so freed rings and models are returned and the resident size says so).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use cutscore_plugin::engine::{AudioEnds, Engine};
use cutscore_plugin::params::CutscoreParams;
use cutscore_plugin::session::{Session, lock};
use cutscore_plugin::tap::{AudioTap, AuditionFlags, AuditionPlayer, HostPosition, TapStats};
use nice_assert_no_alloc::assert_no_alloc;
use nice_plug::prelude::Transport;
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
    let mut transport = Transport::new(48_000.0);
    transport.tempo = Some(128.0);
    transport.time_sig_numerator = Some(4);
    transport.time_sig_denominator = Some(4);
    let mut position = 0i64;
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
        if round == 9 {
            position = 1_000; // a jump (a loop)
        }
        transport.playing = playing;
        transport.pos_samples = Some(position);
        position += frames as i64;
        let mut block = blocks(&mut channels, frames);
        assert_no_alloc(|| {
            let host = HostPosition::from_transport(&transport);
            tap.capture_at(&block, host);
            player.play(&mut block, host.playing);
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

/// What the analysis thread does when an audition starts: queues `frames` stereo frames of 0.25
/// and raises the flags.
fn queue_audition(feed: &mut rtrb::Producer<f32>, flags: &AuditionFlags, frames: usize) {
    for _ in 0..2 * frames {
        feed.push(0.25).unwrap();
    }
    flags.fed_all.store(true, Ordering::Release);
    flags.active.store(true, Ordering::Release);
}

#[test]
fn a_bypassed_plugin_stops_the_audition_and_does_not_capture() {
    let stats = Arc::new(TapStats::default());
    let (tap, mut ring) = AudioTap::new(2, 16_384, stats.clone());
    let flags = Arc::new(AuditionFlags::default());
    let (player, mut feed) = AuditionPlayer::new(2, 4_800, flags.clone());
    let feed_capacity = feed.buffer().capacity();
    let mut audio = AudioEnds { tap, player };
    let input: Vec<Vec<f32>> = (0..2)
        .map(|c| {
            (0..4096)
                .map(|i| ((i + 100 * c) as f32 * 0.01).sin())
                .collect()
        })
        .collect();

    // Not bypassed, transport stopped: the audition replaces the output and the input is
    // captured.
    queue_audition(&mut feed, &flags, 2_048);
    let mut channels = input.clone();
    let mut block = blocks(&mut channels, 256);
    assert_no_alloc(|| audio.process(&mut block, HostPosition::playing(false), false));
    assert!(
        channels.iter().all(|c| c[..256].iter().all(|&s| s == 0.25)),
        "the audition plays while not bypassed"
    );
    assert_eq!(ring.slots(), 2 * 256, "the block was captured");
    assert!(flags.active.load(Ordering::Acquire));
    let captured = stats.frames.load(Ordering::Relaxed);
    let silent = stats.silent_blocks.load(Ordering::Relaxed);

    // Bypassed: the audition stops at once, whatever the transport, and nothing is captured.
    for (round, frames) in [1usize, 64, 511, 4096, 4096].into_iter().enumerate() {
        let playing = round % 2 == 1;
        if round == 3 {
            // The feeder starts an audition while bypassed (a click on Audition).
            queue_audition(&mut feed, &flags, 1_024);
        }
        let mut channels = input.clone();
        let mut block = blocks(&mut channels, frames);
        assert_no_alloc(|| audio.process(&mut block, HostPosition::playing(playing), true));
        for (c, (out, inp)) in channels.iter().zip(&input).enumerate() {
            assert!(
                out[..frames]
                    .iter()
                    .zip(&inp[..frames])
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "round {round}: bypassed, channel {c} is not the input"
            );
        }
        assert!(
            !flags.active.load(Ordering::Acquire),
            "round {round}: the audition still runs while bypassed"
        );
        assert_eq!(
            feed.slots(),
            feed_capacity,
            "round {round}: queued audition audio was not discarded"
        );
    }
    assert_eq!(
        stats.frames.load(Ordering::Relaxed),
        captured,
        "a bypassed plugin captured audio"
    );
    assert_eq!(stats.dropped_frames.load(Ordering::Relaxed), 0);
    assert_eq!(stats.silent_blocks.load(Ordering::Relaxed), silent);
    assert_eq!(ring.slots(), 2 * 256, "nothing reached the ring");

    // Bypass off: capturing resumes, and the input passes (no audition is on).
    let mut channels = input.clone();
    let mut block = blocks(&mut channels, 512);
    assert_no_alloc(|| audio.process(&mut block, HostPosition::playing(true), false));
    assert_eq!(channels, input);
    assert_eq!(stats.frames.load(Ordering::Relaxed), captured + 512);
    let first: Vec<f32> = (0..2).map(|_| ring.pop().unwrap()).collect();
    assert_eq!(first, [input[0][0], input[1][0]]);
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
    // glibc keeps freed blocks above its (growing) mmap threshold in its heaps, so the
    // resident size of 100 activations (each allocating its rings and a model) swung by
    // -10 to +32 MB with no leak at all; a fixed threshold returns large blocks when freed.
    // SAFETY: `mallopt` only sets an allocator parameter; no allocation is in flight.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
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
