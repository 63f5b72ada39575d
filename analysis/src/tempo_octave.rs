//! The tempo-octave check after offline decoding: a grid at twice the song's tempo is halved.
//!
//! A beat network fine-tuned on composed music hears steady eighth notes as beats, and Viterbi
//! then follows them at twice the tempo (a 60 BPM song decoded at 120, a 100 BPM one at 199).
//! Such a grid gives itself away in the network's own probabilities: every other beat (the
//! "and"s) has a much weaker beat probability than its neighbours, and every other bar line
//! falls in the middle of a true bar, where the downbeat probability is lower. When both show,
//! [`halve`] keeps the stronger half of the beats, in the same meter. The streaming tracker
//! makes the same check over its last [`WINDOW`] beats as they come ([`OctaveGuard`]).
//!
//! The thresholds are a property of the network's activations, not of music (issue #15: with
//! the first shipped network the same thresholds lowered the real set's beat F); they were
//! chosen on the MIDI development set with the activations of network `1e22c5d3`
//! (`analysis/shipped/BEATS.md`, "The tempo-octave thresholds for this model", in its section)
//! and kept offline for its successors `e8f79836` and `858dc93d`, which were measured with
//! them. The streaming check's were raised for the 64-channel `858dc93d`, whose weak beats are
//! stronger (below).

use super::bar_decoder::MIN_BPM;

/// Below this ratio of the weaker parity's mean beat probability to the stronger's, the beats
/// alternate strong and weak.
pub const BEAT_RATIO: f32 = 0.7;
/// Below this ratio of the weaker parity's mean downbeat probability at the bar lines (odd
/// against even bars) to the stronger's, every other bar line is not a downbeat.
pub const BAR_RATIO: f32 = 0.8;
/// Beats needed before the check is made: fewer say too little about parity.
const MIN_BEATS: usize = 16;
/// The longest bar the bar phase is counted in (longer meters are counted in bars of this).
const MAX_METER: usize = 8;

/// The beats of a decoded grid with the network's probabilities at each.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ScoredBeat {
    pub time_s: f64,
    /// Position in the bar, 0 = downbeat.
    pub beat_in_bar: u8,
    /// Beat probability at the beat.
    pub beat: f32,
    /// Downbeat probability at the beat.
    pub downbeat: f32,
}

/// The beat and bar-line parity ratios of `beats` (weaker half's mean over the stronger's), or
/// `None` when there are too few beats or bars to tell.
pub fn parity_ratios(beats: &[ScoredBeat]) -> Option<(f32, f32)> {
    if beats.len() < MIN_BEATS {
        return None;
    }
    let ratio = |values: &mut dyn Iterator<Item = (usize, f32)>| -> Option<f32> {
        let mut sum = [0f32; 2];
        let mut count = [0usize; 2];
        for (i, v) in values {
            sum[i % 2] += v;
            count[i % 2] += 1;
        }
        if count.contains(&0) {
            return None;
        }
        let (a, b) = (sum[0] / count[0] as f32, sum[1] / count[1] as f32);
        let strong = a.max(b);
        (strong > 0.0).then(|| a.min(b) / strong)
    };
    let beat_r = ratio(&mut beats.iter().map(|b| b.beat).enumerate())?;
    let down_r = ratio(
        &mut beats
            .iter()
            .filter(|b| b.beat_in_bar == 0)
            .map(|b| b.downbeat)
            .enumerate(),
    )?;
    Some((beat_r, down_r))
}

/// The grid at half the tempo when `beats` show both signs of a doubled grid, else `None`:
/// the stronger parity of beats, in `meter`, with bar lines at the phase whose beats have the
/// highest mean downbeat probability. A halved tempo under [`MIN_BPM`] is not considered.
pub fn halve(beats: &[ScoredBeat], meter: u8) -> Option<Vec<ScoredBeat>> {
    let (beat_r, down_r) = parity_ratios(beats)?;
    if beat_r >= BEAT_RATIO || down_r >= BAR_RATIO || !halved_tempo_reaches(beats, MIN_BPM) {
        return None;
    }
    let mut kept: Vec<ScoredBeat> = beats
        .iter()
        .skip(stronger_parity(beats))
        .step_by(2)
        .copied()
        .collect();
    let meter = counted_meter(meter);
    let phase = strongest_bar_phase(kept.iter().map(|b| b.downbeat).enumerate(), meter);
    for (i, beat) in kept.iter_mut().enumerate() {
        beat.beat_in_bar = ((i + meter - phase) % meter) as u8;
    }
    Some(kept)
}

