//! The causal counterpart of [`super::bar_decoder`]: forward filtering over the same tempo ×
//! bar-position state space, one activation at a time, for the plugin's streaming tracker.
//!
//! Each decoding frame the probability mass walks one position along its line; at the end of a
//! beat it spreads over lines of nearby intervals (the decoder's transition costs, normalised
//! per source line, so mass is kept) and beat states are weighted by the frame's evidence.
//! A little mass is spread evenly over all states every front-end frame ([`REENTRY`]), so a new
//! tempo or meter far from the current belief can still take over. Once per front-end frame the
//! most probable state is read: when it entered a beat two front-end frames ago, and no beat was
//! reported in the last half beat (three quarters at a tempo given, [`MIN_GAP_AT_A_TEMPO`]),
//! that beat is reported, placed (like the offline decoder) at the beat probability's peak
//! around its entry, between frames where the frames either side of the peak say
//! ([`peak_offset`]). Meter and bar position come from the same state, so they are
//! decided with the beat.
//!
//! All buffers are sized in [`BarFilter::new`]; [`BarFilter::push`] never allocates.

use super::bar_decoder::{StateSpace, UPSAMPLE, evidence, peak_offset};
use super::beat_model::Activation;
use super::frontend::frame_time;

/// Share of the probability spread evenly over all states each front-end frame.
pub const REENTRY: f32 = 1e-4;
/// Decoding frames after a beat's entry at which the most probable state is read (two
/// front-end frames).
const SETTLE: usize = 2 * UPSAMPLE;
/// The shortest gap between two beats reported, as a fraction of the beat the most probable
/// state is in, in a space narrowed to a tempo given (three quarters; half a beat otherwise):
/// there, where two phases of the tempo explain the activations about as well (a slow song's
/// eighth notes, counted at the user's half tempo), the most probable state may move between
/// them from beat to beat, and would report a beat on both. In the whole space, whose lines at
/// twice the tempo explain both phases, three quarters was a wash (`analysis/shipped/BEATS.md`).
const MIN_GAP_AT_A_TEMPO: (usize, usize) = (3, 4);
/// Decoding frames of activation history kept for placing a beat.
const HISTORY: usize = 32;

/// A beat found by the filter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FilteredBeat {
    /// Seconds from the start of the stream.
    pub time_s: f64,
    /// Position in the bar, 0 = downbeat.
    pub beat_in_bar: u8,
    pub meter: u8,
    /// Tempo of the most probable state, BPM.
    pub tempo_bpm: f32,
    /// Beat probability at the beat.
    pub strength: f32,
}

/// Forward filtering over the bar-pointer state space.
#[derive(Debug, Clone)]
pub struct BarFilter {
    space: StateSpace,
    prob: Vec<f32>,
    /// End-of-beat mass of every line and beat, gathered before a step overwrites it.
    ends: Vec<f32>,
    /// Per line: the share of each source's end-of-beat mass that moves to this line.
    weights: Vec<Vec<f32>>,
    /// Decoding frames done.
    t: usize,
    previous: Option<Activation>,
    history: [f32; HISTORY],
    last_beat: Option<usize>,
}

impl BarFilter {
    /// A filter with every state equally likely.
    pub fn new(space: StateSpace) -> Self {
        let states = space.states();
        let lines = space.lines();
        // Normalise each source line's outgoing costs.
        let mut out_total = vec![0.0f32; lines.len()];
        for line in lines {
            let first = space.first_line_of_meter(line.meter);
            for &(source, cost) in &line.sources {
                out_total[first + source as usize] += (-cost).exp();
            }
        }
        let weights = lines
            .iter()
            .map(|line| {
                let first = space.first_line_of_meter(line.meter);
                line.sources
                    .iter()
                    .map(|&(source, cost)| (-cost).exp() / out_total[first + source as usize])
                    .collect()
            })
            .collect();
        let max_meter = lines.iter().map(|l| l.meter).max().unwrap_or(4);
        Self {
            prob: vec![1.0 / states.max(1) as f32; states],
            ends: vec![0.0; lines.len() * max_meter],
            weights,
            space,
            t: 0,
            previous: None,
            history: [0.0; HISTORY],
            last_beat: None,
        }
    }

