//! The score of a synthetic song: when each beat falls, the form, and every note.
//!
//! Composition follows the recipe of simple pop/dance arrangements: a diatonic key, one
//! four-chord progression per section kind (I-V-vi-IV and friends), one chord per bar, drums in
//! the usual patterns (four-on-the-floor or backbeat in 4/4, waltz in 3/4), a bass on the chord
//! roots, a plucked arpeggio of the chord tones and a random-walk lead melody from the scale.
//! Sections differ in instrumentation and loudness (sparse intro, full chorus, drumless
//! breakdown). Beat positions are whole samples, so the truth is exact.

use rand::Rng;
use rand::rngs::StdRng;

use super::spec::{BREAKDOWN_BARS, QUIET_INTRO_BARS, SongSpec, TempoChange};
use super::truth::{Section, SongTruth};

/// Seconds of audio after the last bar, so the last notes can ring out.
const TAIL_S: f64 = 1.5;

/// The instruments of the arrangement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Part {
    /// Bass drum: the beats (all four, or 1 and 3, or the waltz's 1).
    Kick,
    /// Snare: the backbeat.
    Snare,
    /// Closed hi-hat: beats and off-beat 8ths.
    ClosedHat,
    /// Open hi-hat: the last off-beat of every other bar.
    OpenHat,
    /// Crash cymbal: the first downbeat of some sections.
    Crash,
    /// Bass line on the chord roots.
    Bass,
    /// Sustained chord, one per bar.
    Pad,
    /// Plucked arpeggio of the chord tones on the 8ths.
    Arp,
    /// Melody on the 8th grid.
    Lead,
}

impl Part {
    /// True for the unpitched drum hits (their `held` and `midi` are 0).
    pub fn is_drum(self) -> bool {
        matches!(
            self,
            Part::Kick | Part::Snare | Part::ClosedHat | Part::OpenHat | Part::Crash
        )
    }
}

/// One note (or drum hit) of the score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Note {
    /// The instrument that plays it.
    pub part: Part,
    /// First frame of the sound.
    pub start: usize,
    /// Frames the note is held before its release (ignored by drums).
    pub held: usize,
    /// MIDI pitch (a whole number; 0 for drums).
    pub midi: f32,
    /// Linear gain relative to a full kick (1.0): the part's level, the section's loudness
    /// and a +-8 % human variation.
    pub velocity: f32,
}

/// A composed song before any sound: its truth, every note and its length. What
/// [`render`](super::render) synthesises, and what another renderer (sampled instruments, say)
/// can play instead; either way the truth holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    /// The ground truth of the song, as [`render`](super::render) returns it.
    pub truth: SongTruth,
    /// Every note and drum hit, in the order composed (by bar, then part), not sorted by time.
    pub notes: Vec<Note>,
    /// Length of the audio in frames (`truth.duration_s * sample_rate`).
    pub frames: usize,
}

/// Kinds of section, in the order a song may use them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SectionKind {
    Intro,
    Verse,
    Chorus,
    Bridge,
    Breakdown,
    Outro,
}

impl SectionKind {
    pub fn name(self) -> &'static str {
        match self {
            SectionKind::Intro => "intro",
            SectionKind::Verse => "verse",
            SectionKind::Chorus => "chorus",
            SectionKind::Bridge => "bridge",
            SectionKind::Breakdown => "breakdown",
            SectionKind::Outro => "outro",
        }
    }
}

/// The form: `(kind, bars)` in order, covering exactly `spec.bars` bars.
///
/// Intro (8 quiet bars, else 4 or 2 sparse ones), verses and choruses in blocks of 8 bars (4 in
/// short songs) with a bridge every fifth block, the breakdown after the first chorus, and a
/// short outro when there is room. Assumes a validated spec.
pub(crate) fn form(spec: &SongSpec) -> Vec<(SectionKind, usize)> {
    let bars = spec.bars;
    let intro = if spec.quiet_intro {
        QUIET_INTRO_BARS
    } else if bars >= 16 {
        4
    } else if bars >= 8 {
        2
    } else {
        0
    };
    let breakdown = if spec.breakdown { BREAKDOWN_BARS } else { 0 };
    let remaining = bars - intro - breakdown;
    let outro = if remaining >= 12 {
        4
    } else if remaining >= 8 {
        2
    } else {
        0
    };
    let body = remaining - outro;
    let block = if body >= 24 { 8 } else { 4 };
    let blocks = (body / block).max(1);
    let cycle = [
        SectionKind::Verse,
        SectionKind::Chorus,
        SectionKind::Verse,
        SectionKind::Chorus,
        SectionKind::Bridge,
        SectionKind::Chorus,
    ];
    let mut sections: Vec<(SectionKind, usize)> = Vec::new();
    if intro > 0 {
        sections.push((SectionKind::Intro, intro));
    }
    let body_start = sections.len();
    for i in 0..blocks {
        let size = if i + 1 == blocks {
            body - block * (blocks - 1)
        } else {
            block
        };
        sections.push((cycle[i % cycle.len()], size));
    }
    if breakdown > 0 {
        let after = if blocks >= 3 { 2 } else { 1 };
        sections.insert(body_start + after, (SectionKind::Breakdown, breakdown));
    }
    if outro > 0 {
        sections.push((SectionKind::Outro, outro));
    }
    sections
}

