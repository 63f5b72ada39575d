//! The scoring worker: owns the reward model (CUDA or CPU), turns the bar grid into candidate
//! cuts within the user's limits, scores them in batches and publishes them best first. New
//! cuts (those a new bar makes possible) are scored before stale ones (whose track length or
//! model changed) are rescored, so a new bar reaches the editor quickly on long tracks. It also
//! watches the user-model file and swaps in a new model when the trainer writes one, and runs
//! fit-to-length requests.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use candle_core::Device;
use crossbeam_channel::{Receiver, RecvTimeoutError};
use cutscore_core::edit::Edit;
use cutscore_core::features::FeatureMatrix;
use cutscore_core::grid::BeatGrid;
use cutscore_core::taste::track_mean;
use cutscore_editing::candidates::{CandidateOptions, bar_beats, candidate_spans};
use cutscore_editing::fit::{FitError, FitOptions, fit_to_length_unless};
use cutscore_reward::RewardModel;
use cutscore_reward::checkpoint::Checkpoint;
use cutscore_reward::device::{DeviceChoice, select};
use cutscore_reward::scoring::{Track, score_edits};
use cutscore_reward::shipped::ModelSource;
use nice_plug_egui::RepaintNotifier;

use crate::jobs::Job;
use crate::params::{CutscoreParams, MAX_SHOWN, Summary};
use crate::session::{FitState, ModelStatus, Proposal, Session, lock};

/// Scoring windows per forward pass: one batch holds the proposals of several bars.
pub const BATCH: usize = 64;
/// Stale scores are rescored in batches this small, so a new bar never waits long.
const STALE_BATCH: usize = 16;
/// A score goes stale when the track has grown by this factor since it was computed (the
/// `kept_fraction` input moves with the track's length; smaller growth barely changes it).
const STALE_GROWTH: f64 = 1.05;
/// How often the user-model file is checked for a new version.
const WATCH_EVERY: Duration = Duration::from_secs(1);

/// The model in service.
struct Serving {
    model: RewardModel,
    /// Bumped on every swap: scores from older models are stale.
    generation: u64,
    /// The user-model file's modification time when it was last read.
    user_file: Option<SystemTime>,
}

#[derive(Debug, Clone, Copy)]
struct Scored {
    score: f32,
    beats: usize,
    generation: u64,
}

pub struct ScoringWorker {
    pub session: Arc<Session>,
    pub params: Arc<CutscoreParams>,
    pub jobs: Receiver<Job>,
    pub repaint: RepaintNotifier,
    /// Set when the plugin is deactivated: the worker stops and drops a fit in progress.
    pub stop: Arc<AtomicBool>,
}

impl ScoringWorker {
    pub fn run(self) {
        let Some(mut serving) = self.load_initial() else {
            return;
        };
        let mut cache = ScoreCache::default();
        let mut bar_at: Option<Instant> = None;
        let mut last_watch = Instant::now();
        // The stop flag, not only the queue, ends the loop: a full queue cannot take `Stop`.
        while !self.stop.load(Ordering::Acquire) {
            match self.jobs.recv_timeout(WATCH_EVERY) {
                Ok(Job::Stop) | Err(RecvTimeoutError::Disconnected) => return,
                Ok(Job::NewBar(at)) => {
                    bar_at.get_or_insert(at);
                }
                Ok(Job::Options) | Err(RecvTimeoutError::Timeout) => {}
                Ok(Job::Fit { target_s }) => self.fit(&serving, target_s),
            }
            if last_watch.elapsed() >= WATCH_EVERY {
                last_watch = Instant::now();
                self.watch_user_model(&mut serving);
            }
            // A fit cancelled by deactivation leaves no scoring pass behind it.
            if self.stop.load(Ordering::Acquire) || self.update(&serving, &mut cache, &mut bar_at) {
                return;
            }
        }
    }

    /// Scores what is new, then what is stale. Returns `true` if asked to stop meanwhile.
    fn update(
        &self,
        serving: &Serving,
        cache: &mut ScoreCache,
        bar_at: &mut Option<Instant>,
    ) -> bool {
        let Some(view) = lock(&self.session.capture).scoring_view() else {
            return false;
        };
        let cache = cache.for_grid(view.epoch, view.bar_lines);
        let (epoch, grid, features) = (view.epoch, view.grid, view.features);
        let (min_bars, max_bars) = self.params.cut_bars();
        let options = CandidateOptions {
            min_bars,
            max_bars,
            ..CandidateOptions::default()
        };
        let spans = candidate_spans(&grid, &options);
        let current = |s: &Scored| s.generation == serving.generation;
        let fresh: Vec<(usize, usize)> = spans
            .iter()
            .copied()
            .filter(|span| !cache.get(span).is_some_and(current))
            .collect();
        if !self.score(serving, &grid, &features, &fresh, cache) {
            return false;
        }
        self.publish(
            serving,
            epoch,
            (&grid, &features),
            &spans,
            cache,
            bar_at.take(),
        );
        let stale: Vec<(usize, usize)> = spans
            .iter()
            .copied()
            .filter(|span| cache.get(span).is_some_and(|s| is_stale(s, grid.len())))
            .collect();
        for chunk in stale.chunks(STALE_BATCH) {
            if !self.jobs.is_empty() || self.stop.load(Ordering::Acquire) {
                // A new bar, a request or deactivation first; the rest stay stale until the
                // next round.
                return false;
            }
            if !self.score(serving, &grid, &features, chunk, cache) {
                return false;
            }
            self.publish(serving, epoch, (&grid, &features), &spans, cache, None);
        }
        false
    }

