//! Simulated users: people whose taste differs from the shipped model's, who accept and reject
//! the plugin's proposals as a real user would. They measure how well fine-tuning learns a taste
//! (issue #18, `trainer taste-eval`).
//!
//! A user sees the plugin's proposals for a track (the base model's best single cuts), accepts
//! the better half by their taste and rejects the rest, and may be inconsistent: each verdict is
//! flipped with probability [`User::noise`]. Their taste is a number per edit ([`Taste::utility`])
//! in units a person hears (dB, bars); two edits whose numbers differ by less than the taste's
//! [`Taste::resolution`] are a matter of indifference and are not counted when agreement is
//! measured.
//!
//! The panel covers tastes the reward model's scoring windows see (the level at the join) and
//! tastes they can only infer (what was removed), plus one noisy person. Every choice made in
//! fine-tuning and Teach was measured on it. [`unseen_panel`] holds eight more tastes, each
//! defined in issue #18's sessions 57 and 58 before it was first run, none of which chose
//! anything that shipped: they say how the learning fares on a taste nobody tuned it for.

use rand::Rng;

use crate::user_songs::Song;
use cutscore_core::edit::Edit;

/// Feature index of a beat's mean RMS level, `(dB + 40) / 20` (`docs/features.md`).
const LEVEL: usize = 73;
/// Beats either side of a join a listener compares when judging its lift.
const LIFT_BEATS: usize = 4;

/// What a simulated user cares about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Taste {
    /// Joins that lift the energy: the bars after a join louder than the bars before it
    /// (heard at the join).
    Lift,
    /// Longer cuts: more bars removed by one proposal (the length the model reads).
    LongCuts,
    /// Removes the quiet parts: the quieter the removed bars, the better (what is removed).
    QuietOut,
    /// Keeps the chorus: every chorus bar removed counts against a cut (what is kept).
    KeepChorus,
    /// Joins that drop the energy: the bars after a join quieter than the bars before it
    /// (heard at the join; [`unseen_panel`]).
    Drop,
    /// Shorter cuts: fewer bars removed by one proposal ([`unseen_panel`]).
    ShortCuts,
    /// Cuts late in the song: the later the removed material lies, the better, in shares of the
    /// song (where; [`unseen_panel`]).
    LateCuts,
    /// Keeps the loudest parts: every removed beat among the song's loudest quarter of beats
    /// counts against a cut, in bars (what is kept, a threshold on the song's own levels;
    /// [`unseen_panel`]).
    KeepLoud,
    /// Keeps the busiest parts: every removed beat among the song's busiest quarter of beats
    /// (by onset strength) counts against a cut, in bars ([`unseen_panel`]).
    KeepBusy,
    /// Keeps the intro and the ending: every removed beat of the song's first or last 15 %
    /// counts against a cut, in bars ([`unseen_panel`]).
    KeepEnds,
    /// Keeps the intro: every removed beat within the recording's first [`EDGE_SECONDS`]
    /// counts against a cut, in bars ([`unseen_panel`], session 58).
    KeepIntro,
    /// Keeps the outro: every removed beat within the recording's last [`EDGE_SECONDS`] counts
    /// against a cut, in bars ([`unseen_panel`], session 58).
    KeepOutro,
}

/// Feature index of a beat's mean onset strength (`docs/features.md`).
const ONSETS: usize = 77;
/// The share of a song at each end that the keep-the-ends user holds on to.
const ENDS: f32 = 0.15;
/// How much of a recording's start and end, in seconds, the keep-the-intro and keep-the-outro
/// users hold on to.
const EDGE_SECONDS: f64 = 30.0;

