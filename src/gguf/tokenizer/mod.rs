//! Tokenizers for GGUF models: built from the GGUF metadata (`tokenizer.ggml.*`) exactly as
//! llama.cpp builds them, or from a `tokenizer.json` that sits beside the model.
//!
//! Two GGUF vocabulary kinds are supported: byte-level BPE (`gpt2`, with the pre-tokenizer
//! named by `tokenizer.ggml.pre`) and SentencePiece (`llama`, scores and byte fallback).
//! Anything else is a clear error, never a silent fallback.

mod bpe;
mod pretok;
mod spm;

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::{Content, Value};

use bpe::Bpe;
use pretok::PreTokenizer;
use spm::Spm;

/// Token types as GGUF stores them (`tokenizer.ggml.token_type`).
mod ttype {
    pub const NORMAL: u8 = 1;
    pub const UNKNOWN: u8 = 2;
    pub const CONTROL: u8 = 3;
    pub const USER_DEFINED: u8 = 4;
    pub const UNUSED: u8 = 5;
    pub const BYTE: u8 = 6;
}

/// Texts that end a turn: llama.cpp's end-of-generation list. Like llama.cpp, a vocabulary
/// token with one of these texts becomes a control token (so `</s>` in Gemma's vocabulary,
/// typed as text there, is only matched with `parse_special`) and ends generation.
const EOG_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<|flush|>",
    "<|calls|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "</s>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "[EOS]",
    "<|end_of_text|>",
    "<end_of_utterance>",
    "<eos>",
    "<turn|>",
    "<|tool_response>",
];

/// Why a tokenizer could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    /// A required metadata key is absent.
    #[error("GGUF metadata has no `{0}`: this file carries no usable tokenizer; put the model's tokenizer.json beside it")]
    MissingKey(String),
    /// A metadata key holds the wrong type.
    #[error("GGUF metadata `{key}` is malformed: {msg}")]
    BadValue {
        /// The metadata key.
        key: String,
        /// What is wrong with it.
        msg: String,
    },
    /// `tokenizer.ggml.model` names a vocabulary kind we do not implement.
    #[error("unsupported tokenizer model `{0}` (tokenizer.ggml.model); supported: `gpt2` (byte-level BPE) and `llama` (SentencePiece); put the model's tokenizer.json beside it to use that instead")]
    UnsupportedModel(String),
    /// `tokenizer.ggml.pre` names a pre-tokenizer we do not implement.
    #[error("unsupported pre-tokenizer `{0}` (tokenizer.ggml.pre); supported: default, gpt2, smollm, qwen2, llama-bpe/llama3 and their aliases; put the model's tokenizer.json beside it to use that instead")]
    UnsupportedPre(String),
    /// The vocabulary is inconsistent.
    #[error("invalid tokenizer: {0}")]
    Invalid(String),
    /// A tokenizer.json could not be loaded.
    #[error("cannot load tokenizer {path}: {msg}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The loader's message.
        msg: String,
    },
    /// Encoding through a tokenizer.json failed.
    #[error("tokenizer.json encoding failed: {0}")]
    Encode(String),
}

// ---------------------------------------------------------------------------------------------
// Fast hashing for the hot paths (FxHash: a rotate, xor and multiply per word).

#[derive(Default, Clone, Copy)]
pub(crate) struct Fx(u64);

const FX_K: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl Fx {
    #[inline]
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(FX_K);
    }
}

impl Hasher for Fx {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut buf = [0u8; 8];
            buf[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(buf));
        }
        self.add(bytes.len() as u64);
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(i as u64);
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(i as u64);
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

pub(crate) type FxBuild = BuildHasherDefault<Fx>;

/// A 64-bit hash of a token text, well mixed (used as the vocabulary index key).
#[inline]
fn text_hash(s: &str) -> u64 {
    let mut h = Fx::default();
    h.write(s.as_bytes());
    let mut x = h.0;
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x
}

// ---------------------------------------------------------------------------------------------
// The vocabulary: all token texts in one buffer, indexed by hash.

/// Token texts and types, with a text → id index (the last id wins on duplicates, as in
/// llama.cpp).
#[derive(Debug)]
pub(crate) struct Vocab {
    text: String,
    offsets: Vec<u32>,
    types: Vec<u8>,
    index: HashMap<u64, u32, FxBuild>,
    collisions: HashMap<Box<str>, u32>,
}

