//! Reliability of the one-shot model commands on SmolLM2: signals stop a scripted
//! role-play cleanly, a store that cannot save is reported, a failed start leaves nothing,
//! terminal escapes in scripts are shown, the REPL's private files, and bad bench input.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SMOL: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

fn model_path() -> PathBuf {
    let dir = std::env::var_os("UPWARD_TEST_MODEL_DIR").map(PathBuf::from).expect(
        "set UPWARD_TEST_MODEL_DIR to the folder with the test models (bash .ci/run fetches them)",
    );
    let p = dir.join(SMOL);
    assert!(p.exists(), "{} is missing: run scripts/fetch-test-models.sh", p.display());
    p
}

fn upward(data: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_upward"));
    c.env("UPWARD_DATA_DIR", data).env("NO_COLOR", "1").env("UPWARD_MODEL", model_path());
    c.env("UPWARD_CACHE_DIR", data.join("cache")).env("LANG", "en_US.UTF-8");
    c.env_remove("LC_ALL").env_remove("RUST_BACKTRACE");
    c
}

const TURN: &str = "Quick update on the Acme renewal, 1.2M: the PoC passed last Friday and procurement wants a 15% discount. I already offered extended support instead of price, and finance agreed to a 5% cap. Next step: I meet their CIO on Tuesday. Could you join that call to show executive commitment? If it slips, my backup is a phased contract.";

fn script(dir: &Path, turns: usize) -> PathBuf {
    let p = dir.join("script.txt");
    let lines: Vec<String> = (0..turns).map(|i| format!("{TURN} (Point {}.)", i + 1)).collect();
    std::fs::write(&p, lines.join("\n")).unwrap();
    p
}

fn roleplay(data: &Path, script: &Path, extra: &[&str]) -> Command {
    let mut c = upward(data);
    c.args(["roleplay", "--scenario", "resources-critical", "--lang", "en", "--temperature", "0"]);
    c.args(extra).arg("--script").arg(script);
    c
}

