//! Helpers shared by the integration tests: finding the test models, running the `upward`
//! binary hermetically (its own data dir and model cache, no colour, a fixed language),
//! and the REPL under a pseudo-terminal. Each test crate uses a part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// SmolLM2-135M-Instruct (Q4_1, English ChatML): the fastest test model.
pub const SMOL: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
/// Gemma-3-270M (Q4_K_M, base model, multilingual).
pub const GEMMA: &str = "gemma-3-270m-q4_k_m.gguf";

/// What fetches the test models, named in every "model missing" message.
pub const FETCH_HINT: &str = "bash scripts/fetch-test-models.sh";

/// The folder holding the test models: `$UPWARD_TEST_MODEL_DIR`, else the folder that
/// scripts/fetch-test-models.sh fills by default (`~/.cache/upward/test-models`).
pub fn model_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("UPWARD_TEST_MODEL_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
    home.join(".cache/upward/test-models")
}

/// The path of test model `file`; panics with the command that fetches it when missing.
pub fn model_path(file: &str) -> PathBuf {
    let p = model_dir().join(file);
    assert!(
        p.is_file(),
        "test model {} is missing: run `{FETCH_HINT}` (it fills $UPWARD_TEST_MODEL_DIR, \
         default ~/.cache/upward/test-models)",
        p.display()
    );
    p
}

/// SmolLM2's path.
pub fn smol() -> PathBuf {
    model_path(SMOL)
}

/// `upward` with `--data-dir dir`, its model cache inside `dir`, English, no colour, and
/// nothing from the caller's environment that picks a model, catalogue or knowledge base.
pub fn upward(dir: &Path) -> assert_cmd::Command {
    assert_cmd::Command::from_std(upward_std(dir))
}

/// [`upward`] on SmolLM2.
pub fn upward_smol(dir: &Path) -> assert_cmd::Command {
    let mut c = upward(dir);
    c.env("UPWARD_MODEL", smol());
    c
}

/// A plain `std::process::Command` for `upward`, set up like [`upward`] (for a pty).
pub fn upward_std(dir: &Path) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_upward"));
    hermetic(&mut c, dir);
    c.arg("--data-dir").arg(dir);
    c
}

/// Clears what would pick a model, catalogue, knowledge base, language or mirror from the
/// caller's environment, and keeps downloads off the network.
fn hermetic(c: &mut std::process::Command, dir: &Path) {
    for var in [
        "UPWARD_MODEL",
        "UPWARD_MODELS_FILE",
        "UPWARD_KNOWLEDGE_DIR",
        "UPWARD_PROMPTS_DIR",
        "UPWARD_DATA_DIR",
        "UPWARD_WHEEL_DIR",
        "LC_ALL",
        "LC_MESSAGES",
        "HF_ENDPOINT",
    ] {
        c.env_remove(var);
    }
    c.env("UPWARD_CACHE_DIR", dir.join("cache"))
        .env("HF_HOME", dir.join("hf-home"))
        .env("HF_HUB_OFFLINE", "1")
        .env("UPWARD_PIP", "/nonexistent/pip")
        .env("NO_COLOR", "1")
        .env("LANG", "en_US.UTF-8")
        .env("COLUMNS", "100");
}

/// Parses stdout as JSON, with stderr in the panic message when it is not.
pub fn json_of(out: &std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "upward failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("stdout is not JSON ({e}):\n{}", String::from_utf8_lossy(&out.stdout))
    })
}

/// Stdout as text, asserting success.
pub fn stdout_of(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "upward failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).expect("stdout is UTF-8")
}

/// The sessions saved in `dir`, as `upward sessions list --json` prints them.
pub fn sessions_json(dir: &Path) -> Vec<serde_json::Value> {
    let out = upward(dir).args(["sessions", "list", "--json"]).output().unwrap();
    json_of(&out).as_array().expect("a JSON array").clone()
}
