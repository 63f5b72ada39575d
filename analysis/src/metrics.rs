//! Beat-tracking evaluation, following the definitions of `mir_eval.beat` (Raffel et al.,
//! "mir_eval: A Transparent Implementation of Common MIR Metrics", ISMIR 2014; metrics from
//! Davies, Degara & Plumbley, "Evaluation Methods for Musical Audio Beat Tracking Algorithms",
//! QMUL tech. report C4DM-TR-09-06, 2009).
//!
//! - [`trim_beats`]: beats before 5 s are discarded before scoring (the listener needs time to
//!   find the pulse);
//! - [`f_measure`]: an estimated beat is correct when it lies within ±70 ms of a reference beat,
//!   each reference matching at most one estimate (maximum one-to-one matching);
//! - [`continuity`]: CMLc/CMLt (correct metrical level: each beat within 17.5 % of the beat
//!   period in phase, its preceding interval within 17.5 % of the reference one; `c` is the
//!   longest continuous run, `t` the total) and AMLc/AMLt (the same, allowing double tempo,
//!   half tempo on either beat, and the off-beat);
//! - [`evaluate`] and [`downbeat_f_measure`]: trimming and scoring in one call, downbeats by the
//!   same F-measure rule.
//!
//! The numbers match mir_eval 0.8.2 to within 1e-12 on the cases in the tests (produced by
//! `bench/mir_eval_cases.py`). Like mir_eval, scores are 0 when either sequence is empty (or, for
//! continuity, has fewer than two beats). Unlike mir_eval, non-finite times are refused.

use serde::{Deserialize, Serialize};

/// Beats before this time (seconds) are discarded by [`trim_beats`].
pub const MIN_BEAT_TIME_S: f64 = 5.0;
/// Half-width of the F-measure's tolerance window, seconds.
pub const F_MEASURE_WINDOW_S: f64 = 0.07;
/// Largest phase error of a continuity-correct beat, as a fraction of the reference interval.
pub const PHASE_THRESHOLD: f64 = 0.175;
/// Largest relative error of a continuity-correct inter-beat interval.
pub const PERIOD_THRESHOLD: f64 = 0.175;
/// Latest accepted beat time, seconds (mir_eval's guard against times in samples or ms).
pub const MAX_TIME_S: f64 = 30_000.0;

/// Which of the two sequences a problem was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sequence {
    Reference,
    Estimate,
}

impl std::fmt::Display for Sequence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Sequence::Reference => "reference",
            Sequence::Estimate => "estimated",
        })
    }
}

/// Why a sequence of beat times cannot be scored.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MetricsError {
    #[error("{sequence} beat {index} is at {time} s; expected a finite time of at most {max} s")]
    InvalidTime {
        sequence: Sequence,
        index: usize,
        time: f64,
        max: f64,
    },
    #[error(
        "{sequence} beat {index} at {time} s comes before the previous one at {previous} s; expected times in increasing order"
    )]
    NotIncreasing {
        sequence: Sequence,
        index: usize,
        time: f64,
        previous: f64,
    },
}

/// The four continuity scores, each in [0, 1].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Continuity {
    /// Correct metrical level, longest continuous run.
    pub cml_c: f64,
    /// Correct metrical level, total.
    pub cml_t: f64,
    /// Any metrical level, longest continuous run.
    pub aml_c: f64,
    /// Any metrical level, total.
    pub aml_t: f64,
}

/// Everything [`evaluate`] reports for one track.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BeatScores {
    pub f_measure: f64,
    pub cml_c: f64,
    pub cml_t: f64,
    pub aml_c: f64,
    pub aml_t: f64,
}

/// The beats at or after [`MIN_BEAT_TIME_S`].
pub fn trim_beats(beats: &[f64]) -> Vec<f64> {
    trim_beats_before(beats, MIN_BEAT_TIME_S)
}

