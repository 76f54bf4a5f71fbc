//! Tests of the knowledge base: the shipped files, the checks, ranking and context.

use super::*;
use crate::rubric::{Criterion, Rubric};
use std::sync::OnceLock;

fn kb() -> &'static KnowledgeBase {
    static KB: OnceLock<KnowledgeBase> = OnceLock::new();
    KB.get_or_init(|| KnowledgeBase::builtin().expect("built-in knowledge base is valid"))
}

fn repo_knowledge() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("knowledge")
}

#[test]
fn shipped_base_is_valid_and_complete() {
    let problems = check_builtin();
    assert!(problems.is_empty(), "{}", list(&problems));
    assert!(check_dir(&repo_knowledge()).is_empty());
    let kb = kb();
    for id in [
        "lone-wolf",
        "resources-through-boss",
        "base-frequency",
        "structured-report",
        "not-only-complaints",
        "ask-for-advice",
        "attribute-growth",
        "thank-at-milestones",
        "invested-love",
        "sales-politics",
        "peer-departments",
        "weigh-occasion",
        "boss-is-customer",
        "sell-yourself-first",
    ] {
        assert!(kb.principle(id).is_some(), "missing principle {id}");
    }
    for id in [
        "weekly-report",
        "resources-critical",
        "deal-slipping",
        "year-end-thanks",
        "peer-conflict",
        "skip-level",
    ] {
        let s = kb.scenario(id).unwrap_or_else(|| panic!("missing scenario {id}"));
        assert!(!s.opening.zh.is_empty() && !s.opening.en.is_empty());
    }
    assert_eq!(kb.scenario("year-end-thanks").unwrap().rubric, Rubric::Thanks);
    assert_eq!(kb.scenario("skip-level").unwrap().rubric, Rubric::SkipLevel);
    // Critique shows a principle and a quote for every criterion of the talk; general
    // practice has none.
    for c in Criterion::ALL {
        let ps = kb.principles_for_criterion(c.as_str());
        let from_talk = c.from_talk();
        assert_eq!(!ps.is_empty() && !ps[0].quotes.is_empty(), from_talk, "criterion {c}");
    }
    assert!(kb.principles_for_criterion("nonsense").is_empty());
}

#[test]
fn criterion_order_puts_central_principles_first() {
    let kb = kb();
    // The principle critique shows first for each criterion is the one most about it.
    for (criterion, first) in [
        ("situation", "structured-report"),
        ("effort", "not-only-complaints"),
        ("plan", "structured-report"),
        ("tone", "not-only-complaints"),
        ("timing", "base-frequency"),
        ("politics", "sales-politics"),
        ("attribution", "attribute-growth"),
        ("sincere", "thank-at-milestones"),
        ("occasion", "thank-at-milestones"),
        ("chain", "weigh-occasion"),
    ] {
        assert_eq!(kb.principles_for_criterion(criterion)[0].id, first, "{criterion}");
    }
    // Every listed principle names the criterion; order follows its position in the list.
    for c in Criterion::ALL {
        let pos: Vec<usize> = kb
            .principles_for_criterion(c.as_str())
            .iter()
            .map(|p| p.criteria.iter().position(|x| *x == c).unwrap())
            .collect();
        assert!(pos.windows(2).all(|w| w[0] <= w[1]), "{c}: {pos:?}");
    }
}

#[test]
fn directory_and_builtin_agree_and_load_is_lazy() {
    let from_dir = KnowledgeBase::load_dir(&repo_knowledge()).unwrap();
    let builtin = KnowledgeBase::builtin().unwrap();
    assert_eq!(from_dir.principles(), builtin.principles());
    assert_eq!(from_dir.scenarios(), builtin.scenarios());
    // Loading must not build the search index (jieba's dictionary is slow to load).
    assert!(format!("{builtin:?}").contains("indexed: false"));
}

/// A temp knowledge dir with the real transcript and the given principle files.
fn temp_base(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("source")).unwrap();
    std::fs::copy(repo_knowledge().join(check::TRANSCRIPT), dir.path().join(check::TRANSCRIPT))
        .unwrap();
    for (name, text) in files {
        let p = dir.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    dir
}

const GOOD: &str = r#"id = "good"
criteria = ["situation", "effort", "ask", "plan", "tone", "timing", "politics", "attribution", "impact", "sincere", "occasion", "chain"]
quotes = ["首先呢，你还是要提升一个基础密度"]
tags = ["测试", "test"]

