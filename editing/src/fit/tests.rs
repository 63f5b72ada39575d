//! Fit-to-length: constraints hold, targets are met at any scale, few joins are preferred, the
//! DP finds the best cut set and section cuts stay on phrase boundaries within their budget.

use candle_core::Device;
use candle_nn::VarMap;

use super::*;
use cutscore_core::features::FeatureMatrix;
use cutscore_reward::Config;

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

/// Asserts that every variation of `result` lands within the slack, cuts whole bars outside
/// the protected intro and outro, keeps the joins apart and is ranked best first.
fn assert_valid(grid: &BeatGrid, result: &FitResult, options: &FitOptions) {
    assert!(result.met_target, "{:?}", result.message);
    assert!(!result.variations.is_empty() && result.variations.len() <= options.variations);
    assert_eq!(result.best, result.variations[0]);
    let downbeats = grid.bar_starts();
    let first = downbeats[options.keep_intro_bars];
    let last = downbeats[downbeats.len() - options.keep_outro_bars];
    let gap = options.min_bars_between_joins * usize::from(grid.meter);
    for (i, variation) in result.variations.iter().enumerate() {
        assert!(
            (variation.output_seconds - options.target_s).abs() <= options.slack_s,
            "{} s for a target of {} s",
            variation.output_seconds,
            options.target_s
        );
        let kept = grid.time_of(grid.len())
            - variation
                .edit
                .removed()
                .iter()
                .map(|s| grid.time_of(s.end) - grid.time_of(s.start))
                .sum::<f64>();
        assert!((kept - variation.output_seconds).abs() < 1e-9);
        let spans = variation.edit.removed();
        for span in spans {
            assert_eq!(grid.beat_in_bar[span.start], 0);
            assert_eq!(grid.beat_in_bar[span.end], 0);
            assert!(span.start >= first && span.end <= last, "{span:?}");
        }
        for pair in spans.windows(2) {
            assert!(
                pair[1].start - pair[0].end >= gap,
                "joins closer than {} bars: {spans:?}",
                options.min_bars_between_joins
            );
        }
        assert_eq!(variation.joins.len(), variation.edit.joins().len());
        for other in &result.variations[i + 1..] {
            assert_ne!(other.edit, variation.edit);
            assert!(variation.value >= other.value);
        }
    }
}

#[test]
fn lands_within_the_slack_on_downbeats_outside_the_protected_bars() {
    let options = FitOptions {
        target_s: 90.0,
        slack_s: 2.0,
        lengths: vec![1, 2, 4, 8],
        ..FitOptions::default()
    };
    let (grid, result) = fit(64, options.clone());
    assert_valid(&grid, &result, &options);
    assert_eq!(result.best.joins.len(), result.best.edit.joins().len());
}

#[test]
fn on_strong_bar_lines_only_every_join_lies_on_one_and_targets_are_still_met() {
    for parity in [0, 1] {
        for target_s in [40.0, 64.0, 90.0, 110.0] {
            let options = FitOptions {
                target_s,
                strong_bar_parity: Some(parity),
                ..FitOptions::default()
            };
            let (grid, result) = fit(64, options.clone());
            assert_valid(&grid, &result, &options);
            let bar_of = |beat: usize| grid.bar_starts().binary_search(&beat).unwrap();
            for variation in &result.variations {
                for span in variation.edit.removed() {
                    assert_eq!(bar_of(span.start) % 2, parity, "{span:?}");
                    assert_eq!(bar_of(span.end) % 2, parity, "{span:?}");
                }
            }
        }
    }
    // Without the rule the same fit joins on odd bar lines too.
    let (grid, result) = fit(
        64,
        FitOptions {
            target_s: 64.0,
            ..FitOptions::default()
        },
    );
    let odd = |beat: usize| grid.bar_starts().binary_search(&beat).unwrap() % 2 == 1;
    assert!(
        result
            .variations
            .iter()
            .flat_map(|v| v.edit.removed().to_vec())
            .any(|s| odd(s.start) || odd(s.end))
    );
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
    // Within the slack of the full length, keeping everything is the best answer: no join.
    let (grid, result) = fit(
        32,
        FitOptions {
            target_s: 62.0,
            ..FitOptions::default()
        },
    );
    assert!(result.met_target);
    assert_eq!(result.best.edit, Edit::identity(grid.len()));
}