impl Vocab {
    fn new<'a>(tokens: impl ExactSizeIterator<Item = &'a str>, types: Vec<u8>) -> Self {
        let n = tokens.len();
        let mut v = Vocab {
            text: String::with_capacity(n * 8),
            offsets: Vec::with_capacity(n + 1),
            types,
            index: HashMap::with_capacity_and_hasher(n, FxBuild::default()),
            collisions: HashMap::new(),
        };
        v.offsets.push(0);
        for (id, t) in tokens.enumerate() {
            v.text.push_str(t);
            v.offsets.push(v.text.len() as u32);
            let h = text_hash(t);
            match v.index.get(&h).copied() {
                Some(other) if v.token_text(other) != t => {
                    v.collisions.insert(t.into(), id as u32);
                }
                _ => {
                    v.index.insert(h, id as u32);
                }
            }
        }
        v.types.resize(n, ttype::NORMAL);
        v
    }

    fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    fn token_text(&self, id: u32) -> &str {
        let i = id as usize;
        &self.text[self.offsets[i] as usize..self.offsets[i + 1] as usize]
    }

    fn ttype(&self, id: u32) -> u8 {
        self.types.get(id as usize).copied().unwrap_or(ttype::NORMAL)
    }

    #[inline]
    pub(crate) fn lookup(&self, s: &str) -> Option<u32> {
        if let Some(&id) = self.index.get(&text_hash(s)) {
            if self.token_text(id) == s {
                return Some(id);
            }
        }
        if self.collisions.is_empty() {
            None
        } else {
            self.collisions.get(s).copied()
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Special-token matching: a byte trie finds which special tokens occur in a text; they are then
// split out longest first, as llama.cpp does.

#[derive(Debug, Default)]
struct TrieNode {
    children: Vec<(u8, u32)>,
    token: Option<u32>,
}

#[derive(Debug, Default)]
struct SpecialMatcher {
    nodes: Vec<TrieNode>,
}

impl SpecialMatcher {
    fn new(vocab: &Vocab) -> Self {
        let mut m = SpecialMatcher { nodes: vec![TrieNode::default()] };
        for id in 0..vocab.len() as u32 {
            let t = vocab.ttype(id);
            if !matches!(t, ttype::CONTROL | ttype::USER_DEFINED | ttype::UNKNOWN) {
                continue;
            }
            let text = vocab.token_text(id);
            if text.is_empty() {
                continue;
            }
            let mut node = 0usize;
            for &b in text.as_bytes() {
                node = match m.nodes[node].children.iter().find(|(c, _)| *c == b) {
                    Some(&(_, n)) => n as usize,
                    None => {
                        let n = m.nodes.len();
                        m.nodes.push(TrieNode::default());
                        m.nodes[node].children.push((b, n as u32));
                        n
                    }
                };
            }
            m.nodes[node].token = Some(id);
        }
        m
    }

    /// Special tokens whose text occurs somewhere in `text`.
    fn present(&self, text: &[u8]) -> Vec<u32> {
        let mut found = Vec::new();
        if self.nodes[0].children.is_empty() {
            return found;
        }
        for i in 0..text.len() {
            let mut node = 0usize;
            for &b in &text[i..] {
                match self.nodes[node].children.iter().find(|(c, _)| *c == b) {
                    Some(&(_, n)) => node = n as usize,
                    None => break,
                }
                if let Some(id) = self.nodes[node].token {
                    found.push(id);
                }
            }
        }
        found.sort_unstable();
        found.dedup();
        found
    }
}

enum Frag {
    Raw(usize, usize),
    Token(u32),
}

// ---------------------------------------------------------------------------------------------
// Metadata access.

fn meta<'a>(md: &'a HashMap<String, Value>, key: &str) -> Option<&'a Value> {
    md.get(key)
}

fn bad(key: &str, msg: impl Into<String>) -> TokenizerError {
    TokenizerError::BadValue { key: key.to_string(), msg: msg.into() }
}

