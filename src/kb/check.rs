//! Parsing and validation of the knowledge files: every problem is reported with the file
//! and line it comes from, and the same checks guard loading.

use super::types::{Bilingual, BossLines, Claim, Passage, Principle, Scenario};
use crate::rubric::{Criterion, Rubric, UnknownCriterion};
use serde::Deserialize;
use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// Where the transcript lives, relative to the knowledge directory.
pub const TRANSCRIPT: &str = "source/transcript-zh.txt";
/// Folder of principle files, relative to the knowledge directory.
pub const PRINCIPLES_DIR: &str = "principles";
/// Folder of scenario files, relative to the knowledge directory.
pub const SCENARIOS_DIR: &str = "scenarios";
/// Optional query-expansion synonyms, relative to the knowledge directory.
pub const SYNONYMS: &str = "synonyms.toml";
/// Optional lines of the authored boss shared by every scenario.
pub const BOSS_LINES: &str = "boss_lines.toml";

/// One thing wrong with the knowledge files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The file at fault (as given, or `knowledge/...` for the built-in base).
    pub file: PathBuf,
    /// 1-based line; 0 when the problem concerns the whole file or directory.
    pub line: usize,
    /// What is wrong and, where useful, what to do.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
        }
    }
}

/// A knowledge file's text and the path shown in problems.
pub(crate) struct SourceFile {
    pub shown: PathBuf,
    pub text: Result<String, String>,
}

/// The raw files of one knowledge base, before parsing.
pub(crate) struct SourceSet {
    /// Root shown in directory-level problems.
    pub root: PathBuf,
    pub transcript: Option<SourceFile>,
    pub synonyms: Option<SourceFile>,
    pub boss_lines: Option<SourceFile>,
    pub principles: Vec<SourceFile>,
    pub scenarios: Vec<SourceFile>,
    /// Problems met while listing the files (unreadable directories).
    pub problems: Vec<Problem>,
    /// The directory itself is missing: nothing else is worth reporting.
    pub root_missing: bool,
}

impl SourceSet {
    /// Reads a knowledge directory from disk. Files in each folder are taken in name order;
    /// only `*.toml` files count.
    pub fn from_dir(dir: &Path) -> SourceSet {
        let mut set = SourceSet {
            root: dir.to_path_buf(),
            transcript: None,
            synonyms: None,
            boss_lines: None,
            principles: Vec::new(),
            scenarios: Vec::new(),
            problems: Vec::new(),
            root_missing: false,
        };
        let read = |p: PathBuf| -> SourceFile {
            let text = match std::fs::read(&p) {
                Ok(bytes) => crate::text::decode_user_text(&bytes, &p.display().to_string())
                    .map_err(|e| e.to_string()),
                Err(e) => Err(format!("cannot read: {e}")),
            };
            SourceFile { shown: p, text }
        };
        if !dir.is_dir() {
            set.problems.push(Problem {
                file: dir.to_path_buf(),
                line: 0,
                message: "not a directory: expected a knowledge base with principles/, \
                          scenarios/ and source/transcript-zh.txt"
                    .into(),
            });
            set.root_missing = true;
            return set;
        }
        let t = dir.join(TRANSCRIPT);
        if t.exists() {
            set.transcript = Some(read(t));
        }
        let s = dir.join(SYNONYMS);
        if s.exists() {
            set.synonyms = Some(read(s));
        }
        let b = dir.join(BOSS_LINES);
        if b.exists() {
            set.boss_lines = Some(read(b));
        }
        for (sub, out) in
            [(PRINCIPLES_DIR, &mut set.principles), (SCENARIOS_DIR, &mut set.scenarios)]
        {
            let d = dir.join(sub);
            if !d.exists() {
                continue;
            }
            match std::fs::read_dir(&d) {
                Ok(entries) => {
                    let mut paths: Vec<PathBuf> = entries
                        .filter_map(|e| e.ok().map(|e| e.path()))
                        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "toml"))
                        .collect();
                    paths.sort();
                    out.extend(paths.into_iter().map(read));
                }
                Err(e) => set.problems.push(Problem {
                    file: d,
                    line: 0,
                    message: format!("cannot list directory: {e}"),
                }),
            }
        }
        set
    }

    /// The knowledge base embedded in the binary.
    pub fn builtin() -> SourceSet {
        let root = Path::new("knowledge");
        let file = |f: &include_dir::File<'_>| SourceFile {
            shown: root.join(f.path()),
            text: f.contents_utf8().map(str::to_string).ok_or_else(|| "not UTF-8 text".to_string()),
        };
        let folder = |name: &str| -> Vec<SourceFile> {
            let mut files: Vec<&include_dir::File<'_>> = super::BUILTIN
                .get_dir(name)
                .map(|d| {
                    d.files()
                        .filter(|f| f.path().extension().is_some_and(|x| x == "toml"))
                        .collect()
                })
                .unwrap_or_default();
            files.sort_by_key(|f| f.path());
            files.into_iter().map(file).collect()
        };
        SourceSet {
            root: root.to_path_buf(),
            transcript: super::BUILTIN.get_file(TRANSCRIPT).map(file),
            synonyms: super::BUILTIN.get_file(SYNONYMS).map(file),
            boss_lines: super::BUILTIN.get_file(BOSS_LINES).map(file),
            principles: folder(PRINCIPLES_DIR),
            scenarios: folder(SCENARIOS_DIR),
            problems: Vec::new(),
            root_missing: false,
        }
    }
}

