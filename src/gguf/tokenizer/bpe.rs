//! Byte-level BPE (`tokenizer.ggml.model == "gpt2"`), following llama.cpp's merge order:
//! within each pre-tokenized piece, repeatedly merge the adjacent pair of lowest merge rank
//! (leftmost first on ties).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Mutex;

use super::{FxBuild, PreTokenizer, TokenizerError, Vocab};

const NONE: u32 = u32::MAX;

/// Piece bytes → token ids.
type PieceCache = HashMap<Box<[u8]>, Box<[u32]>, FxBuild>;
/// A candidate merge: (rank, left index, right index, left id, right id), smallest first.
type MergeQueue = BinaryHeap<Reverse<(u32, u32, u32, u32, u32)>>;
/// Pieces cached at most; the cache is cleared when it grows past this.
const CACHE_CAP: usize = 64 * 1024;

/// The GPT-2 byte → printable character table.
pub(crate) fn byte_to_char_table() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut extra = 0u32;
    for b in 0..256u32 {
        let printable =
            (0x21..=0x7e).contains(&b) || (0xa1..=0xac).contains(&b) || (0xae..=0xff).contains(&b);
        let c = if printable {
            b
        } else {
            extra += 1;
            255 + extra
        };
        table[b as usize] = char::from_u32(c).unwrap_or('\u{fffd}');
    }
    table
}

/// The inverse table: character (as u32, all below 0x144) → byte.
pub(crate) fn char_to_byte_table() -> Vec<i16> {
    let mut inv = vec![-1i16; 0x144];
    for (b, c) in byte_to_char_table().iter().enumerate() {
        inv[*c as usize] = b as i16;
    }
    inv
}

#[derive(Clone, Copy)]
struct Sym {
    id: u32,
    prev: i32,
    next: i32,
    len: u32,
}

/// A byte-level BPE model: merge ranks on pairs of token ids.
#[derive(Debug)]
pub(crate) struct Bpe {
    pre: PreTokenizer,
    ignore_merges: bool,
    /// (left id, right id) → (rank, merged id).
    merges: HashMap<(u32, u32), (u32, u32), FxBuild>,
    /// Token id of each single byte's character, NONE when the vocabulary lacks it.
    byte_ids: [u32; 256],
    byte_chars: [char; 256],
    char_bytes: Vec<i16>,
    cache: Mutex<PieceCache>,
}

