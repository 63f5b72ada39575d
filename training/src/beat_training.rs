//! Training the activation network: examples with exact beats, the augmentation that makes
//! them look like other recordings, and the optimisation loop.
//!
//! - [`BeatExample`]: a track's mel frames and its beat and downbeat times.
//! - [`Targets`]: per-frame targets, each annotation's frame 1 and its two neighbours 0.5
//!   (the widened targets of Böck & Davies 2020, so a beat a frame off is not wholly wrong).
//! - [`Augment`]: drawn per excerpt: time stretch (0.8-1.25, interpolating frames, so tempo
//!   and beat times change together), gain (-12 to +6 dB), a spectral tilt and bump (EQ), a
//!   shift of one or two mel bands (pitch), and noise added in the power domain.
//! - [`BeatTrainer`]: AdamW over batches of excerpts with the frame-weighted binary
//!   cross-entropy of [`crate::beat_net::loss`].

use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use candle_nn::optim::{AdamW, Optimizer, ParamsAdamW};
use rand::Rng;
use rand::rngs::StdRng;

use cutscore_analysis::beat_model::{INPUT_BANDS, OUTPUTS};
use cutscore_analysis::frontend::{self, frame_rate, frame_time};
use cutscore_analysis::resample::ResampleError;

use crate::beat_net::{self as net, BeatNet};

/// The lowest value of the normalised log-mel spectrum (its power floor).
const MEL_FLOOR: f32 = -2.0;

/// A track to learn from.
#[derive(Debug, Clone)]
pub struct BeatExample {
    pub name: String,
    /// Normalised log-mel spectrum per front-end frame.
    pub mel: Vec<[f32; INPUT_BANDS]>,
    pub beats: Vec<f64>,
    pub downbeats: Vec<f64>,
}

impl BeatExample {
    /// Analyses mono audio with the front end.
    pub fn from_audio(
        name: impl Into<String>,
        mono: &[f32],
        sample_rate: u32,
        beats: Vec<f64>,
        downbeats: Vec<f64>,
    ) -> Result<Self, ResampleError> {
        let frames = frontend::analyse_frames(mono, sample_rate)?;
        Ok(Self {
            name: name.into(),
            mel: frames.iter().map(|f| f.mel).collect(),
            beats,
            downbeats,
        })
    }

    /// Length in seconds.
    pub fn seconds(&self) -> f64 {
        self.mel.len() as f64 / frame_rate()
    }
}

/// The fractional frame at time `t` (frame `k` is centred at [`frame_time`]`(k)`).
fn frame_at(t: f64) -> f64 {
    (t - frame_time(0)) * frame_rate()
}

/// Per-frame targets of an excerpt: `[2, frames]` (beat, downbeat), row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Targets {
    pub values: Vec<f32>,
    pub frames: usize,
}

impl Targets {
    /// Targets for `frames` frames whose frame 0 is at source frame `start` and which advance
    /// `stretch` source frames per frame.
    pub fn new(example: &BeatExample, start: f64, stretch: f64, frames: usize) -> Self {
        let mut values = vec![0.0f32; OUTPUTS * frames];
        for (row, times) in [&example.beats, &example.downbeats].into_iter().enumerate() {
            for &t in times.iter() {
                let k = ((frame_at(t) - start) / stretch).round();
                if k < -1.0 || k > frames as f64 {
                    continue;
                }
                let k = k as isize;
                for (d, v) in [(-1isize, 0.5f32), (1, 0.5), (0, 1.0)] {
                    let j = k + d;
                    if (0..frames as isize).contains(&j) {
                        let cell = &mut values[row * frames + j as usize];
                        *cell = cell.max(v);
                    }
                }
            }
        }
        Self { values, frames }
    }
}

/// One draw of the augmentation.
#[derive(Debug, Clone, PartialEq)]
pub struct Augment {
    /// Source frames per output frame (> 1 speeds the music up).
    pub stretch: f64,
    /// Added to every band (gain), in normalised units (20 dB each).
    pub gain: f32,
    /// Added per band (EQ).
    pub tilt: [f32; INPUT_BANDS],
    /// Bands the spectrum moves up (positive) or down (pitch).
    pub shift: i32,
    /// Noise power added to every band, relative to full scale (0: none).
    pub noise: f32,
    /// An echo of the bands from this one up, half a beat later, so the "and"s sound as
    /// loud as the beats there (eighth-note guitars and hats over a kick on the beat).
    pub offbeat_echo: Option<OffbeatEcho>,
}

