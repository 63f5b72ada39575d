//! The instruments of the synthetic songs and the stereo mix they are added into.
//!
//! Classic subtractive/additive synthesis, kept simple enough to render a minute of audio in a
//! few tens of milliseconds: drums are one-shots rendered once per song (kick: a sine whose pitch
//! falls exponentially, as in the TR-808; snare: a tone plus a band of noise; hats and crash:
//! high-passed noise), tonal parts are oscillators (sine, triangle, naive saw and square) through
//! a one-pole low-pass filter with an attack/decay/sustain/release envelope. Every sound starts at
//! full amplitude on its first sample (cosine phase, no fade-in) for the drums and the plucked
//! arpeggio, so an onset is exactly where the score put it.

use std::f32::consts::{PI, TAU};

use rand::Rng;
use rand::rngs::StdRng;

/// Sound choices drawn once per song from its seed.
#[derive(Debug, Clone)]
pub(crate) struct Timbre {
    pub kick_start_hz: f32,
    pub kick_end_hz: f32,
    pub kick_sweep_s: f32,
    pub kick_decay_s: f32,
    pub snare_tone_hz: f32,
    pub snare_decay_s: f32,
    pub snare_noise_hz: f32,
    pub hat_decay_s: f32,
    pub hat_cutoff_hz: f32,
    pub pad_detune_cents: f32,
    pub pad_cutoff_hz: f32,
    pub pad_attack_s: f32,
    pub pad_wave: Wave,
    pub bass_cutoff_hz: f32,
    pub bass_wave: Wave,
    pub arp_decay_s: f32,
    pub arp_wave: Wave,
    pub lead_wave: Wave,
    pub lead_vibrato_hz: f32,
    pub lead_pan: f32,
    pub hat_pan: f32,
}

impl Timbre {
    pub fn draw(rng: &mut StdRng) -> Self {
        let tonal = |rng: &mut StdRng| match rng.random_range(0..3) {
            0 => Wave::Saw,
            1 => Wave::Square,
            _ => Wave::Triangle,
        };
        Self {
            kick_start_hz: rng.random_range(110.0..190.0),
            kick_end_hz: rng.random_range(42.0..60.0),
            kick_sweep_s: rng.random_range(0.02..0.06),
            kick_decay_s: rng.random_range(0.15..0.35),
            snare_tone_hz: rng.random_range(160.0..240.0),
            snare_decay_s: rng.random_range(0.08..0.2),
            snare_noise_hz: rng.random_range(1500.0..4000.0),
            hat_decay_s: rng.random_range(0.02..0.06),
            hat_cutoff_hz: rng.random_range(6000.0..9000.0),
            pad_detune_cents: rng.random_range(4.0..14.0),
            pad_cutoff_hz: rng.random_range(1200.0..4000.0),
            pad_attack_s: rng.random_range(0.01..0.06),
            pad_wave: tonal(rng),
            bass_cutoff_hz: rng.random_range(250.0..800.0),
            bass_wave: match rng.random_range(0..3) {
                0 => Wave::Sine,
                1 => Wave::Saw,
                _ => Wave::Square,
            },
            arp_decay_s: rng.random_range(0.12..0.3),
            arp_wave: tonal(rng),
            lead_wave: match rng.random_range(0..3) {
                0 => Wave::Sine,
                1 => Wave::Triangle,
                _ => Wave::Square,
            },
            lead_vibrato_hz: rng.random_range(4.0..6.5),
            lead_pan: rng.random_range(-0.4..0.4),
            hat_pan: rng.random_range(-0.5..0.5),
        }
    }
}

/// Oscillator shapes, all with peak amplitude 1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Wave {
    Sine,
    Triangle,
    Saw,
    Square,
}

impl Wave {
    /// Value at `phase` in cycles, `0 <= phase < 1`.
    fn at(self, p: f32) -> f32 {
        match self {
            Wave::Sine => (TAU * p).sin(),
            Wave::Triangle => 1.0 - 4.0 * (p - 0.5).abs(),
            Wave::Saw => 2.0 * p - 1.0,
            Wave::Square => {
                if p < 0.5 {
                    1.0
                } else {
                    -1.0
                }
            }
        }
    }
}

/// Frequency in Hz of a MIDI note number (A4 = 69 = 440 Hz).
pub(crate) fn midi_hz(midi: f32) -> f32 {
    440.0 * 2f32.powf((midi - 69.0) / 12.0)
}

/// One-pole low-pass filter `y += a (x - y)`, `a = 1 - exp(-2 pi fc / fs)`.
#[derive(Debug, Clone, Copy)]
struct OnePole {
    a: f32,
    y: f32,
}

impl OnePole {
    fn new(cutoff_hz: f32, sample_rate: f32) -> Self {
        let fc = cutoff_hz.min(0.45 * sample_rate);
        Self {
            a: 1.0 - (-TAU * fc / sample_rate).exp(),
            y: 0.0,
        }
    }

