//! Training the activation network: examples with exact beats, the augmentation that makes
//! them look like other recordings, and the optimisation loop.
//!
//! - [`BeatExample`]: a track's mel frames and its beat and downbeat times.
//! - [`Targets`]: per-frame targets, each annotation's frame 1 and its two neighbours 0.5
//!   (the widened targets of Böck & Davies 2020, so a beat a frame off is not wholly wrong).
//! - [`Augment`]: drawn per excerpt: time stretch (0.8-1.25, interpolating frames, so tempo
//!   and beat times change together), gain (-12 to +6 dB), a spectral tilt and bump (EQ), a
//!   shift of one or two mel bands (pitch), and noise added in the power domain.
//! - [`TrainingSet`]: the examples with each one's chance of being drawn (a share for the few
//!   recordings beside many rendered songs).
//! - [`BeatTrainer`]: AdamW over batches of excerpts with the frame-weighted binary
//!   cross-entropy of [`crate::beat_net::loss`].

use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use candle_nn::optim::{AdamW, Optimizer, ParamsAdamW};
use rand::Rng;
use rand::distr::Distribution;
use rand::distr::weighted::{Error as WeightError, WeightedIndex};
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

/// The songs batches are drawn from, each with its chance of being drawn.
#[derive(Debug, Clone)]
pub struct TrainingSet {
    examples: Vec<BeatExample>,
    pick: WeightedIndex<f64>,
}

impl TrainingSet {
    /// Every song equally likely.
    pub fn uniform(examples: Vec<BeatExample>) -> Result<Self, WeightError> {
        Self::with_share(examples, Vec::new(), 0.0)
    }

    /// `favoured` songs drawn `share` of the time (0 to 1), `rest` the remainder; within each
    /// group every song is equally likely. Recordings, few beside many rendered songs, would
    /// otherwise be a sliver of the batches.
    pub fn with_share(
        rest: Vec<BeatExample>,
        favoured: Vec<BeatExample>,
        share: f64,
    ) -> Result<Self, WeightError> {
        let share = if favoured.is_empty() {
            0.0
        } else if rest.is_empty() {
            1.0
        } else {
            share.clamp(0.0, 1.0)
        };
        let weights =
            std::iter::repeat_n((1.0 - share) / rest.len().max(1) as f64, rest.len()).chain(
                std::iter::repeat_n(share / favoured.len().max(1) as f64, favoured.len()),
            );
        let pick = WeightedIndex::new(weights)?;
        let mut examples = rest;
        examples.extend(favoured);
        Ok(Self { examples, pick })
    }

    pub fn examples(&self) -> &[BeatExample] {
        &self.examples
    }

    fn draw(&self, rng: &mut StdRng) -> &BeatExample {
        &self.examples[self.pick.sample(rng)]
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

/// The longest gap between two beats whose midpoint is an "and" (longer: a pause, not a beat).
const MAX_OFFBEAT_GAP_S: f64 = 1.5;

/// The frames of an excerpt (as [`Targets::new`] places them) at and next to the midpoint
/// between each two neighbouring beats no more than [`MAX_OFFBEAT_GAP_S`] apart: where a
/// network that hears the eighth notes as beats fires, and a decoder then follows twice the
/// tempo. A frame may also hold a target (beats four frames apart or closer); the caller skips
/// those.
pub fn offbeat_frames(
    example: &BeatExample,
    start: f64,
    stretch: f64,
    frames: usize,
) -> Vec<usize> {
    let mut out = Vec::new();
    for pair in example.beats.windows(2) {
        if pair[1] - pair[0] > MAX_OFFBEAT_GAP_S {
            continue;
        }
        let k = ((frame_at(0.5 * (pair[0] + pair[1])) - start) / stretch).round() as isize;
        for j in k - 1..=k + 1 {
            if (0..frames as isize).contains(&j) {
                out.push(j as usize);
            }
        }
    }
    out
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
        }
    }

