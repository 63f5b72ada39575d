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
