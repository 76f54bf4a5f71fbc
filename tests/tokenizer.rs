//! Our GGUF tokenizers against llama.cpp's ids (tests/data/tokenizer/*.json, written by
//! scripts/tokenizer_reference.py), and chat templates from real models.
//!
//! Needs the test models: set UPWARD_TEST_MODEL_DIR to the folder holding
//! SmolLM2-135M-Instruct.Q4_1.gguf and gemma-3-270m-q4_k_m.gguf.

mod common;

use std::path::PathBuf;
use std::time::Instant;

use candle_core::quantized::gguf_file::Content;
use common::model_path;
use upward::gguf::{ChatMessage, ChatTemplate, Tokenizer};

const SMOLLM: &str = common::SMOL;
const GEMMA: &str = common::GEMMA;

fn content(file: &str) -> Content {
    let p = model_path(file);
    let mut f = std::fs::File::open(&p).unwrap();
    Content::read(&mut f).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
}

#[derive(serde::Deserialize)]
struct Case {
    text: String,
    plain: Vec<u32>,
    special: Vec<u32>,
    roundtrip_plain: bool,
    roundtrip_special: bool,
}

#[derive(serde::Deserialize)]
struct AddSpecial {
    text: String,
    ids: Vec<u32>,
}

#[derive(serde::Deserialize)]
struct Reference {
    cases: Vec<Case>,
    add_special: AddSpecial,
}

/// The corpus lines, with `\\n`, `\\r`, `\\t` and `\\\\` unescaped (as the reference script does).
fn corpus() -> Vec<String> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/tokenizer/corpus.txt");
    let text = std::fs::read_to_string(p).unwrap();
    text.split('\n')
        .filter(|l| !l.is_empty())
        .map(|line| {
            let mut out = String::new();
            let mut chars = line.chars().peekable();
            while let Some(c) = chars.next() {
                let esc = match (c, chars.peek()) {
                    ('\\', Some('n')) => Some('\n'),
                    ('\\', Some('r')) => Some('\r'),
                    ('\\', Some('t')) => Some('\t'),
                    ('\\', Some('\\')) => Some('\\'),
                    _ => None,
                };
                match esc {
                    Some(e) => {
                        out.push(e);
                        chars.next();
                    }
                    None => out.push(c),
                }
            }
            out
        })
        .collect()
}

fn reference(name: &str) -> Reference {
    let p =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/data/tokenizer/{name}.json"));
    let r: Reference = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    let texts: Vec<&str> = r.cases.iter().map(|c| c.text.as_str()).collect();
    assert_eq!(
        texts,
        corpus(),
        "{name}.json is stale: rerun scripts/tokenizer_reference.py after editing corpus.txt"
    );
    r
}

/// Compare every corpus line with llama.cpp; report all mismatches at once.
fn check_against_reference(file: &str, name: &str) -> Tokenizer {
    check_content_against_reference(&content(file), name)
}

fn check_content_against_reference(c: &Content, name: &str) -> Tokenizer {
    let start = Instant::now();
    let tok = Tokenizer::from_gguf(c).unwrap();
    eprintln!("{name}: built tokenizer ({} tokens) in {:?}", tok.vocab_size(), start.elapsed());
    let r = reference(name);
    assert!(r.cases.len() >= 30, "corpus too small");
    let mut failures = Vec::new();
    for case in &r.cases {
        for (parse_special, want) in [(false, &case.plain), (true, &case.special)] {
            let got = tok.encode(&case.text, false, parse_special);
            if &got != want {
                failures.push(format!(
                    "{:?} parse_special={parse_special}\n   ours: {got:?}\n  llama: {want:?}",
                    case.text
                ));
            }
        }
        for (ids, llama_ok) in
            [(&case.plain, case.roundtrip_plain), (&case.special, case.roundtrip_special)]
        {
            if llama_ok && tok.decode(ids) != case.text {
                failures.push(format!(
                    "{:?} does not round-trip: {:?}",
                    case.text,
                    tok.decode(ids)
                ));
            }
        }
    }
    let got = tok.encode(&r.add_special.text, true, true);
    if got != r.add_special.ids {
        failures.push(format!("add_special: ours {got:?}, llama {:?}", r.add_special.ids));
    }
    assert!(failures.is_empty(), "{name}: {} mismatches:\n{}", failures.len(), failures.join("\n"));
    tok
}

