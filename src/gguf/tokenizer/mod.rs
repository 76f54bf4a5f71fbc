//! Tokenizers for GGUF models: built from the GGUF metadata (`tokenizer.ggml.*`) exactly as
//! llama.cpp builds them, or from a `tokenizer.json` that sits beside the model.
//!
//! Two GGUF vocabulary kinds are supported: byte-level BPE (`gpt2`, with the pre-tokenizer
//! named by `tokenizer.ggml.pre`) and SentencePiece (`llama`, scores and byte fallback).
//! Anything else is a clear error, never a silent fallback.
//!
//! One concern per file:
//! - `load`: the vocabulary, special ids and flags from `tokenizer.ggml.*`;
//! - `vocab`: token texts and types, special-token matching and splitting;
//! - `bpe` (merges) with `pretok` (llama.cpp's pre-tokenizer regexes), and `spm`
//!   (SentencePiece scores, byte fallback);
//! - `hf`: a `tokenizer.json` beside the model instead;
//! - `encode` and `decode` (bytes of each token, byte-level and byte-fallback decoding);
//! - `stream`: the streaming decoder that emits whole UTF-8 characters;
//! - `hash`: the fast hash of the vocabulary index and merge tables.

mod bpe;
mod decode;
mod encode;
mod hash;
mod hf;
mod load;
mod pretok;
mod spm;
mod stream;
mod vocab;

use std::path::PathBuf;

use bpe::Bpe;
use hash::FxBuild;
use hf::HfTok;
use pretok::PreTokenizer;
use spm::Spm;
pub use stream::StreamDecoder;
use vocab::{ttype, SpecialMatcher, Vocab};

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
}

#[cfg(test)]
mod tests;
