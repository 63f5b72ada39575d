//! Training primitives: the Bradley–Terry pairwise loss, accuracy, and an AdamW step over
//! preference pairs of edits.
//!
//! For a pair where `chosen` was preferred to `rejected` with confidence `c` (1 = certain), the
//! loss is the label-smoothed Bradley–Terry negative log-likelihood
//! `-(c log σ(r_c - r_r) + (1 - c) log σ(r_r - r_c))`, plus a reward-centering term
//! `λ ((r_c + r_r) / 2)²` that keeps scores near zero on average without changing which edit is
//! preferred (Eisenstein et al., "Helping or Herding?", 2023). Dropout is on only in
//! [`Trainer::step`]; evaluation runs the model as scoring does.

use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use candle_nn::optim::{AdamW, Optimizer, ParamsAdamW};

use cutscore_core::edit::Edit;
use cutscore_reward::scoring::{EditBatch, Track};
use cutscore_reward::{Batch, ModelError, RewardModel};

/// One preference: on `track`, `chosen` beat `rejected` with `confidence` in [0.5, 1].
#[derive(Debug, Clone, Copy)]
pub struct PairInput<'a> {
    pub track: Track<'a>,
    pub chosen: &'a Edit,
    pub rejected: &'a Edit,
    pub confidence: f32,
}

/// Optimiser and loss settings.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct TrainConfig {
    pub learning_rate: f64,
    pub weight_decay: f64,
    /// Weight λ of the reward-centering term.
    pub centering: f64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            learning_rate: 3e-4,
            weight_decay: 0.01,
            centering: 1e-3,
        }
    }
}

/// Loss and accuracy over some pairs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairStats {
    /// Mean loss per pair.
    pub loss: f32,
    /// Share of pairs where the chosen edit scored higher.
    pub accuracy: f32,
    pub pairs: usize,
}

/// Mean Bradley–Terry loss with label smoothing and reward centering. All inputs are (pairs,).
pub fn bradley_terry_loss(
    chosen: &Tensor,
    rejected: &Tensor,
    confidence: &Tensor,
    centering: f64,
) -> candle_core::Result<Tensor> {
    let margin = (chosen - rejected)?;
    let likelihood = ((confidence * log_sigmoid(&margin)?)?
        + (confidence.affine(-1.0, 1.0)? * log_sigmoid(&margin.neg()?)?)?)?;
    let centre = ((chosen + rejected)? * 0.5)?.sqr()?;
    (likelihood.neg()? + (centre * centering)?)?.mean_all()
}

/// `log σ(x)`, stable for large |x|: `-(max(-x, 0) + ln(1 + e^{-|x|}))`.
fn log_sigmoid(x: &Tensor) -> candle_core::Result<Tensor> {
    let softplus = (x.neg()?.relu()? + (x.abs()?.neg()?.exp()? + 1.0)?.log()?)?;
    softplus.neg()
}

/// Share of pairs whose chosen score is higher (ties count as wrong).
pub fn accuracy(chosen: &[f32], rejected: &[f32]) -> f32 {
    if chosen.is_empty() {
        return 0.0;
    }
    let right = chosen.iter().zip(rejected).filter(|(c, r)| c > r).count();
    right as f32 / chosen.len() as f32
}

/// A model, its trainable weights, and an AdamW optimiser.
pub struct Trainer {
    model: RewardModel,
    varmap: VarMap,
    optimizer: AdamW,
    config: TrainConfig,
}

impl Trainer {
    pub fn new(
        model: RewardModel,
        varmap: VarMap,
        config: TrainConfig,
    ) -> Result<Self, ModelError> {
        let params = ParamsAdamW {
            lr: config.learning_rate,
            weight_decay: config.weight_decay,
            ..ParamsAdamW::default()
        };
        let optimizer = AdamW::new(varmap.all_vars(), params)?;
        Ok(Self {
            model,
            varmap,
            optimizer,
            config,
        })
    }

    pub fn model(&self) -> &RewardModel {
        &self.model
    }

    pub fn varmap(&self) -> &VarMap {
        &self.varmap
    }

    pub fn set_learning_rate(&mut self, lr: f64) {
        self.optimizer.set_learning_rate(lr);
    }

