//! The remote backend against a real server: llama-cpp-python's OpenAI-compatible
//! server on SmolLM2, started on loopback. Runs when `UPWARD_LLAMA_SERVER_PYTHON` names
//! a Python that has `llama_cpp.server` (see the README's developer section); otherwise
//! it says why and passes.
//!
//! Through a models.toml entry with `api = "openai"`: a chat, a critique with the model
//! judging (the server's grammar constrains the choice), and a scripted role-play.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PYTHON_ENV: &str = "UPWARD_LLAMA_SERVER_PYTHON";

/// Starts `llama_cpp.server` with weight repacking off (see the script).
const LAUNCHER: &str = include_str!("../bench/llama_server.py");

/// The server process, killed when dropped.
struct ServerProcess(Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn python() -> Option<PathBuf> {
    let Some(p) = std::env::var_os(PYTHON_ENV).filter(|p| !p.is_empty()) else {
        eprintln!("skipped: set {PYTHON_ENV} to a Python with llama-cpp-python[server] (README, developer section)");
        return None;
    };
    let ok = Command::new(&p)
        .args(["-c", "import llama_cpp.server.app"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("skipped: {} cannot import llama_cpp.server", PathBuf::from(&p).display());
        return None;
    }
    Some(PathBuf::from(p))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts the server on SmolLM2 and waits for `/v1/models` (at most two minutes).
fn start(python: &Path, dir: &Path) -> (ServerProcess, u16) {
    let port = free_port();
    let log = std::fs::File::create(dir.join("server.log")).unwrap();
    let child = Command::new(python)
        .arg("-c")
        .arg(LAUNCHER)
        .arg("--model")
        .arg(common::smol())
        .args(["--model_alias", "smollm2", "--host", "127.0.0.1", "--n_ctx", "4096"])
        .args(["--port", &port.to_string()])
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start llama_cpp.server");
    let mut server = ServerProcess(child);
    let started = Instant::now();
    loop {
        if let Ok(Some(status)) = server.0.try_wait() {
            let mut log = String::new();
            let _ =
                std::fs::File::open(dir.join("server.log")).map(|mut f| f.read_to_string(&mut log));
            panic!("llama_cpp.server exited ({status}):\n{log}");
        }
        let up = ureq::get(&format!("http://127.0.0.1:{port}/v1/models"))
            .timeout(Duration::from_secs(2))
            .call()
            .is_ok();
        if up {
            return (server, port);
        }
        assert!(started.elapsed() < Duration::from_secs(120), "llama_cpp.server did not start");
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn upward(dir: &Path, models: &Path, args: &[&str]) -> std::process::Output {
    let out = common::upward(dir)
        .arg("--models-file")
        .arg(models)
        .args(["--model", "llama-server", "--lang", "en"])
        .args(args)
        .timeout(Duration::from_secs(900))
        .output()
        .unwrap();
    eprintln!("$ upward {}\n{}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    out
}

#[test]
fn chat_critique_and_roleplay_run_on_llama_cpp_server() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (_server, port) = start(&python, dir.path());
    let models = dir.path().join("models.toml");
    std::fs::write(
        &models,
        format!(
            "[[models]]\nname = \"llama-server\"\napi = \"openai\"\nbase_url = \"http://127.0.0.1:{port}/v1\"\nmodel = \"smollm2\"\nlanguages = [\"en\"]\njudge = true\n"
        ),
    )
    .unwrap();

    let out = common::upward(dir.path())
        .arg("--models-file")
        .arg(&models)
        .args(["models", "verify", "llama-server"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("owned_by me") && text.trim_end().ends_with("ok"), "{text}");

    // Chat: a streamed answer, greedy and bounded.
    let out = upward(
        dir.path(),
        &models,
        &[
            "chat",
            "--prompt",
            "Name one way to ask a busy manager for help.",
            "--json",
            "--temperature",
            "0",
            "--max-tokens",
            "48",
        ],
    );
    assert!(out.status.success());
    let v = common::json_of(&out);
    println!("chat: {v}");
    assert!(!v["answer"].as_str().unwrap().trim().is_empty(), "{v}");
    assert!(["end_of_turn", "max_tokens"].contains(&v["stop"].as_str().unwrap()), "{v}");
    assert!(v["generated_tokens"].as_u64().unwrap() > 0);

    // Critique with the model judging: the server's grammar makes every choice.
    let draft = dir.path().join("draft.txt");
    std::fs::write(&draft, "Hi Anna, could you help me with the Q3 pricing deck? I tried the template and asked finance. I need it by Friday for the client meeting. Thanks, Li").unwrap();
    let out = upward(dir.path(), &models, &["critique", "--json", draft.to_str().unwrap()]);
    assert!(out.status.success());
    let v = common::json_of(&out);
    println!(
        "critique: model={} model_choice={} judge={}",
        v["model"], v["model_choice"], v["judge"]
    );
    assert_eq!(v["model"], "llama-server");
    assert_eq!(v["model_choice"], "guided", "{v}");
    assert!(v["criteria"].as_array().is_some_and(|c| !c.is_empty()));

    // A scripted role-play, streamed from the server turn by turn.
    let script = dir.path().join("script.txt");
    std::fs::write(
        &script,
        "Hi Anna, I need your help with the pricing deck by Friday.\nI already tried the template and asked finance.\n",
    )
    .unwrap();
    let out = upward(
        dir.path(),
        &models,
        &[
            "roleplay",
            "--scenario",
            "ask-advice",
            "--script",
            script.to_str().unwrap(),
            "--json",
            "--temperature",
            "0",
            "--max-tokens",
            "64",
        ],
    );
    assert!(out.status.success());
    let v = common::json_of(&out);
    assert_eq!(v["boss"], "model", "{v}");
    let turns = v["turns"].as_array().unwrap();
    assert_eq!(turns.len(), 2);
    for t in turns {
        println!("roleplay: {} -> {}", t["user"], t["boss"]);
        assert!(!t["boss"].as_str().unwrap().trim().is_empty(), "{v}");
    }
    // Everything was saved: the critique, the chat and the role-play.
    assert_eq!(common::sessions_json(dir.path()).len(), 3);
}
