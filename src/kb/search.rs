//! Retrieval over the principles: a bilingual BM25F index.
//!
//! Chinese text is segmented with jieba (search mode, with the knowledge base's Chinese tags
//! added to its dictionary so domain words stay whole); English text is lower-cased, split
//! into words, stripped of stop words and lightly stemmed. Each language has its own index
//! over that language's fields (title, summary, tags, examples, and for Chinese the quotes),
//! with field weights; a query's terms score against the index of their script, so an
//! English query finds principles through their English fields and a Chinese query through
//! their Chinese ones. Query terms are expanded with the synonym groups of
//! `knowledge/synonyms.toml` at a reduced weight.

use super::types::Principle;
use crate::lang::Lang;
use jieba_rs::Jieba;
use std::collections::HashMap;

mod query;
use query::{is_en_stop, one_edit_apart, strip_question_tails, ZH_STOP};

/// One search result.
#[derive(Clone, Copy, Debug)]
pub struct Hit<'a> {
    /// The principle found.
    pub principle: &'a Principle,
    /// Its relevance score (higher is better; only comparable within one search).
    pub score: f32,
}

const K1: f32 = 1.2;
const B: f32 = 0.75;
/// Weight of a synonym brought in by query expansion, relative to a typed term.
const SYNONYM_WEIGHT: f32 = 0.5;
/// Weight of a known word standing in for a query word that looks like its typo.
const TYPO_WEIGHT: f32 = 0.8;
/// Weight of query terms written in the other language than the query's.
const OTHER_LANG_WEIGHT: f32 = 0.7;

/// Field weights: how much a term occurrence in each field counts.
const W_TITLE: f32 = 3.0;
const W_TAG: f32 = 2.5;
const W_SUMMARY: f32 = 1.5;
const W_QUOTE: f32 = 1.0;
const W_DO: f32 = 0.8;
const W_DONT: f32 = 0.6;

/// Whether `c` is a CJK ideograph (not CJK punctuation).
fn is_ideograph(c: char) -> bool {
    matches!(c as u32, 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x2FA1F)
}

/// Light English stemmer: folds plurals, -ing, -ed and British -ise spellings so that
/// "reports"/"reporting"/"reported" and "criticise"/"criticize" meet.
pub(crate) fn stem(word: &str) -> String {
    let mut w = word.trim_matches('\'').to_string();
    if let Some(s) = w.strip_suffix("'s") {
        w = s.to_string();
    }
    let n = w.chars().count();
    if n <= 3 {
        return w;
    }
    // British -is- spellings.
    for (from, to) in [("isation", "ization"), ("ising", "izing"), ("ised", "ized"), ("ise", "ize")]
    {
        if n > from.len() + 2 {
            if let Some(s) = w.strip_suffix(from) {
                w = format!("{s}{to}");
                break;
            }
        }
    }
    let undouble = |s: &str| -> String {
        let b = s.as_bytes();
        if b.len() >= 3 && b[b.len() - 1] == b[b.len() - 2] && !b"lsz".contains(&b[b.len() - 1]) {
            s[..s.len() - 1].to_string()
        } else {
            s.to_string()
        }
    };
    // Plurals.
    let mut plural = true;
    if let Some(s) = w.strip_suffix("ies").filter(|s| s.len() >= 2) {
        w = format!("{s}y");
    } else if ["sses", "shes", "ches", "xes"].iter().any(|x| w.ends_with(x)) {
        w.truncate(w.len() - 2);
    } else if w.ends_with('s') && !w.ends_with("ss") && !w.ends_with("us") && !w.ends_with("is") {
        w.truncate(w.len() - 1);
    } else {
        plural = false;
    }
    // Verb forms.
    if !plural {
        if let Some(s) = w.strip_suffix("ing").filter(|s| s.len() >= 3) {
            w = undouble(s);
        } else if let Some(s) = w.strip_suffix("ied").filter(|s| s.len() >= 2) {
            w = format!("{s}y");
        } else if let Some(s) = w.strip_suffix("ed").filter(|s| s.len() >= 3) {
            w = undouble(s);
        }
    }
    // A final silent e ("update"/"updated", "criticize"/"criticized").
    if w.len() >= 4 && w.ends_with('e') && !w.ends_with("ee") {
        w.truncate(w.len() - 1);
    }
    w
}

/// Splits text into index terms: jieba words for Chinese runs, stemmed words for the rest.
pub(crate) struct Analyzer {
    jieba: Jieba,
}

