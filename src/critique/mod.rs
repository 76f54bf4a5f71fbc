//! Rubric-based critique of help requests (求助/请教) and thank-you notes (感谢).
//!
//! The user pastes a draft; [`critique`] returns, per criterion of the draft's rubric,
//! whether it is met, what in the draft shows it (a quote with char offsets), what to do
//! about it, and the principles of the talk behind it. It needs no model: lexicons and
//! patterns in Chinese and English ([`assess`]) do the judging. With a model
//! ([`critique_with_model`]) the statuses are refined under a fixed combination rule and
//! a coach comment and a rewrite are added (see `docs/critique.md`).
//!
//! Files: [`rubric`] (criteria, weights, advice), `detect` (lexicons and patterns),
//! `kind` (help or thanks), `score`, [`model`] (the model path), `rewrite` (facts and the
//! deterministic rewrite), [`render`] (terminal output).

mod detect;
mod kind;
pub mod model;
mod principles;
pub mod render;
mod rewrite;
pub mod rubric;
mod score;
pub mod with_engine;

use crate::lang::Lang;
use serde::{Deserialize, Serialize};

pub use detect::{assess, assess_rubric};
pub use kind::detect_kind;
pub use model::{critique_with_model, rewrite_with_model, CritiqueModel};
pub use principles::PrincipleSource;
pub use rewrite::{deterministic_rewrite, extract_facts, missing_facts};
pub use rubric::Rubric;
pub use score::{score, score_rubric};

/// Longest draft accepted, in characters.
pub const MAX_DRAFT_CHARS: usize = 20_000;

/// What a draft is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DraftKind {
    /// A help request or request for advice to the boss.
    Help,
    /// A thank-you note to the boss or a mentor.
    Thanks,
}

impl DraftKind {
    /// `help` or `thanks`.
    pub fn code(self) -> &'static str {
        match self {
            DraftKind::Help => "help",
            DraftKind::Thanks => "thanks",
        }
    }

    /// Parses `help` / `thanks`.
    pub fn parse(s: &str) -> Option<DraftKind> {
        match s.trim().to_ascii_lowercase().as_str() {
            "help" => Some(DraftKind::Help),
            "thanks" => Some(DraftKind::Thanks),
            _ => None,
        }
    }

    /// The criterion ids of this kind's rubric, in order.
    pub fn criteria(self) -> &'static [&'static str] {
        match self {
            DraftKind::Help => &crate::kb::HELP_CRITERIA,
            DraftKind::Thanks => &crate::kb::THANKS_CRITERIA,
        }
    }
}

/// The kind asked for on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum KindChoice {
    /// Detect it from the draft.
    #[default]
    Auto,
    /// A help request.
    Help,
    /// A thank-you note.
    Thanks,
}

/// How well a draft meets one criterion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Not there (or done wrong, e.g. complaining for `tone`).
    Missing,
    /// There, but thin or vague.
    Partial,
    /// Clearly there.
    Met,
}

impl Status {
    /// `met`, `partial` or `missing`.
    pub fn code(self) -> &'static str {
        match self {
            Status::Met => "met",
            Status::Partial => "partial",
            Status::Missing => "missing",
        }
    }

    /// Parses `met` / `partial` / `missing`.
    pub fn parse(s: &str) -> Option<Status> {
        match s.trim().to_ascii_lowercase().as_str() {
            "met" => Some(Status::Met),
            "partial" => Some(Status::Partial),
            "missing" => Some(Status::Missing),
            _ => None,
        }
    }

    /// Points toward the score: 1, 0.5 or 0.
    pub fn credit(self) -> f32 {
        match self {
            Status::Met => 1.0,
            Status::Partial => 0.5,
            Status::Missing => 0.0,
        }
    }
}

/// A span of the draft that shows a criterion (or, for `tone`/`sincere`/`timing`, what
/// breaks it). Offsets count characters, not bytes; `end` is exclusive.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// First character.
    pub start: usize,
    /// One past the last character.
    pub end: usize,
    /// The quoted text, `draft.chars().skip(start).take(end - start)`.
    pub text: String,
}

/// A principle of the talk behind a criterion, with one verbatim quote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrincipleRef {
    /// Principle id in the knowledge base.
    pub id: String,
    /// A verbatim quote from the transcript.
    pub quote: String,
}

/// The verdict on one criterion.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CriterionResult {
    /// Criterion id (`situation`, `ask`, `specific`, …).
    pub id: String,
    /// Met, partial or missing.
    pub status: Status,
    /// What in the draft shows it.
    pub evidence: Option<Evidence>,
    /// What works or what to fix and how, in the draft's language.
    pub advice: String,
    /// Why: principles of the talk.
    pub principles: Vec<PrincipleRef>,
    /// True when the criterion is general practice, not from the talk (it then has no
    /// principles and weighs little).
    #[serde(default)]
    pub general_practice: bool,
}

