//! Grounding: every summary sentence rests on a passage of the talk, our own advice is kept
//! apart and labelled, and criteria the talk does not support say so. Through the
//! `upward` binary, as users and authors run it.

use assert_cmd::Command;
use predicates::prelude::*;
use std::path::{Path, PathBuf};

fn upward() -> Command {
    let mut c = Command::cargo_bin("upward").unwrap();
    c.env_remove("UPWARD_KNOWLEDGE_DIR").env_remove("UPWARD_PROMPTS_DIR").env("NO_COLOR", "1");
    c
}

fn knowledge() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("knowledge")
}

/// A copy of the shipped knowledge directory, to edit.
fn copy_knowledge() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    for sub in ["source", "principles", "scenarios", "eval"] {
        std::fs::create_dir_all(tmp.path().join(sub)).unwrap();
        for e in std::fs::read_dir(knowledge().join(sub)).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), tmp.path().join(sub).join(e.file_name())).unwrap();
        }
    }
    std::fs::copy(knowledge().join("synonyms.toml"), tmp.path().join("synonyms.toml")).unwrap();
    tmp
}

/// Inserts `text` into a principle file right before its `[[dos]]`.
fn insert_before_dos(dir: &Path, id: &str, text: &str) -> usize {
    let p = dir.join(format!("principles/{id}.toml"));
    let old = std::fs::read_to_string(&p).unwrap();
    let at = old.find("[[dos]]").unwrap();
    let line = old[..at].lines().count() + 1;
    std::fs::write(&p, format!("{}{text}\n{}", &old[..at], &old[at..])).unwrap();
    line
}

const UNSOURCED: &str = r#"[[summary]]
zh = "问题越拖越大，要在客户正式通知丢单之前说。"
en = "Problems grow the longer you wait; speak before the customer formally says you lost."
"#;

#[test]
fn kb_check_rejects_a_summary_sentence_with_no_passage() {
    let dir = copy_knowledge();
    upward().args(["kb", "check"]).arg(dir.path()).assert().success();
    let line = insert_before_dos(dir.path(), "speak-up-early", UNSOURCED);
    let expected = format!("speak-up-early.toml:{line}: summary sentence with no passage");
    upward()
        .args(["kb", "check"])
        .arg(dir.path())
        .assert()
        .failure()
        .stdout(predicate::str::contains(expected.as_str()))
        .stdout(predicate::str::contains("beyond_talk"));
    // The same through UPWARD_KNOWLEDGE_DIR, and loading refuses the base.
    upward()
        .env("UPWARD_KNOWLEDGE_DIR", dir.path())
        .args(["kb", "check"])
        .assert()
        .failure()
        .stdout(predicate::str::contains(expected.as_str()));
    upward()
        .env("UPWARD_KNOWLEDGE_DIR", dir.path())
        .args(["kb", "search", "坏消息"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("summary sentence with no passage"));
}

#[test]
fn kb_check_rejects_passages_not_in_the_talk_and_merged_sentences() {
    let dir = copy_knowledge();
    // A passage the talk does not contain (it never says 拖).
    insert_before_dos(
        dir.path(),
        "speak-up-early",
        "[[summary]]\nzh = \"问题会越拖越大。\"\nen = \"Problems grow.\"\npassages = [{ line = 4, text = \"问题越拖越大\" }]\n",
    );
    // A real passage on the wrong line: the message says where it is.
    insert_before_dos(
        dir.path(),
        "base-frequency",
        "[[summary]]\nzh = \"先提升基础密度。\"\nen = \"Raise the base density.\"\npassages = [{ line = 1, text = \"首先呢，你还是要提升一个基础密度\" }]\n",
    );
    // Two sentences in one item, one passage for both.
    insert_before_dos(
        dir.path(),
        "ask-for-advice",
        "[[summary]]\nzh = \"大事小事都请教。平时也要多汇报好消息。\"\nen = \"Ask about everything. Report good news too.\"\npassages = [{ line = 4, text = \"大事情小事情\" }]\n",
    );
    let out = upward().args(["kb", "check"]).arg(dir.path()).output().unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("speak-up-early.toml") && text.contains("passage is not on line 4"),
        "{text}"
    );
    assert!(text.contains("base-frequency.toml") && text.contains("(it is on line 4)"), "{text}");
    assert!(text.contains("ask-for-advice.toml") && text.contains("holds one sentence"), "{text}");
}