impl Bpe {
    /// Build from the vocabulary, the `tokenizer.ggml.merges` lines and the pre-tokenizer name.
    pub(crate) fn new<'a>(
        vocab: &Vocab,
        merges: impl Iterator<Item = &'a str>,
        pre: &str,
    ) -> Result<Self, TokenizerError> {
        let (pre, ignore_merges) = PreTokenizer::new(pre)?;
        let byte_chars = byte_to_char_table();
        let mut byte_ids = [NONE; 256];
        let mut buf = [0u8; 4];
        for (b, c) in byte_chars.iter().enumerate() {
            if let Some(id) = vocab.lookup(c.encode_utf8(&mut buf)) {
                byte_ids[b] = id;
            }
        }
        let mut map: HashMap<(u32, u32), (u32, u32), FxBuild> = HashMap::default();
        let mut joined = String::new();
        for (rank, line) in merges.enumerate() {
            // llama.cpp splits at the first space after the first byte.
            let Some(pos) = line.bytes().skip(1).position(|b| b == b' ').map(|p| p + 1) else {
                return Err(TokenizerError::Invalid(format!(
                    "merge {rank} ({line:?}) has no space between its two parts"
                )));
            };
            let (left, right) = (&line[..pos], &line[pos + 1..]);
            joined.clear();
            joined.push_str(left);
            joined.push_str(right);
            if let (Some(l), Some(r), Some(m)) =
                (vocab.lookup(left), vocab.lookup(right), vocab.lookup(&joined))
            {
                map.entry((l, r)).or_insert((rank as u32, m));
            }
        }
        Ok(Bpe {
            pre,
            ignore_merges,
            merges: map,
            byte_ids,
            byte_chars,
            char_bytes: char_to_byte_table(),
            cache: Mutex::new(HashMap::default()),
        })
    }

    /// Bytes of a normal (byte-level encoded) token text.
    pub(crate) fn decode_text(&self, text: &str, out: &mut Vec<u8>) {
        for c in text.chars() {
            match self.char_bytes.get(c as usize) {
                Some(&b) if b >= 0 => out.push(b as u8),
                _ => {
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
            }
        }
    }

    /// Tokenize one raw-text fragment (no special tokens inside).
    pub(crate) fn encode_fragment(&self, vocab: &Vocab, text: &str, out: &mut Vec<u32>) {
        for (s, e) in self.pre.split(text) {
            self.encode_piece(vocab, &text.as_bytes()[s..e], out);
        }
    }

    fn encode_piece(&self, vocab: &Vocab, piece: &[u8], out: &mut Vec<u32>) {
        if piece.is_empty() {
            return;
        }
        if piece.len() == 1 {
            if self.byte_ids[piece[0] as usize] != NONE {
                out.push(self.byte_ids[piece[0] as usize]);
            }
            return;
        }
        if let Ok(cache) = self.cache.lock() {
            if let Some(ids) = cache.get(piece) {
                out.extend_from_slice(ids);
                return;
            }
        }
        let start = out.len();
        self.merge_piece(vocab, piece, out);
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= CACHE_CAP {
                cache.clear();
            }
            cache.insert(piece.into(), out[start..].into());
        }
    }

    fn merge_piece(&self, vocab: &Vocab, piece: &[u8], out: &mut Vec<u32>) {
        if self.ignore_merges {
            let encoded: String = piece.iter().map(|&b| self.byte_chars[b as usize]).collect();
            if let Some(id) = vocab.lookup(&encoded) {
                out.push(id);
                return;
            }
        }
        let n = piece.len();
        let mut syms: Vec<Sym> = piece
            .iter()
            .enumerate()
            .map(|(i, &b)| Sym {
                id: self.byte_ids[b as usize],
                prev: i as i32 - 1,
                next: if i + 1 == n { -1 } else { i as i32 + 1 },
                len: 1,
            })
            .collect();
        let mut heap = MergeQueue::new();
        let push = |heap: &mut MergeQueue, syms: &[Sym], l: i32, r: i32| {
            if l < 0 || r < 0 {
                return;
            }
            let (a, b) = (syms[l as usize].id, syms[r as usize].id);
            if a == NONE || b == NONE {
                return;
            }
            if let Some(&(rank, _)) = self.merges.get(&(a, b)) {
                heap.push(Reverse((rank, l as u32, r as u32, a, b)));
            }
        };
        for i in 1..n {
            push(&mut heap, &syms, i as i32 - 1, i as i32);
        }
        while let Some(Reverse((_, l, r, a, b))) = heap.pop() {
            let (l, r) = (l as usize, r as usize);
            let (ls, rs) = (syms[l], syms[r]);
            if ls.len == 0 || rs.len == 0 || ls.id != a || rs.id != b || ls.next != r as i32 {
                continue;
            }
            let merged = self.merges[&(a, b)].1;
            syms[l].id = merged;
            syms[l].len += rs.len;
            syms[l].next = rs.next;
            syms[r].len = 0;
            if rs.next >= 0 {
                syms[rs.next as usize].prev = l as i32;
            }
            let prev = syms[l].prev;
            let next = syms[l].next;
            push(&mut heap, &syms, prev, l as i32);
            push(&mut heap, &syms, l as i32, next);
        }
        let mut i = 0i32;
        while i >= 0 {
            let s = syms[i as usize];
            if s.len > 0 && s.id != NONE {
                out.push(s.id);
            }
            i = s.next;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_table_is_a_bijection() {
        let t = byte_to_char_table();
        let inv = char_to_byte_table();
        for b in 0..256usize {
            assert_eq!(inv[t[b] as usize], b as i16);
        }
        assert_eq!(t[b' ' as usize], 'Ġ');
        assert_eq!(t[b'\n' as usize], 'Ċ');
        assert_eq!(t[b'a' as usize], 'a');
    }
}
