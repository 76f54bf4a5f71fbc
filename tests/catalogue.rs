//! `upward models` from the command line, offline: a catalogue with local sources.

use assert_cmd::Command;
use predicates::prelude::*;
use std::path::Path;

fn upward(cache: &Path) -> Command {
    let mut c = Command::cargo_bin("upward").unwrap();
    c.env("UPWARD_CACHE_DIR", cache).env_remove("UPWARD_MODELS_FILE").env("HF_HUB_OFFLINE", "1");
    c
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn pull_verify_path_and_list_with_a_custom_catalogue() {
    let tmp = tempfile::tempdir().unwrap();
    let model = b"GGUF\x03\x00\x00\x00tiny test model".to_vec();
    std::fs::write(tmp.path().join("tiny.gguf"), &model).unwrap();
    let catalogue = tmp.path().join("my-models.toml");
    std::fs::write(
        &catalogue,
        format!(
            r#"default = "tiny"
[[models]]
name = "tiny"
architecture = "llama"
quantization = "Q4_0"
context_length = 512
languages = ["en", "zh"]
licence = "MIT"
file = "tiny.gguf"
sha256 = "{}"
[[models.sources]]
kind = "local"
path = "tiny.gguf"

[[models]]
name = "other"
architecture = "llama"
quantization = "Q4_0"
context_length = 512
languages = ["en"]
licence = "MIT"
file = "other.gguf"
[[models.sources]]
kind = "local"
path = "missing.gguf"
"#,
            sha256_hex(&model)
        ),
    )
    .unwrap();
    let cache = tmp.path().join("cache");
    let file_arg = catalogue.to_str().unwrap();

    upward(&cache)
        .args(["--models-file", file_arg, "models", "path", "tiny"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("upward models pull tiny"));

    let out = upward(&cache)
        .args(["--models-file", file_arg, "models", "pull", "tiny"])
        .assert()
        .success();
    let pulled = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    let pulled = Path::new(pulled.trim());
    assert_eq!(pulled, cache.join("models/tiny/tiny.gguf"));
    assert_eq!(std::fs::read(pulled).unwrap(), model);

    upward(&cache)
        .args(["--models-file", file_arg, "models", "path", "tiny"])
        .assert()
        .success()
        .stdout(format!("{}\n", pulled.display()));
    upward(&cache)
        .args(["--models-file", file_arg, "models", "verify", "tiny"])
        .assert()
        .success()
        .stdout(predicate::str::contains("matches the catalogue"));

    let out = upward(&cache)
        .args(["--models-file", file_arg, "models", "list", "--json"])
        .assert()
        .success();
    let list: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(list[0]["name"], "tiny");
    assert_eq!(list[0]["cached"], true);
    assert_eq!(list[0]["default"], true);
    assert_eq!(list[1]["cached"], false);

    // A model whose only source is gone: the failure and what to do.
    upward(&cache)
        .args(["--models-file", file_arg, "models", "pull", "other"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("every source failed"))
        .stderr(predicate::str::contains("--model /path/to/other.gguf"));

    // A damaged file is caught by verify.
    std::fs::write(pulled, b"GGUF\x03\x00\x00\x00tampered").unwrap();
    upward(&cache)
        .args(["--models-file", file_arg, "models", "verify", "tiny"])
        .assert()
        .failure()
        .stdout(predicate::str::contains("MISMATCH"))
        .stderr(predicate::str::contains("failed verification"));
}

#[test]
fn malformed_catalogue_names_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.toml");
    std::fs::write(&bad, "default = \"a\"\n[[models]]\nname = \"a\"\ncontext_length = \"long\"\n")
        .unwrap();
    upward(tmp.path())
        .args(["--models-file", bad.to_str().unwrap(), "models", "list"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("bad.toml:4:"));
    upward(tmp.path())
        .args(["models", "pull", "no-such-model"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("no model named `no-such-model`"))
        .stderr(predicate::str::contains("qwen2.5-1.5b"));
}