impl Taste {
    /// How much the user likes `edit` of `song`: dB for the level tastes, bars for the others.
    pub fn utility(self, song: &Song, edit: &Edit) -> f32 {
        let level = |beat: usize| song.features.row(beat)[LEVEL] * 20.0;
        let mean = |beats: &mut dyn Iterator<Item = usize>| {
            let (sum, n) = beats.fold((0.0, 0usize), |(s, n), b| (s + level(b), n + 1));
            if n == 0 { 0.0 } else { sum / n as f32 }
        };
        let meter = f32::from(song.grid.meter.max(1));
        let removed = edit.removed();
        let beats = song.grid.len();
        let removed_beats = || removed.iter().flat_map(|s| s.start..s.end);
        // The mean over the removed spans of what each span is worth.
        let per_span = |value: &dyn Fn(usize, usize) -> f32| {
            removed.iter().map(|s| value(s.start, s.end)).sum::<f32>() / removed.len().max(1) as f32
        };
        // The removed beats the user wanted kept, in bars, counted against the cut.
        let lost = |wanted: &dyn Fn(usize) -> bool| {
            -(removed_beats().filter(|&b| wanted(b)).count() as f32) / meter
        };
        // Whether a beat is among the song's top quarter of beats by `feature`.
        let top_quarter = |feature: usize| {
            let value = move |beat: usize| song.features.row(beat)[feature];
            let mut values: Vec<f32> = (0..beats).map(value).collect();
            values.sort_by(f32::total_cmp);
            let top = values.get(beats * 3 / 4).copied().unwrap_or(f32::INFINITY);
            move |beat: usize| value(beat) >= top
        };
        let lift = || {
            per_span(&|start, end| {
                let after = mean(&mut (end..(end + LIFT_BEATS).min(beats)));
                let before = mean(&mut (start.saturating_sub(LIFT_BEATS)..start));
                after - before
            })
        };
        match self {
            Self::Lift => lift(),
            Self::Drop => -lift(),
            Self::LongCuts => edit.removed_len() as f32 / meter,
            Self::ShortCuts => -(edit.removed_len() as f32) / meter,
            Self::LateCuts => {
                per_span(&|start, end| (start + end) as f32 / 2.0 / beats.max(1) as f32)
            }
            Self::KeepLoud => lost(&top_quarter(LEVEL)),
            Self::KeepBusy => lost(&top_quarter(ONSETS)),
            Self::KeepEnds => {
                let ends = ENDS * beats as f32;
                lost(&|b| (b as f32) < ends || (b as f32) >= beats as f32 - ends)
            }
            Self::KeepIntro => lost(&|b| song.grid.time_of(b) < EDGE_SECONDS),
            Self::KeepOutro => {
                let outro = song.grid.duration_s - EDGE_SECONDS;
                lost(&|b| song.grid.time_of(b) >= outro)
            }
            Self::QuietOut => -mean(&mut removed_beats()),
            // A recording's form is unknown: no bar of it is known to be chorus.
            Self::KeepChorus => lost(&|b| {
                song.truth
                    .as_ref()
                    .and_then(|t| t.section_at(song.grid.time_of(b)))
                    .is_some_and(|s| s.name == "chorus")
            }),
        }
    }

    /// The smallest difference in [`Taste::utility`] the user notices.
    pub fn resolution(self) -> f32 {
        match self {
            Self::Lift | Self::Drop | Self::QuietOut => 1.0,
            Self::LongCuts
            | Self::ShortCuts
            | Self::KeepChorus
            | Self::KeepLoud
            | Self::KeepBusy
            | Self::KeepEnds
            | Self::KeepIntro
            | Self::KeepOutro => 0.5,
            Self::LateCuts => 0.1,
        }
    }

    /// Whether the taste is about the song's form (which sections), known only for synthetic
    /// songs: on recordings such a user cannot be simulated.
    pub fn needs_form(self) -> bool {
        matches!(self, Self::KeepChorus)
    }

