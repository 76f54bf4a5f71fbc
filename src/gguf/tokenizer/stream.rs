//! Streaming decoding: text only at complete UTF-8 characters.

use super::Tokenizer;

impl Tokenizer {
    /// A decoder that turns ids into text as they are generated.
    pub fn stream_decoder(&self, skip_special: bool) -> StreamDecoder<'_> {
        StreamDecoder { tok: self, pending: Vec::new(), skip_special, started: false }
    }
}

/// Turns token ids into text one at a time, yielding text only at complete UTF-8 characters
/// (a CJK character or emoji split over several byte tokens comes out whole).
#[derive(Debug)]
pub struct StreamDecoder<'a> {
    tok: &'a Tokenizer,
    pending: Vec<u8>,
    skip_special: bool,
    started: bool,
}

impl StreamDecoder<'_> {
    /// Add one id; returns the text completed by it (possibly empty).
    pub fn push(&mut self, id: u32) -> String {
        if self.skip_special && self.tok.is_special(id) {
            return String::new();
        }
        let before = self.pending.len();
        self.tok.push_token_bytes(id, &mut self.pending);
        if !self.started && self.pending.len() > before {
            self.started = true;
            if self.tok.strips_prefix_space() && self.pending.first() == Some(&b' ') {
                self.pending.remove(0);
            }
        }
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(s) => {
                    out.push_str(s);
                    self.pending.clear();
                    break;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    // Safe: the prefix up to `valid` is valid UTF-8.
                    out.push_str(std::str::from_utf8(&self.pending[..valid]).unwrap_or_default());
                    match e.error_len() {
                        // Bytes that can never be part of a character: left out (a U+FFFD
                        // in a reply helps nobody).
                        Some(bad) => {
                            self.pending.drain(..valid + bad);
                        }
                        // An incomplete character at the end: wait for more bytes.
                        None => {
                            self.pending.drain(..valid);
                            break;
                        }
                    }
                }
            }
        }
        out
    }

    /// Whether pushing `id` keeps the text valid UTF-8: its bytes continue the incomplete
    /// character held back (if any) and hold no invalid sequence; an unfinished character
    /// at its end is fine. Generation uses it to resample a token that would split a
    /// character.
    pub fn accepts(&self, id: u32) -> bool {
        if self.skip_special && self.tok.is_special(id) {
            return true;
        }
        let mut bytes = self.pending.clone();
        self.tok.push_token_bytes(id, &mut bytes);
        match std::str::from_utf8(&bytes) {
            Ok(_) => true,
            Err(e) => e.error_len().is_none(),
        }
    }

    /// Forgets the bytes of an incomplete character held back.
    pub fn discard_partial(&mut self) {
        self.pending.clear();
    }

    /// Flush what is left. An incomplete character (generation stopped inside it) is left
    /// out rather than shown as U+FFFD.
    pub fn finish(&mut self) -> String {
        let valid = match std::str::from_utf8(&self.pending) {
            Ok(s) => s.len(),
            Err(e) => e.valid_up_to(),
        };
        let s = String::from_utf8_lossy(&self.pending[..valid]).into_owned();
        self.pending.clear();
        s
    }
}