#[test]
fn impossible_targets_return_the_closest_edit_with_a_reason() {
    // 32 bars = 64 s, intro and outro keep 8 bars = 16 s: 12 s cannot be reached, and the
    // closest edit removes the whole middle in one section cut.
    let options = FitOptions {
        target_s: 12.0,
        slack_s: 1.0,
        min_bars_between_joins: 1,
        ..FitOptions::default()
    };
    let (grid, result) = fit(32, options);
    assert!(!result.met_target);
    assert!(result.message.unwrap().contains("no set of whole-bar cuts"));
    assert_eq!(result.best.output_seconds, 16.0);
    let middle = grid.bar_starts()[4]..grid.bar_starts()[28];
    assert_eq!(
        result.best.edit,
        Edit::new(grid.len(), [(middle.start, middle.end)]).unwrap()
    );
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

/// Issue #16: a 21-minute track fitted to 60 s came out at 10:47 with 16 joins. A 20-minute
/// track now reaches 60 s with a few joins, and every length from the intro and outro alone
/// (16 s) to the whole track.
#[test]
fn a_20_minute_track_fits_to_60_s_and_to_every_length_in_between() {
    let (grid, features) = song(600);
    let track = Track {
        features: &features,
        meter: 4,
    };
    let model = tiny();
    let targets = [60.0, 16.0, 1200.0]
        .into_iter()
        .chain((1..12).map(|i| 16.0 + f64::from(i) * 98.7));
    for target_s in targets {
        let options = FitOptions {
            target_s,
            ..FitOptions::default()
        };
        let result = fit_to_length(&model, &grid, track, &options).unwrap();
        assert_valid(&grid, &result, &options);
        assert!(
            result.best.joins.len() <= 3,
            "{target_s} s: {} joins",
            result.best.joins.len()
        );
    }
}

#[test]
fn a_short_song_fits_to_75_percent_with_at_most_three_joins() {
    for bars in [40, 48, 64] {
        let options = FitOptions {
            target_s: bars as f64 * 2.0 * 0.75,
            ..FitOptions::default()
        };
        let (grid, result) = fit(bars, options.clone());
        assert_valid(&grid, &result, &options);
        assert!(
            result.best.joins.len() <= 3,
            "{bars} bars: {:?}",
            result.best.edit.removed()
        );
    }
}

/// `count` bars with no regions, cuts allowed from bar `first` up to bar `count - first`.
fn plain_bars(count: usize, first: usize) -> Bars {
    Bars {
        times: (0..=count).map(|b| b as f64 * 2.0).collect(),
        forced: vec![false; count],
        kept: vec![false; count],
        kept_before: vec![0; count + 1],
        first,
        last: count - first,
        strong_parity: None,
    }
}

fn cut(start_bar: usize, bars: usize, score: f32) -> Cut {
    Cut {
        start_bar,
        end_bar: start_bar + bars,
        start: start_bar * 4,
        end: (start_bar + bars) * 4,
        seconds: bars as f64 * 2.0,
        score,
    }
}

/// The cut sets the search finds for removing `seconds`.
fn found(search: &Search, seconds: f64) -> Vec<usize> {
    let end = search
        .reached()
        .into_iter()
        .find(|r| f64::from(r.seconds) == seconds)
        .expect("reachable");
    search.cuts_of(&end)
}

#[test]
fn one_long_cut_beats_several_short_ones_unless_they_are_clearly_better() {
    let bars = plain_bars(40, 4);
    let options = FitOptions::default();
    // Removing 16 bars: one 16-bar cut, or two 8-bar cuts 4 bars apart. The two win when each
    // scores more than the join cost (2) above the one.
    for (short_score, expected) in [(1.0, vec![0]), (1.5, vec![0]), (3.0, vec![1, 2])] {
        let cuts = vec![
            cut(8, 16, 0.0),
            cut(8, 8, short_score),
            cut(20, 8, short_score),
        ];
        let per_join = per_join_charge(&cuts, options.join_cost);
        let search = Search::run(&bars, &cuts, &options, 40.0, per_join);
        assert_eq!(
            found(&search, 32.0),
            expected,
            "short cuts scoring {short_score}"
        );
    }
    // Without a charge per join, two cuts as good as the best win over one a little worse.
    let cuts = vec![cut(8, 16, 0.0), cut(8, 8, 0.5), cut(20, 8, 0.5)];
    let search = Search::run(&bars, &cuts, &options, 40.0, per_join_charge(&cuts, 0.0));
    assert_eq!(found(&search, 32.0), vec![1, 2]);
}

/// The DP against brute force over every subset of a small set of cuts.
#[test]
fn the_search_finds_the_best_value_for_each_length() {
    let mut bars = plain_bars(12, 0);
    bars.last = 12;
    bars.forced[7] = true;
    let cuts = vec![
        cut(1, 1, 0.5),
        cut(1, 2, 2.0),
        cut(3, 1, 1.0),
        cut(4, 2, -1.0),
        cut(6, 1, 3.0),
        cut(6, 2, -0.5),
        cut(7, 2, 1.5),
        cut(9, 1, 0.25),
        cut(2, 8, 1.0),
    ];
    let options = FitOptions {
        min_bars_between_joins: 1,
        ..FitOptions::default()
    };
    let per_join = 0.75;
    let search = Search::run(&bars, &cuts, &options, 24.0, per_join);
    // Brute force: subsets whose cuts are separated by at least one kept bar and remove bar 7.
    let mut best: std::collections::HashMap<u64, f32> = std::collections::HashMap::new();
    for mask in 0u32..(1 << cuts.len()) {
        let mut chosen: Vec<&Cut> = (0..cuts.len())
            .filter(|i| mask & (1 << i) != 0)
            .map(|i| &cuts[i])
            .collect();
        chosen.sort_by_key(|c| c.start_bar);
        let apart = chosen.windows(2).all(|w| w[1].start_bar > w[0].end_bar);
        let forced = chosen.iter().any(|c| (c.start_bar..c.end_bar).contains(&7));
        if !apart || !forced {
            continue;
        }
        let seconds: f64 = chosen.iter().map(|c| c.seconds).sum();
        let value: f32 = chosen.iter().map(|c| c.score - per_join).sum();
        let key = seconds as u64;
        if best.get(&key).is_none_or(|&b| value > b) {
            best.insert(key, value);
        }
    }
    let reached = search.reached();
    for end in &reached {
        let key = end.seconds as u64;
        assert_eq!(Some(&end.value), best.get(&key), "{key} s");
        let taken = search.cuts_of(end);
        let value: f32 = taken.iter().map(|&c| cuts[c].score - per_join).sum();
        assert_eq!(value, end.value, "{key} s: {taken:?}");
    }
    assert_eq!(reached.len(), best.len());
}

#[test]
fn section_cuts_lie_on_phrase_boundaries_within_the_budget() {
    let short = |s: usize, e: usize| DEFAULT_LENGTHS.contains(&(e - s));
    // (bars, phrase expected): phrases double as the track grows.
    for (count, phrase) in [
        (64, 4),
        (120, 4),
        (200, 8),
        (300, 16),
        (600, 32),
        (1000, 64),
    ] {
        let (grid, _) = song(count);
        let options = FitOptions::default();
        let bars = bars_of(&grid, &grid.bar_starts(), &options);
        let spans = candidate_spans(&bars, &options, f64::INFINITY);
        let sections: Vec<(usize, usize)> = spans
            .iter()
            .copied()
            .filter(|&(s, e)| !short(s, e))
            .collect();
        assert!(
            sections.len() <= MAX_SECTION_CUTS,
            "{count} bars: {}",
            sections.len()
        );
        let boundary = |b: usize| b.is_multiple_of(phrase) || b == 4 || b == count - 4;
        assert!(
            sections.iter().all(|&(s, e)| boundary(s) && boundary(e)),
            "{count} bars"
        );
        assert!(
            sections.contains(&(4, count - 4)),
            "{count} bars: the whole middle"
        );
        // The finest phrase that fits the budget: every pair of its boundaries is there.
        let ends: Vec<usize> = (4..=count - 4).filter(|&b| boundary(b)).collect();
        let pairs = ends.len() * (ends.len() - 1) / 2;
        let short_pairs = ends
            .iter()
            .enumerate()
            .map(|(i, &s)| ends[i + 1..].iter().filter(|&&e| short(s, e)).count())
            .sum::<usize>();
        assert_eq!(sections.len(), pairs - short_pairs, "{count} bars");
        let shorts = spans.len() - sections.len();
        assert_eq!(
            shorts,
            (4..count - 4)
                .map(|s| DEFAULT_LENGTHS
                    .iter()
                    .filter(|&&l| s + l <= count - 4)
                    .count())
                .sum::<usize>()
        );
    }
    // Keep- and remove-region edges are boundaries too: a section cut can end where a kept
    // stretch begins (bar 21, at 42 s) and start where it ends (bar 30).
    let (grid, _) = song(64);
    let options = FitOptions {
        keep_regions: vec![42.5..59.0],
        ..FitOptions::default()
    };
    let bars = bars_of(&grid, &grid.bar_starts(), &options);
    let spans = candidate_spans(&bars, &options, f64::INFINITY);
    assert!(spans.contains(&(4, 21)) && spans.contains(&(30, 60)));
    assert!(
        spans.iter().all(|&(s, e)| e <= 21 || s >= 30),
        "a keep region was cut"
    );
}

#[test]
fn a_cancelled_fit_stops_with_a_typed_error() {
    let (grid, features) = song(64);
    let track = Track {
        features: &features,
        meter: grid.meter,
    };
    let options = FitOptions {
        target_s: grid.duration_s * 0.7,
        ..FitOptions::default()
    };
    let cancel = std::sync::atomic::AtomicBool::new(true);
    let err = fit_to_length_unless(&tiny(), &grid, track, &options, &cancel).unwrap_err();
    assert!(matches!(err, FitError::Cancelled), "{err}");
    // Not cancelled, the same call fits.
    cancel.store(false, std::sync::atomic::Ordering::Release);
    fit_to_length_unless(&tiny(), &grid, track, &options, &cancel).unwrap();
}
