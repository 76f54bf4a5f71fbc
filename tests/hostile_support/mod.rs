//! Builds GGUF files byte by byte for the hostile-input tests: a tiny random-weight llama
//! with a real (SentencePiece-style) vocabulary and a chat template, which `upward chat`
//! loads and answers with, and which each test then breaks in one way.

#![allow(dead_code)]

use candle_core::quantized::gguf_file::{Content, Value};
use std::path::{Path, PathBuf};
use upward::gguf::synth::{write_random_model, SynthSpec};

/// One tensor: name, dimensions in GGUF order (innermost first), ggml type code, bytes.
pub struct Tensor {
    pub name: String,
    pub dims: Vec<u64>,
    pub dtype: u32,
    pub data: Vec<u8>,
    /// Offset to write in the tensor table instead of the packed one (the data is still
    /// placed where the table says).
    pub offset: Option<u64>,
}

/// A GGUF file to write: metadata in order (duplicates allowed) and tensors in order.
pub struct Gguf {
    pub meta: Vec<(String, Value)>,
    pub tensors: Vec<Tensor>,
}

pub const CHATML: &str = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

impl Gguf {
    /// A 3-layer llama (hidden 128, vocabulary 512) with random weights, a byte-fallback
    /// SentencePiece vocabulary and a ChatML template.
    pub fn tiny_llama() -> Gguf {
        Gguf::from_spec(&SynthSpec::tiny("llama"))
    }

    /// A random-weight model of `spec` (vocabulary of at least 259) with the vocabulary
    /// and template of [`tiny_llama`](Self::tiny_llama).
    pub fn from_spec(spec: &SynthSpec) -> Gguf {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("base.gguf");
        write_random_model(&path, spec, 7).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let content = Content::read(&mut std::io::Cursor::new(&bytes)).unwrap();
        let mut infos: Vec<_> = content.tensor_infos.iter().collect();
        infos.sort_by_key(|(_, i)| i.offset);
        let tensors = infos
            .into_iter()
            .map(|(name, info)| {
                let dt = info.ggml_dtype;
                let size = info.shape.elem_count() / dt.block_size() * dt.type_size();
                let start = (content.tensor_data_offset + info.offset) as usize;
                let mut dims: Vec<u64> = info.shape.dims().iter().map(|&d| d as u64).collect();
                dims.reverse();
                Tensor {
                    name: name.clone(),
                    dims,
                    dtype: type_code_of(dt),
                    data: bytes[start..start + size].to_vec(),
                    offset: None,
                }
            })
            .collect();
        let mut meta: Vec<(String, Value)> =
            content.metadata.into_iter().filter(|(k, _)| k != "general.alignment").collect();
        meta.sort_by(|a, b| a.0.cmp(&b.0));
        let mut g = Gguf { meta, tensors };
        let n = spec.vocab;
        let mut tokens = vec!["<unk>".to_string(), "<s>".into(), "</s>".into()];
        let mut types = vec![2i32, 3, 3];
        for b in 0..=255u8 {
            tokens.push(format!("<0x{b:02X}>"));
            types.push(6);
        }
        let words = ["▁", "e", "t", "a", "o", "n", "▁t", "▁a", "he", "▁the", "in", "er"];
        for (i, w) in words.iter().enumerate().chain((0..).map(|i| (i + 100, &""))) {
            if tokens.len() == n {
                break;
            }
            tokens.push(if w.is_empty() { format!("▁w{i}") } else { w.to_string() });
            types.push(1);
        }
        let scores: Vec<Value> = (0..n).map(|i| Value::F32(-(i as f32))).collect();
        g.set("tokenizer.ggml.model", Value::String("llama".into()));
        g.set(
            "tokenizer.ggml.tokens",
            Value::Array(tokens.into_iter().map(Value::String).collect()),
        );
        g.set(
            "tokenizer.ggml.token_type",
            Value::Array(types.into_iter().map(Value::I32).collect()),
        );
        g.set("tokenizer.ggml.scores", Value::Array(scores));
        g.set("tokenizer.ggml.bos_token_id", Value::U32(1));
        g.set("tokenizer.ggml.eos_token_id", Value::U32(2));
        g.set("tokenizer.chat_template", Value::String(CHATML.into()));
        g
    }

    /// Replaces a metadata value (or adds it).
    pub fn set(&mut self, key: &str, value: Value) {
        match self.meta.iter_mut().find(|(k, _)| k == key) {
            Some(kv) => kv.1 = value,
            None => self.meta.push((key.to_string(), value)),
        }
    }

