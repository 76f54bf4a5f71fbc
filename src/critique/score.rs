//! The 0–100 score: criterion weights times credit (met 1, partial 0.5, missing 0).

use super::{rubric::Rubric, DraftKind, Status};

/// Weighted score of a set of verdicts for `kind` (criteria not in the rubric are ignored).
pub fn score(kind: DraftKind, verdicts: &[(&str, Status)]) -> u8 {
    score_rubric(kind.into(), verdicts)
}

/// Weighted score of a set of verdicts on `rubric` (criteria not in it are ignored).
pub fn score_rubric(rubric: Rubric, verdicts: &[(&str, Status)]) -> u8 {
    let mut total = 0.0f32;
    let mut got = 0.0f32;
    for c in rubric.criteria() {
        total += c.weight as f32;
        if let Some((_, s)) = verdicts.iter().find(|(id, _)| *id == c.id) {
            got += c.weight as f32 * s.credit();
        }
    }
    if total == 0.0 {
        return 0;
    }
    (100.0 * got / total).round().clamp(0.0, 100.0) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_and_credit() {
        let all_met: Vec<_> =
            DraftKind::Help.criteria().iter().map(|&id| (id, Status::Met)).collect();
        assert_eq!(score(DraftKind::Help, &all_met), 100);
        assert_eq!(score(DraftKind::Help, &[]), 0);
        // situation (20) met + ask (20) partial = 30.
        assert_eq!(
            score(DraftKind::Help, &[("situation", Status::Met), ("ask", Status::Partial)]),
            30
        );
        // A thanks id does not count on the help rubric.
        assert_eq!(score(DraftKind::Help, &[("specific", Status::Met)]), 0);
    }
}
