//! The coach's answers to questions: the prompt grounded in retrieved principles, and
//! the sources an answer cites (each principle's id, title and one verbatim quote).
//!
//! Used by the REPL (a plain question) and by `upward chat --coach` (its JSON has
//! `sources`), so both build the same prompt and cite the same way.

use super::context::{render_context, try_render};
use super::{Hit, KnowledgeBase};
use crate::lang::Lang;
use serde::Serialize;

/// Principles retrieved per question.
const TOP_K: usize = 3;
/// Tokens of the context the principles may take.
const CONTEXT_TOKENS: usize = 600;

/// A principle a coach answer drew on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Cited {
    /// Principle id in the knowledge base.
    pub id: String,
    /// Its title in the answer's language.
    pub title: String,
    /// A verbatim quote of the talk (the principle's quote closest to the question).
    pub quote: String,
}

/// The system prompt of a coach answer and the principles it holds.
pub struct CoachPrompt {
    /// Instructions plus the principles placed in context.
    pub system: String,
    /// The principles in the context, best first: the answer's sources.
    pub sources: Vec<Cited>,
}

/// Builds the coach's prompt for `question`: the best principles that fit the context
/// budget (tokens counted by `count_tokens`), and the sources to cite.
pub fn coach_prompt(
    kb: &KnowledgeBase,
    question: &str,
    lang: Lang,
    count_tokens: &dyn Fn(&str) -> usize,
) -> CoachPrompt {
    let hits = kb.search(question, None, TOP_K);
    let context = render_context(&hits, lang, CONTEXT_TOKENS, count_tokens);
    let system = lang.pick(
        "你是一位销售辅导教练，帮助销售和直属领导相处（向上管理）。只根据下面的原则和引用回答，简洁具体，用中文。",
        "You are a sales coach helping salespeople work with their direct boss (managing up). Answer only from the principles and quotes below, concisely and concretely, in English.",
    );
    // The principles that made it into the context: the longest prefix of the hits that
    // fits the budget, as `render_context` chose it.
    let used = if context.is_empty() {
        0
    } else {
        (1..=hits.len())
            .rev()
            .find(|&n| {
                try_render(&hits[..n], lang).is_ok_and(|t| count_tokens(&t) <= CONTEXT_TOKENS)
            })
            .unwrap_or(1)
    };
    let sources = hits[..used].iter().map(|h| cite(h, question, lang)).collect();
    CoachPrompt { system: format!("{system}\n\n{context}"), sources }
}

/// The source for one hit: its quote that shares the most with the question.
fn cite(hit: &Hit, question: &str, lang: Lang) -> Cited {
    let p = hit.principle;
    let q = grams(question);
    let quote = p
        .quotes
        .iter()
        .enumerate()
        .max_by_key(|(i, quote)| (grams(quote).intersection(&q).count(), usize::MAX - i))
        .map(|(_, quote)| quote.trim().to_string())
        .unwrap_or_default();
    Cited { id: p.id.clone(), title: p.title.get(lang).to_string(), quote }
}

/// Adjacent CJK character pairs and lower-cased Latin words.
fn grams(s: &str) -> std::collections::HashSet<String> {
    let cs: Vec<char> = s.chars().filter(|c| crate::lang::is_cjk(*c)).collect();
    let mut out: std::collections::HashSet<String> =
        cs.windows(2).map(|w| w.iter().collect()).collect();
    out.extend(
        s.split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|w| w.len() > 3)
            .map(|w| w.to_ascii_lowercase()),
    );
    out
}

/// The sources as the REPL shows them after an answer.
pub fn render_sources(sources: &[Cited], lang: Lang) -> String {
    if sources.is_empty() {
        return String::new();
    }
    let mut out = String::from(lang.pick("依据（演讲原话）：\n", "Sources (the talk's words):\n"));
    for s in sources {
        out.push_str(&format!("  • {} · {}\n    「{}」\n", s.id, s.title, s.quote));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_the_principles_in_context_with_verbatim_quotes() {
        let kb = KnowledgeBase::load_default().unwrap();
        let transcript = include_str!("../../knowledge/source/transcript-zh.txt");
        for (q, lang) in [
            ("客户压价，我该怎么跟领导求助？", Lang::Zh),
            ("How do I thank my boss at year end?", Lang::En),
        ] {
            // Everything fits: every principle retrieved is in context and cited.
            let p = coach_prompt(&kb, q, lang, &|_| 0);
            assert_eq!(p.sources.len(), kb.search(q, None, TOP_K).len(), "{q}");
            assert!(!p.sources.is_empty(), "{q}");
            for s in &p.sources {
                assert!(p.system.contains(&s.id), "{} not in context", s.id);
                assert!(transcript.contains(&s.quote), "not verbatim: {}", s.quote);
                assert!(kb.principle(&s.id).is_some());
            }
            let shown = render_sources(&p.sources, lang);
            assert!(shown.contains(&p.sources[0].id) && shown.contains(&p.sources[0].quote));
        }
        // A tight budget keeps fewer principles, and only those are cited.
        let q = "客户压价，我该怎么跟领导求助？";
        let full = coach_prompt(&kb, q, Lang::Zh, &|_| 0);
        let one = full.system.len() / full.sources.len().max(1);
        let tight = coach_prompt(&kb, q, Lang::Zh, &|t| if t.len() > one { 1_000_000 } else { 0 });
        assert!(tight.sources.len() < full.sources.len(), "{}", tight.sources.len());
        for s in &tight.sources {
            assert!(tight.system.contains(&s.id));
        }
    }
}
