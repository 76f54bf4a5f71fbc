//! One session as Markdown (a readable transcript) or JSON (everything stored). An export
//! never includes any other session.

use super::{Role, Scores, SessionDetail, StoreError};
use crate::lang::Lang;
use crate::rubric::Status;
use std::fmt::Write;

/// Export formats of `upward sessions export`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// A readable Markdown transcript.
    Md,
    /// The full session as JSON.
    Json,
}

/// The full session (row, turns, critiques) as pretty JSON.
pub fn export_json(d: &SessionDetail) -> Result<String, StoreError> {
    serde_json::to_string_pretty(d).map_err(|cause| StoreError::Json { what: "session", cause })
}

/// A status with its mark and label, in `lang`: `✓ met`, `◐ 不够`, …
fn status_mark(s: Status, lang: Lang) -> String {
    format!("{} {}", s.mark(), s.label(lang))
}

fn scores_line(scores: &Scores, lang: Lang) -> String {
    scores
        .iter()
        .map(|(k, s)| format!("{} {}", k.name(lang), status_mark(*s, lang)))
        .collect::<Vec<_>>()
        .join(" · ")
}

fn quote_block(out: &mut String, text: &str) {
    for line in text.lines() {
        if line.is_empty() {
            out.push_str(">\n");
        } else {
            let _ = writeln!(out, "> {line}");
        }
    }
    if text.is_empty() {
        out.push_str(">\n");
    }
}