/// The echo of [`Augment::offbeat_echo`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OffbeatEcho {
    /// First band echoed (the bands below keep only the beat's own sound).
    pub from_band: usize,
    /// The echo's power relative to the original, in normalised units (20 dB each, <= 0).
    pub gain: f32,
}

impl Augment {
    /// No change.
    pub fn identity() -> Self {
        Self {
            stretch: 1.0,
            gain: 0.0,
            tilt: [0.0; INPUT_BANDS],
            shift: 0,
            noise: 0.0,
            offbeat_echo: None,
        }
    }

    /// A random draw; with probability `offbeat_echo` it adds an [`OffbeatEcho`] (drawn after
    /// everything else, so a run without echoes draws what it always did).
    pub fn draw(rng: &mut StdRng, offbeat_echo: f64) -> Self {
        let stretch = 2f64.powf(rng.random_range(-0.32..0.32));
        let gain = rng.random_range(-0.6..0.3f32);
        let slope = rng.random_range(-0.4..0.4f32);
        let bump_at = rng.random_range(0.0..INPUT_BANDS as f32);
        let bump = rng.random_range(-0.4..0.4f32);
        let bump_width = rng.random_range(2.0..8.0f32);
        let mut tilt = [0.0f32; INPUT_BANDS];
        for (b, v) in tilt.iter_mut().enumerate() {
            let x = b as f32 / (INPUT_BANDS - 1) as f32 - 0.5;
            let d = (b as f32 - bump_at) / bump_width;
            *v = slope * x + bump * (-0.5 * d * d).exp();
        }
        let shift = if rng.random_bool(0.3) {
            rng.random_range(-2..=2)
        } else {
            0
        };
        let noise = if rng.random_bool(0.3) {
            10f32.powf(rng.random_range(-7.0..-3.5))
        } else {
            0.0
        };
        let offbeat_echo =
            (offbeat_echo > 0.0 && rng.random_bool(offbeat_echo.min(1.0))).then(|| OffbeatEcho {
                from_band: rng.random_range(3..12),
                gain: rng.random_range(-0.45..0.0f32),
            });
        Self {
            stretch,
            gain,
            tilt,
            shift,
            noise,
            offbeat_echo,
        }
    }

    /// The augmented mel frames of an excerpt: `frames` frames from source frame `start`.
    /// Writes `[40, frames]` (band-major, as the network reads it) into `out`.
    pub fn apply(
        &self,
        example: &BeatExample,
        start: f64,
        frames: usize,
        rng: &mut StdRng,
        out: &mut [f32],
    ) {
        let n = example.mel.len();
        // The mel value of `band` at fractional source frame `pos`, interpolated.
        let value = |pos: f64, band: usize| -> f32 {
            let i = pos.floor();
            let w = (pos - i) as f32;
            let at = |k: f64| -> f32 {
                if k >= 0.0 && (k as usize) < n {
                    example.mel[k as usize][band]
                } else {
                    MEL_FLOOR
                }
            };
            at(i) * (1.0 - w) + at(i + 1.0) * w
        };
        for j in 0..frames {
            let pos = start + j as f64 * self.stretch;
            let echo = self
                .offbeat_echo
                .and_then(|e| Some((e, pos - half_beat_frames(&example.beats, pos)?)));
            let noise = self.noise * rng.random_range(0.5..1.5f32);
            for band in 0..INPUT_BANDS {
                let src = (band as i32 - self.shift).clamp(0, INPUT_BANDS as i32 - 1) as usize;
                let mut v = value(pos, src);
                if let Some((e, from)) = echo.filter(|(e, _)| band >= e.from_band) {
                    v = power_sum(v, value(from, src) + e.gain);
                }
                v = v + self.gain + self.tilt[band];
                if noise > 0.0 {
                    let power = 10f32.powf(2.0 * v - 6.0) + noise;
                    v = (power.log10() + 6.0) / 2.0;
                }
                out[band * frames + j] = v.max(MEL_FLOOR);
            }
        }
    }
}

/// Half the beat interval around source frame `pos`, in frames (`None` outside the beats).
fn half_beat_frames(beats: &[f64], pos: f64) -> Option<f64> {
    let i = beats.partition_point(|&t| frame_at(t) <= pos);
    let (a, b) = (beats.get(i.checked_sub(1)?)?, beats.get(i)?);
    Some((b - a) * frame_rate() / 2.0)
}

/// Two normalised log-mel values (power `10^(2v - 6)`) added as powers.
fn power_sum(a: f32, b: f32) -> f32 {
    let (hi, lo) = if a >= b { (a, b) } else { (b, a) };
    hi + (1.0 + 10f32.powf(2.0 * (lo - hi))).log10() / 2.0
}

