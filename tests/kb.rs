//! `upward kb` from the command line: exit codes and output formats users script against.

use assert_cmd::Command;
use predicates::prelude::*;
use std::path::Path;

fn upward() -> Command {
    let mut c = Command::cargo_bin("upward").unwrap();
    c.env_remove("UPWARD_KNOWLEDGE_DIR").env_remove("UPWARD_PROMPTS_DIR");
    c
}

#[test]
fn check_passes_on_the_shipped_base() {
    upward().args(["kb", "check"]).assert().success().stdout(predicate::str::starts_with("OK:"));
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("knowledge");
    upward().args(["kb", "check"]).arg(&dir).assert().success();
}

#[test]
fn check_fails_with_file_and_line_on_a_broken_base() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("knowledge");
    let tmp = tempfile::tempdir().unwrap();
    for sub in ["source", "principles", "scenarios"] {
        std::fs::create_dir_all(tmp.path().join(sub)).unwrap();
        for e in std::fs::read_dir(src.join(sub)).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), tmp.path().join(sub).join(e.file_name())).unwrap();
        }
    }
    let p = tmp.path().join("principles/structured-report.toml");
    let text = std::fs::read_to_string(&p).unwrap();
    std::fs::write(&p, text.replace("我是做了什么努力啊", "我做了什么努力")).unwrap();
    let out = upward().args(["kb", "check"]).arg(tmp.path()).assert().failure();
    out.stdout(predicate::str::contains("structured-report.toml:5: quote is not a verbatim"));
    // Loading refuses it too: a broken file is an error, never skipped.
    upward()
        .env("UPWARD_KNOWLEDGE_DIR", tmp.path())
        .args(["kb", "search", "周报"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("structured-report.toml:5"));
}

#[test]
fn search_json_ranks_year_end_thanks_first_in_both_languages() {
    for q in ["年终怎么感谢领导", "how do I thank my boss at year end"] {
        let out = upward().args(["kb", "search", q, "--json"]).output().unwrap();
        assert!(out.status.success());
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let arr = v.as_array().unwrap();
        assert_eq!(arr.len(), 3);
        assert_eq!(arr[0]["id"], "thank-at-milestones", "{q}");
        assert!(arr[0]["score"].as_f64().unwrap() > 0.0);
        assert!(!arr[0]["quotes"].as_array().unwrap().is_empty());
        let title = arr[0]["title"].as_str().unwrap();
        // Title in the query's language.
        assert_eq!(upward::lang::Lang::detect(title), upward::lang::Lang::detect(q), "{title}");
    }
    upward()
        .args(["kb", "search", "weekly report", "--lang", "zh", "-k", "1"])
        .assert()
        .success()
        .stdout(
            predicate::str::starts_with("1. 结构化汇报").and(predicate::str::contains("原话：")),
        );
}
