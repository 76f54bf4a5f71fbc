//! The draft split into sentences (byte ranges, quoted with character offsets), and
//! small helpers every detector shares.

use super::super::Evidence;
use regex::Regex;

/// The draft split into sentences, with helpers to quote them.
pub(crate) struct Doc<'a> {
    pub(crate) text: &'a str,
    /// Byte ranges of sentences, trimmed, terminators included.
    pub(crate) sents: Vec<(usize, usize)>,
    /// Per sentence: is it a request? (computed on first use)
    pub(super) requests: std::cell::OnceCell<Vec<bool>>,
}

impl<'a> Doc<'a> {
    pub(crate) fn new(text: &'a str) -> Doc<'a> {
        let mut sents = Vec::new();
        let mut start = 0;
        let mut it = text.char_indices().peekable();
        let mut prev: Option<char> = None;
        while let Some((i, c)) = it.next() {
            let next = it.peek().map(|&(_, n)| n);
            // A line break ends a sentence after Chinese text or punctuation, or before a
            // blank line; an English line wrapped mid-sentence ("…for Corvid\nby Friday?")
            // stays one sentence.
            let line_end = c == '\n'
                && (next == Some('\n')
                    || next.is_some_and(crate::lang::is_cjk)
                    || prev.is_none_or(|p| crate::lang::is_cjk(p) || ".!?;:…".contains(p)));
            let end_here = matches!(c, '。' | '！' | '？' | '!' | '?' | '；' | ';' | '…')
                || line_end
                || (c == '.' && next.is_none_or(|n| n.is_whitespace()));
            if !c.is_whitespace() {
                prev = Some(c);
            }
            // Keep runs of terminators ("？！", "...") together.
            let more_term =
                next.is_some_and(|n| matches!(n, '。' | '！' | '？' | '!' | '?' | '.' | '…'));
            if end_here && !more_term {
                push_trimmed(text, start, i + c.len_utf8(), &mut sents);
                start = i + c.len_utf8();
            }
        }
        push_trimmed(text, start, text.len(), &mut sents);
        Doc { text, sents, requests: std::cell::OnceCell::new() }
    }

    /// Index of the sentence holding byte `b`.
    pub(crate) fn sent_at(&self, b: usize) -> Option<usize> {
        // Sentences are sorted and disjoint: binary search.
        let i = self.sents.partition_point(|&(s, _)| s <= b).checked_sub(1)?;
        (b < self.sents[i].1).then_some(i)
    }

    pub(super) fn sent_text(&self, i: usize) -> &'a str {
        let (s, e) = self.sents[i];
        &self.text[s..e]
    }

    /// The sentence around byte `b` as evidence (char offsets); in a long sentence, only
    /// the clause (between commas or colons) around `b`.
    pub(crate) fn evidence_at(&self, b: usize) -> Option<Evidence> {
        let i = self.sent_at(b)?;
        let (s, e) = self.sents[i];
        if self.text[s..e].chars().count() <= LONG_SENTENCE {
            return Some(self.evidence_span(s, e));
        }
        let is_break = |c: char| matches!(c, '，' | ',' | '：' | ':' | '、');
        let cs = self.text[s..b]
            .rfind(is_break)
            .map_or(s, |k| s + k + self.text[s + k..].chars().next().map_or(1, char::len_utf8));
        let ce = self.text[b..e].find(is_break).map_or(e, |k| b + k);
        let (cs, ce) = trim_span(self.text, cs, ce);
        Some(self.evidence_span(cs, ce))
    }

    pub(crate) fn evidence_span(&self, s: usize, e: usize) -> Evidence {
        let start = self.text[..s].chars().count();
        let text = self.text[s..e].to_string();
        let end = start + text.chars().count();
        Evidence { start, end, text }
    }

    /// Byte offsets of matches of `re`, skipping sentences `skip` rejects.
    pub(super) fn matches(
        &self,
        re: &Regex,
        skip: &dyn Fn(usize) -> bool,
    ) -> Vec<(usize, &'a str)> {
        re.find_iter(self.text)
            .filter(|m| self.sent_at(m.start()).is_none_or(|i| !skip(i)))
            .map(|m| (m.start(), m.as_str()))
            .collect()
    }

    pub(super) fn first(&self, re: &Regex) -> Option<usize> {
        re.find(self.text).map(|m| m.start())
    }
}

/// Sentences longer than this (in characters) are quoted by clause.
pub(super) const LONG_SENTENCE: usize = 40;

pub(super) fn trim_span(text: &str, s: usize, e: usize) -> (usize, usize) {
    let piece = &text[s..e];
    let lead = piece.len() - piece.trim_start().len();
    let trail = piece.len() - piece.trim_end().len();
    if lead + trail >= piece.len() {
        (s, e)
    } else {
        (s + lead, e - trail)
    }
}

pub(super) fn push_trimmed(text: &str, s: usize, e: usize, out: &mut Vec<(usize, usize)>) {
    let piece = &text[s..e];
    let lead = piece.len() - piece.trim_start().len();
    let trail = piece.len() - piece.trim_end().len();
    if lead + trail < piece.len() {
        out.push((s + lead, e - trail));
    }
}

pub(super) fn never(_: usize) -> bool {
    false
}

/// Number of distinct matched strings (case-folded).
pub(super) fn distinct(ms: &[(usize, &str)]) -> usize {
    let mut seen: Vec<String> = ms.iter().map(|(_, m)| m.to_lowercase()).collect();
    seen.sort();
    seen.dedup();
    seen.len()
}