    /// One optimiser step on `pairs` (one batch). Returns the batch's loss and accuracy.
    pub fn step(&mut self, pairs: &[PairInput]) -> Result<PairStats, ModelError> {
        let PairScores {
            chosen,
            rejected,
            confidence,
        } = pair_scores(&self.model, pairs, true)?;
        self.descend(&chosen, &rejected, &confidence)
    }

    /// One optimiser step on a batch of `2 n` single-window sequences: the first `n` chosen,
    /// the last `n` rejected, each pair certain. This is the step `trainer bench` times.
    pub fn step_sequences(&mut self, batch: &Batch) -> Result<PairStats, ModelError> {
        let scores = self.model.forward(&batch.inputs, &batch.mask, true)?;
        let n = scores.dim(0)? / 2;
        if n == 0 {
            return Err(ModelError::EmptyBatch);
        }
        let confidence = Tensor::ones(n, candle_core::DType::F32, self.model.device())?;
        self.descend(
            &scores.narrow(0, 0, n)?,
            &scores.narrow(0, n, n)?,
            &confidence,
        )
    }

    fn descend(
        &mut self,
        chosen: &Tensor,
        rejected: &Tensor,
        confidence: &Tensor,
    ) -> Result<PairStats, ModelError> {
        let loss = bradley_terry_loss(chosen, rejected, confidence, self.config.centering)?;
        self.optimizer.backward_step(&loss)?;
        stats(&loss, chosen, rejected, chosen.dim(0)?)
    }

    /// Loss and accuracy on `pairs`, without training, `batch` pairs at a time.
    pub fn evaluate(&self, pairs: &[PairInput], batch: usize) -> Result<PairStats, ModelError> {
        evaluate(&self.model, pairs, batch, &self.config)
    }
}

/// Loss and accuracy of any model on `pairs`, `batch` pairs per forward pass.
pub fn evaluate(
    model: &RewardModel,
    pairs: &[PairInput],
    batch: usize,
    config: &TrainConfig,
) -> Result<PairStats, ModelError> {
    let mut loss_sum = 0.0;
    let mut right = 0.0;
    for chunk in pairs.chunks(batch.max(1)) {
        let PairScores {
            chosen,
            rejected,
            confidence,
        } = pair_scores(model, chunk, false)?;
        let loss = bradley_terry_loss(&chosen, &rejected, &confidence, config.centering)?;
        let s = stats(&loss, &chosen, &rejected, chunk.len())?;
        loss_sum += s.loss * chunk.len() as f32;
        right += s.accuracy * chunk.len() as f32;
    }
    let n = pairs.len().max(1) as f32;
    Ok(PairStats {
        loss: loss_sum / n,
        accuracy: right / n,
        pairs: pairs.len(),
    })
}

/// The rewards of a batch of pairs, in one forward pass: (pairs,) each.
pub(crate) struct PairScores {
    pub chosen: Tensor,
    pub rejected: Tensor,
    /// The labels' confidence, clamped to 0..1.
    pub confidence: Tensor,
}

/// Scores every pair's chosen and rejected edit in one batch (with dropout when `train`).
pub(crate) fn pair_scores(
    model: &RewardModel,
    pairs: &[PairInput],
    train: bool,
) -> Result<PairScores, ModelError> {
    if pairs.is_empty() {
        return Err(ModelError::EmptyBatch);
    }
    let edits: Vec<(Track, &Edit)> = pairs
        .iter()
        .map(|p| (p.track, p.chosen))
        .chain(pairs.iter().map(|p| (p.track, p.rejected)))
        .collect();
    let device: &Device = model.device();
    let batch = EditBatch::new(&edits, model)?;
    let scores = batch.scores(model, train)?;
    let n = pairs.len();
    let confidence: Vec<f32> = pairs.iter().map(|p| p.confidence.clamp(0.0, 1.0)).collect();
    Ok(PairScores {
        chosen: scores.narrow(0, 0, n)?,
        rejected: scores.narrow(0, n, n)?,
        confidence: Tensor::from_vec(confidence, n, device)?,
    })
}

fn stats(
    loss: &Tensor,
    chosen: &Tensor,
    rejected: &Tensor,
    pairs: usize,
) -> Result<PairStats, ModelError> {
    let chosen: Vec<f32> = chosen.to_vec1()?;
    let rejected: Vec<f32> = rejected.to_vec1()?;
    Ok(PairStats {
        loss: loss.to_scalar()?,
        accuracy: accuracy(&chosen, &rejected),
        pairs,
    })
}

#[cfg(test)]
mod tests;
