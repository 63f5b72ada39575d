//! Where a reward model disagrees with the editing oracle on synthetic pairs.
//!
//! `cargo run --release -p cutscore-training --example oracle_errors -- PAIRS [MODEL]` scores every
//! pair of the prefs folder `PAIRS` (written by `trainer pairs`) with `MODEL` (default: the
//! shipped model), re-renders each song from the seed its track record names, and asks the
//! oracle (with the pair generator's weights) how far apart it scored the two edits and which
//! rule decided it. It prints the model's error rate by join count and oracle margin (craft
//! points), and for each rule how often it was the largest term in the oracle's preference,
//! among all pairs and among the model's errors. That is how the close calls between 0.5 and
//! 1.5 craft points were found to hold almost all of the errors (`trainer pairs --max-margin`).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use anyhow::{Context, bail};
use cutscore_core::edit::Edit;
use cutscore_reward::checkpoint::Checkpoint;
use cutscore_reward::shipped;
use cutscore_training::oracle::{Oracle, OracleWeights, target_beats};
use cutscore_training::pair_set::PairSet;
use cutscore_training::scorecard::pair_rewards;
use cutscore_training::synthetic_pairs::{SongData, pair_weights, prepare_song};

/// The rules a pair can turn on, each with the pair generator's weight for it alone.
fn rules() -> Vec<(&'static str, OracleWeights)> {
    let all = pair_weights();
    let only = |set: fn(&mut OracleWeights, &OracleWeights)| {
        let mut w = OracleWeights {
            off_downbeat: 0.0,
            partial_phrase: 0.0,
            mid_phrase: 0.0,
            whole_section_bonus: 0.0,
            timbre: 0.0,
            harmony: 0.0,
            loudness: 0.0,
            cuts_intro_or_outro: 0.0,
            length: 0.0,
            per_join: 0.0,
        };
        set(&mut w, &all);
        w
    };
    vec![
        ("off downbeat", only(|w, a| w.off_downbeat = a.off_downbeat)),
        (
            "partial phrase",
            only(|w, a| w.partial_phrase = a.partial_phrase),
        ),
        ("mid phrase", only(|w, a| w.mid_phrase = a.mid_phrase)),
        (
            "whole section",
            only(|w, a| w.whole_section_bonus = a.whole_section_bonus),
        ),
        ("timbre", only(|w, a| w.timbre = a.timbre)),
        ("harmony", only(|w, a| w.harmony = a.harmony)),
        ("loudness", only(|w, a| w.loudness = a.loudness)),
    ]
}

/// The song seed in a synthetic track's `source` ("synthetic song, seed N").
fn song_seed(source: Option<&str>) -> Option<u64> {
    source?.strip_prefix("synthetic song, seed ")?.parse().ok()
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(pairs_dir) = args.first() else {
        bail!("usage: oracle_errors PAIRS [MODEL]");
    };
    let set = PairSet::load(Path::new(pairs_dir))?;
    let checkpoint = match args.get(1) {
        Some(path) => Checkpoint::read(Path::new(path))?,
        None => shipped::checkpoint()?,
    };
    let model = checkpoint.model(&candle_core::Device::Cpu)?;
    let (chosen, rejected) = pair_rewards(&model, &set, 128)?;
    let rules = rules();
    let mut songs: HashMap<&str, SongData> = HashMap::new();
    // (joins, margin bucket in quarter points) -> (pairs, errors)
    let mut by_margin: BTreeMap<(usize, usize), (usize, usize)> = BTreeMap::new();
    let mut deciding = vec![(0usize, 0usize); rules.len()];
    for (i, pair) in set.pairs.iter().enumerate() {
        let track = &set.tracks[&pair.track];
        let seed = song_seed(track.source.as_deref())
            .with_context(|| format!("track {} is not a synthetic song", pair.track))?;
        if !songs.contains_key(pair.track.as_str()) {
            songs.insert(&pair.track, prepare_song(seed)?);
        }
        let song = &songs[pair.track.as_str()];
        // The length rule is off in the pair weights, so any target will do.
        let target = target_beats(&song.grid, 0.7);
        let difference = |weights: &OracleWeights, a: &Edit, b: &Edit| -> anyhow::Result<f32> {
            let oracle =
                Oracle::new(&song.truth, &song.features, target)?.with_weights(weights.clone());
            Ok(oracle.score(a)? - oracle.score(b)?)
        };
        let margin = difference(&pair_weights(), &pair.chosen, &pair.rejected)?;
        let wrong = chosen[i] <= rejected[i];
        let joins = pair.chosen.joins().len();
        let bucket = (margin.max(0.0) * 4.0).min(8.0) as usize;
        let cell = by_margin.entry((joins, bucket)).or_default();
        cell.0 += 1;
        cell.1 += usize::from(wrong);
        let terms = rules
            .iter()
            .map(|(_, w)| difference(w, &pair.chosen, &pair.rejected))
            .collect::<anyhow::Result<Vec<f32>>>()?;
        let top = (0..terms.len())
            .max_by(|&a, &b| terms[a].total_cmp(&terms[b]))
            .expect("there are rules");
        deciding[top].0 += 1;
        deciding[top].1 += usize::from(wrong);
    }
    let errors: usize = by_margin.values().map(|c| c.1).sum();
    println!(
        "{} pairs on {} songs: {errors} errors ({:.2} %)",
        set.len(),
        songs.len(),
        100.0 * errors as f64 / set.len().max(1) as f64
    );
    println!("error rate by join count and oracle margin (craft points):");
    for ((joins, bucket), (pairs, wrong)) in &by_margin {
        let low = *bucket as f32 / 4.0;
        let range = if *bucket == 8 {
            format!(">= {low:.2}")
        } else {
            format!("{low:.2}-{:.2}", low + 0.25)
        };
        println!(
            "  {joins} join(s), margin {range:>9}: {pairs:>5} pairs, {wrong:>4} wrong ({:.1} %)",
            100.0 * *wrong as f64 / *pairs as f64
        );
    }
    println!("the rule that weighed most in the oracle's preference:");
    for ((name, _), (pairs, wrong)) in rules.iter().zip(&deciding) {
        println!("  {name:>14}: {pairs:>5} pairs, {wrong:>4} of the errors");
    }
    Ok(())
}