#[test]
fn smollm2_matches_llama_cpp() {
    let tok = check_against_reference(SMOLLM, "smollm2");
    assert_eq!(tok.bos_id(), Some(1));
    assert_eq!(tok.eos_id(), Some(2));
    let im_end = tok.token_id("<|im_end|>").unwrap();
    assert!(tok.eot_ids().contains(&im_end));
    assert!(tok.eot_ids().contains(&tok.token_id("<|endoftext|>").unwrap()));
    assert!(tok.is_special(im_end));
    assert!(!tok.adds_bos());
}

/// The pre-tokenizers our models do not use, with SmolLM2's vocabulary under another
/// `tokenizer.ggml.pre` (llama.cpp's ids come from a copy of the file with that value changed).
#[test]
fn other_pre_tokenizers_match_llama_cpp() {
    let mut c = content(SMOLLM);
    for pre in ["qwen2", "llama-bpe", "gpt-2", "default"] {
        c.metadata.insert(
            "tokenizer.ggml.pre".into(),
            candle_core::quantized::gguf_file::Value::String(pre.into()),
        );
        check_content_against_reference(&c, &format!("smollm2-{pre}"));
    }
}

#[test]
fn gemma3_matches_llama_cpp() {
    let tok = check_against_reference(GEMMA, "gemma3");
    assert_eq!(tok.vocab_size(), 262_144);
    assert_eq!(tok.bos_id(), Some(2));
    assert!(tok.adds_bos());
    let eot = tok.token_id("<end_of_turn>").unwrap();
    assert!(tok.eot_ids().contains(&eot));
    assert!(tok.eot_ids().contains(&1));
}

#[test]
fn stream_decoder_matches_decode_for_cjk_and_emoji() {
    for (file, name) in [(SMOLLM, "smollm2"), (GEMMA, "gemma3")] {
        let tok = Tokenizer::from_gguf(&content(file)).unwrap();
        for text in
            ["感谢您昨天的支持🙂👍🏽🚀", "2026年11月，❤️ 🇨🇳 日本語 한국어", "Ελληνικά русский हिन्दी"]
        {
            let ids = tok.encode(text, false, false);
            let mut d = tok.stream_decoder(false);
            let mut pieces = Vec::new();
            for &id in &ids {
                let p = d.push(id);
                assert!(!p.contains('\u{fffd}'), "{name}: partial character leaked for {text:?}");
                pieces.push(p);
            }
            pieces.push(d.finish());
            assert_eq!(pieces.concat(), tok.decode(&ids), "{name}: {text:?}");
            assert_eq!(pieces.concat(), text, "{name}");
        }
    }
}

#[test]
fn smollm2_template_from_metadata_renders_chatml() {
    let c = content(SMOLLM);
    let t = ChatTemplate::from_gguf(&c, None).unwrap();
    let msgs = [ChatMessage::user("你好")];
    let out = t.render(&msgs, true).unwrap();
    assert_eq!(
        out,
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n\
         <|im_start|>user\n你好<|im_end|>\n<|im_start|>assistant\n"
    );
    assert_eq!(t.stop_strings(), vec!["<|im_end|>".to_string()]);
    let tok = Tokenizer::from_gguf(&c).unwrap();
    assert!(t.stop_token_ids(&tok).contains(&tok.token_id("<|im_end|>").unwrap()));
    let ids = tok.encode_chat(&out);
    assert_eq!(ids[0], tok.token_id("<|im_start|>").unwrap());
}

#[test]
fn gemma3_without_template_uses_the_named_fallback() {
    let c = content(GEMMA);
    assert!(ChatTemplate::from_gguf(&c, None).is_err());
    let t = ChatTemplate::from_gguf(&c, Some("gemma")).unwrap();
    let msgs = [
        ChatMessage::system("You are my boss."),
        ChatMessage::user("Hi"),
        ChatMessage::assistant("Yes?"),
    ];
    let out = t.render(&msgs, true).unwrap();
    assert_eq!(
        out,
        "<start_of_turn>user\nYou are my boss.\n\nHi<end_of_turn>\n<start_of_turn>model\nYes?<end_of_turn>\n<start_of_turn>model\n"
    );
    let tok = Tokenizer::from_gguf(&c).unwrap();
    let ids = tok.encode_chat(&out);
    assert_eq!(ids[0], 2, "BOS added once");
    assert_eq!(ids[1], tok.token_id("<start_of_turn>").unwrap());
    assert_eq!(t.stop_token_ids(&tok), {
        let mut v = tok.eot_ids().to_vec();
        v.sort_unstable();
        v
    });
}

