//! The progress page: one self-contained HTML file (inline CSS and SVG, no scripts, no
//! external assets), so it opens offline and can be shared as one file.

use super::progress::{criterion_label, CriterionProgress, Progress};
use crate::lang::Lang;
use minijinja::{AutoEscape, Environment};
use serde::Serialize;

/// The page's template, embedded in the binary; every value in it is HTML-escaped by
/// minijinja's auto-escaping.
const TEMPLATE: &str = include_str!("../../templates/progress.html.jinja");

const W: f64 = 320.0;
const H: f64 = 90.0;
const PAD: f64 = 8.0;

/// One point of a chart, placed.
#[derive(Serialize)]
struct Dot {
    x: String,
    y: String,
    date: String,
    source: String,
    value: String,
}

/// A small line chart of one criterion's results (0–100, oldest left), placed.
#[derive(Serialize)]
struct Chart {
    w: f64,
    h: f64,
    pad: f64,
    right: f64,
    grid: Vec<String>,
    polyline: String,
    dots: Vec<Dot>,
}

/// One table row.
#[derive(Serialize)]
struct Row {
    label: String,
    count: usize,
    chart: Chart,
    first: String,
    best: String,
    latest: String,
    trend: String,
    trend_label: &'static str,
}

#[derive(Serialize)]
struct Page {
    lang: &'static str,
    title: &'static str,
    summary: String,
    since: String,
    note: &'static str,
    empty: &'static str,
    heads: Vec<&'static str>,
    rows: Vec<Row>,
}

fn chart(c: &CriterionProgress) -> Chart {
    let n = c.points.len();
    let x = |i: usize| {
        if n <= 1 {
            W / 2.0
        } else {
            PAD + (W - 2.0 * PAD) * i as f64 / (n - 1) as f64
        }
    };
    let y = |v: f64| PAD + (H - 2.0 * PAD) * (1.0 - v.clamp(0.0, 100.0) / 100.0);
    let polyline = if n > 1 {
        let pts: Vec<String> = c
            .points
            .iter()
            .enumerate()
            .map(|(i, p)| format!("{:.1},{:.1}", x(i), y(p.value)))
            .collect();
        pts.join(" ")
    } else {
        String::new()
    };
    Chart {
        w: W,
        h: H,
        pad: PAD,
        right: W - PAD,
        grid: [0.0, 50.0, 100.0].iter().map(|v| format!("{:.1}", y(*v))).collect(),
        polyline,
        dots: c
            .points
            .iter()
            .enumerate()
            .map(|(i, p)| Dot {
                x: format!("{:.1}", x(i)),
                y: format!("{:.1}", y(p.value)),
                date: p.at.get(..10).unwrap_or(&p.at).to_string(),
                source: p.source.clone(),
                value: format!("{:.0}", p.value),
            })
            .collect(),
    }
}

fn row(c: &CriterionProgress, lang: Lang) -> Row {
    let trend = serde_json::to_value(c.trend)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    Row {
        label: criterion_label(&c.id, lang),
        count: c.count,
        chart: chart(c),
        first: format!("{:.0}", c.first),
        best: format!("{:.0}", c.best),
        latest: format!("{:.0}", c.latest),
        trend,
        trend_label: c.trend.label(lang),
    }
}

/// The progress page in `lang`.
pub fn progress_html(p: &Progress, lang: Lang) -> String {
    let title = lang.pick("upward 进步情况", "upward progress");
    let page = Page {
        lang: lang.code(),
        title,
        summary: match lang {
            Lang::Zh => format!("{} 次点评，{} 次角色扮演", p.critiques, p.roleplays),
            Lang::En => format!("{} critiques, {} role-plays", p.critiques, p.roleplays),
        },
        since: p
            .since
            .map(|d| match lang {
                Lang::Zh => format!("（自 {d} 起）"),
                Lang::En => format!(" (since {d})"),
            })
            .unwrap_or_default(),
        note: lang.pick(
            "做到了 = 100，不够 = 50，缺少 = 0。趋势比较前一半与后一半结果的平均分（相差 10 分以上）。",
            "met = 100, partial = 50, missing = 0. The trend compares the mean of the later half of the results with the earlier half (a difference of 10 points or more).",
        ),
        empty: lang.pick("还没有可统计的练习。", "No results yet."),
        heads: super::progress::column_heads(lang).to_vec(),
        rows: p.criteria.iter().map(|c| row(c, lang)).collect(),
    };
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_keep_trailing_newline(true);
    // The template is compiled in and its context is plain data: rendering it cannot fail
    // (the tests below render it), so a failure is a bug in this file.
    env.render_str(TEMPLATE, page).expect("the built-in progress template renders")
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
        assert!(h.contains("<circle") && h.ends_with("</html>\n"), "{h}");
    }

    #[test]
    fn empty_page_renders_in_both_languages() {
        let p = Progress { since: None, critiques: 0, roleplays: 0, criteria: vec![] };
        for (lang, empty) in [(Lang::Zh, "还没有可统计的练习。"), (Lang::En, "No results yet.")]
        {
            let h = progress_html(&p, lang);
            assert!(h.contains(empty) && !h.contains("<table>"), "{h}");
            assert!(h.contains(&format!("<html lang=\"{}\">", lang.code())), "{h}");
        }
    }
}
