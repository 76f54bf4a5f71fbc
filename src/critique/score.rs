//! The 0–100 score: criterion weights times [`Status::value`] (met 1, partial 0.5,
//! missing 0).

use super::{Criterion, DraftKind, Rubric, Status};

/// Weighted score of a set of verdicts for `kind` (criteria not in the rubric are ignored).
pub fn score(kind: DraftKind, verdicts: &[(Criterion, Status)]) -> u8 {
    score_rubric(kind.into(), verdicts)
}

/// Weighted score of a set of verdicts on `rubric` (criteria not in it are ignored).
pub fn score_rubric(rubric: Rubric, verdicts: &[(Criterion, Status)]) -> u8 {
    let mut total = 0.0f32;
    let mut got = 0.0f32;
    for c in rubric.defs() {
        total += c.weight as f32;
        if let Some((_, s)) = verdicts.iter().find(|(id, _)| *id == c.id) {
            got += c.weight as f32 * s.value();
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
            DraftKind::Help.criteria().iter().map(|&c| (c, Status::Met)).collect();
        assert_eq!(score(DraftKind::Help, &all_met), 100);
        assert_eq!(score(DraftKind::Help, &[]), 0);
        // situation (20) met + ask (20) partial = 30.
        assert_eq!(
            score(
                DraftKind::Help,
                &[(Criterion::Situation, Status::Met), (Criterion::Ask, Status::Partial)]
            ),
            30
        );
        // A thanks id does not count on the help rubric.
        assert_eq!(score(DraftKind::Help, &[(Criterion::Specific, Status::Met)]), 0);
    }
}
