//! Evaluates fit-to-length on synthetic songs with ground-truth bars, against two baselines.
//!
//! `cargo run --release -p cutscore-training --example fit_eval -- [SONGS]` (12 songs by default)
//! renders `SongSpec::random(FIRST_SEED + i)` at 22.05 kHz, about 120 s long, analyses each the
//! way a user's track is analysed (`analyze_samples`: tracked beats, bars and features), and
//! for targets of 50, 60, 70, 80 and 90 % of the song's length edits it three ways, all on the
//! *tracked* grid with the same constraints (whole-bar cuts starting on tracked downbeats: 1-16
//! bars anywhere, and the fit's section cuts between phrase boundaries; the first and last 4
//! bars kept, at least 4 bars played between joins, slack 5 s):
//!
//! - **fit**: `fit_to_length` with the shipped reward model and default options;
//! - **random**: random bar-aligned cuts with the fit's number of joins and the fit's number of
//!   removed (tracked) bars, split into random lengths of 1-16 bars and placed uniformly at
//!   random under the constraints (the placement whose removed seconds are closest to the
//!   fit's among up to 200 draws, within 0.5 s when possible); [`RANDOM_DRAWS`] draws per target;
//! - **join-cost DP**: the classic approach (radiotool's `retarget`): a DP over (tracked
//!   downbeat, removed seconds in 0.25 s steps) choosing the cut set with the least total join
//!   cost whose removed duration lies within `target ± slack`; the cost of a cut is the L2
//!   distance between MFCC 1-12 (feature indices 21..33) plus the L2 distance between chroma
//!   (46..58) of the beat played after the join and the beat that would have followed without
//!   the cut (the first removed beat).
//!
//! Each edit is rendered with `editing::render` (30 ms equal-power crossfades) and judged
//! against the *true* grid:
//!
//! - a join is **on a true downbeat** when both its cut time and its resume time (tracked
//!   source times) lie within 70 ms of a true downbeat;
//! - it is **on a 4-/8-/16-bar phrase boundary** when, in addition, both ends are at true bar
//!   indices (counted from the first true downbeat, 0-based) that are multiples of 4/8/16 or
//!   are the first bar of a section;
//! - it **keeps the phrase position** (`len4`) when both ends are on true downbeats and the cut
//!   removes a multiple of 4 true bars, wherever it starts;
//! - a result is **within the slack** when the rendered output's length is within 5 s of the
//!   target; a target is **feasible** when the fit or the join-cost DP (which searches the
//!   same cut space exhaustively, up to 0.25 s rounding) found a cut set within the slack.
//!
//! **Spectral discontinuity** of a join, measured on the rendered (mono-mixed) output: the
//! 40-band log-mel spectrum (HTK mel, 30 Hz-11.025 kHz, each band the weighted mean power of
//! its bins, in dB floored at -100 dB) of a 1024-sample (46 ms) Hann frame ending where the
//! crossfade begins, and of one starting where it ends; their RMS difference over the bands in
//! dB, divided by the median of the same measure (with the same 15 ms gap either side) at the
//! output's ordinary beat positions (tracked beats at least one beat period away from any
//! join). So 1.0 means "as smooth as an ordinary beat boundary of the same output"; a ratio is
//! computed per join, and the table shows the mean (and median) over joins.
//!
//! The reported fit time is the wall time of `fit_to_length` alone, on the CPU. With
//! `FIT_EVAL_VERBOSE` set, every fit join is listed with the true bars it lands on.
//! Everything is seeded, so the figures are reproducible.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use candle_core::Device;
use cutscore_analysis::analyze_samples;
use cutscore_core::audio::Audio;
use cutscore_core::edit::Edit;
use cutscore_core::features::FeatureMatrix;
use cutscore_core::grid::BeatGrid;
use cutscore_editing::fit::{FitOptions, fit_to_length};
use cutscore_editing::render::{DEFAULT_CROSSFADE_S, Rendered, render};
use cutscore_reward::scoring::Track;
use cutscore_synth::{SongSpec, SongTruth, TempoChange};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

