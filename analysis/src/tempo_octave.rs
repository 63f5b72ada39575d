//! The tempo-octave check after offline decoding: a grid at twice the song's tempo is halved.
//!
//! A beat network fine-tuned on composed music hears steady eighth notes as beats, and Viterbi
//! then follows them at twice the tempo (a 60 BPM song decoded at 120, a 100 BPM one at 199).
//! Such a grid gives itself away in the network's own probabilities: every other beat (the
//! "and"s) has a much weaker beat probability than its neighbours, and every other bar line
//! falls in the middle of a true bar, where the downbeat probability is lower. When both show,
//! [`halve`] keeps the stronger half of the beats, in the same meter.
//!
//! The thresholds are a property of the network's activations, not of music (issue #15: with
//! the first shipped network the same thresholds lowered the real set's beat F); they were
//! chosen on the MIDI development set with the fine-tuned run the shipped network is blended
//! from (`analysis/shipped/BEATS.md`).

use super::bar_decoder::MIN_BPM;

/// Below this ratio of the weaker parity's mean beat probability to the stronger's, the beats
/// alternate strong and weak.
pub const BEAT_RATIO: f32 = 0.65;
/// Below this ratio of the weaker parity's mean downbeat probability at the bar lines (odd
/// against even bars) to the stronger's, every other bar line is not a downbeat.
pub const BAR_RATIO: f32 = 0.65;
/// Beats needed before the check is made: fewer say too little about parity.
const MIN_BEATS: usize = 16;

/// The beats of a decoded grid with the network's probabilities at each.
#[derive(Debug, Clone, Copy, PartialEq)]
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
    if beat_r >= BEAT_RATIO || down_r >= BAR_RATIO {
        return None;
    }
    let span = beats.last()?.time_s - beats.first()?.time_s;
    let halved_bpm = 60.0 * (beats.len() - 1) as f64 / span / 2.0;
    if !(span > 0.0 && halved_bpm >= MIN_BPM) {
        return None;
    }
    let beat_at = |parity| strided_mean(beats, parity, 2, |b| b.beat);
    let parity = usize::from(beat_at(1) > beat_at(0));
    let mut kept: Vec<ScoredBeat> = beats.iter().skip(parity).step_by(2).copied().collect();
    let meter = usize::from(meter.max(1));
    let down_at = |phase| strided_mean(&kept, phase, meter, |b| b.downbeat);
    let phase = (0..meter)
        .max_by(|&a, &b| down_at(a).total_cmp(&down_at(b)))
        .unwrap_or(0);
    for (i, beat) in kept.iter_mut().enumerate() {
        beat.beat_in_bar = ((i + meter - phase) % meter) as u8;
    }
    Some(kept)
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
}
