//! Human-readable critique for the terminal, in the critique's language, CJK-aligned.

use super::{rubric, Critique, DraftKind, Status};
use crate::lang::Lang;
use crate::render::{pad, Painter, Style};
use crate::text::{display_width, truncate_to_width};

/// Renders a critique for a terminal `width` columns wide.
pub fn render(c: &Critique, p: &Painter, width: usize) -> String {
    let lang = c.lang;
    let width = width.clamp(40, 100);
    let mut out = String::new();
    let kind = match c.kind {
        DraftKind::Help => lang.pick("求助/请教", "Help request"),
        DraftKind::Thanks => lang.pick("感谢", "Thank-you note"),
    };
    let score_style = match c.score {
        80.. => Style::Green,
        50..=79 => Style::Yellow,
        _ => Style::Red,
    };
    let score = p.paint(&format!("{}/100", c.score), score_style);
    let title = format!("{} · {} {}", kind, lang.pick("得分", "score"), score);
    out.push_str(&p.paint(&title, Style::Bold));
    out.push('\n');
    if let Some(note) = &c.note {
        for line in wrap(note, width) {
            out.push_str(&p.paint(&line, Style::Yellow));
            out.push('\n');
        }
    }

    let name_w =
        rubric::rubric(c.kind).iter().map(|k| display_width(k.name(lang))).max().unwrap_or(8) + 2;
    let indent = "    ";
    let body_w = width - indent.len();
    for r in &c.criteria {
        let Some(k) = rubric::criterion(&r.id) else {
            continue;
        };
        let style = match r.status {
            Status::Met => Style::Green,
            Status::Partial => Style::Yellow,
            Status::Missing => Style::Red,
        };
        out.push('\n');
        out.push_str(&format!(
            "{} {}{}\n",
            p.paint(r.status.mark(), style),
            p.paint(&pad(k.name(lang), name_w), Style::Bold),
            p.paint(r.status.label(lang), style)
        ));
        if let Some(ev) = &r.evidence {
            let q = quote(&ev.text, lang);
            let label = lang.pick("原文：", "Draft: ");
            let shown = truncate_to_width(&q, body_w.saturating_sub(display_width(label)));
            out.push_str(&format!(
                "{indent}{}{}\n",
                p.paint(label, Style::Dim),
                p.paint(&shown, Style::Cyan)
            ));
        }
        for line in wrap(&r.advice, body_w) {
            out.push_str(&format!("{indent}{line}\n"));
        }
        if r.general_practice {
            let text = lang.pick(
                "依据：通用做法，非出自讲话（权重较低）",
                "Why: general practice, not from the talk (weighted low)",
            );
            out.push_str(&format!("{indent}{}\n", p.paint(text, Style::Dim)));
        }
        for pr in &r.principles {
            let label = lang.pick("依据：", "Why: ");
            let text = format!("{label}{} {}", pr.id, quote(&pr.quote, Lang::Zh));
            for line in wrap(&text, body_w) {
                out.push_str(&format!("{indent}{}\n", p.paint(&line, Style::Dim)));
            }
        }
    }
    if let Some(comment) = &c.comment {
        out.push('\n');
        out.push_str(&p.paint(lang.pick("教练点评", "Coach's comment"), Style::Bold));
        out.push('\n');
        for line in wrap(comment, width) {
            out.push_str(&format!("{line}\n"));
        }
    }
    if let Some(rewrite) = &c.rewrite {
        out.push('\n');
        out.push_str(&p.paint(
            lang.pick(
                "改写建议（方括号处请补上你的真实情况）",
                "Suggested rewrite (fill in the brackets with your real facts)",
            ),
            Style::Bold,
        ));
        out.push('\n');
        for line in wrap(rewrite, width) {
            out.push_str(&format!("{line}\n"));
        }
    }
    out
}

/// [`crate::text::wrap`], with closing punctuation never starting a line (it joins the
/// line before, which may then run one or two columns over).
fn wrap(s: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for line in crate::text::wrap(s, width.saturating_sub(2)) {
        let lead: String =
            line.chars().take_while(|c| "，。、；：？！）」』”,.;:?!)".contains(*c)).collect();
        match lines.last_mut() {
            Some(prev) if !lead.is_empty() => {
                prev.push_str(&lead);
                let rest = &line[lead.len()..];
                if !rest.is_empty() {
                    lines.push(rest.to_string());
                }
            }
            _ => lines.push(line),
        }
    }
    lines
}

fn quote(s: &str, lang: Lang) -> String {
    match lang {
        Lang::Zh => format!("「{}」", s.trim()),
        Lang::En => format!("\u{201c}{}\u{201d}", s.trim()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::critique::{critique, KindChoice};
    use crate::kb::Principle;

    #[test]
    fn aligned_plain_and_coloured() {
        let kb: Vec<Principle> = Vec::new();
        let c = critique(
            "王总，华信银行压价15%，下周五前要报价，您看能不能批到10%？",
            KindChoice::Auto,
            None,
            &kb,
        )
        .unwrap();
        let plain = render(&c, &Painter::new(false), 80);
        assert!(!plain.contains('\x1b'));
        assert!(plain.starts_with("求助/请教 · 得分"), "{plain}");
        assert!(plain.contains("原文：「"), "{plain}");
        // Status labels line up: same display column in every criterion line.
        let cols: Vec<usize> = plain
            .lines()
            .filter(|l| Status::ALL.iter().any(|s| l.starts_with(s.mark())))
            .map(|l| {
                let label =
                    Status::ALL.iter().filter_map(|s| l.find(s.label(Lang::Zh))).min().unwrap();
                display_width(&l[..label])
            })
            .collect();
        assert_eq!(cols.len(), 7);
        assert!(cols.windows(2).all(|w| w[0] == w[1]), "{cols:?}\n{plain}");
        assert!(plain.lines().all(|l| display_width(l) <= 80), "{plain}");
        let coloured = render(&c, &Painter::new(true), 80);
        assert!(coloured.contains("\x1b[32m") || coloured.contains("\x1b[31m"));
    }
}