fn meta_str<'a>(
    md: &'a HashMap<String, Value>,
    key: &str,
) -> Result<Option<&'a str>, TokenizerError> {
    match meta(md, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(v) => Err(bad(key, format!("expected a string, found {:?}", v.value_type()))),
    }
}

fn meta_id(md: &HashMap<String, Value>, key: &str) -> Result<Option<u32>, TokenizerError> {
    let v = match meta(md, key) {
        None => return Ok(None),
        Some(v) => v,
    };
    let n: i64 = match v {
        Value::U8(x) => *x as i64,
        Value::I8(x) => *x as i64,
        Value::U16(x) => *x as i64,
        Value::I16(x) => *x as i64,
        Value::U32(x) => *x as i64,
        Value::I32(x) => *x as i64,
        Value::U64(x) => *x as i64,
        Value::I64(x) => *x,
        other => {
            return Err(bad(key, format!("expected an integer, found {:?}", other.value_type())))
        }
    };
    // llama.cpp stores "no token" as -1.
    if n < 0 {
        return Ok(None);
    }
    u32::try_from(n).map(Some).map_err(|_| bad(key, format!("{n} is not a token id")))
}

fn meta_bool(md: &HashMap<String, Value>, key: &str) -> Result<Option<bool>, TokenizerError> {
    match meta(md, key) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(v) => Err(bad(key, format!("expected a bool, found {:?}", v.value_type()))),
    }
}

fn meta_array<'a>(
    md: &'a HashMap<String, Value>,
    key: &str,
) -> Result<Option<&'a [Value]>, TokenizerError> {
    match meta(md, key) {
        None => Ok(None),
        Some(Value::Array(a)) => Ok(Some(a)),
        Some(v) => Err(bad(key, format!("expected an array, found {:?}", v.value_type()))),
    }
}

// ---------------------------------------------------------------------------------------------

#[derive(Debug)]
enum Model {
    Bpe(Box<Bpe>),
    Spm(Box<Spm>),
}

#[derive(Debug)]
struct GgufTok {
    vocab: Vocab,
    model: Model,
    specials: SpecialMatcher,
    add_space_prefix: bool,
}

/// A tokenizer.json tokenizer (Hugging Face `tokenizers`).
struct HfTok {
    /// Matches special tokens in the text.
    parse: tokenizers::Tokenizer,
    /// Treats special tokens as plain text.
    plain: tokenizers::Tokenizer,
    byte_level: bool,
    char_bytes: Vec<i16>,
    added: HashMap<u32, (String, bool)>,
}

impl std::fmt::Debug for HfTok {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HfTok").field("byte_level", &self.byte_level).finish_non_exhaustive()
    }
}

#[derive(Debug)]
enum Inner {
    Gguf(Box<GgufTok>),
    Hf(Box<HfTok>),
}

/// A tokenizer: text ↔ token ids, with the model's special tokens.
#[derive(Debug)]
pub struct Tokenizer {
    inner: Inner,
    bos: Option<u32>,
    eos: Option<u32>,
    eot_ids: Vec<u32>,
    add_bos: bool,
    add_eos: bool,
}

impl Tokenizer {
    /// Build the tokenizer embedded in a GGUF file's metadata.
    pub fn from_gguf(content: &Content) -> Result<Tokenizer, TokenizerError> {
        Self::from_metadata(&content.metadata)
    }

