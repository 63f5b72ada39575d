//! Where each bar starts, decided over the beats once they are known: a small hidden Markov
//! model whose states are the positions in the bar, observing at every beat the network's
//! downbeat probability and how much the harmony changes there.
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
//! - `change`: the cosine distance between the mean chroma of the beat and of the beat before
//!   it ([`chroma_change`]), standardised over the track (offline) or a running window
//!   (streaming, [`PhaseFilter`]).
//!
//! The meter and a first guess at the positions come from the tempo × bar-position tracker
//! (its positions already follow the network's downbeats and stay consistent across a skipped
//! or added beat). The hidden state is the offset from the tracker's positions (0 to
//! `meter - 1` beats); it holds from beat to beat and may jump at a small cost
//! ([`PHASE_JUMP`]). Offline, Viterbi over all beats ([`decide_positions`]); streaming, forward
//! filtering ([`PhaseFilter`]), with no allocation. The three constants were chosen on the
//! real-music development set and the synthetic evaluation set (`model/shipped/BEATS.md`).

use super::beat_features::{FrameSource, span_frame_range};
use super::beat_model::Activation;
use super::frontend::{N_CHROMA, frame_index_at};

/// Probability of leaving the expected next position at a beat (split over the others).
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

/// Mean chroma of the frames whose centres fall in `start_s..end_s`.
pub fn mean_chroma<S: FrameSource + ?Sized>(
    frames: &S,
    start_s: f64,
    end_s: f64,
) -> [f32; N_CHROMA] {
    let range = span_frame_range(start_s, end_s);
    let mut sum = [0.0f32; N_CHROMA];
    let mut n = 0.0f32;
    for k in range.start.max(frames.start())..range.end.min(frames.end()) {
        if let Some(f) = frames.frame(k) {
            sum.iter_mut().zip(&f.chroma).for_each(|(s, c)| *s += c);
            n += 1.0;
        }
    }
    if n > 0.0 {
        sum.iter_mut().for_each(|s| *s /= n);
    }
    sum
}

/// Cosine distance between two chroma vectors (0 when either is silent).
pub fn chroma_change(a: &[f32; N_CHROMA], b: &[f32; N_CHROMA]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    if na < 1e-6 || nb < 1e-6 {
        0.0
    } else {
        (1.0 - dot / (na * nb)).max(0.0)
    }
}

/// Evidence of every beat of a track: `beats` in seconds, `end_s` where the last beat ends.
pub fn track_evidence<S: FrameSource + ?Sized>(
    frames: &S,
    activations: &[Activation],
    beats: &[f64],
    end_s: f64,
) -> Vec<PhaseEvidence> {
    let mut previous: Option<[f32; N_CHROMA]> = None;
    beats
        .iter()
        .enumerate()
        .map(|(i, &t)| {
            let next = beats.get(i + 1).copied().unwrap_or(end_s).max(t);
            let chroma = mean_chroma(frames, t, next);
            let change = previous.map_or(0.0, |p| chroma_change(&chroma, &p));
            previous = Some(chroma);
            PhaseEvidence {
                downbeat: downbeat_log_odds(around(activations, frame_index_at(t))),
                change,
            }
        })
        .collect()
}

/// Log-probabilities of keeping the offset and of moving to one other offset.
fn transition_costs(meter: usize) -> (f32, f32) {
    (
        (1.0 - PHASE_JUMP).ln(),
        (PHASE_JUMP / (meter - 1).max(1) as f32).ln(),
    )
}

/// Log-belief in each offset before any evidence: the tracker's positions (offset 0) are as
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