    fn low(&mut self, x: f32) -> f32 {
        self.y += self.a * (x - self.y);
        self.y
    }

    fn high(&mut self, x: f32) -> f32 {
        x - self.low(x)
    }
}

/// Drum sounds rendered once per song, added at each hit with its velocity.
pub(crate) struct DrumKit {
    pub kick: Vec<f32>,
    pub snare: Vec<f32>,
    pub closed_hat: Vec<f32>,
    pub open_hat: Vec<f32>,
    pub crash: Vec<f32>,
}

impl DrumKit {
    pub fn render(timbre: &Timbre, sample_rate: u32, rng: &mut StdRng) -> Self {
        let sr = sample_rate as f32;
        let len = |seconds: f32| (seconds * sr).ceil() as usize;

        // Kick: cosine-phase sine sweeping exponentially from start to end pitch, plus a 2 ms
        // click so the attack is sharp even at low pitch.
        let kick = {
            let n = len(timbre.kick_decay_s * 5.0);
            let mut phase = 0.0f32;
            (0..n)
                .map(|k| {
                    let t = k as f32 / sr;
                    let hz = timbre.kick_end_hz
                        + (timbre.kick_start_hz - timbre.kick_end_hz)
                            * (-t / timbre.kick_sweep_s).exp();
                    let body = (TAU * phase).cos() * (-t / timbre.kick_decay_s).exp();
                    let click = 0.3 * (-t / 0.002).exp();
                    phase += hz / sr;
                    body + click
                })
                .collect()
        };

        let mut noise =
            |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-1.0..1.0f32)).collect() };

        // Snare: a short tone and band-passed noise with separate decays.
        let snare = {
            let n = len(timbre.snare_decay_s * 5.0);
            let raw = noise(n);
            let mut low = OnePole::new(timbre.snare_noise_hz * 2.0, sr);
            let mut high = OnePole::new(timbre.snare_noise_hz * 0.3, sr);
            raw.iter()
                .enumerate()
                .map(|(k, &x)| {
                    let t = k as f32 / sr;
                    let band = high.high(low.low(x)) * 2.0;
                    let tone = (TAU * timbre.snare_tone_hz * t).cos() * (-t / 0.04).exp();
                    0.7 * band * (-t / timbre.snare_decay_s).exp() + 0.5 * tone
                })
                .collect()
        };

        let hat = |decay_s: f32, cutoff_hz: f32, noise: &mut dyn FnMut(usize) -> Vec<f32>| {
            let n = len(decay_s * 5.0);
            let mut high = OnePole::new(cutoff_hz, sr);
            noise(n)
                .into_iter()
                .enumerate()
                .map(|(k, x)| 1.5 * high.high(x) * (-(k as f32 / sr) / decay_s).exp())
                .collect::<Vec<f32>>()
        };
        let closed_hat = hat(timbre.hat_decay_s, timbre.hat_cutoff_hz, &mut noise);
        let open_hat = hat(timbre.hat_decay_s * 3.0, timbre.hat_cutoff_hz, &mut noise);
        let crash = hat(0.5, timbre.hat_cutoff_hz * 0.6, &mut noise);
        Self {
            kick,
            snare,
            closed_hat,
            open_hat,
            crash,
        }
    }
}

/// How a tonal note sounds: oscillator, filter and envelope.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Voice {
    pub wave: Wave,
    pub cutoff_hz: f32,
    pub attack_s: f32,
    /// Time constant of the fall from the attack peak towards `sustain`.
    pub decay_s: f32,
    pub sustain: f32,
    pub release_s: f32,
    /// Vibrato rate (0 for none); depth is a fixed 15 cents.
    pub vibrato_hz: f32,
}