    /// Build the tokenizer from a GGUF metadata map (`tokenizer.ggml.*` keys).
    pub fn from_metadata(md: &HashMap<String, Value>) -> Result<Tokenizer, TokenizerError> {
        let model_name = meta_str(md, "tokenizer.ggml.model")?
            .ok_or_else(|| TokenizerError::MissingKey("tokenizer.ggml.model".into()))?;
        if model_name != "gpt2" && model_name != "llama" {
            return Err(TokenizerError::UnsupportedModel(model_name.to_string()));
        }
        let tokens = meta_array(md, "tokenizer.ggml.tokens")?
            .ok_or_else(|| TokenizerError::MissingKey("tokenizer.ggml.tokens".into()))?;
        let texts = tokens
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::String(s) => Ok(s.as_str()),
                _ => Err(bad("tokenizer.ggml.tokens", format!("entry {i} is not a string"))),
            })
            .collect::<Result<Vec<&str>, _>>()?;
        if texts.is_empty() {
            return Err(bad("tokenizer.ggml.tokens", "the vocabulary is empty"));
        }
        let types = match meta_array(md, "tokenizer.ggml.token_type")? {
            None => vec![ttype::NORMAL; texts.len()],
            Some(a) => a
                .iter()
                .map(|v| match v {
                    Value::I32(x) => *x as u8,
                    Value::U32(x) => *x as u8,
                    Value::I8(x) => *x as u8,
                    Value::U8(x) => *x,
                    Value::I16(x) => *x as u8,
                    Value::U16(x) => *x as u8,
                    _ => ttype::NORMAL,
                })
                .collect(),
        };
        let mut vocab = Vocab::new(texts.iter().copied(), types);
        let eog_in_vocab: Vec<u32> = EOG_TEXTS.iter().filter_map(|t| vocab.lookup(t)).collect();
        for &id in &eog_in_vocab {
            vocab.types[id as usize] = ttype::CONTROL;
        }
        let n = vocab.len() as u32;
        let check = |key: &str, id: Option<u32>| -> Result<Option<u32>, TokenizerError> {
            match id {
                Some(i) if i >= n => {
                    Err(bad(key, format!("token id {i} is outside the vocabulary of {n}")))
                }
                other => Ok(other),
            }
        };

        let (model, default_bos, default_eos, mut add_bos, add_space_default) = if model_name
            == "gpt2"
        {
            let pre = meta_str(md, "tokenizer.ggml.pre")?.unwrap_or("default");
            let merges = meta_array(md, "tokenizer.ggml.merges")?
                .ok_or_else(|| TokenizerError::MissingKey("tokenizer.ggml.merges".into()))?;
            let merges = merges
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::String(s) => Ok(s.as_str()),
                    _ => Err(bad("tokenizer.ggml.merges", format!("entry {i} is not a string"))),
                })
                .collect::<Result<Vec<&str>, _>>()?;
            let add_bos =
                matches!(pre, "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "pixtral");
            let bpe = Bpe::new(&vocab, merges.into_iter(), pre)?;
            (Model::Bpe(Box::new(bpe)), Some(11), Some(11), add_bos, false)
        } else {
            let scores = match meta_array(md, "tokenizer.ggml.scores")? {
                None => Vec::new(),
                Some(a) => a
                    .iter()
                    .map(|v| match v {
                        Value::F32(x) => *x,
                        Value::F64(x) => *x as f32,
                        _ => 0.0,
                    })
                    .collect(),
            };
            let unk = check(
                "tokenizer.ggml.unknown_token_id",
                meta_id(md, "tokenizer.ggml.unknown_token_id")?,
            )?;
            let spm = Spm::new(&vocab, scores, unk.or(Some(0)));
            (Model::Spm(Box::new(spm)), Some(1), Some(2), true, true)
        };
        let bos = match meta(md, "tokenizer.ggml.bos_token_id") {
            Some(_) => {
                check("tokenizer.ggml.bos_token_id", meta_id(md, "tokenizer.ggml.bos_token_id")?)?
            }
            None => default_bos.filter(|&i| i < n),
        };
        let eos = match meta(md, "tokenizer.ggml.eos_token_id") {
            Some(_) => {
                check("tokenizer.ggml.eos_token_id", meta_id(md, "tokenizer.ggml.eos_token_id")?)?
            }
            None => default_eos.filter(|&i| i < n),
        };
        if let Some(b) = meta_bool(md, "tokenizer.ggml.add_bos_token")? {
            add_bos = b;
        }
        let add_eos = meta_bool(md, "tokenizer.ggml.add_eos_token")?.unwrap_or(false);
        let add_space_prefix =
            meta_bool(md, "tokenizer.ggml.add_space_prefix")?.unwrap_or(add_space_default);

        let mut eot_ids = Vec::new();
        eot_ids.extend(eos);
        for key in ["tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"] {
            eot_ids.extend(check(key, meta_id(md, key)?)?);
        }
        eot_ids.extend_from_slice(&eog_in_vocab);
        eot_ids.sort_unstable();
        eot_ids.dedup();

        let specials = SpecialMatcher::new(&vocab);
        Ok(Tokenizer {
            inner: Inner::Gguf(Box::new(GgufTok { vocab, model, specials, add_space_prefix })),
            bos,
            eos,
            eot_ids,
            add_bos,
            add_eos,
        })
    }

    /// Load a Hugging Face `tokenizer.json`. Special ids are guessed from its added tokens;
    /// [`Tokenizer::for_model`] takes them from the GGUF metadata instead.
    pub fn from_tokenizer_json(path: impl AsRef<Path>) -> Result<Tokenizer, TokenizerError> {
        let path = path.as_ref();
        let json_err = |msg: String| TokenizerError::Json { path: path.to_path_buf(), msg };
        let parse = tokenizers::Tokenizer::from_file(path).map_err(|e| json_err(e.to_string()))?;
        let mut plain = parse.clone();
        plain.set_encode_special_tokens(true);
        let byte_level = match parse.get_decoder() {
            Some(tokenizers::DecoderWrapper::ByteLevel(_)) => true,
            Some(d) => serde_json::to_string(d).is_ok_and(|s| s.contains("\"ByteLevel\"")),
            None => false,
        };
        let added: HashMap<u32, (String, bool)> = parse
            .get_added_tokens_decoder()
            .into_iter()
            .map(|(id, t)| (id, (t.content.clone(), t.special)))
            .collect();
        let find = |names: &[&str]| names.iter().find_map(|n| parse.token_to_id(n));
        let bos = find(&["<bos>", "<s>", "<|begin_of_text|>", "<|startoftext|>"]);
        let eos = find(&["<eos>", "</s>", "<|end_of_text|>", "<|endoftext|>", "<|im_end|>"]);
        let mut eot_ids: Vec<u32> = eos.into_iter().collect();
        eot_ids.extend(EOG_TEXTS.iter().filter_map(|t| parse.token_to_id(t)));
        eot_ids.sort_unstable();
        eot_ids.dedup();
        Ok(Tokenizer {
            inner: Inner::Hf(Box::new(HfTok {
                parse,
                plain,
                byte_level,
                char_bytes: bpe::char_to_byte_table(),
                added,
            })),
            bos,
            eos,
            eot_ids,
            add_bos: false,
            add_eos: false,
        })
    }

    /// The tokenizer for a model file: `tokenizer.json` beside it when present (with the
    /// special ids from the GGUF metadata), else the one in its metadata.
    pub fn for_model(
        gguf_path: impl AsRef<Path>,
        content: &Content,
    ) -> Result<Tokenizer, TokenizerError> {
        let json = gguf_path.as_ref().with_file_name("tokenizer.json");
        if !json.is_file() {
            return Self::from_gguf(content);
        }
        let mut tok = Self::from_tokenizer_json(&json)?;
        let md = &content.metadata;
        if let Some(b) = meta_id(md, "tokenizer.ggml.bos_token_id")? {
            tok.bos = Some(b);
        }
        if let Some(e) = meta_id(md, "tokenizer.ggml.eos_token_id")? {
            tok.eos = Some(e);
            tok.eot_ids.push(e);
        }
        for key in ["tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"] {
            tok.eot_ids.extend(meta_id(md, key)?);
        }
        tok.eot_ids.sort_unstable();
        tok.eot_ids.dedup();
        Ok(tok)
    }

    /// Text → ids. `add_special` adds BOS/EOS where the model asks for them
    /// (`tokenizer.ggml.add_bos_token` / `add_eos_token`); `parse_special` matches control
    /// tokens written in the text (chat prompts); otherwise they are plain text.
    pub fn encode(&self, text: &str, add_special: bool, parse_special: bool) -> Vec<u32> {
        match &self.inner {
            Inner::Gguf(g) => self.encode_gguf(g, text, add_special, parse_special),
            Inner::Hf(h) => {
                let t = if parse_special { &h.parse } else { &h.plain };
                match t.encode(text, add_special) {
                    Ok(enc) => enc.get_ids().to_vec(),
                    // The tokenizers crate only fails on a broken tokenizer.json; there is no
                    // partial result to return, so encode what we can byte by byte.
                    Err(_) => Vec::new(),
                }
            }
        }
    }

    /// Encode a rendered chat prompt: special tokens parsed, BOS added per the model, and a
    /// BOS that the template already wrote is not doubled.
    pub fn encode_chat(&self, prompt: &str) -> Vec<u32> {
        let mut ids = self.encode(prompt, true, true);
        if let Some(b) = self.bos {
            if self.add_bos && ids.len() >= 2 && ids[0] == b && ids[1] == b {
                ids.remove(0);
            }
        }
        ids
    }

    fn encode_gguf(
        &self,
        g: &GgufTok,
        text: &str,
        add_special: bool,
        parse_special: bool,
    ) -> Vec<u32> {
        let mut out = Vec::with_capacity(text.len() / 3 + 2);
        if add_special && self.add_bos {
            out.extend(self.bos);
        }
        let frags = partition(g, text, parse_special);
        let mut prev_special = true;
        let mut escaped = String::new();
        for f in frags {
            match f {
                Frag::Token(id) => {
                    out.push(id);
                    prev_special = true;
                }
                Frag::Raw(s, e) => {
                    let raw = &text[s..e];
                    match &g.model {
                        Model::Bpe(b) => b.encode_fragment(&g.vocab, raw, &mut out),
                        Model::Spm(m) => {
                            escaped.clear();
                            if g.add_space_prefix && prev_special {
                                escaped.push('▁');
                            }
                            for c in raw.chars() {
                                escaped.push(if c == ' ' { '▁' } else { c });
                            }
                            m.encode_fragment(&g.vocab, &escaped, &mut out);
                        }
                    }
                    prev_special = false;
                }
            }
        }
        if add_special && self.add_eos {
            out.extend(self.eos);
        }
        out
    }

    /// Ids → text (special tokens are written as their text; invalid UTF-8 becomes U+FFFD).
    pub fn decode(&self, ids: &[u32]) -> String {
        self.decode_with(ids, false)
    }

    /// Ids → text, leaving out control tokens when `skip_special`.
    pub fn decode_with(&self, ids: &[u32], skip_special: bool) -> String {
        if let Inner::Hf(h) = &self.inner {
            if let Ok(s) = h.parse.decode(ids, skip_special) {
                return s;
            }
        }
        let mut bytes = Vec::new();
        let mut strip = self.strips_prefix_space();
        for &id in ids {
            if skip_special && self.is_special(id) {
                continue;
            }
            self.push_token_bytes(id, &mut bytes);
            if strip && !bytes.is_empty() {
                // SentencePiece with add_space_prefix: the space encode added comes off again.
                strip = false;
                if bytes[0] == b' ' {
                    bytes.remove(0);
                }
            }
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Whether decoding drops the space that encoding put before the text.
    fn strips_prefix_space(&self) -> bool {
        matches!(&self.inner, Inner::Gguf(g) if g.add_space_prefix && matches!(g.model, Model::Spm(_)))
    }

    /// The raw bytes one token stands for (possibly part of a UTF-8 character); empty for an
    /// unknown id.
    pub fn token_bytes(&self, id: u32) -> Vec<u8> {
        let mut out = Vec::new();
        self.push_token_bytes(id, &mut out);
        out
    }

    fn push_token_bytes(&self, id: u32, out: &mut Vec<u8>) {
        match &self.inner {
            Inner::Gguf(g) => {
                if id as usize >= g.vocab.len() {
                    return;
                }
                let text = g.vocab.token_text(id);
                match g.vocab.ttype(id) {
                    ttype::NORMAL | ttype::UNUSED => match &g.model {
                        Model::Bpe(b) => b.decode_text(text, out),
                        Model::Spm(_) => {
                            for c in text.chars() {
                                let mut buf = [0u8; 4];
                                let c = if c == '▁' { ' ' } else { c };
                                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                            }
                        }
                    },
                    ttype::BYTE => match Spm::byte_of(text) {
                        Some(b) => out.push(b),
                        None => out.extend_from_slice(text.as_bytes()),
                    },
                    _ => out.extend_from_slice(text.as_bytes()),
                }
            }
            Inner::Hf(h) => {
                if let Some((text, _)) = h.added.get(&id) {
                    out.extend_from_slice(text.as_bytes());
                    return;
                }
                let Some(text) = h.parse.id_to_token(id) else {
                    return;
                };
                if let Some(b) = Spm::byte_of(&text) {
                    out.push(b);
                } else if h.byte_level {
                    for c in text.chars() {
                        match h.char_bytes.get(c as usize) {
                            Some(&b) if b >= 0 => out.push(b as u8),
                            _ => {
                                let mut buf = [0u8; 4];
                                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                            }
                        }
                    }
                } else {
                    out.extend_from_slice(text.replace('▁', " ").as_bytes());
                }
            }
        }
    }

    /// The beginning-of-sequence token.
    pub fn bos_id(&self) -> Option<u32> {
        self.bos
    }

    /// The end-of-sequence token.
    pub fn eos_id(&self) -> Option<u32> {
        self.eos
    }

    /// Ids that end a turn: eos, eot/eom from metadata, and `<|im_end|>`, `<end_of_turn>`,
    /// `<|endoftext|>`, `<|eot_id|>`… when the vocabulary has them. Sorted.
    pub fn eot_ids(&self) -> &[u32] {
        &self.eot_ids
    }

    /// Whether the model wants BOS added when encoding with `add_special`.
    pub fn adds_bos(&self) -> bool {
        self.add_bos
    }

    /// The id of a token written exactly as `text` (e.g. `"<|im_end|>"`).
    pub fn token_id(&self, text: &str) -> Option<u32> {
        match &self.inner {
            Inner::Gguf(g) => g.vocab.lookup(text),
            Inner::Hf(h) => h.parse.token_to_id(text),
        }
    }

    /// Number of tokens in the vocabulary.
    pub fn vocab_size(&self) -> usize {
        match &self.inner {
            Inner::Gguf(g) => g.vocab.len(),
            Inner::Hf(h) => h.parse.get_vocab_size(true),
        }
    }

    /// Whether `id` is a control token (bos, eos, `<|im_start|>`…), not text.
    pub fn is_special(&self, id: u32) -> bool {
        match &self.inner {
            Inner::Gguf(g) => {
                (id as usize) < g.vocab.len()
                    && matches!(g.vocab.ttype(id), ttype::CONTROL | ttype::UNKNOWN)
            }
            Inner::Hf(h) => h.added.get(&id).is_some_and(|(_, special)| *special),
        }
    }

    /// A decoder that turns ids into text as they are generated.
    pub fn stream_decoder(&self, skip_special: bool) -> StreamDecoder<'_> {
        StreamDecoder { tok: self, pending: Vec::new(), skip_special, started: false }
    }
}

