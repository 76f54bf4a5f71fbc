//! Unit tests on tiny hand-built vocabularies.

use super::*;
use candle_core::quantized::gguf_file::Value;
use std::collections::HashMap;

fn s(x: &str) -> Value {
    Value::String(x.to_string())
}

/// A tiny byte-level BPE vocabulary: all 256 byte characters plus a few merges.
fn tiny_bpe(pre: &str) -> HashMap<String, Value> {
    let table = bpe::byte_to_char_table();
    let mut tokens: Vec<String> = vec!["<|endoftext|>".into(), "<|im_end|>".into()];
    tokens.extend(table.iter().map(|c| c.to_string()));
    tokens.extend(["he".into(), "ll".into(), "hell".into(), "hello".into(), "Ġw".into()]);
    let mut types = vec![Value::I32(3), Value::I32(3)];
    types.extend((2..tokens.len()).map(|_| Value::I32(1)));
    let merges = ["h e", "l l", "he ll", "hell o", "Ġ w"];
    let mut md = HashMap::new();
    md.insert("tokenizer.ggml.model".into(), s("gpt2"));
    md.insert("tokenizer.ggml.pre".into(), s(pre));
    md.insert("tokenizer.ggml.tokens".into(), Value::Array(tokens.iter().map(|t| s(t)).collect()));
    md.insert("tokenizer.ggml.token_type".into(), Value::Array(types));
    md.insert("tokenizer.ggml.merges".into(), Value::Array(merges.iter().map(|m| s(m)).collect()));
    md.insert("tokenizer.ggml.eos_token_id".into(), Value::U32(0));
    md
}

#[test]
fn tiny_bpe_merges_by_rank_and_round_trips() {
    let tok = Tokenizer::from_metadata(&tiny_bpe("gpt2")).unwrap();
    let hello = tok.token_id("hello").unwrap();
    let gw = tok.token_id("Ġw").unwrap();
    let ids = tok.encode("hello world", false, false);
    assert_eq!(ids[0], hello);
    assert_eq!(ids[1], gw);
    assert_eq!(tok.decode(&ids), "hello world");
    assert_eq!(tok.eot_ids(), &[0, 1]);
}

#[test]
fn specials_are_parsed_only_when_asked() {
    let tok = Tokenizer::from_metadata(&tiny_bpe("gpt2")).unwrap();
    assert_eq!(tok.encode("hello<|im_end|>", false, true), vec![tok.token_id("hello").unwrap(), 1]);
    let plain = tok.encode("hello<|im_end|>", false, false);
    assert!(!plain.contains(&1));
    assert_eq!(tok.decode(&plain), "hello<|im_end|>");
    assert!(tok.is_special(1));
    assert_eq!(tok.decode_with(&[tok.token_id("hello").unwrap(), 1], true), "hello");
}

#[test]
fn unknown_model_and_pre_are_named() {
    let err = Tokenizer::from_metadata(&tiny_bpe("no-such-pre")).unwrap_err();
    assert!(matches!(err, TokenizerError::UnsupportedPre(ref p) if p == "no-such-pre"), "{err}");
    let mut md = tiny_bpe("gpt2");
    md.insert("tokenizer.ggml.model".into(), s("bert"));
    let err = Tokenizer::from_metadata(&md).unwrap_err();
    assert!(err.to_string().contains("`bert`"), "{err}");
}

#[test]
fn tokenizer_is_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Tokenizer>();
    assert_send_sync::<crate::gguf::ChatTemplate>();
}

/// A tiny SentencePiece vocabulary with add_space_prefix.
fn tiny_spm() -> HashMap<String, Value> {
    let mut tokens: Vec<String> = vec!["<unk>".into(), "<s>".into(), "</s>".into()];
    tokens.extend((0..=255u8).map(|b| format!("<0x{b:02X}>")));
    let pieces = [("▁", -1.0), ("h", -2.0), ("i", -2.0), ("▁h", -1.5), ("▁hi", -0.5), ("hi", -3.0)];
    tokens.extend(pieces.iter().map(|(p, _)| p.to_string()));
    let mut types = vec![Value::I32(2), Value::I32(3), Value::I32(3)];
    types.extend((0..256).map(|_| Value::I32(6)));
    types.extend(pieces.iter().map(|_| Value::I32(1)));
    let mut scores = vec![Value::F32(0.0); 3 + 256];
    scores.extend(pieces.iter().map(|(_, sc)| Value::F32(*sc)));
    let mut md = HashMap::new();
    md.insert("tokenizer.ggml.model".into(), s("llama"));
    md.insert("tokenizer.ggml.tokens".into(), Value::Array(tokens.iter().map(|t| s(t)).collect()));
    md.insert("tokenizer.ggml.token_type".into(), Value::Array(types));
    md.insert("tokenizer.ggml.scores".into(), Value::Array(scores));
    md
}

#[test]
fn spm_prefix_space_byte_fallback_and_bos() {
    let tok = Tokenizer::from_metadata(&tiny_spm()).unwrap();
    let hi = tok.token_id("▁hi").unwrap();
    // Defaults for SentencePiece: BOS 1 added, a space put before the text.
    assert_eq!(tok.encode("hi", true, false), vec![1, hi]);
    // "é" is not in the vocabulary: two byte-fallback tokens.
    let ids = tok.encode("hi é", false, false);
    assert_eq!(ids, vec![hi, tok.token_id("▁").unwrap(), 3 + 0xC3, 3 + 0xA9]);
    assert_eq!(tok.decode(&ids), "hi é");
    let mut d = tok.stream_decoder(false);
    let streamed: String = ids.iter().map(|&id| d.push(id)).collect();
    assert_eq!(streamed + &d.finish(), "hi é");
}

#[test]
fn stream_decoder_waits_for_whole_characters() {
    let tok = Tokenizer::from_metadata(&tiny_bpe("gpt2")).unwrap();
    // "你" is three bytes: each byte is its own token in this vocabulary.
    let ids = tok.encode("你a", false, false);
    assert_eq!(ids.len(), 4);
    let mut d = tok.stream_decoder(false);
    assert_eq!(d.push(ids[0]), "");
    assert_eq!(d.push(ids[1]), "");
    assert_eq!(d.push(ids[2]), "你");
    assert_eq!(d.push(ids[3]), "a");
    assert_eq!(d.finish(), "");
    // A split character: "a" cannot continue it; stopping inside it leaves it out.
    assert_eq!(d.push(ids[0]), "");
    assert!(d.accepts(ids[1]) && !d.accepts(ids[3]));
    assert_eq!(d.finish(), "");
    // A stray continuation byte is never shown as U+FFFD.
    assert!(!d.accepts(ids[1]));
    assert_eq!(d.push(ids[1]), "");
    assert_eq!(d.push(ids[3]), "a");
}
