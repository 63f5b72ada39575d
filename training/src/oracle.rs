//! The editing oracle: the taste the default reward model starts from (`docs/oracle.md`).
//!
//! It judges an [`Edit`] of a synthetic song knowing the song's ground truth (downbeats, the
//! 4/8/16-bar phrase grid, the sections) and its 121 beat features. The rules are the ones
//! editors teach for cutting music to length: cut on downbeats, cut whole phrases, land where
//! the music flows on (same timbre, harmony and level on both sides of the join), keep the
//! intro and the ending, hit the target length, and use as few joins as possible.
//!
//! A score is a sum of penalties and bonuses (0 for a perfect edit, negative otherwise; the
//! weights are [`OracleWeights`]). Two edits are compared by turning the score difference into
//! a probability with a logistic curve, `P(a ≻ b) = σ((score_a - score_b) / temperature)`, the
//! Bradley–Terry model the reward model is trained with; [`Oracle::judge`] samples the label
//! from that probability, so close calls are sometimes labelled "wrong", as people disagree on
//! close calls, and the label's confidence says how close the call was.

use std::ops::Range;

use rand::Rng;

use cutscore_analysis::beat_features::FEATURE_TABLE;
use cutscore_core::edit::Edit;
use cutscore_core::features::FeatureMatrix;
use cutscore_core::grid::BeatGrid;
use cutscore_synth::SongTruth;

/// Bars per phrase the oracle cuts on; 8- and 16-bar phrases are multiples of it.
pub const PHRASE_BARS: usize = 4;

/// How much each rule counts. Scores are in "craft points": 1 is a clear, audible flaw.
#[derive(Debug, Clone, PartialEq)]
pub struct OracleWeights {
    /// Per join whose cut or landing point is not a downbeat (counted for each side).
    pub off_downbeat: f32,
    /// Per join whose removed bars are not a whole number of 4-bar phrases.
    pub partial_phrase: f32,
    /// Per join that lands (or leaves) mid-phrase, i.e. not on a 4-bar phrase boundary.
    pub mid_phrase: f32,
    /// Bonus per join that removes whole 8- or 16-bar phrases or whole sections.
    pub whole_section_bonus: f32,
    /// Per unit of timbral distance (MFCC 1-12) between the bar heard before the join and the
    /// bar heard after it (a bar's worth of beats on each side, features averaged).
    pub timbre: f32,
    /// Per unit of harmonic distance (mean absolute chroma difference) across the join.
    pub harmony: f32,
    /// Per unit of loudness jump (the `loudness` mean, 20 dB per unit) across the join.
    pub loudness: f32,
    /// For removing any of the first section (the intro) or the last (the outro).
    pub cuts_intro_or_outro: f32,
    /// Per unit of relative length error, `|kept / target - 1|`.
    pub length: f32,
    /// Per join.
    pub per_join: f32,
}

impl Default for OracleWeights {
    fn default() -> Self {
        Self {
            off_downbeat: 1.5,
            partial_phrase: 0.6,
            mid_phrase: 0.8,
            whole_section_bonus: 0.4,
            timbre: 1.2,
            harmony: 2.5,
            loudness: 2.0,
            cuts_intro_or_outro: 2.0,
            length: 6.0,
            per_join: 0.5,
        }
    }
}

/// Why the oracle cannot judge edits of a song.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OracleError {
    #[error("the truth has {truth} beats but the features have {features}; expected the same")]
    BeatCount { truth: usize, features: usize },
    #[error("the edit is of a {actual}-beat track; expected {expected} beats")]
    EditBeats { expected: usize, actual: usize },
    #[error("target length of {actual} beats; expected 1 to {max}")]
    Target { actual: usize, max: usize },
    #[error("the song has no downbeat; expected at least one bar")]
    NoBars,
}

/// One judged comparison.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Judgement {
    pub score_a: f32,
    pub score_b: f32,
    /// `P(a ≻ b)` under the oracle.
    pub p_a: f32,
    /// The sampled label: true when `a` was preferred.
    pub a_preferred: bool,
    /// How sure the oracle is of its own call, `max(p_a, 1 - p_a)`, in [0.5, 1].
    pub confidence: f32,
}

/// The oracle for one song.
#[derive(Debug, Clone)]
pub struct Oracle<'a> {
    truth: &'a SongTruth,
    features: &'a FeatureMatrix,
    /// Kept beats the edit should come to.
    target_beats: usize,
    weights: OracleWeights,
    /// Width of the logistic curve: a score difference of `temperature` is a 73 % call.
    temperature: f32,
    /// Bar index of every beat, counted from the first downbeat (beats before it are bar 0).
    bar_of: Vec<usize>,
    /// Beat index of each section's first downbeat, and of the end of the last one.
    section_bounds: Vec<usize>,
}

