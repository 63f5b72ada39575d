//! The scoring worker: owns the reward model (CUDA or CPU), turns the bar grid into candidate
//! cuts within the user's limits, scores them in batches and publishes them best first. New
//! cuts (those a new bar makes possible, the newest bars first) are scored before stale ones
//! (whose track length, bar lines or model changed, [`score_cache`](crate::score_cache)) are
//! rescored, a chunk at a time with a look at the queue between chunks, so a new bar reaches the
//! editor quickly on long tracks even while thousands of spans are being rescored. It also
//! watches the user-model file and swaps in a new model when the trainer writes one, and runs
//! fit-to-length requests. The model's matrix products run on a pool of its own of at most
//! [`MODEL_THREADS`] threads named `cutscore-model-N`, not on one thread per core of the host's
//! machine.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use candle_core::Device;
use crossbeam_channel::{Receiver, RecvTimeoutError};
use cutscore_core::edit::Edit;
use cutscore_core::features::FeatureMatrix;
use cutscore_core::grid::BeatGrid;
use cutscore_core::taste::{TasteLayer, taste_inputs, track_mean};
use cutscore_editing::candidates::{CandidateOptions, bar_beats, candidate_spans};
use cutscore_editing::fit::{FitError, FitOptions, fit_to_length_unless};
use cutscore_reward::RewardModel;
use cutscore_reward::checkpoint::Checkpoint;
use cutscore_reward::device::{DeviceChoice, select};
use cutscore_reward::scoring::{Track, reference_cuts, score_edits};
use cutscore_reward::shipped::ModelSource;
use nice_plug_egui::RepaintNotifier;

use crate::jobs::Job;
use crate::params::{CutscoreParams, MAX_SHOWN, Summary};
use crate::score_cache::{ScoreCache, Scored, Span, whole_at};
use crate::session::{FitState, ModelStatus, Proposal, Session, lock};