[title]
zh = "好"
en = "Good"

[[summary]]
zh = "好的原则"
en = "A good principle"
passages = [{ line = 4, text = "首先呢，你还是要提升一个基础密度" }]

[[dos]]
zh = "做"
en = "do"

[[donts]]
zh = "不做"
en = "don't"
"#;

fn problems_in<'a>(problems: &'a [Problem], file: &str) -> Vec<&'a Problem> {
    problems.iter().filter(|p| p.file.ends_with(file)).collect()
}

#[test]
fn broken_files_are_reported_with_file_and_line() {
    let bad_syntax = "id = \"bad-syntax\"\ncriteria = [\"plan\"\n\n[title]\nzh = \"x\"\n";
    let duplicate = GOOD.replace("[title]\nzh = \"好\"", "[title]\nzh = \"又一个\"");
    let not_verbatim = GOOD.replace("id = \"good\"", "id = \"fake-quote\"").replace(
        "quotes = [\"首先呢，你还是要提升一个基础密度\"]",
        "quotes = [\n  \"首先呢，你还是要提升一个基础密度\",\n  \"领导永远是对的\",\n]",
    );
    let unknown_criterion = GOOD
        .replace("id = \"good\"", "id = \"odd-criterion\"")
        .replace("criteria = [\"situation\",", "criteria = [\n  \"charisma\",\n  \"situation\",");
    let missing_en = GOOD.replace("id = \"good\"", "id = \"no-english\"").replace(
        "[[summary]]\nzh = \"好的原则\"\nen = \"A good principle\"",
        "[[summary]]\nzh = \"好的原则\"",
    );
    let dir = temp_base(&[
        ("principles/a-good.toml", GOOD),
        ("principles/b-bad-syntax.toml", bad_syntax),
        ("principles/c-duplicate.toml", &duplicate),
        ("principles/d-not-verbatim.toml", &not_verbatim),
        ("principles/e-unknown-criterion.toml", &unknown_criterion),
        ("principles/f-missing-en.toml", &missing_en),
    ]);
    let problems = check_dir(dir.path());
    let text = list(&problems);

    let p = problems_in(&problems, "b-bad-syntax.toml");
    assert_eq!(p.len(), 1, "{text}");
    assert!(p[0].message.contains("invalid TOML"), "{text}");
    // The unclosed array is reported where the parser fails: after line 2.
    assert!((2..=4).contains(&p[0].line), "{text}");

    let p = problems_in(&problems, "c-duplicate.toml");
    assert_eq!(p.len(), 1, "{text}");
    assert_eq!(p[0].line, 1);
    assert!(
        p[0].message.contains("duplicate principle id `good`")
            && p[0].message.contains("a-good.toml:1"),
        "{text}"
    );

    let p = problems_in(&problems, "d-not-verbatim.toml");
    assert_eq!(p.len(), 1, "{text}");
    assert_eq!(p[0].line, 5);
    assert!(p[0].message.contains("not a verbatim substring"), "{text}");

    let p = problems_in(&problems, "e-unknown-criterion.toml");
    assert_eq!(p.len(), 1, "{text}");
    assert_eq!(p[0].line, 3);
    assert!(p[0].message.contains("unknown criterion `charisma`"), "{text}");

    let p = problems_in(&problems, "f-missing-en.toml");
    assert_eq!(p.len(), 1, "{text}");
    assert_eq!(p[0].line, 10, "{text}"); // the `[[summary]]` item
    assert!(p[0].message.contains("`summary` is missing its `en`"), "{text}");

    assert!(problems_in(&problems, "a-good.toml").is_empty(), "{text}");
    // Display is `file:line: message`.
    let shown = problems_in(&problems, "d-not-verbatim.toml")[0].to_string();
    assert!(shown.contains("d-not-verbatim.toml:5: quote is not a verbatim"), "{shown}");

    // Loading runs the same checks and refuses the directory.
    match KnowledgeBase::load_dir(dir.path()) {
        Err(KbError::Invalid { problems: p, .. }) => assert_eq!(p, problems),
        Ok(_) => panic!("a broken knowledge base loaded"),
    }
}

