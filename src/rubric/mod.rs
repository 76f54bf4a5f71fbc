//! The typed rubric core, below `kb`, `critique`, `roleplay` and `store` (it depends on
//! none of them): what kind a draft is ([`DraftKind`]), which set of criteria scores it
//! ([`Rubric`]), each criterion's stable id ([`Criterion`]) and content
//! ([`CriterionDef`]), and how well a draft meets one ([`Status`], with its label, mark
//! and value in one place).
//!
//! Ids, kinds and statuses serialise as the strings they always were (`"ask"`,
//! `"thanks"`, `"skip-level"`, `"met"`), so JSON output, stored sessions and the
//! knowledge files keep their format.

mod criterion;
mod table;

pub use criterion::{Criterion, UnknownCriterion};
pub use table::{CriterionDef, GENERAL_MAX_WEIGHT, HELP, SKIP_LEVEL, THANKS};

use crate::lang::Lang;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

impl Criterion {
    /// Its weight, names, definition, advice and passages.
    pub fn def(self) -> &'static CriterionDef {
        table::def(self)
    }
    /// The short name in `lang` (`明确请求` / `Ask`).
    pub fn name(self, lang: Lang) -> &'static str {
        self.def().name(lang)
    }
    /// Does it rest on the talk? If not, it is general practice and weighs little.
    pub fn from_talk(self) -> bool {
        self.def().from_talk()
    }
    /// The advice for a verdict, in `lang`: what works when met, what to fix otherwise.
    pub fn advice(self, status: Status, lang: Lang) -> String {
        table::advice(self, status, lang)
    }
}

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

    /// Parses `help` / `thanks` (any case).
    pub fn parse(s: &str) -> Option<DraftKind> {
        match s.trim().to_ascii_lowercase().as_str() {
            "help" => Some(DraftKind::Help),
            "thanks" => Some(DraftKind::Thanks),
            _ => None,
        }
    }

    /// The criteria of this kind's rubric, in order.
    pub fn criteria(self) -> &'static [Criterion] {
        Rubric::from(self).criteria()
    }
}

/// Which set of criteria scores a draft or a role-play turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rubric {
    /// A help request or request for advice to your boss.
    Help,
    /// A thank-you note.
    Thanks,
    /// Talking to your boss's boss: reporting and asking for perspective, not for
    /// resources over your boss's head.
    SkipLevel,
}

const HELP_CRITERIA: [Criterion; 7] = [
    Criterion::Situation,
    Criterion::Effort,
    Criterion::Ask,
    Criterion::Plan,
    Criterion::Tone,
    Criterion::Timing,
    Criterion::Politics,
];
const THANKS_CRITERIA: [Criterion; 6] = [
    Criterion::Specific,
    Criterion::Attribution,
    Criterion::Impact,
    Criterion::Sincere,
    Criterion::Occasion,
    Criterion::Forward,
];
const SKIP_LEVEL_CRITERIA: [Criterion; 7] = [
    Criterion::Situation,
    Criterion::Effort,
    Criterion::Chain,
    Criterion::Plan,
    Criterion::Tone,
    Criterion::Timing,
    Criterion::Politics,
];
const HELP_IDS: [&str; 7] = ["situation", "effort", "ask", "plan", "tone", "timing", "politics"];
const THANKS_IDS: [&str; 6] =
    ["specific", "attribution", "impact", "sincere", "occasion", "forward"];
const SKIP_LEVEL_IDS: [&str; 7] =
    ["situation", "effort", "chain", "plan", "tone", "timing", "politics"];

impl Rubric {
    /// Every rubric.
    pub const ALL: [Rubric; 3] = [Rubric::Help, Rubric::Thanks, Rubric::SkipLevel];

    /// `help`, `thanks` or `skip-level` (as written in scenario files).
    pub fn code(self) -> &'static str {
        match self {
            Rubric::Help => "help",
            Rubric::Thanks => "thanks",
            Rubric::SkipLevel => "skip-level",
        }
    }

    /// Parses [`Rubric::code`].
    pub fn parse(s: &str) -> Option<Rubric> {
        Rubric::ALL.into_iter().find(|r| r.code() == s.trim())
    }

    /// The kind of draft its detectors read it as.
    pub fn kind(self) -> DraftKind {
        match self {
            Rubric::Thanks => DraftKind::Thanks,
            Rubric::Help | Rubric::SkipLevel => DraftKind::Help,
        }
    }

    /// Its criteria, in output order.
    pub fn criteria(self) -> &'static [Criterion] {
        match self {
            Rubric::Help => &HELP_CRITERIA,
            Rubric::Thanks => &THANKS_CRITERIA,
            Rubric::SkipLevel => &SKIP_LEVEL_CRITERIA,
        }
    }

    /// Its criteria's definitions, in output order.
    pub fn defs(self) -> &'static [CriterionDef] {
        match self {
            Rubric::Help => &HELP,
            Rubric::Thanks => &THANKS,
            Rubric::SkipLevel => &SKIP_LEVEL,
        }
    }

    /// Its criterion ids as strings, in output order.
    pub fn ids(self) -> &'static [&'static str] {
        match self {
            Rubric::Help => &HELP_IDS,
            Rubric::Thanks => &THANKS_IDS,
            Rubric::SkipLevel => &SKIP_LEVEL_IDS,
        }
    }
}