/// The beats at or after `min_time_s`.
pub fn trim_beats_before(beats: &[f64], min_time_s: f64) -> Vec<f64> {
    beats.iter().copied().filter(|&t| t >= min_time_s).collect()
}

/// Trims both sequences and computes the F-measure and the continuity scores, as
/// `mir_eval.beat.evaluate` does.
pub fn evaluate(reference: &[f64], estimated: &[f64]) -> Result<BeatScores, MetricsError> {
    let (reference, estimated) = (trim_beats(reference), trim_beats(estimated));
    let f_measure = f_measure(&reference, &estimated)?;
    let c = continuity(&reference, &estimated)?;
    Ok(BeatScores {
        f_measure,
        cml_c: c.cml_c,
        cml_t: c.cml_t,
        aml_c: c.aml_c,
        aml_t: c.aml_t,
    })
}

/// Downbeat F-measure: both downbeat sequences trimmed, then the beat F-measure rule
/// (±70 ms, one-to-one).
pub fn downbeat_f_measure(reference: &[f64], estimated: &[f64]) -> Result<f64, MetricsError> {
    f_measure(&trim_beats(reference), &trim_beats(estimated))
}

/// F-measure with the ±[`F_MEASURE_WINDOW_S`] window (no trimming).
pub fn f_measure(reference: &[f64], estimated: &[f64]) -> Result<f64, MetricsError> {
    f_measure_within(reference, estimated, F_MEASURE_WINDOW_S)
}

/// F-measure with a window of ±`window_s` seconds (inclusive), no trimming.
pub fn f_measure_within(
    reference: &[f64],
    estimated: &[f64],
    window_s: f64,
) -> Result<f64, MetricsError> {
    validate(reference, Sequence::Reference)?;
    validate(estimated, Sequence::Estimate)?;
    if reference.is_empty() || estimated.is_empty() {
        return Ok(0.0);
    }
    let matched = matched_pairs(reference, estimated, window_s) as f64;
    let precision = matched / estimated.len() as f64;
    let recall = matched / reference.len() as f64;
    if precision == 0.0 && recall == 0.0 {
        return Ok(0.0);
    }
    Ok(2.0 * precision * recall / (precision + recall))
}

/// Size of a maximum one-to-one matching between the two sorted sequences where a pair
/// matches when `|reference - estimate| <= window_s`.
///
/// mir_eval runs Hopcroft-Karp on the general bipartite graph; here each estimate's
/// neighbours are a contiguous run of the sorted references and both ends of that run move
/// forward with the estimate, and for such (interval) graphs matching every estimate to the
/// earliest free reference it reaches is a maximum matching.
fn matched_pairs(reference: &[f64], estimated: &[f64], window_s: f64) -> usize {
    let mut next = 0;
    let mut matched = 0;
    for &e in estimated {
        let (low, high) = (e - window_s, e + window_s);
        while next < reference.len() && reference[next] < low {
            next += 1;
        }
        if next < reference.len() && reference[next] <= high {
            matched += 1;
            next += 1;
        }
    }
    matched
}

/// CMLc, CMLt, AMLc and AMLt with mir_eval's default thresholds (no trimming).
pub fn continuity(reference: &[f64], estimated: &[f64]) -> Result<Continuity, MetricsError> {
    continuity_with(reference, estimated, PHASE_THRESHOLD, PERIOD_THRESHOLD)
}

/// Continuity scores with explicit phase and period thresholds (fractions of the reference
/// inter-beat interval), no trimming.
pub fn continuity_with(
    reference: &[f64],
    estimated: &[f64],
    phase_threshold: f64,
    period_threshold: f64,
) -> Result<Continuity, MetricsError> {
    validate(reference, Sequence::Reference)?;
    validate(estimated, Sequence::Estimate)?;
    if reference.len() < 2 || estimated.len() < 2 {
        return Ok(Continuity {
            cml_c: 0.0,
            cml_t: 0.0,
            aml_c: 0.0,
            aml_t: 0.0,
        });
    }
    let variations = metrical_variations(reference);
    let scores: Vec<(f64, f64)> = variations
        .iter()
        .map(|variation| {
            continuity_at_level(variation, estimated, phase_threshold, period_threshold)
        })
        .collect();
    let best =
        |pick: fn(&(f64, f64)) -> f64| scores.iter().map(pick).fold(f64::NEG_INFINITY, f64::max);
    Ok(Continuity {
        cml_c: scores[0].0,
        cml_t: scores[0].1,
        aml_c: best(|s| s.0),
        aml_t: best(|s| s.1),
    })
}

