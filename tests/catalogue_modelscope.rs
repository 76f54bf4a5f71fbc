//! `upward models pull` where Hugging Face is unreachable and ModelScope answers: a local
//! HTTP server stands in for modelscope.cn (MODELSCOPE_ENDPOINT), offline.

use assert_cmd::Command;
use predicates::prelude::*;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;

const MODEL: &[u8] = b"GGUF\x03\x00\x00\x00bytes served by the stand-in ModelScope";

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Serves ModelScope's file list (with `sha`) and the file of `owner/fake-GGUF`.
fn fake_modelscope(sha: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let req = String::from_utf8_lossy(&req);
            let path = req.split_whitespace().nth(1).unwrap_or("");
            let (status, body): (&str, Vec<u8>) = match path {
                "/api/v1/models/owner/fake-GGUF/repo/files?Revision=master&Recursive=true" => (
                    "200 OK",
                    format!(
                        r#"{{"Code":200,"Data":{{"Files":[{{"Path":"m.gguf","Sha256":"{sha}","Size":{}}}]}}}}"#,
                        MODEL.len()
                    )
                    .into_bytes(),
                ),
                "/models/owner/fake-GGUF/resolve/master/m.gguf" => ("200 OK", MODEL.to_vec()),
                _ => ("404 Not Found", Vec::new()),
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(&body);
        }
    });
    base
}

fn dead_url() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    drop(l);
    url
}

fn write_catalogue(dir: &Path) -> std::path::PathBuf {
    let p = dir.join("models.toml");
    std::fs::write(
        &p,
        r#"default = "fake"
[[models]]
name = "fake"
architecture = "qwen2"
quantization = "Q4_K_M"
context_length = 4096
languages = ["zh", "en"]
licence = "Apache-2.0"
file = "m.gguf"

[[models.sources]]
kind = "hf"
repo = "owner/fake-GGUF"
file = "m.gguf"

[[models.sources]]
kind = "modelscope"
repo = "owner/fake-GGUF"
file = "m.gguf"
"#,
    )
    .unwrap();
    p
}

fn upward(tmp: &Path, hf: &str, modelscope: &str) -> Command {
    let mut c = Command::cargo_bin("upward").unwrap();
    c.env("UPWARD_CACHE_DIR", tmp.join("cache"))
        .env("HF_HOME", tmp.join("hf-home"))
        .env("HF_ENDPOINT", hf)
        .env("MODELSCOPE_ENDPOINT", modelscope)
        .env("UPWARD_HTTP_TIMEOUT", "3")
        .env_remove("HF_HUB_OFFLINE")
        .env_remove("MODELSCOPE_DOMAIN")
        .env_remove("UPWARD_MODELS_FILE");
    c
}

#[test]
fn hugging_face_unreachable_modelscope_delivers_a_checked_file() {
    let tmp = tempfile::tempdir().unwrap();
    let cat = write_catalogue(tmp.path());
    let ms = fake_modelscope(sha256_hex(MODEL));
    let out = upward(tmp.path(), &dead_url(), &ms)
        .arg("--models-file")
        .arg(&cat)
        .args(["models", "pull", "fake"])
        .assert()
        .success()
        .stderr(
            predicate::str::contains("source 1/2 failed: Hugging Face owner/fake-GGUF (m.gguf)")
                .and(predicate::str::contains("trying the next source"))
                .and(predicate::str::contains("got fake from ModelScope owner/fake-GGUF (m.gguf)")),
        );
    let path = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert_eq!(std::fs::read(path.trim()).unwrap(), MODEL);
    // The published digest was recorded, so `verify` re-checks the file later.
    upward(tmp.path(), &dead_url(), &ms)
        .arg("--models-file")
        .arg(&cat)
        .args(["models", "verify", "fake"])
        .assert()
        .success()
        .stdout(predicate::str::contains(sha256_hex(MODEL)));
}

#[test]
fn both_hubs_down_names_both_remedies() {
    let tmp = tempfile::tempdir().unwrap();
    let cat = write_catalogue(tmp.path());
    upward(tmp.path(), &dead_url(), &dead_url())
        .arg("--models-file")
        .arg(&cat)
        .args(["models", "pull"])
        .assert()
        .failure()
        .stderr(
            predicate::str::contains("source 2/2 failed: ModelScope owner/fake-GGUF")
                .and(predicate::str::contains("HF_ENDPOINT"))
                .and(predicate::str::contains("MODELSCOPE_ENDPOINT")),
        );
    // A malformed endpoint is a clear error, not a panic.
    upward(tmp.path(), &dead_url(), "modelscope.cn")
        .arg("--models-file")
        .arg(&cat)
        .args(["models", "pull"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("MODELSCOPE_ENDPOINT to one such as"));
}