#[test]
fn our_advice_passes_when_marked_and_is_shown_apart() {
    let dir = copy_knowledge();
    // The unsourced sentence is fine once it is marked as ours.
    let p = dir.path().join("principles/base-frequency.toml");
    let old = std::fs::read_to_string(&p).unwrap();
    let marked = old.replace(
        "zh = \"具体多频繁、用什么形式",
        "zh = \"问题越拖越大，要在客户正式通知丢单之前说。具体多频繁、用什么形式",
    );
    assert_ne!(marked, old);
    std::fs::write(&p, marked).unwrap();
    upward().args(["kb", "check"]).arg(dir.path()).assert().success();

    // Text output: the summary, then our advice under its own label.
    let out = upward()
        .env("UPWARD_KNOWLEDGE_DIR", dir.path())
        .args(["--lang", "zh", "kb", "search", "多久跟领导沟通一次", "-k", "1"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let summary = text.find("讲者的第一条建议").expect(&text);
    let ours = text.find("[我们的建议，非讲话内容] 问题越拖越大").expect(&text);
    assert!(summary < ours, "{text}");

    // JSON: the talk's summary and its passages, our advice in its own field.
    let out = upward()
        .args(["kb", "search", "how often should I check in with my boss", "--json", "-k", "1"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let hit = &v[0];
    assert_eq!(hit["id"], "base-frequency");
    let transcript = std::fs::read_to_string(knowledge().join("source/transcript-zh.txt")).unwrap();
    let line4: Vec<char> = transcript.lines().nth(3).unwrap().chars().collect();
    let claims = hit["claims"].as_array().unwrap();
    assert!(!claims.is_empty());
    for c in claims {
        let passages = c["passages"].as_array().unwrap();
        assert!(!passages.is_empty(), "{c}");
        for p in passages {
            assert_eq!(p["line"], 4);
            let (s, e) =
                (p["start"].as_u64().unwrap() as usize, p["end"].as_u64().unwrap() as usize);
            let at: String = line4[s..e].iter().collect();
            assert_eq!(at, p["text"].as_str().unwrap());
        }
    }
    let ours = hit["beyond_talk"].as_str().unwrap();
    assert!(ours.contains("our suggestions"), "{ours}");
    assert!(!hit["summary"].as_str().unwrap().contains(ours));
}

#[test]
fn general_practice_criteria_say_so_and_cite_no_principle() {
    let draft = "张总，年底了，谢谢您三月陪我连夜改华信银行的方案，是您教会我先讲价值再讲价格。现在我每个方案都这样写。明年我想把这套打法带到华南区。";
    let out = upward()
        .args(["critique", "--json", "--no-model", "--kind", "thanks", "-"])
        .write_stdin(draft)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for c in v["criteria"].as_array().unwrap() {
        let general = ["specific", "forward"].contains(&c["id"].as_str().unwrap());
        assert_eq!(c["general_practice"], general, "{c}");
        assert_eq!(c["principles"].as_array().unwrap().is_empty(), general, "{c}");
    }
    upward()
        .args(["--lang", "en", "critique", "--no-model", "--kind", "thanks", "-"])
        .write_stdin(draft)
        .assert()
        .success()
        .stdout(predicate::str::contains("Why: general practice, not from the talk"));
}

#[test]
fn an_open_request_for_advice_is_a_full_ask() {
    let draft = "周总，恒达集团的项目卡在付款周期上，客户要90天，我已经跟对方财务聊过两次。您觉得这个情况我该怎么处理更好？";
    let out = upward()
        .args(["critique", "--json", "--no-model", "--kind", "help", "-"])
        .write_stdin(draft)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ask = v["criteria"].as_array().unwrap().iter().find(|c| c["id"] == "ask").unwrap().clone();
    assert_eq!(ask["status"], "met", "{ask}");
    assert!(ask["evidence"]["text"].as_str().unwrap().contains("您觉得"), "{ask}");
}

/// The skip-level role-play is scored on its own rubric: asking the VP for resources is
/// going over your boss's head (`chain` missing); reporting and asking for his view is not.
#[test]
fn skip_level_roleplay_scores_going_over_your_boss_head() {
    let models = std::env::var_os("UPWARD_TEST_MODEL_DIR").map(PathBuf::from).expect(
        "set UPWARD_TEST_MODEL_DIR to the folder with the test models (bash .ci/run fetches them)",
    );
    let model = models.join("SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(model.exists(), "{} is missing", model.display());
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("script.txt");
    // English turns: the rubric is the same in both languages, and the small test model
    // reads English prompts much faster.
    let over = "Wang, the energy group framework deal is signed, CNY 4M for phase one. East China is short of presales: could you approve two extra presales headcount for my team directly?";
    let fair = "The energy group deal is signed; my boss Zhang negotiated it with me. Next I'll prepare phase two, and if their budget slips my fallback is a pilot. What do you think East China should bet on next year?";
    std::fs::write(&script, format!("{over}\n{fair}\n")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_upward"))
        .env("UPWARD_DATA_DIR", dir.path())
        .env("UPWARD_CACHE_DIR", dir.path().join("cache"))
        .env("UPWARD_MODEL", &model)
        .env("NO_COLOR", "1")
        .env_remove("UPWARD_KNOWLEDGE_DIR")
        .args(["roleplay", "--scenario", "skip-level", "--lang", "en", "--json"])
        .args(["--temperature", "0", "--max-tokens", "8", "--script"])
        .arg(&script)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let turns = v["turns"].as_array().unwrap();
    let scores = |i: usize| turns[i]["scores"].as_object().unwrap().clone();
    for i in 0..2 {
        assert!(scores(i).get("ask").is_none(), "{:?}", scores(i));
    }
    assert_eq!(scores(0)["chain"], "missing");
    assert_eq!(scores(1)["chain"], "met");
    assert!(turns[0]["trust"].as_u64() < turns[1]["trust"].as_u64());
}
