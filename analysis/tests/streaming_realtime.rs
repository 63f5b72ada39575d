//! The streaming analyzer's real-time contract and its agreement with the offline path.
//!
//! - After `prepare`, pushing audio, polling beats and computing features allocate nothing:
//!   `assert_no_alloc` replaces the global allocator in this test binary and aborts on any
//!   allocation inside `assert_no_alloc(..)`.
//! - Given the same beat grid, the streaming and offline paths give the same 121 features
//!   (to 1e-5).

#[cfg(debug_assertions)]
use assert_no_alloc::AllocDisabler;
use assert_no_alloc::assert_no_alloc;
use cutscore_analysis::{StreamingAnalyzer, features_for_grid};
use cutscore_core::features::BEAT_FEATURES;
use cutscore_synth::{SongSpec, render};

#[cfg(debug_assertions)]
#[global_allocator]
static ALLOCATOR: AllocDisabler = AllocDisabler;

fn short_song(seconds: f64) -> cutscore_synth::Song {
    let mut spec = SongSpec {
        seed: 11,
        bpm: 124.0,
        meter: 4,
        ..SongSpec::default()
    };
    spec.bars = spec.bars_for_seconds(seconds);
    render(&spec).expect("the spec is valid")
}

#[test]
fn pushing_polling_and_features_allocate_nothing() {
    let song = short_song(20.0);
    let grid = song.truth.grid().unwrap();
    for block in [64usize, 512, 1024] {
        let mut analyzer = StreamingAnalyzer::new();
        analyzer.prepare(block, song.sample_rate).unwrap();
        let mut row = vec![0.0f32; BEAT_FEATURES];
        let mut beats = 0usize;
        let mut featurised = 0usize;
        let mut next_feature_beat = 0usize;
        for chunk in song.samples.chunks(block * 2) {
            assert_no_alloc(|| {
                analyzer.push_interleaved(chunk, 2).unwrap();
                while analyzer.poll_beat().is_some() {
                    beats += 1;
                }
                // The plugin featurises each beat once it is complete.
                while next_feature_beat + 1 < grid.len()
                    && analyzer
                        .features_into(&grid, next_feature_beat, &mut row)
                        .is_ok()
                {
                    next_feature_beat += 1;
                    featurised += 1;
                }
            });
        }
        assert_no_alloc(|| analyzer.finish().unwrap());
        assert!(beats > 30, "block {block}: {beats} beats");
        assert!(
            featurised > 30,
            "block {block}: {featurised} beats featurised"
        );
    }
}

#[test]
fn streaming_and_offline_features_agree_on_the_same_grid() {
    let song = short_song(16.0);
    let grid = song.truth.grid().unwrap();
    let offline = features_for_grid(&song.mono(), song.sample_rate, &grid).unwrap();
    for block in [100usize, 512] {
        let mut analyzer = StreamingAnalyzer::new();
        analyzer.prepare(block, song.sample_rate).unwrap();
        for chunk in song.samples.chunks(block * 2) {
            analyzer.push_interleaved(chunk, 2).unwrap();
        }
        analyzer.finish().unwrap();
        let mut row = vec![0.0f32; BEAT_FEATURES];
        for beat in 0..grid.len() {
            analyzer.features_into(&grid, beat, &mut row).unwrap();
            for (i, (&s, &o)) in row.iter().zip(offline.row(beat)).enumerate() {
                assert!(
                    (s - o).abs() <= 1e-5,
                    "block {block}, beat {beat}, feature {i}: streaming {s} vs offline {o}"
                );
            }
        }
    }
}

#[test]
fn memory_stays_bounded_and_old_frames_are_refused_clearly() {
    // 200 s of audio: more than the 95 s frame ring holds.
    let song = short_song(30.0);
    let grid = song.truth.grid().unwrap();
    let mut analyzer = StreamingAnalyzer::new();
    analyzer.prepare(512, song.sample_rate).unwrap();
    for _ in 0..7 {
        for chunk in song.samples.chunks(1024) {
            analyzer.push_interleaved(chunk, 2).unwrap();
            while analyzer.poll_beat().is_some() {}
        }
    }
    let mut row = vec![0.0f32; BEAT_FEATURES];
    let error = analyzer.features_into(&grid, 10, &mut row).unwrap_err();
    assert!(error.to_string().contains("only frames"), "{error}");
}
