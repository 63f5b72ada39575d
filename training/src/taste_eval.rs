//! The whole taste-learning loop, run with [`crate::simulated_users`] (`trainer taste-eval`):
//!
//! 1. Songs are made and analysed (synthetic songs on their true grid, or recordings on the
//!    grid the tracker finds, [`crate::user_songs`]); on each, the base model proposes its best
//!    single cuts, as the plugin's list does.
//! 2. Each user decides on the proposals of the first `n / proposals` songs (rounded up),
//!    written as `decision` records to a prefs folder of their own, as the plugin writes them.
//! 3. [`crate::finetune::finetune`] runs on that folder with the options `trainer finetune` uses.
//! 4. Agreement is measured on songs the user never decided on: the share of clear preferences
//!    between their proposals (apart by the taste's resolution) that the model orders the
//!    same way. Skill is the accuracy on fresh synthetic pairs of songs neither model saw.

use std::path::{Path, PathBuf};
use std::time::Instant;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;

use crate::finetune::layer_fit::Rows;
use crate::finetune::{self, FinetuneError, FinetuneOptions, FinetuneReport, FinetuneTarget};
use crate::pair_set::{PairSet, PairSetError};
use crate::simulated_users::{User, clear_pairs};
use crate::synthetic_pairs::{self, PairOptions, PairsError, prepare_songs};
use crate::teach_eval::{self, TeachCurve, TeachOptions};
use crate::user_songs::{RecordingError, Song, recordings};
use cutscore_core::edit::Edit;
use cutscore_core::prefs::{Decision, PrefsError, PrefsLog, RECORD_VERSION, Record, Verdict};
use cutscore_editing::candidates::{CandidateOptions, rank_candidates};
use cutscore_reward::checkpoint::{Checkpoint, CheckpointError};
use cutscore_reward::scoring::{Track, score_edits, track_reference};
use cutscore_reward::{ModelError, RewardModel};

/// Keeps the users' songs apart from replay and `trainer pairs` songs.
const TRACK_SEED: u64 = 0x7a57_e000;
/// Keeps the held-out songs apart from the decided ones.
const HELD_OUT_SEED: u64 = 0x0bad_cafe;
/// Keeps the skill-check songs apart from every other set.
const SKILL_SEED: u64 = 0x5c11_1000;
/// Songs with fewer proposals than asked for are skipped; this many in a row is an error.
const MAX_SKIPPED: usize = 200;
/// Windows per forward pass when scoring proposals.
const CHUNK: usize = 256;

/// What to run.
#[derive(Debug, Clone, PartialEq)]
pub struct TasteEvalOptions {
    /// Decision counts to fine-tune on, each from the base (e.g. 100 and 300).
    pub decisions: Vec<usize>,
    /// Proposals the user decides on per song (the plugin's list, best first).
    pub proposals: usize,
    /// Songs nobody decides on, where agreement is measured.
    pub held_out_songs: usize,
    /// Fresh synthetic pairs the kept skill is measured on.
    pub skill_pairs: usize,
    pub seed: u64,
    /// What `trainer finetune` would use.
    pub finetune: FinetuneOptions,
    /// Also run the Teach study ([`crate::teach_eval`]) for every user.
    pub teach: Option<TeachOptions>,
    /// Keep each user's prefs folder here (`<user>-<decisions>/`) instead of deleting it.
    pub keep_prefs: Option<PathBuf>,
    /// Decide on the recordings in this folder instead of synthetic songs: shuffled by `seed`,
    /// the first ones decided on and the next `held_out_songs` held out.
    pub recordings: Option<PathBuf>,
}

impl Default for TasteEvalOptions {
    fn default() -> Self {
        Self {
            decisions: vec![100],
            proposals: 10,
            held_out_songs: 20,
            skill_pairs: 600,
            seed: 0,
            finetune: FinetuneOptions::default(),
            teach: None,
            keep_prefs: None,
            recordings: None,
        }
    }
}

