//! From edits to model inputs and back: scoring windows, batching, and per-edit scores.
//!
//! An edit is scored on the windows of [`Edit::scoring_windows`]; each window's input rows are
//! the 121 beat features of the kept source beat followed by the beat's 4 edit-aware features.
//! An edit's score is the mean of its windows' scores. [`EditBatch`] keeps that mean inside
//! the tensor graph (an averaging matrix), so training backpropagates through it; scoring many
//! candidates uses [`score_edits`], which batches windows in chunks.
//!
//! A model with a taste layer adds its offset to each edit's mean, on both paths alike. The sum
//! is not clamped: the transformer's scores lie in [-10, +10], and a taste that prefers an edit
//! the transformer already rates near +10 must still be able to put it first (a clamp would tie
//! them).

use candle_core::{Device, Tensor};

use super::{Batch, Config, ModelError, RewardModel};
use cutscore_core::edit::Edit;
use cutscore_core::features::{BEAT_FEATURES, EDIT_FEATURES, FeatureMatrix, MODEL_INPUTS};
use cutscore_core::taste::{TASTE_INPUTS, taste_inputs, track_mean};

/// The analysed track an edit applies to.
#[derive(Debug, Clone, Copy)]
pub struct Track<'a> {
    pub features: &'a FeatureMatrix,
    /// Beats per bar, which scales the `removed_bars` edit feature.
    pub meter: u8,
}

/// The model inputs (`beats * 125` values each) of every scoring window of `edit`.
pub fn window_inputs(
    track: Track,
    edit: &Edit,
    window: usize,
) -> Result<Vec<Vec<f32>>, ModelError> {
    if track.features.beats() != edit.source_beats() {
        return Err(ModelError::Shape {
            what: "feature matrix",
            expected: format!("{} beats, as the edit's track", edit.source_beats()),
            actual: vec![track.features.beats(), BEAT_FEATURES],
        });
    }
    let kept = edit.kept_beats();
    let edit_features = edit.features(track.meter);
    Ok(edit
        .scoring_windows(window)
        .into_iter()
        .map(|range| {
            let mut rows = Vec::with_capacity(range.len() * MODEL_INPUTS);
            for i in range {
                rows.extend_from_slice(track.features.row(kept[i]));
                rows.extend_from_slice(&edit_features[i * EDIT_FEATURES..(i + 1) * EDIT_FEATURES]);
            }
            rows
        })
        .collect())
}

/// The scoring windows of several edits, each with the index of the edit it belongs to.
fn gather_windows<'a, 't: 'a>(
    edits: impl Iterator<Item = (Track<'t>, &'a Edit)>,
    window: usize,
) -> Result<(Vec<Vec<f32>>, Vec<usize>), ModelError> {
    let mut sequences = Vec::new();
    let mut owners = Vec::new();
    for (index, (track, edit)) in edits.enumerate() {
        for seq in window_inputs(track, edit, window)? {
            sequences.push(seq);
            owners.push(index);
        }
    }
    Ok((sequences, owners))
}

/// Several edits' windows in one padded batch, with the matrix that averages window scores
/// into edit scores.
#[derive(Debug, Clone)]
pub struct EditBatch {
    pub batch: Batch,
    /// (edits, windows): row `e` holds `1/k` for each of edit `e`'s `k` windows.
    pub aggregate: Tensor,
    /// Each edit's taste summary, for a model with a taste layer.
    taste_inputs: Vec<[f32; TASTE_INPUTS]>,
}

impl EditBatch {
    /// Packs the windows of `edits` for a model of `config` (its window and position limit).
    pub fn new(
        edits: &[(Track, &Edit)],
        config: &Config,
        device: &Device,
    ) -> Result<Self, ModelError> {
        let (window, max_len) = (config.scoring_window(), config.max_len);
        let (sequences, owners) = gather_windows(edits.iter().copied(), window)?;
        let slices: Vec<&[f32]> = sequences.iter().map(Vec::as_slice).collect();
        let batch = Batch::new(&slices, MODEL_INPUTS, max_len, device)?;
        let windows = owners.len();
        let mut weights = vec![0f32; edits.len() * windows];
        let mut counts = vec![0usize; edits.len()];
        owners.iter().for_each(|&e| counts[e] += 1);
        for (w, &e) in owners.iter().enumerate() {
            weights[e * windows + w] = 1.0 / counts[e] as f32;
        }
        let aggregate = Tensor::from_vec(weights, (edits.len(), windows), device)?;
        let taste_inputs = edits
            .iter()
            .map(|(track, edit)| {
                taste_inputs(
                    track.features,
                    &track_mean(track.features),
                    track.meter,
                    edit,
                )
            })
            .collect();
        Ok(Self {
            batch,
            aggregate,
            taste_inputs,
        })
    }

    /// (edits,) scores: the mean of each edit's window scores.
    pub fn scores(&self, model: &RewardModel, train: bool) -> Result<Tensor, ModelError> {
        let windows = model.forward(&self.batch.inputs, &self.batch.mask, train)?;
        let means = self.aggregate.matmul(&windows.unsqueeze(1)?)?.squeeze(1)?;
        let Some(taste) = model.taste() else {
            return Ok(means);
        };
        // The gate reads the transformer's score; it is a constant of the step, so the
        // gradient flows through the transformer's share alone.
        let offsets: Vec<f32> = self
            .taste_inputs
            .iter()
            .zip(means.to_vec1::<f32>()?)
            .map(|(x, score)| taste.offset(x, score))
            .collect();
        let offsets = Tensor::from_vec(offsets, means.dims(), means.device())?;
        Ok((means + offsets)?)
    }
}

/// Scores many edits of one track on the model's own window, `chunk` windows per forward pass.
pub fn score_edits(
    model: &RewardModel,
    track: Track,
    edits: &[Edit],
    chunk: usize,
) -> Result<Vec<f32>, ModelError> {
    let max_len = model.config().max_len;
    let window = model.config().scoring_window();
    let (sequences, owners) = gather_windows(edits.iter().map(|edit| (track, edit)), window)?;
    let mut sums = vec![0f32; edits.len()];
    let mut counts = vec![0usize; edits.len()];
    for (seqs, owners) in sequences
        .chunks(chunk.max(1))
        .zip(owners.chunks(chunk.max(1)))
    {
        let slices: Vec<&[f32]> = seqs.iter().map(Vec::as_slice).collect();
        let batch = Batch::new(&slices, MODEL_INPUTS, max_len, model.device())?;
        let scores: Vec<f32> = model
            .forward(&batch.inputs, &batch.mask, false)?
            .to_vec1()?;
        for (&owner, score) in owners.iter().zip(scores) {
            sums[owner] += score;
            counts[owner] += 1;
        }
    }
    let means = sums.iter().zip(&counts).map(|(s, &c)| s / c as f32);
    let Some(taste) = model.taste() else {
        return Ok(means.collect());
    };
    let mean = track_mean(track.features);
    Ok(means
        .zip(edits)
        .map(|(m, edit)| {
            m + taste.offset(&taste_inputs(track.features, &mean, track.meter, edit), m)
        })
        .collect())
}
