//! Teach: which two proposals to ask the user about. The model is least sure how to order the
//! two whose scores are closest, so an answer about them moves it most; among the pairs of
//! proposals not asked about yet, the closest are asked first, so a few answers cover many
//! proposals rather than one proposal many times. The editor auditions both and writes the
//! answer as a `comparison` record (`docs/prefs-format.md`). `trainer taste-eval --teach N`
//! measures this rule against asking at random.

use crate::session::Proposal;

/// A pair asked about, as the two proposals' `(start, end)` spans, in either order.
pub type Asked = ((usize, usize), (usize, usize));

/// The two of `shown` whose scores are closest (the lower-ranked second), leaving out pairs in
/// `asked` and, while there are any, preferring pairs of proposals not in `asked`; `None` when
/// fewer than two proposals are left to pair.
pub fn least_sure_pair(shown: &[Proposal], asked: &[Asked]) -> Option<(Proposal, Proposal)> {
    let span = |p: &Proposal| (p.start, p.end);
    let was_asked = |a: &Proposal, b: &Proposal| {
        asked
            .iter()
            .any(|&(x, y)| (x, y) == (span(a), span(b)) || (y, x) == (span(a), span(b)))
    };
    let known = |p: &Proposal| asked.iter().any(|&(x, y)| x == span(p) || y == span(p));
    let mut best: Option<((bool, f32), usize, usize)> = None;
    for i in 0..shown.len() {
        for j in i + 1..shown.len() {
            if was_asked(&shown[i], &shown[j]) {
                continue;
            }
            let gap = (shown[i].score - shown[j].score).abs();
            let key = (known(&shown[i]) || known(&shown[j]), gap);
            if best.is_none_or(|(k, _, _)| key < k) {
                best = Some((key, i, j));
            }
        }
    }
    let (_, i, j) = best?;
    let (a, b) = if shown[i].score >= shown[j].score {
        (i, j)
    } else {
        (j, i)
    };
    Some((shown[a].clone(), shown[b].clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cutscore_core::grid::BeatGrid;
    use cutscore_editing::candidates::bar_beats;

    fn shown(scores: &[f32]) -> Vec<Proposal> {
        let grid = BeatGrid::regular(0.5, 0.5, 4 * 40 + 1, 4, 3).unwrap();
        let positions = bar_beats(&grid);
        scores
            .iter()
            .enumerate()
            .map(|(k, &s)| Proposal::on_grid(&grid, &positions, (1 + 4 * k, 5 + 4 * k), s))
            .collect()
    }

    #[test]
    fn the_closest_scores_are_asked_first_fresh_proposals_next_and_never_twice() {
        let list = shown(&[7.0, 5.0, 4.9, 2.0]);
        let (a, b) = least_sure_pair(&list, &[]).unwrap();
        assert_eq!((a.score, b.score), (5.0, 4.9));
        // The only pair of proposals not asked about yet comes next, however far apart.
        let mut asked = vec![((b.start, b.end), (a.start, a.end))];
        let (a, b) = least_sure_pair(&list, &asked).unwrap();
        assert_eq!((a.score, b.score), (7.0, 2.0));
        // Then the closest pair not asked.
        asked.push(((a.start, a.end), (b.start, b.end)));
        let (a, b) = least_sure_pair(&list, &asked).unwrap();
        assert_eq!((a.score, b.score), (7.0, 5.0));
        let all: Vec<Asked> = (0..4)
            .flat_map(|i| (i + 1..4).map(move |j| (i, j)))
            .map(|(i, j)| ((list[i].start, list[i].end), (list[j].start, list[j].end)))
            .collect();
        assert!(least_sure_pair(&list, &all).is_none());
        assert!(least_sure_pair(&list[..1], &[]).is_none());
    }
}