    /// A random draw.
    pub fn draw(rng: &mut StdRng) -> Self {
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
        Self {
            stretch,
            gain,
            tilt,
            shift,
            noise,
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
        for j in 0..frames {
            let pos = start + j as f64 * self.stretch;
            let i = pos.floor();
            let w = (pos - i) as f32;
            let at = |k: f64| -> Option<&[f32; INPUT_BANDS]> {
                (k >= 0.0 && (k as usize) < n).then(|| &example.mel[k as usize])
            };
            let (a, b) = (at(i), at(i + 1.0));
            let noise = self.noise * rng.random_range(0.5..1.5f32);
            for band in 0..INPUT_BANDS {
                let src = (band as i32 - self.shift).clamp(0, INPUT_BANDS as i32 - 1) as usize;
                let va = a.map_or(MEL_FLOOR, |f| f[src]);
                let vb = b.map_or(MEL_FLOOR, |f| f[src]);
                let mut v = va * (1.0 - w) + vb * w + self.gain + self.tilt[band];
                if noise > 0.0 {
                    let power = 10f32.powf(2.0 * v - 6.0) + noise;
                    v = (power.log10() + 6.0) / 2.0;
                }
                out[band * frames + j] = v.max(MEL_FLOOR);
            }
        }
    }
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
    /// Weight of the beat output's loss on the frames halfway between two beats (the "and"s;
    /// [`offbeat_frames`]) that have no target; all other frames of the song weigh 1, those
    /// past its end 0.
    pub offbeat_weight: f32,
}

impl Default for TrainSettings {
    fn default() -> Self {
        Self {
            learning_rate: 2e-3,
            weight_decay: 1e-4,
            batch: 8,
            excerpt_frames: 1024,
            offbeat_weight: 1.0,
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
        examples: &TrainingSet,
        rng: &mut StdRng,
    ) -> candle_core::Result<(Tensor, Tensor, Tensor)> {
        let frames = self.settings.excerpt_frames;
        let batch = self.settings.batch;
        let mut mel = vec![0.0f32; batch * INPUT_BANDS * frames];
        let mut targets = vec![0.0f32; batch * OUTPUTS * frames];
        let mut weights = vec![0.0f32; batch * OUTPUTS * frames];
        for b in 0..batch {
            let example = examples.draw(rng);
            let augment = Augment::draw(rng);
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
            if self.settings.offbeat_weight != 1.0 {
                let w = &mut weights[b * OUTPUTS * frames..b * OUTPUTS * frames + frames];
                for k in offbeat_frames(example, start, augment.stretch, frames) {
                    if k < valid && t.values[k] == 0.0 {
                        w[k] = self.settings.offbeat_weight;
                    }
                }
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
    pub fn step(&mut self, examples: &TrainingSet, rng: &mut StdRng) -> candle_core::Result<f32> {
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

    #[test]
    fn identity_keeps_the_spectrum_and_targets_sit_on_the_beats() {
        let example = clicks();
        let mut out = vec![0.0; INPUT_BANDS * 200];
        let mut rng = StdRng::seed_from_u64(1);
        Augment::identity().apply(&example, 0.0, 200, &mut rng, &mut out);
        for (k, frame) in example.mel.iter().enumerate() {
            for (band, &v) in frame.iter().enumerate() {
                assert_eq!(out[band * 200 + k], v, "frame {k} band {band}");
            }
        }
        let targets = Targets::new(&example, 0.0, 1.0, 200);
        for k in (10..200).step_by(20) {
            assert_eq!(targets.values[k], 1.0);
            assert_eq!((targets.values[k - 1], targets.values[k + 1]), (0.5, 0.5));
            assert_eq!(targets.values[k + 5], 0.0);
        }
        // Downbeats every fourth beat, in the second row.
        assert_eq!(targets.values[200 + 10], 1.0);
        assert_eq!(targets.values[200 + 30], 0.0);
        assert_eq!(targets.values[200 + 90], 1.0);
    }

    /// Stretching by 2 reads every other source frame: the clicks land every 10 frames.
    #[test]
    fn a_stretch_moves_spectrum_and_targets_together() {
        let example = clicks();
        let augment = Augment {
            stretch: 2.0,
            ..Augment::identity()
        };
        let mut out = vec![0.0; INPUT_BANDS * 90];
        let mut rng = StdRng::seed_from_u64(1);
        augment.apply(&example, 0.0, 90, &mut rng, &mut out);
        let targets = Targets::new(&example, 0.0, 2.0, 90);
        for k in (5..90).step_by(10) {
            assert_eq!(out[k], 1.0, "frame {k}");
            assert_eq!(targets.values[k], 1.0, "frame {k}");
        }
        assert_eq!(out[10], -1.0);
    }

    /// The "and"s lie halfway between the clicks (frames 20, 40, ... and their neighbours),
    /// where no target is set; a stretch moves them with the beats, and a pause between two
    /// beats has none.
    #[test]
    fn offbeat_frames_lie_halfway_between_the_beats() {
        let mut example = clicks();
        let ands = offbeat_frames(&example, 0.0, 1.0, 200);
        let expected: Vec<usize> = (20..200).step_by(20).flat_map(|k| k - 1..=k + 1).collect();
        assert_eq!(ands, expected);
        let targets = Targets::new(&example, 0.0, 1.0, 200);
        assert!(ands.iter().all(|&k| targets.values[k] == 0.0));
        let stretched = offbeat_frames(&example, 0.0, 2.0, 90);
        assert_eq!(&stretched[..6], &[9, 10, 11, 19, 20, 21]);
        // A two-second pause after the fifth beat: no "and" in it.
        for t in &mut example.beats[5..] {
            *t += 2.0;
        }
        let paused = offbeat_frames(&example, 0.0, 1.0, 400);
        assert_eq!(paused.len(), 3 * (example.beats.len() - 2));
        // The pause runs from frame 90 to about 196: its midpoint (143) is no "and".
        assert!(!paused.iter().any(|k| (120..180).contains(k)));
    }

    fn named(name: &str) -> BeatExample {
        BeatExample {
            name: name.into(),
            ..clicks()
        }
    }

    /// One recording beside nine rendered songs, given a quarter of the draws, is drawn about
    /// a quarter of the time (uniformly it would be a tenth).
    #[test]
    fn a_share_sets_how_often_the_favoured_songs_are_drawn() {
        let rest: Vec<_> = (0..9).map(|i| named(&format!("song{i}"))).collect();
        let set = TrainingSet::with_share(rest.clone(), vec![named("recording")], 0.25).unwrap();
        let mut rng = StdRng::seed_from_u64(3);
        let hits = (0..4000)
            .filter(|_| set.draw(&mut rng).name == "recording")
            .count();
        assert!((900..1100).contains(&hits), "{hits} of 4000");
        let uniform = TrainingSet::uniform(rest).unwrap();
        assert_eq!(uniform.examples().len(), 9);
        assert!(TrainingSet::uniform(Vec::new()).is_err());
    }
}
