//! Measures the loudness of rendered joins on real songs: do crossfades exceed the song's own
//! peak?
//!
//! `cargo run --release -p cutscore-training --example join_peaks -- DIR` reads every `*.wav` in
//! DIR with its `*.truth.json` (the real-music development set of `bench/real_set.py`, or
//! `trainer synth` output), and joins every bar line to the bar line 1, 2, 4 and 8 bars later
//! with a 30 ms crossfade, as the renderer does. For each join it compares the peak of an
//! equal-power fade (the renderer's law until December 2026) and of the correlation-chosen law
//! ([`crossfade::mix_join`]) with the song's peak, and prints per-song and overall counts.

use std::path::PathBuf;

use cutscore_analysis::decode::decode_audio;
use cutscore_editing::crossfade::{gains, mix_join};
use cutscore_editing::render::DEFAULT_CROSSFADE_S;
use cutscore_synth::read_truth;

const CUT_BARS: [usize; 4] = [1, 2, 4, 8];

struct Tally {
    joins: usize,
    equal_power_over: usize,
    equal_power_worst_db: f64,
    chosen_over: usize,
    chosen_worst_db: f64,
    moved: usize,
    correlation_sum: f64,
}

impl Default for Tally {
    fn default() -> Self {
        Self {
            joins: 0,
            equal_power_over: 0,
            equal_power_worst_db: f64::NEG_INFINITY,
            chosen_over: 0,
            chosen_worst_db: f64::NEG_INFINITY,
            moved: 0,
            correlation_sum: 0.0,
        }
    }
}

impl Tally {
    fn add(&mut self, other: &Tally) {
        self.joins += other.joins;
        self.equal_power_over += other.equal_power_over;
        self.equal_power_worst_db = self.equal_power_worst_db.max(other.equal_power_worst_db);
        self.chosen_over += other.chosen_over;
        self.chosen_worst_db = self.chosen_worst_db.max(other.chosen_worst_db);
        self.moved += other.moved;
        self.correlation_sum += other.correlation_sum;
    }

    fn print(&self, name: &str) {
        println!(
            "{name:<36} {:>6} {:>9} {:>+8.2} {:>9} {:>+8.2} {:>7} {:>7.3}",
            self.joins,
            self.equal_power_over,
            self.equal_power_worst_db,
            self.chosen_over,
            self.chosen_worst_db,
            self.moved,
            self.correlation_sum / self.joins.max(1) as f64,
        );
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .ok_or("usage: join_peaks DIR (WAV files with .truth.json beside them)")?,
    );
    let mut wavs: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wav"))
        .collect();
    wavs.sort();
    println!(
        "{:<36} {:>6} {:>9} {:>8} {:>9} {:>8} {:>7} {:>7}",
        "song", "joins", "eqP>peak", "eqP dB", "new>peak", "new dB", "moved", "mean r"
    );
    let mut total = Tally::default();
    for wav in wavs {
        let truth = read_truth(&wav.with_extension("truth.json"))?;
        let audio = decode_audio(&wav)?;
        let channels = usize::from(audio.channels);
        let rate = f64::from(audio.sample_rate);
        let ceiling = audio.samples.iter().fold(0f32, |m, s| m.max(s.abs()));
        let half = (DEFAULT_CROSSFADE_S * rate / 2.0) as usize;
        let bars: Vec<usize> = truth
            .downbeats
            .iter()
            .map(|&t| (t * rate) as usize)
            .filter(|&f| f >= half && f + half <= audio.frames())
            .collect();
        let window =
            |frame: usize| &audio.samples[(frame - half) * channels..(frame + half) * channels];
        let db = |peak: f32| 20.0 * f64::from(peak / ceiling).log10();
        let mut tally = Tally::default();
        let mut mixed = Vec::with_capacity(4 * half * channels);
        for (k, &from) in bars.iter().enumerate() {
            for cut in CUT_BARS {
                let Some(&to) = bars.get(k + cut) else {
                    continue;
                };
                let (outgoing, incoming) = (window(from), window(to));
                let frames = 2 * half;
                let mut equal_power = 0f32;
                for t in 0..frames {
                    let (a, b) = gains(t, frames, 0.0);
                    for c in t * channels..(t + 1) * channels {
                        equal_power = equal_power.max((outgoing[c] * a + incoming[c] * b).abs());
                    }
                }
                mixed.clear();
                let mix = mix_join(outgoing, incoming, channels, ceiling, &mut mixed);
                let chosen = mixed.iter().fold(0f32, |m, s| m.max(s.abs()));
                tally.joins += 1;
                tally.correlation_sum += f64::from(mix.correlation);
                if equal_power > ceiling {
                    tally.equal_power_over += 1;
                }
                if chosen > ceiling {
                    tally.chosen_over += 1;
                }
                if mix.law > mix.correlation.max(0.0) {
                    tally.moved += 1;
                }
                tally.equal_power_worst_db = tally.equal_power_worst_db.max(db(equal_power));
                tally.chosen_worst_db = tally.chosen_worst_db.max(db(chosen));
            }
        }
        let name = wav.file_stem().unwrap_or_default().to_string_lossy();
        tally.print(&name);
        total.add(&tally);
    }
    total.print("all");
    println!(
        "dB: the loudest join relative to the song's own peak (0 = the song's peak; above 0 clips a song mastered to full scale)"
    );
    Ok(())
}
