//! Token ids → bytes and text (byte-level BPE, SentencePiece pieces, byte fallback).

use super::spm::Spm;
use super::vocab::ttype;
use super::{Inner, Model, Tokenizer};

impl Tokenizer {
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
    pub(super) fn strips_prefix_space(&self) -> bool {
        matches!(&self.inner, Inner::Gguf(g) if g.add_space_prefix && matches!(g.model, Model::Spm(_)))
    }

    /// The raw bytes one token stands for (possibly part of a UTF-8 character); empty for an
    /// unknown id.
    pub fn token_bytes(&self, id: u32) -> Vec<u8> {
        let mut out = Vec::new();
        self.push_token_bytes(id, &mut out);
        out
    }

    pub(super) fn push_token_bytes(&self, id: u32, out: &mut Vec<u8>) {
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
}
