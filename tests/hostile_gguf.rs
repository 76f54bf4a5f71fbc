//! Hostile and invalid model files through `upward chat --model FILE`: each must stop at
//! load with an error that names the field at fault, never a panic, a hang or garbage.
//! The files are a tiny random-weight llama (tests/hostile_support) broken one way each.

mod hostile_support;

use candle_core::quantized::gguf_file::Value;
use hostile_support::{chat, Gguf};

/// Runs `upward chat` on `g` and asserts a clean failure whose message names every `needle`.
fn refused(g: &Gguf, needles: &[&str]) {
    let home = tempfile::tempdir().unwrap();
    let path = g.write(home.path(), "hostile.gguf");
    let (ok, code, stdout, stderr) = chat(home.path(), &path);
    assert!(!ok, "the model was accepted and answered {stdout:?}\nstderr: {stderr}");
    assert_ne!(code, Some(101), "upward panicked:\n{stderr}");
    assert!(!stderr.contains("panicked"), "upward panicked:\n{stderr}");
    for n in needles {
        assert!(stderr.contains(n), "the error does not name {n:?}:\n{stderr}");
    }
}

/// The unbroken file loads and answers: the refusals below are the breakage's doing.
#[test]
fn the_tiny_model_itself_loads_and_answers() {
    let home = tempfile::tempdir().unwrap();
    let path = Gguf::tiny_llama().write(home.path(), "ok.gguf");
    let (ok, _, stdout, stderr) = chat(home.path(), &path);
    assert!(ok, "stdout: {stdout}\nstderr: {stderr}");
}

/// Issue 15.1: dimensions whose product passes 2^64 ([128, 2^62]) wrapped the size to 0,
/// passed the truncation check and panicked in engine/linear.rs.
#[test]
fn tensor_dimensions_that_overflow_are_refused_not_a_panic() {
    let mut g = Gguf::tiny_llama();
    g.tensor("blk.0.attn_q.weight").dims = vec![128, 1 << 62];
    refused(&g, &["blk.0.attn_q.weight", "dimensions"]);
}

/// Issue 15.1: a tensor whose shape disagrees with the hyper-parameters.
#[test]
fn a_tensor_shaped_unlike_the_architecture_is_refused() {
    let mut g = Gguf::tiny_llama();
    g.set("llama.attention.head_count_kv", Value::U32(4));
    refused(&g, &["blk.0.attn_k.weight", "shape"]);
}

/// Issue 15.8: zero transformer blocks.
#[test]
fn zero_layers_is_refused() {
    let mut g = Gguf::tiny_llama();
    g.set("llama.block_count", Value::U32(0));
    refused(&g, &["llama.block_count"]);
}

/// Issue 15.8: a metadata key written twice (the reader kept whichever came last).
#[test]
fn a_duplicated_metadata_key_is_refused() {
    let mut g = Gguf::tiny_llama();
    g.push_duplicate("llama.rope.freq_base", Value::F32(500.0));
    refused(&g, &["llama.rope.freq_base", "twice"]);
}

/// Issue 15.8: a tensor offset off the file's alignment.
#[test]
fn a_misaligned_tensor_offset_is_refused() {
    let mut g = Gguf::tiny_llama();
    let last = g.tensors.len() - 1;
    let packed: u64 =
        g.tensors[..last].iter().map(|t| (t.data.len() as u64).div_ceil(32) * 32).sum();
    let name = g.tensors[last].name.clone();
    g.tensors[last].offset = Some(packed + 8);
    refused(&g, &[&name, "alignment"]);
}

/// Issue 15.8: two tensors with their types swapped (their bytes read as the wrong format).
#[test]
fn swapped_tensor_types_are_refused() {
    let mut g = Gguf::tiny_llama();
    let q = g.tensor("blk.1.attn_q.weight").dtype;
    let n = g.tensor("blk.1.ffn_norm.weight").dtype;
    assert_ne!(q, n);
    g.tensor("blk.1.attn_q.weight").dtype = n;
    g.tensor("blk.1.ffn_norm.weight").dtype = q;
    let order: Vec<&str> = g.tensors.iter().map(|t| t.name.as_str()).collect();
    let first =
        order.iter().find(|n| **n == "blk.1.attn_q.weight" || **n == "blk.1.ffn_norm.weight");
    let first = first.unwrap().to_string();
    refused(&g, &[&first, "bytes"]);
}

/// Issue 15.8: a vocabulary with fewer tokens than the embedding has rows.
#[test]
fn a_vocabulary_shorter_than_the_embedding_is_refused() {
    let mut g = Gguf::tiny_llama();
    for key in ["tokenizer.ggml.tokens", "tokenizer.ggml.token_type", "tokenizer.ggml.scores"] {
        let kv = g.meta.iter_mut().find(|(k, _)| k == key).unwrap();
        if let Value::Array(a) = &mut kv.1 {
            a.truncate(500);
        }
    }
    refused(&g, &["tokenizer.ggml.tokens", "token_embd.weight"]);
}

/// Issue 15.8: a RoPE base of 0 (every rotation NaN).
#[test]
fn a_rope_base_of_zero_is_refused() {
    let mut g = Gguf::tiny_llama();
    g.set("llama.rope.freq_base", Value::F32(0.0));
    refused(&g, &["llama.rope.freq_base"]);
}

/// Issue 15.8: a NaN RMSNorm epsilon.
#[test]
fn a_nan_epsilon_is_refused() {
    let mut g = Gguf::tiny_llama();
    g.set("llama.attention.layer_norm_rms_epsilon", Value::F32(f32::NAN));
    refused(&g, &["llama.attention.layer_norm_rms_epsilon"]);
}

/// An alignment of 0 divided by zero in the reader; any non-power of two is refused.
#[test]
fn a_zero_alignment_is_refused() {
    let mut g = Gguf::tiny_llama();
    g.set("general.alignment", Value::U32(0));
    refused(&g, &["general.alignment"]);
}

/// A tensor name used twice (the reader kept the last one).
#[test]
fn a_duplicated_tensor_name_is_refused() {
    let mut g = Gguf::tiny_llama();
    let i = g.tensors.iter().position(|t| t.name == "blk.2.ffn_norm.weight").unwrap();
    g.tensors[i].name = "blk.2.attn_norm.weight".into();
    refused(&g, &["blk.2.attn_norm.weight", "twice"]);
}