impl Voice {
    /// Renders a note of `held` samples plus its release into `out` (cleared first).
    ///
    /// The exponential decay and release are recurrences (one multiply per sample), and the
    /// vibrato uses `2^x ~ 1 + x ln 2` for its few cents, so a note costs a handful of
    /// operations per sample.
    pub fn render_into(&self, midi: f32, held: usize, sample_rate: u32, out: &mut Vec<f32>) {
        let sr = sample_rate as f32;
        let release = (self.release_s * 4.0 * sr) as usize;
        let attack = (self.attack_s * sr) as usize;
        let step = midi_hz(midi) / sr;
        let decay_factor = (-1.0 / (self.decay_s * sr)).exp();
        let release_factor = (-1.0 / (self.release_s * sr)).exp();
        let vibrato_step = self.vibrato_hz / sr;
        let vibrato_depth = 0.15 / 12.0 * std::f32::consts::LN_2;
        let mut filter = OnePole::new(self.cutoff_hz, sr);
        // Start the filter at the first sample's value so a plucked note starts at full level.
        filter.y = self.wave.at(0.25);
        let mut phase = 0.25f32;
        let mut vibrato_phase = 0.0f32;
        let mut decay = 1.0f32;
        let mut level = 0.0f32;
        out.clear();
        out.reserve(held + release);
        for k in 0..held + release {
            if k >= held {
                level *= release_factor;
            } else if k < attack {
                level = k as f32 / attack as f32;
            } else {
                level = self.sustain + (1.0 - self.sustain) * decay;
                decay *= decay_factor;
            }
            let bend = if self.vibrato_hz > 0.0 {
                vibrato_phase += vibrato_step;
                if vibrato_phase >= 1.0 {
                    vibrato_phase -= 1.0;
                }
                1.0 + vibrato_depth * (TAU * vibrato_phase).sin()
            } else {
                1.0
            };
            out.push(filter.low(self.wave.at(phase)) * level);
            phase += step * bend;
            if phase >= 1.0 {
                phase -= 1.0;
            }
        }
    }
}

/// Interleaved stereo buffer the parts are added into.
pub(crate) struct Mix {
    pub samples: Vec<f32>,
}

impl Mix {
    pub fn new(frames: usize) -> Self {
        Self {
            samples: vec![0.0; frames * 2],
        }
    }

    fn frames(&self) -> usize {
        self.samples.len() / 2
    }

    /// Adds `sound * gain` from frame `start`, panned by constant power (`pan` -1 left .. 1
    /// right); whatever would fall past the end is dropped.
    pub fn add(&mut self, start: usize, sound: &[f32], gain: f32, pan: f32) {
        let angle = (pan.clamp(-1.0, 1.0) + 1.0) * PI / 4.0;
        let (left, right) = (gain * angle.cos(), gain * angle.sin());
        let end = (start + sound.len()).min(self.frames());
        if start >= end {
            return;
        }
        let frames = self.samples[start * 2..end * 2].chunks_exact_mut(2);
        for (frame, &x) in frames.zip(sound) {
            frame[0] += x * left;
            frame[1] += x * right;
        }
    }

    /// Scales the mix so its largest sample has magnitude `peak`; returns the gain used.
    pub fn normalise(&mut self, peak: f32) -> f32 {
        let largest = self.samples.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        if largest > 0.0 {
            let gain = peak / largest;
            self.samples.iter_mut().for_each(|x| *x *= gain);
            gain
        } else {
            1.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn drums_start_at_full_level_on_their_first_sample() {
        let mut rng = StdRng::seed_from_u64(3);
        let timbre = Timbre::draw(&mut rng);
        let kit = DrumKit::render(&timbre, 44_100, &mut rng);
        assert!(kit.kick[0] > 1.0, "kick starts at {}", kit.kick[0]);
        let peak = |s: &[f32]| s.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        for sound in [
            &kit.kick,
            &kit.snare,
            &kit.closed_hat,
            &kit.open_hat,
            &kit.crash,
        ] {
            assert!(sound.iter().all(|x| x.is_finite()));
            // Everything has decayed to silence by its end.
            let tail = &sound[sound.len() - 100..];
            assert!(peak(tail) < 0.02 * peak(sound), "tail {}", peak(tail));
        }
    }

    #[test]
    fn a_sine_note_has_the_pitch_of_its_midi_number() {
        let voice = Voice {
            wave: Wave::Sine,
            cutoff_hz: 20_000.0,
            attack_s: 0.0,
            decay_s: 1.0,
            sustain: 1.0,
            release_s: 0.01,
            vibrato_hz: 0.0,
        };
        let mut out = Vec::new();
        voice.render_into(69.0, 44_100, 44_100, &mut out);
        // Count rising zero crossings over the held second: 440 of them.
        let rising = out[..44_100]
            .windows(2)
            .filter(|w| w[0] < 0.0 && w[1] >= 0.0)
            .count();
        assert!((439..=441).contains(&rising), "{rising} cycles");
    }

    #[test]
    fn mix_pans_with_constant_power_and_normalises_to_the_peak() {
        let mut mix = Mix::new(4);
        mix.add(1, &[1.0, 1.0, 1.0, 1.0], 1.0, 0.0);
        let half = std::f32::consts::FRAC_1_SQRT_2;
        assert!((mix.samples[2] - half).abs() < 1e-6 && (mix.samples[3] - half).abs() < 1e-6);
        assert_eq!(mix.samples[0], 0.0);
        mix.add(0, &[2.0], 1.0, -1.0);
        assert!((mix.samples[0] - 2.0).abs() < 1e-6 && mix.samples[1].abs() < 1e-6);
        mix.normalise(0.5);
        let largest = mix.samples.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        assert!((largest - 0.5).abs() < 1e-6);
    }
}
