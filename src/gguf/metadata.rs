//! The one reader of GGUF metadata: the magic check, the key names we read, and typed
//! lookups whose errors name the key and say what was expected and what was found. The
//! model config, the tokenizer and the chat template all read through it.

use candle_core::quantized::gguf_file::Value;
use std::collections::HashMap;

/// The four bytes every GGUF file starts with.
pub const MAGIC: &[u8; 4] = b"GGUF";

/// Whether `head` (the first bytes of a file) starts with the GGUF magic.
pub fn has_magic(head: &[u8]) -> bool {
    head.starts_with(MAGIC)
}

/// The format version of a file whose first bytes are `head`, or None when they are not a
/// GGUF header (no magic, or fewer than 8 bytes).
pub fn version(head: &[u8]) -> Option<u32> {
    match head {
        [m0, m1, m2, m3, v0, v1, v2, v3, ..] if [*m0, *m1, *m2, *m3] == *MAGIC => {
            Some(u32::from_le_bytes([*v0, *v1, *v2, *v3]))
        }
        _ => None,
    }
}

/// The metadata keys read outside the architecture's own `{arch}.*` namespace.
pub mod keys {
    /// The architecture name (`llama`, `qwen2`…), the prefix of its hyper-parameters.
    pub const ARCHITECTURE: &str = "general.architecture";
    /// Tokenizer kind: `gpt2` (byte-level BPE) or `llama` (SentencePiece).
    pub const TOKENIZER_MODEL: &str = "tokenizer.ggml.model";
    /// The BPE pre-tokenizer name.
    pub const TOKENIZER_PRE: &str = "tokenizer.ggml.pre";
    /// Token texts.
    pub const TOKENS: &str = "tokenizer.ggml.tokens";
    /// Token types (normal, control, byte…).
    pub const TOKEN_TYPE: &str = "tokenizer.ggml.token_type";
    /// BPE merges.
    pub const MERGES: &str = "tokenizer.ggml.merges";
    /// SentencePiece scores.
    pub const SCORES: &str = "tokenizer.ggml.scores";
    /// Beginning-of-sequence token id.
    pub const BOS_ID: &str = "tokenizer.ggml.bos_token_id";
    /// End-of-sequence token id.
    pub const EOS_ID: &str = "tokenizer.ggml.eos_token_id";
    /// End-of-turn token id.
    pub const EOT_ID: &str = "tokenizer.ggml.eot_token_id";
    /// End-of-message token id.
    pub const EOM_ID: &str = "tokenizer.ggml.eom_token_id";
    /// Unknown-token id.
    pub const UNK_ID: &str = "tokenizer.ggml.unknown_token_id";
    /// Whether encoding adds BOS.
    pub const ADD_BOS: &str = "tokenizer.ggml.add_bos_token";
    /// Whether encoding adds EOS.
    pub const ADD_EOS: &str = "tokenizer.ggml.add_eos_token";
    /// Whether SentencePiece puts a space before the text.
    pub const ADD_SPACE_PREFIX: &str = "tokenizer.ggml.add_space_prefix";
    /// The Jinja chat template.
    pub const CHAT_TEMPLATE: &str = "tokenizer.chat_template";
}

/// Why a metadata value could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MetaError {
    /// A required key is absent.
    #[error("metadata key {key} is missing")]
    Missing {
        /// The key.
        key: String,
    },
    /// The key holds another type, or a value out of range.
    #[error("metadata key {key} is {found}, not {expected}")]
    Mistyped {
        /// The key (with `[i]` for an array entry).
        key: String,
        /// What the reader needs, in words.
        expected: &'static str,
        /// What the file holds, in words.
        found: String,
    },
}

impl MetaError {
    /// The key at fault.
    pub fn key(&self) -> &str {
        match self {
            MetaError::Missing { key } | MetaError::Mistyped { key, .. } => key,
        }
    }
}

/// A value's type in words, for errors.
fn describe(v: &Value) -> String {
    match v {
        Value::Array(a) => format!("an array of {}", a.len()),
        Value::String(_) => "a string".into(),
        Value::Bool(_) => "a bool".into(),
        Value::F32(_) | Value::F64(_) => "a float".into(),
        _ => format!("an integer ({:?})", v.value_type()),
    }
}

/// An integer of any width, as i128 (no value is lost).
fn integer(v: &Value) -> Option<i128> {
    Some(match v {
        Value::U8(x) => *x as i128,
        Value::I8(x) => *x as i128,
        Value::U16(x) => *x as i128,
        Value::I16(x) => *x as i128,
        Value::U32(x) => *x as i128,
        Value::I32(x) => *x as i128,
        Value::U64(x) => *x as i128,
        Value::I64(x) => *x as i128,
        _ => return None,
    })
}

/// A typed view of a GGUF metadata map. Each lookup returns `Ok(None)` for an absent key
/// and an error naming the key for a value of the wrong type; [`required`] turns an absent
/// key into an error.
#[derive(Clone, Copy, Debug)]
pub struct Metadata<'a> {
    map: &'a HashMap<String, Value>,
}

/// The value of a lookup, or [`MetaError::Missing`] when the key is absent.
pub fn required<T>(key: &str, v: Result<Option<T>, MetaError>) -> Result<T, MetaError> {
    v?.ok_or_else(|| MetaError::Missing { key: key.to_string() })
}