/// Whether half the mean tempo of `beats` is at least `min_bpm`.
fn halved_tempo_reaches(beats: &[ScoredBeat], min_bpm: f64) -> bool {
    let (Some(first), Some(last)) = (beats.first(), beats.last()) else {
        return false;
    };
    let span = last.time_s - first.time_s;
    span > 0.0 && 60.0 * (beats.len() - 1) as f64 / span / 2.0 >= min_bpm
}

/// 0 or 1: the parity of `beats` (by position) with the higher mean beat probability.
fn stronger_parity(beats: &[ScoredBeat]) -> usize {
    let mean = |parity| strided_mean(beats, parity, 2, |b| b.beat);
    usize::from(mean(1) > mean(0))
}

/// `meter` as the bar phase is counted: 1 to [`MAX_METER`] beats.
fn counted_meter(meter: u8) -> usize {
    usize::from(meter.clamp(1, MAX_METER as u8))
}

/// The phase (0 to `meter` - 1) of the bar lines among `downbeats`, numbered beats with their
/// downbeat probability: the one whose beats have the highest mean. Fixed size, no allocation.
fn strongest_bar_phase(downbeats: impl Iterator<Item = (usize, f32)>, meter: usize) -> usize {
    let mut sum = [0f32; MAX_METER];
    let mut count = [0usize; MAX_METER];
    for (i, downbeat) in downbeats {
        sum[i % meter] += downbeat;
        count[i % meter] += 1;
    }
    let mean = |phase: usize| sum[phase] / count[phase].max(1) as f32;
    (0..meter)
        .max_by(|&a, &b| mean(a).total_cmp(&mean(b)))
        .unwrap_or(0)
}

/// Beats of the streaming grid the streaming check looks back over.
pub const WINDOW: usize = MIN_BEATS;
/// [`BEAT_RATIO`] of the streaming check. Its own: over a window of 16 beats the ratios are
/// noisier than over a song, and the offline thresholds halve real songs' streaming grids
/// that are right (`analysis/shipped/BEATS.md`). 0.65 until network `858dc93d`, whose doubled
/// streaming grid after a tempo step keeps its parity ratios above that longer (0.65, 0.70 and
/// 0.75 tried: BEATS.md, session 38).
pub const STREAMING_BEAT_RATIO: f32 = 0.75;
/// [`BAR_RATIO`] of the streaming check.
pub const STREAMING_BAR_RATIO: f32 = 0.75;
/// The slowest tempo the streaming check halves a grid to, BPM: it leaves grids under 140 BPM
/// alone. Over a window of 16 beats a song at 110-140 BPM whose kick and snare alternate reads
/// as a doubled grid often enough that its streaming beats dropped every other beat for
/// stretches of up to 46 s, 5 s at the median (the tracker set's songs at 125 BPM), while the
/// doubled grids the check is for are a slow song's eighth notes, which the filter follows up to
/// [`MAX_BPM`](super::bar_decoder::MAX_BPM): a song of 70-107 BPM is still halved, one under 70
/// stays doubled. Chosen among 55 (the decoder's slowest, as offline), 70, 80 and 90 on the
/// tracker set's T and E, the real set and the synthetic set; the held-out N was run once, with
/// 70 (`analysis/shipped/BEATS.md`, session 41).
pub const STREAMING_MIN_HALVED_BPM: f64 = 70.0;
/// A beat interval this far from the previous one (either way) is a new tempo: the check starts
/// over on it (and the streaming tracker's tempo is read from the beats after it).
pub(crate) const TEMPO_JUMP: f64 = 1.4;

/// The same check for the streaming tracker, over its last [`WINDOW`] beats: while they show
/// both signs of a doubled grid, beats of the weaker parity are dropped and the stronger ones
/// reported at half the tempo, counted into bars at the phase with the most downbeat
/// probability. Fixed size: [`OctaveGuard::admit`] never allocates.
#[derive(Debug, Clone, Default)]
pub struct OctaveGuard {
    recent: [ScoredBeat; WINDOW],
    /// Beats admitted since the last start (the parity of the next one).
    seen: usize,
    halving: bool,
}

/// A beat of the streaming grid after [`OctaveGuard::admit`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GuardedBeat {
    pub beat_in_bar: u8,
    /// 1, or 2 while the grid is halved: the tempo is divided by it.
    pub tempo_divisor: u8,
}

impl OctaveGuard {
    /// Starts over, as for a new stream.
    pub fn reset(&mut self) {
        *self = Self::default();
    }

