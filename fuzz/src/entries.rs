// Fuzz entry points: each takes arbitrary bytes, feeds them to one of upward's parsers of
// untrusted input the way the program does, and must return (any error is fine) without
// panicking, hanging or exhausting memory. Shared by the cargo-fuzz targets (fuzz/) and the
// stable corpus replay (tests/fuzz_corpus.rs), which includes this file with `#[path]`.

use candle_core::quantized::gguf_file::Value;
use std::collections::HashMap;
use std::sync::OnceLock;
use upward::critique::{self, DraftKind, KindChoice};
use upward::engine::{Model, ModelConfig};
use upward::gguf::{ChatMessage, ChatTemplate, GgufFile, Tokenizer};
use upward::kb::KnowledgeBase;
use upward::lang::Lang;

/// Splits `data` at its first NUL byte (the second part empty when there is none).
fn split(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

fn conversation(text: &str) -> Vec<ChatMessage> {
    vec![
        ChatMessage::system("You are a boss."),
        ChatMessage::user(text),
        ChatMessage::assistant("Fine."),
        ChatMessage::user("And then?"),
    ]
}

/// A GGUF file: the header and metadata, the hyper-parameters and tensor shapes, the
/// tokenizer and chat template in the metadata, and, when all of those pass, the model
/// itself on one token.
pub fn gguf(data: &[u8]) {
    let Ok(file) = GgufFile::from_bytes("fuzz.gguf", data) else { return };
    if let Ok(tok) = Tokenizer::from_gguf(file.content()) {
        let ids = tok.encode("Hello 你好 <|im_end|>", true, true);
        let _ = tok.decode(&ids);
    }
    if let Ok(t) = ChatTemplate::from_gguf(file.content(), Some("chatml")) {
        let _ = t.render(&conversation("hi"), true);
    }
    let Ok(cfg) = ModelConfig::from_gguf(&file) else { return };
    if let Ok(mut model) = Model::load(&file, cfg, 16, &candle_core::Device::Cpu) {
        let _ = model.forward(&[0, 1]);
        let _ = model.forward(&[0]);
    }
}

/// GPT-2's byte-to-character map, as byte-level BPE vocabularies spell bytes.
fn byte_chars() -> Vec<char> {
    let mut n = 0;
    (0u32..256)
        .map(|b| {
            if (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b) {
                char::from_u32(b).unwrap()
            } else {
                n += 1;
                char::from_u32(255 + n).unwrap()
            }
        })
        .collect()
}

fn strings(v: &[String]) -> Value {
    Value::Array(v.iter().cloned().map(Value::String).collect())
}

/// A small byte-level BPE vocabulary (every byte, some merges, chat specials) using the
/// pre-tokenizer `pre`.
fn bpe_tokenizer(pre: &str) -> Tokenizer {
    let bc = byte_chars();
    let mut tokens: Vec<String> = bc.iter().map(|c| c.to_string()).collect();
    let g = bc[b' ' as usize];
    let merges: Vec<(String, String)> = vec![
        (g.to_string(), "t".into()),
        ("h".into(), "e".into()),
        (format!("{g}t"), "he".into()),
        ("i".into(), "n".into()),
        ("e".into(), "r".into()),
        (g.to_string(), "a".into()),
        ("1".into(), "2".into()),
        (bc[0xe4].to_string(), bc[0xbd].to_string()),
    ];
    for (a, b) in &merges {
        tokens.push(format!("{a}{b}"));
    }
    let mut types = vec![1i32; tokens.len()];
    for s in ["<|endoftext|>", "<|im_start|>", "<|im_end|>"] {
        tokens.push(s.into());
        types.push(3);
    }
    let mut md = HashMap::new();
    md.insert("tokenizer.ggml.model".to_string(), Value::String("gpt2".into()));
    md.insert("tokenizer.ggml.pre".to_string(), Value::String(pre.into()));
    md.insert("tokenizer.ggml.tokens".to_string(), strings(&tokens));
    md.insert(
        "tokenizer.ggml.token_type".to_string(),
        Value::Array(types.into_iter().map(Value::I32).collect()),
    );
    let merges: Vec<String> = merges.iter().map(|(a, b)| format!("{a} {b}")).collect();
    md.insert("tokenizer.ggml.merges".to_string(), strings(&merges));
    md.insert("tokenizer.ggml.eos_token_id".to_string(), Value::U32(258));
    Tokenizer::from_metadata(&md).expect("the fuzz BPE vocabulary is valid")
}

/// A small SentencePiece vocabulary with byte fallback.
fn spm_tokenizer() -> Tokenizer {
    let mut tokens: Vec<String> = vec!["<unk>".into(), "<s>".into(), "</s>".into()];
    let mut types = vec![2i32, 3, 3];
    for b in 0..=255u8 {
        tokens.push(format!("<0x{b:02X}>"));
        types.push(6);
    }
    for p in ["▁", "▁t", "he", "▁the", "in", "▁a", "你", "好", "▁你好", "<start_of_turn>"]
    {
        tokens.push(p.into());
        types.push(if p.starts_with('<') { 3 } else { 1 });
    }
    let scores = (0..tokens.len()).map(|i| Value::F32(-(i as f32))).collect();
    let mut md = HashMap::new();
    md.insert("tokenizer.ggml.model".to_string(), Value::String("llama".into()));
    md.insert("tokenizer.ggml.tokens".to_string(), strings(&tokens));
    md.insert(
        "tokenizer.ggml.token_type".to_string(),
        Value::Array(types.into_iter().map(Value::I32).collect()),
    );
    md.insert("tokenizer.ggml.scores".to_string(), Value::Array(scores));
    Tokenizer::from_metadata(&md).expect("the fuzz SentencePiece vocabulary is valid")
}

fn tokenizers() -> &'static [Tokenizer] {
    static TOKS: OnceLock<Vec<Tokenizer>> = OnceLock::new();
    TOKS.get_or_init(|| {
        let mut v: Vec<Tokenizer> = ["default", "llama-bpe", "qwen2", "smollm", "gpt-2"]
            .iter()
            .map(|p| bpe_tokenizer(p))
            .collect();
        v.push(spm_tokenizer());
        v
    })
}

