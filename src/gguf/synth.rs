//! Writes GGUF models with random weights: for tests of architectures we have no small
//! real model of, and for speed measurements of model sizes users run (speed does not
//! depend on the weights' values). The files carry no tokenizer.

use crate::engine::Arch;
use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Result, Tensor};
use std::path::Path;

/// Shape and type of a synthetic model.
#[derive(Clone, Debug)]
pub struct SynthSpec {
    /// `llama`, `qwen2`, `qwen3` or `gemma3`.
    pub arch: &'static str,
    /// Hidden size.
    pub hidden: usize,
    /// Transformer blocks.
    pub layers: usize,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads.
    pub kv_heads: usize,
    /// Per-head dimension.
    pub head_dim: usize,
    /// Feed-forward size.
    pub ffn: usize,
    /// Vocabulary size.
    pub vocab: usize,
    /// Type of the matrices (norms stay f32).
    pub dtype: GgmlDType,
    /// Type of the embedding table.
    pub embed_dtype: GgmlDType,
    /// Sliding window (gemma3).
    pub sliding_window: Option<usize>,
}

impl SynthSpec {
    /// A tiny model of `arch` for correctness tests.
    pub fn tiny(arch: &'static str) -> SynthSpec {
        SynthSpec {
            arch,
            hidden: 128,
            layers: 3,
            heads: 4,
            kv_heads: 2,
            head_dim: 32,
            ffn: 256,
            vocab: 512,
            dtype: GgmlDType::Q8_0,
            embed_dtype: GgmlDType::Q8_0,
            sliding_window: (arch == "gemma3").then_some(8),
        }
    }

    /// A 1B-class llama (Llama-3.2-1B shapes, Q4_K matrices, Q6_K embeddings): the
    /// bandwidth-bound regime of the models users run.
    pub fn llama_1b() -> SynthSpec {
        SynthSpec {
            arch: "llama",
            hidden: 2048,
            layers: 16,
            heads: 32,
            kv_heads: 8,
            head_dim: 64,
            ffn: 8192,
            vocab: 128_256,
            dtype: GgmlDType::Q4K,
            embed_dtype: GgmlDType::Q6K,
            sliding_window: None,
        }
    }
}

/// Writes a random-weight model described by `spec` to `path`.
pub fn write_random_model(path: &Path, spec: &SynthSpec, seed: u64) -> Result<()> {
    write_model(path, spec, seed, None)
}

/// Like [`write_random_model`], with the tokenizer (every `tokenizer.*` key) copied from
/// `vocab`, so that tools that need a vocabulary (llama.cpp, `upward bench`) load the file.
/// `spec.vocab` is replaced by the vocabulary's size.
pub fn write_random_model_with_vocab(
    path: &Path,
    spec: &SynthSpec,
    seed: u64,
    vocab: &super::GgufFile,
) -> Result<()> {
    write_model(path, spec, seed, Some(vocab))
}

