//! Where each bar starts, decided over the beats once they are known: a small hidden Markov
//! model whose state is where the bar lines stand among the beats, observing at every beat the
//! network's downbeat probability and how much the harmony changes there.
//!
//! The network alone places downbeats well on the music it was trained on and poorly on
//! recorded rock (it finds the beats and then picks the wrong one of them). Harmony is the
//! classic cue that does not depend on the instrumentation: chords change on bar lines far more
//! often than between them (Goto & Muraoka 1999; Papadopoulos & Peeters 2011). Deciding the
//! bar position over beat-synchronous evidence is what madmom's `DBNBarTrackingProcessor` does
//! (Krebs, Böck & Widmer 2016); here the evidence is two numbers per beat:
//!
//! - `downbeat`: the log-odds that a beat is a downbeat, from the network's downbeat and beat
//!   probabilities at the beat ([`downbeat_log_odds`]);
//! - `change`: the cosine distance between the beat's mean chroma and the previous beat's
//!   (the `chroma` features, [`chroma_change`]), standardised over the beats.
//!
//! The meter comes from the tempo × bar-position tracker. The hidden state is the offset (0
//! to `meter - 1` beats) from the beats counted in that meter ([`counted_positions`]: a gap
//! of two beat periods, a beat the tracker skipped, counts two); it holds from beat to beat
//! and may jump at a small cost ([`PHASE_JUMP`]), decided by Viterbi over all the beats so far
//! ([`decide_positions`]). The count is the reference rather than the tracker's own positions
//! because on unfamiliar music the tracker moves its bar lines back and forth, and each move
//! would cost a jump (the plugin's downbeat F on the real set: 0.29 from the tracker's
//! positions, 0.44 from the count; offline, where the decoder's positions are steadier, both
//! give 0.54). [`place_bars`] does it for a grid and its features: the offline tracker once
//! per track, the plugin each time its capture gains a beat (so the capture's bar lines are
//! always the best reading of everything heard, and only the bar features are rewritten).
//! The three constants were chosen on the real-music development set and the synthetic
//! evaluation set (`analysis/shipped/BEATS.md`).
//!
//! One cue comes from outside the music: where a song starts. A song rendered from a sequencer
//! (a DAW project, a tracker module) starts on its first bar line, even when its first note is
//! a pickup later in that bar. So when the beats found run back through the start of a file on
//! their own grid ([`anchored_position`]: within [`ANCHOR_TOLERANCE`] of a beat period, at most
//! [`ANCHOR_REACH`] beats before the first one), the beats are counted from a bar line there,
//! and every beat that falls on a bar line of that grid, followed in time (`anchored_counts`:
//! a beat the tracker added or dropped does not shift it), gets [`ANCHOR_WEIGHT`] of evidence.
//! Chords that change on every bar line elsewhere still outweigh it: a recording trimmed to
//! start on a pickup beat is the case it gets wrong. The plugin's capture starts wherever the
//! host's playback did; there the anchor is the host's own bar line, when the host says where
//! its bars are and its tempo is the music's ([`BarAnchor`] holds until the playback jumps).

use super::bar_decoder::MIN_BPM;
use super::beat_features::{cosine, rewrite_bar_features};
use super::beat_model::Activation;
use cutscore_core::features::BEAT_FEATURES;
use cutscore_core::grid::BeatGrid;

/// Where the mean chroma of a beat sits in its feature row.
pub(crate) const CHROMA_FEATURES: std::ops::Range<usize> = 46..58;

/// Probability that the offset changes at a beat (a bar of another length; split over the
/// other offsets).
pub const PHASE_JUMP: f32 = 0.001;
/// Weight of the network's downbeat log-odds. Small: on recorded music the network is often
/// confidently wrong about which beat starts the bar.
pub const DOWNBEAT_WEIGHT: f32 = 0.1;
/// Weight of the standardised chroma change.
pub const CHANGE_WEIGHT: f32 = 2.0;
/// Floor of the chroma change's spread, so an unchanging chroma (one chord, silence) is not
/// divided by zero.
const MIN_CHANGE_STD: f32 = 1e-3;
/// Downbeat share of the beat probability is clamped to this distance from 0 and 1.
const RATIO_FLOOR: f32 = 0.01;
/// How far, in beat periods, the beats' grid may pass from the anchor and still run through it.
pub const ANCHOR_TOLERANCE: f64 = 0.05;
/// The most beat periods the first beat may lie after the anchor (further, the grid is
/// extrapolated too far to say where it passes).
pub const ANCHOR_REACH: f64 = 16.0;
/// Evidence (log-odds) at every bar line of the anchor's grid. It and the tolerance were
/// chosen on the tracker set's half T and the real set (`analysis/shipped/BEATS.md`, "Bar
/// lines counted from the song's start" and "The anchor's grid followed in time"); the half E
/// was held out to measure them. Chords that change on every bar line elsewhere (2 x their
/// standardised change, about 3.5 a bar against -1.2) outweigh it; at 5 they would not, and at
/// 3 a synthetic song that starts at a random point of its bar and passes the anchor's test by
/// chance lost every bar line.
pub const ANCHOR_WEIGHT: f32 = 2.0;
/// How far, in beat periods, a beat may lie from the anchor's grid (`anchored_counts`) and
/// still be on it: the tracker's own jitter, a frame of the front end (11.6 ms), is 0.04 of a
/// period at 200 BPM, while an off-beat is 0.5 away and an extra beat usually a third or more.
/// Set by that reasoning, not swept.
pub const ANCHOR_FOLLOW_TOLERANCE: f64 = 0.15;
/// Beats of the start of the grid its period and phase are fitted on.
const ANCHOR_FIT_BEATS: usize = 32;
/// How long before the anchor a beat may lie and still be on it: [`ANCHOR_TOLERANCE`] of the
/// slowest tempo's period.
const ANCHOR_EARLY_S: f64 = ANCHOR_TOLERANCE * 60.0 / MIN_BPM;
/// Intervals in a row that make the grid steady where its period and phase are fitted
/// ([`steady_start`]).
const STEADY_INTERVALS: usize = 4;
/// How far a host's tempo (or its double or half) may be from the tracked tempo for the host's
/// bar lines to be the music's ([`host_tempo_agrees`]).
pub const HOST_TEMPO_AGREEMENT: f64 = 0.03;

