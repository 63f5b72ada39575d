//! The plugin's parameters and the host state that is not a parameter (prefs folder, window
//! size, the last analysis summary): everything here is saved with the host's project.
//!
//! Bypass is the host's bypass switch ([`CutscoreParams::bypass`]); the cut lengths, the
//! proposals shown and the fit target are editor settings, so hosts offer no automation lanes
//! for them.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use nice_plug::prelude::*;
use serde::{Deserialize, Serialize};

/// Editor size when the host has none saved, logical pixels.
pub const DEFAULT_WINDOW_SIZE: (u32, u32) = (980, 640);

#[derive(Params)]
pub struct CutscoreParams {
    /// Shortest proposed cut, in bars.
    #[id = "min_bars"]
    pub min_bars: IntParam,
    /// Longest proposed cut, in bars.
    #[id = "max_bars"]
    pub max_bars: IntParam,
    /// How many of the best proposals the editor lists.
    #[id = "shown"]
    pub shown: IntParam,
    /// Fit-to-length target as a share of the captured length.
    #[id = "fit_target"]
    pub fit_target: FloatParam,
    /// The host's bypass switch. The audio passes through either way; while bypassed the
    /// plugin neither captures nor plays auditions.
    #[id = "bypass"]
    pub bypass: BoolParam,

    /// Where decisions are logged; `None` means the default folder ([`default_prefs_dir`]).
    #[persist = "prefs_dir"]
    pub prefs_dir: Arc<RwLock<Option<PathBuf>>>,
    /// Editor window size, logical pixels.
    #[persist = "window_size"]
    pub window_size: Arc<RwLock<(u32, u32)>>,
    /// What the analysis and scoring had found when the project was saved.
    #[persist = "summary"]
    pub summary: Arc<RwLock<Summary>>,
}

/// The state of the analysis, saved with the project so a reopened project (or a headless
/// host) can see what the plugin had heard.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Summary {
    pub beats: usize,
    pub bars: usize,
    pub tempo_bpm: f64,
    pub captured_seconds: f64,
    /// Proposals the scoring worker has scored for the audio heard so far.
    pub candidates: usize,
    pub best_score: Option<f32>,
    pub model_id: Option<String>,
}

impl Default for CutscoreParams {
    fn default() -> Self {
        Self {
            min_bars: IntParam::new("Min cut", 1, IntRange::Linear { min: 1, max: 32 })
                .with_unit(" bars")
                .non_automatable(),
            max_bars: IntParam::new("Max cut", 16, IntRange::Linear { min: 1, max: 64 })
                .with_unit(" bars")
                .non_automatable(),
            shown: IntParam::new("Proposals shown", 16, IntRange::Linear { min: 1, max: 64 })
                .non_automatable(),
            fit_target: FloatParam::new(
                "Fit target",
                0.75,
                FloatRange::Linear { min: 0.1, max: 1.0 },
            )
            .with_unit(" %")
            .with_value_to_string(formatters::v2s_f32_percentage(0))
            .with_string_to_value(formatters::s2v_f32_percentage())
            .non_automatable(),
            bypass: BoolParam::new("Bypass", false).make_bypass(),
            prefs_dir: Arc::new(RwLock::new(None)),
            window_size: Arc::new(RwLock::new(DEFAULT_WINDOW_SIZE)),
            summary: Arc::new(RwLock::new(Summary::default())),
        }
    }
}

impl CutscoreParams {
    /// The cut lengths currently allowed, `(min, max)` in bars, whichever way round the two
    /// parameters are set.
    pub fn cut_bars(&self) -> (usize, usize) {
        let a = self.min_bars.value().max(1) as usize;
        let b = self.max_bars.value().max(1) as usize;
        (a.min(b), a.max(b))
    }

    /// The prefs folder in use.
    pub fn prefs_dir(&self) -> Option<PathBuf> {
        let chosen = self.prefs_dir.read().map(|d| d.clone()).unwrap_or_default();
        chosen.or_else(default_prefs_dir)
    }
}

/// `prefs/` beside the user model (`cutscore_model::user_model::user_model_path`), where
/// `trainer finetune` looks by default.
pub fn default_prefs_dir() -> Option<PathBuf> {
    cutscore_model::user_model::user_model_path()
        .and_then(|model| model.parent().map(|dir| dir.join("prefs")))
}