/// The reference and the metrical levels AML also accepts: the off-beat (midpoints), double
/// tempo (beats and midpoints), and half tempo on the even and on the odd beats.
fn metrical_variations(reference: &[f64]) -> [Vec<f64>; 5] {
    let midpoint = |w: &[f64]| w[0] + 0.5 * (w[1] - w[0]);
    let off_beat: Vec<f64> = reference.windows(2).map(midpoint).collect();
    let mut double = Vec::with_capacity(2 * reference.len());
    for (i, &beat) in reference.iter().enumerate() {
        double.push(beat);
        if let Some(&mid) = off_beat.get(i) {
            double.push(mid);
        }
    }
    let half_even = reference.iter().step_by(2).copied().collect();
    let half_odd = reference.iter().skip(1).step_by(2).copied().collect();
    [reference.to_vec(), off_beat, double, half_even, half_odd]
}

/// (continuous, total) accuracy of `estimated` against one metrical level of the reference.
///
/// An estimate is correct when its nearest unused reference beat is within `phase_threshold`
/// of the reference interval and its own interval (to the previous estimate; to the next one
/// for the first estimate or the first reference beat) is within `period_threshold` of the
/// reference interval. Both accuracies are divided by the longer of the two sequences, as in
/// mir_eval.
fn continuity_at_level(
    reference: &[f64],
    estimated: &[f64],
    phase_threshold: f64,
    period_threshold: f64,
) -> (f64, f64) {
    let length = reference.len().max(estimated.len());
    let mut used = vec![false; reference.len()];
    let mut correct = vec![false; length];
    for (m, &e) in estimated.iter().enumerate() {
        let nearest = nearest_index(reference, e);
        if used[nearest] {
            continue;
        }
        let distance = (e - reference[nearest]).abs();
        let (phase, period) = if m == 0 || nearest == 0 {
            // Look forward where there is nothing behind.
            let reference_interval = if nearest + 1 < reference.len() {
                reference[nearest + 1] - reference[nearest]
            } else {
                // NOTE: mir_eval indexes `nearest - 1` here, which wraps to the last beat when
                // the level has a single beat; that makes the interval 0.
                let previous = nearest.checked_sub(1).unwrap_or(reference.len() - 1);
                reference[nearest] - reference[previous]
            };
            let estimated_interval = if m + 1 < estimated.len() {
                estimated[m + 1] - e
            } else {
                e - estimated[m - 1]
            };
            if reference_interval == 0.0 {
                // Repeated reference beats: mir_eval's special case.
                let phase = if distance == 0.0 { 1.0 } else { f64::INFINITY };
                let period = if estimated_interval == 0.0 {
                    0.0
                } else {
                    f64::INFINITY
                };
                (phase, period)
            } else {
                (
                    (distance / reference_interval).abs(),
                    (1.0 - estimated_interval / reference_interval).abs(),
                )
            }
        } else {
            let reference_interval = reference[nearest] - reference[nearest - 1];
            let estimated_interval = e - estimated[m - 1];
            (
                (distance / reference_interval).abs(),
                (1.0 - estimated_interval / reference_interval).abs(),
            )
        };
        if phase < phase_threshold && period < period_threshold {
            used[nearest] = true;
            correct[m] = true;
        }
    }
    let mut longest = 0usize;
    let mut run = 0usize;
    for &ok in &correct {
        run = if ok { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let total = correct.iter().filter(|&&ok| ok).count();
    (longest as f64 / length as f64, total as f64 / length as f64)
}

/// Index of the reference beat nearest to `time`; the first such index on ties (numpy's
/// `argmin`). `reference` is sorted and not empty.
fn nearest_index(reference: &[f64], time: f64) -> usize {
    let above = reference.partition_point(|&r| r < time);
    let distance = |i: usize| (time - reference[i]).abs();
    let below_is_nearer =
        above == reference.len() || (above > 0 && distance(above - 1) <= distance(above));
    let mut best = if below_is_nearer { above - 1 } else { above };
    // Distances only fall towards `time`, so equal ones can only sit just before `best`.
    while best > 0 && distance(best - 1) == distance(best) {
        best -= 1;
    }
    best
}

fn validate(beats: &[f64], sequence: Sequence) -> Result<(), MetricsError> {
    let mut previous = f64::NEG_INFINITY;
    for (index, &time) in beats.iter().enumerate() {
        if !time.is_finite() || time > MAX_TIME_S {
            return Err(MetricsError::InvalidTime {
                sequence,
                index,
                time,
                max: MAX_TIME_S,
            });
        }
        if time < previous {
            return Err(MetricsError::NotIncreasing {
                sequence,
                index,
                time,
                previous,
            });
        }
        previous = time;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regular(start: f64, period: f64, count: usize) -> Vec<f64> {
        (0..count).map(|i| start + i as f64 * period).collect()
    }

    /// Period moving linearly from `period0` to `period1` over the beats.
    fn ramp(start: f64, period0: f64, period1: f64, count: usize) -> Vec<f64> {
        let mut t = start;
        (0..count)
            .map(|i| {
                let beat = t;
                t += period0 + (period1 - period0) * (i as f64 / (count - 1) as f64);
                beat
            })
            .collect()
    }

    /// The cases of `bench/mir_eval_cases.py`, built with the same float operations.
    fn cases() -> Vec<(&'static str, Vec<f64>, Vec<f64>)> {
        let reference = regular(0.25, 0.5, 70);
        let shifted = |d: f64| reference.iter().map(|t| t + d).collect::<Vec<f64>>();
        let ramped = ramp(0.3, 0.6, 0.45, 70);
        let mut extra: Vec<f64> = reference.clone();
        extra.extend(reference.iter().step_by(7).map(|t| t + 0.21));
        extra.sort_by(f64::total_cmp);
        vec![
            ("identical", reference.clone(), reference.clone()),
            ("shifted_50ms", reference.clone(), shifted(0.05)),
            ("shifted_100ms", reference.clone(), shifted(0.1)),
            (
                "jittered",
                reference.clone(),
                reference
                    .iter()
                    .enumerate()
                    .map(|(i, t)| t + 0.075 * (1.7 * i as f64).sin())
                    .collect(),
            ),
            ("double_time", reference.clone(), regular(0.25, 0.25, 139)),
            ("half_time", reference.clone(), regular(0.25, 1.0, 35)),
            ("half_time_odd", reference.clone(), regular(0.75, 1.0, 34)),
            ("off_beat", reference.clone(), regular(0.5, 0.5, 69)),
            (
                "missing_every_5th",
                reference.clone(),
                reference
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| i % 5 != 4)
                    .map(|(_, &t)| t)
                    .collect(),
            ),
            (
                "gap_12_to_20s",
                reference.clone(),
                reference
                    .iter()
                    .copied()
                    .filter(|&t| !(12.0 < t && t < 20.0))
                    .collect(),
            ),
            ("extra_beats", reference.clone(), extra),
            ("empty_estimate", reference.clone(), vec![]),
            ("one_estimate", reference.clone(), vec![10.25]),
            (
                "ramp_jittered",
                ramped.clone(),
                ramped
                    .iter()
                    .enumerate()
                    .map(|(i, t)| t + 0.072 * (0.9 * i as f64).sin())
                    .collect(),
            ),
            (
                "tempo_ramp_vs_constant",
                ramped.clone(),
                regular(0.3, 0.52, 70),
            ),
            (
                "ramp_tracked_late",
                ramped.clone(),
                ramped.iter().map(|t| t + 0.03).collect(),
            ),
            ("two_beats", vec![6.0, 6.5], vec![6.0, 6.5]),
            ("three_beats", vec![6.0, 6.5, 7.0], vec![6.02, 6.51, 7.3]),
            (
                "downbeats_every_4th",
                regular(0.25, 2.0, 18),
                regular(0.25, 0.5, 70).into_iter().step_by(4).collect(),
            ),
            (
                "downbeats_wrong_phase",
                regular(0.25, 2.0, 18),
                regular(1.25, 2.0, 17),
            ),
        ]
    }

    /// `mir_eval.beat.evaluate` (mir_eval 0.8.2, numpy 2.4.6) on [`cases`]: F-measure, CMLc,
    /// CMLt, AMLc, AMLt, printed by `bench/.venv/bin/python bench/mir_eval_cases.py`.
    const MIR_EVAL: [(&str, [f64; 5]); 20] = [
        ("identical", [1.0, 1.0, 1.0, 1.0, 1.0]),
        ("shifted_50ms", [1.0, 1.0, 1.0, 1.0, 1.0]),
        ("shifted_100ms", [0.0, 0.0, 0.0, 0.0, 0.0]),
        (
            "jittered",
            [
                0.75,
                0.08333333333333333,
                0.5666666666666667,
                0.08333333333333333,
                0.5666666666666667,
            ],
        ),
        (
            "double_time",
            [
                0.6666666666666666,
                0.0,
                0.0,
                0.9916666666666667,
                0.9916666666666667,
            ],
        ),
        ("half_time", [0.6666666666666666, 0.0, 0.0, 1.0, 1.0]),
        (
            "half_time_odd",
            [
                0.6516853932584269,
                0.0,
                0.0,
                0.9666666666666667,
                0.9666666666666667,
            ],
        ),
        (
            "off_beat",
            [0.0, 0.0, 0.0, 0.9833333333333333, 0.9833333333333333],
        ),
        (
            "missing_every_5th",
            [
                0.888888888888889,
                0.06666666666666667,
                0.6166666666666667,
                0.06666666666666667,
                0.6166666666666667,
            ],
        ),
        (
            "gap_12_to_20s",
            [
                0.846153846153846,
                0.48333333333333334,
                0.7166666666666667,
                0.48333333333333334,
                0.7166666666666667,
            ],
        ),
        (
            "extra_beats",
            [
                0.9375,
                0.08823529411764706,
                0.7647058823529411,
                0.08823529411764706,
                0.7647058823529411,
            ],
        ),
        ("empty_estimate", [0.0, 0.0, 0.0, 0.0, 0.0]),
        ("one_estimate", [0.03278688524590164, 0.0, 0.0, 0.0, 0.0]),
        ("ramp_jittered", [0.8548387096774194, 1.0, 1.0, 1.0, 1.0]),
        (
            "tempo_ramp_vs_constant",
            [
                0.29508196721311475,
                0.20967741935483872,
                0.3548387096774194,
                0.20967741935483872,
                0.3548387096774194,
            ],
        ),
        ("ramp_tracked_late", [1.0, 1.0, 1.0, 1.0, 1.0]),
        ("two_beats", [1.0, 1.0, 1.0, 1.0, 1.0]),
        (
            "three_beats",
            [
                0.6666666666666666,
                0.6666666666666666,
                0.6666666666666666,
                0.6666666666666666,
                0.6666666666666666,
            ],
        ),
        ("downbeats_every_4th", [1.0, 1.0, 1.0, 1.0, 1.0]),
        (
            "downbeats_wrong_phase",
            [0.0, 0.0, 0.0, 0.9333333333333333, 0.9333333333333333],
        ),
    ];

    #[test]
    fn matches_mir_eval_on_every_case() {
        let cases = cases();
        assert_eq!(cases.len(), MIR_EVAL.len());
        for ((name, reference, estimated), (expected_name, expected)) in cases.iter().zip(MIR_EVAL)
        {
            assert_eq!(*name, expected_name);
            let s = evaluate(reference, estimated).unwrap();
            let actual = [s.f_measure, s.cml_c, s.cml_t, s.aml_c, s.aml_t];
            for (k, (a, e)) in actual.iter().zip(expected).enumerate() {
                assert!(
                    (a - e).abs() < 1e-6,
                    "{name} score {k}: {a} vs mir_eval {e}"
                );
            }
        }
    }

    #[test]
    fn downbeat_f_uses_the_beat_rule_after_trimming() {
        let reference = regular(0.25, 2.0, 18);
        assert_eq!(downbeat_f_measure(&reference, &reference).unwrap(), 1.0);
        // Estimates before 5 s do not count against the estimate.
        let mut early = vec![0.1, 1.0, 2.0];
        early.extend(reference.iter().filter(|&&t| t >= 5.0));
        assert_eq!(downbeat_f_measure(&reference, &early).unwrap(), 1.0);
        // Downbeats a beat late are all wrong.
        let late: Vec<f64> = reference.iter().map(|t| t + 0.5).collect();
        assert_eq!(downbeat_f_measure(&reference, &late).unwrap(), 0.0);
    }

    #[test]
    fn window_edges_are_inclusive_and_matching_is_one_to_one() {
        // Two estimates near one reference: only one matches.
        let f = f_measure(&[10.0], &[9.97, 10.03]).unwrap();
        assert!((f - 2.0 / 3.0).abs() < 1e-12);
        // Pairing each estimate with its nearest reference would give 10.06 <-> 10.1 and leave
        // 10.15 unmatched; the maximum matching pairs 10.06 <-> 10.0 and 10.15 <-> 10.1.
        assert_eq!(f_measure(&[10.0, 10.1], &[10.06, 10.15]).unwrap(), 1.0);
        assert_eq!(f_measure(&[10.0], &[10.0625]).unwrap(), 1.0);
        assert_eq!(f_measure(&[10.0], &[10.0 + 0.0701]).unwrap(), 0.0);
    }

    #[test]
    fn trimming_keeps_beats_from_five_seconds_on() {
        assert_eq!(trim_beats(&[1.0, 4.999, 5.0, 7.5]), vec![5.0, 7.5]);
        assert!(trim_beats(&[]).is_empty());
    }

    #[test]
    fn bad_sequences_get_typed_errors() {
        assert_eq!(
            f_measure(&[1.0, 0.5], &[1.0]).unwrap_err(),
            MetricsError::NotIncreasing {
                sequence: Sequence::Reference,
                index: 1,
                time: 0.5,
                previous: 1.0
            }
        );
        assert!(matches!(
            continuity(&[1.0, 2.0], &[1.0, f64::NAN]),
            Err(MetricsError::InvalidTime {
                sequence: Sequence::Estimate,
                index: 1,
                ..
            })
        ));
        assert!(matches!(
            evaluate(&[6.0, 40_000.0], &[6.0]),
            Err(MetricsError::InvalidTime { index: 1, .. })
        ));
    }

    #[test]
    fn nearest_index_prefers_the_first_of_equal_distances() {
        assert_eq!(nearest_index(&[1.0, 2.0, 3.0], 2.5), 1);
        assert_eq!(nearest_index(&[1.0, 2.0, 2.0, 3.0], 2.1), 1);
        assert_eq!(nearest_index(&[1.0, 2.0], 9.0), 1);
        assert_eq!(nearest_index(&[1.0, 2.0], -9.0), 0);
    }
}
