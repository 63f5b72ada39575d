//! The bars of a song as cuts see them: where a whole-bar cut may start and resume (between a
//! kept intro and outro, outside regions that must be kept) and which bars must go. Shared by
//! the candidate cuts the plugin proposes ([`super::candidates`]) and the fit's search
//! ([`super::fit`]), so both enumerate the same cuts under the same rules.

use std::ops::Range;

use cutscore_core::grid::BeatGrid;

/// What limits the cuts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BarLimits<'a> {
    /// Bars at the start that are never cut.
    pub keep_intro_bars: usize,
    /// Bars at the end that are never cut.
    pub keep_outro_bars: usize,
    /// No cut may touch a bar that overlaps one of these (seconds).
    pub keep_regions: &'a [Range<f64>],
    /// Bars that overlap one of these (seconds) must be removed.
    pub remove_regions: &'a [Range<f64>],
    /// Cuts start and resume only on the bar lines of this parity (0 or 1, counted among the
    /// grid's bar lines): the strong ones where every other bar line is weak
    /// (`cutscore_analysis::hypermeter`). `None`: on any bar line.
    pub strong_parity: Option<usize>,
}

/// The song's bars as the search sees them: where cuts may start and end, which bars must be
/// kept or removed.
pub(crate) struct Bars {
    /// Start time of every bar, plus the end of the track: `count() + 1` values.
    pub times: Vec<f64>,
    /// Bars that overlap a region that must be removed.
    pub forced: Vec<bool>,
    /// Bars that overlap a region that must be kept.
    pub kept: Vec<bool>,
    /// `kept_before[b]`: kept bars among bars `0..b`, to test a span in O(1).
    pub kept_before: Vec<usize>,
    /// First bar a cut may remove (the end of the kept intro).
    pub first: usize,
    /// Last bar a cut may resume on (the start of the kept outro, and never past the last
    /// downbeat: a cut resumes on one).
    pub last: usize,
    /// [`BarLimits::strong_parity`].
    pub strong_parity: Option<usize>,
}

impl Bars {
    pub fn new(grid: &BeatGrid, downbeats: &[usize], limits: &BarLimits) -> Self {
        let count = downbeats.len();
        let times: Vec<f64> = downbeats
            .iter()
            .map(|&d| grid.time_of(d))
            .chain([grid.time_of(grid.len())])
            .collect();
        let overlaps = |regions: &[Range<f64>]| -> Vec<bool> {
            (0..count)
                .map(|b| {
                    let (a, z) = (times[b], times[b + 1]);
                    regions.iter().any(|r| r.start < z && r.end > a)
                })
                .collect()
        };
        let forced = overlaps(limits.remove_regions);
        let kept = overlaps(limits.keep_regions);
        let mut kept_before = vec![0; count + 1];
        for b in 0..count {
            kept_before[b + 1] = kept_before[b] + usize::from(kept[b]);
        }
        Self {
            times,
            forced,
            kept,
            kept_before,
            first: limits.keep_intro_bars,
            last: count
                .saturating_sub(limits.keep_outro_bars)
                .min(count.saturating_sub(1)),
            strong_parity: limits.strong_parity,
        }
    }

    pub fn count(&self) -> usize {
        self.forced.len()
    }

    pub fn seconds(&self, start: usize, end: usize) -> f64 {
        self.times[end] - self.times[start]
    }

    /// Whether bars `start..end` may be cut: inside the removable middle, no kept bar, from and
    /// to a strong bar line where only those are cut on.
    pub fn allows(&self, start: usize, end: usize) -> bool {
        self.first <= start
            && start < end
            && end <= self.last
            && self.kept_before[end] == self.kept_before[start]
            && self
                .strong_parity
                .is_none_or(|p| start % 2 == p && end % 2 == p)
    }

    /// The phrase boundaries for phrases of `phrase` bars (`fit`'s module docs, step 1),
    /// counted from the first strong bar line where only those are cut on.
    pub fn boundaries(&self, phrase: usize) -> Vec<usize> {
        let offset = self.strong_parity.unwrap_or(0);
        let mut ends: Vec<usize> = (self.first..=self.last)
            .filter(|b| {
                b.checked_sub(offset)
                    .is_some_and(|b| b.is_multiple_of(phrase))
            })
            .collect();
        ends.extend([self.first, self.last]);
        // Region edges: where a run of kept or forced bars begins or ends.
        for flags in [&self.kept, &self.forced] {
            for b in 1..self.count() {
                if flags[b] != flags[b - 1] {
                    ends.push(b);
                }
            }
        }
        ends.retain(|b| (self.first..=self.last).contains(b));
        ends.sort_unstable();
        ends.dedup();
        ends
    }

    /// Every cut of one of `lengths` bars (in that order from each start bar, starts in
    /// order) that [`allows`](Self::allows) and that removes at most `max_seconds`, as
    /// `(start_bar, end_bar)`.
    pub fn short_cuts(&self, lengths: &[usize], max_seconds: f64) -> Vec<(usize, usize)> {
        let mut spans = Vec::new();
        for start in self.first..self.last {
            for &length in lengths {
                let end = start + length;
                if length > 0 && self.allows(start, end) && self.seconds(start, end) <= max_seconds
                {
                    spans.push((start, end));
                }
            }
        }
        spans
    }
}