    /// Where the taste can be heard: at the join, or only in what was removed.
    pub fn heard(self) -> &'static str {
        match self {
            Self::Lift | Self::Drop => "at the join",
            Self::LongCuts | Self::ShortCuts => "in the cut's length",
            Self::LateCuts | Self::KeepEnds | Self::KeepIntro | Self::KeepOutro => {
                "in where the cut lies"
            }
            Self::QuietOut | Self::KeepChorus | Self::KeepLoud | Self::KeepBusy => {
                "in what is removed"
            }
        }
    }
}

/// A simulated person: a taste and how often they contradict it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct User {
    pub name: String,
    pub taste: Taste,
    /// Probability that any one verdict goes against the taste.
    pub noise: f64,
}

impl User {
    pub fn new(name: &str, taste: Taste, noise: f64) -> Self {
        Self {
            name: name.to_string(),
            taste,
            noise,
        }
    }

    /// Accept (`true`) or reject for each of `proposals` (in the order shown): the better half
    /// by taste is accepted, ties going to the proposal shown first, then each verdict is
    /// flipped with probability `noise`.
    pub fn verdicts(&self, song: &Song, proposals: &[Edit], rng: &mut impl Rng) -> Vec<bool> {
        let utilities: Vec<f32> = proposals
            .iter()
            .map(|e| self.taste.utility(song, e))
            .collect();
        let mut order: Vec<usize> = (0..proposals.len()).collect();
        order.sort_by(|&a, &b| utilities[b].total_cmp(&utilities[a]));
        let mut accept = vec![false; proposals.len()];
        for &i in &order[..proposals.len() / 2] {
            accept[i] = true;
        }
        for verdict in &mut accept {
            if rng.random_bool(self.noise) {
                *verdict = !*verdict;
            }
        }
        accept
    }
}

/// The standard panel: one user per taste, and a noisy one who likes lifts but contradicts
/// themself one time in ten.
///
/// Most choices since session 35 were measured on recordings (`taste-eval --recordings`),
/// where keep-chorus cannot be simulated. On synthetic songs (`taste-eval` without it; session 58,
/// seeds 30-39, 100 / 300 decisions, mean agreement on songs nobody decided on, craft on 3,000
/// fresh synthetic pairs a seed): lift 90.6 / 93.9 %, long cuts 93.7 / 93.6, quiet-out 92.0 /
/// 92.8, noisy lift 90.7 / 91.8, keep-chorus **82.3** / 89.0; the craft within a point on 47 of
/// 50 runs after 100 and 46 of 50 after 300 (worst -1.53, lift after 300). Below the
/// recordings' figures (seeds 30-34: 93.8 / 96.1, 97.7 / 97.2, 90.6 / 97.2, 93.4 / 95.8) on
/// every row but quiet-out's after 100, and none reaches 95 % after 300. For keep-chorus on
/// seeds 30-33 (77.3 / 87.1 there), a layer of fixed settings (`--sparsity 0.001 --bound 8`)
/// agrees 84.1 / 92.2 % at more craft lost (3 of 4 runs within a point each; worst -1.27),
/// and a craft limit of 2 points (`--craft-slack 2`) 78.5 / 87.8: what holds it back is which
/// layer cross-validation chooses, not the limit on the craft ([`unseen_panel`] says why such
/// tastes are hard to judge).
pub fn panel() -> Vec<User> {
    vec![
        User::new("lift", Taste::Lift, 0.0),
        User::new("long-cuts", Taste::LongCuts, 0.0),
        User::new("quiet-out", Taste::QuietOut, 0.0),
        User::new("keep-chorus", Taste::KeepChorus, 0.0),
        User::new("lift-noisy", Taste::Lift, 0.1),
    ]
}