    /// Moves the filter to `space` from the next frame on, every state of it equally likely
    /// (the belief of the old space says nothing about where in the new one the music is); the
    /// stream's time, its recent activations and the last beat reported carry over, so beats
    /// keep their times and none is reported twice. Allocates: for a tempo the user gives while
    /// the stream runs, between pushes.
    pub fn set_space(&mut self, space: StateSpace) {
        let carried = (self.t, self.previous, self.history, self.last_beat);
        *self = Self::new(space);
        (self.t, self.previous, self.history, self.last_beat) = carried;
    }

    /// Goes on from a beat found elsewhere: the belief of every line moves to the position it
    /// would be at had the beat entered at `beat_time_s` (seconds on the stream's clock) as beat
    /// `beat_in_bar` of its bar, each line keeping its share of the mass (its tempo), and that
    /// beat counts as reported. For a grid found elsewhere whose phase the filter should keep
    /// rather than find again (the plugin's capture, at the tempo the user counts at). No
    /// allocation.
    pub fn align(&mut self, beat_time_s: f64, beat_in_bar: u8) {
        let Some(now) = self.t.checked_sub(1) else {
            return;
        };
        let space = &self.space;
        let entry = (beat_time_s - frame_time(0)) * space.rate();
        let since = now as f64 - entry;
        for line in space.lines() {
            let len = line.len();
            let states = line.offset..line.offset + len;
            let mass: f32 = self.prob[states.clone()].iter().sum();
            self.prob[states].fill(0.0);
            let entered_at = (usize::from(beat_in_bar) % line.meter) * line.interval;
            let position = (entered_at as i64 + since.round() as i64).rem_euclid(len as i64);
            let position = position as usize;
            // A frame either way: the beat's time is known to a frame, not to a decoding frame.
            for (step, share) in [(len - 1, 0.25), (0, 0.5), (1, 0.25)] {
                self.prob[space.index(line, (position + step) % len, now)] += share * mass;
            }
        }
        self.last_beat = Some(entry.round().max(0.0) as usize);
    }

    /// The tempo × bar-position space the filter searches.
    pub fn space(&self) -> &StateSpace {
        &self.space
    }

    /// Starts over (no allocation).
    pub fn reset(&mut self) {
        let n = self.prob.len().max(1) as f32;
        self.prob.fill(1.0 / n);
        self.t = 0;
        self.previous = None;
        self.history = [0.0; HISTORY];
        self.last_beat = None;
    }

    /// Takes the activation of the next front-end frame; `emit` receives the beat it reveals,
    /// if any. The frames between the previous activation and this one are interpolated, as
    /// the offline decoder does, so both walk the same decoding frames.
    pub fn push(&mut self, activation: Activation, mut emit: impl FnMut(FilteredBeat)) {
        let Some(previous) = self.previous.replace(activation) else {
            return;
        };
        for k in 0..UPSAMPLE {
            let w = k as f32 / UPSAMPLE as f32;
            let a = Activation {
                beat: previous.beat * (1.0 - w) + activation.beat * w,
                downbeat: previous.downbeat * (1.0 - w) + activation.downbeat * w,
            };
            self.step(&a);
        }
        self.normalise();
        if let Some(beat) = self.read_beat() {
            emit(beat);
        }
    }

