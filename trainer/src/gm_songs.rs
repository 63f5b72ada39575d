//! The synthesiser's songs re-voiced with sampled instruments, for training beat trackers that
//! must work on real recordings.
//!
//! [`render_gm`] plays the score of a [`SongSpec`] (the notes `cutscore_synth::render`
//! would synthesise, from [`cutscore_synth::compose`]) through a General MIDI SoundFont with
//! [rustysynth](https://github.com/sinshu/rustysynth), so the truth is exactly the synthesiser's
//! while the sound is sampled instruments: a GM drum kit (MIDI channel 10, notes of the GM
//! percussion map) and, for each pitched part, a program drawn from the GM families a player
//! would pick for it. The default SoundFont is Debian's `fluid-soundfont-gm`
//! ([`DEFAULT_SOUNDFONT`]).
//!
//! Each part is rendered as its own stem (its own synthesiser, with reverb and chorus), levelled
//! by its loudness while it plays and mixed at a random balance, so a quiet preset cannot vanish
//! and a loud organ cannot bury the drums. Like a player, every note is a little early or late
//! (drums tighter than the rest) and a little louder or softer; the mix gets a gentle random EQ
//! tilt and sometimes light noise, and is normalised to [`cutscore_synth::PEAK`]. The truth stays the
//! exact grid, so the timing spread is part of what a tracker has to tolerate.
//!
//! Event timing: rustysynth starts a voice at the start of its next internal block, so splitting
//! `render` calls at event times cannot place a note between block boundaries. The stems use
//! [`BLOCK`]-frame blocks and every event is rounded to the nearest block boundary: at most
//! `BLOCK / 2` frames (0.09 ms at 44.1 kHz) from where the humanised score put it. Every event
//! is also sent [`SOUND_LATENCY_S`] early: a SoundFont voice is silent for the default 1 ms
//! envelope delay and then ramps up, so FluidR3's drums reach a tenth of their peak 1.2 to 3.2 ms
//! after their note-on (2 ms on average).
//!
//! Everything is drawn from `(spec.seed, seed)`, so a re-voicing is reproducible; a different
//! `seed` plays the same song with other instruments and another mix.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cutscore_synth::{Part, Score, Song, SongSpec, SynthError};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rustysynth::{SoundFont, SoundFontError, Synthesizer, SynthesizerError, SynthesizerSettings};

/// Where Debian's and Ubuntu's `fluid-soundfont-gm` package installs FluidR3 GM.
pub const DEFAULT_SOUNDFONT: &str = "/usr/share/sounds/sf2/FluidR3_GM.sf2";

/// Frames per synthesiser block; events are placed on block boundaries (see the module docs).
pub const BLOCK: usize = 8;

/// Lowest sample rate rustysynth renders at.
pub const MIN_SAMPLE_RATE: u32 = 16_000;
/// Highest sample rate rustysynth renders at.
pub const MAX_SAMPLE_RATE: u32 = 192_000;

/// How much earlier than its score time a note-on is sent, so drum onsets land on time.
pub const SOUND_LATENCY_S: f64 = 0.002;

/// Voices per stem; a pad chord with its release tails and reverb needs a few dozen.
const POLYPHONY: usize = 96;