#[test]
fn scenarios_and_coverage_are_checked() {
    let scenario = r#"id = "s"
rubric = "praise"
principles = [
  "good",
  "no-such-principle",
]
[title]
zh = "t"
en = "t"
[situation]
zh = "s"
en = "s"
[boss_cares]
zh = "b"
en = ""
[good_outcome]
zh = "g"
en = "g"
[opening]
zh = "o"
en = "o"
[boss_private]
zh = "p"
en = "p"
"#;
    let narrow = GOOD.replace(
        "criteria = [\"situation\", \"effort\", \"ask\", \"plan\", \"tone\", \"timing\", \"politics\", \"attribution\", \"impact\", \"sincere\", \"occasion\", \"chain\"]",
        "criteria = [\"plan\"]",
    );
    let dir = temp_base(&[("principles/good.toml", &narrow), ("scenarios/s.toml", scenario)]);
    let problems = check_dir(dir.path());
    let text = list(&problems);
    let s = problems_in(&problems, "s.toml");
    assert!(s.iter().any(|p| p.line == 2 && p.message.contains("unknown rubric")), "{text}");
    assert!(
        s.iter()
            .any(|p| p.line == 5 && p.message.contains("unknown principle id `no-such-principle`")),
        "{text}"
    );
    assert!(
        s.iter().any(|p| p.line == 15 && p.message.contains("`boss_cares.en` is empty")),
        "{text}"
    );
    assert!(
        problems.iter().any(|p| p.message.contains("no principle supports criterion `sincere`")),
        "{text}"
    );
    assert!(!problems.iter().any(|p| p.message.contains("criterion `plan`")), "{text}");
}

#[test]
fn missing_transcript_and_directory_are_problems() {
    let dir = tempfile::tempdir().unwrap();
    let problems = check_dir(&dir.path().join("nope"));
    assert_eq!(problems.len(), 1);
    assert!(problems[0].message.contains("not a directory"));
    std::fs::create_dir_all(dir.path().join("principles")).unwrap();
    std::fs::write(dir.path().join("principles/good.toml"), GOOD).unwrap();
    let problems = check_dir(dir.path());
    assert!(
        problems.iter().any(|p| p.message.contains("transcript is missing")),
        "{}",
        list(&problems)
    );
}

#[derive(serde::Deserialize)]
struct EvalSet {
    query: Vec<EvalQuery>,
}

#[derive(serde::Deserialize)]
struct EvalQuery {
    q: String,
    expected: Vec<String>,
}

/// Retrieval quality on one query file.
struct EvalScore {
    queries: usize,
    zh: usize,
    /// Share of queries whose first hit is one of the expected principles.
    top1: f64,
    /// Mean share of the expected principles found in the top three.
    recall3: f64,
    misses: Vec<String>,
}

/// Runs every query of `knowledge/eval/<file>` through the search and scores it.
fn evaluate(file: &str) -> EvalScore {
    let text = std::fs::read_to_string(repo_knowledge().join("eval").join(file)).unwrap();
    let set: EvalSet = toml::from_str(&text).unwrap();
    let kb = kb();
    let (mut top1, mut recall) = (0usize, 0.0f64);
    let mut misses = Vec::new();
    for q in &set.query {
        for id in &q.expected {
            assert!(kb.principle(id).is_some(), "{file}: query {:?} expects unknown id {id}", q.q);
        }
        let hits = kb.search(&q.q, None, 3);
        let ids: Vec<&str> = hits.iter().map(|h| h.principle.id.as_str()).collect();
        let first_ok = ids.first().is_some_and(|f| q.expected.iter().any(|e| e == f));
        let found = q.expected.iter().filter(|e| ids.contains(&e.as_str())).count();
        top1 += usize::from(first_ok);
        recall += found as f64 / q.expected.len() as f64;
        if !first_ok || found < q.expected.len() {
            misses.push(format!("  {:?}: expected {:?}, got {:?}", q.q, q.expected, ids));
        }
    }
    let n = set.query.len();
    let zh = set.query.iter().filter(|q| Lang::detect(&q.q) == Lang::Zh).count();
    let score = EvalScore {
        queries: n,
        zh,
        top1: top1 as f64 / n.max(1) as f64,
        recall3: recall / n.max(1) as f64,
        misses,
    };
    println!(
        "kb eval {file}: top-1 = {:.3}, recall@3 = {:.3} over {} queries ({} Chinese, {} English)",
        score.top1,
        score.recall3,
        n,
        zh,
        n - zh
    );
    for m in &score.misses {
        println!("{m}");
    }
    score
}