fn score_str(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

/// The session as a Markdown transcript in its own language: details, every turn with its
/// scores and trust, every critique, and the debrief.
pub fn export_markdown(d: &SessionDetail) -> String {
    let s = &d.session;
    let lang = s.lang;
    let mut out = String::new();
    let title = s.title.clone().unwrap_or_else(|| s.kind.label(lang).to_string());
    let _ = writeln!(out, "# {} #{}: {}\n", lang.pick("会话", "Session"), s.id, title);
    let mut meta = vec![(lang.pick("类型", "Kind"), s.kind.label(lang).to_string())];
    if let Some(x) = &s.scenario {
        meta.push((lang.pick("场景", "Scenario"), x.clone()));
    }
    if let Some(x) = &s.persona {
        meta.push((lang.pick("老板类型", "Persona"), x.clone()));
    }
    if let Some(x) = &s.model {
        meta.push((lang.pick("模型", "Model"), x.clone()));
    }
    meta.push((lang.pick("语言", "Language"), lang.code().to_string()));
    meta.push((lang.pick("开始", "Started"), s.started_at.clone()));
    if let Some(x) = &s.ended_at {
        meta.push((lang.pick("结束", "Ended"), x.clone()));
    }
    for (k, v) in meta {
        let _ = writeln!(out, "- **{k}**: {v}");
    }
    out.push('\n');

    if !d.turns.is_empty() {
        let _ = writeln!(out, "## {}\n", lang.pick("对话", "Transcript"));
        for t in &d.turns {
            let _ = writeln!(out, "**{}** ({}):\n", t.role.label(lang), t.seq);
            quote_block(&mut out, &t.text);
            out.push('\n');
            let mut notes = Vec::new();
            if let Some(sc) = &t.scores {
                notes.push(format!("{}: {}", lang.pick("评分", "Scores"), scores_line(sc, lang)));
            }
            if let Some(tr) = t.trust {
                notes.push(format!("{}: {}", lang.pick("信任度", "Trust"), score_str(tr)));
            }
            if t.interrupted {
                notes.push(lang.pick("被打断，未说完", "interrupted, incomplete").to_string());
            }
            if t.role != Role::User && t.generated_tokens > 0 {
                notes.push(format!(
                    "{} tokens, {:.0} ms",
                    t.generated_tokens,
                    t.prefill_ms + t.decode_ms
                ));
            }
            if t.interrupted {
                notes.push(lang.pick("已中断，不完整", "interrupted, incomplete").to_string());
            }
            if !notes.is_empty() {
                let _ = writeln!(out, "*{}*\n", notes.join(" · "));
            }
        }
    }

    for c in &d.critiques {
        let _ = writeln!(out, "## {} ({})\n", lang.pick("点评", "Critique"), c.kind);
        let _ = writeln!(out, "**{}**:\n", lang.pick("草稿", "Draft"));
        quote_block(&mut out, &c.draft);
        out.push('\n');
        if let Some(sc) = c.score {
            let _ = writeln!(out, "**{}**: {}\n", lang.pick("得分", "Score"), score_str(sc));
        }
        let doc = &c.doc;
        if !doc.verdicts.is_empty() {
            for v in &doc.verdicts {
                let _ = write!(out, "- **{}** {}", v.id.name(lang), status_mark(v.status, lang));
                let notes = [
                    (lang.pick("依据", "evidence"), &v.evidence),
                    (lang.pick("建议", "advice"), &v.advice),
                ];
                for (k, x) in notes {
                    if let Some(x) = x.as_deref().filter(|x| !x.is_empty()) {
                        let _ = write!(out, "; {k}: {x}");
                    }
                }
                out.push('\n');
                for q in &v.quotes {
                    let _ = writeln!(out, "  - 「{q}」");
                }
            }
            out.push('\n');
        }
        if let Some(x) = doc.comment.as_deref().filter(|x| !x.is_empty()) {
            let _ = writeln!(out, "**{}**: {x}\n", lang.pick("总评", "Comment"));
        }
        if let Some(x) = doc.rewrite.as_deref().filter(|x| !x.is_empty()) {
            let _ = writeln!(out, "**{}**:\n", lang.pick("改写示例", "Rewrite"));
            quote_block(&mut out, x);
            out.push('\n');
        }
    }

    if let Some(db) = &s.debrief_doc {
        let _ = writeln!(out, "## {}\n", lang.pick("复盘", "Debrief"));
        if let Some(sc) = db.score {
            let _ = writeln!(out, "**{}**: {}\n", lang.pick("得分", "Score"), score_str(sc));
        }
        if !db.criteria.is_empty() {
            for (k, v) in &db.criteria {
                let _ = writeln!(out, "- **{}** {}", k.name(lang), status_mark(*v, lang));
            }
            out.push('\n');
        }
        if !db.strengths.is_empty() {
            let _ = writeln!(out, "**{}**:\n", lang.pick("做得好的", "Strengths"));
            for x in &db.strengths {
                let _ = writeln!(out, "- {x}");
            }
            out.push('\n');
        }
        if !db.practise.is_empty() {
            let _ = writeln!(out, "**{}**:\n", lang.pick("下次练习", "Practise next"));
            for p in &db.practise {
                let _ = write!(out, "- **{}**", p.principle);
                if !p.why.is_empty() {
                    let _ = write!(out, ": {}", p.why);
                }
                out.push('\n');
                if !p.quote.is_empty() {
                    let _ = writeln!(out, "  - 「{}」", p.quote);
                }
            }
            out.push('\n');
        }
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rubric::Criterion;
    use crate::store::{CritiqueDoc, DebriefDoc, Session, SessionKind, Turn};
    use serde_json::json;

    fn detail() -> SessionDetail {
        let debrief = json!({"score": 72, "criteria": {"ask": "met", "plan": "missing"},
            "strengths": ["clear ask"],
            "practise": [{"principle": "structured-report", "quote": "先说结论", "why": "lead with it"}]});
        SessionDetail {
            session: Session {
                id: 7,
                kind: SessionKind::Roleplay,
                scenario: Some("weekly-report".into()),
                persona: Some("busy".into()),
                model: None,
                lang: Lang::En,
                started_at: "2026-11-10T10:00:00.000Z".into(),
                ended_at: Some("2026-11-10T10:20:00.000Z".into()),
                title: Some("Weekly report".into()),
                debrief_doc: DebriefDoc::from_text(&debrief.to_string()),
                debrief: Some(debrief),
            },
            turns: vec![Turn {
                seq: 1,
                role: Role::User,
                text: "Could you join the client call?\n\nIt is on Friday.".into(),
                scores: Some(
                    [(Criterion::Ask, Status::Met), (Criterion::Timing, Status::Partial)].into(),
                ),
                trust: Some(60.0),
                prompt_tokens: 0,
                reused_tokens: 0,
                generated_tokens: 0,
                prefill_ms: 0.0,
                decode_ms: 0.0,
                interrupted: false,
                created_at: "2026-11-10T10:01:00.000Z".into(),
            }],
            critiques: vec![],
        }
    }

    #[test]
    fn markdown_has_turns_scores_trust_and_debrief() {
        let md = export_markdown(&detail());
        assert!(md.starts_with("# Session #7: Weekly report"), "{md}");
        assert!(md.contains("> Could you join the client call?\n>\n> It is on Friday."), "{md}");
        assert!(md.contains("Ask ✓ met"), "{md}");
        assert!(md.contains("Timing ◐ partial"), "{md}");
        assert!(md.contains("Trust: 60"), "{md}");
        assert!(md.contains("## Debrief") && md.contains("**Score**: 72"), "{md}");
        assert!(md.contains("**Plan** ✗ missing") && md.contains("「先说结论」"), "{md}");
    }

    /// A critique's evidence is stored as `{start, end, text}` (older records: a string);
    /// both export their text.
    #[test]
    fn critique_evidence_objects_and_strings_export() {
        let mut d = detail();
        d.turns.clear();
        let result = json!({"criteria": [
            {"id": "ask", "status": "met", "advice": "Keep it.",
             "evidence": {"start": 0, "end": 31, "text": "Could you join the client call"}},
            {"id": "timing", "status": "partial", "advice": "Say by when.", "evidence": "on Friday"},
            {"id": "plan", "status": "missing", "advice": "Add a plan.", "evidence": null}
        ]});
        d.critiques.push(crate::store::Critique {
            id: 1,
            session_id: 7,
            draft: "Could you join the client call on Friday?".into(),
            kind: "help".into(),
            lang: Lang::En,
            score: Some(50.0),
            doc: CritiqueDoc::from_text(&result.to_string()),
            result,
            created_at: "2026-11-10T10:01:00.000Z".into(),
        });
        let md = export_markdown(&d);
        assert!(
            md.contains(
                "**Ask** ✓ met; evidence: Could you join the client call; advice: Keep it."
            ),
            "{md}"
        );
        assert!(md.contains("evidence: on Friday"), "{md}");
        assert!(md.contains("**Plan** ✗ missing; advice: Add a plan."), "{md}");
    }

    #[test]
    fn json_round_trips() {
        let d = detail();
        let back: SessionDetail = serde_json::from_str(&export_json(&d).unwrap()).unwrap();
        assert_eq!(back, d);
    }
}
