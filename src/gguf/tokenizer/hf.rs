//! Tokenizers from a Hugging Face `tokenizer.json` beside the model.

use std::collections::HashMap;
use std::path::Path;

use super::vocab::EOG_TEXTS;
use super::{bpe, Inner, Tokenizer, TokenizerError};

/// A tokenizer.json tokenizer (Hugging Face `tokenizers`).
pub(super) struct HfTok {
    /// Matches special tokens in the text.
    pub(super) parse: tokenizers::Tokenizer,
    /// Treats special tokens as plain text.
    pub(super) plain: tokenizers::Tokenizer,
    pub(super) byte_level: bool,
    pub(super) char_bytes: Vec<i16>,
    pub(super) added: HashMap<u32, (String, bool)>,
}

impl std::fmt::Debug for HfTok {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HfTok").field("byte_level", &self.byte_level).finish_non_exhaustive()
    }
}

impl Tokenizer {
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
}
