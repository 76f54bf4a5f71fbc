//! Building a tokenizer from the GGUF metadata (`tokenizer.ggml.*`), as llama.cpp does.

use std::collections::HashMap;
use std::path::Path;

use candle_core::quantized::gguf_file::{Content, Value};

use crate::gguf::metadata::{keys, required, MetaError, Metadata};

use super::bpe::Bpe;
use super::spm::Spm;
use super::vocab::{ttype, SpecialMatcher, Vocab, EOG_TEXTS};
use super::{GgufTok, Inner, Model, Tokenizer, TokenizerError};

fn bad(key: &str, msg: impl Into<String>) -> TokenizerError {
    TokenizerError::BadValue { key: key.to_string(), msg: msg.into() }
}

impl From<MetaError> for TokenizerError {
    fn from(e: MetaError) -> TokenizerError {
        match e {
            MetaError::Missing { key } => TokenizerError::MissingKey(key),
            MetaError::Mistyped { key, expected, found } => {
                TokenizerError::BadValue { key, msg: format!("expected {expected}, found {found}") }
            }
        }
    }
}

impl Tokenizer {
    /// Build the tokenizer embedded in a GGUF file's metadata.
    pub fn from_gguf(content: &Content) -> Result<Tokenizer, TokenizerError> {
        Self::from_metadata(&content.metadata)
    }

    /// Build the tokenizer from a GGUF metadata map (`tokenizer.ggml.*` keys).
    pub fn from_metadata(md: &HashMap<String, Value>) -> Result<Tokenizer, TokenizerError> {
        let md = Metadata::new(md);
        let model_name = required(keys::TOKENIZER_MODEL, md.str(keys::TOKENIZER_MODEL))?;
        if model_name != "gpt2" && model_name != "llama" {
            return Err(TokenizerError::UnsupportedModel(model_name.to_string()));
        }
        let texts = required(keys::TOKENS, md.str_array(keys::TOKENS))?;
        if texts.is_empty() {
            return Err(bad(keys::TOKENS, "the vocabulary is empty"));
        }
        let types = match md.array(keys::TOKEN_TYPE)? {
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

        let (model, default_bos, default_eos, mut add_bos, add_space_default) =
            if model_name == "gpt2" {
                let pre = md.str(keys::TOKENIZER_PRE)?.unwrap_or("default");
                let merges = required(keys::MERGES, md.str_array(keys::MERGES))?;
                let add_bos =
                    matches!(pre, "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "pixtral");
                let bpe = Bpe::new(&vocab, merges.into_iter(), pre)?;
                (Model::Bpe(Box::new(bpe)), Some(11), Some(11), add_bos, false)
            } else {
                let scores = match md.array(keys::SCORES)? {
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
                let unk = check(keys::UNK_ID, md.token_id(keys::UNK_ID)?)?;
                let spm = Spm::new(&vocab, scores, unk.or(Some(0)));
                (Model::Spm(Box::new(spm)), Some(1), Some(2), true, true)
            };
        let bos = match md.has(keys::BOS_ID) {
            true => check(keys::BOS_ID, md.token_id(keys::BOS_ID)?)?,
            false => default_bos.filter(|&i| i < n),
        };
        let eos = match md.has(keys::EOS_ID) {
            true => check(keys::EOS_ID, md.token_id(keys::EOS_ID)?)?,
            false => default_eos.filter(|&i| i < n),
        };
        if let Some(b) = md.bool(keys::ADD_BOS)? {
            add_bos = b;
        }
        let add_eos = md.bool(keys::ADD_EOS)?.unwrap_or(false);
        let add_space_prefix = md.bool(keys::ADD_SPACE_PREFIX)?.unwrap_or(add_space_default);

        let mut eot_ids = Vec::new();
        eot_ids.extend(eos);
        for key in [keys::EOT_ID, keys::EOM_ID] {
            eot_ids.extend(check(key, md.token_id(key)?)?);
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
        let md = Metadata::new(&content.metadata);
        if let Some(b) = md.token_id(keys::BOS_ID)? {
            tok.bos = Some(b);
        }
        if let Some(e) = md.token_id(keys::EOS_ID)? {
            tok.eos = Some(e);
            tok.eot_ids.push(e);
        }
        for key in [keys::EOT_ID, keys::EOM_ID] {
            tok.eot_ids.extend(md.token_id(key)?);
        }
        tok.eot_ids.sort_unstable();
        tok.eot_ids.dedup();
        Ok(tok)
    }
}