/// `σ(difference / width)`: the probability that the side ahead by `difference` is preferred.
fn logistic(difference: f32, width: f32) -> f32 {
    1.0 / (1.0 + (-difference / width).exp())
}

/// Default width of the logistic curve, in craft points: a difference of half a clear flaw
/// (the pair generator's default margin) is a 99.3 % call.
pub const DEFAULT_TEMPERATURE: f32 = 0.1;

impl<'a> Oracle<'a> {
    /// An oracle for a song with `truth` and beat `features`, aiming for `target_beats` kept.
    pub fn new(
        truth: &'a SongTruth,
        features: &'a FeatureMatrix,
        target_beats: usize,
    ) -> Result<Self, OracleError> {
        let beats = truth.beats.len();
        if features.beats() != beats {
            return Err(OracleError::BeatCount {
                truth: beats,
                features: features.beats(),
            });
        }
        if target_beats == 0 || target_beats > beats {
            return Err(OracleError::Target {
                actual: target_beats,
                max: beats,
            });
        }
        let first = truth
            .beat_in_bar
            .iter()
            .position(|&b| b == 0)
            .ok_or(OracleError::NoBars)?;
        let mut bar = 0;
        let bar_of = (0..beats)
            .map(|i| {
                if i > first && truth.beat_in_bar[i] == 0 {
                    bar += 1;
                }
                bar
            })
            .collect();
        let bar_starts: Vec<usize> = (0..beats).filter(|&i| truth.beat_in_bar[i] == 0).collect();
        let mut section_bounds: Vec<usize> = truth
            .sections
            .iter()
            .filter_map(|s| bar_starts.get(s.start_bar).copied())
            .collect();
        section_bounds.push(beats);
        Ok(Self {
            truth,
            features,
            target_beats,
            weights: OracleWeights::default(),
            temperature: DEFAULT_TEMPERATURE,
            bar_of,
            section_bounds,
        })
    }

    /// The same oracle with other weights.
    pub fn with_weights(mut self, weights: OracleWeights) -> Self {
        self.weights = weights;
        self
    }

    /// The same oracle with another logistic width (smaller: surer, fewer flipped labels).
    pub fn with_temperature(mut self, temperature: f32) -> Self {
        self.temperature = temperature.max(1e-3);
        self
    }

    pub fn target_beats(&self) -> usize {
        self.target_beats
    }

    /// The beats an edit may remove without touching the intro or the outro: from the start of
    /// the second section to the start of the last (songs of 3+ sections), otherwise from the
    /// second bar to the start of the last bar.
    pub fn editable_region(&self) -> Range<usize> {
        let beats = self.truth.beats.len();
        // Three or more sections that start on bars, plus the end of the track.
        let n = self.section_bounds.len();
        if self.truth.sections.len() > 2 && n >= 4 {
            return self.section_bounds[1]..self.section_bounds[n - 2];
        }
        let bar_starts: Vec<usize> = (0..beats)
            .filter(|&i| self.truth.beat_in_bar[i] == 0)
            .collect();
        match (bar_starts.get(1), bar_starts.last()) {
            (Some(&start), Some(&end)) if start < end => start..end,
            _ => 0..0,
        }
    }

    /// The craft score of `edit`: 0 for a flawless edit, lower for worse ones.
    pub fn score(&self, edit: &Edit) -> Result<f32, OracleError> {
        let beats = self.truth.beats.len();
        if edit.source_beats() != beats {
            return Err(OracleError::EditBeats {
                expected: beats,
                actual: edit.source_beats(),
            });
        }
        let w = &self.weights;
        let kept = edit.kept_beats();
        let meter = usize::from(self.truth.meter.max(1));
        let mut score = 0.0;
        for join in edit.joins() {
            // The removed span is before+1 .. after; the listener expected beat before+1.
            let (cut, land) = (join.before + 1, join.after);
            score -= w.per_join;
            score -= w.off_downbeat * (self.off_downbeat(cut) + self.off_downbeat(land));
            if self.off_downbeat(cut) == 0.0 && self.off_downbeat(land) == 0.0 {
                let bars = self.bar_of[land] - self.bar_of[cut];
                if !bars.is_multiple_of(PHRASE_BARS) {
                    score -= w.partial_phrase;
                }
                if !self.on_phrase(cut) || !self.on_phrase(land) {
                    score -= w.mid_phrase;
                }
                let whole_sections =
                    self.section_bounds.contains(&cut) && self.section_bounds.contains(&land);
                if whole_sections || (bars > 0 && bars.is_multiple_of(2 * PHRASE_BARS)) {
                    score += w.whole_section_bonus;
                }
            } else {
                score -= w.mid_phrase;
            }
            let left = self.mean_row(&kept[join.position.saturating_sub(meter)..join.position]);
            let right =
                self.mean_row(&kept[join.position..(join.position + meter).min(kept.len())]);
            score -= w.timbre * timbre_distance(&left, &right);
            score -= w.harmony * harmony_distance(&left, &right);
            score -= w.loudness * loudness_jump(&left, &right);
        }
        let intro_end = self.section_bounds.get(1).copied().unwrap_or(beats);
        let outro_start = self.section_bounds[self.section_bounds.len().saturating_sub(2)];
        let touches_ends = edit
            .removed()
            .iter()
            .any(|s| s.start < intro_end || s.end > outro_start);
        if touches_ends && self.truth.sections.len() > 2 {
            score -= w.cuts_intro_or_outro;
        }
        let length_error = (edit.kept_len() as f32 / self.target_beats as f32 - 1.0).abs();
        score -= w.length * length_error;
        Ok(score)
    }