/// Why a song could not be re-voiced.
#[derive(Debug, thiserror::Error)]
pub enum GmError {
    #[error("no SoundFont at {path} (Debian/Ubuntu: apt-get install fluid-soundfont-gm)")]
    SoundFontMissing { path: PathBuf },
    #[error("cannot read SoundFont {path}: {source}")]
    SoundFontUnreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid SoundFont: {source}")]
    SoundFontInvalid {
        path: PathBuf,
        source: SoundFontError,
    },
    #[error("{path} is not a General MIDI SoundFont: it has no {missing}")]
    NotGeneralMidi { path: PathBuf, missing: String },
    #[error("sample rate of {actual} Hz; the SoundFont synthesiser renders {min} to {max} Hz")]
    SampleRate { actual: u32, min: u32, max: u32 },
    #[error("the SoundFont synthesiser refused its settings: {0}")]
    Synthesizer(#[from] SynthesizerError),
    #[error(transparent)]
    Spec(#[from] SynthError),
}

/// Loads the SoundFont at `path` and checks that it has every General MIDI program
/// [`render_gm`] may draw and the standard drum kit. Loading FluidR3 GM (148 MB) takes about a
/// second; load it once and share the `Arc`.
pub fn load_soundfont(path: &Path) -> Result<Arc<SoundFont>, GmError> {
    let file = File::open(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => GmError::SoundFontMissing {
            path: path.to_owned(),
        },
        _ => GmError::SoundFontUnreadable {
            path: path.to_owned(),
            source,
        },
    })?;
    let font =
        SoundFont::new(&mut BufReader::new(file)).map_err(|source| GmError::SoundFontInvalid {
            path: path.to_owned(),
            source,
        })?;
    let has = |bank: i32, program: u8| {
        font.get_presets()
            .iter()
            .any(|p| p.get_bank_number() == bank && p.get_patch_number() == i32::from(program))
    };
    let missing = Stem::PITCHED
        .iter()
        .flat_map(|stem| stem.programs().iter())
        .find(|&&program| !has(0, program))
        .map(|program| format!("program {program} in bank 0"))
        .or_else(|| (!has(128, 0)).then(|| "standard drum kit (bank 128, program 0)".to_owned()));
    match missing {
        Some(missing) => Err(GmError::NotGeneralMidi {
            path: path.to_owned(),
            missing,
        }),
        None => Ok(Arc::new(font)),
    }
}

/// Renders the song of `spec` with the instruments of `soundfont` (see [`load_soundfont`]):
/// the truth of `cutscore_synth::render(spec)`, stereo at `spec.sample_rate`, peak
/// [`cutscore_synth::PEAK`]. `seed` draws the instruments, the mix and the humanisation; the same
/// `(spec, seed)` always gives the same samples.
pub fn render_gm(spec: &SongSpec, soundfont: &Arc<SoundFont>, seed: u64) -> Result<Song, GmError> {
    let score = cutscore_synth::compose(spec)?;
    if !(MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&spec.sample_rate) {
        return Err(GmError::SampleRate {
            actual: spec.sample_rate,
            min: MIN_SAMPLE_RATE,
            max: MAX_SAMPLE_RATE,
        });
    }
    let mut rng = voicing_rng(spec.seed, seed);
    let band = Band::draw(soundfont, &mut rng);
    log::debug!(
        "re-voicing seed {seed} of song {}: {}",
        spec.seed,
        band.describe(soundfont)
    );
    let rate = spec.sample_rate;
    let events = schedule(&score, &band, rate, &mut rng);

    let mut left = vec![0.0f32; score.frames];
    let mut right = vec![0.0f32; score.frames];
    for (i, stem) in Stem::ALL.into_iter().enumerate() {
        let stem_events: Vec<Event> = events.iter().filter(|e| e.stem == stem).copied().collect();
        if stem_events.is_empty() {
            continue;
        }
        let (l, r) = render_stem(soundfont, rate, &band.setups[i], &stem_events, score.frames)?;
        let loudness = playing_rms(&l, &r, rate);
        if loudness <= 0.0 {
            continue;
        }
        let gain = 10f32.powf(band.setups[i].level_db / 20.0) * 0.1 / loudness;
        for (out, x) in left.iter_mut().zip(&l) {
            *out += gain * x;
        }
        for (out, x) in right.iter_mut().zip(&r) {
            *out += gain * x;
        }
    }

    tilt(&mut left, band.tilt_db, rate);
    tilt(&mut right, band.tilt_db, rate);
    if let Some(snr_db) = band.noise_snr_db {
        let level = playing_rms(&left, &right, rate) * 10f32.powf(-snr_db / 20.0);
        // Uniform noise of RMS `level` (a uniform on [-a, a] has RMS a / sqrt 3).
        let a = level * 3f32.sqrt();
        for x in left.iter_mut().chain(right.iter_mut()) {
            *x += rng.random_range(-a..=a);
        }
    }
    let peak = left
        .iter()
        .chain(&right)
        .fold(0.0f32, |m, x| m.max(x.abs()));
    let scale = if peak > 0.0 {
        cutscore_synth::PEAK / peak
    } else {
        0.0
    };
    let samples = left
        .iter()
        .zip(&right)
        .flat_map(|(l, r)| [l * scale, r * scale])
        .collect();
    Ok(Song {
        sample_rate: rate,
        channels: 2,
        samples,
        truth: score.truth,
    })
}

/// The stream a re-voicing draws from. NOTE: the song's seed goes in the high half and the
/// voicing seed in the low half, so seeds below 2^32 never collide.
fn voicing_rng(song_seed: u64, seed: u64) -> StdRng {
    StdRng::seed_from_u64(song_seed.rotate_left(32) ^ seed ^ 0x6d5f_a11c_e5ee_d000)
}

/// The groups of parts that are rendered, levelled and placed in the mix together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stem {
    Drums,
    Bass,
    Pad,
    Arp,
    Lead,
}