/// Why the loop could not run.
#[derive(Debug, thiserror::Error)]
pub enum TasteEvalError {
    #[error(transparent)]
    Pairs(#[from] PairsError),
    #[error(transparent)]
    PairSet(#[from] PairSetError),
    #[error(transparent)]
    Prefs(#[from] PrefsError),
    #[error(transparent)]
    Finetune(#[from] FinetuneError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("{what} is {actual}; expected at least {expected}")]
    TooFew {
        what: &'static str,
        actual: usize,
        expected: usize,
    },
    #[error("{skipped} songs in a row had fewer than {wanted} proposals; expected longer songs")]
    SongsTooShort { skipped: usize, wanted: usize },
    #[error(transparent)]
    Recording(#[from] RecordingError),
    #[error(
        "{usable} of the {total} recordings in {dir} have at least {wanted} proposals; \
         {} are needed ({decided} decided on, {held_out} held out)",
        .decided + .held_out
    )]
    TooFewRecordings {
        dir: PathBuf,
        total: usize,
        usable: usize,
        wanted: usize,
        decided: usize,
        held_out: usize,
    },
    #[error(
        "user `{user}` likes or dislikes sections of the song, which a recording does not name; \
         leave them out of the users for recordings"
    )]
    NeedsForm { user: String },
}

/// A song and the proposals the plugin would list for it.
#[derive(Debug, Clone)]
pub struct Shown {
    pub song: Song,
    /// The base model's best single cuts, best first.
    pub proposals: Vec<Edit>,
    /// Their scores by the base model.
    pub scores: Vec<f32>,
    /// The song's reference score by the base model's transformer (a taste layer's gate reads
    /// scores from it).
    pub reference: Option<f32>,
}

impl Shown {
    fn track(&self) -> Track<'_> {
        Track {
            features: &self.song.features,
            meter: self.song.grid.meter,
        }
    }
}

/// One user after one fine-tuning.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TasteRow {
    pub user: User,
    pub decisions: usize,
    /// Share of clear preferences on held-out songs the model orders as the user does.
    pub agreement_before: f32,
    pub agreement_after: f32,
    /// Clear preferences agreement was measured on.
    pub clear_pairs: usize,
    /// Accuracy on fresh synthetic pairs of songs neither model saw.
    pub skill_before: f32,
    pub skill_after: f32,
    /// Wall time of the fine-tuning alone (loading the decisions to writing the model).
    pub finetune_seconds: f64,
    /// What fine-tuning reported about itself.
    pub report: FinetuneReport,
}

/// `song` with the base model's best `proposals` single cuts, or `None` if it has fewer.
fn show(model: &RewardModel, song: Song, proposals: usize) -> Result<Option<Shown>, ModelError> {
    let options = CandidateOptions {
        limit: proposals,
        ..CandidateOptions::default()
    };
    let track = Track {
        features: &song.features,
        meter: song.grid.meter,
    };
    let ranked = rank_candidates(model, &song.grid, track, &options, CHUNK)?;
    if ranked.len() < proposals {
        return Ok(None);
    }
    let (proposals, scores) = ranked.into_iter().map(|c| (c.edit, c.score)).unzip();
    let reference = track_reference(model, track)?;
    Ok(Some(Shown {
        song,
        proposals,
        scores,
        reference,
    }))
}

/// Renders `count` songs with at least `proposals` proposals each, from `seed`, and lists the
/// base model's proposals for them (songs are made `threads` at a time).
pub fn show_songs(
    model: &RewardModel,
    count: usize,
    proposals: usize,
    seed: u64,
    mut progress: impl FnMut(usize),
) -> Result<Vec<Shown>, TasteEvalError> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut seeds = StdRng::seed_from_u64(seed);
    let mut shown = Vec::with_capacity(count);
    let mut skipped = 0;
    while shown.len() < count {
        let batch: Vec<u64> = (0..threads).map(|_| seeds.random()).collect();
        for song in prepare_songs(&batch) {
            let Some(one) = show(model, Song::from(song?), proposals)? else {
                skipped += 1;
                if skipped >= MAX_SKIPPED {
                    return Err(TasteEvalError::SongsTooShort {
                        skipped,
                        wanted: proposals,
                    });
                }
                continue;
            };
            skipped = 0;
            if shown.len() < count {
                shown.push(one);
                progress(shown.len());
            }
        }
    }
    Ok(shown)
}

