//! Progress per criterion: first, best and latest result, count and trend, and the compact
//! terminal chart.
//!
//! Each critique and each role-play session gives one result per criterion it judged:
//! a status scores `met` = 100, `partial` = 50, `missing` = 0 ([`status_value`]). A
//! critique's results come from its `criteria` list; a role-play's from its
//! debrief's `criteria`, or, for a session ended without a debrief, from the mean of its
//! turns' scores. Results are ordered by time.
//!
//! **Trend rule**: the results are split into an earlier and a later half (the middle one
//! is left out when the count is odd); the trend is *improving* when the later half's mean
//! is at least [`TREND_THRESHOLD`] points above the earlier half's, *declining* when at
//! least that much below, and *steady* otherwise (and always with fewer than two results).

use super::{Critique, SessionDetail};
use crate::lang::Lang;
use crate::rubric::{Criterion, Rubric, Status};
use crate::text::display_width;
use chrono::{DateTime, Local, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Points between the halves' means that make a trend (see the module docs).
pub const TREND_THRESHOLD: f64 = 10.0;

/// Direction of a criterion over time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Trend {
    /// Later results are clearly better.
    Improving,
    /// No clear change.
    Steady,
    /// Later results are clearly worse.
    Declining,
}

impl Trend {
    /// The trend of `values` in time order (see the module docs).
    pub fn of(values: &[f64]) -> Trend {
        let n = values.len();
        if n < 2 {
            return Trend::Steady;
        }
        let half = n / 2;
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let delta = mean(&values[n - half..]) - mean(&values[..half]);
        if delta >= TREND_THRESHOLD {
            Trend::Improving
        } else if delta <= -TREND_THRESHOLD {
            Trend::Declining
        } else {
            Trend::Steady
        }
    }

    /// A label with an arrow.
    pub fn label(self, lang: Lang) -> &'static str {
        match self {
            Trend::Improving => lang.pick("↑ 进步", "↑ improving"),
            Trend::Steady => lang.pick("→ 持平", "→ steady"),
            Trend::Declining => lang.pick("↓ 退步", "↓ declining"),
        }
    }
}

/// One result for one criterion.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// When, RFC 3339 UTC.
    pub at: String,
    /// The session it came from.
    pub session_id: i64,
    /// `critique` or `roleplay`.
    pub source: String,
    /// 0–100.
    pub value: f64,
}

/// Progress on one criterion.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CriterionProgress {
    /// Criterion id, e.g. `ask`.
    pub id: String,
    /// `help`, `thanks`, or `other` for an id no rubric knows.
    pub rubric: String,
    /// Number of results.
    pub count: usize,
    /// The first result.
    pub first: f64,
    /// The best result.
    pub best: f64,
    /// The latest result.
    pub latest: f64,
    /// Direction over time.
    pub trend: Trend,
    /// Every result, oldest first.
    pub points: Vec<Point>,
}

/// Progress on every criterion that has results.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// Only results on or after this local date were counted.
    pub since: Option<NaiveDate>,
    /// Critiques counted.
    pub critiques: usize,
    /// Role-play sessions counted.
    pub roleplays: usize,
    /// Criteria in rubric order (help, then thanks, then others by id).
    pub criteria: Vec<CriterionProgress>,
}

/// The value of a status in a progress chart: `met` 100, `partial` 50, `missing` 0
/// ([`Status::value`] in points).
pub fn status_value(s: Status) -> f64 {
    100.0 * s.value() as f64
}

/// `help`, `thanks` or `skip-level`: the first rubric with criterion `id` (`other` for
/// an id no rubric knows).
fn rubric_of(id: &str) -> &'static str {
    Rubric::ALL.into_iter().find(|r| r.ids().contains(&id)).map_or("other", Rubric::code)
}

fn order_key(id: &str) -> (usize, String) {
    let pos = Rubric::ALL.iter().flat_map(|r| r.ids()).position(|c| *c == id).unwrap_or(usize::MAX);
    (pos, id.to_string())
}

/// The column headings of a progress table (terminal and HTML).
pub fn column_heads(lang: Lang) -> [&'static str; 7] {
    [
        lang.pick("标准", "Criterion"),
        lang.pick("次数", "Count"),
        lang.pick("走势", "History"),
        lang.pick("首次", "First"),
        lang.pick("最佳", "Best"),
        lang.pick("最近", "Latest"),
        lang.pick("趋势", "Trend"),
    ]
}

/// A criterion's name for people.
pub fn criterion_label(id: &str, lang: Lang) -> String {
    crate::critique::rubric::label(id, lang).to_string()
}

fn local_date(at: &str) -> Option<NaiveDate> {
    DateTime::parse_from_rfc3339(at)
        .ok()
        .map(|t| t.with_timezone(&Utc).with_timezone(&Local).date_naive())
}

/// Results of one critique: its verdicts.
fn critique_results(c: &Critique) -> Vec<(Criterion, f64)> {
    c.doc.verdicts.iter().map(|v| (v.id, status_value(v.status))).collect()
}

