//! The reward transformer's dimensions, stored as JSON in every checkpoint.

use serde::{Deserialize, Serialize};

use cutscore_core::features::MODEL_INPUTS;

/// Dimensions of a [`crate::RewardModel`]. The defaults are the published design:
/// 125 inputs per beat, d = 256, 3 pre-norm encoder layers of 4 heads with a 1024-wide GELU
/// feed-forward, learned positions for up to 512 beats, a 256-128-1 head, output 10 tanh(x).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Inputs per beat; must equal [`MODEL_INPUTS`] for the current feature schema.
    pub inputs: usize,
    /// Width of the residual stream.
    pub d_model: usize,
    /// Encoder layers.
    pub layers: usize,
    /// Attention heads per layer; must divide `d_model`.
    pub heads: usize,
    /// Width of the feed-forward block.
    pub ff: usize,
    /// Longest sequence (in beats) the learned positions cover.
    pub max_len: usize,
    /// Width of the hidden layer of the scoring head.
    pub head_hidden: usize,
    /// Dropout probability, used only while training.
    pub dropout: f32,
    /// Output bound: scores are `output_scale * tanh(x)`.
    pub output_scale: f32,
    /// Epsilon of every layer norm.
    pub layer_norm_eps: f64,
    /// Beats of the edited sequence the model reads around each join: it is trained and scored
    /// on windows of this length, so the length travels with its weights. Checkpoints written
    /// before the field existed were trained on `LEGACY_WINDOW`.
    #[serde(default = "legacy_window")]
    pub window: usize,
}

/// The scoring window of checkpoints that do not name one.
pub const LEGACY_WINDOW: usize = 32;

fn legacy_window() -> usize {
    LEGACY_WINDOW
}

impl Default for Config {
    fn default() -> Self {
        Self {
            inputs: MODEL_INPUTS,
            d_model: 256,
            layers: 3,
            heads: 4,
            ff: 1024,
            max_len: 512,
            head_hidden: 128,
            dropout: 0.1,
            output_scale: 10.0,
            layer_norm_eps: 1e-5,
            window: cutscore_core::edit::DEFAULT_WINDOW,
        }
    }
}

/// Why a config cannot build a model.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("config has {actual} inputs per beat; the feature schema has {expected}")]
    Inputs { expected: usize, actual: usize },
    #[error("d_model {d_model} is not divisible by {heads} heads")]
    Heads { d_model: usize, heads: usize },
    #[error("config field `{field}` is {value}; expected {expected}")]
    Field {
        field: &'static str,
        value: String,
        expected: &'static str,
    },
}

impl Config {
    /// Beats in each scoring window: [`Config::window`], never more than `max_len` positions.
    pub fn scoring_window(&self) -> usize {
        self.window.min(self.max_len)
    }

    /// A small model for tests and quick experiments (d = 32, 1 layer, 2 heads).
    pub fn tiny() -> Self {
        Self {
            d_model: 32,
            layers: 1,
            heads: 2,
            ff: 64,
            max_len: 128,
            head_hidden: 16,
            ..Self::default()
        }
    }

    /// Checks that the dimensions make a model that can read the current features.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.inputs != MODEL_INPUTS {
            return Err(ConfigError::Inputs {
                expected: MODEL_INPUTS,
                actual: self.inputs,
            });
        }
        let positive = [
            ("d_model", self.d_model),
            ("layers", self.layers),
            ("heads", self.heads),
            ("ff", self.ff),
            ("max_len", self.max_len),
            ("head_hidden", self.head_hidden),
            ("window", self.window),
        ];
        for (field, value) in positive {
            if value == 0 {
                return Err(ConfigError::Field {
                    field,
                    value: value.to_string(),
                    expected: "at least 1",
                });
            }
        }
        if self.window > self.max_len {
            return Err(ConfigError::Field {
                field: "window",
                value: self.window.to_string(),
                expected: "at most max_len",
            });
        }
        if !self.d_model.is_multiple_of(self.heads) {
            return Err(ConfigError::Heads {
                d_model: self.d_model,
                heads: self.heads,
            });
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(ConfigError::Field {
                field: "dropout",
                value: self.dropout.to_string(),
                expected: "in [0, 1)",
            });
        }
        if !(self.output_scale.is_finite() && self.output_scale > 0.0) {
            return Err(ConfigError::Field {
                field: "output_scale",
                value: self.output_scale.to_string(),
                expected: "a positive number",
            });
        }
        if !(self.layer_norm_eps.is_finite() && self.layer_norm_eps > 0.0) {
            return Err(ConfigError::Field {
                field: "layer_norm_eps",
                value: self.layer_norm_eps.to_string(),
                expected: "a positive number",
            });
        }
        Ok(())
    }

    /// Exact number of trainable parameters this config makes.
    pub fn parameter_count(&self) -> usize {
        let (d, ff, i) = (self.d_model, self.ff, self.inputs);
        let linear = |a: usize, b: usize| a * b + b;
        let norm = 2 * d;
        let layer = linear(d, 3 * d) + linear(d, d) + linear(d, ff) + linear(ff, d) + 2 * norm;
        linear(i, d)
            + self.max_len * d
            + self.layers * layer
            + norm
            + linear(d, self.head_hidden)
            + linear(self.head_hidden, 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_matches_the_published_size_within_five_percent() {
        let count = Config::default().parameter_count();
        // Same layers as the PyTorch reference in shared/bench (which prints 2,566,145).
        assert_eq!(count, 2_566_145);
        let reference = 2_630_273.0;
        assert!((count as f64 - reference).abs() / reference < 0.05);
    }

    #[test]
    fn refuses_heads_that_do_not_divide_the_width() {
        let config = Config {
            heads: 3,
            ..Config::default()
        };
        assert_eq!(
            config.validate(),
            Err(ConfigError::Heads {
                d_model: 256,
                heads: 3
            })
        );
    }

    #[test]
    fn missing_fields_take_defaults() {
        let config: Config = serde_json::from_str(r#"{"layers": 2}"#).unwrap();
        assert_eq!(config.layers, 2);
        assert_eq!(config.d_model, 256);
        // A checkpoint from before the window was stored was trained on 32-beat windows.
        assert_eq!(config.window, LEGACY_WINDOW);
        assert_eq!(
            Config::default().window,
            cutscore_core::edit::DEFAULT_WINDOW
        );
    }

    #[test]
    fn refuses_a_window_longer_than_the_positions() {
        let config = Config {
            window: 600,
            ..Config::default()
        };
        assert!(matches!(
            config.validate(),
            Err(ConfigError::Field {
                field: "window",
                ..
            })
        ));
    }
}