impl Stem {
    const ALL: [Stem; 5] = [Stem::Drums, Stem::Bass, Stem::Pad, Stem::Arp, Stem::Lead];
    const PITCHED: [Stem; 4] = [Stem::Bass, Stem::Pad, Stem::Arp, Stem::Lead];

    fn of(part: Part) -> Stem {
        match part {
            Part::Bass => Stem::Bass,
            Part::Pad => Stem::Pad,
            Part::Arp => Stem::Arp,
            Part::Lead => Stem::Lead,
            _ => Stem::Drums,
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    /// The GM programs (0-based) a player might choose for the part.
    fn programs(self) -> &'static [u8] {
        match self {
            // Acoustic, finger, pick, fretless, slap 1 and 2, synth bass 1 and 2.
            Stem::Bass => &[32, 33, 34, 35, 36, 37, 38, 39],
            // Pianos and electric pianos, organs, string ensembles, synth pads.
            Stem::Pad => &[
                0, 1, 2, 4, 5, 16, 17, 18, 19, 20, 48, 49, 50, 51, 88, 89, 90, 91, 92, 94, 95,
            ],
            // Pianos, harpsichord, clavinet, chromatic percussion (celesta to xylophone),
            // guitars, pizzicato strings, harp, sitar, banjo, koto.
            Stem::Arp => &[
                0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 24, 25, 26, 27, 28, 45, 46, 104, 105,
                107,
            ],
            // Synth leads, brass (no tuba), reeds (no bassoon), guitars, voices.
            Stem::Lead => &[
                80, 81, 82, 83, 84, 85, 86, 87, 56, 57, 59, 60, 61, 62, 63, 64, 65, 66, 67, 68, 69,
                71, 24, 25, 26, 27, 29, 30, 52, 53, 54,
            ],
            Stem::Drums => &[],
        }
    }

    /// MIDI channel (0-based; 9 is GM's percussion channel 10).
    fn channel(self) -> i32 {
        match self {
            Stem::Drums => 9,
            _ => 0,
        }
    }
}

/// GM drum kits (bank 128 programs) drawn from, the standard kit three times as often.
const DRUM_KITS: [u8; 9] = [0, 0, 0, 8, 16, 24, 25, 32, 40];

/// How one stem is played and mixed.
#[derive(Debug, Clone, PartialEq)]
struct StemSetup {
    /// GM program (the kit for the drums).
    program: u8,
    /// Level in the mix relative to the drums, dB, applied after levelling the stem.
    level_db: f32,
    /// MIDI pan, 0 (left) to 127 (right).
    pan: u8,
    /// MIDI reverb send, 0 to 127.
    reverb: u8,
    /// MIDI chorus send, 0 to 127.
    chorus: u8,
    /// Standard deviation of the timing spread, seconds.
    jitter_s: f64,
    /// Constant offset of the whole part (ahead or behind the beat), seconds.
    lag_s: f64,
    /// MIDI velocity of the part's loudest notes.
    top_velocity: f32,
}

/// Everything one re-voicing draws: instruments, mix, humanisation.
#[derive(Debug, Clone, PartialEq)]
struct Band {
    /// Indexed by [`Stem::index`].
    setups: [StemSetup; 5],
    /// GM snare: 38 (acoustic) or 40 (electric).
    snare_key: u8,
    /// Gain of the highs over the lows, dB (half up, half down around 800 Hz).
    tilt_db: f32,
    /// Signal-to-noise ratio of added white noise, dB, when there is any.
    noise_snr_db: Option<f32>,
}

impl Band {
    fn draw(font: &SoundFont, rng: &mut StdRng) -> Band {
        let has_kit = |kit: u8| {
            font.get_presets()
                .iter()
                .any(|p| p.get_bank_number() == 128 && p.get_patch_number() == i32::from(kit))
        };
        let kits: Vec<u8> = DRUM_KITS.into_iter().filter(|&k| has_kit(k)).collect();
        let kit = if kits.is_empty() {
            0
        } else {
            kits[rng.random_range(0..kits.len())]
        };
        let mut pick = |stem: Stem, avoid: Option<u8>| loop {
            let programs = stem.programs();
            let program = programs[rng.random_range(0..programs.len())];
            if Some(program) != avoid {
                return program;
            }
        };
        let bass = pick(Stem::Bass, None);
        let pad = pick(Stem::Pad, None);
        let arp = pick(Stem::Arp, Some(pad));
        let lead = pick(Stem::Lead, Some(arp));
        // Level (dB, relative to the drums), its spread, pan spread, reverb and chorus ranges.
        let setup = |rng: &mut StdRng,
                     program: u8,
                     level: f32,
                     pan: f32,
                     reverb: (u8, u8),
                     chorus: (u8, u8),
                     jitter_ms: f64,
                     lag_ms: f64| StemSetup {
            program,
            level_db: level + rng.random_range(-3.0..=3.0),
            pan: (64.0 + 63.0 * rng.random_range(-pan..=pan)).round() as u8,
            reverb: rng.random_range(reverb.0..=reverb.1),
            chorus: rng.random_range(chorus.0..=chorus.1),
            jitter_s: jitter_ms * rng.random_range(0.5..=1.5) / 1000.0,
            lag_s: rng.random_range(-lag_ms..=lag_ms) / 1000.0,
            top_velocity: rng.random_range(90.0..=124.0),
        };
        let setups = [
            setup(rng, kit, 0.0, 0.0, (5, 45), (0, 0), 1.5, 0.0),
            setup(rng, bass, -2.0, 0.1, (0, 20), (0, 10), 4.0, 3.0),
            setup(rng, pad, -9.0, 0.3, (30, 80), (0, 60), 5.0, 3.0),
            setup(rng, arp, -7.0, 0.5, (20, 60), (0, 40), 4.0, 3.0),
            setup(rng, lead, -4.0, 0.3, (20, 60), (0, 30), 4.0, 3.0),
        ];
        Band {
            setups,
            snare_key: if rng.random_bool(0.5) { 38 } else { 40 },
            tilt_db: rng.random_range(-4.0..=4.0),
            noise_snr_db: rng.random_bool(0.4).then(|| rng.random_range(30.0..=50.0)),
        }
    }