fn sessions(data: &Path) -> serde_json::Value {
    let out = upward(data).args(["sessions", "list", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn show(data: &Path, id: i64) -> serde_json::Value {
    let out = upward(data).args(["sessions", "show", &id.to_string(), "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Sends `signal` to a scripted role-play once its first turn is saved; returns the exit
/// code, the JSON it printed, and the saved session.
fn interrupt(signal: &str, code: i32) {
    let dir = tempfile::tempdir().unwrap();
    let s = script(dir.path(), 40);
    let mut child = roleplay(dir.path(), &s, &["--json", "--max-tokens", "200"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Poll the store until a completed turn (user + boss rows) is there.
    let deadline = Instant::now() + Duration::from_secs(600);
    let id = loop {
        assert!(Instant::now() < deadline, "no turn was saved");
        assert!(child.try_wait().unwrap().is_none(), "the role-play ended before the signal");
        let list = sessions(dir.path());
        if let Some(s) = list.as_array().unwrap().first() {
            if s["turns"].as_u64().unwrap() >= 2 {
                break s["id"].as_i64().unwrap();
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let kill = Command::new("kill").args([signal, &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{signal}: {stderr}");
    assert!(stderr.contains("stopped by SIG"), "{stderr}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["interrupted"], true);
    assert!(v["debrief"].is_null(), "no debrief after an interruption");
    let printed = v["turns"].as_array().unwrap();
    assert!(printed.len() < 40, "every turn ran despite the signal");
    // Every turn before the last is complete, with a real answer.
    for t in &printed[..printed.len() - 1] {
        assert_eq!(t["interrupted"], false);
        assert!(!t["boss"].as_str().unwrap().is_empty(), "an empty reply was kept as a turn");
    }
    // The store holds exactly what was printed; the cut turn is marked, not complete.
    let d = show(dir.path(), id);
    assert!(d["session"]["ended_at"].is_null() && d["session"]["debrief"].is_null(), "{d}");
    let turns = d["turns"].as_array().unwrap();
    assert_eq!(turns.len(), 2 * printed.len());
    let last = printed.last().unwrap();
    let boss = turns.last().unwrap();
    assert_eq!(boss["role"], "boss");
    assert_eq!(boss["interrupted"], last["interrupted"]);
    for b in turns.iter().filter(|t| t["role"] == "boss").take(printed.len() - 1) {
        assert_eq!(b["interrupted"], false);
        assert!(!b["text"].as_str().unwrap().is_empty());
    }
}

#[test]
fn sigint_stops_a_scripted_roleplay_with_130() {
    interrupt("-INT", 130);
}

#[test]
fn sigterm_stops_a_scripted_roleplay_with_143() {
    interrupt("-TERM", 143);
}

/// A database with a valid header but damaged pages: the role-play still runs, and says
/// it was not saved.
#[test]
fn a_damaged_store_is_reported_not_swallowed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = script(dir.path(), 1);
    // Create the database, then damage every page after the first.
    assert!(upward(&data).args(["sessions", "list"]).output().unwrap().status.success());
    let db = data.join("upward.db");
    let bytes = std::fs::read(&db).unwrap();
    assert!(bytes.len() > 4096, "the database has one page");
    let mut damaged = bytes[..4096].to_vec();
    damaged.extend(std::iter::repeat_n(0xA5u8, bytes.len() - 4096));
    std::fs::write(&db, &damaged).unwrap();

    let out = roleplay(&data, &s, &["--json", "--max-tokens", "16"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["saved"], false, "{v}");
    assert!(v["save_error"].as_str().unwrap().contains("damaged"), "{v}");
    assert!(stderr.contains("not fully saved"), "{stderr}");

    let out = roleplay(&data, &s, &["--max-tokens", "16"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("was not fully saved"), "{stdout}");
}

#[test]
fn a_failed_start_leaves_no_session() {
    let dir = tempfile::tempdir().unwrap();
    let s = script(dir.path(), 2);
    let out = roleplay(dir.path(), &s, &["--json", "--ctx", "0"]).output().unwrap();
    assert!(!out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(sessions(dir.path()), serde_json::json!([]));
}

#[test]
fn script_escapes_are_shown_and_saved_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path().join("s.txt");
    std::fs::write(
        &s,
        "Boss,\x1b[2J the deal\x07 slipped;\r I need \u{202e}help\u{202c} by Friday.\n",
    )
    .unwrap();
    let out = roleplay(dir.path(), &s, &["--max-tokens", "24"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        !text.contains(['\x1b', '\x07', '\r', '\u{202e}', '\u{202c}']),
        "raw control characters reached the terminal: {text:?}"
    );
    assert!(
        text.contains("Boss,^[[2J the deal^G slipped;^M I need <U+202E>help<U+202C>"),
        "{text}"
    );
    assert!(text.contains("Saved as session"), "{text}");
    let id = sessions(dir.path())[0]["id"].as_i64().unwrap();
    assert_eq!(
        show(dir.path(), id)["turns"][0]["text"],
        "Boss,\x1b[2J the deal\x07 slipped;\r I need \u{202e}help\u{202c} by Friday."
    );
}

#[test]
fn bench_refuses_zero_runs_and_an_oversized_prompt_before_any_prefill() {
    let dir = tempfile::tempdir().unwrap();
    let out = upward(dir.path()).args(["bench", "--runs", "0", "--json"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 1"), "{out:?}");
    let out = upward(dir.path())
        .args(["bench", "--prompt-tokens", "100000", "--gen-tokens", "8", "--json"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--prompt-tokens 100000") && err.contains("context"), "{err}");
    assert!(!err.contains("--ctx"), "bench has no --ctx flag: {err}");
}

#[test]
fn the_repl_keeps_its_prompt_cache_and_history_private() {
    use rexpect::session::spawn_command;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = upward(dir.path());
    cmd.args(["--lang", "en", "roleplay", "--scenario", "weekly-report", "--max-tokens", "8"]);
    let mut p = spawn_command(cmd, Some(300_000)).unwrap();
    p.exp_string("you> ").unwrap();
    p.send_line("/exit").unwrap();
    p.exp_eof().unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let prompts = dir.path().join("cache/prompts");
    assert_eq!(mode(&prompts), 0o700);
    let kv: Vec<PathBuf> =
        std::fs::read_dir(&prompts).unwrap().map(|e| e.unwrap().path()).collect();
    assert!(!kv.is_empty(), "no prompt cache was saved");
    for f in &kv {
        assert_eq!(mode(f), 0o600, "{}", f.display());
    }
    assert_eq!(mode(&dir.path().join("history-coach.txt")), 0o600);
    // Leaving before any turn leaves no empty session behind.
    assert_eq!(sessions(dir.path()), serde_json::json!([]));
}

/// `chat --prompt` is one-shot too: Ctrl-C while it answers ends the run with 130
/// (before, the answer was cut and the command exited 0 as if it had finished).
#[test]
fn sigint_stops_a_one_shot_chat_with_130() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let mut child = upward(dir.path())
        .args(["chat", "--temperature", "0", "--max-tokens", "2000", "--prompt"])
        .arg("Write a very long story, at least two thousand words, about a salesperson's year.")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The first byte of the answer: it is generating now.
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 1];
    stdout.read_exact(&mut first).unwrap();
    assert!(Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let mut rest = Vec::new();
    stdout.read_to_end(&mut rest).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("stopped by SIGINT"), "{stderr}");
}