/// A time where a bar line is believed to lie before the music says so, and until when the audio
/// is continuous with it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BarAnchor {
    /// The bar line, seconds from the start of the audio (before its first beat).
    pub time_s: f64,
    /// The audio from here on does not continue the anchor's timeline (the host's playback
    /// jumped); its bars are placed by the music alone.
    pub until_s: f64,
}

impl BarAnchor {
    /// A song's start: its first bar line, for the whole song.
    pub const SONG_START: Self = Self {
        time_s: 0.0,
        until_s: f64::INFINITY,
    };
}

/// Whether a host (a DAW) playing at `host_bpm` plays music tracked at `tracked_bpm` on its own
/// grid: the tempi agree within [`HOST_TEMPO_AGREEMENT`], or one is twice the other. A track at
/// another tempo than the project's says nothing by the project's bar lines.
pub fn host_tempo_agrees(tracked_bpm: f64, host_bpm: f64) -> bool {
    [0.5, 1.0, 2.0]
        .iter()
        .any(|level| (tracked_bpm / (host_bpm * level) - 1.0).abs() <= HOST_TEMPO_AGREEMENT)
}

/// What one beat says about being a downbeat.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PhaseEvidence {
    /// Log-odds from the network that the beat is a downbeat.
    pub downbeat: f32,
    /// Cosine distance of the beat's mean chroma from the previous beat's (0 for the first).
    pub change: f32,
}

/// Log-odds that a beat is a downbeat: the downbeat's share of the beat probability at the
/// strongest of `around`, the activation frames next to the beat.
pub fn downbeat_log_odds(around: &[Activation]) -> f32 {
    let Some(a) = around.iter().max_by(|a, b| a.beat.total_cmp(&b.beat)) else {
        return 0.0;
    };
    let ratio = (a.downbeat / a.beat.max(1e-6)).clamp(RATIO_FLOOR, 1.0 - RATIO_FLOOR);
    (ratio / (1.0 - ratio)).ln()
}

/// The activation frames within one frame of frame `k`.
pub fn around(activations: &[Activation], k: usize) -> &[Activation] {
    let end = (k + 2).min(activations.len());
    &activations[k.saturating_sub(1).min(end)..end]
}

/// Cosine distance between two chroma vectors (0 when either is silent).
pub fn chroma_change(a: &[f32], b: &[f32]) -> f32 {
    let silent = |v: &[f32]| v.iter().all(|x| x.abs() < 1e-6);
    if silent(a) || silent(b) {
        0.0
    } else {
        (1.0 - cosine(a, b)).max(0.0)
    }
}

/// The evidence of every beat whose features are in `features` (121 values a beat) and
/// whose downbeat log-odds are in `downbeat_log_odds`.
pub fn evidence(features: &[f32], downbeat_log_odds: &[f32]) -> Vec<PhaseEvidence> {
    let mut previous: Option<&[f32]> = None;
    features
        .chunks_exact(BEAT_FEATURES)
        .zip(downbeat_log_odds)
        .map(|(row, &downbeat)| {
            let chroma = &row[CHROMA_FEATURES];
            let change = previous.map_or(0.0, |p| chroma_change(chroma, p));
            previous = Some(chroma);
            PhaseEvidence { downbeat, change }
        })
        .collect()
}