/// The whole critique of a draft.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Critique {
    /// Help request or thank-you note.
    pub kind: DraftKind,
    /// Language of the feedback (the draft's unless asked otherwise).
    pub lang: Lang,
    /// 0–100, weighted over the criteria.
    pub score: u8,
    /// One verdict per criterion of the rubric, in rubric order.
    pub criteria: Vec<CriterionResult>,
    /// A short coach comment (model path only).
    pub comment: Option<String>,
    /// A rewritten draft with placeholders for missing facts (model path only).
    pub rewrite: Option<String>,
}

impl Critique {
    /// The verdict on criterion `id`, if it is part of the rubric.
    pub fn criterion(&self, id: &str) -> Option<&CriterionResult> {
        self.criteria.iter().find(|c| c.id == id)
    }
}

/// Why a draft could not be critiqued.
#[derive(Debug, thiserror::Error)]
pub enum CritiqueError {
    /// Nothing but whitespace.
    #[error("the draft is empty: paste a help request or thank-you note (or pass a file)")]
    Empty,
    /// Longer than [`MAX_DRAFT_CHARS`].
    #[error("the draft has {chars} characters; the limit is {max}: keep only the message you would actually send")]
    TooLong {
        /// Characters in the draft.
        chars: usize,
        /// The limit.
        max: usize,
    },
    /// `--kind auto` and the draft reads as neither kind.
    #[error("this reads as neither a help request nor a thank-you note: pass --kind help or --kind thanks")]
    UnknownKind,
    /// The model failed while judging or writing.
    #[error(
        "the model failed while {stage}: {message} (run with --no-model to critique without it)"
    )]
    Model {
        /// What it was doing.
        stage: String,
        /// The model's error.
        message: String,
    },
}

impl CritiqueError {
    /// The message in `lang`, for people.
    pub fn message(&self, lang: Lang) -> String {
        match (self, lang) {
            (CritiqueError::Empty, Lang::Zh) => {
                "草稿是空的：请粘贴一段求助或感谢的草稿（或传入文件）".to_string()
            }
            (CritiqueError::TooLong { chars, max }, Lang::Zh) => {
                format!("草稿有 {chars} 个字符，上限是 {max}：只保留你真正要发出去的那段话")
            }
            (CritiqueError::UnknownKind, Lang::Zh) => {
                "看不出这是求助还是感谢：请用 --kind help 或 --kind thanks 指定".to_string()
            }
            (CritiqueError::Model { stage, message }, Lang::Zh) => {
                format!("模型在{stage}时出错：{message}（可用 --no-model 不经模型点评）")
            }
            (e, Lang::En) => e.to_string(),
        }
    }
}

/// Checks a draft's size: not blank, at most [`MAX_DRAFT_CHARS`] characters.
pub fn validate_draft(draft: &str) -> Result<(), CritiqueError> {
    if draft.trim().is_empty() {
        return Err(CritiqueError::Empty);
    }
    let chars = draft.chars().count();
    if chars > MAX_DRAFT_CHARS {
        return Err(CritiqueError::TooLong { chars, max: MAX_DRAFT_CHARS });
    }
    Ok(())
}

/// Resolves the kind: the one asked for, or the detected one under `Auto`.
pub fn resolve_kind(draft: &str, kind: KindChoice) -> Result<DraftKind, CritiqueError> {
    match kind {
        KindChoice::Help => Ok(DraftKind::Help),
        KindChoice::Thanks => Ok(DraftKind::Thanks),
        KindChoice::Auto => detect_kind(draft).ok_or(CritiqueError::UnknownKind),
    }
}

/// Critiques a draft without a model: detectors, score, advice and principles.
/// `lang` (the language of the feedback) defaults to the draft's.
pub fn critique<K: PrincipleSource + ?Sized>(
    draft: &str,
    kind: KindChoice,
    lang: Option<Lang>,
    kb: &K,
) -> Result<Critique, CritiqueError> {
    validate_draft(draft)?;
    let kind = resolve_kind(draft, kind)?;
    let draft_lang = Lang::detect(draft);
    let lang = lang.unwrap_or(draft_lang);
    let found = assess(draft, kind, draft_lang);
    Ok(build(kind, lang, found, kb))
}

/// Turns detector (or combined) verdicts into a [`Critique`] with advice and principles.
pub(crate) fn build<K: PrincipleSource + ?Sized>(
    kind: DraftKind,
    lang: Lang,
    found: Vec<(String, Status, Option<Evidence>)>,
    kb: &K,
) -> Critique {
    let criteria: Vec<CriterionResult> = found
        .into_iter()
        .map(|(id, status, evidence)| CriterionResult {
            advice: rubric::advice(&id, status, lang),
            principles: principles::refs_for(kb, &id),
            general_practice: rubric::criterion(&id).is_some_and(|c| !c.from_talk()),
            id,
            status,
            evidence,
        })
        .collect();
    let score =
        score(kind, &criteria.iter().map(|c| (c.id.as_str(), c.status)).collect::<Vec<_>>());
    Critique { kind, lang, score, criteria, comment: None, rewrite: None }
}

#[cfg(test)]
mod tests;
