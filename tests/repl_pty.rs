//! The coach REPL (`upward` with no subcommand, and `upward sessions resume`) under a real
//! pseudo-terminal on SmolLM2, one command at a time as a user types them, with what
//! each leaves in the session store.

mod common;

use rexpect::session::{spawn_command, PtySession};
use std::path::Path;
use upward::lang::Lang;
use upward::roleplay::load_personas;
use upward::store::{Role, SessionKind, Store};

const TURN: &str = "Quick update on the Acme renewal, 1.2M: the PoC passed last Friday and procurement wants a 15% discount. Could you join the CIO call on Tuesday? If it slips, my backup is a phased contract.";

/// `exp_string` for text with non-ASCII characters: rexpect reads the terminal byte by
/// byte (one char per byte), so UTF-8 text is matched in that form.
trait ExpUtf8 {
    fn exp(&mut self, s: &str) -> Result<String, rexpect::error::Error>;
}

impl ExpUtf8 for PtySession {
    fn exp(&mut self, s: &str) -> Result<String, rexpect::error::Error> {
        self.exp_string(&s.bytes().map(char::from).collect::<String>())
    }
}

/// `upward --lang en [args]` on SmolLM2 in `dir`, short greedy answers.
fn spawn(dir: &Path, args: &[&str]) -> PtySession {
    let mut cmd = common::upward_std(dir);
    cmd.env("UPWARD_MODEL", common::smol()).args(["--lang", "en"]).args(args);
    spawn_command(cmd, Some(300_000)).unwrap()
}

fn persona_name(id: &str) -> String {
    let p = load_personas().unwrap().into_iter().find(|p| p.id == id).unwrap();
    p.name.get(Lang::En).to_string()
}

/// Bare `upward`: every command that needs no role-play, a plain question to the coach,
/// and a pasted `/critique` that is saved.
#[test]
fn bare_upward_commands_outside_a_roleplay() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = spawn(dir.path(), &[]);
    p.exp("Welcome to upward, your managing-up coach. Model: ").unwrap();
    p.exp("/help for everything").unwrap();
    p.exp("> ").unwrap();

    p.send_line("/help").unwrap();
    for line in ["/roleplay [ID] [--persona P]", "/critique", "/lang zh|en", "/resume ID", "/exit"]
    {
        p.exp(line).unwrap();
    }
    p.exp("Ctrl-C interrupts an answer.").unwrap();

    p.send_line("/model").unwrap();
    // The context defaults to what the model supports within memory: any size is fine here.
    p.exp("smollm2-135m · llama · 30 layers · context ").unwrap();

    p.send_line("/kb thank my boss at year end").unwrap();
    p.exp("1. ").unwrap();
    p.exp("From the talk: ").unwrap();
    p.send_line("/kb").unwrap();
    p.exp("Usage: /kb QUERY").unwrap();

    for (cmd, says) in [
        ("/hint", "Start a role-play with /roleplay first."),
        ("/feedback", "No turn to score yet."),
        ("/restart", "No role-play is running."),
        ("/end", "No role-play is running."),
        ("/resume x", "Usage: /resume ID"),
        ("/resume 42", "no session 42"),
        ("/lang xx", "Usage: /lang zh or /lang en"),
        ("/nonsense", "Unknown command; try /help."),
    ] {
        p.send_line(cmd).unwrap();
        p.exp(says).unwrap();
    }
    p.send_line("/lang zh").unwrap();
    p.exp("已切换为中文").unwrap();
    p.send_line("/save").unwrap();
    p.exp("自动保存到").unwrap();
    p.send_line("/lang en").unwrap();
    p.exp("Switched to English").unwrap();
    p.send_line("/save").unwrap();
    p.exp(&format!("Saving automatically to {}", dir.path().join("upward.db").display())).unwrap();

    // A plain question: the coach answers (streamed), then the prompt comes back.
    p.send_line("How do I ask my boss for help with a stuck deal?").unwrap();
    p.exp("stuck deal?").unwrap();
    let (answer, _) = p.exp_regex(r"\x1b\[K> ").unwrap();
    let answer = answer.trim();
    assert!(answer.chars().filter(|c| c.is_alphabetic()).count() >= 5, "answer: {answer:?}");
    assert!(!answer.contains("upward:"), "an error instead of an answer: {answer}");

    // /critique: paste, end with """, the critique is shown and saved.
    p.send_line("/critique").unwrap();
    p.exp("Paste the draft; end with a line").unwrap();
    // Each line once the editor asks for it (input typed earlier is dropped).
    for line in [
        "Hi Maria, the Northwind deal (480k) is stuck: their CFO wants 12% off by Friday.",
        "Could you call him with me on Thursday? If not, I will propose two phases.",
        "\"\"\"",
    ] {
        p.exp("\u{1b}[K… ").unwrap();
        p.send_line(line).unwrap();
        p.exp("\u{1b}[?2004l").unwrap();
    }
    p.exp("Help request · score").unwrap();
    p.exp("> ").unwrap();
    p.send_line("/sessions").unwrap();
    p.exp("critique").unwrap();
    p.send_line("/exit").unwrap();
    p.exp_eof().unwrap();

    let store = Store::open(Some(dir.path())).unwrap();
    let list = store.list_sessions().unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0].session.kind, SessionKind::Critique);
    assert_eq!(list[0].session.model.as_deref(), Some("smollm2-135m"));
    let d = store.session(list[0].session.id).unwrap();
    assert!(
        d.critiques[0].draft.starts_with("Hi Maria") && d.critiques[0].draft.contains("two phases")
    );
    // The REPL's history is kept in the data dir it was given.
    let history = std::fs::read_to_string(dir.path().join("history-coach.txt")).unwrap();
    assert!(history.contains("/kb thank my boss at year end"), "{history}");
}