/// Places the bar lines of `grid` over its beats: [`decide_positions`] from the beats counted
/// in `grid`'s meter ([`counted_positions`]) and the evidence of the beats that have features,
/// the beats after those continuing the last offset. When the beats run through `anchor`
/// ([`anchored_position`]) the count starts from there, and the beats on the bar lines of the
/// anchor's grid (`anchored_counts`) up to the anchor's end get [`ANCHOR_WEIGHT`]. When the
/// position of a beat with features changes, the bar features of `features` (the first beats
/// of `grid`, [`BAR_FEATURES`](super::beat_features::BAR_FEATURES)) are rewritten. Returns
/// whether that happened.
pub fn place_bars(
    grid: &mut BeatGrid,
    features: &mut [f32],
    downbeat_log_odds: &[f32],
    anchor: Option<BarAnchor>,
) -> bool {
    let m = grid.meter.max(1) as usize;
    let mut counted = counted_positions(&grid.beats, grid.meter);
    let evidence = evidence(features, downbeat_log_odds);
    let n = evidence.len().min(counted.len());
    let mut anchor_weight = Vec::new();
    if let Some(anchor) = anchor
        && let Some(fit) = anchor_fit(&grid.beats, anchor)
    {
        for c in &mut counted {
            *c = fit.position(*c as usize, grid.meter);
        }
        let held = grid.beats[..n].partition_point(|&t| t < anchor.until_s);
        anchor_weight = anchored_counts(&grid.beats[..held], anchor, fit)
            .into_iter()
            .map(|count| match count {
                Some(k) if k % m == 0 => ANCHOR_WEIGHT,
                _ => 0.0,
            })
            .collect();
    }
    let mut positions = decide_positions(grid.meter, &counted[..n], &evidence[..n], &anchor_weight);
    let offset = match (positions.last(), n.checked_sub(1)) {
        (Some(&p), Some(last)) => (p as usize + m - counted[last] as usize) % m,
        _ => 0,
    };
    positions.extend(
        counted[n..]
            .iter()
            .map(|&c| ((c as usize + offset) % m) as u8),
    );
    // Only beats with features count as moved: the newest beat, placed by the offset alone,
    // takes its position without a rewrite (or the plugin would rescore on every beat).
    let rows = (features.len() / BEAT_FEATURES).min(grid.len());
    let moved = positions[..rows] != grid.beat_in_bar[..rows];
    grid.beat_in_bar = positions;
    if moved {
        rewrite_bar_features(grid, &mut features[..rows * BEAT_FEATURES]);
    }
    moved
}

/// Positions that count the beats from 0, a gap of about `k` beat periods (the median of the
/// last eight) counting `k`: a beat the tracker skipped does not shift the count.
pub fn counted_positions(beats: &[f64], meter: u8) -> Vec<u8> {
    let m = meter.max(1) as usize;
    let mut count = 0usize;
    let mut positions = Vec::with_capacity(beats.len());
    for i in 0..beats.len() {
        if i > 0 {
            // Only the count modulo the meter matters (and a huge gap cannot overflow it).
            count = (count + counted_steps(beats, i) % m) % m;
        }
        positions.push(count as u8);
    }
    positions
}

/// How many beat periods the gap before beat `i` (at least 1) spans: the gap over the median
/// of the (up to) eight gaps before it, rounded.
fn counted_steps(beats: &[f64], i: usize) -> usize {
    let gap = beats[i] - beats[i - 1];
    let mut recent = [0.0f64; 8];
    let known = (i - 1).min(recent.len());
    for (slot, j) in recent.iter_mut().zip(i - known..i) {
        *slot = beats[j] - beats[j - 1];
    }
    let recent = &mut recent[..known];
    if recent.is_empty() {
        return 1;
    }
    recent.sort_by(f64::total_cmp);
    ((gap / recent[known / 2]).round() as usize).max(1)
}

/// The position in a bar of `meter` beats of the first of `beats` when a bar line lies at
/// `anchor`, or `None` when the beats' grid does not run through it (`anchor_fit`).
pub fn anchored_position(beats: &[f64], meter: u8, anchor: BarAnchor) -> Option<u8> {
    anchor_fit(beats, anchor).map(|fit| fit.position(0, meter))
}

/// The beats' grid where it runs through an anchor.
#[derive(Debug, Clone, Copy, PartialEq)]
struct AnchorFit {
    /// Seconds per beat.
    period: f64,
    /// Where the beats' count ([`counted_positions`]) starts on the anchor's grid: beat periods
    /// from the anchor to the first beat when the grid is steady from its start, and in
    /// general the count from the anchor of the first steady beat less its own count (which
    /// a tracker's first beats, before it settled, may make more or less than the time they
    /// span).
    first: i64,
}

impl AnchorFit {
    /// The position in a bar of `meter` beats of a beat the beats' count puts at `counted`.
    fn position(&self, counted: usize, meter: u8) -> u8 {
        (counted as i64 + self.first).rem_euclid(i64::from(meter.max(1))) as u8
    }
}