    /// Takes the next beat of the grid, in `meter`; `None` when it is dropped as an "and".
    pub fn admit(&mut self, beat: ScoredBeat, meter: u8) -> Option<GuardedBeat> {
        if self.seen >= 2 {
            let last = self.recent[(self.seen - 1) % WINDOW].time_s;
            let before = self.recent[(self.seen - 2) % WINDOW].time_s;
            let ratio = (beat.time_s - last) / (last - before);
            if !(1.0 / TEMPO_JUMP..=TEMPO_JUMP).contains(&ratio) {
                self.reset();
            }
        }
        let index = self.seen;
        self.recent[index % WINDOW] = beat;
        self.seen += 1;
        let unchanged = GuardedBeat {
            beat_in_bar: beat.beat_in_bar,
            tempo_divisor: 1,
        };
        if self.seen < WINDOW {
            return Some(unchanged);
        }
        // The window in order, oldest first; its first beat has the parity of `self.seen`
        // (WINDOW is even).
        let mut window = self.recent;
        window.rotate_left(self.seen % WINDOW);
        self.halving = match parity_ratios(&window) {
            Some((beat_r, _)) if self.halving => beat_r < STREAMING_BEAT_RATIO,
            Some((beat_r, down_r)) => beat_r < STREAMING_BEAT_RATIO && down_r < STREAMING_BAR_RATIO,
            None => false,
        } && halved_tempo_reaches(&window, STREAMING_MIN_HALVED_BPM);
        if !self.halving {
            return Some(unchanged);
        }
        // Window position j holds beat `self.seen - WINDOW + j`, of parity `(self.seen + j) % 2`.
        let strong_at = stronger_parity(&window);
        if index % 2 != (self.seen + strong_at) % 2 {
            return None;
        }
        // The strong beats of the window, numbered by `index / 2`, counted into bars.
        let meter = counted_meter(meter);
        let strong = window.iter().enumerate().skip(strong_at).step_by(2);
        let phase = strongest_bar_phase(
            strong.map(|(j, b)| ((self.seen - WINDOW + j) / 2, b.downbeat)),
            meter,
        );
        Some(GuardedBeat {
            beat_in_bar: ((index / 2 + meter - phase) % meter) as u8,
            tempo_divisor: 2,
        })
    }
}

