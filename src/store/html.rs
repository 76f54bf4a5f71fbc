//! The progress page: one self-contained HTML file (inline CSS and SVG, no scripts, no
//! external assets), so it opens offline and can be shared as one file.

use super::progress::{criterion_label, CriterionProgress, Progress};
use crate::lang::Lang;
use std::fmt::Write;

/// Escapes text for HTML element content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const W: f64 = 320.0;
const H: f64 = 90.0;
const PAD: f64 = 8.0;

/// A small line chart of one criterion's results (0–100, oldest left).
fn chart_svg(c: &CriterionProgress, lang: Lang) -> String {
    let n = c.points.len();
    let x = |i: usize| {
        if n <= 1 {
            W / 2.0
        } else {
            PAD + (W - 2.0 * PAD) * i as f64 / (n - 1) as f64
        }
    };
    let y = |v: f64| PAD + (H - 2.0 * PAD) * (1.0 - v.clamp(0.0, 100.0) / 100.0);
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="{}">"#,
        esc(&criterion_label(&c.id, lang))
    );
    for v in [0.0, 50.0, 100.0] {
        let _ = write!(
            svg,
            r#"<line x1="{PAD}" x2="{}" y1="{y:.1}" y2="{y:.1}" class="grid"/>"#,
            W - PAD,
            y = y(v)
        );
    }
    let pts: Vec<String> = c
        .points
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{:.1},{:.1}", x(i), y(p.value)))
        .collect();
    if n > 1 {
        let _ = write!(svg, r#"<polyline points="{}" class="line"/>"#, pts.join(" "));
    }
    for (i, p) in c.points.iter().enumerate() {
        let _ = write!(
            svg,
            r#"<circle cx="{:.1}" cy="{:.1}" r="3.5" class="dot"><title>{} · {} · {:.0}</title></circle>"#,
            x(i),
            y(p.value),
            esc(p.at.get(..10).unwrap_or(&p.at)),
            esc(&p.source),
            p.value
        );
    }
    svg.push_str("</svg>");
    svg
}

/// The progress page in `lang`.
pub fn progress_html(p: &Progress, lang: Lang) -> String {
    let title = lang.pick("upward 进步情况", "upward progress");
    let mut h = String::new();
    let _ = write!(
        h,
        r#"<!DOCTYPE html>
<html lang="{}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{}</title>
<style>
body {{ font-family: system-ui, "PingFang SC", "Microsoft YaHei", sans-serif; margin: 2em auto; max-width: 60em; padding: 0 1em; color: #222; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ text-align: left; padding: .4em .6em; border-bottom: 1px solid #ddd; vertical-align: middle; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
.grid {{ stroke: #e3e3e3; stroke-width: 1; }}
.line {{ fill: none; stroke: #2a6fdb; stroke-width: 2; }}
.dot {{ fill: #2a6fdb; }}
.improving {{ color: #1a7f37; }} .declining {{ color: #c62828; }} .steady {{ color: #666; }}
</style>
</head>
<body>
<h1>{}</h1>
"#,
        lang.code(),
        esc(title),
        esc(title)
    );
    let summary = match lang {
        Lang::Zh => format!("{} 次点评，{} 次角色扮演", p.critiques, p.roleplays),
        Lang::En => format!("{} critiques, {} role-plays", p.critiques, p.roleplays),
    };
    let since = p.since.map(|d| match lang {
        Lang::Zh => format!("（自 {d} 起）"),
        Lang::En => format!(" (since {d})"),
    });
    let _ = writeln!(h, "<p>{}{}</p>", esc(&summary), esc(&since.unwrap_or_default()));
    let _ = writeln!(
        h,
        "<p>{}</p>",
        esc(lang.pick(
            "做到了 = 100，不够 = 50，缺少 = 0。趋势比较前一半与后一半结果的平均分（相差 10 分以上）。",
            "met = 100, partial = 50, missing = 0. The trend compares the mean of the later half of the results with the earlier half (a difference of 10 points or more).",
        ))
    );
    if p.criteria.is_empty() {
        let _ = writeln!(h, "<p>{}</p>", esc(lang.pick("还没有可统计的练习。", "No results yet.")));
    } else {
        let heads = super::progress::column_heads(lang);
        h.push_str("<table>\n<tr>");
        for x in heads {
            let _ = write!(h, "<th>{}</th>", esc(x));
        }
        h.push_str("</tr>\n");
        for c in &p.criteria {
            let trend = serde_json::to_value(c.trend)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            let _ = writeln!(
                h,
                r#"<tr><td>{}</td><td class="num">{}</td><td>{}</td><td class="num">{:.0}</td><td class="num">{:.0}</td><td class="num">{:.0}</td><td class="{}">{}</td></tr>"#,
                esc(&criterion_label(&c.id, lang)),
                c.count,
                chart_svg(c, lang),
                c.first,
                c.best,
                c.latest,
                trend,
                esc(c.trend.label(lang))
            );
        }
        h.push_str("</table>\n");
    }
    h.push_str("</body>\n</html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Point, Trend};

    #[test]
    fn page_is_self_contained_and_escaped() {
        let p = Progress {
            since: None,
            critiques: 2,
            roleplays: 0,
            criteria: vec![CriterionProgress {
                id: "<ask>".into(),
                rubric: "other".into(),
                count: 2,
                first: 0.0,
                best: 100.0,
                latest: 100.0,
                trend: Trend::Improving,
                points: vec![
                    Point {
                        at: "2026-11-01T00:00:00Z".into(),
                        session_id: 1,
                        source: "critique".into(),
                        value: 0.0,
                    },
                    Point {
                        at: "2026-11-02T00:00:00Z".into(),
                        session_id: 2,
                        source: "critique".into(),
                        value: 100.0,
                    },
                ],
            }],
        };
        let h = progress_html(&p, Lang::En);
        assert!(h.contains("<svg") && h.contains("<polyline"), "{h}");
        assert!(h.contains("&lt;ask&gt;") && !h.contains("<ask>"));
        assert!(!h.contains("src=") && !h.contains("<link") && !h.contains("<script"));
    }
}