/// Analyses every recording in `dir`, shuffles them by `seed` and lists the base model's
/// proposals for the first `count` that have at least `proposals` (songs too short to have
/// that many are passed over). `progress(done, total)` follows the analysis.
pub fn show_recordings(
    model: &RewardModel,
    dir: &Path,
    count: usize,
    proposals: usize,
    seed: u64,
    mut progress: impl FnMut(usize, usize),
) -> Result<(Vec<Shown>, usize), TasteEvalError> {
    let mut files = recordings(dir)?;
    files.shuffle(&mut StdRng::seed_from_u64(seed));
    let total = files.len();
    let threads = rayon::current_num_threads().max(1);
    let mut shown = Vec::with_capacity(count);
    let mut analysed = 0;
    for batch in files.chunks(threads) {
        if shown.len() >= count {
            break;
        }
        let songs: Vec<Result<Song, RecordingError>> =
            batch.par_iter().map(|f| Song::from_audio(f)).collect();
        for song in songs {
            analysed += 1;
            progress(analysed, total);
            if let Some(one) = show(model, song?, proposals)?
                && shown.len() < count
            {
                shown.push(one);
            }
        }
    }
    Ok((shown, total))
}

/// Share of `user`'s clear preferences among the proposals of `songs` that `model` orders the
/// same way (ties count as wrong), and how many there were.
pub fn agreement(
    model: &RewardModel,
    user: &User,
    songs: &[Shown],
) -> Result<(f32, usize), ModelError> {
    let (mut right, mut total) = (0usize, 0usize);
    for shown in songs {
        let pairs = clear_pairs(user.taste, &shown.song, &shown.proposals);
        if pairs.is_empty() {
            continue;
        }
        let scores = score_edits(model, shown.track(), &shown.proposals, CHUNK)?;
        right += pairs
            .iter()
            .filter(|&&(i, j)| scores[i] > scores[j])
            .count();
        total += pairs.len();
    }
    Ok((right as f32 / total.max(1) as f32, total))
}

/// Writes `user`'s decisions on every proposal of `songs` to the prefs folder `dir`, as the
/// plugin would: the track file, then one `decision` record per proposal.
pub fn write_decisions(
    dir: &Path,
    user: &User,
    songs: &[Shown],
    base_model: &str,
    rng: &mut impl Rng,
) -> Result<(), PrefsError> {
    let log = PrefsLog::create(dir)?;
    for shown in songs {
        let song = &shown.song;
        log.save_track(&song.track_record())?;
        let verdicts = user.verdicts(song, &shown.proposals, rng);
        for ((edit, score), accept) in shown.proposals.iter().zip(&shown.scores).zip(verdicts) {
            log.append(&Record::Decision(Decision {
                v: RECORD_VERSION,
                time: Record::now(),
                track: song.track.clone(),
                edit: edit.clone(),
                verdict: if accept {
                    Verdict::Accept
                } else {
                    Verdict::Reject
                },
                score: Some(*score),
                model: Some(base_model.to_string()),
                shown: shown.proposals.clone(),
            }))?;
        }
    }
    Ok(())
}

