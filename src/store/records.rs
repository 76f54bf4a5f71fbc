//! Typed views of the JSON documents the store keeps (turn scores, a critique's result, a
//! role-play's debrief), read straight from the stored text.
//!
//! Reading is lenient, so a database written by an older upward or edited by hand still
//! opens: an entry whose criterion id or status is unknown is skipped, never fatal.

use crate::rubric::{Criterion, Status};
use serde::de::IgnoredAny;
use serde::Deserialize;
use std::collections::BTreeMap;

/// Statuses per criterion, stored as `{ "ask": "met", "plan": "partial", … }`.
pub type Scores = BTreeMap<Criterion, Status>;

/// A stored status: `"met"` (any case), or an object with one under `status`; anything
/// else reads as `None`.
#[derive(Deserialize)]
#[serde(untagged)]
enum LooseStatus {
    Text(String),
    Object { status: String },
    Other(IgnoredAny),
}

impl LooseStatus {
    fn get(&self) -> Option<Status> {
        match self {
            LooseStatus::Text(s) | LooseStatus::Object { status: s } => Status::parse(s),
            LooseStatus::Other(_) => None,
        }
    }
}

/// A map of criterion id to status, keeping the entries both of which are known.
#[derive(Deserialize, Default)]
#[serde(transparent)]
struct LooseScores(BTreeMap<String, LooseStatus>);

impl LooseScores {
    fn typed(&self) -> Scores {
        self.0.iter().filter_map(|(k, v)| Some((Criterion::parse(k)?, v.get()?))).collect()
    }
}

/// Turn scores from their stored text (`None` when it is no JSON object).
pub(crate) fn scores_from_text(text: &str) -> Option<Scores> {
    serde_json::from_str::<LooseScores>(text).ok().map(|s| s.typed())
}

/// A stored quote: plain text or an object with it under `text` (evidence) or `quote`
/// (a principle).
#[derive(Deserialize)]
#[serde(untagged)]
enum LooseText {
    Text(String),
    Evidence { text: String },
    Principle { quote: String },
    Other(IgnoredAny),
}

impl LooseText {
    fn get(self) -> Option<String> {
        match self {
            LooseText::Text(s) | LooseText::Evidence { text: s } => Some(s),
            LooseText::Principle { quote } => Some(quote),
            LooseText::Other(_) => None,
        }
    }
}

/// One stored verdict as written: `{ id, status, evidence, advice, principles }`.
#[derive(Deserialize)]
struct RawVerdict {
    id: String,
    status: LooseStatus,
    #[serde(default)]
    evidence: Option<LooseText>,
    #[serde(default)]
    advice: Option<LooseText>,
    #[serde(default)]
    principles: Vec<LooseText>,
}

/// One verdict of a stored critique.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    /// The criterion.
    pub id: Criterion,
    /// How well the draft met it.
    pub status: Status,
    /// The quoted evidence, if any.
    pub evidence: Option<String>,
    /// The advice, if any.
    pub advice: Option<String>,
    /// Quotes of the talk behind it.
    pub quotes: Vec<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum LooseVerdict {
    Verdict(RawVerdict),
    Other(IgnoredAny),
}

#[derive(Deserialize, Default)]
struct RawCritique {
    #[serde(default)]
    criteria: Vec<LooseVerdict>,
    #[serde(default)]
    comment: Option<LooseText>,
    #[serde(default)]
    rewrite: Option<LooseText>,
}

/// What the store reads back from a critique's result: its verdicts, comment and
/// rewrite.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CritiqueDoc {
    /// One verdict per criterion whose id and status are known, in stored order.
    pub verdicts: Vec<Verdict>,
    /// The coach's comment.
    pub comment: Option<String>,
    /// The suggested rewrite.
    pub rewrite: Option<String>,
}

impl CritiqueDoc {
    /// Reads a stored critique result (empty when it is no JSON object).
    pub(crate) fn from_text(text: &str) -> CritiqueDoc {
        let raw: RawCritique = serde_json::from_str(text).unwrap_or_default();
        let verdicts = raw
            .criteria
            .into_iter()
            .filter_map(|v| match v {
                LooseVerdict::Verdict(v) => Some(Verdict {
                    id: Criterion::parse(&v.id)?,
                    status: v.status.get()?,
                    evidence: v.evidence.and_then(LooseText::get),
                    advice: v.advice.and_then(LooseText::get),
                    quotes: v.principles.into_iter().filter_map(LooseText::get).collect(),
                }),
                LooseVerdict::Other(_) => None,
            })
            .collect();
        CritiqueDoc {
            verdicts,
            comment: raw.comment.and_then(LooseText::get),
            rewrite: raw.rewrite.and_then(LooseText::get),
        }
    }