/// The line fitted (least squares) through [`ANCHOR_FIT_BEATS`] beats before the anchor's end
/// against their count, from the first steady one ([`steady_start`]) at or after the anchor,
/// when it passes within [`ANCHOR_TOLERANCE`] of a beat period of the anchor, at most
/// [`ANCHOR_REACH`] periods before that beat.
fn anchor_fit(beats: &[f64], anchor: BarAnchor) -> Option<AnchorFit> {
    let held = beats.partition_point(|&t| t < anchor.until_s);
    // A bar line the host gave after the capture's start: the beats before it are counted
    // back from the grid fitted after it.
    let after = beats[..held].partition_point(|&t| t < anchor.time_s - ANCHOR_EARLY_S);
    let start = after + steady_start(&beats[after..held]);
    let n = (held - start).min(ANCHOR_FIT_BEATS);
    if n < 2 {
        return None;
    }
    let mut count = 0.0f64;
    let mut points = [(0.0f64, 0.0f64); ANCHOR_FIT_BEATS];
    for (i, point) in points.iter_mut().enumerate().take(n) {
        if i > 0 {
            count += counted_steps(beats, start + i) as f64;
        }
        *point = (count, beats[start + i]);
    }
    let (period, intercept) = fit_line(&points[..n])?;
    // Periods from the anchor to where the fitted grid puts the first steady beat.
    let periods = (intercept - anchor.time_s) / period;
    let whole = periods.round();
    let runs_through = (periods - whole).abs() <= ANCHOR_TOLERANCE;
    let counted: usize = (1..=start).map(|i| counted_steps(beats, i)).sum();
    (runs_through && (0.0..=ANCHOR_REACH).contains(&whole)).then_some(AnchorFit {
        period,
        first: whole as i64 - counted as i64,
    })
}

/// The first of `beats` from which the next [`STEADY_INTERVALS`] intervals all lie within
/// [`ANCHOR_FOLLOW_TOLERANCE`] of their median: the streaming tracker's first beats, before it
/// settles on the music, are not on its grid. 0 where no stretch is that steady.
fn steady_start(beats: &[f64]) -> usize {
    let steady = |window: &[f64]| {
        let mut gaps = [0.0f64; STEADY_INTERVALS];
        for (gap, pair) in gaps.iter_mut().zip(window.windows(2)) {
            *gap = pair[1] - pair[0];
        }
        let mut sorted = gaps;
        sorted.sort_by(f64::total_cmp);
        let median = sorted[STEADY_INTERVALS / 2];
        median > 0.0
            && gaps
                .iter()
                .all(|&g| (g / median - 1.0).abs() <= ANCHOR_FOLLOW_TOLERANCE)
    };
    beats
        .windows(STEADY_INTERVALS + 1)
        .position(steady)
        .unwrap_or(0)
}

/// Slope and intercept of the least-squares line through `(count, time)` points, when the
/// slope is a positive number.
fn fit_line(points: &[(f64, f64)]) -> Option<(f64, f64)> {
    let n = points.len() as f64;
    let mean_count = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_time = points.iter().map(|p| p.1).sum::<f64>() / n;
    let (mut covariance, mut variance) = (0.0, 0.0);
    for &(c, t) in points {
        covariance += (c - mean_count) * (t - mean_time);
        variance += (c - mean_count).powi(2);
    }
    let slope = covariance / variance;
    (slope.is_finite() && slope > 0.0).then_some((slope, mean_time - slope * mean_count))
}

/// How many beat periods after `anchor` each of `beats` lies on the anchor's grid, followed in
/// time, or `None` for a beat off it. The grid is a straight line of time against count: first
/// `fit` (the one through the first beats, [`anchor_fit`]), then, from [`ANCHOR_FIT_BEATS`]
/// beats on it, the one fitted through every beat on it so far. A beat is on it when it lies
/// within [`ANCHOR_FOLLOW_TOLERANCE`] of a period of the line at a whole count later than the
/// last beat that was (the first may lie on the anchor itself). Counted in time rather than
/// beat by beat, a beat the tracker added or dropped (or a stretch it followed on the
/// off-beats) does not shift the bar lines after it; a tempo change ends the grid (the beats
/// after it are off the line).
fn anchored_counts(beats: &[f64], anchor: BarAnchor, fit: AnchorFit) -> Vec<Option<usize>> {
    let mut counts = vec![None; beats.len()];
    // Time = intercept + slope x count, the count from the anchor.
    let (mut slope, mut intercept) = (fit.period, anchor.time_s);
    // The count the next beat on the grid may have at the least (the anchor's own bar line
    // for the first).
    let mut next = 0usize;
    // Sums over the beats on the grid: n, count, time, count², count x time.
    let mut sums = [0.0f64; 5];
    for (slot, &t) in counts.iter_mut().zip(beats) {
        let periods = (t - intercept) / slope;
        let whole = periods.round();
        if whole < next as f64 || (periods - whole).abs() > ANCHOR_FOLLOW_TOLERANCE {
            continue;
        }
        *slot = Some(whole as usize);
        next = whole as usize + 1;
        let c = whole;
        for (sum, v) in sums.iter_mut().zip([1.0, c, t, c * c, c * t]) {
            *sum += v;
        }
        let [n, sc, st, scc, sct] = sums;
        let variance = n * scc - sc * sc;
        if n >= ANCHOR_FIT_BEATS as f64 && variance > 0.0 {
            let fitted = (n * sct - sc * st) / variance;
            if fitted.is_finite() && fitted > 0.0 {
                slope = fitted;
                intercept = (st - slope * sc) / n;
            }
        }
    }
    counts
}

/// Log-probabilities of keeping the offset and of moving to one other offset.
fn transition_costs(meter: usize) -> (f32, f32) {
    (
        (1.0 - PHASE_JUMP).ln(),
        (PHASE_JUMP / (meter - 1).max(1) as f32).ln(),
    )
}

