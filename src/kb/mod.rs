//! The knowledge base distilled from the sales-coaching talk: principles, scenarios,
//! their validation against the source transcript, and retrieval.
//!
//! The files live in `knowledge/` (format in `knowledge/README.md`) and are embedded in the
//! binary; `UPWARD_KNOWLEDGE_DIR` points upward at an edited copy instead. Loading checks
//! everything [`check_dir`] checks and fails on any problem. The search index (jieba's
//! dictionary costs ~100 ms) is built on the first search only.

mod check;
pub mod cite;
pub mod context;
mod lines;
mod search;
mod types;

pub use check::Problem;
pub use search::Hit;
pub use types::*;

use crate::lang::Lang;
use crate::rubric::Criterion;
use check::SourceSet;
use include_dir::{include_dir, Dir};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The environment variable naming a knowledge directory to use instead of the built-in one.
pub const KNOWLEDGE_DIR_ENV: &str = "UPWARD_KNOWLEDGE_DIR";

/// The shipped knowledge files, embedded at compile time. (Adding a file needs a rebuild
/// that touches this crate, e.g. `touch src/kb/mod.rs`.)
pub(crate) static BUILTIN: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/knowledge");

/// Why a knowledge base could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KbError {
    /// The files have problems; each names its file and line.
    #[error("the knowledge base at {root} has {} problem(s):\n{}\nrun `upward kb check {root}` after fixing them", problems.len(), list(problems))]
    Invalid {
        /// The directory (or `knowledge` for the built-in base).
        root: PathBuf,
        /// Every problem found.
        problems: Vec<Problem>,
    },
}

fn list(problems: &[Problem]) -> String {
    let mut s = String::new();
    for p in problems {
        let _ = writeln!(s, "  {p}");
    }
    s.trim_end().to_string()
}

/// A loaded, validated knowledge base.
pub struct KnowledgeBase {
    principles: Vec<Principle>,
    scenarios: Vec<Scenario>,
    synonyms: Vec<Vec<String>>,
    boss_lines: BossLines,
    /// criterion -> principle indices, most relevant first.
    by_criterion: HashMap<Criterion, Vec<usize>>,
    index: OnceLock<search::Index>,
}

impl std::fmt::Debug for KnowledgeBase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KnowledgeBase")
            .field("principles", &self.principles.len())
            .field("scenarios", &self.scenarios.len())
            .field("indexed", &self.index.get().is_some())
            .finish()
    }
}

/// Checks a knowledge directory; an empty list means it is valid.
pub fn check_dir(dir: &Path) -> Vec<Problem> {
    check::parse(&SourceSet::from_dir(dir)).problems
}

/// Checks the built-in knowledge base.
pub fn check_builtin() -> Vec<Problem> {
    check::parse(&SourceSet::builtin()).problems
}

impl KnowledgeBase {
    fn from_set(set: SourceSet) -> Result<KnowledgeBase, KbError> {
        let parsed = check::parse(&set);
        if !parsed.problems.is_empty() {
            return Err(KbError::Invalid { root: set.root, problems: parsed.problems });
        }
        let mut by_criterion: HashMap<Criterion, Vec<usize>> = HashMap::new();
        for (i, p) in parsed.principles.iter().enumerate() {
            for &c in &p.criteria {
                by_criterion.entry(c).or_default().push(i);
            }
        }
        // Relevance: how central the criterion is to the principle (its position in the
        // principle's list, which authors order most central first), then how focused the
        // principle is (fewer criteria), then file order.
        for (c, v) in by_criterion.iter_mut() {
            let ps = &parsed.principles;
            let pos = |i: usize| ps[i].criteria.iter().position(|x| x == c).unwrap_or(usize::MAX);
            v.sort_by_key(|&i| (pos(i), ps[i].criteria.len(), i));
        }
        Ok(KnowledgeBase {
            principles: parsed.principles,
            scenarios: parsed.scenarios,
            synonyms: parsed.synonyms,
            boss_lines: parsed.boss_lines,
            by_criterion,
            index: OnceLock::new(),
        })
    }

    /// Loads and validates the knowledge base in `dir` (with `principles/`, `scenarios/`,
    /// `source/transcript-zh.txt` and optionally `synonyms.toml`).
    pub fn load_dir(dir: &Path) -> Result<KnowledgeBase, KbError> {
        Self::from_set(SourceSet::from_dir(dir))
    }

