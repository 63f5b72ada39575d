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
//! them). A layer whose floor is measured from the track ([`FloorFrom::Track`]) also reads the
//! track's [`track_reference`], computed once per track and call.

use candle_core::Tensor;

use super::{Batch, ModelError, RewardModel};
use cutscore_core::edit::Edit;
use cutscore_core::features::{BEAT_FEATURES, EDIT_FEATURES, FeatureMatrix, MODEL_INPUTS};
use cutscore_core::taste::{TASTE_INPUTS, TasteLayer, taste_inputs, track_mean};

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

/// Bars a reference cut removes ([`track_reference`]).
const REFERENCE_CUT_BARS: usize = 2;

/// The track's reference score, which a taste layer's floor is measured from
/// ([`cutscore_core::taste::FloorFrom::Track`]): `model`'s transformer's best score among the
/// two-bar cuts that start on every other bar line from the second, those whose scoring windows
/// lie whole within the track (`None` for a track too short for one). Whole windows, because
/// the windows of a cut near the end are shifted back from it, as if the song ended there,
/// and while the plugin's capture grows that is not yet the song's end
/// (`plugin/src/score_cache.rs`). A fixed sample of the cuts the plugin proposes (every cut of
/// 1 to 16 bars from every bar line), one in 32 of them, so it costs one window per two bars:
/// its best tells how well the transformer scores the track's
/// best cuts, which differs from song to song (on 40 recordings the best proposal scored 6.7
/// on average with a spread of 1.1; on 20 synthetic songs 7.6 and 1.3). Bar lines are read from
/// the features ([`FeatureMatrix::bar_starts`]).
pub fn track_reference(model: &RewardModel, track: Track) -> Result<Option<f32>, ModelError> {
    let beats = track.features.beats();
    let cuts = reference_cuts(track.features, model.config().scoring_window())
        .into_iter()
        .map(|span| Edit::new(beats, [span]))
        .collect::<Result<Vec<_>, _>>()?;
    if cuts.is_empty() {
        return Ok(None);
    }
    let transformer = model.clone().with_taste(None);
    let scores = score_edits(&transformer, track, &cuts, REFERENCE_CHUNK)?;
    Ok(scores.into_iter().reduce(f32::max))
}

/// The `(start, end)` beats of the cuts [`track_reference`] reads, for scoring windows of
/// `window` beats: two bars from every other bar line from the second, where the windows lie
/// whole within the track (a window is centred on the join, or starts at the track's start when
/// the cut is that close to it).
pub fn reference_cuts(features: &FeatureMatrix, window: usize) -> Vec<(usize, usize)> {
    let bars = features.bar_starts();
    (1..bars.len().saturating_sub(REFERENCE_CUT_BARS))
        .step_by(REFERENCE_CUT_BARS)
        .map(|b| (bars[b], bars[b + REFERENCE_CUT_BARS]))
        .filter(|&(start, end)| end + window - start.min(window / 2) <= features.beats())
        .collect()
}

/// Windows per forward pass when [`track_reference`] scores its cuts.
const REFERENCE_CHUNK: usize = 64;

/// [`track_reference`] when `model`'s taste layer reads it, else `None` without scoring
/// anything: what [`score_edits_at`] takes, for a caller that scores one track in many calls.
pub fn taste_reference(model: &RewardModel, track: Track) -> Result<Option<f32>, ModelError> {
    if model.taste().is_some_and(TasteLayer::needs_reference) {
        track_reference(model, track)
    } else {
        Ok(None)
    }
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
    /// Each edit's [`track_reference`] (itself `None` for a track too short for one), when
    /// the model the batch was built for has a taste layer that reads it.
    references: Option<Vec<Option<f32>>>,
}

impl EditBatch {
    /// Packs the windows of `edits` for `model` (its window and position limit), with each
    /// track's reference score when its taste layer reads one (scored once per track in the
    /// batch, tracks told apart by the address of the feature matrix they borrow).
    pub fn new(edits: &[(Track, &Edit)], model: &RewardModel) -> Result<Self, ModelError> {
        let (config, device) = (model.config(), model.device());
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
        let references = if model.taste().is_some_and(TasteLayer::needs_reference) {
            let mut known: Vec<(&FeatureMatrix, Option<f32>)> = Vec::new();
            let mut each = Vec::with_capacity(edits.len());
            for (track, _) in edits {
                let reference = match known.iter().find(|(f, _)| std::ptr::eq(*f, track.features)) {
                    Some(&(_, reference)) => reference,
                    None => {
                        let reference = track_reference(model, *track)?;
                        known.push((track.features, reference));
                        reference
                    }
                };
                each.push(reference);
            }
            Some(each)
        } else {
            None
        };
        Ok(Self {
            batch,
            aggregate,
            taste_inputs,
            references,
        })
    }

    /// (edits,) scores: the mean of each edit's window scores.
    pub fn scores(&self, model: &RewardModel, train: bool) -> Result<Tensor, ModelError> {
        let windows = model.forward(&self.batch.inputs, &self.batch.mask, train)?;
        let means = self.aggregate.matmul(&windows.unsqueeze(1)?)?.squeeze(1)?;
        let Some(taste) = model.taste() else {
            return Ok(means);
        };
        // The gate reads where the transformer's score stands; it is a constant of the step, so
        // the gradient flows through the transformer's share alone.
        let references = match &self.references {
            Some(r) => r.as_slice(),
            None if taste.needs_reference() => return Err(ModelError::NoReference),
            None => &[],
        };
        let offsets: Vec<f32> = self
            .taste_inputs
            .iter()
            .zip(means.to_vec1::<f32>()?)
            .enumerate()
            .map(|(e, (x, score))| {
                let reference = references.get(e).copied().flatten();
                taste.offset(x, taste.standing(score, reference))
            })
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
    let reference = taste_reference(model, track)?;
    score_edits_at(model, track, reference, edits, chunk)
}

/// [`score_edits`] with the track's [`taste_reference`] given, so that scoring one track in
/// many calls reads it once (it must be the one `model` gives for `track`).
pub fn score_edits_at(
    model: &RewardModel,
    track: Track,
    reference: Option<f32>,
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
            let x = taste_inputs(track.features, &mean, track.meter, edit);
            m + taste.offset(&x, taste.standing(m, reference))
        })
        .collect())
}
