//! The coaching service saves what every front end does, and a store that fails is told,
//! never dropped: `chat --coach` (answered from the talk's principles, cited, saved as a
//! chat), and `chat --prompt` and a scripted role-play on a damaged store.

mod common;

use common::{json_of, sessions_json, upward, upward_smol};
use upward::kb::KnowledgeBase;

const QUESTION: &str = "How do I ask my boss for help with a stuck deal?";

/// `upward chat --coach`: the answer cites principles with the talk's own words, and the
/// question and answer are saved as a chat that `sessions list` shows (not with --no-save).
#[test]
fn a_coach_answer_is_cited_and_saved() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let v = json_of(
        &upward_smol(d)
            .args(["chat", "--coach", "--prompt", QUESTION, "--json", "--max-tokens", "16"])
            .output()
            .unwrap(),
    );
    let kb = KnowledgeBase::load_default().unwrap();
    let sources = v["sources"].as_array().unwrap();
    assert!(!sources.is_empty(), "{v}");
    for s in sources {
        let p = kb.principle(s["id"].as_str().unwrap()).unwrap();
        let quote = s["quote"].as_str().unwrap();
        assert!(p.quotes.iter().any(|q| q == quote), "not the talk's words: {quote}");
    }
    let list = sessions_json(d);
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["kind"], "chat");
    let id = list[0]["id"].as_i64().unwrap().to_string();
    let chat = json_of(&upward(d).args(["sessions", "show", &id, "--json"]).output().unwrap());
    let turns = chat["turns"].as_array().unwrap();
    assert_eq!(turns.len(), 2);
    assert_eq!(turns[0]["text"], QUESTION);
    assert_eq!(turns[1]["text"], v["answer"]);

    upward_smol(d)
        .args(["chat", "--coach", "--no-save", "--prompt", QUESTION, "--max-tokens", "4"])
        .assert()
        .success();
    assert_eq!(sessions_json(d).len(), 1, "--no-save saved a session");
}

/// `sessions list --json` on `d` fails or lists nothing.
fn sessions_json_or_none(d: &std::path::Path) -> bool {
    let out = upward(d).args(["sessions", "list", "--json"]).output().unwrap();
    !out.status.success()
        || serde_json::from_slice::<Vec<serde_json::Value>>(&out.stdout).is_ok_and(|v| v.is_empty())
}

/// A database with a valid header but damaged pages: the chat is answered, and stderr
/// says it was not saved.
#[test]
fn a_chat_on_a_damaged_store_says_it_is_not_saved() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(upward(d).args(["sessions", "list"]).output().unwrap().status.success());
    let db = d.join("upward.db");
    let bytes = std::fs::read(&db).unwrap();
    assert!(bytes.len() > 4096, "the database has one page");
    let mut damaged = bytes[..4096].to_vec();
    damaged.extend(std::iter::repeat_n(0xA5u8, bytes.len() - 4096));
    std::fs::write(&db, &damaged).unwrap();

    let out = upward_smol(d)
        .args(["chat", "--prompt", "What is the capital of France?", "--max-tokens", "4"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!out.stdout.is_empty(), "no answer");
    assert!(stderr.contains("damaged") && stderr.contains("saved"), "{stderr}");
    assert!(sessions_json_or_none(d), "a damaged store lists no sessions");
}