    /// The knowledge base shipped inside the binary.
    pub fn builtin() -> Result<KnowledgeBase, KbError> {
        Self::from_set(SourceSet::builtin())
    }

    /// The directory named by `UPWARD_KNOWLEDGE_DIR` if set, else the built-in base.
    pub fn load_default() -> Result<KnowledgeBase, KbError> {
        match std::env::var_os(KNOWLEDGE_DIR_ENV).filter(|v| !v.is_empty()) {
            Some(dir) => Self::load_dir(Path::new(&dir)),
            None => Self::builtin(),
        }
    }

    /// All principles, in file-name order.
    pub fn principles(&self) -> &[Principle] {
        &self.principles
    }

    /// The principle with this id.
    pub fn principle(&self, id: &str) -> Option<&Principle> {
        self.principles.iter().find(|p| p.id == id)
    }

    /// Principles supporting critique criterion `id`, most relevant first (empty for an
    /// unknown criterion).
    pub fn principles_for_criterion(&self, id: &str) -> Vec<&Principle> {
        Criterion::parse(id)
            .and_then(|c| self.by_criterion.get(&c))
            .map(|v| v.iter().map(|&i| &self.principles[i]).collect())
            .unwrap_or_default()
    }

    /// All role-play scenarios, in file-name order.
    pub fn scenarios(&self) -> &[Scenario] {
        &self.scenarios
    }

    /// The scenario with this id.
    pub fn scenario(&self, id: &str) -> Option<&Scenario> {
        self.scenarios.iter().find(|s| s.id == id)
    }

    /// The authored boss's lines and reactions shared by every scenario.
    pub fn boss_lines(&self) -> &BossLines {
        &self.boss_lines
    }

    fn index(&self) -> &search::Index {
        self.index.get_or_init(|| search::Index::build(&self.principles, &self.synonyms))
    }

    /// Builds the search index now (otherwise the first search does it).
    pub fn warm_up(&self) {
        self.index();
    }

    /// The `k` principles most relevant to `query`, best first. `lang` is the language the
    /// query is written in (detected when `None`): terms in that language weigh fully,
    /// terms in the other one a little less. Principles sharing no term are left out.
    pub fn search(&self, query: &str, lang: Option<Lang>, k: usize) -> Vec<Hit<'_>> {
        let lang = lang.unwrap_or_else(|| Lang::detect(query));
        self.index()
            .search(query, lang, k)
            .into_iter()
            .map(|(i, score)| Hit { principle: &self.principles[i], score })
            .collect()
    }
}

/// How advice of ours is labelled wherever it is shown next to the talk's words.
pub const BEYOND_TALK_ZH: &str = "[我们的建议，非讲话内容] ";
/// [`BEYOND_TALK_ZH`] in English.
pub const BEYOND_TALK_EN: &str = "[Our advice, not from the talk] ";

/// Renders search hits for a terminal (the REPL's `/kb` and `upward kb search`): rank,
/// title, id, the summary (the talk's), the first quote, a note on the quotes, and our
/// advice beyond the talk under its own label, in `lang`.
pub fn render_hits(hits: &[Hit<'_>], lang: Lang) -> String {
    if hits.is_empty() {
        return lang.pick("没有找到相关原则。", "No matching principle.").to_string();
    }
    let mut s = String::new();
    for (i, h) in hits.iter().enumerate() {
        let p = h.principle;
        let _ = writeln!(s, "{}. {}  [{}]", i + 1, p.title.get(lang), p.id);
        let _ = writeln!(s, "   {}", p.summary.get(lang));
        if let Some(q) = p.quotes.first() {
            let _ = writeln!(s, "   {}“{}”", lang.pick("原话：", "From the talk: "), q);
        }
        if let Some(n) = &p.note {
            let _ = writeln!(s, "   {}{}", lang.pick("注：", "Note: "), n.get(lang));
        }
        if let Some(b) = &p.beyond_talk {
            let label = lang.pick(BEYOND_TALK_ZH, BEYOND_TALK_EN);
            let _ = writeln!(s, "   {label}{}", b.get(lang));
        }
        if i + 1 < hits.len() {
            s.push('\n');
        }
    }
    s
}

#[cfg(test)]
mod tests;
