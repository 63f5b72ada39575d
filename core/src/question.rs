//! Which "which is better?" question teaches a taste most (the editor's Teach, issue #18).
//!
//! A taste layer is a logistic regression on the difference of two edits' summaries
//! ([`crate::taste`]). An answer about two edits whose summaries differ by `v`, ordered by the
//! model with probability `p`, tells it `p (1 - p) v vᵀ` (its Fisher information). The question
//! asked is the pair with the most `p (1 - p) vᵀ Σ v`, where `Σ = (I + Σ w v vᵀ)⁻¹` over the
//! questions already asked: the model is unsure of the answer (`p` near 1/2), the two edits
//! differ in what a taste can be about (a large `v`), and in a direction earlier answers have
//! not covered (`Σ`). For a linear logistic model with a unit prior on standardised weights
//! (Laplace approximation), the information an answer gives grows with this value
//! (`½ log(1 + p (1 - p) vᵀ Σ v)`); the layer is that model only approximately (its offset is
//! bounded, gated, and learned with an L1 penalty and replayed pairs, `training`'s `layer_fit`),
//! so the rule is a heuristic grounded in it, measured with simulated users by `trainer
//! taste-eval --teach`. Closest scores alone, the rule before it, also asks about pairs of
//! near-identical edits, whose answer is a coin toss to the user and teaches nothing.
//!
//! Tried and not kept (issue #18, session 40): the expected information an answer gives about
//! the weights with their uncertainty carried into the predictive probability (BALD, Houlsby
//! et al. 2011, probit approximation), with this prior and with one three times wider. Mean
//! agreement over the first 10 to 100 answers on recordings, seeds 30-39, this rule / BALD /
//! BALD with the wider prior: lift 94.2 / 92.7 / 93.8 %, noisy lift 87.4 / 87.0 / 86.0, long
//! cuts 87.7 / 87.8 / 88.6, quiet-out 86.3 / 88.0 / 88.3; two tastes a little better, two a
//! little worse.
//!
//! Tried and not kept (session 56): how much an answer would shrink the model's predictive
//! variance summed over the pairs of candidates, `w (Σv)ᵀ C (Σv) / (1 + w vᵀΣv)` with `C` the
//! candidates' correlation (V-optimal design: a pair differing along the directions the
//! proposals vary in counts for more than one differing in a rare combination of inputs, which
//! this rule weighs alike). Same study, seeds 30-39, this rule / that one: reached 90 % in half
//! random's answers or fewer on 12 / 14 of 40 runs (a rule written before asked 4 more), mean
//! agreement over the first 10 to 100 answers lift 94.4 / 94.1 %, noisy lift 88.1 / 88.7, long
//! cuts 87.1 / 87.5, quiet-out 87.8 / 87.9: within the spread of one seed to the next.
//!
//! Inputs are standardised by their spread over the candidates, so one taste input in dB and
//! another in bars weigh alike, and an input that does not vary among them is left out. A
//! non-finite input or score counts as telling nothing, never as a question worth asking.

use crate::taste::TASTE_INPUTS;

/// Inputs spreading less than this over the candidates are left out.
const MIN_SPREAD: f32 = 1e-6;

/// A question already asked: the raw summary difference of the two edits, and its weight
/// `p (1 - p)` when it was asked (0 for one the user skipped, which told nothing).
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub difference: [f32; TASTE_INPUTS],
    pub weight: f32,
}

impl Answer {
    /// The answer about edits summarised `a` and `b`, scored `score_a` and `score_b` by the
    /// model when asked.
    pub fn new(
        a: &[f32; TASTE_INPUTS],
        b: &[f32; TASTE_INPUTS],
        score_a: f32,
        score_b: f32,
    ) -> Self {
        Self {
            difference: std::array::from_fn(|k| a[k] - b[k]),
            weight: uncertainty(score_a - score_b),
        }
    }
}

/// `p (1 - p)` of a Bradley–Terry margin: 1/4 for a coin toss, towards 0 for a sure order.
fn uncertainty(margin: f32) -> f32 {
    let p = 1.0 / (1.0 + (-margin).exp());
    p * (1.0 - p)
}

