//! Fit-to-length: constraints hold, targets are met, the DP finds the best cut set.

use candle_core::Device;
use candle_nn::VarMap;

use super::*;
use crate::features::FeatureMatrix;
use crate::reward::Config;

/// `bars` bars of 4/4 at 120 BPM (2 s per bar) with seeded pseudo-random features.
fn song(bars: usize) -> (BeatGrid, FeatureMatrix) {
    let grid = BeatGrid::regular(0.0, 0.5, bars * 4, 4, 0).unwrap();
    let values = (0..grid.len() * 121)
        .map(|i| ((i * 2654435761) % 1000) as f32 / 500.0 - 1.0)
        .collect();
    (
        grid.clone(),
        FeatureMatrix::new(grid.len(), values).unwrap(),
    )
}

fn tiny() -> RewardModel {
    RewardModel::init(&Config::tiny(), &VarMap::new(), &Device::Cpu, 0).unwrap()
}

fn fit(bars: usize, options: FitOptions) -> (BeatGrid, FitResult) {
    let (grid, features) = song(bars);
    let track = Track {
        features: &features,
        meter: 4,
    };
    let result = fit_to_length(&tiny(), &grid, track, &options).unwrap();
    (grid, result)
}

#[test]
fn lands_within_the_slack_on_downbeats_outside_the_protected_bars() {
    let options = FitOptions {
        target_s: 90.0,
        slack_s: 2.0,
        lengths: vec![1, 2, 4, 8],
        ..FitOptions::default()
    };
    let (grid, result) = fit(64, options);
    assert!(result.met_target, "{:?}", result.message);
    assert!(!result.variations.is_empty() && result.variations.len() <= 3);
    assert_eq!(result.best, result.variations[0]);
    for (i, variation) in result.variations.iter().enumerate() {
        assert!(
            (variation.output_seconds - 90.0).abs() <= 2.0,
            "{}",
            variation.output_seconds
        );
        let kept = variation.edit.kept_len() as f64 * 0.5;
        assert!((kept - variation.output_seconds).abs() < 1e-9);
        let spans = variation.edit.removed();
        for span in spans {
            assert_eq!(grid.beat_in_bar[span.start], 0);
            assert_eq!(grid.beat_in_bar[span.end], 0);
            assert!(span.start >= 16 && span.end <= grid.len() - 16, "{span:?}");
        }
        for pair in spans.windows(2) {
            assert!(
                pair[1].start - pair[0].end >= 16,
                "joins closer than 4 bars: {spans:?}"
            );
        }
        for other in &result.variations[i + 1..] {
            assert_ne!(other.edit, variation.edit);
            assert!(variation.score >= other.score);
        }
    }
    assert_eq!(result.best.joins.len(), result.best.edit.joins().len());
}

#[test]
fn keep_and_remove_regions_are_honoured() {
    let options = FitOptions {
        target_s: 100.0,
        slack_s: 3.0,
        keep_regions: vec![20.0..60.0],
        remove_regions: vec![81.0..83.0],
        lengths: vec![1, 2, 4, 8],
        ..FitOptions::default()
    };
    let (grid, result) = fit(64, options);
    assert!(result.met_target, "{:?}", result.message);
    for variation in &result.variations {
        let removed = |t: f64| {
            variation
                .edit
                .removed()
                .iter()
                .any(|s| grid.time_of(s.start) <= t && t < grid.time_of(s.end))
        };
        assert!(removed(81.5) && removed(82.5), "the remove region stays");
        assert!(
            (20..60).all(|t| !removed(t as f64 + 0.25)),
            "a keep region was cut"
        );
    }
}