/// Split `text` at the special tokens it contains, longest tokens first (llama.cpp's
/// `tokenizer_st_partition`). User-defined tokens always split; control and unknown tokens
/// only when `parse_special`.
fn partition(g: &GgufTok, text: &str, parse_special: bool) -> Vec<Frag> {
    let mut frags = vec![Frag::Raw(0, text.len())];
    if text.is_empty() {
        return Vec::new();
    }
    let mut present = g.specials.present(text.as_bytes());
    present.retain(|&id| parse_special || g.vocab.ttype(id) == ttype::USER_DEFINED);
    present.sort_by_key(|&id| (std::cmp::Reverse(g.vocab.token_text(id).len()), id));
    for id in present {
        let pat = g.vocab.token_text(id);
        let mut next = Vec::with_capacity(frags.len() + 2);
        for f in frags {
            match f {
                Frag::Raw(s, e) => {
                    let mut pos = s;
                    while let Some(i) = text[pos..e].find(pat) {
                        let at = pos + i;
                        if at > pos {
                            next.push(Frag::Raw(pos, at));
                        }
                        next.push(Frag::Token(id));
                        pos = at + pat.len();
                    }
                    if pos < e {
                        next.push(Frag::Raw(pos, e));
                    }
                }
                tok => next.push(tok),
            }
        }
        frags = next;
    }
    frags
}

