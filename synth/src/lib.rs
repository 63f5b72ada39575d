//! `cutscore-synth`: synthetic songs with exact ground truth: beats, downbeats, meter,
//! sections, drum entry.
//!
//! Beat trackers are evaluated, tests are written and training songs are generated on these
//! songs, so they are deterministic (the same [`SongSpec`] renders the same samples) and their
//! truth is exact: beat `i` starts on sample `round(truth.beats[i] * sample_rate)`, where the
//! drums (when playing) put a hit whose first sample is at full level.
//!
//! - [`spec`]: what a song should be ([`SongSpec`], [`TempoChange`], [`SongSpec::random`],
//!   [`evaluation_set`]);
//! - `score`: the arrangement drawn from the seed (form, chords, patterns, notes); [`compose`]
//!   returns it as a [`Score`] without synthesising it, for renderers outside this crate;
//! - `voices`: the instruments and the stereo mix;
//! - [`truth`]: the ground truth ([`SongTruth`], [`Section`]);
//! - [`wav`]: writing WAV + `*.truth.json` files.
//!
//! The method is plain subtractive/additive synthesis of a pop-style arrangement (see `score`
//! and `voices`); nothing is sampled, so no audio assets are needed.

mod score;
pub mod spec;
pub mod truth;
mod voices;
pub mod wav;

use rand::SeedableRng;
use rand::rngs::StdRng;

pub use spec::{SongSpec, TempoChange, evaluation_set};
pub use truth::{Section, SongTruth};
pub use wav::{SongFileError, read_truth, truth_path_for, write_truth, write_wav};

pub use score::{Note, Part, Score};

use voices::{DrumKit, Mix, Timbre, Voice, Wave};

/// Peak level of the normalised mix (-1 dBFS), so 16-bit export never clips.
pub const PEAK: f32 = 0.89;

/// Why a spec cannot be rendered.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SynthError {
    #[error("tempo of {bpm} BPM; expected {min} to {max} BPM")]
    Tempo { bpm: f64, min: f64, max: f64 },
    #[error("meter of {actual} beats per bar; expected 3 or 4")]
    Meter { actual: u8 },
    #[error("swing of {actual}; expected 0 (straight) to {max}")]
    Swing { actual: f32, max: f32 },
    #[error("sample rate of {actual} Hz; expected {min} to {max} Hz")]
    SampleRate { actual: u32, min: u32, max: u32 },
    #[error("{actual} bars; expected at least {expected} for the sections asked for")]
    TooFewBars { expected: usize, actual: usize },
    #[error("tempo step at bar {at_bar} of a {bars}-bar song; expected a bar from 1 to {}", bars - 1)]
    StepBar { at_bar: usize, bars: usize },
    #[error("song would last up to {actual_s:.0} s; expected at most {max_s:.0} s")]
    TooLong { max_s: f64, actual_s: f64 },
}

/// A rendered song: interleaved stereo samples and their ground truth.
#[derive(Debug, Clone, PartialEq)]
pub struct Song {
    /// Samples per second.
    pub sample_rate: u32,
    /// Always 2 (interleaved left, right).
    pub channels: u16,
    /// Interleaved samples, peak-normalised to [`PEAK`].
    pub samples: Vec<f32>,
    /// Where the beats, bars and sections are.
    pub truth: SongTruth,
}

impl Song {
    /// Number of frames (samples per channel).
    pub fn frames(&self) -> usize {
        self.samples.len() / usize::from(self.channels.max(1))
    }

    /// The average of the channels, the form mono analysis reads.
    pub fn mono(&self) -> Vec<f32> {
        let channels = usize::from(self.channels.max(1));
        self.samples
            .chunks_exact(channels)
            .map(|frame| frame.iter().sum::<f32>() / channels as f32)
            .collect()
    }
}

/// Composes `spec` without synthesising it: the notes [`render`] would play, their frame count
/// and the truth `render` would return.
pub fn compose(spec: &SongSpec) -> Result<Score, SynthError> {
    composed(spec).map(|(score, _)| score)
}

/// The score of `spec` and the seed's stream just after composing it (timbres come next).
fn composed(spec: &SongSpec) -> Result<(Score, StdRng), SynthError> {
    spec.validate()?;
    let mut rng = StdRng::seed_from_u64(spec.seed);
    let score = score::compose(spec, &mut rng);
    Ok((score, rng))
}