impl Analyzer {
    /// An analyzer whose dictionary also knows `words` (domain terms kept whole).
    pub fn new<'a>(words: impl Iterator<Item = &'a str>) -> Analyzer {
        let mut jieba = Jieba::new();
        for w in words {
            if w.chars().count() >= 2 && w.chars().all(is_ideograph) && !jieba.has_word(w) {
                jieba.add_word(w, None, None);
            }
        }
        Analyzer { jieba }
    }

    /// Appends the terms of `text` to `out`.
    pub fn terms(&self, text: &str, out: &mut Vec<String>) {
        let mut run = String::new();
        let mut run_is_cjk = false;
        // The previous English word of the clause: adjacent words (stop words skipped) also
        // count as a two-word phrase, so "boss's boss" meets "boss of my boss".
        let mut prev: Option<String> = None;
        let flush =
            |run: &mut String, cjk: bool, out: &mut Vec<String>, prev: &mut Option<String>| {
                if run.is_empty() {
                    return;
                }
                if cjk {
                    for t in self.jieba.cut_for_search(run, true) {
                        if !ZH_STOP.contains(&t) {
                            out.push(t.to_string());
                        }
                    }
                    *prev = None;
                } else {
                    let lower = run.to_lowercase();
                    let word = lower.trim_matches(['-', '\'']);
                    let mut words = Vec::new();
                    // A hyphenated compound ("year-end", "one-on-one") counts as itself, joined,
                    // and as its parts, so "year end" and "year-end" meet.
                    if word.contains('-') {
                        let parts: Vec<&str> = word.split('-').filter(|p| !p.is_empty()).collect();
                        out.push(stem(&parts.concat()));
                        words.extend(parts.into_iter().filter(|p| !is_en_stop(p)).map(stem));
                    } else if !word.is_empty() && !is_en_stop(word) {
                        words.push(stem(word));
                    }
                    for w in words {
                        if let Some(p) = prev.as_deref() {
                            out.push(format!("{p} {w}"));
                        }
                        out.push(w.clone());
                        *prev = Some(w);
                    }
                }
                run.clear();
            };
        for c in text.chars() {
            if is_ideograph(c) {
                if !run_is_cjk {
                    flush(&mut run, false, out, &mut prev);
                    run_is_cjk = true;
                }
                run.push(c);
            } else if c.is_alphanumeric()
                || ((c == '\'' || c == '-') && !run_is_cjk && !run.is_empty())
            {
                if run_is_cjk {
                    flush(&mut run, true, out, &mut prev);
                    run_is_cjk = false;
                }
                run.push(c);
            } else {
                flush(&mut run, run_is_cjk, out, &mut prev);
                run_is_cjk = false;
                if !c.is_whitespace() {
                    prev = None;
                }
            }
        }
        flush(&mut run, run_is_cjk, out, &mut prev);
    }

    fn terms_of(&self, text: &str) -> Vec<String> {
        let mut v = Vec::new();
        self.terms(text, &mut v);
        v
    }
}

/// The language a term belongs to, by its script.
fn term_lang(t: &str) -> Lang {
    if t.chars().next().is_some_and(is_ideograph) {
        Lang::Zh
    } else {
        Lang::En
    }
}

/// BM25F postings of one language.
#[derive(Default)]
struct LangIndex {
    /// term -> (doc, weighted term frequency)
    postings: HashMap<String, Vec<(u32, f32)>>,
    doc_len: Vec<f32>,
    avg_len: f32,
}

impl LangIndex {
    fn build(docs: &[HashMap<String, f32>]) -> LangIndex {
        let mut idx = LangIndex::default();
        for (d, doc) in docs.iter().enumerate() {
            idx.doc_len.push(doc.values().sum());
            for (t, &tf) in doc {
                idx.postings.entry(t.clone()).or_default().push((d as u32, tf));
            }
        }
        let n = docs.len().max(1) as f32;
        idx.avg_len = (idx.doc_len.iter().sum::<f32>() / n).max(1.0);
        idx
    }

    /// BM25 idf of a term, `None` when no document has it.
    fn idf(&self, term: &str) -> Option<f32> {
        let post = self.postings.get(term)?;
        let n = self.doc_len.len() as f32;
        let df = post.len() as f32;
        Some((1.0 + (n - df + 0.5) / (df + 0.5)).ln())
    }

    fn add_scores(&self, term: &str, qw: f32, scores: &mut [f32]) {
        let Some(post) = self.postings.get(term) else {
            return;
        };
        let n = self.doc_len.len() as f32;
        let df = post.len() as f32;
        let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
        for &(d, tf) in post {
            let dl = self.doc_len[d as usize];
            let norm = tf * (K1 + 1.0) / (tf + K1 * (1.0 - B + B * dl / self.avg_len));
            scores[d as usize] += qw * idf * norm;
        }
    }
}

