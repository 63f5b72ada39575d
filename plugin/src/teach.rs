//! Teach: which two proposals to ask the user about. The pair whose answer would teach the
//! model most ([`cutscore_core::question`]): the model is unsure how to order them, they differ
//! in what a taste can be about, and they are unlike the pairs asked before. The editor
//! auditions both and writes the answer as a `comparison` record (`docs/prefs-format.md`).
//! `trainer taste-eval --teach N` measures this rule against the closest scores and against
//! asking at random.

use cutscore_core::question::{Answer, Questions};
use cutscore_core::taste::TASTE_INPUTS;

use crate::session::Proposal;

/// A pair asked about (or skipped): the two proposals' `(start, end)` spans, in either order,
/// and what the question told the model (nothing, when skipped).
#[derive(Debug, Clone, PartialEq)]
pub struct Asked {
    pub spans: ((usize, usize), (usize, usize)),
    pub answer: Answer,
}

impl Asked {
    /// The question about `a` and `b`, both summarised, answered.
    pub fn new(a: &Proposal, b: &Proposal) -> Option<Self> {
        Some(Self {
            spans: ((a.start, a.end), (b.start, b.end)),
            answer: Answer::new(a.summary.as_ref()?, b.summary.as_ref()?, a.score, b.score),
        })
    }

    /// The question about `a` and `b`, skipped: never asked again, and it taught nothing.
    pub fn skipped(a: &Proposal, b: &Proposal) -> Option<Self> {
        let mut asked = Self::new(a, b)?;
        asked.answer.weight = 0.0;
        Some(asked)
    }

    fn is(&self, a: &Proposal, b: &Proposal) -> bool {
        let (x, y) = self.spans;
        let (a, b) = ((a.start, a.end), (b.start, b.end));
        (x, y) == (a, b) || (y, x) == (a, b)
    }
}

/// The two summarised proposals of `shown` whose answer would teach most (the better-scored
/// first), leaving out pairs in `asked`; `None` when no such pair is left.
pub fn next_question(shown: &[Proposal], asked: &[Asked]) -> Option<(Proposal, Proposal)> {
    let summarised: Vec<(&Proposal, &[f32; TASTE_INPUTS])> = shown
        .iter()
        .filter_map(|p| Some((p, p.summary.as_ref()?)))
        .collect();
    let answers: Vec<Answer> = asked.iter().map(|a| a.answer.clone()).collect();
    let questions = Questions::new(summarised.iter().map(|(_, s)| *s), &answers);
    let mut best: Option<(f32, usize, usize)> = None;
    for i in 0..summarised.len() {
        for j in i + 1..summarised.len() {
            let ((a, x), (b, y)) = (summarised[i], summarised[j]);
            if asked.iter().any(|q| q.is(a, b)) {
                continue;
            }
            let value = questions.value(x, y, a.score, b.score);
            if best.is_none_or(|(v, _, _)| value > v) {
                best = Some((value, i, j));
            }
        }
    }
    let (_, i, j) = best?;
    let (a, b) = (summarised[i].0, summarised[j].0);
    Some(if a.score >= b.score {
        (a.clone(), b.clone())
    } else {
        (b.clone(), a.clone())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use cutscore_core::grid::BeatGrid;
    use cutscore_editing::candidates::bar_beats;

    /// Proposals on consecutive bars with these scores and taste summaries (inputs 0 and 1).
    fn shown(list: &[(f32, Option<(f32, f32)>)]) -> Vec<Proposal> {
        let grid = BeatGrid::regular(0.5, 0.5, 4 * 40 + 1, 4, 3).unwrap();
        let positions = bar_beats(&grid);
        list.iter()
            .enumerate()
            .map(|(k, &(score, summary))| {
                let mut p = Proposal::on_grid(&grid, &positions, (1 + 4 * k, 5 + 4 * k), score);
                p.summary = summary.map(|(x, y)| {
                    let mut s = [0f32; TASTE_INPUTS];
                    (s[0], s[1]) = (x, y);
                    s
                });
                p
            })
            .collect()
    }

    #[test]
    fn the_most_telling_pair_is_asked_first_then_a_new_direction_and_never_twice() {
        let list = shown(&[
            (5.0, Some((1.0, 0.0))),
            (4.98, Some((1.02, 0.0))),
            (4.5, Some((-1.0, 0.0))),
            (4.4, Some((0.0, 1.0))),
            (4.3, Some((0.0, -1.0))),
            (4.99, None),
        ]);
        // The closest scores (5.0 and 4.98, or 4.99 with no summary) are near-identical cuts;
        // the two that differ most on input 1, scored 0.1 apart, teach more.
        let (a, b) = next_question(&list, &[]).unwrap();
        assert_eq!((a.score, b.score), (4.4, 4.3));
        // Answered: the next question is about input 0 (one of the first two against the third).
        let mut asked = vec![Asked::new(&a, &b).unwrap()];
        let (a, b) = next_question(&list, &asked).unwrap();
        assert!(
            [5.0, 4.98].contains(&a.score) && b.score == 4.5,
            "{a:?} {b:?}"
        );
        asked.push(Asked::new(&b, &a).unwrap());
        // Every pair of summarised proposals is asked once, then nothing is left.
        while let Some((a, b)) = next_question(&list, &asked) {
            assert!(!asked.iter().any(|q| q.is(&a, &b)), "asked twice");
            assert!(a.summary.is_some() && b.summary.is_some());
            asked.push(Asked::new(&a, &b).unwrap());
        }
        assert_eq!(asked.len(), 10);
        assert!(next_question(&list[..1], &[]).is_none());
    }
}