    /// `P(a ≻ b)` from the two scores.
    pub fn probability(&self, score_a: f32, score_b: f32) -> f32 {
        logistic(score_a - score_b, self.temperature)
    }

    /// Judges `a` against `b`, sampling the label from the oracle's probability.
    pub fn judge(&self, a: &Edit, b: &Edit, rng: &mut impl Rng) -> Result<Judgement, OracleError> {
        let (score_a, score_b) = (self.score(a)?, self.score(b)?);
        let p_a = self.probability(score_a, score_b);
        Ok(Judgement {
            score_a,
            score_b,
            p_a,
            a_preferred: rng.random::<f32>() < p_a,
            confidence: p_a.max(1.0 - p_a),
        })
    }

    /// Judges `a` against `b` without sampling: the label is the oracle's own majority and the
    /// confidence its probability on a curve `widen` times as wide (a soft label, for training
    /// on the oracle's certainty rather than on a sampled call). `widen` below 1 counts as 1.
    pub fn judge_expected(&self, a: &Edit, b: &Edit, widen: f32) -> Result<Judgement, OracleError> {
        let (score_a, score_b) = (self.score(a)?, self.score(b)?);
        let p_a = logistic(score_a - score_b, self.temperature * widen.max(1.0));
        Ok(Judgement {
            score_a,
            score_b,
            p_a,
            a_preferred: p_a >= 0.5,
            confidence: p_a.max(1.0 - p_a),
        })
    }

    /// The mean feature vector of `beats`.
    fn mean_row(&self, beats: &[usize]) -> Vec<f32> {
        let mut mean = vec![0.0; self.features.row(0).len()];
        for &b in beats {
            for (m, v) in mean.iter_mut().zip(self.features.row(b)) {
                *m += v;
            }
        }
        let n = beats.len().max(1) as f32;
        mean.iter_mut().for_each(|m| *m /= n);
        mean
    }

    /// 1 when beat `i` is not a downbeat, else 0.
    fn off_downbeat(&self, i: usize) -> f32 {
        if self.truth.beat_in_bar.get(i).is_some_and(|&b| b == 0) {
            0.0
        } else {
            1.0
        }
    }

    /// Whether downbeat `i` starts a 4-bar phrase (or a section, where phrases restart).
    fn on_phrase(&self, i: usize) -> bool {
        self.section_bounds.contains(&i) || self.bar_of[i].is_multiple_of(PHRASE_BARS)
    }
}

/// The kept beats a cut to `fraction` of `grid` should come to, rounded to whole bars.
pub fn target_beats(grid: &BeatGrid, fraction: f64) -> usize {
    let meter = usize::from(grid.meter.max(1));
    let bars = (grid.len() as f64 * fraction / meter as f64).round() as usize;
    (bars.max(1) * meter).min(grid.len())
}

fn group(name: &str) -> Range<usize> {
    let g = FEATURE_TABLE
        .iter()
        .find(|g| g.name == name)
        .expect("the oracle names only groups of the feature table");
    g.start..g.start + g.len
}

/// Euclidean distance of MFCC 1-12 means (MFCC 0 is level, judged by loudness), per coefficient.
fn timbre_distance(a: &[f32], b: &[f32]) -> f32 {
    let r = group("mfcc_mean");
    let r = r.start + 1..r.end;
    let n = r.len() as f32;
    let sq: f32 = a[r.clone()]
        .iter()
        .zip(&b[r])
        .map(|(x, y)| (x - y).powi(2))
        .sum();
    (sq / n).sqrt()
}

/// Mean absolute chroma difference (0 = same harmony, 1 = disjoint).
fn harmony_distance(a: &[f32], b: &[f32]) -> f32 {
    let r = group("chroma");
    let n = r.len() as f32;
    a[r.clone()]
        .iter()
        .zip(&b[r])
        .map(|(x, y)| (x - y).abs())
        .sum::<f32>()
        / n
}

