//! Mistyped GGUF metadata through `upward chat --model FILE`: the one metadata reader
//! serves the model config, the tokenizer and the chat template, and each refuses the file
//! with an error that names the key, what it needs and what the file holds.

mod hostile_support;

use candle_core::quantized::gguf_file::Value;
use hostile_support::{chat, Gguf};

/// Runs `upward chat` on `g` and asserts a clean failure whose message holds every `needle`.
fn refused(g: &Gguf, needles: &[&str]) {
    let home = tempfile::tempdir().unwrap();
    let path = g.write(home.path(), "mistyped.gguf");
    let (ok, code, stdout, stderr) = chat(home.path(), &path);
    assert!(!ok, "the model was accepted and answered {stdout:?}\nstderr: {stderr}");
    assert_ne!(code, Some(101), "upward panicked:\n{stderr}");
    assert!(!stderr.contains("panicked"), "upward panicked:\n{stderr}");
    for n in needles {
        assert!(stderr.contains(n), "the error does not say {n:?}:\n{stderr}");
    }
}

/// A hyper-parameter stored as a string: the model config names the key and both types.
#[test]
fn a_hyper_parameter_of_the_wrong_type_is_named() {
    let mut g = Gguf::tiny_llama();
    g.set("llama.block_count", Value::String("3".into()));
    refused(&g, &["llama.block_count", "is a string, not an integer"]);
}

/// A negative layer count is refused, not wrapped into a huge one.
#[test]
fn a_negative_hyper_parameter_is_named() {
    let mut g = Gguf::tiny_llama();
    g.set("llama.block_count", Value::I32(-3));
    refused(&g, &["llama.block_count", "-3", "non-negative"]);
}

/// Vocabulary entries that are numbers, not strings (a GGUF array has one element type):
/// the tokenizer names the first entry.
#[test]
fn vocabulary_entries_of_the_wrong_type_are_named() {
    let mut g = Gguf::tiny_llama();
    let kv = g.meta.iter_mut().find(|(k, _)| k == "tokenizer.ggml.tokens").unwrap();
    let Value::Array(tokens) = &mut kv.1 else { panic!("tokens are not an array") };
    for (i, t) in tokens.iter_mut().enumerate() {
        *t = Value::U32(i as u32);
    }
    refused(&g, &["tokenizer.ggml.tokens[0]", "expected a string"]);
}

/// A boolean tokenizer flag stored as an integer.
#[test]
fn a_tokenizer_flag_of_the_wrong_type_is_named() {
    let mut g = Gguf::tiny_llama();
    g.set("tokenizer.ggml.add_bos_token", Value::U8(1));
    refused(&g, &["tokenizer.ggml.add_bos_token", "expected a bool"]);
}

/// A chat template that is not a string.
#[test]
fn a_chat_template_of_the_wrong_type_is_named() {
    let mut g = Gguf::tiny_llama();
    g.set("tokenizer.chat_template", Value::U32(1));
    refused(&g, &["tokenizer.chat_template", "not a string"]);
}