/// Start frame of every beat, plus one more for the end of the last bar.
pub(crate) fn beat_frames(spec: &SongSpec, lead_in_s: f64) -> Vec<usize> {
    let count = spec.beats();
    let step_beat = match spec.tempo {
        TempoChange::Step { at_bar, .. } => at_bar * usize::from(spec.meter),
        _ => usize::MAX,
    };
    let tempo_of = |beat: usize| match spec.tempo {
        TempoChange::Constant => spec.bpm,
        TempoChange::Ramp { to_bpm } => {
            let last = count.saturating_sub(1).max(1) as f64;
            spec.bpm + (to_bpm - spec.bpm) * (beat.min(count - 1) as f64 / last)
        }
        TempoChange::Step { to_bpm, .. } => {
            if beat >= step_beat {
                to_bpm
            } else {
                spec.bpm
            }
        }
    };
    let rate = f64::from(spec.sample_rate);
    let mut time = lead_in_s;
    (0..=count)
        .map(|beat| {
            let frame = (time * rate).round() as usize;
            time += 60.0 / tempo_of(beat);
            frame
        })
        .collect()
}

/// What plays in one section.
#[derive(Debug, Clone, Copy)]
struct Texture {
    /// Kicks: 0 none, 1 the sparse intro/outro pattern, 2 the full pattern.
    kick: u8,
    snare: bool,
    /// Closed hats: 0 none, 1 on the beats, 2 on every 8th.
    hats: u8,
    crash: bool,
    bass: BassRhythm,
    arp: bool,
    lead: bool,
    gain: f32,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum BassRhythm {
    None,
    Whole,
    Quarters,
    Eighths,
}

fn texture(kind: SectionKind, spec: &SongSpec) -> Texture {
    let mut t = match kind {
        SectionKind::Intro if spec.quiet_intro => Texture {
            kick: 0,
            snare: false,
            hats: 0,
            crash: false,
            bass: BassRhythm::Whole,
            arp: true,
            lead: false,
            gain: 0.3,
        },
        SectionKind::Intro => Texture {
            kick: 1,
            snare: false,
            hats: 1,
            crash: false,
            bass: BassRhythm::None,
            arp: false,
            lead: false,
            gain: 0.55,
        },
        SectionKind::Verse => Texture {
            kick: 2,
            snare: true,
            hats: 2,
            crash: false,
            bass: BassRhythm::Quarters,
            arp: false,
            lead: false,
            gain: 0.8,
        },
        SectionKind::Chorus => Texture {
            kick: 2,
            snare: true,
            hats: 2,
            crash: true,
            bass: BassRhythm::Eighths,
            arp: true,
            lead: true,
            gain: 1.0,
        },
        SectionKind::Bridge => Texture {
            kick: 2,
            snare: true,
            hats: 1,
            crash: false,
            bass: BassRhythm::Whole,
            arp: true,
            lead: true,
            gain: 0.75,
        },
        SectionKind::Breakdown => Texture {
            kick: 0,
            snare: false,
            hats: 0,
            crash: false,
            bass: BassRhythm::Whole,
            arp: true,
            lead: false,
            gain: 0.6,
        },
        SectionKind::Outro => Texture {
            kick: 1,
            snare: false,
            hats: 1,
            crash: true,
            bass: BassRhythm::Whole,
            arp: false,
            lead: false,
            gain: 0.65,
        },
    };
    if !spec.drums {
        t.kick = 0;
        t.snare = false;
        t.hats = 0;
        t.crash = false;
        t.arp = true;
        if t.bass == BassRhythm::None {
            t.bass = BassRhythm::Whole;
        }
    }
    t
}

/// Scale steps of the major and natural minor modes.
const MAJOR: [i32; 7] = [0, 2, 4, 5, 7, 9, 11];
const MINOR: [i32; 7] = [0, 2, 3, 5, 7, 8, 10];

/// Four-chord progressions as 0-based scale degrees (I-V-vi-IV, vi-IV-I-V, ...).
const PROGRESSIONS: [[i32; 4]; 6] = [
    [0, 4, 5, 3],
    [5, 3, 0, 4],
    [0, 3, 4, 3],
    [0, 5, 3, 4],
    [0, 3, 5, 4],
    [3, 0, 4, 5],
];

/// A key: the MIDI number of the tonic near middle C and the mode's steps.
struct Key {
    tonic: i32,
    steps: [i32; 7],
}

impl Key {
    /// MIDI number of scale degree `degree` (any integer; 7 is the tonic an octave up).
    fn note(&self, degree: i32) -> f32 {
        let octave = degree.div_euclid(7);
        (self.tonic + 12 * octave + self.steps[degree.rem_euclid(7) as usize]) as f32
    }
}

/// Draws the arrangement of `spec` (validated) from `rng`.
pub(crate) fn compose(spec: &SongSpec, rng: &mut StdRng) -> Score {
    let meter = usize::from(spec.meter);
    let rate = f64::from(spec.sample_rate);
    let lead_in_s = rng.random_range(0.1..0.4);
    let frames_of_beat = beat_frames(spec, lead_in_s);
    let key = Key {
        tonic: 57 + rng.random_range(0..12),
        steps: if rng.random_bool(0.5) { MAJOR } else { MINOR },
    };
    let mut pick = || PROGRESSIONS[rng.random_range(0..PROGRESSIONS.len())];
    let (verse_chords, chorus_chords, bridge_chords) = (pick(), pick(), pick());
    let four_on_the_floor = rng.random_bool(0.5);
    let kick_pickup = rng.random_bool(0.4);
    let offbeat = 0.5 + f64::from(spec.swing) / 2.0;

    let at = |beat: usize, fraction: f64| {
        let (a, b) = (frames_of_beat[beat], frames_of_beat[beat + 1]);
        a + (fraction * (b - a) as f64).round() as usize
    };

    let mut notes = Vec::new();
    let mut sections = Vec::new();
    let mut bar = 0usize;
    for (kind, bars) in form(spec) {
        let tx = texture(kind, spec);
        let chords = match kind {
            SectionKind::Chorus => chorus_chords,
            SectionKind::Bridge | SectionKind::Breakdown => bridge_chords,
            _ => verse_chords,
        };
        sections.push(Section {
            name: kind.name().to_owned(),
            start_s: frames_of_beat[bar * meter] as f64 / rate,
            end_s: frames_of_beat[(bar + bars) * meter] as f64 / rate,
            start_bar: bar,
            bars,
        });
        let mut lead_degree = 7;
        for bar_in_section in 0..bars {
            let first_beat = (bar + bar_in_section) * meter;
            let degree = chords[bar_in_section % chords.len()];
            let mut hit =
                |rng: &mut StdRng, part: Part, start: usize, held: usize, midi: f32, gain: f32| {
                    let human = 1.0 + rng.random_range(-0.08..0.08f32);
                    notes.push(Note {
                        part,
                        start,
                        held,
                        midi,
                        velocity: gain * tx.gain * human,
                    });
                };

            // Drums.
            for beat_in_bar in 0..meter {
                let beat = first_beat + beat_in_bar;
                let start = at(beat, 0.0);
                let kick = match (tx.kick, meter) {
                    (0, _) => false,
                    (1, 4) => beat_in_bar % 2 == 0,
                    (_, 3) => beat_in_bar == 0,
                    _ => four_on_the_floor || beat_in_bar % 2 == 0,
                };
                if kick {
                    hit(rng, Part::Kick, start, 0, 0.0, 1.0);
                }
                if tx.kick == 2 && kick_pickup && meter == 4 && beat_in_bar == 2 {
                    hit(rng, Part::Kick, at(beat, offbeat), 0, 0.0, 0.7);
                }
                let snare = match meter {
                    3 => beat_in_bar > 0,
                    _ => beat_in_bar % 2 == 1,
                };
                if tx.snare && snare {
                    hit(
                        rng,
                        Part::Snare,
                        start,
                        0,
                        0.0,
                        if meter == 3 { 0.55 } else { 0.8 },
                    );
                }
                if tx.hats >= 1 {
                    hit(rng, Part::ClosedHat, start, 0, 0.0, 0.3);
                }
                if tx.hats >= 2 {
                    let part = if beat_in_bar + 1 == meter && bar_in_section % 2 == 1 {
                        Part::OpenHat
                    } else {
                        Part::ClosedHat
                    };
                    hit(rng, part, at(beat, offbeat), 0, 0.0, 0.22);
                }
            }
            if tx.crash && bar_in_section == 0 {
                hit(rng, Part::Crash, at(first_beat, 0.0), 0, 0.0, 0.2);
            }

            // Pads: the bar's chord, held for the bar.
            let bar_start = at(first_beat, 0.0);
            let bar_len = frames_of_beat[first_beat + meter] - bar_start;
            for tone in [0, 2, 4] {
                hit(
                    rng,
                    Part::Pad,
                    bar_start,
                    bar_len,
                    key.note(degree + tone),
                    0.12,
                );
            }

            // Bass on the chord root, two octaves down.
            let root = key.note(degree) - 24.0;
            let beat_len = |beat: usize| frames_of_beat[beat + 1] - frames_of_beat[beat];
            match tx.bass {
                BassRhythm::None => {}
                BassRhythm::Whole => hit(rng, Part::Bass, bar_start, bar_len * 9 / 10, root, 0.4),
                BassRhythm::Quarters | BassRhythm::Eighths => {
                    for beat in first_beat..first_beat + meter {
                        let len = beat_len(beat);
                        let eighths = tx.bass == BassRhythm::Eighths;
                        // Each note stops before the next 8th (or beat) starts.
                        let off = at(beat, offbeat) - at(beat, 0.0);
                        let held = if eighths { off * 4 / 5 } else { len * 4 / 5 };
                        hit(rng, Part::Bass, at(beat, 0.0), held, root, 0.45);
                        if eighths {
                            let octave = if beat % 2 == 1 { 12.0 } else { 0.0 };
                            let rest = (len - off) * 4 / 5;
                            hit(
                                rng,
                                Part::Bass,
                                at(beat, offbeat),
                                rest,
                                root + octave,
                                0.35,
                            );
                        }
                    }
                }
            }

            // Arpeggio of the chord tones on every 8th, accented on the beats.
            if tx.arp {
                let tones = [0, 2, 4, 7, 4, 2];
                let level = if spec.drums { 0.16 } else { 0.3 };
                for (i, beat) in (first_beat..first_beat + meter).enumerate() {
                    let len = beat_len(beat);
                    let accent = if i == 0 { 1.3 } else { 1.0 };
                    let on = key.note(degree + tones[(2 * i) % tones.len()]) + 12.0;
                    let off = key.note(degree + tones[(2 * i + 1) % tones.len()]) + 12.0;
                    hit(rng, Part::Arp, at(beat, 0.0), len / 3, on, level * accent);
                    hit(rng, Part::Arp, at(beat, offbeat), len / 3, off, level * 0.6);
                }
            }

            // Lead: a random walk over the scale on the 8th grid, landing on chord tones on
            // the beats.
            if tx.lead {
                let mut slots = Vec::with_capacity(2 * meter + 1);
                for beat in first_beat..first_beat + meter {
                    slots.push((at(beat, 0.0), true));
                    slots.push((at(beat, offbeat), false));
                }
                slots.push((at(first_beat + meter, 0.0), true));
                let mut k = 0;
                while k + 1 < slots.len() {
                    let (start, on_beat) = slots[k];
                    let play = if k == 0 { 0.9 } else { 0.55 };
                    let length = if rng.random_bool(0.3) && k + 2 < slots.len() {
                        2
                    } else {
                        1
                    };
                    if rng.random_bool(play) {
                        lead_degree = (lead_degree + rng.random_range(-2..=2)).clamp(2, 13);
                        if on_beat {
                            // Nearest chord tone (root, third or fifth of this bar's chord).
                            let from_root = (lead_degree - degree).rem_euclid(7);
                            lead_degree -= match from_root {
                                1 | 3 | 5 => 1,
                                6 => -1,
                                _ => 0,
                            };
                        }
                        let held = (slots[k + length].0 - start) * 9 / 10;
                        hit(
                            rng,
                            Part::Lead,
                            start,
                            held,
                            key.note(lead_degree) + 12.0,
                            0.2,
                        );
                    }
                    k += length;
                }
            }
        }
        bar += bars;
    }

    let count = spec.beats();
    let beats: Vec<f64> = frames_of_beat[..count]
        .iter()
        .map(|&f| f as f64 / rate)
        .collect();
    let beat_in_bar: Vec<u8> = (0..count).map(|i| (i % meter) as u8).collect();
    let downbeats = beats.iter().step_by(meter).copied().collect();
    let frames = frames_of_beat[count] + (TAIL_S * rate) as usize;
    let drums_enter_s = notes
        .iter()
        .filter(|n| n.part.is_drum())
        .map(|n| n.start)
        .min()
        .map(|f| f as f64 / rate);
    Score {
        truth: SongTruth {
            beats,
            downbeats,
            beat_in_bar,
            meter: spec.meter,
            bpm: spec.bpm,
            sections,
            drums_enter_s,
            duration_s: frames as f64 / rate,
        },
        notes,
        frames,
    }
}