/// Tastes nobody tuned the learning for (issue #18, session 57), each defined before it was
/// first measured. One at the join (the opposite of lift), one of length (the opposite of long
/// cuts), two of where a cut lies (late in the song; not at either end), and two about what is
/// kept, through a threshold on the song's own distribution (its loudest quarter of beats; its
/// busiest). Two changes to the summary were measured on keep-loud and not kept (the inputs
/// counting a song's top and bottom quarters, `cutscore_core::taste`), so it is the least
/// unseen of them; keep-busy and keep-ends were held back until those were decided. Keep them
/// out of every choice, or they stop saying this.
///
/// Measured in session 57 (`taste-eval --recordings`, 100 and 300 decisions, mean agreement on
/// songs nobody decided on; seeds 30-39, keep-busy and keep-ends 30-34): drop 95.9 / 97.7 %,
/// short cuts 97.1 / 98.2, late cuts 94.5 / 95.3, keep-loud 83.7 / 86.5, keep-busy 83.8 / 88.6,
/// keep-ends 47.5 / 48.9 (47.7 before fine-tuning). The threshold tastes fall short of 90 %,
/// and keep-ends is not learned at all: the summary reads where a cut lies as the mean middle
/// of its spans, and a linear layer cannot say "at neither end" of it (cross-validation chose
/// the strongest sparsity on 8 of its 10 runs, and none moved the craft).
///
/// Two more were defined in session 58 before a change to the summary for keep-ends was built:
/// keep-intro and keep-outro, which hold on to a recording's first or last 30 seconds (in
/// seconds, where keep-ends counts shares of the song, and one end each). Seeds 30-34: keep-intro
/// 44.7 % before, 63.0 after 100 decisions, 84.4 after 300; keep-outro 51.6, 55.4, 64.5. Where a
/// cut lies, past a threshold, is the kind of taste the learning fares worst on. Most of such a
/// user's proposals are alike to them, so most pairs of their decisions order two proposals
/// they do not mind between as the proposals were shown, the model's way (of the pairs on the
/// songs fine-tuning holds out, the model's way before it learns: keep-outro 83 % on average,
/// keep-ends 81, keep-intro 74, against 50-59 for the panel's users, 10 runs each), and a
/// layer that weighs where a cut lies reorders those too, which cross-validation, judging
/// agreement on such pairs, counts against it.
pub fn unseen_panel() -> Vec<User> {
    vec![
        User::new("drop", Taste::Drop, 0.0),
        User::new("short-cuts", Taste::ShortCuts, 0.0),
        User::new("late-cuts", Taste::LateCuts, 0.0),
        User::new("keep-loud", Taste::KeepLoud, 0.0),
        User::new("keep-busy", Taste::KeepBusy, 0.0),
        User::new("keep-ends", Taste::KeepEnds, 0.0),
        User::new("keep-intro", Taste::KeepIntro, 0.0),
        User::new("keep-outro", Taste::KeepOutro, 0.0),
    ]
}