    /// The statuses, one per criterion.
    pub fn scores(&self) -> Scores {
        self.verdicts.iter().map(|v| (v.id, v.status)).collect()
    }
}

/// A principle to practise, as a stored debrief lists it.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct Practise {
    /// Principle id.
    #[serde(default)]
    pub principle: String,
    /// A quote of the talk.
    #[serde(default)]
    pub quote: String,
    /// Why it is worth practising.
    #[serde(default)]
    pub why: String,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum LooseCriteria {
    Map(LooseScores),
    List(Vec<LooseVerdict>),
    Other(IgnoredAny),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum LoosePractise {
    Practise(Practise),
    Other(IgnoredAny),
}

#[derive(Deserialize, Default)]
struct RawDebrief {
    #[serde(default)]
    score: Option<LooseNumber>,
    #[serde(default)]
    criteria: Option<LooseCriteria>,
    #[serde(default)]
    strengths: Vec<LooseText>,
    #[serde(default)]
    practise: Vec<LoosePractise>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum LooseNumber {
    Number(f64),
    Other(IgnoredAny),
}

/// What the store reads back from a role-play's debrief.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DebriefDoc {
    /// The debrief's score, 0–100.
    pub score: Option<f64>,
    /// Best status per criterion.
    pub criteria: Scores,
    /// What the user did well.
    pub strengths: Vec<String>,
    /// Principles to practise.
    pub practise: Vec<Practise>,
}

impl DebriefDoc {
    /// Reads a stored debrief (`None` when it is no JSON object).
    pub(crate) fn from_text(text: &str) -> Option<DebriefDoc> {
        let raw: RawDebrief = serde_json::from_str(text).ok()?;
        let criteria = match raw.criteria {
            Some(LooseCriteria::Map(m)) => m.typed(),
            Some(LooseCriteria::List(l)) => l
                .into_iter()
                .filter_map(|v| match v {
                    LooseVerdict::Verdict(v) => Some((Criterion::parse(&v.id)?, v.status.get()?)),
                    LooseVerdict::Other(_) => None,
                })
                .collect(),
            Some(LooseCriteria::Other(_)) | None => Scores::new(),
        };
        let practise = raw
            .practise
            .into_iter()
            .filter_map(|p| match p {
                LoosePractise::Practise(p) => Some(p),
                LoosePractise::Other(_) => None,
            })
            .collect();
        let score = match raw.score {
            Some(LooseNumber::Number(x)) => Some(x),
            _ => None,
        };
        let strengths = raw.strengths.into_iter().filter_map(LooseText::get).collect();
        Some(DebriefDoc { score, criteria, strengths, practise })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_keep_known_entries_only() {
        let s = scores_from_text(r#"{"ask":"met","plan":"Partial","charm":"met","tone":7,"timing":{"status":"missing"}}"#)
            .unwrap();
        let want: Scores = [
            (Criterion::Ask, Status::Met),
            (Criterion::Plan, Status::Partial),
            (Criterion::Timing, Status::Missing),
        ]
        .into();
        assert_eq!(s, want);
        assert_eq!(scores_from_text("not json"), None);
    }

    #[test]
    fn critique_and_debrief_docs_read_what_was_written() {
        let c = CritiqueDoc::from_text(
            r#"{"kind":"help","criteria":[
                {"id":"ask","status":"met","advice":"Keep it.","evidence":{"start":0,"end":3,"text":"Could"},
                 "principles":[{"id":"p","quote":"认真地请教"}]},
                {"id":"charm","status":"met"},
                7,
                {"id":"plan","status":"missing","evidence":"on Friday"}],
               "comment":"Good.","rewrite":null}"#,
        );
        assert_eq!(c.verdicts.len(), 2);
        assert_eq!(c.verdicts[0].evidence.as_deref(), Some("Could"));
        assert_eq!(c.verdicts[0].quotes, ["认真地请教"]);
        assert_eq!(c.verdicts[1].evidence.as_deref(), Some("on Friday"));
        assert_eq!((c.comment.as_deref(), c.rewrite), (Some("Good."), None));
        assert_eq!(CritiqueDoc::from_text("[1]"), CritiqueDoc::default());
        let d = DebriefDoc::from_text(
            r#"{"score":72,"criteria":{"ask":"met","plan":"missing"},"practise":[{"principle":"x","quote":"q","why":"w"}]}"#,
        )
        .unwrap();
        assert_eq!(d.score, Some(72.0));
        assert_eq!(d.criteria.get("plan"), Some(&Status::Missing));
        assert_eq!(d.practise[0].principle, "x");
        let list = DebriefDoc::from_text(r#"{"criteria":[{"id":"ask","status":"partial"}]}"#);
        assert_eq!(list.unwrap().criteria.get("ask"), Some(&Status::Partial));
    }
}