/// Optimisation settings.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainSettings {
    pub learning_rate: f64,
    pub weight_decay: f64,
    /// Excerpts per step.
    pub batch: usize,
    /// Frames per excerpt.
    pub excerpt_frames: usize,
    /// Share of excerpts with an [`OffbeatEcho`].
    pub offbeat_echo: f64,
}

impl Default for TrainSettings {
    fn default() -> Self {
        Self {
            learning_rate: 2e-3,
            weight_decay: 1e-4,
            batch: 8,
            excerpt_frames: 1024,
            offbeat_echo: 0.0,
        }
    }
}

/// The network, its variables and the optimiser.
pub struct BeatTrainer {
    pub net: BeatNet,
    pub varmap: VarMap,
    optimizer: AdamW,
    device: Device,
    settings: TrainSettings,
}

impl BeatTrainer {
    /// A trainer for `net` whose variables are `varmap`.
    pub fn new(
        net: BeatNet,
        varmap: VarMap,
        device: Device,
        settings: TrainSettings,
    ) -> candle_core::Result<Self> {
        let optimizer = AdamW::new(
            varmap.all_vars(),
            ParamsAdamW {
                lr: settings.learning_rate,
                weight_decay: settings.weight_decay,
                ..Default::default()
            },
        )?;
        Ok(Self {
            net,
            varmap,
            optimizer,
            device,
            settings,
        })
    }

    /// Sets the learning rate (for a schedule).
    pub fn set_learning_rate(&mut self, lr: f64) {
        self.optimizer.set_learning_rate(lr);
    }

    /// A batch of augmented excerpts drawn from `examples`: mel `[batch, 40, frames]`,
    /// targets and weights `[batch, 2, frames]`.
    pub fn draw_batch(
        &self,
        examples: &[BeatExample],
        rng: &mut StdRng,
    ) -> candle_core::Result<(Tensor, Tensor, Tensor)> {
        let frames = self.settings.excerpt_frames;
        let batch = self.settings.batch;
        let mut mel = vec![0.0f32; batch * INPUT_BANDS * frames];
        let mut targets = vec![0.0f32; batch * OUTPUTS * frames];
        let mut weights = vec![0.0f32; batch * OUTPUTS * frames];
        for b in 0..batch {
            let example = &examples[rng.random_range(0..examples.len())];
            let augment = Augment::draw(rng, self.settings.offbeat_echo);
            let span = frames as f64 * augment.stretch;
            let start = if (example.mel.len() as f64) > span {
                rng.random_range(0.0..example.mel.len() as f64 - span)
            } else {
                0.0
            };
            augment.apply(
                example,
                start,
                frames,
                rng,
                &mut mel[b * INPUT_BANDS * frames..(b + 1) * INPUT_BANDS * frames],
            );
            let t = Targets::new(example, start, augment.stretch, frames);
            targets[b * OUTPUTS * frames..(b + 1) * OUTPUTS * frames].copy_from_slice(&t.values);
            // Frames past the source's end teach nothing.
            let valid = ((example.mel.len() as f64 - start) / augment.stretch).ceil() as usize;
            for row in 0..OUTPUTS {
                let w =
                    &mut weights[(b * OUTPUTS + row) * frames..(b * OUTPUTS + row + 1) * frames];
                w[..valid.min(frames)].fill(1.0);
            }
        }
        let shape = |c: usize| (batch, c, frames);
        Ok((
            Tensor::from_vec(mel, shape(INPUT_BANDS), &self.device)?,
            Tensor::from_vec(targets, shape(OUTPUTS), &self.device)?,
            Tensor::from_vec(weights, shape(OUTPUTS), &self.device)?,
        ))
    }

    /// One optimisation step on a drawn batch; returns its loss.
    pub fn step(&mut self, examples: &[BeatExample], rng: &mut StdRng) -> candle_core::Result<f32> {
        let (mel, targets, weights) = self.draw_batch(examples, rng)?;
        let logits = self.net.forward(&mel, true)?;
        let loss = net::loss(&logits, &targets, &weights)?;
        self.optimizer.backward_step(&loss)?;
        loss.to_scalar::<f32>()
    }

