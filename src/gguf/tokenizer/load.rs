//! Building a tokenizer from the GGUF metadata (`tokenizer.ggml.*`), as llama.cpp does.

use std::collections::HashMap;
use std::path::Path;

use candle_core::quantized::gguf_file::{Content, Value};

use super::bpe::Bpe;
use super::spm::Spm;
use super::vocab::{ttype, SpecialMatcher, Vocab, EOG_TEXTS};
use super::{GgufTok, Inner, Model, Tokenizer, TokenizerError};

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
}