/// Results of one role-play: the debrief's statuses, else the mean of the turns' scores.
fn roleplay_results(d: &SessionDetail) -> Vec<(Criterion, f64)> {
    if let Some(doc) = d.session.debrief_doc.as_ref().filter(|x| !x.criteria.is_empty()) {
        return doc.criteria.iter().map(|(k, s)| (*k, status_value(*s))).collect();
    }
    let mut sums: BTreeMap<Criterion, (f64, usize)> = BTreeMap::new();
    for scores in d.turns.iter().filter_map(|t| t.scores.as_ref()) {
        for (k, s) in scores {
            let e = sums.entry(*k).or_default();
            e.0 += status_value(*s);
            e.1 += 1;
        }
    }
    sums.into_iter().map(|(k, (s, n))| (k, s / n as f64)).collect()
}

/// Computes progress from critiques and role-play sessions (any order).
pub(crate) fn compute(
    critiques: &[Critique],
    roleplays: &[SessionDetail],
    since: Option<NaiveDate>,
) -> Progress {
    let keep = |at: &str| match since {
        None => true,
        Some(d) => local_date(at).is_some_and(|x| x >= d),
    };
    // (time, session id, source, results per criterion)
    type Event<'a> = (String, i64, &'a str, Vec<(Criterion, f64)>);
    let mut events: Vec<Event<'_>> = Vec::new();
    let mut n_crit = 0;
    let mut n_rp = 0;
    for c in critiques.iter().filter(|c| keep(&c.created_at)) {
        let r = critique_results(c);
        if !r.is_empty() {
            n_crit += 1;
            events.push((c.created_at.clone(), c.session_id, "critique", r));
        }
    }
    for d in roleplays.iter().filter(|d| keep(&d.session.started_at)) {
        let r = roleplay_results(d);
        if !r.is_empty() {
            n_rp += 1;
            events.push((d.session.started_at.clone(), d.session.id, "roleplay", r));
        }
    }
    events.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut by_id: BTreeMap<String, Vec<Point>> = BTreeMap::new();
    for (at, session_id, source, results) in events {
        for (id, value) in results {
            by_id.entry(id.to_string()).or_default().push(Point {
                at: at.clone(),
                session_id,
                source: source.to_string(),
                value,
            });
        }
    }
    let mut criteria: Vec<CriterionProgress> = by_id
        .into_iter()
        .map(|(id, points)| {
            let values: Vec<f64> = points.iter().map(|p| p.value).collect();
            CriterionProgress {
                rubric: rubric_of(&id).to_string(),
                count: values.len(),
                first: values[0],
                best: values.iter().cloned().fold(f64::MIN, f64::max),
                latest: values[values.len() - 1],
                trend: Trend::of(&values),
                points,
                id,
            }
        })
        .collect();
    criteria.sort_by_key(|c| order_key(&c.id));
    Progress { since, critiques: n_crit, roleplays: n_rp, criteria }
}

const SPARKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// A sparkline of the last `max` values (0–100), one character each.
pub fn sparkline(values: &[f64], max: usize) -> String {
    let start = values.len().saturating_sub(max);
    values[start..]
        .iter()
        .map(|v| SPARKS[((v.clamp(0.0, 100.0) / 100.0) * 7.0).round() as usize])
        .collect()
}

fn pad_right(s: &str, cols: usize) -> String {
    let w = display_width(s);
    format!("{s}{}", " ".repeat(cols.saturating_sub(w)))
}

fn pad_left(s: &str, cols: usize) -> String {
    let w = display_width(s);
    format!("{}{s}", " ".repeat(cols.saturating_sub(w)))
}

