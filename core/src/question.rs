//! Which "which is better?" question teaches a taste most (the editor's Teach, issue #18).
//!
//! A taste layer is a logistic regression on the difference of two edits' summaries
//! ([`crate::taste`]). An answer about two edits whose summaries differ by `v`, ordered by the
//! model with probability `p`, tells it `p (1 - p) v vᵀ` (its Fisher information). The question
//! asked is the pair with the most `p (1 - p) vᵀ Σ v`, where `Σ = (I + Σ w v vᵀ)⁻¹` over the
//! answers already given: the model is unsure of the answer (`p` near 1/2), the two edits differ
//! in what a taste can be about (a large `v`), and in a direction earlier answers have not
//! covered (`Σ`). This is the expected shrinkage of the model's uncertainty about the answer
//! (Laplace approximation, a unit prior on standardised weights). Closest scores alone, the
//! rule before it, also asks about pairs of near-identical edits, whose answer is a coin toss to
//! the user and teaches nothing.
//!
//! Inputs are standardised by their spread over the candidates, so one taste input in dB and
//! another in bars weigh alike, and an input that does not vary among them is left out.

use crate::taste::TASTE_INPUTS;

/// Inputs spreading less than this over the candidates are left out.
const MIN_SPREAD: f32 = 1e-6;

/// An answer already given: the raw summary difference of the two edits, and its weight
/// `p (1 - p)` when it was asked.
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
            if self.scale[k] > 0.0 {
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
        uncertainty(score_a - score_b) * spread
    }

    /// Takes `answer` into account (a rank-one update of `Σ`, Sherman–Morrison).
    pub fn learn(&mut self, answer: &Answer) {
        let v = self.standardised(&answer.difference);
        let sv = self.sigma_times(&v);
        let denominator = 1.0 / answer.weight.max(f32::MIN_POSITIVE)
            + sv.iter().zip(&v).map(|(s, x)| s * x).sum::<f32>();
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
        // Learning one answer at a time is the same as starting with it.
        let mut stepwise = Questions::new(&all, &[]);
        stepwise.learn(&Answer::new(&a, &b, 0.0, 0.0));
        assert!((stepwise.value(&a, &b, 0.0, 0.0) - answered.value(&a, &b, 0.0, 0.0)).abs() < 1e-6);
        // An input that does not vary is left out: it adds nothing.
        let f = summary(&[(0, 1.0), (2, 5.0)]);
        assert_eq!(q.value(&a, &f, 0.0, 0.0), 0.0);
    }

    #[test]
    fn the_value_is_the_exact_posterior_variance_times_p_one_minus_p() {
        // Two inputs, spreads 1 and 2, one earlier answer: compare with the 2x2 inverse.
        let all = [
            summary(&[(0, 1.0), (1, 2.0)]),
            summary(&[(0, -1.0), (1, -2.0)]),
        ];
        let answer = Answer {
            difference: summary(&[(0, 2.0), (1, 2.0)]),
            weight: 0.25,
        };
        let q = Questions::new(&all, &[answer]);
        // Standardised: v = (2/1, 2/2) = (2, 1); H = I + 0.25 v vᵀ = [[2, 0.5], [0.5, 1.25]].
        let (h00, h01, h11) = (2.0f32, 0.5f32, 1.25f32);
        let det = h00 * h11 - h01 * h01;
        let (x, y) = (1.0f32, 0.5f32); // a - b = (1, 1) standardised
        let variance = (h11 * x * x - 2.0 * h01 * x * y + h00 * y * y) / det;
        let value = q.value(&summary(&[(0, 1.0), (1, 1.0)]), &summary(&[]), 0.0, 0.0);
        assert!(
            (value - 0.25 * variance).abs() < 1e-5,
            "{value} {}",
            0.25 * variance
        );
    }
}