impl<'a> Metadata<'a> {
    /// A view of `map`.
    pub fn new(map: &'a HashMap<String, Value>) -> Metadata<'a> {
        Metadata { map }
    }

    /// The raw value, if present.
    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key)
    }

    /// True when the key is present (whatever its type).
    pub fn has(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    fn typed<T>(
        &self,
        key: &str,
        expected: &'static str,
        read: impl FnOnce(&'a Value) -> Option<T>,
    ) -> Result<Option<T>, MetaError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => read(v).map(Some).ok_or_else(|| MetaError::Mistyped {
                key: key.to_string(),
                expected,
                found: describe(v),
            }),
        }
    }

    /// A string.
    pub fn str(&self, key: &str) -> Result<Option<&'a str>, MetaError> {
        self.typed(key, "a string", |v| match v {
            Value::String(s) => Some(s.as_str()),
            _ => None,
        })
    }

    /// A non-negative integer of any width.
    pub fn usize(&self, key: &str) -> Result<Option<usize>, MetaError> {
        let n = self.typed(key, "an integer", integer)?;
        n.map(|n| {
            usize::try_from(n).map_err(|_| MetaError::Mistyped {
                key: key.to_string(),
                expected: "a non-negative integer",
                found: n.to_string(),
            })
        })
        .transpose()
    }

    /// A float (f32, or f64 narrowed).
    pub fn f32(&self, key: &str) -> Result<Option<f32>, MetaError> {
        self.typed(key, "a float", |v| match v {
            Value::F32(x) => Some(*x),
            Value::F64(x) => Some(*x as f32),
            _ => None,
        })
    }

    /// A bool.
    pub fn bool(&self, key: &str) -> Result<Option<bool>, MetaError> {
        self.typed(key, "a bool", |v| match v {
            Value::Bool(b) => Some(*b),
            _ => None,
        })
    }

    /// An array of any element type.
    pub fn array(&self, key: &str) -> Result<Option<&'a [Value]>, MetaError> {
        self.typed(key, "an array", |v| match v {
            Value::Array(a) => Some(a.as_slice()),
            _ => None,
        })
    }

    /// An array of strings; the error names the first entry that is not one.
    pub fn str_array(&self, key: &str) -> Result<Option<Vec<&'a str>>, MetaError> {
        let Some(a) = self.array(key)? else {
            return Ok(None);
        };
        a.iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::String(s) => Ok(s.as_str()),
                other => Err(MetaError::Mistyped {
                    key: format!("{key}[{i}]"),
                    expected: "a string",
                    found: describe(other),
                }),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// A token id: an integer, where a negative value (llama.cpp writes -1) means none.
    pub fn token_id(&self, key: &str) -> Result<Option<u32>, MetaError> {
        match self.typed(key, "an integer", integer)? {
            None => Ok(None),
            Some(n) if n < 0 => Ok(None),
            Some(n) => u32::try_from(n).map(Some).map_err(|_| MetaError::Mistyped {
                key: key.to_string(),
                expected: "a token id",
                found: n.to_string(),
            }),
        }
    }

    /// The text of the token whose id is stored under `id_key`, if both are present and
    /// well-formed (chat templates write it as `bos_token` / `eos_token`).
    pub fn token_text(&self, id_key: &str) -> Option<&'a str> {
        let id = self.token_id(id_key).ok()??;
        match self.array(keys::TOKENS).ok()??.get(id as usize)? {
            Value::String(s) => Some(s),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_are_typed_and_errors_name_the_key() {
        let mut map = HashMap::new();
        map.insert("a.str".to_string(), Value::String("x".into()));
        map.insert("a.u64".to_string(), Value::U64(u64::MAX));
        map.insert("a.neg".to_string(), Value::I32(-1));
        map.insert("a.f".to_string(), Value::F64(0.5));
        map.insert(
            "a.arr".to_string(),
            Value::Array(vec![Value::String("t".into()), Value::U8(1)]),
        );
        let md = Metadata::new(&map);
        assert_eq!(md.str("a.str"), Ok(Some("x")));
        assert_eq!(md.str("absent"), Ok(None));
        assert_eq!(md.f32("a.f"), Ok(Some(0.5)));
        assert_eq!(md.token_id("a.neg"), Ok(None));
        let e = md.usize("a.str").unwrap_err();
        assert_eq!(e.to_string(), "metadata key a.str is a string, not an integer");
        let e = md.token_id("a.u64").unwrap_err();
        assert!(e.to_string().contains("not a token id"), "{e}");
        let e = md.usize("a.neg").unwrap_err();
        assert_eq!(e.to_string(), "metadata key a.neg is -1, not a non-negative integer");
        let e = md.str_array("a.arr").unwrap_err();
        assert_eq!(e.key(), "a.arr[1]");
        let e = required("absent", md.bool("absent")).unwrap_err();
        assert_eq!(e, MetaError::Missing { key: "absent".into() });
    }

    #[test]
    fn magic_and_version() {
        assert_eq!(version(b"GGUF\x03\x00\x00\x00rest"), Some(3));
        assert_eq!(version(b"GGUF\x03"), None);
        assert_eq!(version(b"<html>..."), None);
        assert!(has_magic(b"GGUF") && !has_magic(b"GGU"));
    }
}