#[test]
fn targets_longer_than_the_song_keep_everything_and_say_so() {
    let (grid, result) = fit(
        32,
        FitOptions {
            target_s: 200.0,
            ..FitOptions::default()
        },
    );
    assert!(!result.met_target);
    assert!(result.message.unwrap().contains("longer than the song"));
    assert_eq!(result.best.edit, Edit::identity(grid.len()));
    // Within the slack of the full length, keeping everything is a valid answer.
    let (_, result) = fit(
        32,
        FitOptions {
            target_s: 62.0,
            ..FitOptions::default()
        },
    );
    assert!(result.met_target);
}

#[test]
fn impossible_targets_return_the_closest_edit_with_a_reason() {
    // 32 bars = 64 s, intro and outro keep 8 bars = 16 s: 12 s cannot be reached.
    let options = FitOptions {
        target_s: 12.0,
        slack_s: 1.0,
        min_bars_between_joins: 1,
        ..FitOptions::default()
    };
    let (_, result) = fit(32, options);
    assert!(!result.met_target);
    assert!(result.message.unwrap().contains("no set of whole-bar cuts"));
    assert!(
        result.best.output_seconds < 40.0,
        "closest edit should remove most bars: {}",
        result.best.output_seconds
    );
    assert!(result.best.output_seconds >= 16.0);
}

#[test]
fn bad_targets_and_beatless_songs_are_errors() {
    let (grid, features) = song(8);
    let track = Track {
        features: &features,
        meter: 4,
    };
    let err = fit_to_length(
        &tiny(),
        &grid,
        track,
        &FitOptions {
            target_s: f64::NAN,
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(matches!(err, FitError::BadTarget { .. }));
    let empty = BeatGrid::new(vec![], vec![], 4, 10.0).unwrap();
    let none = FeatureMatrix::zeros(0);
    let err = fit_to_length(
        &tiny(),
        &empty,
        Track {
            features: &none,
            meter: 4,
        },
        &FitOptions {
            target_s: 5.0,
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(matches!(err, FitError::NoBeats));
}

/// The DP against brute force over every subset of a small set of cuts.
#[test]
fn the_search_finds_the_best_sum_for_each_length() {
    let downbeats: Vec<usize> = (0..12).map(|b| b * 4).collect();
    let forced = vec![false; 12];
    let cut = |start_bar: usize, bars: usize, score: f32| Cut {
        start: start_bar * 4,
        end: (start_bar + bars) * 4,
        seconds: bars as f64 * 2.0,
        score,
    };
    let cuts = vec![
        cut(1, 1, 0.5),
        cut(1, 2, 2.0),
        cut(3, 1, 1.0),
        cut(4, 2, -1.0),
        cut(6, 1, 3.0),
        cut(7, 2, 1.5),
        cut(9, 1, 0.25),
    ];
    let options = FitOptions {
        min_bars_between_joins: 1,
        ..FitOptions::default()
    };
    let solutions = search(&downbeats, &forced, &cuts, &options, 10.0, 2.0);
    // Brute force: subsets whose cuts are separated by at least one kept bar.
    let mut best: std::collections::HashMap<(usize, u64), f32> = std::collections::HashMap::new();
    for mask in 0u32..(1 << cuts.len()) {
        let chosen: Vec<&Cut> = (0..cuts.len())
            .filter(|i| mask & (1 << i) != 0)
            .map(|i| &cuts[i])
            .collect();
        let valid = chosen.windows(2).all(|w| w[1].start >= w[0].end + 4);
        if !valid {
            continue;
        }
        let seconds: f64 = chosen.iter().map(|c| c.seconds).sum();
        let sum: f32 = chosen.iter().map(|c| c.score).sum();
        let key = (chosen.len(), seconds as u64);
        if seconds <= 12.0 && best.get(&key).is_none_or(|&b| sum > b) {
            best.insert(key, sum);
        }
    }
    for solution in &solutions {
        let key = (solution.cuts.len(), solution.seconds as u64);
        assert_eq!(Some(&solution.score_sum), best.get(&key), "{key:?}");
    }
    assert_eq!(solutions.len(), best.len());
}