fn write_model(
    path: &Path,
    spec: &SynthSpec,
    seed: u64,
    vocab: Option<&super::GgufFile>,
) -> Result<()> {
    let mut spec = spec.clone();
    if let Some(v) = vocab {
        if let Some(Value::Array(tokens)) = v.meta("tokenizer.ggml.tokens") {
            spec.vocab = tokens.len();
        }
    }
    let spec = &spec;
    let dev = Device::Cpu;
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let mut rand_tensor = |rows: usize, cols: usize, scale: f32| -> Result<Tensor> {
        let v: Vec<f32> = (0..rows * cols)
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 2.0 * scale
            })
            .collect();
        Tensor::from_vec(v, (rows, cols), &dev)
    };
    let mut tensors: Vec<(String, QTensor)> = Vec::new();
    let (h, hd) = (spec.hidden, spec.head_dim);
    let w = 1.0 / (h as f32).sqrt();
    let mat = |rt: &mut dyn FnMut(usize, usize, f32) -> Result<Tensor>, r, c, s, dt| {
        QTensor::quantize(&rt(r, c, s)?, dt)
    };
    let norm = |n: usize| -> Result<QTensor> {
        QTensor::quantize(&Tensor::ones(n, candle_core::DType::F32, &dev)?, GgmlDType::F32)
    };
    tensors.push((
        "token_embd.weight".into(),
        mat(&mut rand_tensor, spec.vocab, h, 1.0, spec.embed_dtype)?,
    ));
    tensors.push(("output_norm.weight".into(), norm(h)?));
    // The tensors each architecture reads (an unknown one gets llama's, to test the error).
    let quirks = Arch::from_name(spec.arch).unwrap_or(Arch::Llama).quirks();
    for i in 0..spec.layers {
        let p = |s: &str| format!("blk.{i}.{s}");
        let dt = spec.dtype;
        tensors.push((p("attn_norm.weight"), norm(h)?));
        tensors.push((p("ffn_norm.weight"), norm(h)?));
        tensors.push((p("attn_q.weight"), mat(&mut rand_tensor, spec.heads * hd, h, w, dt)?));
        tensors.push((p("attn_k.weight"), mat(&mut rand_tensor, spec.kv_heads * hd, h, w, dt)?));
        tensors.push((p("attn_v.weight"), mat(&mut rand_tensor, spec.kv_heads * hd, h, w, dt)?));
        tensors.push((p("attn_output.weight"), mat(&mut rand_tensor, h, spec.heads * hd, w, dt)?));
        tensors.push((p("ffn_gate.weight"), mat(&mut rand_tensor, spec.ffn, h, w, dt)?));
        tensors.push((p("ffn_up.weight"), mat(&mut rand_tensor, spec.ffn, h, w, dt)?));
        tensors.push((p("ffn_down.weight"), mat(&mut rand_tensor, h, spec.ffn, w, dt)?));
        if quirks.qkv_bias {
            for (n, rows) in
                [("q", spec.heads * hd), ("k", spec.kv_heads * hd), ("v", spec.kv_heads * hd)]
            {
                let b = rand_tensor(1, rows, 0.1)?.squeeze(0)?;
                tensors
                    .push((p(&format!("attn_{n}.bias")), QTensor::quantize(&b, GgmlDType::F32)?));
            }
        }
        if quirks.qk_norm {
            tensors.push((p("attn_q_norm.weight"), norm(hd)?));
            tensors.push((p("attn_k_norm.weight"), norm(hd)?));
        }
        if quirks.sandwich_norms {
            tensors.push((p("post_attention_norm.weight"), norm(h)?));
            tensors.push((p("post_ffw_norm.weight"), norm(h)?));
        }
    }
    let a = spec.arch;
    let mut meta: Vec<(String, Value)> = vec![
        ("general.architecture".into(), Value::String(a.into())),
        (format!("{a}.block_count"), Value::U32(spec.layers as u32)),
        (format!("{a}.embedding_length"), Value::U32(h as u32)),
        (format!("{a}.feed_forward_length"), Value::U32(spec.ffn as u32)),
        (format!("{a}.attention.head_count"), Value::U32(spec.heads as u32)),
        (format!("{a}.attention.head_count_kv"), Value::U32(spec.kv_heads as u32)),
        (format!("{a}.attention.key_length"), Value::U32(hd as u32)),
        (format!("{a}.attention.value_length"), Value::U32(hd as u32)),
        (format!("{a}.attention.layer_norm_rms_epsilon"), Value::F32(1e-6)),
        (format!("{a}.rope.freq_base"), Value::F32(10_000.0)),
        (format!("{a}.context_length"), Value::U32(4096)),
    ];
    if let Some(v) = vocab {
        for (k, val) in &v.content().metadata {
            if k.starts_with("tokenizer.") {
                meta.push((k.clone(), val.clone()));
            }
        }
    }
    if let Some(wnd) = spec.sliding_window {
        meta.push((format!("{a}.attention.sliding_window"), Value::U32(wnd as u32)));
    }
    let meta_refs: Vec<(&str, &Value)> = meta.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let tensor_refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let tmp = path.with_extension("gguf.tmp");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
    gguf_file::write(&mut f, &meta_refs, &tensor_refs)?;
    std::io::Write::flush(&mut f)?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    Ok(())
}
