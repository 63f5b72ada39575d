//! What a synthetic song should be: tempo, meter, swing, tempo changes and form.
//!
//! A [`SongSpec`] holds the choices a test or an evaluation wants to control; everything else
//! (key, chord progressions, timbres, patterns) is drawn from its `seed` when it is rendered.
//! [`SongSpec::random`] draws a varied spec for training data; [`evaluation_set`] is the fixed,
//! named set of songs every beat tracker is scored on.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::SynthError;

/// Slowest start or target tempo a spec may ask for.
pub const MIN_BPM: f64 = 40.0;
/// Fastest start or target tempo a spec may ask for.
pub const MAX_BPM: f64 = 300.0;
/// Lowest sample rate a song may be rendered at.
pub const MIN_SAMPLE_RATE: u32 = 8_000;
/// Highest sample rate a song may be rendered at.
pub const MAX_SAMPLE_RATE: u32 = 192_000;
/// Largest swing: off-beat 8ths move at most to three quarters of the beat.
pub const MAX_SWING: f32 = 0.5;
/// Longest song a spec may describe.
pub const MAX_DURATION_S: f64 = 10.0 * 60.0;
/// Most frames a song may have (10 minutes at 48 kHz, 230 MB of stereo `f32`), so a typo in
/// `bars` or a high sample rate cannot ask for gigabytes.
pub const MAX_FRAMES: usize = 600 * 48_000;
/// Bars of the quiet intro (drums enter after it).
pub const QUIET_INTRO_BARS: usize = 8;
/// Bars of the breakdown (drums stop for it).
pub const BREAKDOWN_BARS: usize = 8;
/// Fewest bars of verses/choruses a song has besides its intro, breakdown and outro.
pub const MIN_BODY_BARS: usize = 4;

/// How the tempo moves over the song. Beat periods follow it exactly; the truth's beat times
/// are the ground truth whatever the tempo does.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TempoChange {
    /// The start tempo throughout.
    Constant,
    /// A tempo that moves linearly, beat by beat, from the start tempo to `to_bpm` at the
    /// last beat.
    Ramp { to_bpm: f64 },
    /// The start tempo until bar `at_bar` (0-based), `to_bpm` from its downbeat on.
    Step { at_bar: usize, to_bpm: f64 },
}

/// The controllable choices of one synthetic song.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SongSpec {
    /// Seeds every choice not fixed here (key, progressions, timbres, patterns, lead-in).
    pub seed: u64,
    /// Start tempo in beats per minute.
    pub bpm: f64,
    /// Beats per bar: 3 or 4.
    pub meter: u8,
    /// Delay of every off-beat 8th as a fraction of half a beat: 0 is straight, 1/3 is
    /// triplet swing (the off-beat lands at 2/3 of the beat). Beats themselves never move.
    pub swing: f32,
    /// How the tempo moves.
    pub tempo: TempoChange,
    /// False renders a piece with no drums at all (pads, bass and arpeggio carry the pulse).
    pub drums: bool,
    /// Starts with [`QUIET_INTRO_BARS`] quiet bars without drums.
    pub quiet_intro: bool,
    /// Has a [`BREAKDOWN_BARS`]-bar section in which the drums stop.
    pub breakdown: bool,
    /// Samples per second of the rendered audio.
    pub sample_rate: u32,
    /// Length of the song in bars, intro and outro included.
    pub bars: usize,
}

impl Default for SongSpec {
    fn default() -> Self {
        Self {
            seed: 0,
            bpm: 120.0,
            meter: 4,
            swing: 0.0,
            tempo: TempoChange::Constant,
            drums: true,
            quiet_intro: false,
            breakdown: false,
            sample_rate: 44_100,
            bars: 16,
        }
    }
}

