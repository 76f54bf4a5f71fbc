//! Replays the committed fuzz corpus (`fuzz/corpus/TARGET/`) through the fuzz targets'
//! entry points on stable Rust, so CI checks every input the fuzzers found interesting,
//! crashes included, without nightly. `scripts/fuzz.sh` runs the real fuzzers.

#[path = "../fuzz/src/entries.rs"]
#[allow(dead_code)]
mod entries;

mod hostile_support;

use candle_core::quantized::gguf_file::Value;
use hostile_support::Gguf;
use std::path::Path;
use upward::gguf::synth::SynthSpec;

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

/// Writes the GGUF seeds: a small valid model of each architecture and broken variants.
/// Run after changing the GGUF writer: `cargo test --test fuzz_corpus -- --ignored`.
#[test]
#[ignore]
fn write_gguf_seeds() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/gguf");
    let small = |arch: &'static str| SynthSpec {
        hidden: 32,
        layers: 1,
        heads: 2,
        kv_heads: 1,
        head_dim: 16,
        ffn: 64,
        vocab: 272,
        sliding_window: (arch == "gemma3").then_some(4),
        ..SynthSpec::tiny(arch)
    };
    for arch in ["llama", "qwen2", "qwen3", "gemma3"] {
        Gguf::from_spec(&small(arch)).write(&dir, &format!("seed-{arch}"));
    }
    let mut g = Gguf::from_spec(&small("llama"));
    g.tensor("blk.0.attn_q.weight").dims = vec![32, 1 << 62];
    g.write(&dir, "seed-overflow");
    let mut g = Gguf::from_spec(&small("llama"));
    g.set("general.alignment", Value::U32(0));
    g.write(&dir, "seed-alignment-0");
    let mut g = Gguf::from_spec(&small("llama"));
    g.push_duplicate("llama.block_count", Value::U32(9));
    g.write(&dir, "seed-duplicate-key");
}

/// The valid GGUF seeds get past every check, so the replay runs the model itself.
#[test]
fn valid_gguf_seeds_load_and_run() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/gguf");
    for arch in ["llama", "qwen2", "qwen3", "gemma3"] {
        let data = std::fs::read(dir.join(format!("seed-{arch}"))).unwrap();
        let file = upward::gguf::GgufFile::from_bytes(arch, &data).unwrap();
        let cfg = upward::engine::ModelConfig::from_gguf(&file).unwrap();
        let mut model =
            upward::engine::Model::load(&file, cfg, 16, &candle_core::Device::Cpu).unwrap();
        assert_eq!(model.forward(&[1, 2]).unwrap().dims(), &[272]);
    }
}
