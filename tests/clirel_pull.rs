//! Interrupted `upward models pull`: SIGINT, SIGTERM or SIGKILL mid-download leave a
//! partial file; the next pull cleans every one of them up and lands the model. Offline:
//! a local HTTP server stands in for the Hugging Face hub.

use sha2::Digest;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Serves `body` behind a hub-like `resolve` URL. While `stall` is set, a download sends
/// the headers and half the body, then holds the connection open.
fn hub(body: Vec<u8>, stall: Arc<AtomicBool>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let sha = hex(&sha2::Sha256::digest(&body));
    let location = format!("{base}/cdn/blob");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let (body, stall, sha, location) =
                (body.clone(), stall.clone(), sha.clone(), location.clone());
            std::thread::spawn(move || {
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let req = String::from_utf8_lossy(&req);
                let path = req.split_whitespace().nth(1).unwrap_or("").to_string();
                if path.contains("/resolve/") {
                    let head = format!(
                        "HTTP/1.1 302 Found\r\nLocation: {location}\r\nX-Linked-Etag: \"{sha}\"\r\n\
                         X-Linked-Size: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = s.write_all(head.as_bytes());
                } else if path == "/cdn/blob" {
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = s.write_all(head.as_bytes());
                    if stall.load(Ordering::SeqCst) {
                        let _ = s.write_all(&body[..body.len() / 2]);
                        let _ = s.flush();
                        std::thread::sleep(Duration::from_secs(600));
                    } else {
                        let _ = s.write_all(&body);
                    }
                } else {
                    let _ = s.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
                }
            });
        }
    });
    base
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn interrupted_pulls_leave_no_partial_files_after_the_next_pull() {
    let tmp = tempfile::tempdir().unwrap();
    // A GGUF header, then enough bytes that half of them is a real partial file.
    let mut body = b"GGUF\x03\x00\x00\x00".to_vec();
    body.extend((0..3_000_000u32).map(|i| (i % 251) as u8));
    let sha = hex(&sha2::Sha256::digest(&body));
    let stall = Arc::new(AtomicBool::new(true));
    let base = hub(body.clone(), stall.clone());
    let catalogue = tmp.path().join("models.toml");
    std::fs::write(
        &catalogue,
        format!(
            "[[models]]\nname = \"fake\"\narchitecture = \"llama\"\nquantization = \"Q4_1\"\n\
             context_length = 64\nlanguages = [\"en\"]\nlicence = \"MIT\"\nfile = \"m.gguf\"\n\
             sha256 = \"{sha}\"\n[[models.sources]]\nkind = \"hf\"\nrepo = \"someone/fake-GGUF\"\n\
             file = \"m.gguf\"\n"
        ),
    )
    .unwrap();
    let cache = tmp.path().join("cache");
    let folder = cache.join("models/fake");
    let pull = || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_upward"));
        c.args(["models", "pull", "fake"])
            .env("UPWARD_MODELS_FILE", &catalogue)
            .env("UPWARD_CACHE_DIR", &cache)
            .env("HF_ENDPOINT", &base)
            .env("HF_HOME", tmp.path().join("hf-home"))
            .env_remove("HF_HUB_OFFLINE")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    };
    for signal in ["-INT", "-TERM", "-KILL"] {
        let before = names(&folder);
        let mut child = pull().spawn().unwrap();
        // Wait until this pull's partial file holds the first half.
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            assert!(Instant::now() < deadline, "{signal}: no partial file appeared");
            assert!(child.try_wait().unwrap().is_none(), "{signal}: the pull ended early");
            let partial =
                names(&folder).into_iter().find(|n| n.ends_with(".partial") && !before.contains(n));
            let size =
                partial.map_or(0, |n| std::fs::metadata(folder.join(n)).map_or(0, |m| m.len()));
            if size as usize >= body.len() / 2 {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap()
            .success());
        let status = child.wait().unwrap();
        assert!(!status.success(), "{signal}");
        assert!(
            names(&folder).iter().any(|n| n.ends_with(".partial")),
            "{signal}: {:?}",
            names(&folder)
        );
    }
    stall.store(false, Ordering::SeqCst);
    let out = pull().output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read(folder.join("m.gguf")).unwrap(), body);
    assert_eq!(names(&folder), ["m.gguf", "m.gguf.sha256"], "leftovers survived the pull");
}
