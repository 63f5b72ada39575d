//! Test signals with known beats, shared by the analysis tests.

/// A click track: a low thump on every beat, louder on the first beat of each bar, and a
/// tone that changes at every bar.
pub fn click_track(bpm: f64, meter: usize, seconds: f64, rate: u32) -> Vec<f32> {
    let n = (seconds * rate as f64) as usize;
    let period = 60.0 / bpm;
    let mut out = vec![0.0f32; n];
    let mut beat = 0usize;
    loop {
        let start = (beat as f64 * period * rate as f64).round() as usize;
        if start >= n {
            break;
        }
        let accent = if beat.is_multiple_of(meter) { 1.0 } else { 0.6 };
        let freq = [220.0, 330.0, 262.0, 392.0][(beat / meter) % 4];
        let len = (period * rate as f64) as usize;
        for i in 0..len.min(n - start) {
            let t = i as f32 / rate as f32;
            let thump = accent * (-t * 30.0).exp() * (std::f32::consts::TAU * 60.0 * t).sin();
            let tone = 0.15 * (std::f32::consts::TAU * freq * t).sin();
            out[start + i] += 0.7 * thump + tone;
        }
        beat += 1;
    }
    out
}

/// Activations of an ideal network: a peak (beat 0.9, downbeat 0.8 on every `meter`-th beat
/// from beat `first_down`) every `60 / bpm` s from 0.5 s, its neighbouring frames at half
/// height as the network is trained to give, over a floor of 0.02 / 0.01.
pub fn ideal_activations(
    bpm: f64,
    meter: usize,
    first_down: usize,
    seconds: f64,
) -> Vec<super::beat_model::Activation> {
    use super::beat_model::Activation;
    use super::frontend::{frame_rate, frame_time};
    let frames = (seconds * frame_rate()) as usize;
    let mut out = vec![
        Activation {
            beat: 0.02,
            downbeat: 0.01
        };
        frames
    ];
    for i in 0.. {
        let t = 0.5 + i as f64 * 60.0 / bpm;
        let k = ((t - frame_time(0)) * frame_rate()).round() as usize;
        if k + 1 >= frames {
            break;
        }
        for (j, scale) in [(k.saturating_sub(1), 0.5), (k + 1, 0.5), (k, 1.0)] {
            out[j].beat = 0.9 * scale;
            if i % meter == first_down % meter {
                out[j].downbeat = 0.8 * scale;
            }
        }
    }
    out
}

/// A slow song's activations as the network gives them when the tracker doubles it: the
/// [`ideal_activations`] of `bpm` (twice the song's tempo) with every other beat (the "and") at
/// `and` of the beat's probability, and a downbeat output that is no help (0.05 throughout).
pub fn busy_eighths(bpm: f64, and: f32, seconds: f64) -> Vec<super::beat_model::Activation> {
    use super::frontend::{frame_rate, frame_time};
    let mut activations = ideal_activations(bpm, 4, 0, seconds);
    for i in (1..).step_by(2) {
        let t = 0.5 + i as f64 * 60.0 / bpm;
        let k = ((t - frame_time(0)) * frame_rate()).round() as usize;
        if k + 1 >= activations.len() {
            break;
        }
        for a in &mut activations[k - 1..=k + 1] {
            a.beat *= and;
        }
    }
    activations.iter_mut().for_each(|a| a.downbeat = 0.05);
    activations
}

/// Activations whose peaks fall between frames: every `60 / bpm` s from 0.5 s a bell of beat
/// probability 0.9 (and downbeat 0.8 on every `meter`-th beat), two thirds of a frame wide,
/// sampled at the front end's frames, over a floor of 0.02 / 0.01. Its highest frame is up to
/// half a frame from the beat; its neighbours say where.
pub fn bell_activations(
    bpm: f64,
    meter: usize,
    seconds: f64,
) -> Vec<super::beat_model::Activation> {
    use super::beat_model::Activation;
    use super::frontend::{frame_rate, frame_time};
    let period = 60.0 / bpm;
    let width = 0.66 / frame_rate();
    (0..(seconds * frame_rate()) as usize)
        .map(|k| {
            let t = frame_time(k);
            let i = ((t - 0.5) / period).round().max(0.0);
            let bell = (-0.5 * ((t - 0.5 - i * period) / width).powi(2)).exp() as f32;
            let down = if (i as usize).is_multiple_of(meter) {
                0.8
            } else {
                0.0
            };
            Activation {
                beat: 0.02 + 0.88 * bell,
                downbeat: 0.01 + down * bell,
            }
        })
        .collect()
}