/// Scoring windows per forward pass: one batch holds the proposals of several bars.
pub const BATCH: usize = 64;
/// Stale spans are rescored in chunks this small between looks at the queue, so a new bar
/// waits for at most one of them; new spans go in chunks of [`BATCH`].
const STALE_CHUNK: usize = 16;
/// While a long (re)scoring runs, the editor's list is refreshed this often.
const PUBLISH_EVERY: Duration = Duration::from_millis(250);
/// Threads the reward model's products may use. On this project's 2-core machine two threads
/// against one cut the soak's median new-bar latency from 30 to 23 ms and its 95th percentile
/// from 65 to 36 ms, for 12 % more CPU time; on a machine with many cores more would take them
/// from the host's own audio engine for work that is not urgent.
pub const MODEL_THREADS: usize = 2;
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
        let pool = model_pool();
        // The stop flag, not only the queue, ends the loop: a full queue cannot take `Stop`.
        while !self.stop.load(Ordering::Acquire) {
            match self.jobs.recv_timeout(WATCH_EVERY) {
                Ok(Job::Stop) | Err(RecvTimeoutError::Disconnected) => return,
                Ok(Job::NewBar(at)) => {
                    bar_at.get_or_insert(at);
                }
                Ok(Job::Options) | Err(RecvTimeoutError::Timeout) => {}
                Ok(Job::Fit { target_s }) => on(&pool, || self.fit(&serving, target_s)),
            }
            if last_watch.elapsed() >= WATCH_EVERY {
                last_watch = Instant::now();
                self.watch_user_model(&mut serving);
            }
            // A fit cancelled by deactivation leaves no scoring pass behind it.
            if self.stop.load(Ordering::Acquire) {
                return;
            }
            on(&pool, || self.update(&serving, &mut cache, &mut bar_at));
        }
    }

    /// Scores what is new (the newest bars first), then what is stale, publishing after the
    /// first chunk and every [`PUBLISH_EVERY`]; a job in the queue (a new bar, a request) or
    /// deactivation interrupts it after a chunk.
    fn update(&self, serving: &Serving, cache: &mut ScoreCache, bar_at: &mut Option<Instant>) {
        let Some(view) = lock(&self.session.capture).scoring_view() else {
            return;
        };
        let window = serving.model.config().scoring_window();
        cache.follow(
            view.epoch,
            view.bar_lines,
            &view.grid,
            &view.features,
            window,
        );
        let (epoch, grid, features) = (view.epoch, view.grid, view.features);
        let (min_bars, max_bars) = self.params.cut_bars();
        let options = CandidateOptions {
            min_bars,
            max_bars,
            strong_bar_parity: view.strong_bar_parity,
            ..CandidateOptions::default()
        };
        // While the capture grows, a cut is proposed once its windows are whole: scored on
        // windows the end clips, as if the song ended there, its score is off by about as much
        // as scores differ (`score_cache`). Once settled, the end is the song's end.
        let spans: Vec<Span> = candidate_spans(&grid, &options)
            .into_iter()
            .filter(|&span| view.settled || whole_at(span, window) <= grid.len())
            .collect();
        // A taste layer whose floor is measured from the track reads the track's reference
        // score, the best of these cuts (whole windows only, like `track_reference`): they
        // are scored and kept like the proposals (with cuts of 2 bars allowed from every bar
        // line, they are proposals too).
        let reference_spans = if serving
            .model
            .taste()
            .is_some_and(TasteLayer::needs_reference)
        {
            reference_cuts(&features, window)
        } else {
            Vec::new()
        };
        let proposed: HashSet<Span> = spans.iter().copied().collect();
        let scored_spans: Vec<Span> = spans
            .iter()
            .copied()
            .chain(
                reference_spans
                    .iter()
                    .copied()
                    .filter(|s| !proposed.contains(s)),
            )
            .collect();
        let spans = &scored_spans[..spans.len()];
        cache.keep_only(&scored_spans);
        let current = |s: &Scored| s.generation == serving.generation;
        let mut fresh: Vec<Span> = scored_spans
            .iter()
            .copied()
            .filter(|span| !cache.get(span).is_some_and(current))
            .collect();
        newest_first(&mut fresh);
        let stale: Vec<Span> = scored_spans
            .iter()
            .copied()
            .filter(|span| {
                cache
                    .get(span)
                    .is_some_and(|s| current(s) && ScoreCache::is_stale(s, grid.len()))
            })
            .collect();
        let chunks = fresh.chunks(BATCH).chain(stale.chunks(STALE_CHUNK));
        let mut published: Option<Instant> = None;
        let mut unpublished = false;
        for chunk in chunks {
            if published.is_some() && (!self.jobs.is_empty() || self.stop.load(Ordering::Acquire)) {
                // A new bar, a request or deactivation first; the rest wait for the next round.
                break;
            }
            if !self.score(serving, (&grid, &features, window), chunk, cache) {
                return;
            }
            unpublished = true;
            if published.is_none_or(|at| at.elapsed() >= PUBLISH_EVERY) {
                let latency = bar_at.take();
                let scored = (&scored_spans[..], spans.len(), &reference_spans[..]);
                self.publish(serving, epoch, (&grid, &features), scored, cache, latency);
                (published, unpublished) = (Some(Instant::now()), false);
            }
        }
        if unpublished || published.is_none() {
            let latency = bar_at.take();
            let scored = (&scored_spans[..], spans.len(), &reference_spans[..]);
            self.publish(serving, epoch, (&grid, &features), scored, cache, latency);
        }
    }

    /// Scores `spans` into `cache`: the transformer's score and the taste layer's offset
    /// before its gate, which [`Scored::score`] applies with the track's reference when the
    /// scores are published; `false` (with the status set) if the model failed.
    fn score(
        &self,
        serving: &Serving,
        (grid, features, window): (&BeatGrid, &FeatureMatrix, usize),
        spans: &[Span],
        cache: &mut ScoreCache,
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
        let taste = serving.model.taste();
        let transformer = serving.model.clone().with_taste(None);
        let scores = edits.map_err(|e| e.to_string()).and_then(|edits| {
            let scores =
                score_edits(&transformer, track, &edits, BATCH).map_err(|e| e.to_string())?;
            let ungated: Vec<f32> = match taste {
                Some(taste) => {
                    let mean = track_mean(features);
                    let summary = |edit| taste_inputs(features, &mean, grid.meter, edit);
                    edits.iter().map(|e| taste.ungated(&summary(e))).collect()
                }
                None => vec![0.0; edits.len()],
            };
            Ok(scores.into_iter().zip(ungated).collect::<Vec<_>>())
        });
        match scores {
            Ok(scores) => {
                for (&span, (transformer, ungated)) in spans.iter().zip(scores) {
                    cache.insert(
                        span,
                        Scored {
                            transformer,
                            ungated,
                            beats: grid.len(),
                            generation: serving.generation,
                            dirty: false,
                            clipped: whole_at(span, window) > grid.len(),
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

    /// Publishes the first `proposals` of `scored` (the proposals; the rest are reference cuts
    /// that are not) as ranked by their scores in `cache`, the taste layer's gate reading the
    /// track's reference: the best transformer score among `reference_spans` scored so far
    /// (until all are, the reference may rise; every span of `scored` counts as pending until
    /// it is scored). A score from a model swapped out since is shown without a taste until it
    /// is rescored: its offset is the old layer's.
    fn publish(
        &self,
        serving: &Serving,
        epoch: u64,
        (grid, features): (&BeatGrid, &FeatureMatrix),
        (scored, proposals, reference_spans): (&[Span], usize, &[Span]),
        cache: &ScoreCache,
        bar_at: Option<Instant>,
    ) {
        let spans = &scored[..proposals];
        let positions = bar_beats(grid);
        let reference = reference_spans
            .iter()
            .filter_map(|span| Some(cache.get(span)?.transformer))
            .reduce(f32::max);
        let taste = serving.model.taste();
        let mut ranked: Vec<Proposal> = spans
            .iter()
            .filter_map(|&span| {
                let entry = cache.get(&span)?;
                let taste = taste.filter(|_| entry.generation == serving.generation);
                let score = entry.score(taste, reference);
                Some(Proposal::on_grid(grid, &positions, span, score))
            })
            .collect();
        ranked.sort_by(|a, b| b.score.total_cmp(&a.score));
        // The ones the editor can list carry their taste summaries, for Teach's questions.
        let mean = track_mean(features);
        for proposal in ranked.iter_mut().take(MAX_SHOWN) {
            proposal.summarise(features, &mean, grid.len(), grid.meter);
        }
        let pending = scored
            .iter()
            .filter(|span| {
                cache.get(span).is_none_or(|s| {
                    ScoreCache::is_stale(s, grid.len()) || s.generation != serving.generation
                })
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
            (capture.scoring_view(), capture.settles)
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
            strong_bar_parity: view.strong_bar_parity,
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
        if capture.epoch != epoch || capture.settles != settled || self.stop.load(Ordering::Acquire)
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

/// Orders spans by their end, latest first (then by their start): the cuts the newest bars made
/// possible come first.
fn newest_first(spans: &mut [Span]) {
    spans.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(b.0.cmp(&a.0)));
}

/// The model's own pool ([`MODEL_THREADS`], fewer on a smaller machine); `None` if its threads
/// cannot be started, and the model then uses rayon's global pool.
fn model_pool() -> Option<rayon::ThreadPool> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    rayon::ThreadPoolBuilder::new()
        .num_threads(cores.min(MODEL_THREADS))
        .thread_name(|i| format!("cutscore-model-{i}"))
        .build()
        .ok()
}

/// Runs `op` in `pool`, so the model's parallel work stays on its threads.
fn on<R: Send>(pool: &Option<rayon::ThreadPool>, op: impl FnOnce() -> R + Send) -> R {
    match pool {
        Some(pool) => pool.install(op),
        None => op(),
    }
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use crossbeam_channel::{Sender, unbounded};
    use cutscore_core::features::{BAR_START, BEAT_FEATURES};
    use cutscore_core::taste::{FloorFrom, SUMMARY_WIDTH, TASTE_INPUTS};
    use cutscore_reward::scoring::track_reference;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;

    /// A worker over a capture of `beats` beats in 4/4 at 120 BPM with seeded features, and the
    /// sender of its queue.
    fn worker(beats: usize) -> (ScoringWorker, Serving, Sender<Job>) {
        let session = Arc::new(Session::new(None));
        {
            let mut capture = lock(&session.capture);
            // One beat more than has features: the last is still incomplete.
            let times = (0..=beats).map(|i| i as f64 * 0.5).collect();
            let positions = (0..=beats).map(|i| (i % 4) as u8).collect();
            capture.grid = BeatGrid::new(times, positions, 4, (beats + 1) as f64 * 0.5).unwrap();
            let mut rng = StdRng::seed_from_u64(0x2545_f491_4f6c_dd1d);
            capture.features = (0..beats * BEAT_FEATURES)
                .map(|_| rng.random_range(-1.0..1.0))
                .collect();
        }
        let (sender, jobs) = unbounded();
        let (model, _) = load_shipped(&Device::Cpu).unwrap();
        let worker = ScoringWorker {
            session,
            params: Arc::new(CutscoreParams::default()),
            jobs,
            repaint: RepaintNotifier::new(),
            stop: Arc::new(AtomicBool::new(false)),
        };
        let serving = Serving {
            model,
            generation: 0,
            user_file: None,
        };
        (worker, serving, sender)
    }

    fn published(worker: &ScoringWorker) -> (HashMap<Span, f32>, usize) {
        let proposals = lock(&worker.session.proposals);
        let scores = proposals
            .ranked
            .iter()
            .map(|p| ((p.start, p.end), p.score))
            .collect();
        (scores, proposals.pending)
    }

    /// `model`'s scores of `spans` as one-cut edits of the worker's capture as it stands.
    fn fresh_scores(worker: &ScoringWorker, model: &RewardModel, spans: &[Span]) -> Vec<f32> {
        let view = lock(&worker.session.capture).scoring_view().unwrap();
        let edits: Vec<Edit> = spans
            .iter()
            .map(|&span| Edit::new(view.grid.len(), [span]).unwrap())
            .collect();
        let track = Track {
            features: &view.features,
            meter: 4,
        };
        score_edits(model, track, &edits, BATCH).unwrap()
    }

    #[test]
    fn after_the_bar_lines_move_the_kept_and_the_rescored_scores_equal_a_fresh_scoring() {
        let (worker, serving, _jobs) = worker(160);
        let mut cache = ScoreCache::default();
        worker.update(&serving, &mut cache, &mut None);
        let (before, pending) = published(&worker);
        assert_eq!(pending, 0);
        // Bars 20 and 21 are rewritten, as `place_bars` rewrites the bar features of beats
        // whose position moved.
        {
            let mut capture = lock(&worker.session.capture);
            for beat in 80..88 {
                capture.features[beat * BEAT_FEATURES] += 0.5;
            }
            capture.bar_lines += 1;
        }
        worker.update(&serving, &mut cache, &mut None);
        let (after, pending) = published(&worker);
        assert_eq!(pending, 0);
        let spans: Vec<Span> = after.keys().copied().collect();
        let fresh = fresh_scores(&worker, &serving.model, &spans);
        let mut moved = 0;
        for (span, fresh) in spans.iter().zip(fresh) {
            assert!(
                (after[span] - fresh).abs() < 1e-4,
                "{span:?}: published {} but scores {fresh} on the moved bars",
                after[span]
            );
            moved += usize::from((before[span] - fresh).abs() > 1e-4);
        }
        // The move changed the spans near it, and only those were rescored.
        assert!(moved > 0, "the rewritten rows change some scores");
        assert!(
            moved < spans.len() / 2,
            "{moved} of {} scores changed",
            spans.len()
        );
    }

    /// With a taste layer whose floor is measured from the track, the published scores are the
    /// ones `score_edits` gives the capture as it stands (its reference the best of its
    /// reference cuts, scored and kept with the proposals), before and after the rows of the
    /// best reference cut are rewritten, the spans over them rescored and the reference moved;
    /// and the gate matters: some scores lie between the transformer's alone and the
    /// transformer's with the whole offset.
    #[test]
    fn a_taste_measured_from_the_track_ranks_the_proposals_as_a_fresh_scoring_does() {
        let (worker, mut serving, _jobs) = worker(160);
        {
            let mut capture = lock(&worker.session.capture);
            for beat in 0..160 {
                let downbeat = if beat % 4 == 0 { 1.0 } else { 0.0 };
                capture.features[beat * BEAT_FEATURES + BAR_START] = downbeat;
            }
        }
        // Two points per doubling of the bars removed, fading out a point below the reference.
        let mut weights = vec![0f32; TASTE_INPUTS];
        weights[2 * SUMMARY_WIDTH] = 2.0;
        let whole = TasteLayer::new(weights, 4.0).unwrap();
        let gated = whole
            .clone()
            .with_floor(Some(-1.0), FloorFrom::Track)
            .unwrap();
        let plain = serving.model.clone().with_taste(None);
        serving.model = plain.clone().with_taste(Some(gated));
        let mut cache = ScoreCache::default();
        let fresh = |model: &RewardModel, spans: &[Span]| fresh_scores(&worker, model, spans);
        let reference = || {
            let view = lock(&worker.session.capture).scoring_view().unwrap();
            let track = Track {
                features: &view.features,
                meter: 4,
            };
            let best = reference_cuts(&view.features, plain.config().scoring_window())
                .into_iter()
                .map(|span| {
                    let edit = Edit::new(view.grid.len(), [span]).unwrap();
                    (score_edits(&plain, track, &[edit], BATCH).unwrap()[0], span)
                })
                .max_by(|a, b| a.0.total_cmp(&b.0))
                .unwrap();
            (best.0, track_reference(&plain, track).unwrap(), best.1)
        };
        let (first, reads, best) = reference();
        assert!(
            reads.is_some_and(|r| (r - first).abs() < 1e-4),
            "{reads:?} {first}"
        );
        for rewrite in [false, true] {
            if rewrite {
                // The rows heard either side of the best reference cut's join are rewritten
                // (louder in every band): the reference moves.
                let mut capture = lock(&worker.session.capture);
                for beat in (best.0 - 4..best.0).chain(best.1..best.1 + 4) {
                    for band in 0..20 {
                        capture.features[beat * BEAT_FEATURES + band] += 0.5;
                    }
                }
                capture.bar_lines += 1;
            }
            worker.update(&serving, &mut cache, &mut None);
            let (published, pending) = published(&worker);
            assert_eq!(pending, 0);
            let spans: Vec<Span> = published.keys().copied().collect();
            let want = fresh(&serving.model, &spans);
            let without = fresh(&plain, &spans);
            let ungated = fresh(&plain.clone().with_taste(Some(whole.clone())), &spans);
            let mut partly = 0;
            for (i, span) in spans.iter().enumerate() {
                assert!(
                    (published[span] - want[i]).abs() < 1e-4,
                    "{span:?}: published {} but scores {}",
                    published[span],
                    want[i]
                );
                let (lo, hi) = (without[i].min(ungated[i]), without[i].max(ungated[i]));
                partly += usize::from(want[i] > lo + 1e-3 && want[i] < hi - 1e-3);
            }
            assert!(partly > 0, "no score is partly gated");
        }
        let moved = reference().0;
        assert!(
            (moved - first).abs() > 1e-2,
            "the rewrite moved it: {first} {moved}"
        );
    }

    #[test]
    fn a_job_in_the_queue_interrupts_a_long_scoring_after_the_newest_bars_are_published() {
        let (worker, serving, jobs) = worker(400);
        let mut cache = ScoreCache::default();
        jobs.send(Job::Options).unwrap();
        worker.update(&serving, &mut cache, &mut None);
        let (first, pending) = published(&worker);
        let view = lock(&worker.session.capture).scoring_view().unwrap();
        let options = CandidateOptions {
            min_bars: 1,
            max_bars: 16,
            ..CandidateOptions::default()
        };
        let window = serving.model.config().scoring_window();
        let mut spans: Vec<Span> = candidate_spans(&view.grid, &options)
            .into_iter()
            .filter(|&span| whole_at(span, window) <= view.grid.len())
            .collect();
        assert!(spans.len() > 4 * BATCH, "{} spans", spans.len());
        // One pass of the newest spans (the latest end first), the rest left pending.
        newest_first(&mut spans);
        let mut shown: Vec<Span> = first.keys().copied().collect();
        newest_first(&mut shown);
        assert_eq!(shown, spans[..BATCH]);
        assert_eq!(pending, spans.len() - BATCH);
        // With the queue empty, the next round scores the rest.
        worker.jobs.try_recv().unwrap();
        worker.update(&serving, &mut cache, &mut None);
        let (all, pending) = published(&worker);
        assert_eq!((all.len(), pending), (spans.len(), 0));
    }

    #[test]
    fn while_the_capture_grows_a_cut_waits_for_its_whole_windows_and_once_settled_it_does_not() {
        let (worker, serving, _jobs) = worker(160);
        let window = serving.model.config().scoring_window();
        let mut cache = ScoreCache::default();
        worker.update(&serving, &mut cache, &mut None);
        let (growing, _) = published(&worker);
        let latest = growing.keys().map(|span| span.1).max().unwrap();
        assert!(
            growing.keys().all(|&span| whole_at(span, window) <= 160),
            "every proposal's windows are whole"
        );
        assert!(latest + window / 2 <= 160, "the last cut ends at {latest}");
        // The same grid settled: its end is the song's, and the cuts near it are proposed.
        {
            let mut capture = lock(&worker.session.capture);
            capture.settled_frames = 1;
            capture.audio.append(&[0.0, 0.0]);
        }
        worker.update(&serving, &mut cache, &mut None);
        let (settled, pending) = published(&worker);
        assert_eq!(pending, 0);
        assert!(settled.len() > growing.len());
        assert!(settled.keys().any(|&span| whole_at(span, window) > 160));
        // Scores of the spans proposed before are unchanged: nothing they read moved.
        for (span, score) in &growing {
            assert_eq!(settled[span], *score, "{span:?}");
        }
    }
}
