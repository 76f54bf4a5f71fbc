//! Replays the committed fuzz corpus (`fuzz/corpus/TARGET/`) through the fuzz targets'
//! entry points on stable Rust, so CI checks every input the fuzzers found interesting,
//! crashes included, without nightly. `scripts/fuzz.sh` runs the real fuzzers.

#[path = "../fuzz/src/entries.rs"]
#[allow(dead_code)]
mod entries;

use std::path::Path;

/// Runs `entry` on every file of `fuzz/corpus/<target>/`; a panic names the file.
fn replay(target: &str, entry: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} has no inputs", dir.display());
    for f in files {
        let data = std::fs::read(&f).unwrap();
        let name = f.display().to_string();
        let result = std::panic::catch_unwind(|| entry(&data));
        assert!(result.is_ok(), "fuzz input {name} panicked");
    }
}

#[test]
fn gguf_corpus() {
    replay("gguf", entries::gguf);
}

#[test]
fn tokenizer_corpus() {
    replay("tokenizer", entries::tokenizer);
}

#[test]
fn chat_template_corpus() {
    replay("chat_template", entries::chat_template);
}

#[test]
fn models_toml_corpus() {
    replay("models_toml", entries::models_toml);
}

#[test]
fn knowledge_corpus() {
    replay("knowledge", entries::knowledge);
}

#[test]
fn critique_corpus() {
    replay("critique", entries::critique);
}

/// The corpus stays small enough to live in the repository.
#[test]
fn corpus_is_under_a_megabyte() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let mut total = 0u64;
    for t in std::fs::read_dir(&root).unwrap() {
        for f in std::fs::read_dir(t.unwrap().path()).unwrap() {
            total += f.unwrap().metadata().unwrap().len();
        }
    }
    assert!(total < 1 << 20, "fuzz/corpus holds {total} bytes");
}