    /// Adds a second entry for `key`, leaving the first.
    pub fn push_duplicate(&mut self, key: &str, value: Value) {
        self.meta.push((key.to_string(), value));
    }

    /// The tensor called `name`.
    pub fn tensor(&mut self, name: &str) -> &mut Tensor {
        self.tensors.iter_mut().find(|t| t.name == name).unwrap()
    }

    /// The file's bytes (GGUF v3, alignment 32).
    pub fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(b"GGUF");
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.meta.len() as u64).to_le_bytes());
        for (k, v) in &self.meta {
            put_str(&mut out, k);
            out.extend_from_slice(&type_code(v).to_le_bytes());
            put_value(&mut out, v);
        }
        let mut offsets = Vec::new();
        let mut next = 0u64;
        for t in &self.tensors {
            put_str(&mut out, &t.name);
            out.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                out.extend_from_slice(&d.to_le_bytes());
            }
            out.extend_from_slice(&t.dtype.to_le_bytes());
            let off = t.offset.unwrap_or(next);
            out.extend_from_slice(&off.to_le_bytes());
            offsets.push(off);
            next = (off + t.data.len() as u64).div_ceil(32) * 32;
        }
        let data_start = out.len().div_ceil(32) * 32;
        for (t, off) in self.tensors.iter().zip(offsets) {
            let at = data_start + off as usize;
            if out.len() < at + t.data.len() {
                out.resize(at + t.data.len(), 0);
            }
            out[at..at + t.data.len()].copy_from_slice(&t.data);
        }
        out.resize(out.len().div_ceil(32) * 32, 0);
        out
    }

    /// Writes the file into `dir` and returns its path.
    pub fn write(&self, dir: &Path, name: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, self.bytes()).unwrap();
        p
    }
}

fn type_code_of(dt: candle_core::quantized::GgmlDType) -> u32 {
    use candle_core::quantized::GgmlDType::*;
    match dt {
        F32 => 0,
        F16 => 1,
        Q4_0 => 2,
        Q4_1 => 3,
        Q5_0 => 6,
        Q5_1 => 7,
        Q8_0 => 8,
        Q6K => 14,
        other => panic!("no code for {other:?} in the test writer"),
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn type_code(v: &Value) -> u32 {
    match v {
        Value::U8(_) => 0,
        Value::I8(_) => 1,
        Value::U16(_) => 2,
        Value::I16(_) => 3,
        Value::U32(_) => 4,
        Value::I32(_) => 5,
        Value::F32(_) => 6,
        Value::Bool(_) => 7,
        Value::String(_) => 8,
        Value::Array(_) => 9,
        Value::U64(_) => 10,
        Value::I64(_) => 11,
        Value::F64(_) => 12,
    }
}

fn put_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::U8(x) => out.push(*x),
        Value::I8(x) => out.push(*x as u8),
        Value::U16(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I16(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::U32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::F32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::Bool(x) => out.push(*x as u8),
        Value::String(s) => put_str(out, s),
        Value::Array(a) => {
            out.extend_from_slice(&a.first().map(type_code).unwrap_or(4).to_le_bytes());
            out.extend_from_slice(&(a.len() as u64).to_le_bytes());
            for x in a {
                put_value(out, x);
            }
        }
        Value::U64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::F64(x) => out.extend_from_slice(&x.to_le_bytes()),
    }
}

/// `upward` with its data and cache folders in `home`, and no model from the environment.
pub fn upward(home: &Path) -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("upward").unwrap();
    cmd.env("HOME", home)
        .env("XDG_DATA_HOME", home.join("data"))
        .env("XDG_CACHE_HOME", home.join("cache"))
        .env("UPWARD_DATA_DIR", home.join("data"))
        .env_remove("UPWARD_MODEL")
        .env_remove("RUST_BACKTRACE")
        .env("NO_COLOR", "1");
    cmd
}

/// Runs `upward --model PATH chat --prompt hi` and returns (success, exit code, stderr).
pub fn chat(home: &Path, model: &Path) -> (bool, Option<i32>, String, String) {
    let out = upward(home)
        .args(["--model", model.to_str().unwrap(), "chat", "--prompt", "hi"])
        .args(["--max-tokens", "4", "--temperature", "0"])
        .timeout(std::time::Duration::from_secs(120))
        .output()
        .unwrap();
    (
        out.status.success(),
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