/// Absolute difference of the beats' mean levels (1 = 20 dB).
fn loudness_jump(a: &[f32], b: &[f32]) -> f32 {
    let i = group("loudness").start;
    (a[i] - b[i]).abs()
}

#[cfg(test)]
mod tests {
    use super::*;
    use cutscore_analysis::features_for_grid;
    use cutscore_synth::{SongSpec, render};
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn song() -> (SongTruth, FeatureMatrix) {
        let spec = SongSpec {
            seed: 3,
            bars: 24,
            bpm: 128.0,
            sample_rate: 22_050,
            ..SongSpec::default()
        };
        let song = render(&spec).unwrap();
        let grid = song.truth.grid().unwrap();
        let features = features_for_grid(&song.mono(), song.sample_rate, &grid).unwrap();
        (song.truth, features)
    }

    #[test]
    fn a_phrase_cut_on_downbeats_beats_the_same_length_off_the_beat() {
        let (truth, features) = song();
        let beats = truth.beats.len();
        let first = truth.beat_in_bar.iter().position(|&b| b == 0).unwrap();
        let target = beats - 16;
        let oracle = Oracle::new(&truth, &features, target).unwrap();
        // Four bars from a phrase boundary in the middle (bar 8), versus the same 16 beats
        // shifted by one beat, and by two bars (mid-phrase, still on downbeats).
        let start = first + 8 * 4;
        let clean = Edit::new(beats, [(start, start + 16)]).unwrap();
        let shifted = Edit::new(beats, [(start + 1, start + 17)]).unwrap();
        let mid_phrase = Edit::new(beats, [(start + 8, start + 24)]).unwrap();
        let s_clean = oracle.score(&clean).unwrap();
        let s_shift = oracle.score(&shifted).unwrap();
        let s_mid = oracle.score(&mid_phrase).unwrap();
        assert!(
            s_clean > s_mid && s_mid > s_shift,
            "{s_clean} {s_mid} {s_shift}"
        );
        assert!(s_clean - s_shift > 2.0, "{s_clean} vs {s_shift}");
    }

    #[test]
    fn length_intro_and_join_count_are_judged() {
        let (truth, features) = song();
        let beats = truth.beats.len();
        let first = truth.beat_in_bar.iter().position(|&b| b == 0).unwrap();
        let oracle = Oracle::new(&truth, &features, beats - 32).unwrap();
        let one_join = Edit::new(beats, [(first + 32, first + 64)]).unwrap();
        let two_joins =
            Edit::new(beats, [(first + 32, first + 48), (first + 64, first + 80)]).unwrap();
        let too_short = Edit::new(beats, [(first + 16, first + 80)]).unwrap();
        let no_intro = Edit::new(beats, [(0, first + 32)]).unwrap();
        let best = oracle.score(&one_join).unwrap();
        assert!(best > oracle.score(&two_joins).unwrap());
        assert!(best > oracle.score(&too_short).unwrap());
        assert!(best > oracle.score(&no_intro).unwrap());
        assert!(best <= oracle.weights.whole_section_bonus);
    }

    #[test]
    fn labels_follow_the_probability_and_confidence_is_the_surer_side() {
        let (truth, features) = song();
        let beats = truth.beats.len();
        let first = truth.beat_in_bar.iter().position(|&b| b == 0).unwrap();
        let oracle = Oracle::new(&truth, &features, beats - 16).unwrap();
        let good = Edit::new(beats, [(first + 32, first + 48)]).unwrap();
        let bad = Edit::new(beats, [(first + 33, first + 47)]).unwrap();
        let mut rng = StdRng::seed_from_u64(1);
        let judged: Vec<Judgement> = (0..400)
            .map(|_| oracle.judge(&good, &bad, &mut rng).unwrap())
            .collect();
        let j = judged[0];
        assert!(j.p_a > 0.9 && (j.confidence - j.p_a).abs() < 1e-6);
        let won = judged.iter().filter(|j| j.a_preferred).count() as f32 / 400.0;
        assert!((won - j.p_a).abs() < 0.05, "won {won}, p {}", j.p_a);
        // A coin flip between identical edits.
        let tie = oracle.judge(&good, &good, &mut rng).unwrap();
        assert_eq!(tie.p_a, 0.5);
    }

    #[test]
    fn refuses_mismatched_inputs() {
        let (truth, features) = song();
        let beats = truth.beats.len();
        assert!(matches!(
            Oracle::new(&truth, &features, 0),
            Err(OracleError::Target { .. })
        ));
        let oracle = Oracle::new(&truth, &features, beats / 2).unwrap();
        let other = Edit::new(beats + 4, [(4, 8)]).unwrap();
        assert_eq!(
            oracle.score(&other),
            Err(OracleError::EditBeats {
                expected: beats,
                actual: beats + 4
            })
        );
    }
}