/// The position in the bar of every beat: the tracker's positions `tracked` moved by the
/// offset (0 to `meter - 1` beats) that Viterbi finds most probable. The offset holds from
/// beat to beat unless the evidence pays for a jump.
pub fn decide_positions(meter: u8, tracked: &[u8], evidence: &[PhaseEvidence]) -> Vec<u8> {
    let m = meter.max(1) as usize;
    let n = evidence.len().min(tracked.len());
    if n == 0 {
        return Vec::new();
    }
    let (stay, jump) = transition_costs(m);
    let obs = downbeat_scores(&evidence[..n]);
    let reference: Vec<usize> = tracked[..n].iter().map(|&p| p as usize % m).collect();
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

/// Beats of chroma change the running standardisation has to see before the change counts.
const WARM_UP_BEATS: u32 = 8;
/// Weight of each new beat in the running mean and spread of the chroma change (about the
/// last 64 beats once warmed up; a plain average before).
const CHANGE_RATE: f32 = 1.0 / 64.0;
/// Positions the filter can hold (the largest meter).
const MAX_METER: usize = 4;

/// The streaming counterpart of [`decide_positions`]: forward filtering over the offset from
/// the tracker's positions, one beat at a time. A beat's chroma change is known only once the
/// beat has ended, so it arrives with the next beat and weighs the offsets by where they put
/// the beat before; the downbeat evidence of the new beat counts at once. No allocation.
#[derive(Debug, Clone, Default)]
pub struct PhaseFilter {
    /// Log-belief over the offset.
    belief: [f32; MAX_METER],
    meter: usize,
    /// The tracker's position of the latest beat.
    previous: Option<usize>,
    changes_seen: u32,
    change_mean: f32,
    change_var: f32,
}

impl PhaseFilter {
    /// Forgets everything.
    pub fn reset(&mut self) {
        *self = Self::default();
    }

    /// Takes the next beat: `meter` and `tracked` (its position) as the tempo filter reports
    /// them, `previous_change` the chroma change entering the beat before this one (`None`
    /// when unknown), and this beat's downbeat log-odds. Returns the beat's position in the
    /// bar.
    pub fn push(
        &mut self,
        meter: u8,
        tracked: u8,
        previous_change: Option<f32>,
        downbeat: f32,
    ) -> u8 {
        let m = (meter as usize).clamp(1, MAX_METER);
        if m != self.meter {
            // A new meter: the tracker's word, as at the start.
            self.meter = m;
            self.belief = [f32::NEG_INFINITY; MAX_METER];
            start_belief(&mut self.belief[..m]);
            self.previous = None;
        }
        let reference = tracked as usize % m;
        if let Some(before) = self.previous {
            if let Some(z) = previous_change
                .filter(|c| c.is_finite())
                .and_then(|c| self.standardise(c))
            {
                self.belief[(m - before) % m] += CHANGE_WEIGHT * z;
            }
            let (stay, jump) = transition_costs(m);
            let mut next = [f32::NEG_INFINITY; MAX_METER];
            for (o, slot) in next.iter_mut().enumerate().take(m) {
                // Log-sum-exp over the offsets the beat before could have had.
                let terms = (0..m).map(|q| self.belief[q] + if q == o { stay } else { jump });
                let top = terms.clone().fold(f32::NEG_INFINITY, f32::max);
                *slot = top + terms.map(|v| (v - top).exp()).sum::<f32>().ln();
            }
            self.belief = next;
        }
        self.previous = Some(reference);
        if downbeat.is_finite() {
            self.belief[(m - reference) % m] += DOWNBEAT_WEIGHT * downbeat;
        }
        // Keep the log-belief near zero.
        let top = self.belief[..m]
            .iter()
            .copied()
            .fold(f32::NEG_INFINITY, f32::max);
        self.belief[..m].iter_mut().for_each(|b| *b -= top);
        let offset = most_probable(&self.belief[..m]);
        ((reference + offset) % m) as u8
    }

    /// The change in units of its running spread from its running mean; `None` while warming
    /// up.
    fn standardise(&mut self, change: f32) -> Option<f32> {
        let z = (self.changes_seen >= WARM_UP_BEATS)
            .then(|| (change - self.change_mean) / self.change_var.sqrt().max(MIN_CHANGE_STD));
        self.changes_seen += 1;
        let rate = (1.0 / self.changes_seen as f32).max(CHANGE_RATE);
        let delta = change - self.change_mean;
        self.change_mean += rate * delta;
        self.change_var = (1.0 - rate) * (self.change_var + rate * delta * delta);
        z
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            let positions = decide_positions(meter as u8, &tracked, &evidence);
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
        assert_eq!(decide_positions(4, &tracked, &evidence), tracked);
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
        let found = downbeats(&decide_positions(4, &tracked, &evidence));
        let expected: Vec<usize> = (0..40).step_by(4).chain((43..100).step_by(4)).collect();
        // The jump may land a bar early or late, but the bars before and after are right.
        let missed = expected.iter().filter(|d| !found.contains(d)).count();
        let extra = found.iter().filter(|d| !expected.contains(d)).count();
        assert!(missed <= 1 && extra <= 1, "found {found:?}");
        assert!(found.contains(&4) && found.contains(&87));
    }

    #[test]
    fn the_filter_locks_onto_the_harmony_after_warming_up() {
        let (tracked, evidence) = chords_against_the_network(64, 4, 1, 2);
        let mut filter = PhaseFilter::default();
        let mut previous_change = None;
        let positions: Vec<u8> = tracked
            .iter()
            .zip(&evidence)
            .map(|(&t, e)| {
                let p = filter.push(4, t, previous_change, e.downbeat);
                previous_change = Some(e.change);
                p
            })
            .collect();
        let late: Vec<usize> = downbeats(&positions)
            .into_iter()
            .filter(|&i| i >= 24)
            .collect();
        assert_eq!(late, (25..64).step_by(4).collect::<Vec<_>>());
        // Before it has seen enough changes the network's word stands.
        assert_eq!(positions[..4], tracked[..4]);
    }

    #[test]
    fn evidence_reads_chroma_change_and_downbeat_share() {
        let mut frames = vec![crate::analysis::frontend::Frame::default(); 200];
        for (k, f) in frames.iter_mut().enumerate() {
            // C major for the first 100 frames, then G major.
            let notes: &[usize] = if k < 100 { &[0, 4, 7] } else { &[7, 11, 2] };
            notes.iter().for_each(|&n| f.chroma[n] = 1.0);
        }
        let t = |k: usize| crate::analysis::frontend::frame_time(k);
        let beats = [t(50), t(100), t(150)];
        let activations = vec![
            Activation {
                beat: 0.8,
                downbeat: 0.6,
            };
            200
        ];
        let e = track_evidence(frames.as_slice(), &activations, &beats, t(199));
        assert_eq!(e[0].change, 0.0);
        assert!(e[1].change > 0.5, "{e:?}");
        assert!(e[2].change < 1e-6, "{e:?}");
        // A downbeat share of 3/4 is log-odds ln 3.
        assert!((e[0].downbeat - 3f32.ln()).abs() < 1e-5);
    }
}