/// The search index over a knowledge base's principles.
pub(crate) struct Index {
    analyzer: Analyzer,
    zh: LangIndex,
    en: LangIndex,
    /// term -> terms of the same synonym group.
    synonyms: HashMap<String, Vec<String>>,
    /// term -> the idf of the most common word of its synonym groups. Synonyms name one
    /// concept, so a rare variant (say 老板 where the base mostly writes 领导) must not
    /// weigh more than the concept's usual word: its weight is scaled by cap / own idf.
    idf_cap: HashMap<String, f32>,
    /// Known English words (index and synonyms), for typo matching.
    en_vocab: Vec<String>,
}

impl Index {
    /// Builds the index (loads jieba's dictionary: about 100 ms).
    pub fn build(principles: &[Principle], synonym_groups: &[Vec<String>]) -> Index {
        let zh_words = principles
            .iter()
            .flat_map(|p| p.tags.iter().map(String::as_str))
            .chain(synonym_groups.iter().flatten().map(String::as_str));
        let analyzer = Analyzer::new(zh_words);
        let mut zh_docs = Vec::with_capacity(principles.len());
        let mut en_docs = Vec::with_capacity(principles.len());
        for p in principles {
            let mut zh: HashMap<String, f32> = HashMap::new();
            let mut en: HashMap<String, f32> = HashMap::new();
            let mut add = |text: &str, w: f32| {
                for t in analyzer.terms_of(text) {
                    let doc = if term_lang(&t) == Lang::Zh { &mut zh } else { &mut en };
                    *doc.entry(t).or_insert(0.0) += w;
                }
            };
            for lang in [Lang::Zh, Lang::En] {
                add(p.title.get(lang), W_TITLE);
                add(p.summary.get(lang), W_SUMMARY);
                for d in &p.dos {
                    add(d.get(lang), W_DO);
                }
                for d in &p.donts {
                    add(d.get(lang), W_DONT);
                }
            }
            for t in &p.tags {
                add(t, W_TAG);
            }
            for q in &p.quotes {
                add(q, W_QUOTE);
            }
            zh_docs.push(zh);
            en_docs.push(en);
        }
        // Each entry of a group stands for its longest term: the word itself, or for a
        // phrase ("boss's boss", "领导的领导") the whole phrase rather than its parts.
        let heads: Vec<Vec<String>> = synonym_groups
            .iter()
            .map(|g| {
                let mut v: Vec<String> = Vec::new();
                for w in g {
                    let terms = analyzer.terms_of(w);
                    let Some(h) = terms.iter().max_by_key(|t| t.chars().count()) else {
                        continue;
                    };
                    // An entry the analyzer splits into unrelated pieces ("加2领导") has no
                    // head: it would stand for a common piece of it ("领导").
                    let squash = |s: &str| s.replace(' ', "");
                    let whole = terms.iter().all(|t| squash(h).contains(&squash(t)));
                    if whole && !v.contains(h) {
                        v.push(h.clone());
                    }
                }
                v
            })
            .collect();
        let mut synonyms: HashMap<String, Vec<String>> = HashMap::new();
        for group in &heads {
            for key in group {
                let entry = synonyms.entry(key.clone()).or_default();
                for other in group {
                    if other != key && !entry.contains(other) {
                        entry.push(other.clone());
                    }
                }
            }
        }
        let (zh, en) = (LangIndex::build(&zh_docs), LangIndex::build(&en_docs));
        let idf = |t: &str| if term_lang(t) == Lang::Zh { zh.idf(t) } else { en.idf(t) };
        let mut idf_cap: HashMap<String, f32> = HashMap::new();
        for terms in &heads {
            for lang in [Lang::Zh, Lang::En] {
                let same = || terms.iter().filter(|t| term_lang(t) == lang);
                let Some(common) = same().filter_map(|t| idf(t)).min_by(f32::total_cmp) else {
                    continue;
                };
                for t in same() {
                    let cap = idf_cap.entry(t.clone()).or_insert(f32::INFINITY);
                    *cap = cap.min(common);
                }
            }
        }
        let mut en_vocab: Vec<String> = (en.postings.keys())
            .chain(synonyms.keys())
            .filter(|t| term_lang(t) == Lang::En && !t.contains(' ') && t.chars().count() >= 4)
            .cloned()
            .collect();
        en_vocab.sort();
        en_vocab.dedup();
        Index { zh, en, analyzer, synonyms, idf_cap, en_vocab }
    }

    fn idf(&self, term: &str) -> Option<f32> {
        if term_lang(term) == Lang::Zh {
            self.zh.idf(term)
        } else {
            self.en.idf(term)
        }
    }