    /// One decoding frame: walk, spread at beat ends, weigh by evidence.
    fn step(&mut self, a: &Activation) {
        let space = &self.space;
        let lines = space.lines();
        let t = self.t;
        self.history[t % HISTORY] = a.beat;
        let max_meter = self.ends.len() / lines.len().max(1);
        if t > 0 {
            for (l, line) in lines.iter().enumerate() {
                for b in 0..line.meter {
                    self.ends[l * max_meter + b] =
                        self.prob[space.index(line, (b + 1) * line.interval - 1, t - 1)];
                }
            }
            for (l, line) in lines.iter().enumerate() {
                let first = space.first_line_of_meter(line.meter);
                for b in 0..line.meter {
                    let previous = (b + line.meter - 1) % line.meter;
                    let mass: f32 = line
                        .sources
                        .iter()
                        .zip(&self.weights[l])
                        .map(|(&(source, _), w)| {
                            self.ends[(first + source as usize) * max_meter + previous] * w
                        })
                        .sum();
                    self.prob[space.index(line, b * line.interval, t)] = mass;
                }
            }
        }
        let (down, beat) = evidence(a);
        let (down, beat) = (down.exp(), beat.exp());
        for line in lines {
            for b in 0..line.meter {
                let gain = if b == 0 { down } else { beat };
                for q in 0..line.region {
                    self.prob[space.index(line, b * line.interval + q, t)] *= gain;
                }
            }
        }
        self.t += 1;
    }

    fn normalise(&mut self) {
        let total: f32 = self.prob.iter().sum();
        let n = self.prob.len() as f32;
        if !(total > 0.0 && total.is_finite()) {
            self.prob.fill(1.0 / n);
            return;
        }
        let scale = (1.0 - REENTRY) / total;
        let floor = REENTRY / n;
        self.prob.iter_mut().for_each(|p| *p = *p * scale + floor);
    }

