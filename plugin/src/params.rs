//! The plugin's parameters and the host state that is not a parameter (prefs folder, window
//! size, the last analysis summary): everything here is saved with the host's project.
//!
//! Bypass is the host's bypass switch ([`CutscoreParams::bypass`]); the cut lengths, the
//! proposals shown and the fit target are editor settings, so hosts offer no automation lanes
//! for them. A saved state carries [`STATE_VERSION`]; [`migrate_state`] (the `Plugin` trait's
//! `filter_state` hook, called before nice-plug loads a state) upgrades what older releases
//! saved.

use std::path::PathBuf;
use std::sync::atomic::AtomicU32;
use std::sync::{Arc, RwLock};

use nice_plug::plugin::ParamValue;
use nice_plug::prelude::*;
use serde::{Deserialize, Serialize};

/// Editor size when the host has none saved, logical pixels.
pub const DEFAULT_WINDOW_SIZE: (u32, u32) = (980, 640);
/// The most proposals the editor lists (the top of the "Proposals shown" range).
pub const MAX_SHOWN: usize = 64;

/// The version of the state this release saves, in the `state_version` field. Bump it when the
/// meaning of a saved parameter or field changes (or a new one needs a value other than its
/// default for old projects), add the step to [`migrate_state`], and commit the state the new
/// version saves as `plugin/tests/fixtures/state_v<N>.json` (see `tests/clap_host.rs`).
///
/// - 0: releases before the version existed (no `state_version` field, no `bypass` parameter).
/// - 1: the `bypass` parameter.
pub const STATE_VERSION: u32 = 1;
/// The key of the state version among the saved fields.
pub const STATE_VERSION_KEY: &str = "state_version";

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
    /// The layout version of the saved state ([`STATE_VERSION`]), so that later releases know
    /// how to migrate it. Always [`STATE_VERSION`] once a state is loaded: [`migrate_state`]
    /// upgrades older states before they are.
    #[persist = "state_version"]
    pub state_version: Arc<AtomicU32>,
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
            shown: IntParam::new(
                "Proposals shown",
                16,
                IntRange::Linear {
                    min: 1,
                    max: MAX_SHOWN as i32,
                },
            )
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
            state_version: Arc::new(AtomicU32::new(STATE_VERSION)),
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

/// Upgrades a saved state to [`STATE_VERSION`] before nice-plug loads it, one version step at a
/// time, and returns the version it was saved with (0 for a state without one, as releases
/// before versioning saved). A state from a newer release is loaded as it is, with a warning:
/// what this release does not know is ignored. Either way the loaded state is labelled
/// [`STATE_VERSION`], since what this release saves next is in its own layout.
pub fn migrate_state(state: &mut PluginState) -> u32 {
    let saved = saved_state_version(state);
    if saved < 1 {
        // 0 -> 1: version 0 had no bypass parameter; a project saved then was never bypassed,
        // whatever the instance it is loaded into is set to.
        state
            .params
            .entry("bypass".to_owned())
            .or_insert(ParamValue::Bool(false));
    }
    if saved > STATE_VERSION {
        nice_warn!(
            "This project was saved by a newer Cutscore (state version {saved}, this release \
             reads up to {STATE_VERSION}); settings it does not know are ignored"
        );
    }
    state
        .fields
        .insert(STATE_VERSION_KEY.to_owned(), STATE_VERSION.to_string());
    saved
}

/// The `state_version` field of a saved state: 0 when there is none. A persisted field is
/// saved as JSON text (`"1"`); one that is not a JSON unsigned integer counts as 0.
fn saved_state_version(state: &PluginState) -> u32 {
    state
        .fields
        .get(STATE_VERSION_KEY)
        .and_then(|text| serde_json::from_str::<u32>(text).ok())
        .unwrap_or(0)
}

/// `prefs/` beside the user model (`cutscore_reward::user_model::user_model_path`), where
/// `trainer finetune` looks by default.
pub fn default_prefs_dir() -> Option<PathBuf> {
    cutscore_reward::user_model::user_model_path()
        .and_then(|model| model.parent().map(|dir| dir.join("prefs")))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::atomic::Ordering;

    use super::*;

    /// A state as nice-plug hands it to `filter_state`: `params` plain values, `fields` JSON.
    fn state(params: &[(&str, ParamValue)], fields: &[(&str, &str)]) -> PluginState {
        PluginState {
            version: "0.1.0".into(),
            params: params
                .iter()
                .map(|(id, v)| (id.to_string(), v.clone()))
                .collect(),
            fields: fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    fn bypass(state: &PluginState) -> Option<bool> {
        match state.params.get("bypass") {
            Some(ParamValue::Bool(on)) => Some(*on),
            None => None,
            other => panic!("bypass is not a bool: {other:?}"),
        }
    }

    #[test]
    fn the_state_version_is_saved_under_its_key() {
        let params = CutscoreParams::default();
        let fields = params.serialize_fields();
        assert_eq!(
            fields.get(STATE_VERSION_KEY).map(String::as_str),
            Some(STATE_VERSION.to_string().as_str()),
            "fields: {fields:?}"
        );
    }

    #[test]
    fn an_unversioned_state_is_version_0_and_is_upgraded() {
        let mut old = state(
            &[("min_bars", ParamValue::I32(3))],
            &[("window_size", "[1000,700]")],
        );
        assert_eq!(migrate_state(&mut old), 0);
        assert_eq!(
            bypass(&old),
            Some(false),
            "a version 0 project is never bypassed"
        );
        assert_eq!(
            old.fields.get(STATE_VERSION_KEY),
            Some(&STATE_VERSION.to_string())
        );
        assert!(matches!(
            old.params.get("min_bars"),
            Some(ParamValue::I32(3))
        ));
        assert_eq!(old.fields["window_size"], "[1000,700]");

        // The migrated fields label the instance they are loaded into with this version.
        let params = CutscoreParams::default();
        params.state_version.store(0, Ordering::Relaxed);
        params.deserialize_fields(&old.fields);
        assert_eq!(params.state_version.load(Ordering::Relaxed), STATE_VERSION);
    }

    #[test]
    fn a_current_state_is_left_as_it_is() {
        let version = STATE_VERSION.to_string();
        let mut current = state(
            &[("bypass", ParamValue::Bool(true))],
            &[(STATE_VERSION_KEY, version.as_str())],
        );
        assert_eq!(migrate_state(&mut current), STATE_VERSION);
        assert_eq!(bypass(&current), Some(true));
        assert_eq!(current.fields[STATE_VERSION_KEY], version);
    }

    #[test]
    fn a_newer_or_unreadable_version_is_relabelled_as_this_one() {
        let newer = (STATE_VERSION + 1).to_string();
        let mut state_from_newer = state(&[], &[(STATE_VERSION_KEY, newer.as_str())]);
        assert_eq!(migrate_state(&mut state_from_newer), STATE_VERSION + 1);
        assert_eq!(bypass(&state_from_newer), None, "no migration step ran");
        assert_eq!(
            state_from_newer.fields[STATE_VERSION_KEY],
            STATE_VERSION.to_string()
        );

        let mut garbled = state(&[], &[(STATE_VERSION_KEY, "\"one\"")]);
        assert_eq!(migrate_state(&mut garbled), 0);
        assert_eq!(bypass(&garbled), Some(false));
    }
}
