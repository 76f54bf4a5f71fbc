//! Hints during a role-play, feedback on the last turn, and the debrief at its end.

use super::session::{rank, Roleplay};
use crate::backend::ChatBackend;
use crate::critique::with_engine::BackendModel;
use crate::critique::{self, rubric, Criterion, DraftKind, KindChoice, Status};
use crate::kb::KnowledgeBase;
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
    pub criteria: BTreeMap<Criterion, Status>,
    /// What the user did well.
    pub strengths: Vec<String>,
    /// Two or three principles to practise.
    pub practise: Vec<Practice>,
    /// Number of the best turn, counting from 1 (as the text debrief shows it).
    pub best_turn: Option<usize>,
    /// Number of the weakest turn, counting from 1.
    pub weakest_turn: Option<usize>,
    /// A better version of the weakest turn: the critique's rewrite (the model's when one
    /// is loaded and its rewrite passes the checks, else the structured rewrite).
    pub better_version: Option<String>,
}

fn criteria_of(rubric: critique::Rubric) -> &'static [&'static str] {
    rubric.ids()
}

/// How often a criterion fell short across the turns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Shortfall {
    /// Turns where it was missing.
    missing: usize,
    /// Turns where it was only partly met.
    partial: usize,
}

/// Criteria ordered from weakest to strongest across the turns (missing most often
/// first), with how often each fell short.
fn weakest_criteria(rp: &Roleplay) -> Vec<(&'static str, Shortfall)> {
    let best = rp.best_statuses();
    let count = |id: &str, s: Status| {
        rp.turns().iter().filter(|t| t.score.statuses.get(id) == Some(&s)).count()
    };
    let mut v: Vec<(&'static str, Shortfall, u8)> = criteria_of(rp.rubric)
        .iter()
        .map(|id| {
            let short = Shortfall {
                missing: count(id, Status::Missing),
                partial: count(id, Status::Partial),
            };
            (*id, short, best.get(*id).map_or(0, |s| rank(*s)))
        })
        .collect();
    v.sort_by(|a, b| {
        a.2.cmp(&b.2).then(b.1.missing.cmp(&a.1.missing)).then(b.1.partial.cmp(&a.1.partial))
    });
    v.into_iter().map(|(id, n, _)| (id, n)).collect()
}

/// Why a criterion is worth practising, in numbers the turns bear out: how many turns
/// lacked it, or (when none lacked it outright) how many covered it only partly.
fn shortfall_note(short: Shortfall, turns: usize, label: &str, lang: Lang) -> String {
    match (lang, short.missing > 0) {
        (Lang::Zh, true) => format!("{}/{turns} 轮缺少「{label}」", short.missing),
        (Lang::Zh, false) => format!("{}/{turns} 轮只部分做到「{label}」", short.partial),
        (Lang::En, true) => format!("{} of {turns} turns lacked \"{label}\"", short.missing),
        (Lang::En, false) => {
            format!("{} of {turns} turns covered \"{label}\" only partly", short.partial)
        }
    }
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
    for id in criteria_of(rp.rubric) {
        if let Some(s) = t.score.statuses.get(*id) {
            out.push_str(&format!("  {} {}\n", s.mark(), rubric::label(id, lang)));
        }
    }
    Some(out)
}

/// Summarises the role-play; with a model, also rewrites the weakest turn.
pub fn debrief(rp: &Roleplay, kb: &KnowledgeBase, model: Option<&mut dyn ChatBackend>) -> Debrief {
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
        .filter_map(|(id, short)| {
            let p = kb.principles_for_criterion(id).into_iter().next()?;
            let quote = p.quotes.first()?.clone();
            let note = shortfall_note(short, turns.len(), rubric::label(id, lang), lang);
            let why = match lang {
                Lang::Zh => format!("{}（{note}）", p.summary.zh),
                Lang::En => format!("{} ({note})", p.summary.en),
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
    let better_version = match (model, weakest_turn) {
        (Some(e), Some(i)) => rewrite_turn(e, rp, kb, i).ok(),
        (None, Some(i)) => rules_rewrite_turn(rp, kb, i).ok(),
        _ => None,
    };
    Debrief {
        score,
        criteria,
        strengths,
        practise,
        best_turn: by_score(true).map(|i| i + 1),
        weakest_turn: weakest_turn.map(|i| i + 1),
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
    model: &mut dyn ChatBackend,
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
    critique::rewrite_with_model(&c, text, &mut BackendModel(model))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::roleplay::{load_personas, score_turn, Turn};

    /// Turns that only partly covered "Effort" (none lacked it): the debrief recommends
    /// it with the partial count, never "0 turns lacked"; turn numbers count from 1.
    #[test]
    fn practise_counts_what_the_turns_show() {
        let kb = KnowledgeBase::load_default().unwrap();
        let personas = load_personas().unwrap();
        let mut rp = Roleplay::new(&kb, &personas, "resources-critical", None, Lang::En).unwrap();
        let turn = |text: &str, effort: Status| {
            let mut score = score_turn(text, DraftKind::Help, Lang::En);
            score.statuses.insert(Criterion::Effort, effort);
            Turn {
                user: text.into(),
                boss: "Go on.".into(),
                score,
                trust: 50,
                note: String::new(),
                interrupted: false,
            }
        };
        rp.restore(vec![
            turn("The grid deal needs two presales architects next week.", Status::Partial),
            turn("Could you ask the CTO to join on Wednesday?", Status::Partial),
        ]);
        let d = debrief(&rp, &kb, None);
        let effort = d
            .practise
            .iter()
            .find(|p| p.why.contains("\"Effort\""))
            .unwrap_or_else(|| panic!("effort not recommended: {:?}", d.practise));
        assert!(
            effort.why.contains("2 of 2 turns covered \"Effort\" only partly"),
            "{}",
            effort.why
        );
        for p in &d.practise {
            assert!(!p.why.contains("(0 of"), "{}", p.why);
        }
        assert!(matches!(d.best_turn, Some(1 | 2)) && matches!(d.weakest_turn, Some(1 | 2)));
        let zh = shortfall_note(Shortfall { missing: 0, partial: 2 }, 3, "努力", Lang::Zh);
        assert_eq!(zh, "2/3 轮只部分做到「努力」");
    }
}
