//! SentencePiece-style vocabularies (`tokenizer.ggml.model == "llama"`), following llama.cpp:
//! start from single characters, repeatedly merge the adjacent pair whose merged text is a
//! token with the highest score (leftmost first on ties), then emit every symbol as its token
//! or, when it is not one, as byte-fallback tokens `<0xXX>`.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use super::Vocab;

const NONE: u32 = u32::MAX;

#[derive(Clone, Copy)]
struct Sym {
    start: u32,
    len: u32,
    prev: i32,
    next: i32,
}

#[derive(PartialEq)]
struct Bigram {
    score: f32,
    left: Reverse<u32>,
    right: u32,
    size: u32,
}

impl Eq for Bigram {}

impl Ord for Bigram {
    fn cmp(&self, other: &Self) -> Ordering {
        self.score
            .total_cmp(&other.score)
            .then(self.left.cmp(&other.left))
            .then(self.right.cmp(&other.right))
    }
}

impl PartialOrd for Bigram {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A SentencePiece model: per-token scores and byte-fallback ids.
#[derive(Debug)]
pub(crate) struct Spm {
    scores: Vec<f32>,
    byte_ids: [u32; 256],
    unk: Option<u32>,
}

impl Spm {
    /// Build from the vocabulary and its `tokenizer.ggml.scores` (missing scores count as 0).
    pub(crate) fn new(vocab: &Vocab, scores: Vec<f32>, unk: Option<u32>) -> Self {
        let mut byte_ids = [NONE; 256];
        for (b, slot) in byte_ids.iter_mut().enumerate() {
            let hex = format!("<0x{b:02X}>");
            if let Some(id) = vocab.lookup(&hex) {
                *slot = id;
            } else if b < 0x80 {
                if let Some(id) = vocab.lookup(&(b as u8 as char).to_string()) {
                    *slot = id;
                }
            }
        }
        Spm { scores, byte_ids, unk }
    }

    /// The byte a `<0xXX>` token stands for.
    pub(crate) fn byte_of(text: &str) -> Option<u8> {
        let hex = text.strip_prefix("<0x")?.strip_suffix('>')?;
        if hex.len() != 2 {
            return None;
        }
        u8::from_str_radix(hex, 16).ok()
    }

    fn score(&self, id: u32) -> f32 {
        self.scores.get(id as usize).copied().unwrap_or(0.0)
    }

    /// Tokenize one fragment whose spaces are already escaped to `▁`.
    pub(crate) fn encode_fragment(&self, vocab: &Vocab, text: &str, out: &mut Vec<u32>) {
        if text.is_empty() {
            return;
        }
        let mut syms: Vec<Sym> = Vec::with_capacity(text.len());
        for (i, (pos, c)) in text.char_indices().enumerate() {
            let end = pos + c.len_utf8();
            syms.push(Sym {
                start: pos as u32,
                len: c.len_utf8() as u32,
                prev: i as i32 - 1,
                next: if end == text.len() { -1 } else { i as i32 + 1 },
            });
        }
        let mut heap = BinaryHeap::new();
        let try_add = |heap: &mut BinaryHeap<Bigram>, syms: &[Sym], l: i32, r: i32| {
            if l < 0 || r < 0 {
                return;
            }
            let (ls, rs) = (syms[l as usize], syms[r as usize]);
            let s = ls.start as usize;
            let e = (rs.start + rs.len) as usize;
            if let Some(id) = vocab.lookup(&text[s..e]) {
                heap.push(Bigram {
                    score: self.score(id),
                    left: Reverse(l as u32),
                    right: r as u32,
                    size: (e - s) as u32,
                });
            }
        };
        for i in 1..syms.len() {
            try_add(&mut heap, &syms, i as i32 - 1, i as i32);
        }
        while let Some(bg) = heap.pop() {
            let (l, r) = (bg.left.0 as usize, bg.right as usize);
            let (ls, rs) = (syms[l], syms[r]);
            if ls.len == 0 || rs.len == 0 || ls.len + rs.len != bg.size {
                continue;
            }
            syms[l].len += rs.len;
            syms[l].next = rs.next;
            syms[r].len = 0;
            if rs.next >= 0 {
                syms[rs.next as usize].prev = l as i32;
            }
            let (prev, next) = (syms[l].prev, syms[l].next);
            try_add(&mut heap, &syms, prev, l as i32);
            try_add(&mut heap, &syms, l as i32, next);
        }
        let mut i = 0i32;
        while i >= 0 {
            let s = syms[i as usize];
            let piece = &text[s.start as usize..(s.start + s.len) as usize];
            if let Some(id) = vocab.lookup(piece) {
                out.push(id);
            } else {
                for &b in piece.as_bytes() {
                    match self.byte_ids[b as usize] {
                        NONE => out.extend(self.unk),
                        id => out.push(id),
                    }
                }
            }
            i = s.next;
        }
    }
}
