//! Several sequences decoding together (continuous batching).
//!
//! Decode is bound by memory bandwidth: each token streams every weight once. A
//! [`Sequence`] owns its KV cache and tokens; [`Engine::decode_sequences`] runs one token of
//! every active sequence in one pass over the weights (attention runs per sequence on its
//! own cache). Sequences join, after [`Engine::prefill_sequence`], and leave between
//! steps, and each sequence's logits are bit for bit those of decoding it alone.

use super::cache::{KvCache, KvSnapshot};
use super::generate::{common_prefix, Engine, EngineError};

/// One sequence of a batch: its own KV cache and the tokens in it.
pub struct Sequence {
    cache: KvCache,
    tokens: Vec<u32>,
}

impl Sequence {
    /// The tokens whose keys and values are in the cache, in order.
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    /// Positions the cache holds at most.
    pub fn capacity(&self) -> usize {
        self.cache.capacity()
    }

    /// True when no further token fits.
    pub fn is_full(&self) -> bool {
        self.tokens.len() >= self.cache.capacity()
    }

    /// Bytes held by the KV cache.
    pub fn kv_cache_bytes(&self) -> usize {
        self.cache.bytes()
    }

    /// How many leading tokens of `tokens` the cache already holds.
    pub fn cached_prefix(&self, tokens: &[u32]) -> usize {
        common_prefix(&self.tokens, tokens)
    }

    /// Forgets every token.
    pub fn clear(&mut self) {
        self.tokens.clear();
        self.cache.truncate(0);
    }

    /// A copy of the tokens and their keys and values (only the filled positions), to
    /// [`load`](Self::load) into a sequence of the same engine later.
    pub fn save(&self) -> Result<SavedSequence, EngineError> {
        self.save_prefix(self.tokens.len())
    }

    /// [`save`](Self::save) of the first `len` tokens only (another sequence that shares
    /// them can start from the copy instead of prefilling them).
    pub fn save_prefix(&self, len: usize) -> Result<SavedSequence, EngineError> {
        let len = len.min(self.tokens.len());
        let kv = self.cache.snapshot(len)?;
        Ok(SavedSequence { tokens: self.tokens[..len].to_vec(), kv })
    }

    /// Replaces the contents with a [`save`](Self::save)d copy. On an error the sequence
    /// is empty.
    pub fn load(&mut self, saved: &SavedSequence) -> Result<(), EngineError> {
        self.clear();
        self.cache.restore(&saved.kv)?;
        self.tokens = saved.tokens.clone();
        Ok(())
    }
}

/// A sequence's tokens and KV cache, copied out of it (see [`Sequence::save`]).
pub struct SavedSequence {
    tokens: Vec<u32>,
    kv: KvSnapshot,
}

impl SavedSequence {
    /// Bytes it holds (keys, values and tokens).
    pub fn bytes(&self) -> usize {
        self.kv.bytes() + self.tokens.len() * 4
    }
}

impl Engine {
    /// A new, empty sequence with a KV cache of `capacity` positions (at most the
    /// engine's context size).
    pub fn new_sequence(&self, capacity: usize) -> Result<Sequence, EngineError> {
        let capacity = capacity.clamp(1, self.context_size());
        Ok(Sequence { cache: self.model.new_cache(capacity)?, tokens: Vec::new() })
    }

    /// Runs `prompt` into `seq`'s cache, reusing the prefix it shares with the sequence's
    /// tokens (as [`eval`](Engine::eval) does for the engine's own conversation), and
    /// returns the logits after its last token.
    pub fn prefill_sequence(
        &mut self,
        seq: &mut Sequence,
        prompt: &[u32],
    ) -> Result<Vec<f32>, EngineError> {
        if prompt.is_empty() {
            return Err(EngineError::EmptyPrompt);
        }
        if prompt.len() > seq.capacity() {
            return Err(EngineError::PromptTooLong { tokens: prompt.len(), ctx: seq.capacity() });
        }
        let common = seq.cached_prefix(prompt).min(prompt.len() - 1);
        seq.tokens.truncate(common);
        seq.cache.truncate(common);
        let logits = self.model.forward_in(&mut seq.cache, &prompt[common..]);
        match logits.and_then(|l| l.to_vec1::<f32>()) {
            Ok(l) => {
                seq.tokens.extend_from_slice(&prompt[common..]);
                Ok(l)
            }
            Err(e) => {
                // Keep the cache consistent with the tokens after a failure.
                seq.tokens.clear();
                seq.cache.truncate(0);
                Err(e.into())
            }
        }
    }