    /// The beat the most probable state has just entered, if it is a new one.
    fn read_beat(&mut self) -> Option<FilteredBeat> {
        let space = &self.space;
        let t = self.t.checked_sub(1)?;
        let (line, position) = space.most_probable(&self.prob, t)?;
        let q = position % line.interval;
        // Read a beat two front-end frames after its entry, so the peak after it has shown.
        if !(SETTLE..SETTLE + UPSAMPLE).contains(&q) {
            return None;
        }
        let entered = t - q.min(t);
        let (gap, of) = if space.spans_an_octave() {
            (1, 2)
        } else {
            MIN_GAP_AT_A_TEMPO
        };
        if self
            .last_beat
            .is_some_and(|last| entered < last + line.interval * gap / of)
        {
            return None;
        }
        // The beat probability's peak from a front-end frame before the entry to now.
        let from = entered
            .saturating_sub(UPSAMPLE)
            .max(t.saturating_sub(HISTORY - 1));
        let peak = (from..=t)
            .max_by(|&a, &b| self.history[a % HISTORY].total_cmp(&self.history[b % HISTORY]))
            .unwrap_or(entered);
        self.last_beat = Some(entered);
        let rate = space.rate();
        let beat = |j: usize| self.history[j % HISTORY];
        // The front-end frames either side of the peak, while the history still holds them.
        let held = peak >= UPSAMPLE && peak + HISTORY > t + UPSAMPLE && peak + UPSAMPLE <= t;
        let refined = if held {
            UPSAMPLE as f64 * peak_offset(beat(peak - UPSAMPLE), beat(peak), beat(peak + UPSAMPLE))
        } else {
            0.0
        };
        Some(FilteredBeat {
            time_s: frame_time(0) + (peak as f64 + refined) / rate,
            beat_in_bar: (position / line.interval) as u8,
            meter: line.meter as u8,
            tempo_bpm: (60.0 * rate / line.interval as f64) as f32,
            strength: self.history[peak % HISTORY],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ideal(bpm: f64, meter: usize, seconds: f64) -> Vec<Activation> {
        crate::test_signals::ideal_activations(bpm, meter, 0, seconds)
    }

    #[test]
    fn locks_within_four_beats_and_finds_the_bar() {
        for (bpm, meter) in [(148.0, 4), (120.0, 4), (96.0, 3)] {
            let mut filter = BarFilter::new(StateSpace::default());
            let mut beats = Vec::new();
            for a in ideal(bpm, meter, 30.0) {
                filter.push(a, |b| beats.push(b));
            }
            let period = 60.0 / bpm;
            let on_beat = |t: f64| {
                let i = ((t - 0.5) / period).round();
                ((t - 0.5) - i * period).abs() < 0.03
            };
            // The fifth reported beat onwards are all on true beats, one per beat.
            let settled = &beats[4..];
            assert!(
                settled.iter().all(|b| on_beat(b.time_s)),
                "{bpm} BPM: {beats:?}"
            );
            // One beat per true beat: none skipped, none twice.
            for pair in settled.windows(2) {
                let gap = pair[1].time_s - pair[0].time_s;
                assert!((gap - period).abs() < 0.3 * period, "{bpm} BPM: gap {gap}");
            }
            assert!(settled.last().is_some_and(|b| b.time_s > 28.0), "{bpm} BPM");
            // Bars: the last beats know their meter and place.
            for b in &settled[settled.len() - 8..] {
                assert_eq!(b.meter as usize, meter, "{bpm} BPM");
                let i = ((b.time_s - 0.5) / period).round() as usize;
                assert_eq!(
                    b.beat_in_bar as usize,
                    i % meter,
                    "{bpm} BPM at {}",
                    b.time_s
                );
                assert!((b.tempo_bpm as f64 - bpm).abs() < 0.04 * bpm);
            }
        }
    }

    #[test]
    fn beats_are_reported_where_their_peak_lies_between_frames() {
        let mut filter = BarFilter::new(StateSpace::default());
        let mut beats = Vec::new();
        for a in crate::test_signals::bell_activations(125.0, 4, 30.0) {
            filter.push(a, |b| beats.push(b.time_s));
        }
        let late: Vec<f64> = beats.into_iter().filter(|&b| b > 5.0).collect();
        assert!(late.len() > 45, "{late:?}");
        for b in late {
            let error = (b - 0.5) - ((b - 0.5) / 0.48).round() * 0.48;
            assert!(error.abs() < 0.003, "beat at {b:.4} is {error:.4} s off");
        }
    }

    /// A slow song's busy eighth notes: beats at 148 BPM, every other one a little weaker (the
    /// 74 BPM song's beats, in bars of four).
    fn slow_song_eighths(seconds: f64) -> Vec<Activation> {
        let slow = ideal(74.0, 4, seconds);
        ideal(148.0, 8, seconds)
            .into_iter()
            .zip(slow)
            .map(|(e, s)| Activation {
                beat: s.beat.max(0.8 * e.beat),
                downbeat: s.downbeat,
            })
            .collect()
    }

    #[test]
    fn a_new_space_mid_stream_counts_at_its_tempo_on_the_same_clock() {
        // A slow song's busy eighth notes: beats at 148 BPM, every other one a little weaker.
        // The filter follows them at 148 until it is told to count at 74 (the user's ½×), then
        // the stronger half, on the same clock.
        let period = 60.0 / 148.0;
        let mut filter = BarFilter::new(StateSpace::default());
        let mut beats: Vec<(f64, f32)> = Vec::new();
        let switch_s = 15.0;
        for (k, a) in slow_song_eighths(40.0).into_iter().enumerate() {
            if k == crate::frontend::frame_index_at(switch_s) {
                filter.set_space(StateSpace::around(74.0));
                assert!(!filter.space().spans_an_octave());
            }
            filter.push(a, |b| beats.push((b.time_s, b.tempo_bpm)));
        }
        // On a beat of the slow song's (every other eighth note).
        let on_beat = |t: f64| {
            let i = ((t - 0.5) / (2.0 * period)).round();
            ((t - 0.5) - i * 2.0 * period).abs() < 0.03
        };
        let before: Vec<_> = beats
            .iter()
            .filter(|b| (5.0..switch_s).contains(&b.0))
            .collect();
        assert!(
            before
                .windows(2)
                .all(|w| (w[1].0 - w[0].0 - period).abs() < 0.1 * period)
        );
        // Four of the new beats to lock, then every one on a true beat, two periods apart.
        let after: Vec<_> = beats.iter().filter(|b| b.0 > switch_s).skip(4).collect();
        assert!(after.len() >= 25, "{after:?}");
        assert!(after.iter().all(|b| on_beat(b.0)), "{after:?}");
        for w in after.windows(2) {
            let gap = w[1].0 - w[0].0;
            assert!(
                (gap - 2.0 * period).abs() < 0.1 * period,
                "gap {gap} at {}",
                w[1].0
            );
            assert!((f64::from(w[1].1) - 74.0).abs() < 3.0, "{:?}", w[1]);
        }
        // No beat twice around the switch: each later than the one before by half a period.
        assert!(
            beats.windows(2).all(|w| w[1].0 - w[0].0 > 0.5 * period),
            "{beats:?}"
        );
    }

    #[test]
    fn aligned_to_a_beat_it_goes_on_from_that_beats_phase_at_once() {
        // The same eighth notes; at 15 s the filter is moved to 74 BPM and aligned to the last
        // strong beat (as the plugin aligns it to its settled grid), to one still ahead of the
        // filter (the plugin's grid runs ahead of it by the network's look-ahead), or left to
        // find the phase.
        let period = 60.0 / 148.0;
        let switch_s: f64 = 15.0;
        let strong = 0.5 + ((switch_s - 0.5) / (2.0 * period)).floor() * 2.0 * period;
        let ahead = strong + 2.0 * 2.0 * period;
        let on_strong = |t: f64| {
            let off = (t - 0.5) / (2.0 * period);
            (off - off.round()).abs() * 2.0 * period < 0.03
        };
        let after_switch = |aligned_to: Option<(f64, u8)>| {
            let mut filter = BarFilter::new(StateSpace::default());
            let mut beats = Vec::new();
            for (k, a) in slow_song_eighths(30.0).into_iter().enumerate() {
                if k == crate::frontend::frame_index_at(switch_s) {
                    filter.set_space(StateSpace::around(74.0));
                    if let Some((time_s, beat_in_bar)) = aligned_to {
                        filter.align(time_s, beat_in_bar);
                    }
                }
                filter.push(a, |b| beats.push(b.time_s));
            }
            let after: Vec<f64> = beats.into_iter().filter(|&t| t > switch_s).collect();
            // Two periods apart, on the strong beats.
            assert!(after.len() >= 15, "{after:?}");
            assert!(after[4..].iter().all(|&t| on_strong(t)), "{after:?}");
            after
        };
        // Aligned, the first beat reported is the strong one after the aligned beat (which the
        // grid already holds), and every beat is strong; left alone, the filter takes a few
        // beats to find that phase.
        for (time_s, beat_in_bar) in [(strong, 0), (ahead, 3)] {
            let aligned = after_switch(Some((time_s, beat_in_bar)));
            let next = time_s + 2.0 * period;
            assert!((aligned[0] - next).abs() < 0.03, "{time_s}: {aligned:?}");
            assert!(aligned.iter().all(|&t| on_strong(t)), "{aligned:?}");
        }
        let alone = after_switch(None);
        assert!(alone[0] > strong + 2.0 * period + 0.5, "{alone:?}");
    }

    #[test]
    fn silence_reports_no_beats_and_reset_starts_over() {
        let mut filter = BarFilter::new(StateSpace::default());
        let mut beats = 0;
        for _ in 0..2000 {
            filter.push(
                Activation {
                    beat: 0.01,
                    downbeat: 0.005,
                },
                |_| beats += 1,
            );
        }
        assert!(beats < 5, "{beats} beats in silence");
        filter.reset();
        let mut after = Vec::new();
        for a in ideal(120.0, 4, 10.0) {
            filter.push(a, |b| after.push(b.time_s));
        }
        assert!(after.len() >= 15, "{after:?}");
    }
}
