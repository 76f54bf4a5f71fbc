//! Hints during a role-play, feedback on the last turn, and the debrief at its end.

use super::session::{rank, Roleplay};
use crate::critique::with_engine::EngineModel;
use crate::critique::{self, rubric, DraftKind, KindChoice, Status};
use crate::engine::Engine;
use crate::kb::{KnowledgeBase, HELP_CRITERIA, THANKS_CRITERIA};
use crate::lang::Lang;
use std::collections::BTreeMap;

/// A principle to practise, with the talk's words and why it matters here.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Practice {
    /// Principle id.
    pub principle: String,
    /// A verbatim quote from the talk.
    pub quote: String,
    /// Why, for this user.
    pub why: String,
}

/// The end-of-role-play summary.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Debrief {
    /// Mean turn score 0-100.
    pub score: u8,
    /// Best status reached per criterion.
    pub criteria: BTreeMap<String, Status>,
    /// What the user did well.
    pub strengths: Vec<String>,
    /// Two or three principles to practise.
    pub practise: Vec<Practice>,
    /// Index of the best turn.
    pub best_turn: Option<usize>,
    /// Index of the weakest turn.
    pub weakest_turn: Option<usize>,
    /// A better version of the weakest turn: the critique's rewrite (the model's when one
    /// is loaded and its rewrite passes the checks, else the structured rewrite).
    pub better_version: Option<String>,
}

fn criteria_of(kind: DraftKind) -> &'static [&'static str] {
    match kind {
        DraftKind::Help => &HELP_CRITERIA,
        DraftKind::Thanks => &THANKS_CRITERIA,
    }
}