impl SongSpec {
    /// A varied song for training data: 60-200 BPM, 3/4 or 4/4, sometimes swung, sometimes
    /// with a tempo ramp or step, a quiet intro, a breakdown or no drums; 30-60 s long (longer
    /// only where its sections need more bars).
    pub fn random(seed: u64) -> Self {
        // NOTE: a stream separate from the renderer's, so the renderer may draw more or fewer
        // numbers without changing which specs `random` produces.
        let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed_5bec_0000_0001);
        let bpm = rng.random_range(60.0..200.0f64).round();
        let meter = if rng.random_bool(0.3) { 3 } else { 4 };
        let swing = if rng.random_bool(0.35) {
            rng.random_range(0.1..0.34f32)
        } else {
            0.0
        };
        let drums = rng.random_bool(0.9);
        let quiet_intro = drums && rng.random_bool(0.2);
        let breakdown = drums && rng.random_bool(0.3);
        let seconds = rng.random_range(30.0..60.0);
        let mut spec = Self {
            seed,
            bpm,
            meter,
            swing,
            tempo: TempoChange::Constant,
            drums,
            quiet_intro,
            breakdown,
            sample_rate: 44_100,
            bars: 0,
        };
        spec.bars = spec.bars_for_seconds(seconds);
        let target = (bpm * rng.random_range(0.8..1.25))
            .round()
            .clamp(60.0, 200.0);
        spec.tempo = match rng.random_range(0..8) {
            0 => TempoChange::Ramp { to_bpm: target },
            1 => TempoChange::Step {
                at_bar: spec.bars / 2,
                to_bpm: target,
            },
            _ => TempoChange::Constant,
        };
        spec
    }

    /// The number of bars that lasts about `seconds` at the start tempo, but at least
    /// [`Self::min_bars`].
    pub fn bars_for_seconds(&self, seconds: f64) -> usize {
        let bar_s = 60.0 / self.bpm * f64::from(self.meter);
        let bars = (seconds / bar_s).round();
        if bars.is_finite() && bars > 0.0 {
            (bars as usize).max(self.min_bars())
        } else {
            self.min_bars()
        }
    }

    /// Fewest bars the form asked for fits in.
    pub fn min_bars(&self) -> usize {
        let intro = if self.quiet_intro {
            QUIET_INTRO_BARS
        } else {
            0
        };
        let breakdown = if self.breakdown { BREAKDOWN_BARS } else { 0 };
        intro + breakdown + MIN_BODY_BARS
    }

    /// Length of the bars at the start tempo, seconds (lead-in, tempo changes and the release
    /// tail make the rendered song differ a little).
    pub fn nominal_duration_s(&self) -> f64 {
        self.beats() as f64 * 60.0 / self.bpm
    }

    /// Beats in the whole song.
    pub fn beats(&self) -> usize {
        self.bars * usize::from(self.meter)
    }

    /// Checks every field; the renderer relies on it.
    pub fn validate(&self) -> Result<(), SynthError> {
        let tempo_ok = |bpm: f64| (MIN_BPM..=MAX_BPM).contains(&bpm);
        if !tempo_ok(self.bpm) {
            return Err(SynthError::Tempo {
                bpm: self.bpm,
                min: MIN_BPM,
                max: MAX_BPM,
            });
        }
        if !matches!(self.meter, 3 | 4) {
            return Err(SynthError::Meter { actual: self.meter });
        }
        if !(0.0..=MAX_SWING).contains(&self.swing) {
            return Err(SynthError::Swing {
                actual: self.swing,
                max: MAX_SWING,
            });
        }
        if !(MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&self.sample_rate) {
            return Err(SynthError::SampleRate {
                actual: self.sample_rate,
                min: MIN_SAMPLE_RATE,
                max: MAX_SAMPLE_RATE,
            });
        }
        if self.bars < self.min_bars() {
            return Err(SynthError::TooFewBars {
                expected: self.min_bars(),
                actual: self.bars,
            });
        }
        match self.tempo {
            TempoChange::Constant => {}
            TempoChange::Ramp { to_bpm } | TempoChange::Step { to_bpm, .. }
                if !tempo_ok(to_bpm) =>
            {
                return Err(SynthError::Tempo {
                    bpm: to_bpm,
                    min: MIN_BPM,
                    max: MAX_BPM,
                });
            }
            TempoChange::Ramp { .. } => {}
            TempoChange::Step { at_bar, .. } => {
                if at_bar == 0 || at_bar >= self.bars {
                    return Err(SynthError::StepBar {
                        at_bar,
                        bars: self.bars,
                    });
                }
            }
        }
        // The slowest tempo bounds the length from above.
        let slowest = match self.tempo {
            TempoChange::Constant => self.bpm,
            TempoChange::Ramp { to_bpm } | TempoChange::Step { to_bpm, .. } => self.bpm.min(to_bpm),
        };
        let longest_s = self.beats() as f64 * 60.0 / slowest;
        let max_s = MAX_DURATION_S.min(MAX_FRAMES as f64 / f64::from(self.sample_rate));
        if longest_s > max_s {
            return Err(SynthError::TooLong {
                max_s,
                actual_s: longest_s,
            });
        }
        Ok(())
    }
}