/// What parsing and checking produced.
pub(crate) struct Parsed {
    pub principles: Vec<Principle>,
    pub scenarios: Vec<Scenario>,
    pub synonyms: Vec<Vec<String>>,
    pub boss_lines: BossLines,
    pub problems: Vec<Problem>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBi {
    zh: Option<Spanned<String>>,
    en: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPassage {
    line: Spanned<i64>,
    text: Spanned<String>,
}

/// One `[[summary]]` sentence.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClaim {
    zh: Option<Spanned<String>>,
    en: Option<Spanned<String>>,
    #[serde(default)]
    passages: Vec<RawPassage>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrinciple {
    id: Spanned<String>,
    title: Spanned<RawBi>,
    #[serde(default)]
    summary: Vec<Spanned<RawClaim>>,
    beyond_talk: Option<Spanned<RawBi>>,
    note: Option<Spanned<RawBi>>,
    #[serde(default)]
    quotes: Vec<Spanned<String>>,
    #[serde(default)]
    dos: Vec<Spanned<RawBi>>,
    #[serde(default)]
    donts: Vec<Spanned<RawBi>>,
    #[serde(default)]
    criteria: Vec<Spanned<String>>,
    #[serde(default)]
    tags: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    id: Spanned<String>,
    title: Spanned<RawBi>,
    situation: Spanned<RawBi>,
    boss_cares: Spanned<RawBi>,
    rubric: Spanned<String>,
    #[serde(default)]
    principles: Vec<Spanned<String>>,
    good_outcome: Spanned<RawBi>,
    opening: Spanned<RawBi>,
    boss_private: Spanned<RawBi>,
    persona: Option<Spanned<String>>,
    #[serde(default)]
    line: Vec<Spanned<super::lines::RawLine>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSynonyms {
    #[serde(default)]
    groups: Vec<Spanned<Vec<String>>>,
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end].iter().filter(|&&b| b == b'\n').count() + 1
}

/// Collects problems for one file.
/// Reads one knowledge file's text and parses it, reporting an unreadable file or
/// malformed TOML (with its line) instead.
fn parse_file<'a, T: serde::de::DeserializeOwned>(
    f: &'a SourceFile,
    problems: &mut Vec<Problem>,
) -> Option<(&'a str, T)> {
    let text = match &f.text {
        Ok(t) => t.as_str(),
        Err(e) => {
            problems.push(Problem { file: f.shown.clone(), line: 0, message: e.clone() });
            return None;
        }
    };
    match toml::from_str(text) {
        Ok(raw) => Some((text, raw)),
        Err(e) => {
            Reporter { file: &f.shown, text, out: problems }.toml_error(&e);
            None
        }
    }
}

pub(super) struct Reporter<'a> {
    file: &'a Path,
    text: &'a str,
    out: &'a mut Vec<Problem>,
}