    /// Weighted query terms after synonym expansion.
    pub(crate) fn query_terms(&self, query: &str, lang: Lang) -> Vec<(String, f32)> {
        let mut weights: HashMap<String, f32> = HashMap::new();
        let mut typed = self.analyzer.terms_of(&strip_question_tails(query));
        if typed.is_empty() {
            // Nothing but a question tag ("怎么办？"): search what was typed.
            typed = self.analyzer.terms_of(query);
        }
        let mut add = |t: &str, w: f32| {
            let e = weights.entry(t.to_string()).or_insert(0.0);
            *e = e.max(w);
        };
        for t in &typed {
            add(t, 1.0);
            for s in self.synonyms.get(t).into_iter().flatten() {
                add(s, SYNONYM_WEIGHT);
            }
            // A two-word phrase also matches with either word replaced by a synonym.
            if let Some((a, b)) = t.split_once(' ') {
                let with = |w: &str| {
                    let mut v = vec![w.to_string()];
                    v.extend(self.synonyms.get(w).into_iter().flatten().cloned());
                    v
                };
                for x in with(a).iter().filter(|x| !x.contains(' ')) {
                    for y in with(b).iter().filter(|y| !y.contains(' ')) {
                        if (x, y) != (&a.to_string(), &b.to_string()) {
                            add(&format!("{x} {y}"), SYNONYM_WEIGHT);
                        }
                    }
                }
            }
            // A likely typo: an unknown English word one edit away from known ones.
            let known = |t: &str| self.en.postings.contains_key(t) || self.synonyms.contains_key(t);
            if term_lang(t) == Lang::En && !t.contains(' ') && t.chars().count() >= 5 && !known(t) {
                for v in self.en_vocab.iter().filter(|v| one_edit_apart(t, v)) {
                    add(v, TYPO_WEIGHT);
                    for s in self.synonyms.get(v).into_iter().flatten() {
                        add(s, TYPO_WEIGHT * SYNONYM_WEIGHT);
                    }
                }
            }
        }
        let mut out: Vec<(String, f32)> = weights
            .into_iter()
            .map(|(t, w)| {
                let lw = if term_lang(&t) == lang { 1.0 } else { OTHER_LANG_WEIGHT };
                let cap = match (self.idf_cap.get(&t), self.idf(&t)) {
                    (Some(&cap), Some(idf)) if idf > cap => cap / idf,
                    _ => 1.0,
                };
                (t, w * lw * cap)
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Scores every principle for `query`; returns (index, score) best first, score > 0.
    pub fn search(&self, query: &str, lang: Lang, k: usize) -> Vec<(usize, f32)> {
        let n = self.zh.doc_len.len();
        let mut scores = vec![0.0f32; n];
        for (t, w) in self.query_terms(query, lang) {
            let idx = if term_lang(&t) == Lang::Zh { &self.zh } else { &self.en };
            idx.add_scores(&t, w, &mut scores);
        }
        let mut ranked: Vec<(usize, f32)> =
            scores.into_iter().enumerate().filter(|(_, s)| *s > 0.0).collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        ranked.truncate(k);
        ranked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems_english_forms_together() {
        assert_eq!(stem("reports"), stem("report"));
        assert_eq!(stem("reporting"), stem("report"));
        assert_eq!(stem("criticised"), stem("criticized"));
        assert_eq!(stem("criticise"), stem("criticize"));
        assert_eq!(stem("companies"), "company");
        assert_eq!(stem("planning"), stem("plan"));
        assert_eq!(stem("boss"), "boss");
    }

    #[test]
    fn adjacent_english_words_also_count_as_a_phrase() {
        let a = Analyzer::new(std::iter::empty());
        let terms = |s: &str| {
            let mut t = Vec::new();
            a.terms(s, &mut t);
            t
        };
        // Stop words are skipped, possessives folded: the same phrase either way.
        assert!(terms("my boss's boss").contains(&"boss boss".to_string()));
        assert!(terms("the boss of my boss").contains(&"boss boss".to_string()));
        // Punctuation and Chinese break a phrase; spaces do not.
        assert!(!terms("boss, boss").contains(&"boss boss".to_string()));
        assert!(!terms("boss 老板 boss").contains(&"boss boss".to_string()));
        assert!(terms("year-end").contains(&"year end".to_string()));
    }

    #[test]
    fn analyzes_mixed_text() {
        let a = Analyzer::new(["年终总结"].into_iter());
        let mut t = Vec::new();
        a.terms("年终总结怎么写 Weekly Reports", &mut t);
        assert!(t.contains(&"年终总结".to_string()), "{t:?}");
        assert!(t.contains(&"weekly".to_string()) && t.contains(&"report".to_string()), "{t:?}");
        assert!(!t.iter().any(|x| x == "怎么"), "stop word kept: {t:?}");
    }
}