    /// One decode step for every sequence of `seqs` together: `tokens[i]` is appended to
    /// `seqs[i]`, and the result holds each one's logits after it, bit for bit what
    /// decoding that sequence alone gives. On the CPU every weight matrix is read once
    /// for all of them. On an error no sequence has changed.
    pub fn decode_sequences(
        &mut self,
        seqs: &mut [&mut Sequence],
        tokens: &[u32],
    ) -> Result<Vec<Vec<f32>>, EngineError> {
        if seqs.len() != tokens.len() {
            return Err(EngineError::Compute(candle_core::Error::Msg(format!(
                "{} tokens for {} sequences",
                tokens.len(),
                seqs.len()
            ))));
        }
        if let Some(s) = seqs.iter().find(|s| s.is_full()) {
            return Err(EngineError::PromptTooLong {
                tokens: s.tokens.len() + 1,
                ctx: s.capacity(),
            });
        }
        let mut caches: Vec<&mut KvCache> = seqs.iter_mut().map(|s| &mut s.cache).collect();
        let logits = self.model.forward_batch(tokens, &mut caches)?;
        for (s, &t) in seqs.iter_mut().zip(tokens) {
            s.tokens.push(t);
        }
        Ok(logits)
    }

    /// Whether generating `id` ends a reply (an end-of-turn or other control token).
    pub fn is_end_token(&self, id: u32) -> bool {
        self.stop_ids.contains(&id) || self.tokenizer().is_special(id)
    }

    /// Greedy (argmax) continuations of every prompt, at most `max_tokens` each, decoded
    /// together with at most `slots` sequences at a time: a sequence leaves when it ends
    /// (an end token, which is not included, `max_tokens`, or a full context) and the next
    /// waiting prompt is prefilled and joins. Each continuation is exactly what decoding its
    /// prompt alone gives.
    pub fn generate_greedy_batch(
        &mut self,
        prompts: &[Vec<u32>],
        max_tokens: usize,
        slots: usize,
    ) -> Result<Vec<Vec<u32>>, EngineError> {
        struct Active {
            index: usize,
            seq: Sequence,
            next: u32,
        }
        let mut out: Vec<Vec<u32>> = vec![Vec::new(); prompts.len()];
        let mut waiting = prompts.iter().enumerate();
        let mut active: Vec<Active> = Vec::new();
        loop {
            active.retain(|a| out[a.index].len() < max_tokens && !a.seq.is_full());
            // Admit waiting prompts into free slots; one that is done at once never takes one.
            while active.len() < slots.max(1) {
                let Some((index, prompt)) = waiting.next() else { break };
                let mut seq = self.new_sequence(prompt.len() + max_tokens)?;
                let next = argmax(&self.prefill_sequence(&mut seq, prompt)?);
                if max_tokens == 0 || self.is_end_token(next) {
                    continue;
                }
                out[index].push(next);
                if out[index].len() < max_tokens && !seq.is_full() {
                    active.push(Active { index, seq, next });
                }
            }
            // Free slots left means no prompt is waiting.
            if active.is_empty() {
                return Ok(out);
            }
            let tokens: Vec<u32> = active.iter().map(|a| a.next).collect();
            let mut seqs: Vec<&mut Sequence> = active.iter_mut().map(|a| &mut a.seq).collect();
            let logits = self.decode_sequences(&mut seqs, &tokens)?;
            let mut ended = Vec::new();
            for (a, l) in active.iter_mut().zip(&logits) {
                a.next = argmax(l);
                if self.is_end_token(a.next) {
                    ended.push(a.index);
                } else {
                    out[a.index].push(a.next);
                }
            }
            active.retain(|a| !ended.contains(&a.index));
        }
    }
}

/// The index of the largest logit (the first among equals).
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = (0, f32::NEG_INFINITY);
    for (i, &l) in logits.iter().enumerate() {
        if l > best.1 {
            best = (i, l);
        }
    }
    best.0 as u32
}