/// Progress of [`run`].
#[derive(Debug, Clone, Copy)]
pub enum EvalProgress<'a> {
    /// Songs shown so far, of `total`.
    Songs { done: usize, total: usize },
    /// A fine-tuning starts.
    Finetune { user: &'a User, decisions: usize },
    /// A row is finished.
    Row(&'a TasteRow),
    /// A Teach study is finished.
    Teach(&'a TeachCurve),
}

/// What [`run`] measured.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TasteEvalReport {
    /// Users x decision counts, in that order.
    pub rows: Vec<TasteRow>,
    /// Users x ways of asking, with `options.teach`.
    pub teach: Vec<TeachCurve>,
}

/// Runs the loop for every user and decision count. `scratch` holds the prefs folders and the
/// fine-tuned models (one at a time). Rows come in the order users × decision counts.
pub fn run(
    base: &Checkpoint,
    users: &[User],
    options: &TasteEvalOptions,
    device: &candle_core::Device,
    scratch: &Path,
    mut progress: impl FnMut(EvalProgress),
) -> Result<TasteEvalReport, TasteEvalError> {
    let most = options.decisions.iter().copied().max().unwrap_or(0);
    let too_few = |what, actual, expected| TasteEvalError::TooFew {
        what,
        actual,
        expected,
    };
    if options.proposals < 2 {
        return Err(too_few("proposals per song", options.proposals, 2));
    }
    if most < options.proposals {
        return Err(too_few("decisions", most, options.proposals));
    }
    if options.held_out_songs == 0 {
        return Err(too_few("held-out songs", 0, 1));
    }
    if options.skill_pairs == 0 {
        return Err(too_few("fresh synthetic pairs", 0, 1));
    }
    let model = base.model(device)?;
    let decided_songs = most.div_ceil(options.proposals);
    let total = decided_songs + options.held_out_songs;
    let (decided, held_out) = match &options.recordings {
        None => {
            let mut report = |done| progress(EvalProgress::Songs { done, total });
            let decided = show_songs(
                &model,
                decided_songs,
                options.proposals,
                options.seed ^ TRACK_SEED,
                &mut report,
            )?;
            let held_out = show_songs(
                &model,
                options.held_out_songs,
                options.proposals,
                options.seed ^ HELD_OUT_SEED,
                |done| report(decided_songs + done),
            )?;
            (decided, held_out)
        }
        Some(dir) => {
            if let Some(user) = users.iter().find(|u| u.taste.needs_form()) {
                return Err(TasteEvalError::NeedsForm {
                    user: user.name.clone(),
                });
            }
            let (mut shown, files) = show_recordings(
                &model,
                dir,
                total,
                options.proposals,
                options.seed ^ TRACK_SEED,
                |done, total| progress(EvalProgress::Songs { done, total }),
            )?;
            if shown.len() < total {
                return Err(TasteEvalError::TooFewRecordings {
                    dir: dir.clone(),
                    total: files,
                    usable: shown.len(),
                    wanted: options.proposals,
                    decided: decided_songs,
                    held_out: options.held_out_songs,
                });
            }
            let held_out = shown.split_off(decided_songs);
            (shown, held_out)
        }
    };
    let make = |name: &str, pair_options: &PairOptions| -> Result<PairSet, TasteEvalError> {
        let dir = scratch.join(name);
        synthetic_pairs::generate(&dir, pair_options, |_| {})?;
        Ok(PairSet::load(&dir)?)
    };
    let replay = make(
        "replay",
        &synthetic_pairs::replay_options(options.finetune.seed),
    )?;
    let skill_set = make(
        "skill",
        &PairOptions {
            count: options.skill_pairs,
            pairs_per_song: 20,
            seed: options.seed ^ SKILL_SEED,
            ..PairOptions::default()
        },
    )?;
    let skill = |model: &RewardModel| -> Result<f32, TasteEvalError> {
        let config = crate::bradley_terry::TrainConfig::default();
        Ok(crate::bradley_terry::evaluate(model, &skill_set.inputs(), 128, &config)?.accuracy)
    };
    let skill_before = skill(&model)?;
    let mut rows = Vec::new();
    for (u, user) in users.iter().enumerate() {
        let (agreement_before, clear) = agreement(&model, user, &held_out)?;
        for &decisions in &options.decisions {
            progress(EvalProgress::Finetune { user, decisions });
            let songs = &decided[..decisions.div_ceil(options.proposals)];
            let prefs = match &options.keep_prefs {
                Some(dir) => dir.join(format!("{}-{decisions}", user.name)),
                None => scratch.join(format!("prefs-{u}-{decisions}")),
            };
            let mut rng =
                StdRng::seed_from_u64(options.seed ^ ((u as u64) << 32) ^ decisions as u64);
            write_decisions(&prefs, user, songs, &base.info.model_id, &mut rng)?;
            let out = scratch.join("model.safetensors");
            let started = Instant::now();
            let pairs = PairSet::load(&prefs)?;
            let target = FinetuneTarget {
                device,
                out: &out,
                command: None,
            };
            let report = finetune::finetune(
                base,
                &pairs,
                Some(&replay),
                &options.finetune,
                &target,
                |_| {},
            )?;
            let finetune_seconds = started.elapsed().as_secs_f64();
            let tuned = Checkpoint::read(&out)?.model(device)?;
            let (agreement_after, _) = agreement(&tuned, user, &held_out)?;
            let row = TasteRow {
                user: user.clone(),
                decisions,
                agreement_before,
                agreement_after,
                clear_pairs: clear,
                skill_before,
                skill_after: skill(&tuned)?,
                finetune_seconds,
                report,
            };
            if options.keep_prefs.is_none() {
                std::fs::remove_dir_all(&prefs).ok();
            }
            progress(EvalProgress::Row(&row));
            rows.push(row);
        }
    }
    let mut teach = Vec::new();
    if let Some(teach_options) = &options.teach {
        let replay_rows = Rows::score(&model.clone().with_taste(None), &replay, || {})?;
        for user in users {
            for mut curve in
                teach_eval::study(user, &decided, &held_out, &replay_rows, teach_options)
            {
                curve.skill_after = Some(skill(&model.clone().with_taste(curve.layer.clone()))?);
                progress(EvalProgress::Teach(&curve));
                teach.push(curve);
            }
        }
    }
    Ok(TasteEvalReport { rows, teach })
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use super::*;
    use crate::simulated_users::{Taste, panel};
    use cutscore_core::audio::{Audio, WavFormat, write_wav};
    use cutscore_reward::shipped;
    use cutscore_synth::{SongSpec, render};

    /// Three synthetic songs written as WAV files: recordings whose beats the tracker must find.
    fn recordings_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for seed in [21, 22, 23] {
            let song = render(&SongSpec {
                sample_rate: 22_050,
                ..SongSpec::random(seed)
            })
            .unwrap();
            let audio = Audio::new(song.sample_rate, 1, song.mono()).unwrap();
            let path = dir.path().join(format!("song{seed}.wav"));
            write_wav(&path, &audio, WavFormat::Float32).unwrap();
        }
        dir
    }

    #[test]
    fn a_loop_with_nothing_to_measure_on_is_refused_before_any_song_is_made() {
        let base = shipped::checkpoint().unwrap();
        let scratch = tempfile::tempdir().unwrap();
        let lift: Vec<User> = panel().into_iter().filter(|u| u.name == "lift").collect();
        let refused = |options: TasteEvalOptions| match run(
            &base,
            &lift,
            &options,
            &Device::Cpu,
            scratch.path(),
            |_| {},
        ) {
            Err(TasteEvalError::TooFew { what, actual, .. }) => (what, actual),
            other => panic!("expected a refusal, got {other:?}"),
        };
        let default = TasteEvalOptions::default;
        assert_eq!(
            refused(TasteEvalOptions {
                proposals: 1,
                ..default()
            }),
            ("proposals per song", 1)
        );
        assert_eq!(
            refused(TasteEvalOptions {
                decisions: vec![5],
                ..default()
            }),
            ("decisions", 5)
        );
        assert_eq!(
            refused(TasteEvalOptions {
                held_out_songs: 0,
                ..default()
            }),
            ("held-out songs", 0)
        );
        assert_eq!(
            refused(TasteEvalOptions {
                skill_pairs: 0,
                ..default()
            }),
            ("fresh synthetic pairs", 0)
        );
        assert_eq!(std::fs::read_dir(scratch.path()).unwrap().count(), 0);
    }

    #[test]
    fn recordings_are_shown_on_their_tracked_grid_and_too_few_or_a_form_taste_are_refused() {
        let dir = recordings_dir();
        let base = shipped::checkpoint().unwrap();
        let model = base.model(&Device::Cpu).unwrap();
        let (shown, files) = show_recordings(&model, dir.path(), 3, 4, 7, |_, _| {}).unwrap();
        assert_eq!((shown.len(), files), (3, 3));
        for s in &shown {
            assert!(s.song.truth.is_none() && s.song.source.starts_with("recording "));
            assert_eq!(s.proposals.len(), 4);
            assert!(s.scores.windows(2).all(|w| w[0] >= w[1]), "best first");
        }
        // The seed shuffles which songs are decided on, the same way every time.
        let order = |seed| {
            let (shown, _) = show_recordings(&model, dir.path(), 3, 4, seed, |_, _| {}).unwrap();
            shown
                .iter()
                .map(|s| s.song.track.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            order(7),
            shown
                .iter()
                .map(|s| s.song.track.clone())
                .collect::<Vec<_>>()
        );
        assert!((0..8).any(|seed| order(seed) != order(7)));

        let scratch = tempfile::tempdir().unwrap();
        let options = TasteEvalOptions {
            decisions: vec![8],
            proposals: 4,
            held_out_songs: 2,
            recordings: Some(dir.path().to_path_buf()),
            ..TasteEvalOptions::default()
        };
        let run_with =
            |users: &[User]| run(&base, users, &options, &Device::Cpu, scratch.path(), |_| {});
        let chorus: Vec<User> = panel()
            .into_iter()
            .filter(|u| u.taste == Taste::KeepChorus)
            .collect();
        assert!(matches!(
            run_with(&chorus),
            Err(TasteEvalError::NeedsForm { .. })
        ));
        let lift: Vec<User> = panel().into_iter().filter(|u| u.name == "lift").collect();
        match run_with(&lift) {
            Err(e @ TasteEvalError::TooFewRecordings { .. }) => {
                let message = e.to_string();
                assert!(message.contains("3 of the 3 recordings"), "{message}");
                assert!(message.contains("4 are needed"), "{message}");
            }
            other => panic!("expected too few recordings, got {other:?}"),
        }
    }
}
