//! Where the "why" comes from: principles of the talk that support a criterion.

use super::PrincipleRef;
use crate::kb::Principle;

/// Anything that can list the principles supporting a criterion: the knowledge base, or
/// a plain list of principles (tests, tools).
pub trait PrincipleSource {
    /// Principles whose `criteria` include `criterion`, most relevant first.
    fn principles_for_criterion(&self, criterion: &str) -> Vec<&Principle>;
}

impl PrincipleSource for [Principle] {
    fn principles_for_criterion(&self, criterion: &str) -> Vec<&Principle> {
        self.iter().filter(|p| p.criteria.iter().any(|c| c == criterion)).collect()
    }
}

impl PrincipleSource for Vec<Principle> {
    fn principles_for_criterion(&self, criterion: &str) -> Vec<&Principle> {
        self.as_slice().principles_for_criterion(criterion)
    }
}

/// Most principles cited per criterion.
const MAX_REFS: usize = 2;

/// Up to two principles for `criterion`, each with its first (shortest non-empty) quote.
pub(crate) fn refs_for<K: PrincipleSource + ?Sized>(kb: &K, criterion: &str) -> Vec<PrincipleRef> {
    kb.principles_for_criterion(criterion)
        .into_iter()
        .filter_map(|p| {
            let quote = p.quotes.iter().map(|q| q.trim()).find(|q| !q.is_empty())?;
            Some(PrincipleRef { id: p.id.clone(), quote: quote.to_string() })
        })
        .take(MAX_REFS)
        .collect()
}