/// The fixed set of named songs (30-60 s each) beat trackers are evaluated on.
///
/// Names start with their category (`tempo`, `waltz`, `swing`, `ramp`, `step`, `nodrums`,
/// `quietintro`, `breakdown`) so reports can average per category. It covers 60, 80, 100, 120,
/// 140, 170 and 200 BPM in 4/4, several 3/4 songs, swing, tempo ramps and steps, pieces without
/// drums, a quiet intro (drums enter after 8 bars) and breakdowns (drums stop for 8 bars).
pub fn evaluation_set() -> Vec<(String, SongSpec)> {
    let song =
        |name: &str, seed: u64, bpm: f64, meter: u8, seconds: f64, edit: &dyn Fn(&mut SongSpec)| {
            let mut spec = SongSpec {
                seed,
                bpm,
                meter,
                ..SongSpec::default()
            };
            edit(&mut spec);
            spec.bars = spec.bars_for_seconds(seconds);
            if let TempoChange::Step { at_bar, .. } = &mut spec.tempo {
                *at_bar = spec.bars / 2;
            }
            (name.to_owned(), spec)
        };
    let plain = |_: &mut SongSpec| {};
    let ramp = |to_bpm: f64| move |s: &mut SongSpec| s.tempo = TempoChange::Ramp { to_bpm };
    let step =
        |to_bpm: f64| move |s: &mut SongSpec| s.tempo = TempoChange::Step { at_bar: 0, to_bpm };
    let swing = |amount: f32| move |s: &mut SongSpec| s.swing = amount;
    vec![
        song("tempo_060", 101, 60.0, 4, 48.0, &plain),
        song("tempo_080", 102, 80.0, 4, 42.0, &plain),
        song("tempo_100", 103, 100.0, 4, 40.0, &plain),
        song("tempo_120", 104, 120.0, 4, 40.0, &plain),
        song("tempo_140", 105, 140.0, 4, 40.0, &plain),
        song("tempo_170", 106, 170.0, 4, 40.0, &plain),
        song("tempo_200", 107, 200.0, 4, 40.0, &plain),
        song("tempo_092", 108, 92.0, 4, 40.0, &plain),
        song("waltz_090", 201, 90.0, 3, 40.0, &plain),
        song("waltz_120", 202, 120.0, 3, 40.0, &plain),
        song("waltz_150", 203, 150.0, 3, 40.0, &plain),
        song("waltz_180", 204, 180.0, 3, 40.0, &plain),
        song("swing_110", 301, 110.0, 4, 40.0, &swing(0.2)),
        song("swing_132", 302, 132.0, 4, 40.0, &swing(1.0 / 3.0)),
        song("swing_096_waltz", 303, 96.0, 3, 40.0, &swing(0.25)),
        song("ramp_100_130", 401, 100.0, 4, 45.0, &ramp(130.0)),
        song("ramp_140_112", 402, 140.0, 4, 45.0, &ramp(112.0)),
        song("step_120_096", 501, 120.0, 4, 45.0, &step(96.0)),
        song("step_090_120_waltz", 502, 90.0, 3, 45.0, &step(120.0)),
        song("nodrums_100", 601, 100.0, 4, 40.0, &|s| s.drums = false),
        song("nodrums_072_waltz", 602, 72.0, 3, 40.0, &|s| {
            s.drums = false
        }),
        song("quietintro_124", 701, 124.0, 4, 45.0, &|s| {
            s.quiet_intro = true
        }),
        song("breakdown_128", 801, 128.0, 4, 55.0, &|s| {
            s.breakdown = true
        }),
        song("breakdown_108_waltz", 802, 108.0, 3, 55.0, &|s| {
            s.breakdown = true;
            s.quiet_intro = true;
        }),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_specs_are_valid_varied_and_reproducible() {
        let specs: Vec<SongSpec> = (0..200).map(SongSpec::random).collect();
        for spec in &specs {
            spec.validate().unwrap();
            assert!((60.0..=200.0).contains(&spec.bpm), "{spec:?}");
        }
        assert_eq!(specs[17], SongSpec::random(17));
        assert!(specs.iter().any(|s| s.meter == 3) && specs.iter().any(|s| s.meter == 4));
        assert!(specs.iter().any(|s| s.swing > 0.0));
        assert!(specs.iter().any(|s| !s.drums));
        assert!(
            specs
                .iter()
                .any(|s| matches!(s.tempo, TempoChange::Ramp { .. }))
        );
        assert!(
            specs
                .iter()
                .any(|s| matches!(s.tempo, TempoChange::Step { .. }))
        );
        assert!(specs.iter().any(|s| s.breakdown) && specs.iter().any(|s| s.quiet_intro));
    }

    #[test]
    fn evaluation_set_is_valid_and_covers_the_tempi() {
        let set = evaluation_set();
        assert!(set.len() >= 20);
        for (name, spec) in &set {
            spec.validate().unwrap_or_else(|e| panic!("{name}: {e}"));
            let seconds = spec.beats() as f64 * 60.0 / spec.bpm;
            assert!((25.0..=70.0).contains(&seconds), "{name}: {seconds} s");
        }
        for bpm in [60.0, 80.0, 100.0, 120.0, 140.0, 170.0, 200.0] {
            assert!(
                set.iter().any(|(_, s)| s.bpm == bpm && s.meter == 4),
                "{bpm}"
            );
        }
        assert!(set.iter().filter(|(_, s)| s.meter == 3).count() >= 3);
        let mut names: Vec<&str> = set.iter().map(|(n, _)| n.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), set.len(), "names must be unique");
    }

    #[test]
    fn invalid_specs_get_typed_errors() {
        let base = SongSpec::default();
        let check = |spec: SongSpec| spec.validate().unwrap_err();
        assert!(matches!(
            check(SongSpec {
                bpm: f64::NAN,
                ..base.clone()
            }),
            SynthError::Tempo { .. }
        ));
        assert_eq!(
            check(SongSpec {
                meter: 5,
                ..base.clone()
            }),
            SynthError::Meter { actual: 5 }
        );
        assert!(matches!(
            check(SongSpec {
                swing: 0.7,
                ..base.clone()
            }),
            SynthError::Swing { .. }
        ));
        assert!(matches!(
            check(SongSpec {
                sample_rate: 0,
                ..base.clone()
            }),
            SynthError::SampleRate { actual: 0, .. }
        ));
        assert_eq!(
            check(SongSpec {
                bars: 10,
                quiet_intro: true,
                breakdown: true,
                ..base.clone()
            }),
            SynthError::TooFewBars {
                expected: 20,
                actual: 10
            }
        );
        assert_eq!(
            check(SongSpec {
                tempo: TempoChange::Step {
                    at_bar: 16,
                    to_bpm: 100.0
                },
                ..base.clone()
            }),
            SynthError::StepBar {
                at_bar: 16,
                bars: 16
            }
        );
        assert!(matches!(
            check(SongSpec {
                bars: 100_000,
                ..base.clone()
            }),
            SynthError::TooLong { .. }
        ));
        // 8 minutes are fine at 44.1 kHz but not at 192 kHz.
        let long = SongSpec { bars: 240, ..base };
        long.validate().unwrap();
        assert!(matches!(
            check(SongSpec {
                sample_rate: 192_000,
                ..long
            }),
            SynthError::TooLong { max_s: 150.0, .. }
        ));
    }

    #[test]
    fn specs_round_trip_through_json() {
        let spec = SongSpec {
            tempo: TempoChange::Step {
                at_bar: 8,
                to_bpm: 96.5,
            },
            swing: 0.25,
            ..SongSpec::default()
        };
        let json = serde_json::to_string(&spec).unwrap();
        assert!(
            json.contains(r#""tempo":{"kind":"step","at_bar":8,"to_bpm":96.5}"#),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<SongSpec>(&json).unwrap(), spec);
        // Missing fields take their defaults.
        let partial: SongSpec = serde_json::from_str(r#"{"seed": 4, "bpm": 90}"#).unwrap();
        assert_eq!(
            partial,
            SongSpec {
                seed: 4,
                bpm: 90.0,
                ..SongSpec::default()
            }
        );
    }
}