    /// The preset names, for logs.
    fn describe(&self, font: &SoundFont) -> String {
        let name = |bank: i32, program: u8| {
            font.get_presets()
                .iter()
                .find(|p| p.get_bank_number() == bank && p.get_patch_number() == i32::from(program))
                .map_or("?", |p| p.get_name())
                .to_owned()
        };
        Stem::ALL
            .iter()
            .zip(&self.setups)
            .map(|(stem, s)| {
                let bank = if *stem == Stem::Drums { 128 } else { 0 };
                format!("{stem:?} {} ({:+.0} dB)", name(bank, s.program), s.level_db)
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// One MIDI event of a stem, at a block boundary.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Event {
    stem: Stem,
    /// Frame, a multiple of [`BLOCK`].
    frame: usize,
    key: u8,
    /// `Some(velocity)` for a note-on, `None` for its note-off.
    velocity: Option<u8>,
    /// Index of the note in the score, shared by its note-on and note-off.
    note: usize,
}

/// GM percussion key of a drum part.
fn drum_key(part: Part, band: &Band) -> u8 {
    match part {
        Part::Kick => 36,
        Part::Snare => band.snare_key,
        Part::ClosedHat => 42,
        Part::OpenHat => 46,
        _ => 49,
    }
}

/// How long a drum hit is held before its note-off (the sample usually ends first).
const DRUM_HOLD_S: f64 = 1.5;

/// A normal deviate (Box-Muller), clamped to three standard deviations.
fn normal(rng: &mut StdRng) -> f64 {
    let u: f64 = rng.random_range(f64::EPSILON..1.0);
    let v: f64 = rng.random();
    ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()).clamp(-3.0, 3.0)
}

/// Every note of `score` as humanised note-on/note-off events on block boundaries, sorted by
/// frame (note-offs before note-ons at the same frame).
fn schedule(score: &Score, band: &Band, rate: u32, rng: &mut StdRng) -> Vec<Event> {
    let rate_f = f64::from(rate);
    let mut loudest = [0.0f32; 5];
    for note in &score.notes {
        let i = Stem::of(note.part).index();
        loudest[i] = loudest[i].max(note.velocity);
    }
    // Drum pieces are levelled separately: each has its own natural loudness in the kit.
    let mut loudest_drum = std::collections::HashMap::new();
    for note in score.notes.iter().filter(|n| n.part.is_drum()) {
        let v = loudest_drum.entry(note.part).or_insert(0.0f32);
        *v = v.max(note.velocity);
    }
    let to_block = |frame: f64| (frame / BLOCK as f64).round().max(0.0) as usize * BLOCK;
    let mut events = Vec::with_capacity(2 * score.notes.len());
    for (index, note) in score.notes.iter().enumerate() {
        let stem = Stem::of(note.part);
        let setup = &band.setups[stem.index()];
        let shift_s = setup.lag_s + setup.jitter_s * normal(rng) - SOUND_LATENCY_S;
        let start = to_block(note.start as f64 + shift_s * rate_f);
        let held = if note.part.is_drum() {
            DRUM_HOLD_S * rate_f
        } else {
            note.held as f64 * rng.random_range(0.85..=1.05)
        };
        let end = to_block(start as f64 + held).max(start + BLOCK);
        let loudest = if note.part.is_drum() {
            loudest_drum[&note.part]
        } else {
            loudest[stem.index()]
        };
        // rustysynth's gain is (velocity / 127)^2, so the square root keeps the score's ratios.
        let ratio = (note.velocity / loudest.max(f32::MIN_POSITIVE)).clamp(0.0, 1.0);
        let human = 1.0 + rng.random_range(-0.06..=0.06f32);
        let velocity = (setup.top_velocity * ratio.sqrt() * human)
            .round()
            .clamp(1.0, 127.0) as u8;
        let key = if note.part.is_drum() {
            drum_key(note.part, band)
        } else {
            note.midi.round().clamp(0.0, 127.0) as u8
        };
        if start >= score.frames {
            continue;
        }
        events.push(Event {
            stem,
            frame: start,
            key,
            velocity: Some(velocity),
            note: index,
        });
        events.push(Event {
            stem,
            frame: end,
            key,
            velocity: None,
            note: index,
        });
    }
    events.sort_by_key(|e| (e.frame, e.velocity.is_some(), e.note));
    events
}

/// Renders one stem's events (sorted, on block boundaries) into `frames` stereo frames.
fn render_stem(
    font: &Arc<SoundFont>,
    rate: u32,
    setup: &StemSetup,
    events: &[Event],
    frames: usize,
) -> Result<(Vec<f32>, Vec<f32>), GmError> {
    let mut settings = SynthesizerSettings::new(rate as i32);
    settings.block_size = BLOCK;
    settings.maximum_polyphony = POLYPHONY;
    let mut synth = Synthesizer::new(font, &settings)?;
    let channel = events.first().map_or(0, |e| e.stem.channel());
    synth.process_midi_message(channel, 0xC0, i32::from(setup.program), 0);
    for (controller, value) in [(10, setup.pan), (91, setup.reverb), (93, setup.chorus)] {
        synth.process_midi_message(channel, 0xB0, controller, i32::from(value));
    }
    let mut left = vec![0.0f32; frames];
    let mut right = vec![0.0f32; frames];
    // The note that owns each key now: a note-on re-strikes a key that still sounds, and the
    // earlier note's late note-off must not end the new one.
    let mut owner: [Option<usize>; 128] = [None; 128];
    let mut at = 0;
    for event in events {
        let frame = event.frame.min(frames);
        if frame > at {
            synth.render(&mut left[at..frame], &mut right[at..frame]);
            at = frame;
        }
        if frame == frames {
            break;
        }
        let key = usize::from(event.key);
        match event.velocity {
            Some(velocity) => {
                if owner[key].is_some() {
                    synth.note_off(channel, i32::from(event.key));
                }
                synth.note_on(channel, i32::from(event.key), i32::from(velocity));
                owner[key] = Some(event.note);
            }
            None if owner[key] == Some(event.note) => {
                synth.note_off(channel, i32::from(event.key));
                owner[key] = None;
            }
            None => {}
        }
    }
    if at < frames {
        synth.render(&mut left[at..], &mut right[at..]);
    }
    Ok((left, right))
}

/// RMS of a stereo signal over the 50 ms windows in which it plays (within 40 dB of its
/// loudest window), so a part that plays in a few sections is levelled by how loud it is
/// there, not diluted by its rests. 0 for silence.
fn playing_rms(left: &[f32], right: &[f32], rate: u32) -> f32 {
    let window = (rate as usize / 20).max(1);
    let powers: Vec<f64> = left
        .chunks(window)
        .zip(right.chunks(window))
        .map(|(l, r)| {
            let sum: f64 = l
                .iter()
                .chain(r)
                .map(|&x| f64::from(x) * f64::from(x))
                .sum();
            sum / (2 * l.len()) as f64
        })
        .collect();
    let loudest = powers.iter().copied().fold(0.0, f64::max);
    if loudest <= 0.0 {
        return 0.0;
    }
    let playing: Vec<f64> = powers
        .into_iter()
        .filter(|&p| p >= loudest * 1e-4)
        .collect();
    (playing.iter().sum::<f64>() / playing.len() as f64).sqrt() as f32
}

/// A gentle spectral tilt: `tilt_db / 2` on the highs and `-tilt_db / 2` on the lows, split by
/// a one-pole low-pass at 800 Hz.
fn tilt(x: &mut [f32], tilt_db: f32, rate: u32) {
    let a = 1.0 - (-std::f32::consts::TAU * 800.0 / rate as f32).exp();
    let low_gain = 10f32.powf(-tilt_db / 40.0);
    let high_gain = 10f32.powf(tilt_db / 40.0);
    let mut low = 0.0f32;
    for v in x.iter_mut() {
        low += a * (*v - low);
        *v = low_gain * low + high_gain * (*v - low);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use super::*;

    /// FluidR3 GM, loaded once for all tests (`.ci/run` installs it).
    fn font() -> Arc<SoundFont> {
        static FONT: OnceLock<Arc<SoundFont>> = OnceLock::new();
        FONT.get_or_init(|| {
            load_soundfont(Path::new(DEFAULT_SOUNDFONT))
                .expect("fluid-soundfont-gm is installed (see the README's set-up)")
        })
        .clone()
    }

    fn short(seed: u64, edit: impl FnOnce(&mut SongSpec)) -> SongSpec {
        let mut spec = SongSpec {
            seed,
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

    fn band(spec: &SongSpec, seed: u64) -> Band {
        Band::draw(&font(), &mut voicing_rng(spec.seed, seed))
    }

    /// Positive jumps of log energy in 10 ms windows every 5 ms: (hop in frames, strengths).
    fn onset_strength(mono: &[f32], rate: u32) -> (usize, Vec<f32>) {
        let hop = rate as usize / 200;
        let energy: Vec<f32> = (0..mono.len().saturating_sub(2 * hop) / hop)
            .map(|i| (rms(&mono[i * hop..i * hop + 2 * hop]) + 1e-5).ln())
            .collect();
        let flux = std::iter::once(0.0)
            .chain(energy.windows(2).map(|w| (w[1] - w[0]).max(0.0)))
            .collect();
        (hop, flux)
    }

    #[test]
    fn onsets_fall_on_the_truth_beats_not_between_them() {
        for (seed, voicing) in [(3, 0), (4, 1), (5, 2)] {
            let spec = short(seed, |s| s.bpm = 100.0 + 10.0 * seed as f64);
            let song = render_gm(&spec, &font(), voicing).unwrap();
            let (hop, flux) = onset_strength(&song.mono(), spec.sample_rate);
            // The strongest onset within 10 ms of `t` seconds.
            let around = |t: f64| {
                let centre = (t * f64::from(spec.sample_rate) / hop as f64).round() as usize;
                flux[centre.saturating_sub(2)..(centre + 3).min(flux.len())]
                    .iter()
                    .fold(0.0f32, |m, &x| m.max(x))
            };
            let beats = &song.truth.beats;
            let period = beats[1] - beats[0];
            let on: f32 = beats.iter().map(|&t| around(t)).sum::<f32>() / beats.len() as f32;
            // A quarter of a beat after each beat nothing starts (8ths fall on the half).
            let off: f32 =
                beats.iter().map(|&t| around(t + period / 4.0)).sum::<f32>() / beats.len() as f32;
            assert!(
                on > 3.0 * off,
                "seed {seed}/{voicing}: onset strength {on} at beats, {off} between"
            );
        }
    }

    #[test]
    fn the_same_spec_and_seed_render_the_same_samples() {
        let spec = short(7, |_| {});
        let a = render_gm(&spec, &font(), 11).unwrap();
        assert_eq!(a, render_gm(&spec, &font(), 11).unwrap());
    }

    #[test]
    fn keeps_the_truth_of_the_synthesiser_but_not_its_sound() {
        let spec = short(7, |s| s.meter = 3);
        let gm = render_gm(&spec, &font(), 0).unwrap();
        let synthesised = cutscore_synth::render(&spec).unwrap();
        assert_eq!(gm.truth, synthesised.truth);
        assert_eq!(gm.frames(), synthesised.frames());
        let difference: Vec<f32> = gm
            .samples
            .iter()
            .zip(&synthesised.samples)
            .map(|(a, b)| a - b)
            .collect();
        assert!(
            rms(&difference) > 0.5 * rms(&gm.samples),
            "{} vs {}",
            rms(&difference),
            rms(&gm.samples)
        );
    }

    #[test]
    fn seeds_draw_different_instruments_from_each_part_family() {
        let spec = short(7, |_| {});
        let bands: Vec<Band> = (0..24).map(|seed| band(&spec, seed)).collect();
        for (stem, least) in [
            (Stem::Bass, 4),
            (Stem::Pad, 6),
            (Stem::Arp, 6),
            (Stem::Lead, 6),
        ] {
            let mut drawn: Vec<u8> = bands
                .iter()
                .map(|b| b.setups[stem.index()].program)
                .collect();
            assert!(
                drawn.iter().all(|p| stem.programs().contains(p)),
                "{stem:?}"
            );
            drawn.sort_unstable();
            drawn.dedup();
            assert!(drawn.len() >= least, "{stem:?}: only {drawn:?}");
        }
        let kits: Vec<u8> = bands.iter().map(|b| b.setups[0].program).collect();
        assert!(
            kits.iter().any(|&k| k != 0) && kits.contains(&0),
            "{kits:?}"
        );

        let (a, b) = (band(&spec, 1), band(&spec, 2));
        assert_ne!(a, b);
        let one = render_gm(&spec, &font(), 1).unwrap();
        let two = render_gm(&spec, &font(), 2).unwrap();
        assert_eq!(one.truth, two.truth);
        let difference: Vec<f32> = one
            .samples
            .iter()
            .zip(&two.samples)
            .map(|(a, b)| a - b)
            .collect();
        assert!(rms(&difference) > 0.5 * rms(&one.samples));
    }

    #[test]
    fn the_mix_is_finite_stereo_and_peaks_at_the_synthesisers_peak() {
        for spec in [
            short(1, |_| {}),
            short(2, |s| s.drums = false),
            short(3, |s| {
                s.swing = 0.3;
                s.sample_rate = 48_000
            }),
        ] {
            let song = render_gm(&spec, &font(), spec.seed).unwrap();
            assert_eq!((song.channels, song.sample_rate), (2, spec.sample_rate));
            assert!(song.samples.iter().all(|x| x.is_finite()));
            let peak = song.samples.iter().fold(0.0f32, |m, x| m.max(x.abs()));
            assert!((peak - cutscore_synth::PEAK).abs() < 1e-5, "peak {peak}");
            let (left, right): (Vec<f32>, Vec<f32>) =
                song.samples.chunks(2).map(|f| (f[0], f[1])).unzip();
            assert_ne!(left, right, "stereo, not mono");
            assert_eq!(
                song.frames() as f64 / f64::from(spec.sample_rate),
                song.truth.duration_s
            );
            // Music throughout: every bar has sound, none of it near silence.
            for bar in song.truth.downbeats.windows(2) {
                let at = |t: f64| 2 * (t * f64::from(spec.sample_rate)) as usize;
                let level = rms(&song.samples[at(bar[0])..at(bar[1])]);
                assert!(level > 0.01, "bar at {} s: rms {level}", bar[0]);
            }
        }
    }

    #[test]
    fn drums_are_tighter_than_the_other_players() {
        let spec = short(9, |s| s.sample_rate = 44_100);
        let score = cutscore_synth::compose(&spec).unwrap();
        let band = band(&spec, 0);
        let mut rng = StdRng::seed_from_u64(1);
        let events = schedule(&score, &band, spec.sample_rate, &mut rng);
        let mut drums = Vec::new();
        let mut others = Vec::new();
        for event in events.iter().filter(|e| e.velocity.is_some()) {
            let note = &score.notes[event.note];
            let ms = (event.frame as f64 - note.start as f64) / 44.1 + 1000.0 * SOUND_LATENCY_S;
            if note.part.is_drum() {
                drums.push(ms);
            } else {
                others.push(ms);
            }
        }
        let spread = |x: &[f64]| {
            let mean = x.iter().sum::<f64>() / x.len() as f64;
            (x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
        };
        let (d, o) = (spread(&drums), spread(&others));
        assert!(d > 0.3 && d < o, "drums {d} ms, others {o} ms");
        assert!(o < 10.0, "others {o} ms");
        // 3 sigma of at most 2.25 ms, plus half a block.
        assert!(drums.iter().all(|ms| ms.abs() < 7.0), "{drums:?}");
        assert!(events.windows(2).all(|w| w[0].frame <= w[1].frame));
        assert!(events.iter().all(|e| e.frame % BLOCK == 0));
    }

    #[test]
    fn a_note_sounds_from_the_block_boundary_of_its_event() {
        let setup = StemSetup {
            program: 0,
            level_db: 0.0,
            pan: 64,
            reverb: 0,
            chorus: 0,
            jitter_s: 0.0,
            lag_s: 0.0,
            top_velocity: 100.0,
        };
        let start = 4096;
        let events = [
            Event {
                stem: Stem::Drums,
                frame: start,
                key: 36,
                velocity: Some(110),
                note: 0,
            },
            Event {
                stem: Stem::Drums,
                frame: start + 4000,
                key: 36,
                velocity: None,
                note: 0,
            },
        ];
        let (left, right) = render_stem(&font(), 44_100, &setup, &events, 16_384).unwrap();
        let mono: Vec<f32> = left.iter().zip(&right).map(|(l, r)| l + r).collect();
        assert!(mono[..start].iter().all(|&x| x == 0.0));
        let peak = mono.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        let onset = mono.iter().position(|x| x.abs() >= 0.1 * peak).unwrap();
        let lag_ms = (onset - start) as f64 / 44.1;
        // The envelope's 1 ms delay, then the kick's attack.
        assert!(
            (1.0..4.0).contains(&lag_ms),
            "kick onset {lag_ms} ms after its note-on"
        );
    }

    #[test]
    fn a_missing_or_invalid_soundfont_is_a_typed_error_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nowhere.sf2");
        let error = load_soundfont(&missing).unwrap_err();
        assert!(
            matches!(&error, GmError::SoundFontMissing { path } if *path == missing),
            "{error:?}"
        );
        assert!(error.to_string().contains(&missing.display().to_string()));

        let garbage = dir.path().join("garbage.sf2");
        std::fs::write(&garbage, b"RIFF\x04\x00\x00\x00sfbkLIST").unwrap();
        let error = load_soundfont(&garbage).unwrap_err();
        assert!(
            matches!(&error, GmError::SoundFontInvalid { path, .. } if *path == garbage),
            "{error:?}"
        );
        assert!(error.to_string().contains("garbage.sf2"), "{error}");
    }

    #[test]
    fn specs_the_soundfont_cannot_play_are_refused() {
        let low = short(1, |s| s.sample_rate = 8_000);
        assert!(matches!(
            render_gm(&low, &font(), 0).unwrap_err(),
            GmError::SampleRate { actual: 8_000, .. }
        ));
        let bad = short(1, |s| s.meter = 5);
        assert!(matches!(
            render_gm(&bad, &font(), 0).unwrap_err(),
            GmError::Spec(SynthError::Meter { actual: 5 })
        ));
    }
}