impl Reporter<'_> {
    pub(super) fn at(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.out.push(Problem {
            file: self.file.to_path_buf(),
            line: line_of(self.text, span.start),
            message: message.into(),
        });
    }

    /// A bilingual field with both languages present and non-empty.
    fn bilingual(&mut self, field: &str, raw: &Spanned<RawBi>) -> Bilingual {
        let b = raw.get_ref();
        self.bilingual_parts(field, raw.span(), &b.zh, &b.en)
    }

    /// [`Self::bilingual`] from its parts; `span` is the table's.
    fn bilingual_parts(
        &mut self,
        field: &str,
        span: Range<usize>,
        zh: &Option<Spanned<String>>,
        en: &Option<Spanned<String>>,
    ) -> Bilingual {
        let mut get = |lang: &str, v: &Option<Spanned<String>>| -> String {
            match v {
                None => {
                    self.at(span.clone(), format!("`{field}` is missing its `{lang}` text"));
                    String::new()
                }
                Some(s) if s.get_ref().trim().is_empty() => {
                    self.at(s.span(), format!("`{field}.{lang}` is empty"));
                    String::new()
                }
                Some(s) => s.get_ref().trim().to_string(),
            }
        };
        let zh = get("zh", zh);
        let en = get("en", en);
        Bilingual { zh, en }
    }

    fn id(&mut self, id: &Spanned<String>) -> String {
        let s = id.get_ref().trim();
        if s.is_empty() {
            self.at(id.span(), "`id` is empty");
        } else if !s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
            self.at(
                id.span(),
                format!("id `{s}` must be lower-case ASCII letters, digits and `-`"),
            );
        }
        s.to_string()
    }

    fn toml_error(&mut self, e: &toml::de::Error) {
        let line = e.span().map(|s| line_of(self.text, s.start)).unwrap_or(0);
        self.out.push(Problem {
            file: self.file.to_path_buf(),
            line,
            message: format!("invalid TOML: {}", e.message().trim().replace('\n', "; ")),
        });
    }
}

/// Is `c` the id of a criterion of some rubric?
pub(crate) fn known_criterion(c: &str) -> bool {
    Criterion::parse(c).is_some()
}

/// Splits a summary sentence: does `zh` hold more than one sentence?
fn several_sentences(zh: &str) -> bool {
    let cs: Vec<char> = zh.trim().chars().collect();
    let closing = |c: char| "。！？!?”」』）)…".contains(c) || c.is_whitespace();
    cs.iter()
        .enumerate()
        .any(|(i, &c)| "。！？!?".contains(c) && cs[i + 1..].iter().any(|&n| !closing(n)))
}

/// Finds `text` on 1-based `line` of the transcript: its character offsets in the line.
pub(crate) fn locate(transcript: &str, line: usize, text: &str) -> Option<(usize, usize)> {
    let l = transcript.lines().nth(line.checked_sub(1)?)?;
    let b = l.find(text)?;
    let start = l[..b].chars().count();
    Some((start, start + text.chars().count()))
}

/// The `[[summary]]` sentences of a principle, each checked: both languages, one sentence,
/// and at least one passage found verbatim on the line it names.
fn claims(r: &mut Reporter<'_>, raw: &RawPrinciple, transcript: Option<&str>) -> Vec<Claim> {
    if raw.summary.is_empty() {
        r.at(
            raw.id.span(),
            "no `[[summary]]`: give the summary sentence by sentence, each with its `passages`",
        );
    }
    let mut out = Vec::new();
    for item in &raw.summary {
        let c = item.get_ref();
        let text = r.bilingual_parts("summary", item.span(), &c.zh, &c.en);
        if several_sentences(&text.zh) {
            r.at(
                item.span(),
                "a `[[summary]]` item holds one sentence: split it, each part with its passages",
            );
        }
        if c.passages.is_empty() {
            r.at(
                item.span(),
                format!(
                    "summary sentence with no passage: \"{}\": cite what in the talk says it \
                     (`passages = [{{ line = 4, text = \"…\" }}]`), or move it to `beyond_talk` \
                     if it is our advice",
                    crate::text::truncate_to_width(&text.zh, 40)
                ),
            );
        }
        let mut passages = Vec::new();
        for p in &c.passages {
            let t = p.text.get_ref();
            let line = usize::try_from(*p.line.get_ref()).unwrap_or(0);
            if t.trim().is_empty() {
                r.at(p.text.span(), "empty passage");
                continue;
            }
            let Some(tr) = transcript else { continue };
            match locate(tr, line, t) {
                Some((start, end)) => passages.push(Passage { line, start, end, text: t.clone() }),
                None => {
                    let elsewhere = tr.lines().position(|l| l.contains(t.as_str()));
                    let hint = match elsewhere {
                        Some(i) => format!(" (it is on line {})", i + 1),
                        None => " (copy it exactly, typos included)".to_string(),
                    };
                    r.at(
                        p.text.span(),
                        format!(
                            "passage is not on line {line} of {TRANSCRIPT}: \"{}\"{hint}",
                            crate::text::truncate_to_width(t, 40)
                        ),
                    );
                }
            }
        }
        out.push(Claim { text, passages });
    }
    out
}