    /// Mean loss over whole examples, without dropout or augmentation.
    pub fn loss_on(&self, examples: &[BeatExample]) -> candle_core::Result<f32> {
        let mut total = 0.0f64;
        let mut weight = 0.0f64;
        for example in examples {
            let frames = example.mel.len();
            if frames == 0 {
                continue;
            }
            let mut mel = vec![0.0f32; INPUT_BANDS * frames];
            for (j, f) in example.mel.iter().enumerate() {
                for band in 0..INPUT_BANDS {
                    mel[band * frames + j] = f[band];
                }
            }
            let mel = Tensor::from_vec(mel, (1, INPUT_BANDS, frames), &self.device)?;
            let t = Targets::new(example, 0.0, 1.0, frames);
            let targets = Tensor::from_vec(t.values, (1, OUTPUTS, frames), &self.device)?;
            let weights =
                Tensor::ones((1, OUTPUTS, frames), candle_core::DType::F32, &self.device)?;
            let logits = self.net.forward(&mel, false)?;
            let loss = net::loss(&logits, &targets, &weights)?.to_scalar::<f32>()?;
            total += loss as f64 * frames as f64;
            weight += frames as f64;
        }
        Ok((total / weight.max(1.0)) as f32)
    }
}

/// The learning rate of `step` of `steps`: a linear warm-up over the first 2 %, then a cosine
/// down to a tenth of `base`.
pub fn learning_rate(base: f64, step: usize, steps: usize) -> f64 {
    let warm = (steps / 50).max(1);
    if step < warm {
        return base * (step + 1) as f64 / warm as f64;
    }
    let x = (step - warm) as f64 / (steps - warm).max(1) as f64;
    base * (0.1 + 0.9 * 0.5 * (1.0 + (std::f64::consts::PI * x).cos()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// Clicks (every band at 1.0 over a floor of -1.0) on beats every 20 frames from frame 10.
    fn clicks() -> BeatExample {
        let mut mel = vec![[-1.0f32; INPUT_BANDS]; 200];
        let mut beats = Vec::new();
        for k in (10..200).step_by(20) {
            mel[k] = [1.0; INPUT_BANDS];
            beats.push(frame_time(k));
        }
        BeatExample {
            name: "clicks".into(),
            mel,
            downbeats: beats.iter().step_by(4).copied().collect(),
            beats,
        }
    }

    fn excerpt(augment: &Augment, example: &BeatExample) -> Vec<f32> {
        let mut out = vec![0.0; INPUT_BANDS * 200];
        let mut rng = StdRng::seed_from_u64(1);
        augment.apply(example, 0.0, 200, &mut rng, &mut out);
        out
    }

    #[test]
    fn identity_keeps_the_spectrum() {
        let example = clicks();
        let out = excerpt(&Augment::identity(), &example);
        for (k, frame) in example.mel.iter().enumerate() {
            for (band, &v) in frame.iter().enumerate() {
                assert_eq!(out[band * 200 + k], v, "frame {k} band {band}");
            }
        }
    }

    /// Half a beat after each click its upper bands sound again at the echo's gain; the bands
    /// below stay quiet, and nothing moves on the beats.
    #[test]
    fn offbeat_echo_repeats_the_upper_bands_half_a_beat_later() {
        let example = clicks();
        let augment = Augment {
            offbeat_echo: Some(OffbeatEcho {
                from_band: 5,
                gain: -0.3,
            }),
            ..Augment::identity()
        };
        let out = excerpt(&augment, &example);
        let at = |band: usize, k: usize| out[band * 200 + k];
        for beat in [30, 50, 110] {
            let and = beat + 10;
            assert!((at(0, and) + 1.0).abs() < 1e-6 && (at(4, and) + 1.0).abs() < 1e-6);
            // 1.0 - 0.3 = 0.7 added as power to the floor's -1.0: a hair above 0.7.
            assert!((at(5, and) - 0.7).abs() < 1e-3, "{}", at(5, and));
            assert!((at(INPUT_BANDS - 1, and) - 0.7).abs() < 1e-3);
            // The beat itself has the echo of the quiet "and" before it: the same, to 1e-3.
            assert!((at(20, beat) - 1.0).abs() < 1e-3);
        }
        // Before the first beat there is no beat interval, so no echo.
        assert_eq!(at(20, 5), -1.0);
        assert_eq!(power_sum(0.5, 0.5), 0.5 + 2f32.log10() / 2.0);
    }

    /// A run without echoes draws what it drew before echoes existed.
    #[test]
    fn draws_without_echoes_are_unchanged_by_them() {
        let mut a = StdRng::seed_from_u64(3);
        let mut b = StdRng::seed_from_u64(3);
        let plain = Augment::draw(&mut a, 0.0);
        let with = Augment::draw(&mut b, 1.0);
        assert_eq!(plain.offbeat_echo, None);
        assert!(with.offbeat_echo.is_some());
        assert_eq!(
            Augment {
                offbeat_echo: None,
                ..with
            },
            plain
        );
    }
}
