//! The per-beat feature schema shared by analysis, training and scoring.
//!
//! The reward model reads [`MODEL_INPUTS`] = 125 numbers per beat: the [`BEAT_FEATURES`] = 121
//! features that the analysis computes from the audio of each beat (documented, with their index
//! ranges, in `docs/features.md`), followed by the [`EDIT_FEATURES`] = 4 edit-aware features
//! that [`crate::edit`] derives from where the joins of an edit fall.
//!
//! [`FEATURE_SCHEMA_VERSION`] names the layout of all 125. It is stored in every checkpoint and
//! every track file of the decision log; a model made for another version is refused, because a
//! model fed features in another order scores garbage without any error.

use serde::{Deserialize, Serialize};

/// Features computed from the audio of each beat.
pub const BEAT_FEATURES: usize = 121;
/// Features computed from the edit around each beat.
pub const EDIT_FEATURES: usize = 4;
/// Inputs per beat of the reward model.
pub const MODEL_INPUTS: usize = BEAT_FEATURES + EDIT_FEATURES;
/// Version of the 125-input layout. Bump it whenever either table changes.
pub const FEATURE_SCHEMA_VERSION: u32 = 2;
/// The beat feature that is 1 on the first beat of a bar and 0 elsewhere (`bar_position`'s
/// beat-in-bar 0, `docs/features.md`).
pub const BAR_START: usize = 87;

/// Why a feature matrix was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FeatureError {
    #[error(
        "feature matrix has {actual} values; expected {beats} beats x {width} features = {expected}"
    )]
    Shape {
        beats: usize,
        width: usize,
        expected: usize,
        actual: usize,
    },
    #[error("feature {feature} of beat {beat} is {value}; expected a finite number")]
    NonFinite {
        beat: usize,
        feature: usize,
        value: f32,
    },
    #[error("feature matrix has {actual} beats but the beat grid has {expected}")]
    BeatCount { expected: usize, actual: usize },
}

/// The 121 beat features of a track, one row per beat, row-major.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureMatrix {
    beats: usize,
    values: Vec<f32>,
}

impl FeatureMatrix {
    /// Wraps `beats * 121` row-major values, refusing the wrong length or non-finite values.
    pub fn new(beats: usize, values: Vec<f32>) -> Result<Self, FeatureError> {
        let matrix = Self { beats, values };
        matrix.validate()?;
        Ok(matrix)
    }

    /// A matrix of zeros, for building into.
    pub fn zeros(beats: usize) -> Self {
        Self {
            beats,
            values: vec![0.0; beats * BEAT_FEATURES],
        }
    }

    /// Checks the invariants a deserialized matrix may have broken.
    pub fn validate(&self) -> Result<(), FeatureError> {
        let expected = self.beats * BEAT_FEATURES;
        if self.values.len() != expected {
            return Err(FeatureError::Shape {
                beats: self.beats,
                width: BEAT_FEATURES,
                expected,
                actual: self.values.len(),
            });
        }
        if let Some(position) = self.values.iter().position(|v| !v.is_finite()) {
            return Err(FeatureError::NonFinite {
                beat: position / BEAT_FEATURES,
                feature: position % BEAT_FEATURES,
                value: self.values[position],
            });
        }
        Ok(())
    }

    /// Number of beats (rows).
    pub fn beats(&self) -> usize {
        self.beats
    }

    /// The 121 features of beat `beat`.
    pub fn row(&self, beat: usize) -> &[f32] {
        &self.values[beat * BEAT_FEATURES..(beat + 1) * BEAT_FEATURES]
    }

    /// The beats that start a bar, by their [`BAR_START`] feature, in order.
    pub fn bar_starts(&self) -> Vec<usize> {
        (0..self.beats)
            .filter(|&beat| self.row(beat)[BAR_START] > 0.5)
            .collect()
    }

    /// The 121 features of beat `beat`, for writing.
    pub fn row_mut(&mut self, beat: usize) -> &mut [f32] {
        &mut self.values[beat * BEAT_FEATURES..(beat + 1) * BEAT_FEATURES]
    }

    /// All values, row-major.
    pub fn as_slice(&self) -> &[f32] {
        &self.values
    }

    /// All values, row-major, for writing.
    pub fn as_mut_slice(&mut self) -> &mut [f32] {
        &mut self.values
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_wrong_length_and_names_the_non_finite_cell() {
        assert!(matches!(
            FeatureMatrix::new(2, vec![0.0; 241]),
            Err(FeatureError::Shape {
                expected: 242,
                actual: 241,
                ..
            })
        ));
        let mut values = vec![0.0; 242];
        values[121 + 5] = f32::NAN;
        assert!(matches!(
            FeatureMatrix::new(2, values),
            Err(FeatureError::NonFinite {
                beat: 1,
                feature: 5,
                ..
            })
        ));
    }

    #[test]
    fn rows_are_121_wide() {
        let mut m = FeatureMatrix::zeros(3);
        m.row_mut(2)[120] = 1.5;
        assert_eq!(m.row(2).len(), BEAT_FEATURES);
        assert_eq!(m.as_slice()[3 * 121 - 1], 1.5);
    }
}