/// What the model still does not know, over one set of candidate edits.
#[derive(Debug, Clone)]
pub struct Questions {
    /// Each input's spread over the candidates (0: left out).
    scale: [f32; TASTE_INPUTS],
    /// `Σ`, row-major, in standardised inputs.
    sigma: Vec<f32>,
}

impl Questions {
    /// The uncertainty over candidates with these `summaries`, after `answers`.
    pub fn new<'a>(
        summaries: impl IntoIterator<Item = &'a [f32; TASTE_INPUTS]>,
        answers: &[Answer],
    ) -> Self {
        let summaries: Vec<&[f32; TASTE_INPUTS]> = summaries.into_iter().collect();
        let n = summaries.len().max(1) as f32;
        let scale = std::array::from_fn(|k| {
            let mean = summaries.iter().map(|s| s[k]).sum::<f32>() / n;
            let spread = (summaries.iter().map(|s| (s[k] - mean).powi(2)).sum::<f32>() / n).sqrt();
            if spread > MIN_SPREAD { spread } else { 0.0 }
        });
        let mut sigma = vec![0f32; TASTE_INPUTS * TASTE_INPUTS];
        for k in 0..TASTE_INPUTS {
            sigma[k * TASTE_INPUTS + k] = 1.0;
        }
        let mut questions = Self { scale, sigma };
        for answer in answers {
            questions.learn(answer);
        }
        questions
    }

    fn standardised(&self, difference: &[f32; TASTE_INPUTS]) -> [f32; TASTE_INPUTS] {
        std::array::from_fn(|k| {
            if self.scale[k] > 0.0 && difference[k].is_finite() {
                difference[k] / self.scale[k]
            } else {
                0.0
            }
        })
    }

    /// `Σ v`.
    fn sigma_times(&self, v: &[f32; TASTE_INPUTS]) -> [f32; TASTE_INPUTS] {
        std::array::from_fn(|r| {
            let row = &self.sigma[r * TASTE_INPUTS..(r + 1) * TASTE_INPUTS];
            row.iter().zip(v).map(|(s, x)| s * x).sum()
        })
    }

    /// How much asking about edits summarised `a` and `b`, which the model scores `score_a`
    /// and `score_b`, would teach: `p (1 - p) vᵀ Σ v`.
    pub fn value(
        &self,
        a: &[f32; TASTE_INPUTS],
        b: &[f32; TASTE_INPUTS],
        score_a: f32,
        score_b: f32,
    ) -> f32 {
        let v = self.standardised(&std::array::from_fn(|k| a[k] - b[k]));
        let spread: f32 = self
            .sigma_times(&v)
            .iter()
            .zip(&v)
            .map(|(s, x)| s * x)
            .sum();
        let value = uncertainty(score_a - score_b) * spread;
        if value.is_finite() { value } else { 0.0 }
    }

    /// Takes `answer` into account (a rank-one update of `Σ`, Sherman–Morrison).
    pub fn learn(&mut self, answer: &Answer) {
        if !(answer.weight > 0.0 && answer.weight.is_finite()) {
            return;
        }
        let v = self.standardised(&answer.difference);
        let sv = self.sigma_times(&v);
        let denominator = 1.0 / answer.weight + sv.iter().zip(&v).map(|(s, x)| s * x).sum::<f32>();
        for r in 0..TASTE_INPUTS {
            for c in 0..TASTE_INPUTS {
                self.sigma[r * TASTE_INPUTS + c] -= sv[r] * sv[c] / denominator;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(values: &[(usize, f32)]) -> [f32; TASTE_INPUTS] {
        let mut s = [0f32; TASTE_INPUTS];
        for &(k, v) in values {
            s[k] = v;
        }
        s
    }

    #[test]
    fn unsure_different_and_new_pairs_teach_most() {
        let a = summary(&[(0, 1.0), (1, 0.0)]);
        let b = summary(&[(0, -1.0), (1, 0.0)]);
        let c = summary(&[(0, 0.9), (1, 0.0)]);
        let d = summary(&[(0, 0.0), (1, 1.0)]);
        let e = summary(&[(0, 0.0), (1, -1.0)]);
        let all = [a, b, c, d, e];
        let q = Questions::new(&all, &[]);
        // Near-identical edits teach little, edits far apart much.
        assert!(q.value(&a, &b, 0.0, 0.0) > 10.0 * q.value(&a, &c, 0.0, 0.0));
        // A sure order teaches less than a coin toss.
        assert!(q.value(&a, &b, 0.0, 0.0) > 5.0 * q.value(&a, &b, 4.0, 0.0));
        // An answer about input 0 halves (or more) what asking about it again would teach, and
        // leaves a question about input 1, a direction it says nothing about, as it was.
        let answered = Questions::new(&all, &[Answer::new(&a, &b, 0.0, 0.0)]);
        assert!(answered.value(&a, &b, 0.0, 0.0) < 0.5 * q.value(&a, &b, 0.0, 0.0));
        assert!((answered.value(&d, &e, 0.0, 0.0) - q.value(&d, &e, 0.0, 0.0)).abs() < 1e-5);
        assert!(answered.value(&d, &e, 0.0, 0.0) > answered.value(&a, &b, 0.0, 0.0));
        // A skipped question (weight 0) and non-finite numbers tell nothing.
        let skipped = Answer {
            weight: 0.0,
            ..Answer::new(&a, &b, 0.0, 0.0)
        };
        let after_skip = Questions::new(&all, &[skipped]);
        assert_eq!(
            after_skip.value(&a, &b, 0.0, 0.0),
            q.value(&a, &b, 0.0, 0.0)
        );
        let broken = summary(&[(0, f32::NAN), (1, 1.0)]);
        let poisoned = Questions::new(&all, &[Answer::new(&broken, &e, 0.0, 0.0)]);
        assert!(poisoned.value(&a, &b, 0.0, 0.0).is_finite());
        assert_eq!(q.value(&a, &b, f32::NAN, 0.0), 0.0);
        // An input that does not vary is left out: it adds nothing.
        let f = summary(&[(0, 1.0), (2, 5.0)]);
        assert_eq!(q.value(&a, &f, 0.0, 0.0), 0.0);
    }

    #[test]
    fn the_value_is_p_one_minus_p_times_the_exact_posterior_variance() {
        // Two inputs, spreads 1 and 2 over the candidates, two answers in directions that are
        // not orthogonal, with different weights: compare with the 2 x 2 inverse.
        let all = [
            summary(&[(0, 1.0), (1, 2.0)]),
            summary(&[(0, -1.0), (1, -2.0)]),
        ];
        let answers = [
            Answer {
                difference: summary(&[(0, 2.0), (1, 2.0)]),
                weight: 0.25,
            },
            Answer {
                difference: summary(&[(0, 1.0), (1, 2.0)]),
                weight: 0.1,
            },
        ];
        let q = Questions::new(&all, &answers);
        // Standardised: v1 = (2, 1), v2 = (1, 1);
        // H = I + 0.25 v1 v1ᵀ + 0.1 v2 v2ᵀ = [[2.1, 0.6], [0.6, 1.35]].
        let (h00, h01, h11) = (2.1f32, 0.6f32, 1.35f32);
        let det = h00 * h11 - h01 * h01;
        // a - b = (1, 1) raw, (1, 0.5) standardised; scores 1 apart.
        let (x, y) = (1.0f32, 0.5f32);
        let variance = (h11 * x * x - 2.0 * h01 * x * y + h00 * y * y) / det;
        let p = 1.0 / (1.0 + (-1.0f32).exp());
        let value = q.value(&summary(&[(0, 1.0), (1, 1.0)]), &summary(&[]), 1.0, 0.0);
        let expected = p * (1.0 - p) * variance;
        assert!((value - expected).abs() < 1e-5, "{value} {expected}");
    }
}
