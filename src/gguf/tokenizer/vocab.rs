//! The vocabulary (all token texts in one buffer, indexed by hash), token types, and the
//! special tokens: which texts are specials, and splitting a text at them.

use std::collections::HashMap;

use super::hash::{text_hash, FxBuild};
use super::GgufTok;

/// Token types as GGUF stores them (`tokenizer.ggml.token_type`).
pub(super) mod ttype {
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
pub(super) const EOG_TEXTS: &[&str] = &[
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

/// Token texts and types, with a text → id index (the last id wins on duplicates, as in
/// llama.cpp).
#[derive(Debug)]
pub(crate) struct Vocab {
    text: String,
    offsets: Vec<u32>,
    pub(super) types: Vec<u8>,
    index: HashMap<u64, u32, FxBuild>,
    collisions: HashMap<Box<str>, u32>,
}

impl Vocab {
    pub(super) fn new<'a>(tokens: impl ExactSizeIterator<Item = &'a str>, types: Vec<u8>) -> Self {
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

    pub(super) fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    pub(super) fn token_text(&self, id: u32) -> &str {
        let i = id as usize;
        &self.text[self.offsets[i] as usize..self.offsets[i + 1] as usize]
    }

    pub(super) fn ttype(&self, id: u32) -> u8 {
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

// Special-token matching: a byte trie finds which special tokens occur in a text; they are then
// split out longest first, as llama.cpp does.

#[derive(Debug, Default)]
struct TrieNode {
    children: Vec<(u8, u32)>,
    token: Option<u32>,
}

#[derive(Debug, Default)]
pub(super) struct SpecialMatcher {
    nodes: Vec<TrieNode>,
}

impl SpecialMatcher {
    pub(super) fn new(vocab: &Vocab) -> Self {
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
    pub(super) fn present(&self, text: &[u8]) -> Vec<u32> {
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

pub(super) enum Frag {
    Raw(usize, usize),
    Token(u32),
}

/// Split `text` at the special tokens it contains, longest tokens first (llama.cpp's
/// `tokenizer_st_partition`). User-defined tokens always split; control and unknown tokens
/// only when `parse_special`.
pub(super) fn partition(g: &GgufTok, text: &str, parse_special: bool) -> Vec<Frag> {
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