    /// Scores `spans` into `cache`; `false` (with the status set) if the model failed.
    fn score(
        &self,
        serving: &Serving,
        grid: &BeatGrid,
        features: &FeatureMatrix,
        spans: &[(usize, usize)],
        cache: &mut HashMap<(usize, usize), Scored>,
    ) -> bool {
        if spans.is_empty() {
            return true;
        }
        let edits: Result<Vec<Edit>, _> = spans
            .iter()
            .map(|&span| Edit::new(grid.len(), [span]))
            .collect();
        let track = Track {
            features,
            meter: grid.meter,
        };
        let scores = edits.map_err(|e| e.to_string()).and_then(|edits| {
            score_edits(&serving.model, track, &edits, BATCH).map_err(|e| e.to_string())
        });
        match scores {
            Ok(scores) => {
                for (&span, score) in spans.iter().zip(scores) {
                    cache.insert(
                        span,
                        Scored {
                            score,
                            beats: grid.len(),
                            generation: serving.generation,
                        },
                    );
                }
                true
            }
            Err(e) => {
                lock(&self.session.model).problem = Some(format!("scoring failed: {e}"));
                false
            }
        }
    }

    fn publish(
        &self,
        serving: &Serving,
        epoch: u64,
        (grid, features): (&BeatGrid, &FeatureMatrix),
        spans: &[(usize, usize)],
        cache: &HashMap<(usize, usize), Scored>,
        bar_at: Option<Instant>,
    ) {
        let positions = bar_beats(grid);
        let mut ranked: Vec<Proposal> = spans
            .iter()
            .filter_map(|&span| {
                let scored = cache.get(&span)?;
                Some(Proposal::on_grid(grid, &positions, span, scored.score))
            })
            .collect();
        ranked.sort_by(|a, b| b.score.total_cmp(&a.score));
        // The ones the editor can list carry their taste summaries, for Teach's questions.
        let mean = track_mean(features);
        for proposal in ranked.iter_mut().take(MAX_SHOWN) {
            proposal.summarise(features, &mean, grid.len(), grid.meter);
        }
        let pending = spans
            .iter()
            .filter(|span| {
                cache
                    .get(span)
                    .is_none_or(|s| is_stale(s, grid.len()) || s.generation != serving.generation)
            })
            .count();
        let summary = Summary {
            beats: grid.len(),
            bars: grid.bar_starts().len(),
            tempo_bpm: grid.tempo_bpm().unwrap_or(0.0),
            captured_seconds: grid.duration_s,
            candidates: ranked.len(),
            best_score: ranked.first().map(|p| p.score),
            model_id: Some(lock(&self.session.model).model_id.clone()),
        };
        {
            let mut proposals = lock(&self.session.proposals);
            if proposals.epoch != epoch {
                // The capture was replaced while these were scored.
                return;
            }
            proposals.beats = grid.len();
            proposals.ranked = ranked;
            proposals.pending = pending;
            if let Some(at) = bar_at {
                proposals.latency = Some(at.elapsed());
            }
        }
        if let Ok(mut saved) = self.params.summary.write() {
            *saved = summary;
        }
        self.repaint.request_repaint();
    }

    fn fit(&self, serving: &Serving, target_s: f64) {
        let (view, settled) = {
            let capture = lock(&self.session.capture);
            (capture.scoring_view(), capture.settled_frames)
        };
        let Some(view) = view else {
            *lock(&self.session.fit) = Some(FitState::Failed(
                "nothing to fit yet: play at least two bars".into(),
            ));
            return;
        };
        let (epoch, grid, features) = (view.epoch, view.grid, view.features);
        let options = FitOptions {
            target_s,
            keep_intro_bars: 1,
            keep_outro_bars: 1,
            ..FitOptions::default()
        };
        let track = Track {
            features: &features,
            meter: grid.meter,
        };
        // Deactivation sets `stop`: the fit gives up within one batch of model evaluations.
        let state = match fit_to_length_unless(&serving.model, &grid, track, &options, &self.stop) {
            Ok(result) => FitState::Done {
                target_s,
                beats: grid.len(),
                result,
            },
            Err(FitError::Cancelled) => return,
            Err(e) => FitState::Failed(e.to_string()),
        };
        // A fit for a capture that has since been replaced (Start over, a new sample rate) or
        // settled (its beats moved; the settle asked for a new fit), or finished after the
        // plugin was deactivated, is dropped.
        // Written under the capture's lock, so Start over cannot clear the fit in between.
        let capture = lock(&self.session.capture);
        if capture.epoch != epoch
            || capture.settled_frames != settled
            || self.stop.load(Ordering::Acquire)
        {
            return;
        }
        *lock(&self.session.fit) = Some(state);
        drop(capture);
        self.repaint.request_repaint();
    }