const FIRST_SEED: u64 = 31_000;
const SONG_SECONDS: f64 = 120.0;
const RATE: u32 = 22_050;
const FRACTIONS: [f64; 5] = [0.5, 0.6, 0.7, 0.8, 0.9];
const RANDOM_DRAWS: u64 = 3;
/// Distance from a true downbeat that still counts as on it.
const TOLERANCE_S: f64 = 0.070;
const SLACK_S: f64 = 5.0;
const INTRO_BARS: usize = 4;
const OUTRO_BARS: usize = 4;
const GAP_BARS: usize = 4;
const MAX_CUT_BARS: usize = 16;
const STEP_S: f64 = 0.25;
const FRAME: usize = 1024;
const N_MELS: usize = 40;
const PHRASES: [usize; 3] = [4, 8, 16];
const METHODS: [&str; 3] = ["fit", "random", "join-cost DP"];

fn main() -> Result<()> {
    let songs: u64 = match std::env::args().nth(1) {
        Some(arg) => arg.parse()?,
        None => 12,
    };
    let verbose = std::env::var_os("FIT_EVAL_VERBOSE").is_some();
    let started = Instant::now();
    let model = cutscore_reward::shipped::checkpoint()?.model(&Device::Cpu)?;
    let mut spectra = Spectra::new(RATE);
    // tallies[method][fraction]
    let mut tallies = vec![vec![Tally::default(); FRACTIONS.len()]; METHODS.len()];
    let mut fit_seconds: Vec<f64> = Vec::new();
    let mut off = OffDownbeat::default();
    let mut section_ratios: Vec<f64> = Vec::new();

    println!(
        "{:<6} {:>5} {:>5} {:>2} {:>5} {:>6} | {:>6} {:>2} {:>6} {:>6} | {:>7} | fit s per target {:?}",
        "song",
        "bpm",
        "tempo",
        "m",
        "drums",
        "len_s",
        "trk",
        "m",
        "DbP",
        "DbR",
        "fit off",
        FRACTIONS
    );
    for i in 0..songs {
        let mut spec = SongSpec::random(FIRST_SEED + i);
        spec.sample_rate = RATE;
        spec.bars = spec.bars_for_seconds(SONG_SECONDS);
        if let TempoChange::Step { to_bpm, .. } = spec.tempo {
            spec.tempo = TempoChange::Step {
                at_bar: spec.bars / 2,
                to_bpm,
            };
        }
        let song = cutscore_synth::render(&spec)?;
        let analysis = analyze_samples(&song.mono(), RATE)?;
        let grid = &analysis.grid;
        let truth = Truth::new(&song.truth);
        let audio = Audio::new(song.sample_rate, song.channels, song.samples.clone())?;
        let track = Track {
            features: &analysis.features,
            meter: analysis.meter,
        };
        let downbeats = grid.bar_starts();
        let (precision, recall) = truth.downbeat_accuracy(grid, &downbeats);
        if verbose {
            let first: Vec<String> = downbeats
                .iter()
                .take(6)
                .map(|&d| format!("{:.2}", grid.beats[d]))
                .collect();
            let true_first: Vec<String> = truth
                .downbeats
                .iter()
                .take(6)
                .map(|t| format!("{t:.2}"))
                .collect();
            println!(
                "  first tracked downbeats {first:?} (first beat {:.2}), true {true_first:?}",
                grid.beats.first().copied().unwrap_or(f64::NAN)
            );
        }
        let mut times = Vec::new();
        section_ratios.extend(spectra.section_ratios(&song.mono(), grid, &song.truth));
        let joins_before = (
            tallies[0].iter().map(|t| t.joins).sum::<usize>(),
            off.joins_affected,
        );
        let mut rng = StdRng::seed_from_u64(FIRST_SEED ^ (i << 8));
        for (f, &fraction) in FRACTIONS.iter().enumerate() {
            let target_s = fraction * grid.duration_s;
            let need = grid.duration_s - target_s;
            let options = FitOptions {
                target_s,
                slack_s: SLACK_S,
                keep_intro_bars: INTRO_BARS,
                keep_outro_bars: OUTRO_BARS,
                min_bars_between_joins: GAP_BARS,
                lengths: (1..=MAX_CUT_BARS).collect(),
                ..FitOptions::default()
            };
            let t0 = Instant::now();
            let fit = fit_to_length(&model, grid, track, &options)?;
            let elapsed = t0.elapsed().as_secs_f64();
            times.push(elapsed);
            fit_seconds.push(elapsed);

            let (dp_edit, dp_met) = join_cost_dp(grid, &downbeats, &analysis.features, need);
            let feasible = fit.met_target || dp_met;

            let judge = |tally: &mut Tally,
                         spectra: &mut Spectra,
                         off: Option<&mut OffDownbeat>,
                         edit: &Edit|
             -> Result<()> {
                let rendered = render(&audio, grid, edit, DEFAULT_CROSSFADE_S)?;
                let within = (rendered.audio.seconds() - target_s).abs() <= SLACK_S + 0.01;
                tally.add_result(within, feasible);
                let ratios = spectra.join_ratios(&rendered, grid, edit);
                let mut off = off;
                for (join, ratio) in rendered.joins.iter().zip(ratios) {
                    let verdict = truth.judge(join.from_s, join.to_s);
                    if verbose && off.is_some() {
                        println!(
                            "    target {:.0} %: join {:.2} s -> {:.2} s, true bars {:?} -> {:?}",
                            fraction * 100.0,
                            join.from_s,
                            join.to_s,
                            Truth::near(&truth.downbeats, join.from_s),
                            Truth::near(&truth.downbeats, join.to_s),
                        );
                    }
                    if let Some(off) = off.as_deref_mut() {
                        off.count(&truth, join.from_s, join.to_s);
                    }
                    tally.add_join(&verdict, ratio);
                }
                Ok(())
            };

            judge(
                &mut tallies[0][f],
                &mut spectra,
                Some(&mut off),
                &fit.best.edit,
            )?;
            let fit_bars = removed_bars(&fit.best.edit, &downbeats);
            let fit_removed = grid.duration_s - fit.best.output_seconds;
            for _ in 0..RANDOM_DRAWS {
                let edit = random_edit(grid, &downbeats, &fit_bars, fit_removed, &mut rng);
                judge(&mut tallies[1][f], &mut spectra, None, &edit)?;
            }
            judge(&mut tallies[2][f], &mut spectra, None, &dp_edit)?;
            if !fit.met_target {
                println!(
                    "  song {i} target {:.0} %: fit did not meet the target ({}); DP {}",
                    fraction * 100.0,
                    fit.message.as_deref().unwrap_or("no message"),
                    if dp_met { "did" } else { "did not either" }
                );
            }
        }
        println!(
            "{:<6} {:>5.0} {:>5} {:>2} {:>5} {:>6.1} | {:>6.1} {:>2} {:>6.3} {:>6.3} | {:>7} | {}",
            FIRST_SEED + i,
            spec.bpm,
            match spec.tempo {
                TempoChange::Constant => "const",
                TempoChange::Ramp { .. } => "ramp",
                TempoChange::Step { .. } => "step",
            },
            spec.meter,
            if spec.drums { "yes" } else { "no" },
            grid.duration_s,
            analysis.tempo_bpm,
            analysis.meter,
            precision,
            recall,
            format!(
                "{}/{}",
                off.joins_affected - joins_before.1,
                tallies[0].iter().map(|t| t.joins).sum::<usize>() - joins_before.0
            ),
            times
                .iter()
                .map(|t| format!("{t:.2}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
    }

    println!();
    println!(
        "DbP / DbR: share of tracked downbeats within 70 ms of a true downbeat / of true downbeats with a tracked one within 70 ms; fit off: fit joins not on true downbeats."
    );
    println!(
        "joins: judged joins (random: summed over {RANDOM_DRAWS} draws); dbeat: both ends on true downbeats; phrN: both ends on true bars that are multiples of N or section starts;"
    );
    println!(
        "len4: both ends on true downbeats and the cut a multiple of 4 true bars (phrase position kept); within: output within 5 s of the target (feas.: of feasible targets);"
    );
    println!(
        "disc: spectral discontinuity at joins, 1.0 = an ordinary beat boundary of the same output (mean, median)."
    );
    println!();
    println!(
        "{:<7} {:<13} {:>6} {:>7} {:>7} {:>7} {:>7} {:>7} {:>8} {:>10} {:>9} {:>9}",
        "target",
        "method",
        "joins",
        "dbeat%",
        "phr4%",
        "phr8%",
        "phr16%",
        "len4%",
        "within%",
        "feas.with%",
        "disc mean",
        "disc med"
    );
    for (f, &fraction) in FRACTIONS.iter().enumerate() {
        for (m, name) in METHODS.iter().enumerate() {
            tallies[m][f].print(&format!("{:.0} %", fraction * 100.0), name);
        }
    }
    for (m, name) in METHODS.iter().enumerate() {
        let mut all = Tally::default();
        for tally in &tallies[m] {
            all.merge(tally);
        }
        all.print("all", name);
    }
    let mut sections = section_ratios.clone();
    println!(
        "reference: discontinuity at the true section starts of the unedited songs: mean {:.2}, median {:.2} ({} section starts)",
        mean(&section_ratios),
        median(&mut sections),
        section_ratios.len()
    );
    let per_song: Vec<f64> = fit_seconds
        .chunks(FRACTIONS.len())
        .map(|c| c.iter().sum())
        .collect();
    println!();
    println!(
        "fit time: mean {:.2} s per fit (min {:.2}, max {:.2}; {} fits), mean {:.2} s per song for {} targets",
        mean(&fit_seconds),
        fit_seconds.iter().copied().fold(f64::INFINITY, f64::min),
        fit_seconds.iter().copied().fold(0.0, f64::max),
        fit_seconds.len(),
        mean(&per_song),
        FRACTIONS.len()
    );
    println!(
        "fit joins off a true downbeat: {} of {} join ends ({} on a true beat in the wrong bar position, {} not within 70 ms of any true beat); {} joins affected",
        off.wrong_position + off.off_beat,
        off.ends,
        off.wrong_position,
        off.off_beat,
        off.joins_affected
    );
    println!("total run time {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        f64::NAN
    } else {
        values.iter().sum::<f64>() / values.len() as f64
    }
}

fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn pct(count: usize, of: usize) -> String {
    if of == 0 {
        "-".to_owned()
    } else {
        format!("{:.1}", 100.0 * count as f64 / of as f64)
    }
}

/// Counts for one method and target fraction.
#[derive(Debug, Clone, Default)]
struct Tally {
    results: usize,
    within: usize,
    feasible: usize,
    within_feasible: usize,
    joins: usize,
    on_downbeat: usize,
    on_phrase: [usize; 3],
    keeps_phrase: usize,
    ratios: Vec<f64>,
}

impl Tally {
    fn add_result(&mut self, within: bool, feasible: bool) {
        self.results += 1;
        self.within += usize::from(within);
        self.feasible += usize::from(feasible);
        self.within_feasible += usize::from(within && feasible);
    }

    fn add_join(&mut self, verdict: &Verdict, ratio: Option<f64>) {
        self.joins += 1;
        self.on_downbeat += usize::from(verdict.downbeat);
        for (count, &on) in self.on_phrase.iter_mut().zip(&verdict.phrase) {
            *count += usize::from(on);
        }
        self.keeps_phrase += usize::from(verdict.keeps_phrase);
        self.ratios.extend(ratio);
    }

    fn merge(&mut self, other: &Tally) {
        self.results += other.results;
        self.within += other.within;
        self.feasible += other.feasible;
        self.within_feasible += other.within_feasible;
        self.joins += other.joins;
        self.on_downbeat += other.on_downbeat;
        for (a, b) in self.on_phrase.iter_mut().zip(other.on_phrase) {
            *a += b;
        }
        self.keeps_phrase += other.keeps_phrase;
        self.ratios.extend_from_slice(&other.ratios);
    }

    fn print(&self, target: &str, method: &str) {
        let mut ratios = self.ratios.clone();
        println!(
            "{:<7} {:<13} {:>6} {:>7} {:>7} {:>7} {:>7} {:>7} {:>8} {:>10} {:>9.2} {:>9.2}",
            target,
            method,
            self.joins,
            pct(self.on_downbeat, self.joins),
            pct(self.on_phrase[0], self.joins),
            pct(self.on_phrase[1], self.joins),
            pct(self.on_phrase[2], self.joins),
            pct(self.keeps_phrase, self.joins),
            pct(self.within, self.results),
            pct(self.within_feasible, self.feasible),
            mean(&ratios),
            median(&mut ratios),
        );
    }
}

/// How a join sits on the true grid.
struct Verdict {
    downbeat: bool,
    phrase: [bool; 3],
    /// On true downbeats and removing a whole number of 4-bar phrases.
    keeps_phrase: bool,
}

/// The true bars of a song.
struct Truth {
    beats: Vec<f64>,
    downbeats: Vec<f64>,
    section_bars: BTreeSet<usize>,
}

impl Truth {
    fn new(truth: &SongTruth) -> Self {
        Self {
            beats: truth.beats.clone(),
            downbeats: truth.downbeats.clone(),
            section_bars: truth.sections.iter().map(|s| s.start_bar).collect(),
        }
    }

    /// Index of the nearest time in `times` within the tolerance of `t`.
    fn near(times: &[f64], t: f64) -> Option<usize> {
        let i = times.partition_point(|&x| x < t);
        [i.checked_sub(1), Some(i)]
            .into_iter()
            .flatten()
            .filter(|&j| j < times.len())
            .min_by(|&a, &b| (times[a] - t).abs().total_cmp(&(times[b] - t).abs()))
            .filter(|&j| (times[j] - t).abs() <= TOLERANCE_S)
    }

    fn judge(&self, from_s: f64, to_s: f64) -> Verdict {
        let (a, b) = (
            Self::near(&self.downbeats, from_s),
            Self::near(&self.downbeats, to_s),
        );
        let on = |bar: Option<usize>, phrase: usize| {
            bar.is_some_and(|bar| bar % phrase == 0 || self.section_bars.contains(&bar))
        };
        Verdict {
            downbeat: a.is_some() && b.is_some(),
            phrase: PHRASES.map(|p| on(a, p) && on(b, p)),
            keeps_phrase: a.zip(b).is_some_and(|(a, b)| b.abs_diff(a) % 4 == 0),
        }
    }

    /// Downbeat precision and recall of the tracked grid (70 ms tolerance).
    fn downbeat_accuracy(&self, grid: &BeatGrid, downbeats: &[usize]) -> (f64, f64) {
        let tracked: Vec<f64> = downbeats.iter().map(|&d| grid.beats[d]).collect();
        let hits = tracked
            .iter()
            .filter(|&&t| Self::near(&self.downbeats, t).is_some())
            .count();
        let found = self
            .downbeats
            .iter()
            .filter(|&&t| Self::near(&tracked, t).is_some())
            .count();
        (
            hits as f64 / tracked.len().max(1) as f64,
            found as f64 / self.downbeats.len().max(1) as f64,
        )
    }
}

/// Why the fit's join ends missed the true downbeats.
#[derive(Debug, Default)]
struct OffDownbeat {
    ends: usize,
    wrong_position: usize,
    off_beat: usize,
    joins_affected: usize,
}

impl OffDownbeat {
    fn count(&mut self, truth: &Truth, from_s: f64, to_s: f64) {
        let mut affected = false;
        for t in [from_s, to_s] {
            self.ends += 1;
            if Truth::near(&truth.downbeats, t).is_none() {
                affected = true;
                if Truth::near(&truth.beats, t).is_some() {
                    self.wrong_position += 1;
                } else {
                    self.off_beat += 1;
                }
            }
        }
        self.joins_affected += usize::from(affected);
    }
}

/// The removed spans of `edit` as lengths in tracked bars.
fn removed_bars(edit: &Edit, downbeats: &[usize]) -> Vec<usize> {
    edit.removed()
        .iter()
        .map(|s| {
            downbeats
                .iter()
                .filter(|&&d| d >= s.start && d < s.end)
                .count()
        })
        .collect()
}

/// Random placement of cuts with the fit's count and total bars (see the header).
fn random_edit(
    grid: &BeatGrid,
    downbeats: &[usize],
    fit_bars: &[usize],
    fit_removed_s: f64,
    rng: &mut StdRng,
) -> Edit {
    let k = fit_bars.len();
    let total: usize = fit_bars.iter().sum();
    if k == 0 || total == 0 {
        return Edit::identity(grid.len());
    }
    let bars = downbeats.len();
    let last_start = bars.saturating_sub(OUTRO_BARS);
    let room = last_start.saturating_sub(INTRO_BARS);
    let time = |bar: usize| grid.time_of(downbeats[bar]);
    let mut best: Option<(f64, Vec<(usize, usize)>)> = None;
    for _ in 0..200 {
        // Lengths: a random composition of `total` into `k` parts of 1..=16 bars.
        let mut lengths = Vec::new();
        for _ in 0..1000 {
            let mut points: BTreeSet<usize> = BTreeSet::new();
            while points.len() < k - 1 {
                points.insert(rng.random_range(1..total));
            }
            let mut edges: Vec<usize> = vec![0];
            edges.extend(points);
            edges.push(total);
            let parts: Vec<usize> = edges.windows(2).map(|w| w[1] - w[0]).collect();
            if parts.iter().all(|&p| p <= MAX_CUT_BARS) {
                lengths = parts;
                break;
            }
        }
        if lengths.is_empty() {
            lengths = fit_bars.to_vec();
            for i in (1..lengths.len()).rev() {
                lengths.swap(i, rng.random_range(0..=i));
            }
        }
        let Some(free) = room.checked_sub(total + GAP_BARS * (k - 1)) else {
            break;
        };
        // Placement: k sorted uniform offsets in 0..=free distribute the spare bars.
        let mut offsets: Vec<usize> = (0..k).map(|_| rng.random_range(0..=free)).collect();
        offsets.sort_unstable();
        let mut spans = Vec::with_capacity(k);
        let mut used = INTRO_BARS;
        for (j, (&length, &offset)) in lengths.iter().zip(&offsets).enumerate() {
            let start = used + offset;
            spans.push((start, start + length));
            used += length + if j + 1 < k { GAP_BARS } else { 0 };
        }
        let seconds: f64 = spans.iter().map(|&(a, b)| time(b) - time(a)).sum();
        let miss = (seconds - fit_removed_s).abs();
        if best.as_ref().is_none_or(|(m, _)| miss < *m) {
            best = Some((miss, spans));
        }
        if miss <= 0.5 {
            break;
        }
    }
    let Some((_, spans)) = best else {
        return Edit::identity(grid.len());
    };
    Edit::new(
        grid.len(),
        spans.into_iter().map(|(a, b)| (downbeats[a], downbeats[b])),
    )
    .expect("random spans are valid")
}

/// Classic join cost: MFCC 1-12 distance plus chroma distance between the beat landed on and
/// the beat that would have followed.
fn join_cost(features: &FeatureMatrix, first_removed: usize, landing: usize) -> f32 {
    let (a, b) = (features.row(first_removed), features.row(landing));
    let l2 = |range: std::ops::Range<usize>| {
        range
            .map(|i| (a[i] - b[i]) * (a[i] - b[i]))
            .sum::<f32>()
            .sqrt()
    };
    l2(21..33) + l2(46..58)
}

#[derive(Clone, Copy)]
struct Cell {
    cost: f32,
    seconds: f64,
    prev_bar: usize,
    prev_q: usize,
    /// The cut `(start bar, end bar)` taken to get here, if any.
    cut: Option<(usize, usize)>,
}

/// The join-cost DP baseline: the least-cost cut set removing `need ± slack` seconds (or the
/// closest to it), and whether it is within the slack.
fn join_cost_dp(
    grid: &BeatGrid,
    downbeats: &[usize],
    features: &FeatureMatrix,
    need: f64,
) -> (Edit, bool) {
    let bars = downbeats.len();
    let last_start = bars.saturating_sub(OUTRO_BARS);
    let buckets = ((need + SLACK_S).max(0.0) / STEP_S).ceil() as usize + 2;
    let time = |bar: usize| grid.time_of(downbeats[bar]);
    let mut dp: Vec<Option<Cell>> = vec![None; (bars + 1) * buckets];
    let at = |bar: usize, q: usize| bar * buckets + q;
    dp[0] = Some(Cell {
        cost: 0.0,
        seconds: 0.0,
        prev_bar: 0,
        prev_q: 0,
        cut: None,
    });
    for bar in 0..bars {
        for q in 0..buckets {
            let Some(cell) = dp[at(bar, q)] else {
                continue;
            };
            let mut offer = |to: usize, next: Cell| {
                if dp[to].is_none_or(|c| next.cost < c.cost) {
                    dp[to] = Some(next);
                }
            };
            offer(
                at(bar + 1, q),
                Cell {
                    prev_bar: bar,
                    prev_q: q,
                    cut: None,
                    ..cell
                },
            );
            if bar < INTRO_BARS {
                continue;
            }
            for length in 1..=MAX_CUT_BARS {
                let end = bar + length;
                if end > last_start {
                    break;
                }
                let seconds = cell.seconds + time(end) - time(bar);
                let q2 = (seconds / STEP_S).round() as usize;
                if q2 >= buckets {
                    break;
                }
                let resume = (end + GAP_BARS).min(bars);
                offer(
                    at(resume, q2),
                    Cell {
                        cost: cell.cost + join_cost(features, downbeats[bar], downbeats[end]),
                        seconds,
                        prev_bar: bar,
                        prev_q: q,
                        cut: Some((bar, end)),
                    },
                );
            }
        }
    }
    let ends: Vec<(usize, Cell)> = (0..buckets)
        .filter_map(|q| dp[at(bars, q)].map(|c| (q, c)))
        .collect();
    let within = |c: &Cell| (c.seconds - need).abs() <= SLACK_S;
    let met = ends.iter().any(|(_, c)| within(c));
    let chosen = if met {
        ends.iter().filter(|(_, c)| within(c)).min_by(|a, b| {
            a.1.cost.total_cmp(&b.1.cost).then(
                (a.1.seconds - need)
                    .abs()
                    .total_cmp(&(b.1.seconds - need).abs()),
            )
        })
    } else {
        ends.iter().min_by(|a, b| {
            (a.1.seconds - need)
                .abs()
                .total_cmp(&(b.1.seconds - need).abs())
        })
    };
    let Some(&(q, _)) = chosen else {
        return (Edit::identity(grid.len()), false);
    };
    let mut spans = Vec::new();
    let (mut bar, mut q) = (bars, q);
    while bar > 0 {
        let cell = dp[at(bar, q)].expect("a reached cell's predecessor was reached");
        if let Some((a, b)) = cell.cut {
            spans.push((downbeats[a], downbeats[b]));
        }
        (bar, q) = (cell.prev_bar, cell.prev_q);
    }
    let edit = Edit::new(grid.len(), spans).expect("DP spans are valid");
    (edit, met)
}

/// Log-mel spectra of short frames of rendered output, for the discontinuity measure.
struct Spectra {
    fft: Arc<dyn RealToComplex<f32>>,
    window: Vec<f32>,
    /// Per band: `(bin, weight)` with weights summing to 1.
    bands: Vec<Vec<(usize, f32)>>,
    input: Vec<f32>,
    output: Vec<Complex<f32>>,
    rate: f64,
}

impl Spectra {
    fn new(rate: u32) -> Self {
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(FRAME);
        let window = (0..FRAME)
            .map(|i| 0.5 - 0.5 * (std::f32::consts::TAU * i as f32 / FRAME as f32).cos())
            .collect();
        let mel = |hz: f64| 2595.0 * (1.0 + hz / 700.0).log10();
        let hz = |mel: f64| 700.0 * (10f64.powf(mel / 2595.0) - 1.0);
        let (lo, hi) = (mel(30.0), mel(f64::from(rate) / 2.0));
        let edges: Vec<f64> = (0..N_MELS + 2)
            .map(|i| hz(lo + (hi - lo) * i as f64 / (N_MELS + 1) as f64))
            .collect();
        let bin_hz = f64::from(rate) / FRAME as f64;
        let bands = (0..N_MELS)
            .map(|b| {
                let (l, c, r) = (edges[b], edges[b + 1], edges[b + 2]);
                let mut weights: Vec<(usize, f32)> = (0..=FRAME / 2)
                    .filter_map(|k| {
                        let f = k as f64 * bin_hz;
                        let w = if f > l && f <= c {
                            (f - l) / (c - l)
                        } else if f > c && f < r {
                            (r - f) / (r - c)
                        } else {
                            0.0
                        };
                        (w > 0.0).then_some((k, w as f32))
                    })
                    .collect();
                if weights.is_empty() {
                    weights.push(((c / bin_hz).round() as usize, 1.0));
                }
                let sum: f32 = weights.iter().map(|w| w.1).sum();
                weights.iter_mut().for_each(|w| w.1 /= sum);
                weights
            })
            .collect();
        let input = fft.make_input_vec();
        let output = fft.make_output_vec();
        Self {
            fft,
            window,
            bands,
            input,
            output,
            rate: f64::from(rate),
        }
    }

    /// Log-mel spectrum (dB) of the frame of `mono` starting at `start`.
    fn log_mel(&mut self, mono: &[f32], start: usize) -> [f64; N_MELS] {
        for ((x, s), w) in self
            .input
            .iter_mut()
            .zip(&mono[start..start + FRAME])
            .zip(&self.window)
        {
            *x = s * w;
        }
        self.fft
            .process(&mut self.input, &mut self.output)
            .expect("FFT buffers have the planned sizes");
        let norm = 2.0 / FRAME as f32;
        let mut out = [0.0; N_MELS];
        for (value, band) in out.iter_mut().zip(&self.bands) {
            let power: f32 = band
                .iter()
                .map(|&(k, w)| w * (self.output[k] * norm).norm_sqr())
                .sum();
            *value = 10.0 * f64::from(power.max(1e-10)).log10();
        }
        out
    }

    /// RMS log-mel difference (dB) between the frame ending `gap` frames before `at` and the one
    /// starting `gap` frames after it; `None` too near the ends.
    fn jump(&mut self, mono: &[f32], at: usize, gap: usize) -> Option<f64> {
        let before = at.checked_sub(gap + FRAME)?;
        if at + gap + FRAME > mono.len() {
            return None;
        }
        let a = self.log_mel(mono, before);
        let b = self.log_mel(mono, at + gap);
        let sum: f64 = a.iter().zip(&b).map(|(x, y)| (x - y) * (x - y)).sum();
        Some((sum / N_MELS as f64).sqrt())
    }

    /// Discontinuity ratio of each join of `rendered` (`None` where it cannot be measured).
    fn join_ratios(
        &mut self,
        rendered: &Rendered,
        grid: &BeatGrid,
        edit: &Edit,
    ) -> Vec<Option<f64>> {
        let audio = &rendered.audio;
        let channels = usize::from(audio.channels);
        let mono: Vec<f32> = audio
            .samples
            .chunks_exact(channels)
            .map(|f| f.iter().sum::<f32>() / channels as f32)
            .collect();
        // Output times of the kept beats.
        let removed_before = |t: f64| -> f64 {
            rendered
                .joins
                .iter()
                .filter(|j| j.to_s <= t + 1e-6)
                .map(|j| j.to_s - j.from_s)
                .sum()
        };
        let beats: Vec<f64> = edit
            .kept_beats()
            .into_iter()
            .map(|b| grid.beats[b] - removed_before(grid.beats[b]))
            .collect();
        let points: Vec<(f64, usize)> = rendered
            .joins
            .iter()
            .map(|j| {
                let half = (j.crossfade_s / 2.0 * self.rate).round() as usize;
                (j.output_s, half)
            })
            .collect();
        self.ratios(&mono, &beats, grid.beat_period().unwrap_or(0.5), &points)
    }

    /// Discontinuity ratio at the true section starts of the unedited song, for comparison.
    fn section_ratios(&mut self, mono: &[f32], grid: &BeatGrid, truth: &SongTruth) -> Vec<f64> {
        let gap = (DEFAULT_CROSSFADE_S / 2.0 * self.rate).round() as usize;
        let points: Vec<(f64, usize)> = truth.sections[1..]
            .iter()
            .map(|s| (s.start_s, gap))
            .collect();
        let period = grid.beat_period().unwrap_or(0.5);
        self.ratios(mono, &grid.beats, period, &points)
            .into_iter()
            .flatten()
            .collect()
    }

    /// The jump at each `(time, gap)` of `points`, divided by the median jump (15 ms gap) at the
    /// `beats` at least a `period` away from every point.
    fn ratios(
        &mut self,
        mono: &[f32],
        beats: &[f64],
        period: f64,
        points: &[(f64, usize)],
    ) -> Vec<Option<f64>> {
        let gap = (DEFAULT_CROSSFADE_S / 2.0 * self.rate).round() as usize;
        let mut reference: Vec<f64> = beats
            .iter()
            .filter(|&&t| points.iter().all(|p| (p.0 - t).abs() >= period * 0.99))
            .filter_map(|&t| self.jump(mono, (t * self.rate).round() as usize, gap))
            .collect();
        let typical = median(&mut reference);
        points
            .iter()
            .map(|&(t, half)| {
                let at = (t * self.rate).round() as usize;
                self.jump(mono, at, half)
                    .map(|d| d / typical)
                    .filter(|r| r.is_finite())
            })
            .collect()
    }
}