/// The pairs `(better, worse)` of `proposals` the user has a clear preference between (utility
/// apart by at least the taste's resolution), by their taste alone (no noise).
pub fn clear_pairs(taste: Taste, song: &Song, proposals: &[Edit]) -> Vec<(usize, usize)> {
    let u: Vec<f32> = proposals.iter().map(|e| taste.utility(song, e)).collect();
    let mut pairs = Vec::new();
    for i in 0..u.len() {
        for j in 0..u.len() {
            if u[i] - u[j] >= taste.resolution() {
                pairs.push((i, j));
            }
        }
    }
    pairs
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;
    use crate::synthetic_pairs::prepare_song;

    fn synthetic(seed: u64) -> Song {
        Song::from(prepare_song(seed).unwrap())
    }

    fn cut(song: &Song, start: usize, bars: usize) -> Edit {
        let meter = usize::from(song.grid.meter);
        Edit::new(song.grid.len(), [(start, start + bars * meter)]).unwrap()
    }

    /// One-bar cuts of the bars of `song`'s middle with the lowest and the highest sum of
    /// `feature`.
    fn extreme_bars(song: &Song, feature: usize) -> (Edit, Edit) {
        let downbeats = song.grid.bar_starts();
        let sum = |bar: usize| {
            let s = downbeats[bar];
            (s..s + usize::from(song.grid.meter))
                .map(|i| song.features.row(i)[feature])
                .sum::<f32>()
        };
        let bars = 2..downbeats.len() - 2;
        let low = bars.clone().min_by(|&x, &y| sum(x).total_cmp(&sum(y)));
        let high = bars.max_by(|&x, &y| sum(x).total_cmp(&sum(y)));
        let one_bar = |bar: Option<usize>| cut(song, downbeats[bar.unwrap()], 1);
        (one_bar(low), one_bar(high))
    }

    #[test]
    fn tastes_read_what_they_claim() {
        let song = synthetic(11);
        let downbeats = song.grid.bar_starts();
        let (a, b) = (cut(&song, downbeats[2], 1), cut(&song, downbeats[2], 3));
        assert_eq!(Taste::LongCuts.utility(&song, &b), 3.0);
        assert!(Taste::LongCuts.utility(&song, &a) < Taste::LongCuts.utility(&song, &b));
        // The quietest and loudest bar of the song's middle, by the level feature.
        let (q, l) = extreme_bars(&song, LEVEL);
        assert!(Taste::QuietOut.utility(&song, &q) > Taste::QuietOut.utility(&song, &l));
        // A chorus bar removed counts against a cut, a verse bar does not.
        let chorus = song
            .truth
            .as_ref()
            .unwrap()
            .sections
            .iter()
            .find(|s| s.name == "chorus")
            .unwrap();
        let in_chorus = downbeats
            .iter()
            .position(|&d| (chorus.start_s..chorus.end_s - 0.1).contains(&song.grid.time_of(d)))
            .unwrap();
        assert_eq!(
            Taste::KeepChorus.utility(&song, &cut(&song, downbeats[in_chorus], 1)),
            -1.0
        );
        let intro = cut(&song, downbeats[1], 1);
        assert_eq!(Taste::KeepChorus.utility(&song, &intro), 0.0);
        // Without the form (a recording), no bar is known to be chorus.
        let recording = Song {
            truth: None,
            ..song.clone()
        };
        let chorus_cut = cut(&song, downbeats[in_chorus], 1);
        assert_eq!(Taste::KeepChorus.utility(&recording, &chorus_cut), 0.0);
        assert!(Taste::KeepChorus.needs_form() && !Taste::QuietOut.needs_form());
        // Lift: the level after the join minus before it, in dB.
        let e = q.clone();
        let span = &e.removed()[0];
        let after: f32 = (span.end..span.end + 4)
            .map(|i| song.features.row(i)[LEVEL])
            .sum::<f32>()
            / 4.0;
        let before: f32 = (span.start - 4..span.start)
            .map(|i| song.features.row(i)[LEVEL])
            .sum::<f32>()
            / 4.0;
        assert!((Taste::Lift.utility(&song, &e) - 20.0 * (after - before)).abs() < 1e-3);
        // Drop is lift the other way round; short cuts long cuts the other way round.
        assert_eq!(
            Taste::Drop.utility(&song, &e),
            -Taste::Lift.utility(&song, &e)
        );
        assert_eq!(Taste::ShortCuts.utility(&song, &a), -1.0);
        assert!(Taste::ShortCuts.utility(&song, &a) > Taste::ShortCuts.utility(&song, &b));
        // Late cuts: the removed span's middle as a share of the song, later is better.
        let beats = song.grid.len() as f32;
        let early = cut(&song, downbeats[2], 1);
        let late = cut(&song, downbeats[downbeats.len() - 3], 1);
        let middle = |e: &Edit| {
            let s = &e.removed()[0];
            (s.start + s.end) as f32 / 2.0 / beats
        };
        assert_eq!(Taste::LateCuts.utility(&song, &early), middle(&early));
        assert!(
            Taste::LateCuts.utility(&song, &late) > Taste::LateCuts.utility(&song, &early) + 0.5
        );
        // Keep the loud parts: the loudest bar's beats are the song's loudest quarter, the
        // quietest bar's are not.
        assert!(
            Taste::KeepLoud.utility(&song, &l) <= -0.5,
            "{}",
            Taste::KeepLoud.utility(&song, &l)
        );
        assert_eq!(Taste::KeepLoud.utility(&song, &q), 0.0);
        // Keep the busy parts: the same, by onset strength.
        let (calm, busy) = extreme_bars(&song, ONSETS);
        // (A bar's onsets peak on a beat or two: the busiest bar holds at least one beat of the
        // song's busiest quarter, the calmest none.)
        let (busy, calm) = (
            Taste::KeepBusy.utility(&song, &busy),
            Taste::KeepBusy.utility(&song, &calm),
        );
        assert!(busy <= -0.25 && calm == 0.0, "{busy} {calm}");
        // Keep the ends: a bar of the first 15 % counts against a cut, the middle bar does not.
        assert!((downbeats[2] as f32) < 0.15 * beats - 4.0, "{beats}");
        assert_eq!(Taste::KeepEnds.utility(&song, &early), -1.0);
        let centre = cut(&song, downbeats[downbeats.len() / 2], 1);
        assert_eq!(Taste::KeepEnds.utility(&song, &centre), 0.0);
        // Keep the intro and the outro: a bar of the first or last 30 seconds counts against a
        // cut of that end, never of the other or of the middle. (The song lasts 36 s: played a
        // quarter as fast, 144 s.)
        let mut slow = song.clone();
        slow.grid.beats.iter_mut().for_each(|t| *t *= 4.0);
        slow.grid.duration_s *= 4.0;
        let last = cut(&slow, downbeats[downbeats.len() - 2], 1);
        assert!(slow.grid.time_of(downbeats[2] + 4) < 30.0);
        assert!(slow.grid.time_of(downbeats[downbeats.len() - 2]) > slow.grid.duration_s - 30.0);
        assert_eq!(Taste::KeepIntro.utility(&slow, &early), -1.0);
        assert_eq!(Taste::KeepIntro.utility(&slow, &last), 0.0);
        assert_eq!(Taste::KeepOutro.utility(&slow, &last), -1.0);
        for edit in [&early, &centre] {
            assert_eq!(Taste::KeepOutro.utility(&slow, edit), 0.0);
        }
        assert_eq!(Taste::KeepIntro.utility(&slow, &centre), 0.0);
        let names: Vec<String> = panel()
            .into_iter()
            .chain(unseen_panel())
            .map(|u| u.name)
            .collect();
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "{names:?}");
    }

    #[test]
    fn a_user_accepts_the_better_half_and_a_noisy_one_sometimes_not() {
        let song = synthetic(11);
        let downbeats = song.grid.bar_starts();
        let proposals: Vec<Edit> = (1..=6).map(|bars| cut(&song, downbeats[2], bars)).collect();
        let mut rng = StdRng::seed_from_u64(1);
        let steady = User::new("long", Taste::LongCuts, 0.0);
        assert_eq!(
            steady.verdicts(&song, &proposals, &mut rng),
            [false, false, false, true, true, true]
        );
        let noisy = User::new("long", Taste::LongCuts, 0.1);
        let flipped: usize = (0..200)
            .map(|_| {
                noisy
                    .verdicts(&song, &proposals, &mut rng)
                    .iter()
                    .zip([false, false, false, true, true, true])
                    .filter(|(v, want)| **v != *want)
                    .count()
            })
            .sum();
        // 1200 verdicts, 10 % flipped: 120 expected, 4 standard deviations either side.
        assert!((80..=160).contains(&flipped), "{flipped}");
        // Every pair at least a bar apart is clear; the order is better first.
        let clear = clear_pairs(Taste::LongCuts, &song, &proposals);
        assert_eq!(clear.len(), 15);
        assert!(clear.iter().all(|&(i, j)| i > j));
    }
}