/// Renders `spec`: composes the arrangement from its seed, synthesises every part and
/// normalises the mix.
pub fn render(spec: &SongSpec) -> Result<Song, SynthError> {
    let (score, mut rng) = composed(spec)?;
    let timbre = Timbre::draw(&mut rng);
    let kit = DrumKit::render(&timbre, spec.sample_rate, &mut rng);
    let mut mix = Mix::new(score.frames);
    let mut scratch = Vec::new();
    let pad = Voice {
        wave: timbre.pad_wave,
        cutoff_hz: timbre.pad_cutoff_hz,
        attack_s: timbre.pad_attack_s,
        decay_s: 0.5,
        sustain: 0.7,
        release_s: 0.15,
        vibrato_hz: 0.0,
    };
    let bass = Voice {
        wave: timbre.bass_wave,
        cutoff_hz: timbre.bass_cutoff_hz,
        attack_s: 0.003,
        decay_s: 0.3,
        sustain: 0.6,
        release_s: 0.04,
        vibrato_hz: 0.0,
    };
    let arp = Voice {
        wave: timbre.arp_wave,
        cutoff_hz: 3000.0,
        attack_s: 0.0,
        decay_s: timbre.arp_decay_s,
        sustain: 0.0,
        release_s: 0.05,
        vibrato_hz: 0.0,
    };
    let lead = Voice {
        wave: timbre.lead_wave,
        cutoff_hz: if timbre.lead_wave == Wave::Square {
            2500.0
        } else {
            8000.0
        },
        attack_s: 0.01,
        decay_s: 0.4,
        sustain: 0.6,
        release_s: 0.08,
        vibrato_hz: timbre.lead_vibrato_hz,
    };
    let detune = timbre.pad_detune_cents / 100.0;
    for note in &score.notes {
        let v = note.velocity;
        match note.part {
            Part::Kick => mix.add(note.start, &kit.kick, v, 0.0),
            Part::Snare => mix.add(note.start, &kit.snare, v, 0.05),
            Part::ClosedHat => mix.add(note.start, &kit.closed_hat, v, timbre.hat_pan),
            Part::OpenHat => mix.add(note.start, &kit.open_hat, v, timbre.hat_pan),
            Part::Crash => mix.add(note.start, &kit.crash, v, -timbre.hat_pan),
            Part::Bass => {
                bass.render_into(note.midi, note.held, spec.sample_rate, &mut scratch);
                mix.add(note.start, &scratch, v, 0.0);
            }
            Part::Pad => {
                pad.render_into(
                    note.midi - detune / 2.0,
                    note.held,
                    spec.sample_rate,
                    &mut scratch,
                );
                mix.add(note.start, &scratch, v, -0.6);
                pad.render_into(
                    note.midi + detune / 2.0,
                    note.held,
                    spec.sample_rate,
                    &mut scratch,
                );
                mix.add(note.start, &scratch, v, 0.6);
            }
            Part::Arp => {
                arp.render_into(note.midi, note.held, spec.sample_rate, &mut scratch);
                mix.add(note.start, &scratch, v, 0.3);
            }
            Part::Lead => {
                lead.render_into(note.midi, note.held, spec.sample_rate, &mut scratch);
                mix.add(note.start, &scratch, v, timbre.lead_pan);
            }
        }
    }
    mix.normalise(PEAK);
    Ok(Song {
        sample_rate: spec.sample_rate,
        channels: 2,
        samples: mix.samples,
        truth: score.truth,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn short(edit: impl FnOnce(&mut SongSpec)) -> SongSpec {
        let mut spec = SongSpec {
            seed: 7,
            bars: 12,
            sample_rate: 22_050,
            ..SongSpec::default()
        };
        edit(&mut spec);
        spec
    }

    fn rms(x: &[f32]) -> f32 {
        (x.iter().map(|v| v * v).sum::<f32>() / x.len().max(1) as f32).sqrt()
    }

    #[test]
    fn same_spec_renders_the_same_samples_and_seeds_differ() {
        let spec = short(|_| {});
        let a = render(&spec).unwrap();
        assert_eq!(a, render(&spec).unwrap());
        let b = render(&SongSpec { seed: 8, ..spec }).unwrap();
        assert_ne!(a.samples, b.samples);
    }

    #[test]
    fn mix_is_finite_stereo_and_peaks_just_below_full_scale() {
        for spec in [
            short(|_| {}),
            short(|s| s.drums = false),
            short(|s| s.meter = 3),
        ] {
            let song = render(&spec).unwrap();
            assert_eq!(song.channels, 2);
            assert_eq!(song.samples.len() % 2, 0);
            assert!(song.samples.iter().all(|x| x.is_finite()));
            let peak = song.samples.iter().fold(0.0f32, |m, x| m.max(x.abs()));
            assert!((peak - PEAK).abs() < 1e-4, "peak {peak}");
            let (left, right): (Vec<f32>, Vec<f32>) =
                song.samples.chunks(2).map(|f| (f[0], f[1])).unzip();
            assert_ne!(left, right, "the mix is panned, not mono");
            assert_eq!(song.frames() as f64 / 22_050.0, song.truth.duration_s);
        }
    }

    #[test]
    fn truth_is_a_consistent_grid_with_a_downbeat_every_meter_beats() {
        for meter in [3u8, 4] {
            let song = render(&short(|s| s.meter = meter)).unwrap();
            let truth = &song.truth;
            let grid = truth.grid().unwrap();
            assert_eq!(grid.len(), 12 * usize::from(meter));
            assert_eq!(truth.meter, meter);
            assert!(
                truth
                    .beat_in_bar
                    .iter()
                    .enumerate()
                    .all(|(i, &p)| usize::from(p) == i % usize::from(meter))
            );
            let downbeats: Vec<f64> = grid.bar_starts().iter().map(|&i| grid.beats[i]).collect();
            assert_eq!(downbeats, truth.downbeats);
            assert_eq!(truth.downbeats.len(), 12);
            // Every beat is on a whole sample.
            for &t in &truth.beats {
                let frame = t * 22_050.0;
                assert!((frame - frame.round()).abs() < 1e-6);
            }
            let period = 60.0 / truth.bpm;
            assert!((grid.beat_period().unwrap() - period).abs() < 1.0 / 22_050.0);
            // Sections tile the bars, start on downbeats and end where the next starts.
            let mut bar = 0;
            for section in &truth.sections {
                assert_eq!(section.start_bar, bar);
                assert_eq!(section.start_s, truth.downbeats[bar]);
                bar += section.bars;
            }
            assert_eq!(bar, 12);
            assert!(
                truth
                    .sections
                    .windows(2)
                    .all(|w| w[0].end_s == w[1].start_s)
            );
            assert!(truth.duration_s > *truth.beats.last().unwrap() + period);
        }
    }

    #[test]
    fn tempo_ramps_and_steps_show_in_the_beat_periods() {
        let periods = |truth: &SongTruth| -> Vec<f64> {
            truth.beats.windows(2).map(|w| w[1] - w[0]).collect()
        };
        let tick = 1.0 / 22_050.0;
        let ramp = render(&short(|s| s.tempo = TempoChange::Ramp { to_bpm: 150.0 })).unwrap();
        let p = periods(&ramp.truth);
        assert!((p[0] - 60.0 / 120.0).abs() < 2.0 * tick);
        assert!((p[p.len() - 1] - 60.0 / 150.0).abs() < 0.01);
        assert!(
            p.windows(2).all(|w| w[1] <= w[0] + 2.0 * tick),
            "periods shrink"
        );

        let step = render(&short(|s| {
            s.tempo = TempoChange::Step {
                at_bar: 6,
                to_bpm: 90.0,
            }
        }))
        .unwrap();
        let p = periods(&step.truth);
        assert!(p[..24].iter().all(|&x| (x - 0.5).abs() < 2.0 * tick));
        assert!(
            p[24..]
                .iter()
                .all(|&x| (x - 60.0 / 90.0).abs() < 2.0 * tick)
        );
        assert_eq!(step.truth.bpm, 120.0);
    }

    #[test]
    fn energy_jumps_at_every_kick_bearing_beat() {
        for spec in [
            short(|_| {}),
            short(|s| {
                s.meter = 3;
                s.bpm = 170.0;
                s.swing = 0.3
            }),
        ] {
            let mut rng = StdRng::seed_from_u64(spec.seed);
            let score = score::compose(&spec, &mut rng);
            let song = render(&spec).unwrap();
            let mono = song.mono();
            let window = (0.005 * f64::from(spec.sample_rate)) as usize;
            let beat_frames: Vec<usize> = song
                .truth
                .beats
                .iter()
                .map(|t| (t * f64::from(spec.sample_rate)).round() as usize)
                .collect();
            let kicks: Vec<usize> = score
                .notes
                .iter()
                .filter(|n| n.part == Part::Kick)
                .map(|n| n.start)
                .filter(|start| beat_frames.contains(start))
                .collect();
            assert!(kicks.len() >= 12, "{} kicks on beats", kicks.len());
            for &k in &kicks {
                let before = rms(&mono[k - window..k]);
                let after = rms(&mono[k..k + window]);
                // What sounds before a kick is the tail of a snare, open hat or bass note.
                assert!(
                    after > 1.5 * before,
                    "kick at frame {k}: {before} -> {after}"
                );
            }
        }
    }

    #[test]
    fn every_downbeat_with_drums_has_a_kick_on_its_exact_sample() {
        let spec = short(|_| {});
        let mut rng = StdRng::seed_from_u64(spec.seed);
        let score = score::compose(&spec, &mut rng);
        for &t in &score.truth.downbeats {
            let frame = (t * 22_050.0).round() as usize;
            assert!(
                score
                    .notes
                    .iter()
                    .any(|n| n.part == Part::Kick && n.start == frame),
                "no kick at downbeat {t}"
            );
        }
    }

    #[test]
    fn drums_follow_the_form() {
        let no_drums = render(&short(|s| s.drums = false)).unwrap();
        assert_eq!(no_drums.truth.drums_enter_s, None);

        let spec = short(|s| {
            s.quiet_intro = true;
            s.breakdown = true;
            s.bars = 28;
        });
        let mut rng = StdRng::seed_from_u64(spec.seed);
        let score = score::compose(&spec, &mut rng);
        let truth = &score.truth;
        let names: Vec<&str> = truth.sections.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names[0], "intro");
        assert_eq!(truth.sections[0].bars, 8);
        assert_eq!(truth.drums_enter_s, Some(truth.downbeats[8]));
        let breakdown = truth
            .sections
            .iter()
            .find(|s| s.name == "breakdown")
            .unwrap();
        assert_eq!(breakdown.bars, 8);
        let drum_times: Vec<f64> = score
            .notes
            .iter()
            .filter(|n| n.part.is_drum())
            .map(|n| n.start as f64 / 22_050.0)
            .collect();
        assert!(
            !drum_times
                .iter()
                .any(|&t| breakdown.start_s <= t && t < breakdown.end_s)
        );
        assert!(
            drum_times.iter().any(|&t| t >= breakdown.end_s),
            "drums come back"
        );

        // The quiet intro is much quieter than what follows.
        let song = render(&spec).unwrap();
        let mono = song.mono();
        let at = |t: f64| (t * 22_050.0) as usize;
        let intro = rms(&mono[at(truth.sections[0].start_s)..at(truth.sections[0].end_s)]);
        let next = &truth.sections[1];
        let after = rms(&mono[at(next.start_s)..at(next.end_s)]);
        assert!(after > 2.0 * intro, "intro {intro}, {} {after}", next.name);
    }

    #[test]
    fn the_chorus_is_louder_than_the_intro() {
        let spec = short(|s| s.bars = 24);
        let song = render(&spec).unwrap();
        let mono = song.mono();
        let loudness = |name: &str| {
            let s = song.truth.sections.iter().find(|s| s.name == name).unwrap();
            rms(&mono[(s.start_s * 22_050.0) as usize..(s.end_s * 22_050.0) as usize])
        };
        assert!(loudness("chorus") > 1.3 * loudness("intro"));
    }

    #[test]
    fn random_songs_of_every_form_render_with_a_valid_truth() {
        for seed in 0..40 {
            let spec = SongSpec {
                sample_rate: 8_000,
                ..SongSpec::random(seed)
            };
            let song = render(&spec).unwrap();
            let truth = &song.truth;
            let grid = truth.grid().unwrap();
            assert_eq!(grid.len(), spec.beats(), "seed {seed}");
            let peak = song.samples.iter().fold(0.0f32, |m, x| m.max(x.abs()));
            assert!(
                song.samples.iter().all(|x| x.is_finite()) && (peak - PEAK).abs() < 1e-6,
                "seed {seed}: peak {peak}"
            );
            assert_eq!(truth.drums_enter_s.is_some(), spec.drums, "seed {seed}");
            let covered: usize = truth.sections.iter().map(|s| s.bars).sum();
            assert_eq!(covered, spec.bars, "seed {seed}");
            assert_eq!(
                truth.sections.iter().any(|s| s.name == "breakdown"),
                spec.breakdown,
                "seed {seed}"
            );
        }
    }

    #[test]
    fn compose_gives_the_notes_and_truth_render_plays() {
        let spec = short(|s| s.swing = 0.2);
        let score = compose(&spec).unwrap();
        let song = render(&spec).unwrap();
        assert_eq!(score.truth, song.truth);
        assert_eq!(score.frames, song.frames());
        let mut rng = StdRng::seed_from_u64(spec.seed);
        assert_eq!(score, score::compose(&spec, &mut rng));
        assert!(score.notes.iter().all(|n| n.start < score.frames));
        for part in [Part::Kick, Part::Snare, Part::Bass, Part::Pad, Part::Lead] {
            assert!(score.notes.iter().any(|n| n.part == part), "{part:?}");
        }
        assert!(
            score
                .notes
                .iter()
                .all(|n| n.part.is_drum() == (n.held == 0 && n.midi == 0.0))
        );
        assert_eq!(
            compose(&SongSpec { meter: 7, ..spec }).unwrap_err(),
            SynthError::Meter { actual: 7 }
        );
    }

    #[test]
    fn invalid_specs_are_refused_before_rendering() {
        assert_eq!(
            render(&SongSpec {
                meter: 7,
                ..SongSpec::default()
            })
            .unwrap_err(),
            SynthError::Meter { actual: 7 }
        );
    }
}