impl From<DraftKind> for Rubric {
    fn from(kind: DraftKind) -> Rubric {
        match kind {
            DraftKind::Help => Rubric::Help,
            DraftKind::Thanks => Rubric::Thanks,
        }
    }
}

impl fmt::Display for Rubric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl Serialize for Rubric {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Rubric {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Rubric, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        Rubric::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown rubric `{s}` (use one of: help, thanks, skip-level)"
            ))
        })
    }
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
    /// Every status, best first.
    pub const ALL: [Status; 3] = [Status::Met, Status::Partial, Status::Missing];

    /// `met`, `partial` or `missing` (as stored and in JSON).
    pub fn code(self) -> &'static str {
        match self {
            Status::Met => "met",
            Status::Partial => "partial",
            Status::Missing => "missing",
        }
    }

    /// Parses `met` / `partial` / `missing` (any case).
    pub fn parse(s: &str) -> Option<Status> {
        match s.trim().to_ascii_lowercase().as_str() {
            "met" => Some(Status::Met),
            "partial" => Some(Status::Partial),
            "missing" => Some(Status::Missing),
            _ => None,
        }
    }

    /// The word for people, in `lang`: 做到了 / 不够 / 缺少, met / partial / missing.
    pub fn label(self, lang: Lang) -> &'static str {
        match self {
            Status::Met => lang.pick("做到了", "met"),
            Status::Partial => lang.pick("不够", "partial"),
            Status::Missing => lang.pick("缺少", "missing"),
        }
    }

    /// The mark shown before it: ✓ met, ◐ partial, ✗ missing.
    pub fn mark(self) -> &'static str {
        match self {
            Status::Met => "✓",
            Status::Partial => "◐",
            Status::Missing => "✗",
        }
    }

    /// Its share of a criterion's weight in a score: 1, 0.5 or 0.
    pub fn value(self) -> f32 {
        match self {
            Status::Met => 1.0,
            Status::Partial => 0.5,
            Status::Missing => 0.0,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_add_up_and_defs_follow_the_criteria() {
        for r in Rubric::ALL {
            let defs = r.defs();
            assert_eq!(defs.iter().map(|d| d.weight as u32).sum::<u32>(), 100, "{r:?}");
            assert_eq!(defs.iter().map(|d| d.id).collect::<Vec<_>>(), r.criteria(), "{r:?}");
            assert_eq!(r.criteria().iter().map(|c| c.as_str()).collect::<Vec<_>>(), r.ids());
            assert_eq!(Rubric::parse(r.code()), Some(r));
            let json = serde_json::to_string(&r).unwrap();
            assert_eq!(json, format!("\"{}\"", r.code()));
            assert_eq!(serde_json::from_str::<Rubric>(&json).unwrap(), r);
        }
        assert_eq!(Rubric::parse("praise"), None);
        for c in Criterion::ALL {
            assert_eq!(c.def().id, c);
        }
    }

    /// Every passage is verbatim in the transcript; general practice weighs little and
    /// less than the talk's criteria together.
    #[test]
    fn criteria_rest_on_the_talk_or_weigh_little() {
        let transcript = include_str!("../../knowledge/source/transcript-zh.txt");
        for r in Rubric::ALL {
            let (mut talk, mut general) = (0u32, 0u32);
            for c in r.defs() {
                for p in c.passages {
                    assert!(transcript.contains(p), "{}: not in the transcript: {p}", c.id);
                }
                if c.from_talk() {
                    talk += c.weight as u32;
                } else {
                    assert!(c.weight <= GENERAL_MAX_WEIGHT, "{} weighs {}", c.id, c.weight);
                    general += c.weight as u32;
                }
            }
            assert!(general * 4 <= talk, "{r:?}: general {general} vs talk {talk}");
        }
        for c in [Criterion::Specific, Criterion::Forward] {
            assert!(!c.from_talk(), "{c}");
        }
    }

    #[test]
    fn placeholders_are_bracketed_in_both_languages() {
        let effort = Criterion::Effort.def();
        assert_eq!(effort.placeholder(Lang::Zh), "[补充：你已经尝试过的办法]");
        assert_eq!(effort.placeholder(Lang::En), "[add: what you have already tried]");
    }

    #[test]
    fn statuses_have_one_code_label_mark_and_value() {
        for s in Status::ALL {
            assert_eq!(Status::parse(s.code()), Some(s));
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{}\"", s.code()));
            assert_eq!(s.label(Lang::En), s.code());
        }
        let zh: Vec<_> = Status::ALL.iter().map(|s| s.label(Lang::Zh)).collect();
        assert_eq!(zh, ["做到了", "不够", "缺少"]);
        let marks: Vec<_> = Status::ALL.iter().map(|s| s.mark()).collect();
        assert_eq!(marks, ["✓", "◐", "✗"]);
        assert_eq!(Status::ALL.map(Status::value), [1.0, 0.5, 0.0]);
    }
}