/// Text through a tokenizer: encode with and without special-token parsing, decode whole
/// and streamed. Byte-level BPE must give the text back.
pub fn tokenizer(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else { return };
    let text = String::from_utf8_lossy(rest);
    let toks = tokenizers();
    let tok = &toks[sel as usize % toks.len()];
    let bpe = (sel as usize % toks.len()) + 1 < toks.len();
    let plain = tok.encode(&text, sel & 0x80 != 0, false);
    let decoded = tok.decode_with(&plain, true);
    if bpe && sel & 0x80 == 0 {
        assert_eq!(decoded, text, "byte-level BPE did not give the text back");
    }
    let special = tok.encode(&text, true, true);
    let mut stream = tok.stream_decoder(false);
    let mut streamed = String::new();
    for &id in &special {
        streamed.push_str(&stream.push(id));
    }
    streamed.push_str(&stream.finish());
    let _ = tok.decode(&special);
    // Ids the model may produce but the text did not: any id, in or out of the vocabulary.
    let ids: Vec<u32> = rest
        .chunks(2)
        .map(|c| u16::from_le_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32)
        .collect();
    let _ = tok.decode(&ids);
    let mut stream = tok.stream_decoder(true);
    for &id in &ids {
        let _ = stream.push(id);
    }
    let _ = stream.finish();
}

/// A chat template (the bytes before the first NUL) rendering a conversation whose user
/// message is the rest.
pub fn chat_template(data: &[u8]) {
    let (src, msg) = split(data);
    let src = String::from_utf8_lossy(src);
    let msg = String::from_utf8_lossy(msg);
    let Ok(t) = ChatTemplate::from_source("fuzz", &src, "<s>", "</s>") else { return };
    let _ = t.render(&conversation(&msg), true);
    let _ = t.render(&[], false);
    let _ = t.stop_strings();
}

/// A models.toml catalogue.
pub fn models_toml(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let base = std::env::temp_dir();
    if let Ok(cat) = upward::catalogue::Catalogue::parse(&text, "fuzz.toml", Some(&base)) {
        for e in cat.entries() {
            let _ = e.supports_language("zh");
            for src in &e.sources {
                let _ = (src.label(), src.kind());
            }
        }
        let _ = cat.get("nonexistent");
    }
}

/// The real transcript, which quotes in knowledge files must be verbatim substrings of.
const TRANSCRIPT: &str = include_str!("../../knowledge/source/transcript-zh.txt");

/// A knowledge base with one principle file (the bytes before the first NUL) and one
/// scenario file (the rest): checked as `upward kb check` does, loaded, and searched.
pub fn knowledge(data: &[u8]) {
    let (principle, scenario) = split(data);
    let dir = tempfile::tempdir().expect("a temporary folder");
    let root = dir.path();
    for sub in ["principles", "scenarios", "source"] {
        std::fs::create_dir(root.join(sub)).expect("a temporary folder");
    }
    std::fs::write(root.join("source/transcript-zh.txt"), TRANSCRIPT).unwrap();
    std::fs::write(root.join("principles/fuzz.toml"), principle).unwrap();
    if !scenario.is_empty() {
        std::fs::write(root.join("scenarios/fuzz.toml"), scenario).unwrap();
    }
    let _ = upward::kb::check_dir(root);
    if let Ok(kb) = KnowledgeBase::load_dir(root) {
        let _ = kb.search("怎么感谢领导 thanks", None, 5);
        let _ = kb.search("", Some(Lang::En), 5);
    }
}

fn builtin_kb() -> &'static KnowledgeBase {
    static KB: OnceLock<KnowledgeBase> = OnceLock::new();
    KB.get_or_init(|| KnowledgeBase::builtin().expect("the built-in knowledge base is valid"))
}

/// A draft through the rule-based critique: kind detection, every detector in both
/// languages, the score, and the deterministic rewrite.
pub fn critique(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let kb = builtin_kb();
    if let Ok(c) = critique::critique(&text, KindChoice::Auto, None, kb) {
        let verdicts: Vec<(critique::Criterion, critique::Status)> =
            c.criteria.iter().map(|r| (r.id, r.status)).collect();
        let _ = critique::deterministic_rewrite(&text, c.kind, c.lang, &verdicts);
        let _ = critique::render::render(&c, &upward::render::Painter::new(false), 80);
    }
    for kind in [DraftKind::Help, DraftKind::Thanks] {
        for lang in [Lang::Zh, Lang::En] {
            let _ = critique::assess(&text, kind, lang);
        }
    }
    let _ = critique::extract_facts(&text);
}
