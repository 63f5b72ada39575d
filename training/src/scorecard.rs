//! How well a reward model agrees with preference pairs: accuracy, the training loss, reward
//! statistics and a calibration table (`trainer eval`).
//!
//! Calibration follows the reliability diagrams of Guo et al., "On Calibration of Modern
//! Neural Networks" (2017): pairs are bucketed by the model's own confidence in its call,
//! `σ(|r_a - r_b|)` (the Bradley–Terry probability it assigns to the edit it scores higher),
//! and each bucket's mean confidence is compared with how often that call matched the label.

use candle_core::{Device, Tensor};
use serde::Serialize;

use crate::bradley_terry::{TrainConfig, bradley_terry_loss};
use crate::pair_set::PairSet;
use cutscore_reward::{ModelError, RewardModel};

/// Bucket edges of the calibration table.
pub const CALIBRATION_EDGES: [f32; 6] = [0.5, 0.6, 0.7, 0.8, 0.9, 1.0];

/// One row of the calibration table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CalibrationBucket {
    /// Model confidence range `[low, high)` (the last includes 1).
    pub low: f32,
    pub high: f32,
    pub pairs: usize,
    /// Mean model confidence of the pairs in the bucket.
    pub confidence: Option<f32>,
    /// Share of them whose higher-scored edit was the chosen one.
    pub accuracy: Option<f32>,
}

/// The evaluation of a model on a pair set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scorecard {
    pub pairs: usize,
    /// Share of pairs whose chosen edit scored higher (ties count as wrong).
    pub accuracy: f32,
    /// Mean training loss (confidence-weighted Bradley–Terry + centering).
    pub loss: f32,
    /// Mean label confidence: the accuracy a model reproducing the labeller exactly would reach.
    pub label_confidence: f32,
    /// Mean and standard deviation of every scored edit's reward.
    pub reward_mean: f32,
    pub reward_std: f32,
    /// Mean of `r_chosen - r_rejected`.
    pub margin_mean: f32,
    /// Expected calibration error: the pair-weighted mean |confidence - accuracy| of the buckets.
    pub calibration_error: f32,
    pub calibration: Vec<CalibrationBucket>,
}

/// Rewards of every pair's chosen and rejected edit, `batch` pairs per forward pass.
pub fn pair_rewards(
    model: &RewardModel,
    set: &PairSet,
    batch: usize,
) -> Result<(Vec<f32>, Vec<f32>), ModelError> {
    let mut chosen = Vec::with_capacity(set.len());
    let mut rejected = Vec::with_capacity(set.len());
    for pairs in set.pairs.chunks(batch.max(1)) {
        let inputs: Vec<_> = pairs.iter().map(|p| set.input(p)).collect();
        let scored = crate::bradley_terry::pair_scores(model, &inputs, false)?;
        chosen.extend(scored.chosen.to_vec1::<f32>()?);
        rejected.extend(scored.rejected.to_vec1::<f32>()?);
    }
    Ok((chosen, rejected))
}

/// Evaluates `model` on every pair of `set`.
pub fn evaluate(
    model: &RewardModel,
    set: &PairSet,
    config: &TrainConfig,
    batch: usize,
) -> Result<Scorecard, ModelError> {
    if set.is_empty() {
        return Err(ModelError::EmptyBatch);
    }
    let (chosen, rejected) = pair_rewards(model, set, batch)?;
    let n = chosen.len();
    let confidence: Vec<f32> = set.pairs.iter().map(|p| p.confidence).collect();
    let loss = bradley_terry_loss(
        &Tensor::new(chosen.as_slice(), &Device::Cpu)?,
        &Tensor::new(rejected.as_slice(), &Device::Cpu)?,
        &Tensor::new(confidence.as_slice(), &Device::Cpu)?,
        config.centering,
    )?
    .to_scalar::<f32>()?;
    let margins: Vec<f32> = chosen.iter().zip(&rejected).map(|(c, r)| c - r).collect();
    let rewards: Vec<f32> = chosen.iter().chain(&rejected).copied().collect();
    let reward_mean = rewards.iter().sum::<f32>() / rewards.len() as f32;
    let reward_var = rewards
        .iter()
        .map(|r| (r - reward_mean).powi(2))
        .sum::<f32>()
        / rewards.len() as f32;
    let calibration = calibration(&margins);
    let calibration_error = calibration
        .iter()
        .filter_map(|b| Some(b.pairs as f32 * (b.confidence? - b.accuracy?).abs()))
        .sum::<f32>()
        / n as f32;
    Ok(Scorecard {
        pairs: n,
        accuracy: crate::bradley_terry::accuracy(&chosen, &rejected),
        loss,
        label_confidence: confidence.iter().sum::<f32>() / n as f32,
        reward_mean,
        reward_std: reward_var.sqrt(),
        margin_mean: margins.iter().sum::<f32>() / n as f32,
        calibration_error,
        calibration,
    })
}

/// The reliability table of margins `r_chosen - r_rejected`.
pub fn calibration(margins: &[f32]) -> Vec<CalibrationBucket> {
    let buckets = CALIBRATION_EDGES.len() - 1;
    let mut sums = vec![(0usize, 0.0f32, 0usize); buckets];
    for &m in margins {
        let p = 1.0 / (1.0 + (-m.abs()).exp());
        let index = CALIBRATION_EDGES[1..]
            .iter()
            .position(|&high| p < high)
            .unwrap_or(buckets - 1);
        let (count, conf, right) = &mut sums[index];
        *count += 1;
        *conf += p;
        *right += usize::from(m > 0.0);
    }
    sums.iter()
        .enumerate()
        .map(|(i, &(count, conf, right))| CalibrationBucket {
            low: CALIBRATION_EDGES[i],
            high: CALIBRATION_EDGES[i + 1],
            pairs: count,
            confidence: (count > 0).then(|| conf / count as f32),
            accuracy: (count > 0).then(|| right as f32 / count as f32),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calibration_buckets_by_the_models_confidence_in_its_call() {
        // σ(0.1) = 0.525, σ(1) = 0.731, σ(3) = 0.953.
        let table = calibration(&[0.1, -0.1, 1.0, 3.0, -3.0, 3.0]);
        assert_eq!(table.len(), 5);
        assert_eq!(table[0].pairs, 2);
        assert_eq!(table[0].accuracy, Some(0.5));
        assert!((table[0].confidence.unwrap() - 0.525).abs() < 1e-3);
        assert_eq!(table[2].pairs, 1);
        assert_eq!(table[2].accuracy, Some(1.0));
        assert_eq!(table[1].pairs, 0);
        assert_eq!(table[1].accuracy, None);
        assert_eq!(table[4].pairs, 3);
        assert!((table[4].accuracy.unwrap() - 2.0 / 3.0).abs() < 1e-6);
    }
}
