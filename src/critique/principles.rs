//! Where the "why" comes from: principles of the talk that support a criterion.

use super::{Criterion, PrincipleRef};
use crate::kb::Principle;

/// Anything that can list the principles supporting a criterion: the knowledge base, or
/// a plain list of principles (tests, tools).
pub trait PrincipleSource {
    /// Principles whose `criteria` include `criterion`, most relevant first.
    fn principles_for_criterion(&self, criterion: &str) -> Vec<&Principle>;
}

impl PrincipleSource for [Principle] {
    fn principles_for_criterion(&self, criterion: &str) -> Vec<&Principle> {
        self.iter().filter(|p| p.criteria.iter().any(|c| c.as_str() == criterion)).collect()
    }
}

impl PrincipleSource for Vec<Principle> {
    fn principles_for_criterion(&self, criterion: &str) -> Vec<&Principle> {
        self.as_slice().principles_for_criterion(criterion)
    }
}

/// Most principles cited per criterion.
const MAX_REFS: usize = 2;

/// Up to two principles for `criterion`, most relevant first, each with the quote that
/// shares the most wording with the criterion's definition and advice (first on ties).
pub(crate) fn refs_for<K: PrincipleSource + ?Sized>(
    kb: &K,
    criterion: Criterion,
) -> Vec<PrincipleRef> {
    let c = criterion.def();
    let topic = format!("{}{}{}", c.name_zh, c.def_zh, c.fix_zh);
    let topic = bigrams(&topic);
    kb.principles_for_criterion(criterion.as_str())
        .into_iter()
        .filter_map(|p| {
            let quote = p
                .quotes
                .iter()
                .map(|q| q.trim())
                .filter(|q| !q.is_empty())
                .enumerate()
                .max_by_key(|(i, q)| (bigrams(q).intersection(&topic).count(), usize::MAX - i))
                .map(|(_, q)| q)?;
            Some(PrincipleRef { id: p.id.clone(), quote: quote.to_string() })
        })
        .take(MAX_REFS)
        .collect()
}

/// Pairs of adjacent CJK characters (a cheap overlap measure for Chinese).
fn bigrams(s: &str) -> std::collections::HashSet<(char, char)> {
    let cs: Vec<char> = s.chars().filter(|c| crate::lang::is_cjk(*c)).collect();
    cs.windows(2).map(|w| (w[0], w[1])).collect()
}

impl PrincipleSource for crate::kb::KnowledgeBase {
    fn principles_for_criterion(&self, criterion: &str) -> Vec<&Principle> {
        crate::kb::KnowledgeBase::principles_for_criterion(self, criterion)
    }
}