/// Criteria ordered from weakest to strongest across the turns (missing most often
/// first), with how often each was missing.
fn weakest_criteria(rp: &Roleplay) -> Vec<(&'static str, usize)> {
    let best = rp.best_statuses();
    let mut v: Vec<(&'static str, usize, u8)> = criteria_of(rp.kind)
        .iter()
        .map(|id| {
            let missing = rp
                .turns()
                .iter()
                .filter(|t| t.score.statuses.get(*id) == Some(&Status::Missing))
                .count();
            (*id, missing, best.get(*id).map_or(0, |s| rank(*s)))
        })
        .collect();
    v.sort_by(|a, b| a.2.cmp(&b.2).then(b.1.cmp(&a.1)));
    v.into_iter().map(|(id, n, _)| (id, n)).collect()
}

/// What a strong next line would cover: the criteria still unmet, each with its
/// principle and an example.
pub fn hint(rp: &Roleplay, kb: &KnowledgeBase) -> String {
    let lang = rp.lang;
    let best = rp.best_statuses();
    let mut out =
        String::from(lang.pick("下一句可以覆盖：\n", "A strong next line would cover:\n"));
    let todo: Vec<&str> = weakest_criteria(rp)
        .into_iter()
        .map(|(id, _)| id)
        .filter(|id| best.get(*id) != Some(&Status::Met))
        .take(3)
        .collect();
    if todo.is_empty() {
        out.push_str(lang.pick(
            "  你已经覆盖了所有要点。保持结构，给出明确的请求或承诺。\n",
            "  You have covered every point. Keep the structure and close with a clear ask or commitment.\n",
        ));
    }
    for id in todo {
        out.push_str(&format!("  • {}", rubric::label(id, lang)));
        if let Some(p) = kb.principles_for_criterion(id).first() {
            out.push_str(&format!(" — {}", p.summary.get(lang)));
            if let Some(ex) = p.dos.first() {
                out.push_str(&format!("\n    {} {}", lang.pick("例：", "e.g."), ex.get(lang)));
            }
        }
        out.push('\n');
    }
    // What the talk says about the conversation so far.
    let topic = rp.turns().last().map_or(rp.scenario.situation.get(lang), |t| t.user.as_str());
    if let Some(hit) = kb.search(topic, Some(lang), 1).first() {
        let p = hit.principle;
        out.push_str(&format!(
            "{} {}",
            lang.pick("相关原则：", "From the talk:"),
            p.title.get(lang)
        ));
        if let Some(q) = p.quotes.first() {
            out.push_str(&format!("\n    「{q}」"));
        }
        out.push('\n');
    }
    out
}

/// The last turn's scores, one line per criterion.
pub fn feedback(rp: &Roleplay) -> Option<String> {
    let lang = rp.lang;
    let t = rp.turns().last()?;
    let mut out = format!(
        "{} {}/100 · {} {}\n",
        lang.pick("本轮得分", "Turn score"),
        t.score.score,
        lang.pick("信任", "trust"),
        t.trust
    );
    for id in criteria_of(rp.kind) {
        if let Some(s) = t.score.statuses.get(*id) {
            let mark = match s {
                Status::Met => "✓",
                Status::Partial => "~",
                Status::Missing => "✗",
            };
            out.push_str(&format!("  {mark} {}\n", rubric::label(id, lang)));
        }
    }
    Some(out)
}

/// Summarises the role-play; with an engine, also rewrites the weakest turn.
pub fn debrief(rp: &Roleplay, kb: &KnowledgeBase, engine: Option<&mut Engine>) -> Debrief {
    let lang = rp.lang;
    let turns = rp.turns();
    let score = if turns.is_empty() {
        0
    } else {
        (turns.iter().map(|t| t.score.score as u32).sum::<u32>() / turns.len() as u32) as u8
    };
    let by_score = |best: bool| {
        turns
            .iter()
            .enumerate()
            .max_by_key(|(i, t)| {
                if best {
                    (t.score.score as i32, -(*i as i32))
                } else {
                    (-(t.score.score as i32), *i as i32)
                }
            })
            .map(|(i, _)| i)
    };
    let criteria = rp.best_statuses();
    let strengths = criteria
        .iter()
        .filter(|(_, s)| **s == Status::Met)
        .map(|(id, _)| rubric::label(id, lang).to_string())
        .collect();
    let practise = weakest_criteria(rp)
        .into_iter()
        .filter(|(id, _)| criteria.get(*id) != Some(&Status::Met))
        .filter_map(|(id, missing)| {
            let p = kb.principles_for_criterion(id).into_iter().next()?;
            let quote = p.quotes.first()?.clone();
            let why = match lang {
                Lang::Zh => {
                    format!("{}（{} 轮缺少「{}」）", p.summary.zh, missing, rubric::label(id, lang))
                }
                Lang::En => format!(
                    "{} ({} turns lacked \"{}\")",
                    p.summary.en,
                    missing,
                    rubric::label(id, lang)
                ),
            };
            Some(Practice { principle: p.id.clone(), quote, why })
        })
        .fold(Vec::<Practice>::new(), |mut acc, p| {
            if acc.len() < 3 && !acc.iter().any(|q| q.principle == p.principle) {
                acc.push(p);
            }
            acc
        });
    let weakest_turn = by_score(false);
    let better_version = match (engine, weakest_turn) {
        (Some(e), Some(i)) => rewrite_turn(e, rp, kb, i).ok(),
        (None, Some(i)) => rules_rewrite_turn(rp, kb, i).ok(),
        _ => None,
    };
    Debrief {
        score,
        criteria,
        strengths,
        practise,
        best_turn: by_score(true),
        weakest_turn,
        better_version,
    }
}

/// A better version of turn `i` without a model: the critique's structured rewrite (the
/// user's own sentences in the talk's order, placeholders where a part is missing).
fn rules_rewrite_turn(
    rp: &Roleplay,
    kb: &KnowledgeBase,
    i: usize,
) -> Result<String, crate::critique::CritiqueError> {
    let text = &rp.turns()[i].user;
    let kind = match rp.kind {
        DraftKind::Help => KindChoice::Help,
        DraftKind::Thanks => KindChoice::Thanks,
    };
    let c = critique::critique(text, kind, Some(rp.lang), kb)?;
    Ok(c.rewrite.unwrap_or_default())
}

/// A better version of turn `i`: the critique's model rewrite (facts kept, missing ones as
/// placeholders, deterministic fallback).
fn rewrite_turn(
    engine: &mut Engine,
    rp: &Roleplay,
    kb: &KnowledgeBase,
    i: usize,
) -> Result<String, crate::critique::CritiqueError> {
    let text = &rp.turns()[i].user;
    let kind = match rp.kind {
        DraftKind::Help => KindChoice::Help,
        DraftKind::Thanks => KindChoice::Thanks,
    };
    let c = critique::critique(text, kind, Some(rp.lang), kb)?;
    critique::rewrite_with_model(&c, text, &mut EngineModel(engine))
}
