//! The authored boss's lines in the knowledge files (`[[line]]` tables in scenario files,
//! `knowledge/boss_lines.toml` for lines and reactions shared by every scenario): parsing
//! and checks, reported with file and line like every other knowledge problem.

use super::check::{known_criterion, Reporter};
use super::types::{
    Bilingual, BossLine, BossLines, BossReaction, LACKS_NOTHING, MOODS, TRUST_BANDS,
};
use serde::Deserialize;
use toml::Spanned;

/// A `[[line]]` table as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLine {
    lacks: Spanned<String>,
    persona: Option<Spanned<String>>,
    trust: Option<Spanned<String>>,
    zh: Option<Spanned<String>>,
    en: Option<Spanned<String>>,
}

/// A `[[reaction]]` table as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawReaction {
    mood: Spanned<String>,
    persona: Option<Spanned<String>>,
    trust: Option<Spanned<String>>,
    zh: Option<Spanned<String>>,
    en: Option<Spanned<String>>,
}

/// `knowledge/boss_lines.toml` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBossLines {
    #[serde(default)]
    line: Vec<Spanned<RawLine>>,
    #[serde(default)]
    reaction: Vec<Spanned<RawReaction>>,
}

/// Both texts present and non-empty.
fn texts(
    r: &mut Reporter<'_>,
    at: std::ops::Range<usize>,
    zh: &Option<Spanned<String>>,
    en: &Option<Spanned<String>>,
) -> Bilingual {
    let mut get = |lang: &str, v: &Option<Spanned<String>>| match v {
        Some(s) if !s.get_ref().trim().is_empty() => s.get_ref().trim().to_string(),
        Some(s) => {
            r.at(s.span(), format!("boss line: `{lang}` is empty"));
            String::new()
        }
        None => {
            r.at(at.clone(), format!("boss line: missing its `{lang}` text"));
            String::new()
        }
    };
    let zh = get("zh", zh);
    let en = get("en", en);
    Bilingual { zh, en }
}

fn persona(r: &mut Reporter<'_>, p: &Option<Spanned<String>>) -> Option<String> {
    let p = p.as_ref()?;
    let s = p.get_ref().trim();
    if s.is_empty() || !s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        r.at(
            p.span(),
            format!("persona id `{s}` must be lower-case ASCII letters, digits and `-`"),
        );
    }
    Some(s.to_string())
}

fn trust(r: &mut Reporter<'_>, t: &Option<Spanned<String>>) -> Option<String> {
    let t = t.as_ref()?;
    let s = t.get_ref().trim();
    if !TRUST_BANDS.contains(&s) {
        r.at(t.span(), format!("unknown trust band `{s}` (use {})", TRUST_BANDS.join(", ")));
    }
    Some(s.to_string())
}

/// Checks `[[line]]` tables and returns the lines.
pub(super) fn lines(r: &mut Reporter<'_>, raw: &[Spanned<RawLine>]) -> Vec<BossLine> {
    raw.iter()
        .map(|l| {
            let span = l.span();
            let l = l.get_ref();
            let lacks = l.lacks.get_ref().trim().to_string();
            if lacks != LACKS_NOTHING && !known_criterion(&lacks) {
                r.at(
                    l.lacks.span(),
                    format!("boss line: `lacks` must be a criterion id or `{LACKS_NOTHING}`, not `{lacks}`"),
                );
            }
            BossLine {
                lacks,
                persona: persona(r, &l.persona),
                trust: trust(r, &l.trust),
                text: texts(r, span, &l.zh, &l.en),
            }
        })
        .collect()
}

/// Checks a parsed `boss_lines.toml`.
pub(super) fn shared(r: &mut Reporter<'_>, raw: &RawBossLines) -> BossLines {
    let reactions = raw
        .reaction
        .iter()
        .map(|x| {
            let span = x.span();
            let x = x.get_ref();
            let mood = x.mood.get_ref().trim().to_string();
            if !MOODS.contains(&mood.as_str()) {
                r.at(x.mood.span(), format!("unknown mood `{mood}` (use {})", MOODS.join(", ")));
            }
            BossReaction {
                mood,
                persona: persona(r, &x.persona),
                trust: trust(r, &x.trust),
                text: texts(r, span, &x.zh, &x.en),
            }
        })
        .collect();
    BossLines { lines: lines(r, &raw.line), reactions }
}
