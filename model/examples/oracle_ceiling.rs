//! How much of the oracle's preference a model that reads only windows around the joins can
//! see. The oracle's length term (`|kept / target - 1|`, the target drawn per song) and its
//! intro/outro term depend on things outside those windows; this compares the full oracle's
//! preference with the preference of the same oracle without those two terms, on pairs drawn
//! exactly as `trainer pairs` draws them.
//!
//! `cargo run --release -p cutscore-model --example oracle_ceiling -- [SONGS] [PAIRS_PER_SONG]`

use cutscore_model::oracle::{Oracle, OracleWeights, target_beats};
use cutscore_model::synthetic_pairs::{draw_edit, near_variant, prepare_song};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("SONGS PAIRS_PER_SONG"))
        .collect();
    let songs = args.first().copied().unwrap_or(40);
    let per_song = args.get(1).copied().unwrap_or(50);
    let local_weights = OracleWeights {
        length: 0.0,
        cuts_intro_or_outro: 0.0,
        ..OracleWeights::default()
    };
    let (mut agree, mut agree_no_length, mut total) = (0usize, 0usize, 0usize);
    for seed in 0..songs as u64 {
        let song = prepare_song(90_000 + seed).expect("the song renders");
        let mut rng = StdRng::seed_from_u64(seed);
        let target = target_beats(&song.grid, rng.random_range(0.55..0.85));
        let full = Oracle::new(&song.truth, &song.features, target).unwrap();
        let local = Oracle::new(&song.truth, &song.features, target)
            .unwrap()
            .with_weights(local_weights.clone());
        let no_length = Oracle::new(&song.truth, &song.features, target)
            .unwrap()
            .with_weights(OracleWeights {
                length: 0.0,
                ..OracleWeights::default()
            });
        for _ in 0..per_song {
            let a = draw_edit(&mut rng, &song.grid, target);
            let mut b = draw_edit(&mut rng, &song.grid, target);
            while near_variant(&a, &b) {
                b = draw_edit(&mut rng, &song.grid, target);
            }
            let truth = full.score(&a).unwrap() > full.score(&b).unwrap();
            agree += usize::from((local.score(&a).unwrap() > local.score(&b).unwrap()) == truth);
            agree_no_length +=
                usize::from((no_length.score(&a).unwrap() > no_length.score(&b).unwrap()) == truth);
            total += 1;
        }
    }
    println!(
        "{total} pairs on {songs} songs: the join-local terms alone agree with the full oracle on \
         {:.1} %; everything but the length term on {:.1} %",
        100.0 * agree as f64 / total as f64,
        100.0 * agree_no_length as f64 / total as f64
    );
}
