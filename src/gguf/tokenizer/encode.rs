//! Text → token ids.

use super::vocab::{partition, Frag};
use super::{GgufTok, Inner, Model, Tokenizer};

impl Tokenizer {
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
}