    /// The model `shipped::choose` picks (the rule the trainer follows too): the user's if it
    /// loads, else the shipped one, with the reason in the status line.
    fn load_initial(&self) -> Option<Serving> {
        let device = match select(DeviceChoice::Auto) {
            Ok(selected) => selected,
            Err(e) => {
                lock(&self.session.model).problem = Some(format!("no device: {e}"));
                return None;
            }
        };
        lock(&self.session.model).device = format!("{} ({})", device.name, device.reason);
        let user = self.session.user_model.as_deref();
        let user_file = user.and_then(modified);
        let serving = |model| {
            Some(Serving {
                model,
                generation: 0,
                user_file,
            })
        };
        let problem = match cutscore_reward::shipped::choose(None, user) {
            Ok(chosen) => {
                let source = match chosen.source {
                    ModelSource::User(_) => "your model",
                    _ => "the shipped model",
                };
                match chosen.checkpoint.model(&device.device) {
                    Ok(model) => {
                        self.set_status(status_of(&chosen.checkpoint, source), chosen.problem);
                        return serving(model);
                    }
                    Err(e) => format!("{source} does not load ({e})"),
                }
            }
            Err(e) => format!("the shipped model does not load: {e}"),
        };
        match load_shipped(&device.device) {
            Ok((model, status)) => {
                self.set_status(status, Some(problem));
                serving(model)
            }
            Err(e) => {
                lock(&self.session.model).problem = Some(e);
                None
            }
        }
    }

    fn watch_user_model(&self, serving: &mut Serving) {
        let Some(path) = self.session.user_model.as_deref() else {
            return;
        };
        let stamp = modified(path);
        if stamp == serving.user_file {
            return;
        }
        serving.user_file = stamp;
        // A file that went away (the editor's "Reset to the shipped model") hands scoring back
        // to the shipped model; a new or changed one is loaded.
        let loaded = if stamp.is_some() {
            load_user(path, serving.model.device())
        } else {
            load_shipped(serving.model.device())
        };
        match loaded {
            Ok((model, status)) => {
                serving.model = model;
                serving.generation += 1;
                self.set_status(status, None);
            }
            Err(e) => lock(&self.session.model).problem = Some(e),
        }
        self.repaint.request_repaint();
    }

    fn set_status(&self, loaded: ModelStatus, problem: Option<String>) {
        let mut status = lock(&self.session.model);
        let device = std::mem::take(&mut status.device);
        *status = ModelStatus {
            device,
            problem,
            ..loaded
        };
    }
}

/// Scores by span, for one capture epoch and one placing of its bar lines: a new capture, a
/// new meter or bar lines that moved (whose bars and bar features are different) start it
/// afresh.
#[derive(Default)]
struct ScoreCache {
    epoch: u64,
    bar_lines: u64,
    scores: HashMap<(usize, usize), Scored>,
}

impl ScoreCache {
    fn for_grid(&mut self, epoch: u64, bar_lines: u64) -> &mut HashMap<(usize, usize), Scored> {
        if (self.epoch, self.bar_lines) != (epoch, bar_lines) {
            *self = Self {
                epoch,
                bar_lines,
                scores: HashMap::new(),
            };
        }
        &mut self.scores
    }
}

fn is_stale(scored: &Scored, beats: usize) -> bool {
    beats as f64 > scored.beats as f64 * STALE_GROWTH
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn status_of(checkpoint: &Checkpoint, source: &str) -> ModelStatus {
    ModelStatus {
        device: String::new(),
        model_id: checkpoint.info.model_id.clone(),
        created: checkpoint.info.provenance.created.clone(),
        source: source.into(),
        user_pairs: checkpoint.info.provenance.user_pairs,
        problem: None,
    }
}

fn load_user(path: &Path, device: &Device) -> Result<(RewardModel, ModelStatus), String> {
    let checkpoint = Checkpoint::read(path).map_err(|e| {
        format!(
            "{} is not a usable model ({e}); keeping the current one",
            path.display()
        )
    })?;
    let model = checkpoint.model(device).map_err(|e| {
        format!(
            "{} does not load ({e}); keeping the current one",
            path.display()
        )
    })?;
    Ok((model, status_of(&checkpoint, "your model")))
}

fn load_shipped(device: &Device) -> Result<(RewardModel, ModelStatus), String> {
    let checkpoint = cutscore_reward::shipped::checkpoint()
        .map_err(|e| format!("the shipped model does not load: {e}"))?;
    let model = checkpoint
        .model(device)
        .map_err(|e| format!("the shipped model does not load: {e}"))?;
    Ok((model, status_of(&checkpoint, "the shipped model")))
}
