//! Speed of the analysis (criterion).
//!
//! - `analyze_file/4min_wav`: decode a 4-minute 44.1 kHz stereo WAV, resample, front end,
//!   offline beats and bars, and the 121 features of every beat. The goal is >= 1000x real
//!   time on one core, i.e. under 240 ms.
//! - `streaming/push_512`: one 512-frame stereo block at 44.1 kHz through the streaming
//!   analyzer (resampling, frames, tempo, beats). The goal is <= 1 % of the block's 11.6 ms,
//!   i.e. under 116 us.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use cutscore_analysis::{StreamingAnalyzer, analyze_file};
use cutscore_synth::{SongSpec, render, write_wav};

fn song_of(seconds: f64) -> cutscore_synth::Song {
    let mut spec = SongSpec {
        seed: 42,
        bpm: 126.0,
        meter: 4,
        ..SongSpec::default()
    };
    spec.bars = spec.bars_for_seconds(seconds);
    render(&spec).expect("valid spec")
}

fn offline(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("four_minutes.wav");
    write_wav(&path, &song_of(240.0)).expect("wav written");
    let mut group = c.benchmark_group("analyze_file");
    group.sample_size(10);
    group.bench_function("4min_wav", |b| {
        b.iter(|| black_box(analyze_file(&path).expect("analysed")))
    });
    group.finish();
}

fn streaming(c: &mut Criterion) {
    let song = song_of(60.0);
    let mut analyzer = StreamingAnalyzer::new();
    analyzer.prepare(512, song.sample_rate).expect("prepared");
    let blocks: Vec<&[f32]> = song.samples.chunks_exact(1024).collect();
    let mut next = 0usize;
    c.bench_function("streaming/push_512", |b| {
        b.iter(|| {
            analyzer
                .push_interleaved(blocks[next % blocks.len()], 2)
                .expect("pushed");
            while let Some(beat) = analyzer.poll_beat() {
                black_box(beat);
            }
            next += 1;
        })
    });
}

criterion_group!(benches, offline, streaming);
criterion_main!(benches);