/// The mean of `value` over every `step`-th beat from `start` (0 when there is none).
fn strided_mean(
    beats: &[ScoredBeat],
    start: usize,
    step: usize,
    value: impl Fn(&ScoredBeat) -> f32,
) -> f32 {
    let (sum, n) = beats
        .iter()
        .skip(start)
        .step_by(step)
        .fold((0.0, 0usize), |(s, n), b| (s + value(b), n + 1));
    sum / n.max(1) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` beats every `period` seconds, in 4/4 from a downbeat, with the given probabilities
    /// for even and odd beats and for downbeats at even and odd bars.
    fn grid(n: usize, period: f64, beat: [f32; 2], down: [f32; 2]) -> Vec<ScoredBeat> {
        (0..n)
            .map(|i| ScoredBeat {
                time_s: 1.0 + i as f64 * period,
                beat_in_bar: (i % 4) as u8,
                beat: beat[i % 2],
                downbeat: if i % 4 == 0 { down[(i / 4) % 2] } else { 0.05 },
            })
            .collect()
    }

    #[test]
    fn a_doubled_grid_is_halved_onto_its_strong_beats_and_bars() {
        // 200 BPM grid of a 100 BPM song: odd beats are the "and"s, odd bars half bars.
        let doubled = grid(64, 0.3, [0.9, 0.2], [0.8, 0.3]);
        let (beat_r, down_r) = parity_ratios(&doubled).unwrap();
        assert!((beat_r - 0.2 / 0.9).abs() < 1e-6 && (down_r - 0.3 / 0.8).abs() < 1e-6);
        let halved = halve(&doubled, 4).unwrap();
        assert_eq!(halved.len(), 32);
        assert!(halved.iter().all(|b| b.beat == 0.9));
        assert!(
            halved
                .windows(2)
                .all(|w| (w[1].time_s - w[0].time_s - 0.6).abs() < 1e-9)
        );
        // The bar lines land on the beats with the highest downbeat probability.
        for b in &halved {
            assert_eq!(b.beat_in_bar == 0, b.downbeat == 0.8, "{b:?}");
        }
    }

    #[test]
    fn a_grid_with_even_beats_or_even_bars_is_left_alone() {
        // Strong and weak beats alternate but every bar line is a downbeat: a real 4/4.
        assert!(halve(&grid(64, 0.5, [0.9, 0.4], [0.8, 0.8]), 4).is_none());
        // Bars alternate but the beats are even.
        assert!(halve(&grid(64, 0.5, [0.9, 0.85], [0.8, 0.3]), 4).is_none());
        // Too few beats to tell.
        assert!(halve(&grid(12, 0.3, [0.9, 0.1], [0.8, 0.1]), 4).is_none());
        // Halving would fall under the slowest tempo decoded (60 / 0.6 / 2 = 50 BPM).
        assert!(halve(&grid(64, 0.6, [0.9, 0.1], [0.8, 0.1]), 4).is_none());
    }

    /// Streams `beats` through a guard; the beats it keeps, with their place in the bar and
    /// the divisor of their tempo.
    fn stream(beats: &[ScoredBeat]) -> Vec<(f64, u8, u8)> {
        let mut guard = OctaveGuard::default();
        beats
            .iter()
            .filter_map(|&b| {
                guard
                    .admit(b, 4)
                    .map(|g| (b.time_s, g.beat_in_bar, g.tempo_divisor))
            })
            .collect()
    }

    #[test]
    fn the_streaming_guard_halves_a_doubled_grid_once_it_has_heard_a_window() {
        let doubled = grid(64, 0.3, [0.9, 0.2], [0.8, 0.3]);
        let kept = stream(&doubled);
        // Until a window is heard every beat passes unchanged.
        assert!(kept[..WINDOW - 1].iter().all(|&(_, _, d)| d == 1));
        let halved: Vec<_> = kept.iter().filter(|&&(_, _, d)| d == 2).collect();
        assert_eq!(kept.len(), WINDOW - 1 + halved.len());
        assert!(halved.len() >= 24, "{halved:?}");
        // Only the strong (even) beats, 0.6 s apart, with bar lines on the strong downbeats.
        for pair in halved.windows(2) {
            assert!((pair[1].0 - pair[0].0 - 0.6).abs() < 1e-9, "{pair:?}");
        }
        for &&(t, in_bar, _) in &halved {
            let i = ((t - 1.0) / 0.3).round() as usize;
            assert_eq!(i % 2, 0, "{t}");
            let downbeat = doubled[i].downbeat == 0.8;
            assert_eq!(in_bar == 0, downbeat, "beat {i} at {t}");
        }
    }

    #[test]
    fn the_streaming_guard_halves_no_grid_under_twice_its_slowest_tempo() {
        // Strong and weak beats and bars alternate as in a doubled grid, at 125 BPM: a song
        // whose kick and snare alternate, not eighth notes of a 62.5 BPM one.
        let accented = grid(64, 0.48, [0.9, 0.2], [0.8, 0.3]);
        let kept = stream(&accented);
        assert_eq!(kept.len(), 64);
        assert!(kept.iter().all(|k| k.2 == 1), "{kept:?}");
        // The same beats at 150 BPM are halved to 75.
        let kept = stream(&grid(64, 0.4, [0.9, 0.2], [0.8, 0.3]));
        assert!(kept.iter().filter(|k| k.2 == 2).count() >= 20, "{kept:?}");
        // Both grids are on the sides of the floor that they claim to be.
        const { assert!(60.0 / 0.48 / 2.0 < STREAMING_MIN_HALVED_BPM) };
        const { assert!(60.0 / 0.4 / 2.0 > STREAMING_MIN_HALVED_BPM) };
    }

    #[test]
    fn the_streaming_guard_leaves_an_even_grid_alone_and_starts_over_on_a_new_tempo() {
        // A real 4/4 with weak beats 2 and 4: every bar line is a downbeat.
        let even = grid(64, 0.5, [0.9, 0.4], [0.8, 0.8]);
        let kept = stream(&even);
        assert_eq!(kept.len(), 64);
        assert!(
            kept.iter()
                .zip(&even)
                .all(|(k, b)| k.1 == b.beat_in_bar && k.2 == 1)
        );
        // A doubled grid, then the true tempo: halving stops at the jump.
        let mut beats = grid(40, 0.3, [0.9, 0.2], [0.8, 0.3]);
        let end = beats.last().unwrap().time_s;
        beats.extend(
            grid(20, 0.6, [0.9, 0.9], [0.8, 0.8])
                .into_iter()
                .map(|b| ScoredBeat {
                    time_s: end + b.time_s - 0.4,
                    ..b
                }),
        );
        let kept = stream(&beats);
        let after: Vec<_> = kept.iter().filter(|k| k.0 > end).collect();
        assert_eq!(after.len(), 20);
        assert!(after.iter().all(|k| k.2 == 1), "{after:?}");
    }
}
