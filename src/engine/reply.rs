//! One reply being generated, a token at a time: everything generation decides per token
//! (penalties, sampling, whole UTF-8 characters, stop rules, the budget), apart from
//! running the model. [`Engine::generate_with`] steps one reply on its own cache; a
//! batch steps several, each on its own [`super::Sequence`], through the same code.

use super::generate::{Engine, GenerateOptions, StopReason};
use super::repeat::{loop_start, penalise_repeats};
use super::sampler::Sampler;
use super::stop::{vocative_position, Cut, ReplyText, StopRules};
use crate::gguf::{StreamDecoder, Tokenizer};
use std::sync::atomic::{AtomicBool, Ordering};

/// The last tokens of a budget (of at least twice as many), during which an unfinished
/// sentence is held back so that a reply cut by the budget can end at its last whole
/// sentence.
const SENTENCE_GRACE: usize = 24;

/// What the model does after [`ReplyGen::next`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Run this token and call `next` again with the logits after it.
    Token(u32),
    /// Run this token (so that the next turn finds it in the cache), then the reply ends
    /// on its budget ([`StopReason::MaxTokens`]).
    Last(u32),
    /// The reply has ended.
    Stop(StopReason),
}

/// A reply in progress. Created by [`Engine::start_reply`]; borrows the tokenizer only.
pub struct ReplyGen<'t> {
    sampler: Sampler,
    decoder: StreamDecoder<'t>,
    text: ReplyText,
    /// Tokens that address the reader, banned where a form of address would start.
    banned: Vec<u32>,
    /// From this many tokens on, an unfinished sentence is held back.
    grace_from: usize,
    max_tokens: usize,
    ids: Vec<u32>,
}

impl Engine {
    /// A new reply under `opts` and `rules`, decoding with `tokenizer` (this engine's,
    /// perhaps through [`Engine::shared_tokenizer`] so that the reply can outlive a
    /// borrow of the engine).
    pub fn start_reply<'t>(
        &mut self,
        tokenizer: &'t Tokenizer,
        opts: &GenerateOptions,
        rules: &StopRules,
    ) -> ReplyGen<'t> {
        // A tiny budget may hold no whole sentence: it gets no grace.
        let grace_from = match opts.max_tokens {
            n if n >= 2 * SENTENCE_GRACE => n - SENTENCE_GRACE,
            _ => usize::MAX,
        };
        ReplyGen {
            sampler: Sampler::new(opts.sampling.clone()),
            decoder: tokenizer.stream_decoder(true),
            text: ReplyText::new(rules, self.markers()),
            banned: self.vocative_tokens(&rules.vocatives),
            grace_from,
            max_tokens: opts.max_tokens,
            ids: Vec::new(),
        }
    }
}

impl ReplyGen<'_> {
    /// Picks the next token from `logits`, the model's output after `context` (the tokens
    /// in the cache, which may hold `capacity` at most), and passes the text it completes
    /// to `on_text`. A token that would split a UTF-8 character is resampled.
    pub fn next(
        &mut self,
        engine: &Engine,
        logits: &mut [f32],
        context: &[u32],
        capacity: usize,
        cancel: &AtomicBool,
        on_text: &mut dyn FnMut(&str),
    ) -> Next {
        if cancel.load(Ordering::Relaxed) {
            return Next::Stop(StopReason::Cancelled);
        }
        penalise_repeats(logits, &self.ids);
        if !self.banned.is_empty() && vocative_position(self.text.so_far()) {
            for &t in &self.banned {
                if let Some(l) = logits.get_mut(t as usize) {
                    *l = f32::NEG_INFINITY;
                }
            }
        }
        self.sampler.penalise(logits, context);
        let mut next = self.sampler.pick(logits);
        for _ in 0..16 {
            if self.decoder.accepts(next) {
                break;
            }
            logits[next as usize] = f32::NEG_INFINITY;
            next = self.sampler.pick(logits);
        }
        if !self.decoder.accepts(next) {
            self.decoder.discard_partial();
        }
        if engine.is_end_token(next) {
            return Next::Stop(StopReason::EndOfTurn);
        }
        self.ids.push(next);
        let piece = self.decoder.push(next);
        let (out, cut) = self.text.push(&piece, self.ids.len() > self.grace_from);
        if !out.is_empty() {
            on_text(&out);
        }
        match cut {
            Some(Cut::Sentences) => return Next::Stop(StopReason::Sentences),
            Some(Cut::Marker) => return Next::Stop(StopReason::Marker),
            None => {}
        }
        if loop_start(&self.ids).is_some() {
            return Next::Stop(StopReason::Repetition);
        }
        if self.ids.len() >= self.max_tokens {
            return Next::Last(next);
        }
        if context.len() + 1 >= capacity {
            return Next::Stop(StopReason::ContextFull);
        }
        Next::Token(next)
    }

    /// Ends the reply for `stop`: passes on the text still held back and returns the whole
    /// reply's text and the number of tokens generated.
    pub fn finish(mut self, stop: StopReason, on_text: &mut dyn FnMut(&str)) -> (String, usize) {
        let tail = self.decoder.finish();
        let (mut rest, _) = self.text.push(&tail, false);
        let (more, text) = self.text.finish(stop == StopReason::MaxTokens);
        rest.push_str(&more);
        if !rest.is_empty() {
            on_text(&rest);
        }
        (text, self.ids.len())
    }
}
