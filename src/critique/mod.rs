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
//! `kind` (help or thanks), `score`, [`model`] (the model path), [`judge`] (whether a
//! model may judge, and `--calibrate`), `output` (checks on model text), `rewrite` (facts
//! and the structured rewrite), [`render`] (terminal output).

mod detect;
pub mod judge;
mod kind;
pub mod model;
mod output;
mod principles;
pub mod render;
mod rewrite;
pub mod rubric;
mod score;
pub mod with_engine;

use crate::lang::Lang;
use serde::{Deserialize, Serialize};

pub use crate::rubric::{Criterion, DraftKind, Rubric, Status};
pub use detect::{assess, assess_rubric};
pub use kind::{detect_kind, KindGuess};
pub use model::{critique_with_model, rewrite_with_model, CritiqueModel};
pub use principles::PrincipleSource;
pub use rewrite::{
    deterministic_rewrite, extract_facts, invented_numbers, missing_facts, structured_rewrite,
};
pub use score::{score, score_rubric};

/// Longest draft accepted, in characters.
pub const MAX_DRAFT_CHARS: usize = 20_000;

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
    /// The criterion (serialised as its id: `situation`, `ask`, `specific`, …).
    pub id: Criterion,
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

/// What produced a part of a critique.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Producer {
    /// The detectors and the deterministic fallbacks.
    #[default]
    Rules,
    /// The language model.
    Model,
}

/// The whole critique of a draft.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Critique {
    /// Help request or thank-you note.
    pub kind: DraftKind,
    /// How sure `--kind auto` was (0.5–1); `None` when the kind was given.
    #[serde(default)]
    pub kind_confidence: Option<f64>,
    /// Language of the feedback (the draft's unless asked otherwise).
    pub lang: Lang,
    /// 0–100, weighted over the criteria.
    pub score: u8,
    /// One verdict per criterion of the rubric, in rubric order.
    pub criteria: Vec<CriterionResult>,
    /// Whether the statuses are the rules' alone or the model moved them.
    #[serde(default)]
    pub statuses_from: Producer,
    /// A note on the draft as a whole (too short to judge, or the kind was a close call).
    #[serde(default)]
    pub note: Option<String>,
    /// A short coach comment (model path only).
    pub comment: Option<String>,
    /// Who wrote the comment (`None`: no comment).
    #[serde(default)]
    pub comment_from: Option<Producer>,
    /// The draft's own sentences in the talk's structure, with placeholders for missing
    /// facts: the model's when it passes its checks, else the rules'.
    pub rewrite: Option<String>,
    /// Who wrote the rewrite (`None`: no rewrite).
    #[serde(default)]
    pub rewrite_from: Option<Producer>,
}

impl Critique {
    /// The verdict on criterion `id` (a [`Criterion`] or its string id), if it is part
    /// of the rubric.
    pub fn criterion(&self, id: impl AsRef<str>) -> Option<&CriterionResult> {
        let id = id.as_ref();
        self.criteria.iter().find(|c| c.id.as_str() == id)
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

/// Resolves the kind: the one asked for (confidence `None`), or under `Auto` the likelier
/// one and how sure the guess is. Never fails.
pub fn resolve_kind(draft: &str, kind: KindChoice) -> (DraftKind, Option<f64>) {
    match kind {
        KindChoice::Help => (DraftKind::Help, None),
        KindChoice::Thanks => (DraftKind::Thanks, None),
        KindChoice::Auto => {
            let g = detect_kind(draft);
            (g.kind, Some(g.confidence))
        }
    }
}

/// Critiques a draft without a model: detectors, score, advice, principles and the
/// structured rewrite. `lang` (the language of the feedback) defaults to the draft's.
pub fn critique<K: PrincipleSource + ?Sized>(
    draft: &str,
    kind: KindChoice,
    lang: Option<Lang>,
    kb: &K,
) -> Result<Critique, CritiqueError> {
    validate_draft(draft)?;
    let (kind, confidence) = resolve_kind(draft, kind);
    let draft_lang = Lang::detect(draft);
    let lang = lang.unwrap_or(draft_lang);
    let found = assess(draft, kind, draft_lang);
    let mut c = build(kind, lang, found, kb);
    c.kind_confidence = confidence;
    c.note = note(&c, draft);
    c.rewrite = Some(rules_rewrite(&c, draft));
    c.rewrite_from = Some(Producer::Rules);
    Ok(c)
}

/// The structured rewrite of `draft` guided by the verdicts of `c`.
pub(crate) fn rules_rewrite(c: &Critique, draft: &str) -> String {
    let verdicts: Vec<(Criterion, Status)> = c.criteria.iter().map(|r| (r.id, r.status)).collect();
    structured_rewrite(draft, c.kind, &verdicts)
}

/// The note on a draft as a whole: a draft too short to say anything gets what it is
/// missing; a kind chosen on a close call says how to override it.
pub(crate) fn note(c: &Critique, draft: &str) -> Option<String> {
    let lang = c.lang;
    if kind::content_units(draft) < kind::THIN_DRAFT_UNITS {
        let missing: Vec<&str> = c
            .criteria
            .iter()
            .filter(|r| r.status != Status::Met)
            .map(|r| r.id.name(lang))
            .collect();
        let (kind_zh, kind_en) = match c.kind {
            DraftKind::Help => ("求助", "help request"),
            DraftKind::Thanks => ("感谢", "thank-you note"),
        };
        return Some(match lang {
            Lang::Zh => format!(
                "这段草稿太短，领导从中看不出事情和你的需要。作为{kind_zh}，它还缺：{}。按下面的改写框架补上再发。",
                missing.join("、")
            ),
            Lang::En => format!(
                "This draft is too short for your boss to act on. As a {kind_en} it still lacks: {}. Fill in the rewrite below before sending.",
                missing.join(", ")
            ),
        });
    }
    match c.kind_confidence {
        Some(conf) if conf < 0.6 => Some(match (c.kind, lang) {
            (DraftKind::Help, Lang::Zh) => {
                "看不太出这是求助还是感谢，先按求助点评；如果是感谢，请加 --kind thanks。".into()
            }
            (DraftKind::Thanks, Lang::Zh) => {
                "看不太出这是求助还是感谢，先按感谢点评；如果是求助，请加 --kind help。".into()
            }
            (DraftKind::Help, Lang::En) => "This could be either kind; critiqued as a help request (add --kind thanks if it is a thank-you note).".into(),
            (DraftKind::Thanks, Lang::En) => "This could be either kind; critiqued as a thank-you note (add --kind help if it is a help request).".into(),
        }),
        _ => None,
    }
}

/// Turns detector (or combined) verdicts into a [`Critique`] with advice and principles.
pub(crate) fn build<K: PrincipleSource + ?Sized>(
    kind: DraftKind,
    lang: Lang,
    found: Vec<(Criterion, Status, Option<Evidence>)>,
    kb: &K,
) -> Critique {
    let criteria: Vec<CriterionResult> = found
        .into_iter()
        .map(|(id, status, evidence)| CriterionResult {
            advice: id.advice(status, lang),
            principles: principles::refs_for(kb, id),
            general_practice: !id.from_talk(),
            id,
            status,
            evidence,
        })
        .collect();
    let score = score(kind, &criteria.iter().map(|c| (c.id, c.status)).collect::<Vec<_>>());
    Critique {
        kind,
        kind_confidence: None,
        lang,
        score,
        criteria,
        statuses_from: Producer::Rules,
        note: None,
        comment: None,
        comment_from: None,
        rewrite: None,
        rewrite_from: None,
    }
}

#[cfg(test)]
mod tests;