#[test]
fn unsupported_pre_in_real_metadata_is_named() {
    let mut c = content(SMOLLM);
    c.metadata.insert(
        "tokenizer.ggml.pre".into(),
        candle_core::quantized::gguf_file::Value::String("chatglm-bpe".into()),
    );
    let err = Tokenizer::from_gguf(&c).unwrap_err().to_string();
    assert!(err.contains("`chatglm-bpe`") && err.contains("tokenizer.ggml.pre"), "{err}");
}

/// SmolLM2's tokenizer.json (byte-level BPE, individual digits), rebuilt from the GGUF
/// metadata: the `tokenizers` path must agree with llama.cpp on the corpus too.
fn smollm2_tokenizer_json(c: &Content) -> serde_json::Value {
    use candle_core::quantized::gguf_file::Value as V;
    let arr = |k: &str| match &c.metadata[k] {
        V::Array(a) => a.clone(),
        _ => panic!("{k} is not an array"),
    };
    let tokens: Vec<String> =
        arr("tokenizer.ggml.tokens").iter().map(|v| v.to_string().unwrap().clone()).collect();
    let types: Vec<i32> =
        arr("tokenizer.ggml.token_type").iter().map(|v| v.to_i32().unwrap()).collect();
    let merges: Vec<String> =
        arr("tokenizer.ggml.merges").iter().map(|v| v.to_string().unwrap().clone()).collect();
    let vocab: serde_json::Map<String, serde_json::Value> =
        tokens.iter().enumerate().map(|(i, t)| (t.clone(), serde_json::json!(i))).collect();
    let added: Vec<serde_json::Value> = tokens
        .iter()
        .enumerate()
        .filter(|(i, _)| types[*i] == 3)
        .map(|(i, t)| {
            serde_json::json!({"id": i, "content": t, "single_word": false, "lstrip": false,
                               "rstrip": false, "normalized": false, "special": true})
        })
        .collect();
    let byte_level = serde_json::json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true});
    serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": true}, byte_level.clone()]},
        "post_processor": byte_level.clone(),
        "decoder": byte_level,
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                  "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false,
                  "vocab": vocab, "merges": merges}
    })
}

#[test]
fn tokenizer_json_beside_the_model_is_preferred_and_agrees() {
    let c = content(SMOLLM);
    let dir = tempfile::tempdir().unwrap();
    let fake_model = dir.path().join("model.gguf");
    // Without tokenizer.json: the metadata tokenizer.
    let from_meta = Tokenizer::for_model(&fake_model, &c).unwrap();
    std::fs::write(dir.path().join("tokenizer.json"), smollm2_tokenizer_json(&c).to_string())
        .unwrap();
    let tok = Tokenizer::for_model(&fake_model, &c).unwrap();
    assert!(format!("{tok:?}").contains("Hf"), "tokenizer.json beside the model was not used");
    assert_eq!(tok.bos_id(), Some(1));
    assert_eq!(tok.eos_id(), Some(2));
    assert_eq!(tok.eot_ids(), from_meta.eot_ids());
    let r = reference("smollm2");
    let mut failures = Vec::new();
    for case in &r.cases {
        for (parse_special, want) in [(false, &case.plain), (true, &case.special)] {
            let got = tok.encode(&case.text, false, parse_special);
            if &got != want {
                failures.push(format!(
                    "{:?} parse_special={parse_special}\n   ours: {got:?}\n  llama: {want:?}",
                    case.text
                ));
            }
        }
        if case.roundtrip_special {
            let mut d = tok.stream_decoder(false);
            let streamed: String =
                case.special.iter().map(|&id| d.push(id)).collect::<String>() + &d.finish();
            if streamed != case.text {
                failures.push(format!("{:?} streams back as {streamed:?}", case.text));
            }
        }
    }
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
    let bad = dir.path().join("broken.json");
    std::fs::write(&bad, "{ not json").unwrap();
    let err = Tokenizer::from_tokenizer_json(&bad).unwrap_err().to_string();
    assert!(err.contains("broken.json"), "{err}");
}