/// Turns token ids into text one at a time, yielding text only at complete UTF-8 characters
/// (a CJK character or emoji split over several byte tokens comes out whole).
#[derive(Debug)]
pub struct StreamDecoder<'a> {
    tok: &'a Tokenizer,
    pending: Vec<u8>,
    skip_special: bool,
    started: bool,
}

impl StreamDecoder<'_> {
    /// Add one id; returns the text completed by it (possibly empty).
    pub fn push(&mut self, id: u32) -> String {
        if self.skip_special && self.tok.is_special(id) {
            return String::new();
        }
        let before = self.pending.len();
        self.tok.push_token_bytes(id, &mut self.pending);
        if !self.started && self.pending.len() > before {
            self.started = true;
            if self.tok.strips_prefix_space() && self.pending.first() == Some(&b' ') {
                self.pending.remove(0);
            }
        }
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(s) => {
                    out.push_str(s);
                    self.pending.clear();
                    break;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    // Safe: the prefix up to `valid` is valid UTF-8.
                    out.push_str(std::str::from_utf8(&self.pending[..valid]).unwrap_or_default());
                    match e.error_len() {
                        // Bytes that can never be part of a character: left out (a U+FFFD
                        // in a reply helps nobody).
                        Some(bad) => {
                            self.pending.drain(..valid + bad);
                        }
                        // An incomplete character at the end: wait for more bytes.
                        None => {
                            self.pending.drain(..valid);
                            break;
                        }
                    }
                }
            }
        }
        out
    }

    /// Whether pushing `id` keeps the text valid UTF-8: its bytes continue the incomplete
    /// character held back (if any) and hold no invalid sequence; an unfinished character
    /// at its end is fine. Generation uses it to resample a token that would split a
    /// character.
    pub fn accepts(&self, id: u32) -> bool {
        if self.skip_special && self.tok.is_special(id) {
            return true;
        }
        let mut bytes = self.pending.clone();
        self.tok.push_token_bytes(id, &mut bytes);
        match std::str::from_utf8(&bytes) {
            Ok(_) => true,
            Err(e) => e.error_len().is_none(),
        }
    }

    /// Forgets the bytes of an incomplete character held back.
    pub fn discard_partial(&mut self) {
        self.pending.clear();
    }

    /// Flush what is left. An incomplete character (generation stopped inside it) is left
    /// out rather than shown as U+FFFD.
    pub fn finish(&mut self) -> String {
        let valid = match std::str::from_utf8(&self.pending) {
            Ok(s) => s.len(),
            Err(e) => e.valid_up_to(),
        };
        let s = String::from_utf8_lossy(&self.pending[..valid]).into_owned();
        self.pending.clear();
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        md.insert(
            "tokenizer.ggml.tokens".into(),
            Value::Array(tokens.iter().map(|t| s(t)).collect()),
        );
        md.insert("tokenizer.ggml.token_type".into(), Value::Array(types));
        md.insert(
            "tokenizer.ggml.merges".into(),
            Value::Array(merges.iter().map(|m| s(m)).collect()),
        );
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
        assert_eq!(
            tok.encode("hello<|im_end|>", false, true),
            vec![tok.token_id("hello").unwrap(), 1]
        );
        let plain = tok.encode("hello<|im_end|>", false, false);
        assert!(!plain.contains(&1));
        assert_eq!(tok.decode(&plain), "hello<|im_end|>");
        assert!(tok.is_special(1));
        assert_eq!(tok.decode_with(&[tok.token_id("hello").unwrap(), 1], true), "hello");
    }

    #[test]
    fn unknown_model_and_pre_are_named() {
        let err = Tokenizer::from_metadata(&tiny_bpe("no-such-pre")).unwrap_err();
        assert!(
            matches!(err, TokenizerError::UnsupportedPre(ref p) if p == "no-such-pre"),
            "{err}"
        );
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
        let pieces =
            [("▁", -1.0), ("h", -2.0), ("i", -2.0), ("▁h", -1.5), ("▁hi", -0.5), ("hi", -3.0)];
        tokens.extend(pieces.iter().map(|(p, _)| p.to_string()));
        let mut types = vec![Value::I32(2), Value::I32(3), Value::I32(3)];
        types.extend((0..256).map(|_| Value::I32(6)));
        types.extend(pieces.iter().map(|_| Value::I32(1)));
        let mut scores = vec![Value::F32(0.0); 3 + 256];
        scores.extend(pieces.iter().map(|(_, sc)| Value::F32(*sc)));
        let mut md = HashMap::new();
        md.insert("tokenizer.ggml.model".into(), s("llama"));
        md.insert(
            "tokenizer.ggml.tokens".into(),
            Value::Array(tokens.iter().map(|t| s(t)).collect()),
        );
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
}