/// Parses and checks a whole source set.
pub(crate) fn parse(set: &SourceSet) -> Parsed {
    let mut problems = set.problems.clone();
    if set.root_missing {
        return Parsed {
            principles: Vec::new(),
            scenarios: Vec::new(),
            synonyms: Vec::new(),
            boss_lines: BossLines::default(),
            problems,
        };
    }
    let transcript: Option<&str> = match &set.transcript {
        None => {
            problems.push(Problem {
                file: set.root.join(TRANSCRIPT),
                line: 0,
                message: "the source transcript is missing; quotes cannot be checked".into(),
            });
            None
        }
        Some(SourceFile { shown, text: Err(e) }) => {
            problems.push(Problem { file: shown.clone(), line: 0, message: e.clone() });
            None
        }
        Some(SourceFile { text: Ok(t), .. }) => Some(t.as_str()),
    };

    let mut principles = Vec::new();
    let mut seen: HashMap<String, (PathBuf, usize)> = HashMap::new();
    for f in &set.principles {
        let Some((text, raw)) = parse_file::<RawPrinciple>(f, &mut problems) else { continue };
        let mut r = Reporter { file: &f.shown, text, out: &mut problems };
        let id = r.id(&raw.id);
        let id_line = line_of(text, raw.id.span().start);
        if let Some((file, line)) = seen.get(&id) {
            let msg = format!(
                "duplicate principle id `{id}` (first defined at {}:{line})",
                file.display()
            );
            r.at(raw.id.span(), msg);
        } else if !id.is_empty() {
            seen.insert(id.clone(), (f.shown.clone(), id_line));
        }
        let title = r.bilingual("title", &raw.title);
        let claims = claims(&mut r, &raw, transcript);
        let summary = Bilingual {
            zh: claims.iter().map(|c| c.text.zh.as_str()).collect::<Vec<_>>().join(""),
            en: claims.iter().map(|c| c.text.en.as_str()).collect::<Vec<_>>().join(" "),
        };
        let beyond_talk = raw.beyond_talk.as_ref().map(|b| r.bilingual("beyond_talk", b));
        let note = raw.note.as_ref().map(|b| r.bilingual("note", b));
        if raw.quotes.is_empty() {
            r.at(
                raw.id.span(),
                "no `quotes`: give at least one verbatim quote from the transcript",
            );
        }
        let mut quotes = Vec::new();
        for q in &raw.quotes {
            let s = q.get_ref();
            if s.trim().is_empty() {
                r.at(q.span(), "empty quote");
            } else if let Some(t) = transcript {
                if !t.contains(s.as_str()) {
                    r.at(
                        q.span(),
                        format!(
                            "quote is not a verbatim substring of {TRANSCRIPT}: \"{}\" \
                             (copy it exactly, typos included)",
                            crate::text::truncate_to_width(s, 40)
                        ),
                    );
                }
            }
            quotes.push(s.clone());
        }
        let mut examples = |name: &str, list: &[Spanned<RawBi>]| -> Vec<Bilingual> {
            if list.is_empty() {
                r.at(raw.id.span(), format!("no `{name}`: give at least one example ([[{name}]])"));
            }
            list.iter().map(|b| r.bilingual(name, b)).collect()
        };
        let dos = examples("dos", &raw.dos);
        let donts = examples("donts", &raw.donts);
        if raw.criteria.is_empty() {
            r.at(
                raw.id.span(),
                "no `criteria`: name the critique criteria this principle supports",
            );
        }
        let mut criteria: Vec<Criterion> = Vec::new();
        for c in &raw.criteria {
            let s = c.get_ref().trim();
            let Some(k) = Criterion::parse(s) else {
                r.at(c.span(), UnknownCriterion(s.to_string()).to_string());
                continue;
            };
            if !k.from_talk() {
                r.at(
                    c.span(),
                    format!(
                        "criterion `{s}` is general practice, not from the talk: no principle \
                         can support it (see docs/critique.md)"
                    ),
                );
            } else if criteria.contains(&k) {
                r.at(c.span(), format!("criterion `{s}` listed twice"));
            } else {
                criteria.push(k);
            }
        }
        let mut tags = Vec::new();
        for t in &raw.tags {
            if t.get_ref().trim().is_empty() {
                r.at(t.span(), "empty tag");
            } else {
                tags.push(t.get_ref().trim().to_string());
            }
        }
        principles.push(Principle {
            id,
            title,
            summary,
            claims,
            beyond_talk,
            note,
            quotes,
            dos,
            donts,
            criteria,
            tags,
        });
    }

    let known_ids: HashMap<&str, ()> = principles.iter().map(|p| (p.id.as_str(), ())).collect();
    let mut scenarios = Vec::new();
    let mut seen_sc: HashMap<String, (PathBuf, usize)> = HashMap::new();
    for f in &set.scenarios {
        let Some((text, raw)) = parse_file::<RawScenario>(f, &mut problems) else { continue };
        let mut r = Reporter { file: &f.shown, text, out: &mut problems };
        let id = r.id(&raw.id);
        if let Some((file, line)) = seen_sc.get(&id) {
            let msg = format!(
                "duplicate scenario id `{id}` (first defined at {}:{line})",
                file.display()
            );
            r.at(raw.id.span(), msg);
        } else if !id.is_empty() {
            seen_sc.insert(id.clone(), (f.shown.clone(), line_of(text, raw.id.span().start)));
        }
        let title = r.bilingual("title", &raw.title);
        let situation = r.bilingual("situation", &raw.situation);
        let boss_cares = r.bilingual("boss_cares", &raw.boss_cares);
        let good_outcome = r.bilingual("good_outcome", &raw.good_outcome);
        let opening = r.bilingual("opening", &raw.opening);
        let boss_private = r.bilingual("boss_private", &raw.boss_private);
        let persona = raw.persona.as_ref().map(|p| r.id(p));
        let lines = super::lines::lines(&mut r, &raw.line);
        let code = raw.rubric.get_ref().trim();
        let rubric = Rubric::parse(code).unwrap_or_else(|| {
            let known: Vec<&str> = Rubric::ALL.iter().map(|r| r.code()).collect();
            r.at(
                raw.rubric.span(),
                format!("unknown rubric `{code}` (use one of: {})", known.join(", ")),
            );
            // Reported above: a knowledge base with problems is never loaded.
            Rubric::Help
        });
        if raw.principles.is_empty() {
            r.at(raw.id.span(), "no `principles`: name the principle ids this scenario trains");
        }
        let mut pids = Vec::new();
        for p in &raw.principles {
            let s = p.get_ref().trim();
            if !known_ids.contains_key(s) {
                r.at(p.span(), format!("unknown principle id `{s}`"));
            }
            pids.push(s.to_string());
        }
        scenarios.push(Scenario {
            id,
            title,
            situation,
            boss_cares,
            rubric,
            principles: pids,
            good_outcome,
            opening,
            boss_private,
            persona,
            lines,
        });
    }

    let mut synonyms = Vec::new();
    if let Some(f) = &set.synonyms {
        match &f.text {
            Err(e) => problems.push(Problem { file: f.shown.clone(), line: 0, message: e.clone() }),
            Ok(text) => {
                let mut r = Reporter { file: &f.shown, text, out: &mut problems };
                match toml::from_str::<RawSynonyms>(text) {
                    Err(e) => r.toml_error(&e),
                    Ok(raw) => {
                        for g in raw.groups {
                            let words: Vec<String> = g
                                .get_ref()
                                .iter()
                                .map(|w| w.trim().to_string())
                                .filter(|w| !w.is_empty())
                                .collect();
                            if words.len() < 2 {
                                r.at(g.span(), "a synonym group needs at least two words");
                            } else {
                                synonyms.push(words);
                            }
                        }
                    }
                }
            }
        }
    }

    let mut boss_lines = BossLines::default();
    if let Some(f) = &set.boss_lines {
        if let Some((text, raw)) = parse_file(f, &mut problems) {
            let mut r = Reporter { file: &f.shown, text, out: &mut problems };
            boss_lines = super::lines::shared(&mut r, &raw);
        }
    }

    // Critique shows a principle for every criterion: each must be supported somewhere.
    // Only meaningful when every principle file parsed (else the gap may be a parse error).
    if set.principles.is_empty() {
        problems.push(Problem {
            file: set.root.join(PRINCIPLES_DIR),
            line: 0,
            message: "no principle files (*.toml) found".into(),
        });
    } else if principles.len() == set.principles.len() {
        let grounded =
            Rubric::ALL.iter().flat_map(|r| r.criteria()).copied().filter(|k| k.from_talk()).fold(
                Vec::new(),
                |mut v, id| {
                    if !v.contains(&id) {
                        v.push(id);
                    }
                    v
                },
            );
        for c in grounded {
            if !principles.iter().any(|p| p.criteria.contains(&c)) {
                problems.push(Problem {
                    file: set.root.join(PRINCIPLES_DIR),
                    line: 0,
                    message: format!("no principle supports criterion `{c}`"),
                });
            }
        }
    }

    Parsed { principles, scenarios, synonyms, boss_lines, problems }
}
