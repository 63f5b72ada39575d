//! Fine-tuning learns a simulated user's taste on songs it holds out, writes it as a layer over
//! the untouched transformer, keeps the previous model, and refuses bad options.

use candle_core::Device;
use candle_nn::VarMap;
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::*;
use crate::simulated_users::{Taste, User};
use crate::synthetic_pairs::{PairOptions, generate};
use crate::taste_eval::{agreement, show_songs, write_decisions};
use cutscore_reward::checkpoint::{self, StorageType};
use cutscore_reward::{Config, RewardModel};

/// A tiny random transformer saved as a checkpoint: its taste is noise, so a user's is new.
fn base(dir: &Path) -> Checkpoint {
    let varmap = VarMap::new();
    RewardModel::init(&Config::tiny(), &varmap, &Device::Cpu, 5).unwrap();
    let path = dir.join("base.safetensors");
    checkpoint::save(
        &path,
        &varmap,
        &Config::tiny(),
        &TrainingMetrics::default(),
        &Provenance::default(),
        StorageType::F32,
    )
    .unwrap();
    Checkpoint::read(&path).unwrap()
}

fn replay(dir: &Path) -> PairSet {
    let options = PairOptions {
        count: 60,
        pairs_per_song: 10,
        seed: 8,
        ..PairOptions::default()
    };
    generate(dir, &options, |_| {}).unwrap();
    PairSet::load(dir).unwrap()
}

/// `user`'s decisions on `model`'s proposals for `songs` songs of `proposals` each (drawn from
/// `seed`), verdicts drawn from `noise_seed`, written to `dir/prefs` and read back.
fn decisions(
    dir: &Path,
    model: &RewardModel,
    user: &User,
    (songs, proposals, seed): (usize, usize, u64),
    noise_seed: u64,
) -> PairSet {
    let decided = show_songs(model, songs, proposals, seed, |_| {}).unwrap();
    let prefs = dir.join("prefs");
    let mut rng = StdRng::seed_from_u64(noise_seed);
    write_decisions(&prefs, user, &decided, "base", &mut rng).unwrap();
    PairSet::load(&prefs).unwrap()
}

#[test]
fn a_users_taste_is_learned_on_songs_it_never_saw_and_the_transformer_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let base = base(dir.path());
    let model = base.model(&Device::Cpu).unwrap();
    let user = User::new("long", Taste::LongCuts, 0.0);
    let pairs = decisions(dir.path(), &model, &user, (8, 8, 21), 1);
    let unseen = show_songs(&model, 4, 8, 22, |_| {}).unwrap();
    assert_eq!(pairs.decisions.values().sum::<usize>(), 64);
    let synthetic = replay(&dir.path().join("replay"));
    let out = dir.path().join("user").join("model.safetensors");
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    std::fs::write(&out, b"the user's earlier model").unwrap();
    let options = FinetuneOptions {
        curve: true,
        ..FinetuneOptions::default()
    };
    let mut stages = Vec::new();
    let report = finetune(
        &base,
        &pairs,
        Some(&synthetic),
        &options,
        &FinetuneTarget {
            device: &Device::Cpu,
            out: &out,
            command: None,
        },
        |s| stages.push(s),
    )
    .unwrap();
    // Two of the eight songs were held out, measured, then learned from too.
    assert_eq!((report.user_songs, report.held_out_songs), (8, 2));
    assert!(report.user_agreement_after.unwrap() > report.user_agreement_before.unwrap());
    assert_eq!(report.curve.last().unwrap().songs, 6);
    assert_eq!(report.curve.last().unwrap().decisions, 48);
    assert!(stages.contains(&Stage::Writing));
    assert!(matches!(stages[0], Stage::Scoring { done: 1, .. }));
    // The earlier model is kept; the new one is the base's transformer with a layer.
    let backup = report.backup.clone().unwrap();
    assert_eq!(std::fs::read(backup).unwrap(), b"the user's earlier model");
    let tuned = Checkpoint::read(&out).unwrap();
    assert_eq!(tuned.info.model_id, report.model_id);
    assert_eq!(
        tuned.info.provenance.base_model.as_deref(),
        Some(base.info.model_id.as_str())
    );
    let tuned_model = tuned.model(&Device::Cpu).unwrap();
    assert!(tuned_model.taste().is_some());
    let plain = tuned_model.clone().with_taste(None);
    let song = &unseen[0];
    let track = cutscore_reward::scoring::Track {
        features: &song.song.features,
        meter: song.song.grid.meter,
    };
    let score = |m: &RewardModel| {
        cutscore_reward::scoring::score_edits(m, track, &song.proposals, 64).unwrap()
    };
    assert_eq!(score(&plain), score(&model));
    // On songs nobody decided on, the user's clear preferences are mostly followed now.
    let (before, clear) = agreement(&model, &user, &unseen).unwrap();
    let (after, _) = agreement(&tuned_model, &user, &unseen).unwrap();
    assert!(clear > 20);
    assert!(after >= 0.8 && after > before + 0.2, "{before} -> {after}");
}

#[test]
fn one_song_is_learned_without_a_measure_and_bad_options_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let base = base(dir.path());
    let model = base.model(&Device::Cpu).unwrap();
    let user = User::new("quiet", Taste::QuietOut, 0.0);
    let pairs = decisions(dir.path(), &model, &user, (1, 6, 31), 2);
    let out = dir.path().join("model.safetensors");
    let target = FinetuneTarget {
        device: &Device::Cpu,
        out: &out,
        command: None,
    };
    let report = finetune(
        &base,
        &pairs,
        None,
        &FinetuneOptions::default(),
        &target,
        |_| {},
    )
    .unwrap();
    assert_eq!(report.held_out_songs, 0);
    assert_eq!(report.user_agreement_after, None);
    assert_eq!(report.base_accuracy_after, None);
    assert!(report.backup.is_none());
    assert!(Checkpoint::read(&out).unwrap().taste.is_some());
    for options in [
        FinetuneOptions {
            holdout: 1.5,
            ..FinetuneOptions::default()
        },
        FinetuneOptions {
            replay: f64::NAN,
            ..FinetuneOptions::default()
        },
        FinetuneOptions {
            settings: Some(Settings {
                sparsity: 0.1,
                bound: 0.0,
                gated: true,
                focus: None,
            }),
            ..FinetuneOptions::default()
        },
        FinetuneOptions {
            settings: Some(Settings {
                sparsity: 0.1,
                bound: 1.0,
                gated: true,
                focus: Some(0),
            }),
            ..FinetuneOptions::default()
        },
    ] {
        let err = finetune(&base, &pairs, None, &options, &target, |_| {}).unwrap_err();
        assert!(matches!(err, FinetuneError::Option { .. }), "{err}");
    }
}
