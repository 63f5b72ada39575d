//! Auditions never rise above the song's own peak. A loud master is the hard case: a song
//! driven 12 dB into a hard limit at 0.9 is dense with samples at the peak, so fading two
//! similar bars into each other at equal power would rise up to 3 dB above it. Every cut the
//! plugin could propose on such a song is auditioned from a capture snapshot, as the editor's
//! Audition button does, and none may exceed 0.9.

use cutscore_analysis::analyze_samples;
use cutscore_editing::candidates::{CandidateOptions, bar_beats, candidate_spans};
use cutscore_plugin::actions::audition;
use cutscore_plugin::session::{Capture, Proposal};
use cutscore_synth::{SongSpec, render};

const CEILING: f32 = 0.9;

#[test]
fn auditions_of_a_brickwall_master_stay_under_its_peak() {
    let mut spec = SongSpec::random(21);
    spec.sample_rate = 44_100;
    spec.bars = spec.bars_for_seconds(40.0);
    let song = render(&spec).unwrap();
    let master: Vec<f32> = song
        .samples
        .iter()
        .map(|s| (s * 4.0).clamp(-CEILING, CEILING))
        .collect();
    let at_ceiling = master.iter().filter(|s| s.abs() >= CEILING).count();
    assert!(
        at_ceiling * 100 > master.len(),
        "the master is limited hard ({at_ceiling} of {} samples at the ceiling)",
        master.len()
    );
    let channels = usize::from(song.channels);
    let mono: Vec<f32> = master
        .chunks_exact(channels)
        .map(|f| f.iter().sum::<f32>() / channels as f32)
        .collect();
    let analysis = analyze_samples(&mono, song.sample_rate).unwrap();
    let grid = analysis.grid;

    let mut capture = Capture::new(1, song.sample_rate, song.channels);
    capture.append(&master);
    for (&t, &b) in grid.beats.iter().zip(&grid.beat_in_bar) {
        assert!(capture.push_beat(t, b, grid.meter, 0.0));
    }
    capture.features = analysis.features.as_slice().to_vec();
    let snapshot = capture.snapshot();

    let positions = bar_beats(&grid);
    let spans = candidate_spans(&grid, &CandidateOptions::default());
    assert!(spans.len() >= 50, "{} cuts to audition", spans.len());
    let mut loudest = 0.0f32;
    for &span in &spans {
        let proposal = Proposal::on_grid(&grid, &positions, span, 0.0);
        let samples = audition(&snapshot, &proposal).unwrap();
        assert!(!samples.is_empty());
        loudest = samples.iter().fold(loudest, |m, s| m.max(s.abs()));
    }
    assert!(
        loudest <= CEILING + 1e-6,
        "an audition peaks at {loudest}, above the master's {CEILING}"
    );
}