/// The compact terminal chart: a header, then one row per criterion with its count,
/// sparkline (last 12 results), first / best / latest and trend, aligned by display width.
pub fn progress_chart(p: &Progress, lang: Lang) -> String {
    let mut out = String::new();
    if p.criteria.is_empty() {
        out.push_str(lang.pick(
            "还没有可统计的练习：先做一次点评（upward critique）或角色扮演（upward roleplay）。\n",
            "No results yet: run a critique (upward critique) or a role-play (upward roleplay) first.\n",
        ));
        return out;
    }
    let title = match lang {
        Lang::Zh => format!("进步情况：{} 次点评，{} 次角色扮演", p.critiques, p.roleplays),
        Lang::En => format!("Progress: {} critiques, {} role-plays", p.critiques, p.roleplays),
    };
    out.push_str(&title);
    if let Some(d) = p.since {
        out.push_str(&match lang {
            Lang::Zh => format!("（自 {d} 起）"),
            Lang::En => format!(" (since {d})"),
        });
    }
    out.push('\n');
    let spark_cols = 12;
    let labels: Vec<String> = p.criteria.iter().map(|c| criterion_label(&c.id, lang)).collect();
    let head = column_heads(lang);
    let label_cols =
        labels.iter().map(|l| display_width(l)).chain([display_width(head[0])]).max().unwrap_or(8);
    let num = 5;
    out.push_str(&format!(
        "{}  {}  {}  {} {} {}  {}\n",
        pad_right(head[0], label_cols),
        pad_left(head[1], 5),
        pad_right(head[2], spark_cols),
        pad_left(head[3], num),
        pad_left(head[4], num),
        pad_left(head[5], num),
        head[6]
    ));
    for (c, label) in p.criteria.iter().zip(&labels) {
        let values: Vec<f64> = c.points.iter().map(|x| x.value).collect();
        out.push_str(&format!(
            "{}  {}  {}  {} {} {}  {}\n",
            pad_right(label, label_cols),
            pad_left(&c.count.to_string(), 5),
            pad_right(&sparkline(&values, spark_cols), spark_cols),
            pad_left(&format!("{:.0}", c.first), num),
            pad_left(&format!("{:.0}", c.best), num),
            pad_left(&format!("{:.0}", c.latest), num),
            c.trend.label(lang)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{DebriefDoc, Session};
    use serde_json::{json, Value};

    #[test]
    fn trend_rule() {
        assert_eq!(Trend::of(&[]), Trend::Steady);
        assert_eq!(Trend::of(&[50.0]), Trend::Steady);
        assert_eq!(Trend::of(&[0.0, 50.0]), Trend::Improving);
        assert_eq!(Trend::of(&[100.0, 0.0, 50.0]), Trend::Declining);
        assert_eq!(Trend::of(&[50.0, 60.0, 0.0, 50.0, 55.0]), Trend::Steady);
        assert_eq!(Trend::of(&[0.0, 0.0, 50.0, 50.0]), Trend::Improving);
    }

    #[test]
    fn status_values() {
        assert_eq!(status_value(Status::Met), 100.0);
        assert_eq!(status_value(Status::Partial), 50.0);
        assert_eq!(status_value(Status::Missing), 0.0);
    }

    fn rp(id: i64, at: &str, debrief: Option<Value>, turn_scores: &[Value]) -> SessionDetail {
        SessionDetail {
            session: Session {
                id,
                kind: crate::store::SessionKind::Roleplay,
                scenario: None,
                persona: None,
                model: None,
                lang: Lang::Zh,
                started_at: at.into(),
                ended_at: None,
                title: None,
                debrief_doc: debrief.as_ref().and_then(|v| DebriefDoc::from_text(&v.to_string())),
                debrief,
            },
            turns: turn_scores
                .iter()
                .enumerate()
                .map(|(i, s)| crate::store::Turn {
                    seq: i as i64 + 1,
                    role: crate::store::Role::User,
                    text: "x".into(),
                    scores: crate::store::records::scores_from_text(&s.to_string()),
                    trust: None,
                    prompt_tokens: 0,
                    reused_tokens: 0,
                    generated_tokens: 0,
                    prefill_ms: 0.0,
                    decode_ms: 0.0,
                    interrupted: false,
                    created_at: at.into(),
                })
                .collect(),
            critiques: vec![],
        }
    }

    #[test]
    fn roleplay_uses_debrief_else_turn_mean_and_orders_by_time() {
        let later =
            rp(2, "2026-11-20T10:00:00.000Z", Some(json!({"criteria": {"ask": "met"}})), &[]);
        let earlier = rp(
            1,
            "2026-11-10T10:00:00.000Z",
            None,
            &[json!({"ask": "missing", "tone": "met"}), json!({"ask": "met"})],
        );
        let p = compute(&[], &[later, earlier], None);
        assert_eq!(p.roleplays, 2);
        let ask = p.criteria.iter().find(|c| c.id == "ask").unwrap();
        assert_eq!((ask.first, ask.best, ask.latest, ask.count), (50.0, 100.0, 100.0, 2));
        assert_eq!(ask.trend, Trend::Improving);
        // Rubric order: ask (help #3) before tone (help #5).
        assert_eq!(p.criteria.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), ["ask", "tone"]);
        let p = compute(
            &[],
            &[rp(3, "2020-01-01T00:00:00Z", None, &[json!({"ask": "met"})])],
            NaiveDate::from_ymd_opt(2021, 1, 1),
        );
        assert!(p.criteria.is_empty());
    }

    #[test]
    fn chart_aligns_cjk_labels() {
        let d = rp(
            1,
            "2026-11-10T10:00:00.000Z",
            Some(json!({"criteria": {
            "situation": "missing", "ask": "partial", "politics": "met"}})),
            &[],
        );
        let p = compute(&[], &[d], None);
        let chart = progress_chart(&p, Lang::Zh);
        let rows: Vec<&str> = chart.lines().skip(2).collect();
        assert_eq!(rows.len(), 3, "{chart}");
        assert!(chart.contains("现状") && chart.contains("明确请求"), "{chart}");
        // Every row has the same display width before its trend label.
        let steady = Trend::Steady.label(Lang::Zh);
        let prefix: Vec<usize> =
            rows.iter().map(|r| display_width(r) - display_width(steady)).collect();
        assert!(prefix.windows(2).all(|w| w[0] == w[1]), "{chart}\n{prefix:?}");
        let header = chart.lines().nth(1).unwrap();
        assert_eq!(display_width(header) - display_width("趋势"), prefix[0], "{chart}");
        assert!(progress_chart(&Progress::default(), Lang::En).contains("No results yet"));
    }
}