/// `/roleplay N --persona P`, `/hint`, a turn, `/feedback`, `/save`, `/restart`, `/end`,
/// and `/resume` of the earlier role-play, continuing it in the same session. (Opened by
/// `upward roleplay`, the REPL with sampling options: short greedy answers.)
#[test]
fn roleplay_commands_and_resume_in_the_repl() {
    let dir = tempfile::tempdir().unwrap();
    let kb = upward::kb::KnowledgeBase::load_default().unwrap();
    let second = kb.scenarios()[1].clone();
    let mentor =
        load_personas().unwrap().into_iter().find(|p| p.id == "supportive-mentor").unwrap();
    let name = persona_name("supportive-mentor");
    let mut p = spawn(
        dir.path(),
        &["roleplay", "--scenario", "weekly-report", "--max-tokens", "24", "--temperature", "0"],
    );
    p.exp("you> ").unwrap();

    // By number, as the list shows them, with another persona.
    p.send_line("/roleplay 2 --persona supportive-mentor").unwrap();
    p.exp(&format!("{} · {name} · trust {}", second.title.get(Lang::En), mentor.start_trust))
        .unwrap();
    p.exp(&format!("{name}: {}", second.opening.get(Lang::En))).unwrap();
    p.exp("you> ").unwrap();
    p.send_line("/hint").unwrap();
    p.exp("A strong next line would cover:").unwrap();
    p.send_line(TURN).unwrap();
    p.exp("[coach] turn").unwrap();
    p.exp("you> ").unwrap();
    p.send_line("/feedback").unwrap();
    p.exp("Turn score").unwrap();
    // The opening role-play had no turn, so it left no session: this one is session 1.
    p.send_line("/save").unwrap();
    p.exp("Every turn is saved automatically, session 1").unwrap();

    // /restart: the same scenario and persona from the top, saved only once a turn exists.
    p.send_line("/restart").unwrap();
    p.exp(&format!("{name} · trust {}", mentor.start_trust)).unwrap();
    p.send_line("/feedback").unwrap();
    p.exp("No turn to score yet.").unwrap();
    p.send_line("/save").unwrap();
    p.exp("Saving automatically to").unwrap();
    p.send_line("/end").unwrap();
    p.exp("Debrief").unwrap();

    // /resume 1: the earlier turn comes back, and the next one is added to session 1.
    p.send_line("/resume 1").unwrap();
    p.exp(&format!("> {TURN}")).unwrap();
    p.exp("you> ").unwrap();
    p.send_line("Thanks, I will send you the summary tonight.").unwrap();
    p.exp("[coach] turn").unwrap();
    p.exp("you> ").unwrap();
    p.send_line("/exit").unwrap();
    p.exp_eof().unwrap();

    let store = Store::open(Some(dir.path())).unwrap();
    let list = store.list_sessions().unwrap();
    assert_eq!(list.len(), 1, "role-plays left before any turn leave no empty session");
    let first = store.session(1).unwrap();
    assert_eq!(first.session.scenario.as_deref(), Some(second.id.as_str()));
    assert_eq!(first.session.persona.as_deref(), Some("supportive-mentor"));
    let said: Vec<(Role, &str)> = first
        .turns
        .iter()
        .filter(|t| t.role == Role::User)
        .map(|t| (t.role, t.text.as_str()))
        .collect();
    assert_eq!(
        said,
        [(Role::User, TURN), (Role::User, "Thanks, I will send you the summary tonight.")]
    );
    assert_eq!(first.turns.len(), 4);
}

/// `upward sessions resume ID` reopens a saved role-play in the REPL with its turns, and
/// the next turn is saved in the same session.
#[test]
fn sessions_resume_continues_a_saved_roleplay() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("turns.txt");
    std::fs::write(&script, format!("{TURN}\n")).unwrap();
    let out = common::upward_smol(dir.path())
        .args(["--lang", "en", "roleplay", "--scenario", "deal-slipping", "--script"])
        .arg(&script)
        .args(["--json", "--temperature", "0", "--max-tokens", "16"])
        .output()
        .unwrap();
    let v = common::json_of(&out);
    let id = v["session"].as_i64().unwrap();
    let boss = v["turns"][0]["boss"].as_str().unwrap().to_string();
    let persona = v["persona"].as_str().unwrap().to_string();

    let mut p = spawn(dir.path(), &["sessions", "resume", &id.to_string()]);
    p.exp(&format!("> {TURN}")).unwrap();
    p.exp(&format!("{}: {}", persona_name(&persona), boss.lines().next().unwrap_or(""))).unwrap();
    p.exp("you> ").unwrap();
    p.send_line("/feedback").unwrap();
    p.exp(&format!("Turn score {}/100", v["turns"][0]["score"])).unwrap();
    p.send_line("I will bring two options to Tuesday's call.").unwrap();
    p.exp("[coach] turn").unwrap();
    p.exp("you> ").unwrap();
    p.send_line("/exit").unwrap();
    p.exp_eof().unwrap();

    let store = Store::open(Some(dir.path())).unwrap();
    assert_eq!(store.list_sessions().unwrap().len(), 1, "resuming made no new session");
    let d = store.session(id).unwrap();
    let texts: Vec<&str> = d.turns.iter().map(|t| t.text.as_str()).collect();
    assert_eq!(texts.len(), 4, "{texts:?}");
    assert_eq!((texts[0], texts[1]), (TURN, boss.as_str()));
    assert_eq!(texts[2], "I will bring two options to Tuesday's call.");
}