/// The main set: colloquial user phrasing, half Chinese and half English. The ranking is
/// tuned on it (through general vocabulary and tags, never per query).
#[test]
fn eval_main_set() {
    let s = evaluate("queries.toml");
    assert!(s.queries >= 120, "the main eval set needs at least 120 queries");
    assert!(s.zh * 2 >= s.queries - 10 && s.zh * 2 <= s.queries + 10, "half Chinese, half English");
    let misses = s.misses.join("\n");
    assert!(s.top1 >= 0.9, "top-1 {:.3} < 0.9; misses:\n{misses}", s.top1);
    assert!(s.recall3 >= 0.97, "recall@3 {:.3} < 0.97; misses:\n{misses}", s.recall3);
}

/// The held-out set: never tuned on, so it shows whether the tuning generalises.
#[test]
fn eval_heldout_set() {
    let s = evaluate("heldout_queries.toml");
    assert!(s.queries >= 40, "the held-out set needs at least 40 queries");
    assert!(s.zh * 2 >= s.queries - 4 && s.zh * 2 <= s.queries + 4, "half Chinese, half English");
    let misses = s.misses.join("\n");
    assert!(s.top1 >= HELDOUT_TOP1, "held-out top-1 {:.3}; misses:\n{misses}", s.top1);
    assert!(s.recall3 >= HELDOUT_RECALL3, "held-out recall@3 {:.3}; misses:\n{misses}", s.recall3);
}

/// Regression floors for the held-out set, just under what the ranking measured when it
/// was tuned on the main set (see the file's header).
const HELDOUT_TOP1: f64 = 0.70;
const HELDOUT_RECALL3: f64 = 0.80;

#[test]
fn year_end_thanks_ranks_first_in_both_languages() {
    let kb = kb();
    for q in ["年终怎么感谢领导", "how do I thank my boss at year end"] {
        let hits = kb.search(q, None, 3);
        assert_eq!(
            hits.first().map(|h| h.principle.id.as_str()),
            Some("thank-at-milestones"),
            "{q}"
        );
        assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
    }
    // An explicit language gives the same ranking as detection for a one-language query.
    let a = kb.search("年终怎么感谢领导", Some(Lang::Zh), 3);
    assert_eq!(a[0].principle.id, "thank-at-milestones");
}

#[test]
fn search_handles_empty_and_unrelated_queries() {
    let kb = kb();
    assert!(kb.search("", None, 3).is_empty());
    assert!(kb.search("！？。 ...", None, 3).is_empty());
    assert!(kb.search("quantum chromodynamics", None, 3).is_empty());
    assert_eq!(kb.search("汇报", None, 0).len(), 0);
    assert!(kb.search("汇报", None, 100).len() <= kb.principles().len());
}

#[test]
fn render_hits_shows_title_and_quote_in_language() {
    let kb = kb();
    let hits = kb.search("weekly report structure", None, 2);
    let en = render_hits(&hits, Lang::En);
    assert!(en.starts_with("1. Structured reporting"), "{en}");
    assert!(en.contains("From the talk: “每一次汇报啊"), "{en}");
    let zh = render_hits(&hits, Lang::Zh);
    assert!(zh.contains("结构化汇报") && zh.contains("原话："), "{zh}");
    assert_eq!(render_hits(&[], Lang::En), "No matching principle.");
}

#[test]
fn context_fits_the_token_budget_dropping_lowest_ranked() {
    let kb = kb();
    let hits = kb.search("年终怎么感谢领导", None, 3);
    assert_eq!(hits.len(), 3);
    let chars = |s: &str| s.chars().count();
    let full = context::render_context(&hits, Lang::Zh, usize::MAX, &chars);
    for h in &hits {
        assert!(full.contains(&h.principle.title.zh), "{full}");
        assert!(full.contains(&h.principle.quotes[0]), "{full}");
    }
    // A budget that fits one principle but not two keeps the best one only.
    let one = context::render_context(&hits[..1], Lang::Zh, usize::MAX, &chars);
    let budget = chars(&one) + 10;
    let cut = context::render_context(&hits, Lang::Zh, budget, &chars);
    assert_eq!(cut, one);
    assert!(
        cut.contains(&hits[0].principle.title.zh) && !cut.contains(&hits[1].principle.title.zh)
    );
    assert!(chars(&cut) <= budget);
    // Nothing fits: nothing is rendered.
    assert_eq!(context::render_context(&hits, Lang::Zh, 5, &chars), "");
    let en = context::render_context(&hits, Lang::En, usize::MAX, &chars);
    assert!(en.contains(&hits[0].principle.title.en) && en.contains("From the talk"), "{en}");
}
