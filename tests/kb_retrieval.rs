//! `upward kb search` with questions as salespeople type them: colloquial, indirect, mixed
//! Chinese and English, naming the situation rather than the talk's words.

use assert_cmd::Command;
use predicates::prelude::*;

fn upward() -> Command {
    let mut c = Command::cargo_bin("upward").unwrap();
    c.env_remove("UPWARD_KNOWLEDGE_DIR").env_remove("UPWARD_PROMPTS_DIR");
    c
}

fn first_id(query: &str) -> String {
    let out = upward().args(["kb", "search", query, "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v[0]["id"].as_str().unwrap_or_default().to_string()
}

#[test]
fn colloquial_questions_find_the_principle_first() {
    for (q, id) in [
        // Only talking to one's manager when in need.
        ("I only ever ping my mgr when I need sth", "not-only-complaints"),
        ("我好像只有遇到麻烦才去找老板", "not-only-complaints"),
        // The boss's boss.
        ("how do I handle my boss's boss", "boss-is-customer"),
        ("怎么搞定领导的领导", "boss-is-customer"),
        // Mixed languages, a typo.
        ("跟boss汇报总被说没重点", "structured-report"),
        ("thnak you note to my boss for new year", "thank-at-milestones"),
    ] {
        assert_eq!(first_id(q), id, "{q}");
    }
}

#[test]
fn colloquial_question_prints_the_principle_and_its_quote() {
    upward()
        .args(["kb", "search", "deal is going sideways, do I tell my boss now?", "-k", "1"])
        .assert()
        .success()
        .stdout(
            predicate::str::starts_with("1. When there's a problem, call your boss and say so")
                .and(predicate::str::contains("[speak-up-early]"))
                .and(predicate::str::contains("From the talk: “")),
        );
}