/// Log-belief in each offset before any evidence: the reference positions (offset 0) are as
/// likely as all the others together.
fn start_belief(belief: &mut [f32]) {
    let others = (0.5 / belief.len().saturating_sub(1).max(1) as f32).ln();
    for (o, b) in belief.iter_mut().enumerate() {
        *b = if o == 0 { 0.5f32.ln() } else { others };
    }
}

/// The offset of the highest belief; the smallest on a tie.
fn most_probable(belief: &[f32]) -> usize {
    let mut best = 0;
    for (o, &b) in belief.iter().enumerate() {
        if b > belief[best] {
            best = o;
        }
    }
    best
}

/// The observation score of "downbeat" at each beat, relative to any other position.
fn downbeat_scores(evidence: &[PhaseEvidence]) -> Vec<f32> {
    let n = evidence.len().max(1) as f32;
    let mean = evidence.iter().map(|e| e.change).sum::<f32>() / n;
    let var = evidence
        .iter()
        .map(|e| (e.change - mean).powi(2))
        .sum::<f32>()
        / n;
    let std = var.sqrt().max(MIN_CHANGE_STD);
    evidence
        .iter()
        .map(|e| DOWNBEAT_WEIGHT * e.downbeat + CHANGE_WEIGHT * (e.change - mean) / std)
        .collect()
}

/// The position in the bar of every beat: the positions `reference` moved by the offset (0 to
/// `meter - 1` beats) that Viterbi finds most probable. The offset holds from beat to beat
/// unless the evidence pays for a jump. `bar_line_weight[i]` is more evidence (log-odds) for
/// beat `i` being a bar line, from outside the music (beats past its end: none).
pub fn decide_positions(
    meter: u8,
    reference: &[u8],
    evidence: &[PhaseEvidence],
    bar_line_weight: &[f32],
) -> Vec<u8> {
    let m = meter.max(1) as usize;
    let n = evidence.len().min(reference.len());
    if n == 0 {
        return Vec::new();
    }
    let (stay, jump) = transition_costs(m);
    let reference: Vec<usize> = reference[..n].iter().map(|&p| p as usize % m).collect();
    let mut obs = downbeat_scores(&evidence[..n]);
    for (o, &w) in obs.iter_mut().zip(bar_line_weight) {
        *o += w;
    }
    // Offset `o` puts beat `i` at `(reference[i] + o) % m`: the downbeat when `o` is the
    // reference's distance to the next bar line.
    let observe = |score: &mut [f32], i: usize| score[(m - reference[i]) % m] += obs[i];
    let mut score = vec![0.0f32; m];
    start_belief(&mut score);
    observe(&mut score, 0);
    let mut back = vec![0u8; n * m];
    let mut next = vec![0.0f32; m];
    for i in 1..n {
        for (o, slot) in next.iter_mut().enumerate() {
            let (mut best, mut from) = (f32::NEG_INFINITY, 0);
            for (q, &v) in score.iter().enumerate() {
                let v = v + if q == o { stay } else { jump };
                if v > best {
                    (best, from) = (v, q);
                }
            }
            *slot = best;
            back[i * m + o] = from as u8;
        }
        std::mem::swap(&mut score, &mut next);
        observe(&mut score, i);
    }
    let mut o = most_probable(&score);
    let mut positions = vec![0u8; n];
    for i in (0..n).rev() {
        positions[i] = ((reference[i] + o) % m) as u8;
        o = back[i * m + o] as usize;
    }
    positions
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::beat_features::BAR_FEATURES;

    /// Evidence of `beats` beats whose harmony changes on every `meter`-th beat from `first`,
    /// with a network that is sure the bar starts `wrong` beats later.
    fn chords_against_the_network(
        beats: usize,
        meter: usize,
        first: usize,
        wrong: usize,
    ) -> (Vec<u8>, Vec<PhaseEvidence>) {
        let tracked = (0..beats).map(|i| ((i + meter - (first + wrong) % meter) % meter) as u8);
        let evidence = (0..beats)
            .map(|i| PhaseEvidence {
                downbeat: if (i + meter - (first + wrong) % meter).is_multiple_of(meter) {
                    4.6
                } else {
                    -4.6
                },
                change: if i % meter == first % meter {
                    0.3
                } else {
                    0.02
                },
            })
            .collect();
        (tracked.collect(), evidence)
    }

    fn downbeats(positions: &[u8]) -> Vec<usize> {
        (0..positions.len())
            .filter(|&i| positions[i] == 0)
            .collect()
    }

    #[test]
    fn harmony_moves_the_bar_lines_the_network_misplaced() {
        for meter in [3usize, 4] {
            let (tracked, evidence) = chords_against_the_network(64, meter, 1, 1);
            let positions = decide_positions(meter as u8, &tracked, &evidence, &[]);
            let expected: Vec<usize> = (1..64).step_by(meter).collect();
            assert_eq!(downbeats(&positions), expected, "meter {meter}");
            // Every bar is whole: positions count up one per beat.
            for w in positions.windows(2) {
                assert_eq!(w[1] as usize, (w[0] as usize + 1) % meter);
            }
        }
    }

    #[test]
    fn without_harmony_the_tracker_keeps_its_bar_lines() {
        let tracked: Vec<u8> = (0..40).map(|i| ((i + 2) % 4) as u8).collect();
        let evidence = vec![PhaseEvidence::default(); 40];
        assert_eq!(decide_positions(4, &tracked, &evidence, &[]), tracked);
    }

    #[test]
    fn a_changed_phase_midway_is_followed() {
        // The chords change on beats 0, 4, 8 ... until beat 40, then on 43, 47, ... (a bar of
        // three beats at beat 40), and the tracker counts on regardless.
        let tracked: Vec<u8> = (0..100).map(|i| (i % 4) as u8).collect();
        let evidence: Vec<PhaseEvidence> = (0..100)
            .map(|i| PhaseEvidence {
                downbeat: 0.0,
                change: if (i < 40 && i % 4 == 0) || (i >= 43 && (i - 43) % 4 == 0) {
                    0.3
                } else {
                    0.02
                },
            })
            .collect();
        let found = downbeats(&decide_positions(4, &tracked, &evidence, &[]));
        let expected: Vec<usize> = (0..40).step_by(4).chain((43..100).step_by(4)).collect();
        // The jump may land a bar early or late, but the bars before and after are right.
        let missed = expected.iter().filter(|d| !found.contains(d)).count();
        let extra = found.iter().filter(|d| !expected.contains(d)).count();
        assert!(missed <= 1 && extra <= 1, "found {found:?}");
        assert!(found.contains(&4) && found.contains(&87));
    }

    /// Feature rows whose chroma is C major, switching to G major on the beats in `changes`.
    fn chroma_rows(beats: usize, changes: impl Fn(usize) -> bool) -> Vec<f32> {
        let mut rows = vec![0.0f32; beats * BEAT_FEATURES];
        let mut major_g = false;
        for (i, row) in rows.chunks_exact_mut(BEAT_FEATURES).enumerate() {
            major_g ^= changes(i);
            let notes: &[usize] = if major_g { &[7, 11, 2] } else { &[0, 4, 7] };
            notes
                .iter()
                .for_each(|&n| row[CHROMA_FEATURES.start + n] = 1.0);
        }
        rows
    }

    #[test]
    fn evidence_reads_chroma_change_and_downbeat_share() {
        let rows = chroma_rows(3, |i| i == 1);
        let e = evidence(&rows, &[0.5, -0.5, 0.0]);
        assert_eq!(e[0].change, 0.0);
        assert!(e[1].change > 0.5, "{e:?}");
        assert!(e[2].change < 1e-6, "{e:?}");
        assert_eq!((e[0].downbeat, e[1].downbeat), (0.5, -0.5));
        // A downbeat share of 3/4 is log-odds ln 3.
        let a = Activation {
            beat: 0.8,
            downbeat: 0.6,
        };
        assert!((downbeat_log_odds(&[a]) - 3f32.ln()).abs() < 1e-5);
        let activations = vec![a; 10];
        assert_eq!(around(&activations, 0).len(), 2);
        assert_eq!(around(&activations, 5).len(), 3);
        assert_eq!(around(&activations, 9).len(), 2);
    }

    #[test]
    fn placing_bars_moves_them_to_the_chord_changes_and_rewrites_only_bar_features() {
        // 4/4, chords change on beats 1, 5, 9, ...; the tracker put its bar lines on 0, 4, 8.
        let beats = 48;
        let times: Vec<f64> = (0..beats).map(|i| i as f64 * 0.5).collect();
        let tracked: Vec<u8> = (0..beats).map(|i| (i % 4) as u8).collect();
        let mut grid = BeatGrid::new(times, tracked.clone(), 4, 24.0).unwrap();
        // Features for all but the last beat (incomplete), bar features as the tracker's.
        let complete = beats - 1;
        let mut features = chroma_rows(complete, |i| i % 4 == 1);
        rewrite_bar_features(&grid, &mut features);
        let before = features.clone();
        let log_odds = vec![0.0; complete];
        assert!(place_bars(&mut grid, &mut features, &log_odds, None));
        let downbeats: Vec<usize> = (0..beats).filter(|&i| grid.beat_in_bar[i] == 0).collect();
        assert_eq!(downbeats, (1..beats).step_by(4).collect::<Vec<_>>());
        // The beat without features continues the bar.
        assert_eq!(grid.beat_in_bar[beats - 1], ((beats - 1 + 3) % 4) as u8);
        for (i, (new, old)) in features.iter().zip(&before).enumerate() {
            if !BAR_FEATURES.contains(&(i % BEAT_FEATURES)) {
                assert_eq!(
                    new,
                    old,
                    "feature {} of beat {}",
                    i % BEAT_FEATURES,
                    i / 121
                );
            }
        }
        assert_ne!(features, before);
        // Placing again on the same evidence changes nothing.
        assert!(!place_bars(&mut grid, &mut features, &log_odds, None));
    }

    /// An anchor at `time_s` that holds for good.
    fn at(time_s: f64) -> BarAnchor {
        BarAnchor {
            time_s,
            until_s: f64::INFINITY,
        }
    }

    /// Beats every `period` seconds from `first` seconds, `skip` left out.
    fn beats_from(first: f64, period: f64, n: usize, skip: Option<usize>) -> Vec<f64> {
        (0..n)
            .filter(|&i| Some(i) != skip)
            .map(|i| first + i as f64 * period)
            .collect()
    }

    #[test]
    fn beats_that_run_through_the_anchor_are_counted_from_a_bar_line_there() {
        // Three beats after the anchor, a beat skipped, the beats up to 10 ms off the grid (a
        // frame of the front end is 11.6 ms).
        let mut beats = beats_from(1.5, 0.5, 40, Some(5));
        for (i, t) in beats.iter_mut().enumerate() {
            *t += [-0.01, 0.004, 0.01, -0.006, 0.0][i % 5];
        }
        assert_eq!(anchored_position(&beats, 4, at(0.0)), Some(3));
        assert_eq!(anchored_position(&beats, 3, at(0.0)), Some(0));
        // Beats every 0.5 s from `first` s, a bar line at `anchor` s.
        let from =
            |first, anchor| anchored_position(&beats_from(first, 0.5, 40, None), 4, at(anchor));
        // A file whose beats run off the grid through its start: not anchored.
        assert_eq!(from(1.6, 0.0), None);
        assert_eq!(from(1.52, 0.0), Some(3));
        // Too far from the anchor to extrapolate.
        assert_eq!(from(10.0, 0.0), None);
        // An anchor after the first beats (a host's bar line mid-capture): they are counted
        // back from it. Beats at 1.0, 1.5 and then 2.0, on it.
        assert_eq!(from(1.0, 2.0), Some(2));
        assert_eq!(from(1.25, 2.0), None);
        // The anchor anywhere, not only at 0.
        assert_eq!(from(7.0, 6.0), Some(2));
        assert_eq!(anchored_position(&[1.0], 4, at(0.0)), None);
        assert_eq!(anchored_position(&[], 4, at(0.0)), None);
    }

    #[test]
    fn an_anchor_places_the_bars_where_the_music_does_not_say_and_yields_where_it_does() {
        // 4/4 at 120 BPM, the first beat a pickup one beat after the file's start: the anchor
        // puts the bar lines on beats 3, 7, 11, ...
        let beats = 48;
        let times = beats_from(0.5, 0.5, beats, None);
        let place = |changes: &dyn Fn(usize) -> bool, anchor| {
            let mut grid = BeatGrid::new(times.clone(), vec![0; beats], 4, 24.5).unwrap();
            let mut features = chroma_rows(beats - 1, changes);
            place_bars(&mut grid, &mut features, &vec![0.0; beats - 1], anchor);
            (0..beats)
                .filter(|&i| grid.beat_in_bar[i] == 0)
                .collect::<Vec<_>>()
        };
        let one_chord = |_: usize| false;
        assert_eq!(
            place(&one_chord, Some(BarAnchor::SONG_START)),
            (3..beats).step_by(4).collect::<Vec<_>>()
        );
        // Without the anchor the count starts at the first beat.
        assert_eq!(
            place(&one_chord, None),
            (0..beats).step_by(4).collect::<Vec<_>>()
        );
        // Chords changing on beats 1, 5, 9, ... outweigh it.
        assert_eq!(
            place(&|i: usize| i % 4 == 1, Some(BarAnchor::SONG_START)),
            (1..beats).step_by(4).collect::<Vec<_>>()
        );
    }

    #[test]
    fn beats_before_the_tracker_settles_do_not_hide_the_anchor() {
        // What the streaming tracker reports from a song's start (seen on the tracker set's
        // `tecnoballz_over_theme`, 125 BPM, a bar line at 0): six beats while it settles, off
        // the grid and at no steady period, then every beat from 3.84 s (count 8).
        let mut beats = vec![0.023, 0.418, 0.766, 1.416, 2.485, 3.111];
        let settled = beats_from(3.84, 0.48, 60, None);
        beats.extend(&settled);
        // The settled beats' own count from the anchor: 8, a bar line.
        assert_eq!(anchored_position(&settled, 4, at(0.0)), Some(0));
        // With the beats before them counted, the bar lines stay on the anchor's grid.
        let bar_lines: Vec<f64> = bar_lines_at_zero(&beats)
            .into_iter()
            .filter(|&t| t > 3.5)
            .collect();
        assert_eq!(bar_lines.len(), 15, "{bar_lines:?}");
        for t in bar_lines {
            let bars = t / 1.92;
            assert!((bars - bars.round()).abs() < 1e-6, "bar line at {t} s");
        }
        // The grid's phase is still checked: settled beats on the off-beats do not run through
        // the anchor.
        let off: Vec<f64> = beats[..6]
            .iter()
            .copied()
            .chain(beats_from(4.08, 0.48, 60, None))
            .collect();
        assert_eq!(anchored_position(&off, 4, at(0.0)), None);
    }

    /// The times of the bar lines placed over `beats` in 4/4 with no harmony or downbeats to go
    /// by and a bar line at 0 s.
    fn bar_lines_at_zero(beats: &[f64]) -> Vec<f64> {
        let n = beats.len();
        let end = beats.last().map_or(1.0, |t| t + 1.0);
        let mut grid = BeatGrid::new(beats.to_vec(), vec![0; n], 4, end).unwrap();
        let mut features = chroma_rows(n, |_| false);
        place_bars(&mut grid, &mut features, &vec![0.0; n], Some(at(0.0)));
        grid.bar_starts().iter().map(|&i| beats[i]).collect()
    }

    /// The counts of `beats` on the grid of a bar line at 0 s, which they must run through.
    fn followed(beats: &[f64]) -> Vec<Option<usize>> {
        anchored_counts(beats, at(0.0), anchor_fit(beats, at(0.0)).unwrap())
    }

    #[test]
    fn the_anchors_grid_is_followed_in_time_past_beats_off_it() {
        // Beats every 0.5 s from 0.5 s (a bar line at 0), an extra beat a third of a period
        // after beat 40 (count 41), beats 60-67 on the off-beats.
        let mut beats: Vec<f64> = (1..=100)
            .map(|k| {
                let t = f64::from(k) * 0.5;
                if (60..68).contains(&k) { t + 0.25 } else { t }
            })
            .collect();
        beats.insert(41, 41.0 * 0.5 + 0.5 / 3.0);
        let counts = followed(&beats);
        let on_grid: Vec<usize> = counts.iter().flatten().copied().collect();
        let expected: Vec<usize> = (1..=100).filter(|k| !(60..68).contains(k)).collect();
        assert_eq!(on_grid, expected);
        assert_eq!((counts[41], counts[42]), (None, Some(42)));
        // Placed with no harmony to go by, the bar lines stay on the anchor's grid after
        // both: a count beat by beat would have moved them a beat at the extra one.
        let bar_lines: Vec<f64> = bar_lines_at_zero(&beats)
            .into_iter()
            .filter(|&t| t > 40.0)
            .collect();
        assert!(!bar_lines.is_empty());
        for t in bar_lines {
            assert!(
                (t / 2.0 - (t / 2.0).round()).abs() < 1e-9,
                "bar line at {t} s"
            );
        }
        // A tempo change (120 to 133 BPM after 100 beats) ends the grid: most beats after it
        // are off the line.
        let mut changed = beats_from(0.5, 0.5, 100, None);
        changed.extend(beats_from(50.45, 0.45, 100, None));
        let counts = followed(&changed);
        assert!(counts[..100].iter().all(Option::is_some));
        assert!(counts[100..].iter().flatten().count() < 50, "{counts:?}");
        // A first beat on the anchor is its bar line.
        let from_zero = followed(&beats_from(0.0, 0.5, 40, None));
        assert_eq!(from_zero[..2], [Some(0), Some(1)]);
        // No grid through the anchor: nothing is on it.
        assert_eq!(anchor_fit(&beats_from(1.6, 0.5, 40, None), at(0.0)), None);
    }

    #[test]
    fn an_anchor_holds_only_until_the_audio_jumps() {
        // Eight beats on the anchor's grid, then the host's playback jumped by a third of a
        // beat: fitted over all of them, the grid misses the anchor; over the eight, it runs
        // through it.
        let mut beats = beats_from(0.5, 0.5, 8, None);
        beats.extend(beats_from(4.67, 0.5, 32, None));
        assert_eq!(anchored_position(&beats, 4, at(0.0)), None);
        let until_jump = BarAnchor {
            time_s: 0.0,
            until_s: 4.6,
        };
        assert_eq!(anchored_position(&beats, 4, until_jump), Some(1));
        // The anchor's weight counts only for the beats before the jump: after it the
        // network's weak but steady evidence for another bar line wins; with the weight held
        // to the end it would not.
        let n = 400;
        let reference: Vec<u8> = (0..n).map(|i| (i % 4) as u8).collect();
        let evidence: Vec<PhaseEvidence> = (0..n)
            .map(|i| PhaseEvidence {
                downbeat: if i % 4 == 2 { 5.0 } else { 0.0 },
                change: 0.0,
            })
            .collect();
        let held = |beats: usize| {
            let weight: Vec<f32> = (0..beats)
                .map(|i| if i % 4 == 0 { ANCHOR_WEIGHT } else { 0.0 })
                .collect();
            let positions = decide_positions(4, &reference, &evidence, &weight);
            positions[n - 1]
        };
        assert_eq!(held(n), 3, "the anchored count to the end");
        assert_eq!(held(16), 1, "the network's bar lines after the jump");
    }

    #[test]
    fn counting_steps_over_a_skipped_beat_and_restarts_the_bar_each_meter() {
        // Beats every 0.5 s with the one at 3.0 s missing.
        let beats: Vec<f64> = (0..12)
            .filter(|&i| i != 6)
            .map(|i| f64::from(i) * 0.5)
            .collect();
        let counted = counted_positions(&beats, 4);
        assert_eq!(counted, [0, 1, 2, 3, 0, 1, 3, 0, 1, 2, 3]);
        assert_eq!(counted_positions(&beats[..4], 3), [0, 1, 2, 0]);
        assert!(counted_positions(&[], 4).is_empty());
    }
}
