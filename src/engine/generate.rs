//! [`Engine`]: a loaded model with its tokenizer and chat template, holding one
//! conversation's KV cache. Each call reuses every cached token the new prompt shares
//! with what was processed before, so a turn costs only its new tokens.

use super::cache::KvCache;
use super::config::{ConfigError, ModelConfig};
use super::model::Model;
use super::reply::Next;
use super::sampler::SamplingParams;
use super::stop::StopRules;
use crate::gguf::chat_template::{ChatMessage, ChatTemplate};
use crate::gguf::tokenizer::Tokenizer;
use crate::gguf::{GgufError, GgufFile};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Why the engine failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The model file is unusable.
    #[error(transparent)]
    Gguf(#[from] GgufError),
    /// The architecture or its hyper-parameters are unsupported.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The tokenizer could not be built or used.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// The chat template could not be loaded or rendered.
    #[error("chat template: {0}")]
    Template(String),
    /// A tensor operation failed.
    #[error("model computation failed: {0}")]
    Compute(#[from] candle_core::Error),
    /// Nothing to answer.
    #[error("the prompt is empty")]
    EmptyPrompt,
    /// Even the system prompt and the last message do not fit the context. (Commands
    /// that have a `--ctx` flag add that advice; the library names no flag.)
    #[error("the prompt needs {tokens} tokens but the context holds {ctx}; shorten it")]
    PromptTooLong {
        /// Tokens needed.
        tokens: usize,
        /// Context capacity.
        ctx: usize,
    },
    /// The device `UPWARD_DEVICE` names cannot be used.
    #[error("{0}")]
    Device(String),
}

/// [`LoadOptions::ctx`] that asks for the model's whole training context, as far as
/// memory allows (see [`auto_context`]).
pub const AUTO_CTX: usize = usize::MAX;

/// How to load a model.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// KV-cache capacity in tokens (capped at the model's training context);
    /// [`AUTO_CTX`] picks it from the model and the memory.
    pub ctx: usize,
    /// Built-in chat template for models whose metadata has none (`chatml`, `gemma`).
    pub template_fallback: Option<String>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions { ctx: 4096, template_fallback: None }
    }
}

/// How to generate.
#[derive(Clone, Debug)]
pub struct GenerateOptions {
    /// Sampling settings.
    pub sampling: SamplingParams,
    /// Most tokens to generate.
    pub max_tokens: usize,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions { sampling: SamplingParams::default(), max_tokens: 512 }
    }
}

/// Why generation stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The model ended its turn.
    EndOfTurn,
    /// `max_tokens` reached.
    MaxTokens,
    /// The user interrupted (Ctrl-C).
    Cancelled,
    /// The context window filled up.
    ContextFull,
    /// The last sentence allowed by the stop rules ended.
    Sentences,
    /// A blank line or a turn marker ("User:") began: the reply was over.
    Marker,
    /// The reply started looping despite the repetition penalty.
    Repetition,
}

/// The result of one generation, with counters that show the cache at work.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Reply {
    /// Generated text.
    pub text: String,
    /// Tokens in the rendered prompt.
    pub prompt_tokens: usize,
    /// Prompt tokens served from the KV cache.
    pub reused_tokens: usize,
    /// Prompt tokens run through the model (`prompt_tokens - reused_tokens`).
    pub prefilled_tokens: usize,
    /// Tokens generated.
    pub generated_tokens: usize,
    /// Seconds spent on the prompt (time to first token, minus sampling).
    pub prefill_secs: f64,
    /// Seconds spent generating.
    pub decode_secs: f64,
    /// Why it stopped.
    pub stop: StopReason,
    /// Oldest messages left out so the conversation fits the context.
    pub dropped_messages: usize,
}

impl Reply {
    /// A reply that ran nothing through the model (an authored line, or a request given
    /// up before it started): zero counters.
    pub fn without_model(text: &str, stop: StopReason) -> Reply {
        Reply {
            text: text.to_string(),
            prompt_tokens: 0,
            reused_tokens: 0,
            prefilled_tokens: 0,
            generated_tokens: 0,
            prefill_secs: 0.0,
            decode_secs: 0.0,
            stop,
            dropped_messages: 0,
        }
    }
}

/// A loaded model ready to chat.
pub struct Engine {
    file: GgufFile,
    pub(super) model: Model,
    tokenizer: Arc<Tokenizer>,
    template: ChatTemplate,
    pub(super) stop_ids: HashSet<u32>,
    /// Tokens whose keys and values are in the cache, in order.
    processed: Vec<u32>,
    load_time: Duration,
    /// The template's turn terminators, which end a reply when written out as text.
    markers: Vec<String>,
    /// Token ids spelling each form-of-address word (see [`StopRules::vocatives`]).
    vocative_ids: HashMap<String, Vec<u32>>,
}

/// The context [`AUTO_CTX`] gives: the model's training context, but no more positions
/// than fit a KV cache of a quarter of the available memory, at most 4 GiB (f16 keys and
/// values), rounded down to a multiple of 256 and never under 2,048 (or the training
/// context when that is smaller). The cache's pages are touched only as it fills.
pub fn auto_context(cfg: &ModelConfig) -> usize {
    let per_token =
        (2 * cfg.n_layers * cfg.n_kv_heads * cfg.head_dim * KvCache::BYTES_PER_VALUE).max(1) as u64;
    let budget = available_memory().map_or(1 << 30, |m| m / 4).min(4 << 30);
    let fit = ((budget / per_token) as usize / 256) * 256;
    cfg.train_ctx.min(fit.max(2048))
}

/// Bytes of memory available (Linux `MemAvailable`), if known.
fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

impl Engine {
    /// Loads a GGUF model: maps the weights, builds the tokenizer and chat template from
    /// the metadata (or a `tokenizer.json` beside the file) and allocates the KV cache.
    pub fn load(path: &Path, opts: &LoadOptions) -> Result<Engine, EngineError> {
        let start = Instant::now();
        let file = GgufFile::open(path)?;
        let cfg = ModelConfig::from_gguf(&file)?;
        let tokenizer = Tokenizer::for_model(path, file.content())
            .map_err(|e| EngineError::Tokenizer(e.to_string()))?;
        let template = ChatTemplate::from_gguf(file.content(), opts.template_fallback.as_deref())
            .map_err(|e| EngineError::Template(e.to_string()))?;
        let mut stop_ids: HashSet<u32> = tokenizer.eot_ids().iter().copied().collect();
        stop_ids.extend(template.stop_token_ids(&tokenizer));
        let ctx = match opts.ctx {
            AUTO_CTX => auto_context(&cfg),
            n => n.min(cfg.train_ctx).max(64),
        };
        let markers = template.stop_strings();
        let device = super::device::select().map_err(EngineError::Device)?;
        let model = Model::load(&file, cfg, ctx, &device)?;
        Ok(Engine {
            file,
            model,
            tokenizer: Arc::new(tokenizer),
            template,
            stop_ids,
            processed: Vec::new(),
            load_time: start.elapsed(),
            markers,
            vocative_ids: HashMap::new(),
        })
    }

    /// Time the load took.
    pub fn load_time(&self) -> Duration {
        self.load_time
    }

    /// The model's hyper-parameters.
    pub fn config(&self) -> &ModelConfig {
        self.model.config()
    }

    /// The mapped model file.
    pub fn file(&self) -> &GgufFile {
        &self.file
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The tokenizer, shared: a reply ([`Engine::start_reply`]) can decode with it while
    /// the engine runs other sequences.
    pub fn shared_tokenizer(&self) -> Arc<Tokenizer> {
        self.tokenizer.clone()
    }

    /// The template's turn terminators, which end a reply when written out as text.
    pub(super) fn markers(&self) -> &[String] {
        &self.markers
    }

    /// Context capacity in tokens.
    pub fn context_size(&self) -> usize {
        self.model.cache().capacity()
    }

    /// Bytes held by the KV cache.
    pub fn kv_cache_bytes(&self) -> usize {
        self.model.cache().bytes()
    }

    /// Tokens currently in the cache.
    pub fn cached_tokens(&self) -> usize {
        self.processed.len()
    }

    /// Counts the tokens of a plain text.
    pub fn count_tokens(&self, text: &str) -> usize {
        self.tokenizer.encode(text, false, false).len()
    }

    /// The tokens in the KV cache and their keys and values (in the layout of
    /// [`KvCache::export`](super::KvCache::export)), to save them.
    pub fn export_cache(&self) -> Result<(Vec<u32>, Vec<half::f16>), EngineError> {
        let data = self.model.cache().export(self.processed.len())?;
        Ok((self.processed.clone(), data))
    }

    /// Replaces the KV cache with `tokens` and their keys and values, as
    /// [`export_cache`](Self::export_cache) gave them for this model.
    pub fn import_cache(&mut self, tokens: &[u32], data: &[half::f16]) -> Result<(), EngineError> {
        if tokens.len() > self.context_size() {
            return Err(EngineError::PromptTooLong {
                tokens: tokens.len(),
                ctx: self.context_size(),
            });
        }
        self.processed.clear();
        self.model.cache_mut().import(tokens.len(), data)?;
        self.processed = tokens.to_vec();
        Ok(())
    }

    /// How many leading tokens of `tokens` the KV cache already holds.
    pub fn cached_prefix(&self, tokens: &[u32]) -> usize {
        common_prefix(&self.processed, tokens)
    }

    /// Forgets the cached conversation.
    pub fn reset(&mut self) {
        self.processed.clear();
        self.model.cache_mut().truncate(0);
    }

    /// Renders `messages` with the chat template and tokenizes the result, leaving out
    /// the oldest non-system messages until prompt plus `reserve` tokens fit the context.
    /// They are left out in large steps at stable places (see [`super::trim`]), so the
    /// prompt keeps its cached prefix for many turns after a cut. Returns the tokens and
    /// how many messages were left out.
    pub fn prompt_tokens(
        &self,
        messages: &[ChatMessage],
        reserve: usize,
    ) -> Result<(Vec<u32>, usize), EngineError> {
        if messages.iter().all(|m| m.content.trim().is_empty()) {
            return Err(EngineError::EmptyPrompt);
        }
        let ctx = self.context_size();
        let budget = ctx.saturating_sub(reserve.min(ctx / 2));
        let keep_system = usize::from(messages.first().is_some_and(|m| m.role == "system"));
        let rest = &messages[keep_system..];
        let mut longest = 0;
        let mut attempt = |dropped: usize| -> Result<Option<Vec<u32>>, EngineError> {
            let mut msgs: Vec<ChatMessage> = messages[..keep_system].to_vec();
            msgs.extend_from_slice(&rest[dropped..]);
            let text = self
                .template
                .render(&msgs, true)
                .map_err(|e| EngineError::Template(e.to_string()))?;
            let tokens = self.tokenizer.encode_chat(&text);
            if tokens.len() <= budget {
                return Ok(Some(tokens));
            }
            longest = if dropped == 0 { tokens.len() } else { longest.min(tokens.len()) };
            Ok(None)
        };
        if let Some(tokens) = attempt(0)? {
            return Ok((tokens, 0));
        }
        // Per-message sizes (content plus the template's few tokens around it).
        let sizes: Vec<usize> = rest.iter().map(|m| self.count_tokens(&m.content) + 4).collect();
        let can_start: Vec<bool> = rest.iter().map(|m| m.role != "assistant").collect();
        let system = messages[..keep_system].iter().map(|m| self.count_tokens(&m.content) + 4);
        let chunk = budget.saturating_sub(system.sum()) / 2;
        let n = rest.len();
        let cuts = super::trim::cut_points(&sizes[..n - 1], &can_start[..n - 1], chunk);
        match super::trim::fit(n, &cuts, &can_start, &mut attempt)? {
            Some((tokens, dropped)) => Ok((tokens, dropped)),
            None => Err(EngineError::PromptTooLong { tokens: longest, ctx: budget }),
        }
    }

    /// Runs `tokens` through the model, reusing the cached prefix they share with what
    /// was processed before, and returns the logits after the last token and the number
    /// of tokens reused.
    pub fn eval(&mut self, tokens: &[u32]) -> Result<(Vec<f32>, usize), EngineError> {
        if tokens.is_empty() {
            return Err(EngineError::EmptyPrompt);
        }
        if tokens.len() > self.context_size() {
            return Err(EngineError::PromptTooLong {
                tokens: tokens.len(),
                ctx: self.context_size(),
            });
        }
        let common = common_prefix(&self.processed, tokens).min(tokens.len() - 1);
        self.processed.truncate(common);
        self.model.cache_mut().truncate(common);
        let logits = self.model.forward(&tokens[common..]);
        let logits = match logits {
            Ok(l) => l,
            Err(e) => {
                // Keep the cache consistent with `processed` after a failure.
                self.reset();
                return Err(e.into());
            }
        };
        self.processed.extend_from_slice(&tokens[common..]);
        Ok((logits.to_vec1::<f32>()?, common))
    }

    /// Answers the conversation `messages` (the model speaks next), streaming text to
    /// `on_text` as it is decoded. Setting `cancel` stops the answer; what was generated
    /// is returned and the cache stays usable.
    pub fn chat(
        &mut self,
        messages: &[ChatMessage],
        opts: &GenerateOptions,
        cancel: &AtomicBool,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<Reply, EngineError> {
        self.chat_with(messages, opts, &StopRules::default(), cancel, on_text)
    }

    /// [`chat`](Self::chat) under `rules`: where the answer ends and how it may address
    /// the reader.
    pub fn chat_with(
        &mut self,
        messages: &[ChatMessage],
        opts: &GenerateOptions,
        rules: &StopRules,
        cancel: &AtomicBool,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<Reply, EngineError> {
        let (tokens, dropped) = self.prompt_tokens(messages, opts.max_tokens)?;
        let mut reply = self.generate_with(&tokens, opts, rules, cancel, on_text)?;
        reply.dropped_messages = dropped;
        Ok(reply)
    }

    /// Generates after a tokenized prompt.
    pub fn generate(
        &mut self,
        prompt: &[u32],
        opts: &GenerateOptions,
        cancel: &AtomicBool,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<Reply, EngineError> {
        self.generate_with(prompt, opts, &StopRules::default(), cancel, on_text)
    }

    /// Generates after a tokenized prompt under `rules`. Every reply also gets the
    /// repetition guard ([`super::repeat`]), ends at a control token or a turn marker
    /// written as text, and is decoded on character boundaries: a token that would split
    /// a UTF-8 character is resampled, so no U+FFFD reaches the text. What `on_text`
    /// receives, joined, is exactly the returned text.
    pub fn generate_with(
        &mut self,
        prompt: &[u32],
        opts: &GenerateOptions,
        rules: &StopRules,
        cancel: &AtomicBool,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<Reply, EngineError> {
        let start = Instant::now();
        let (mut logits, reused) = self.eval(prompt)?;
        let prefill_secs = start.elapsed().as_secs_f64();
        let decode_start = Instant::now();
        let tokenizer = self.shared_tokenizer();
        let mut reply = self.start_reply(&tokenizer, opts, rules);
        let stop = loop {
            let capacity = self.context_size();
            let next = reply.next(self, &mut logits, &self.processed, capacity, cancel, on_text);
            match next {
                Next::Token(t) => logits = step(&mut self.model, &mut self.processed, t)?,
                Next::Last(t) => {
                    // Keep the last token in the cache so the next turn can reuse it.
                    step(&mut self.model, &mut self.processed, t)?;
                    break StopReason::MaxTokens;
                }
                Next::Stop(why) => break why,
            }
        };
        let (text, generated_tokens) = reply.finish(stop, on_text);
        Ok(Reply {
            text,
            prompt_tokens: prompt.len(),
            reused_tokens: reused,
            prefilled_tokens: prompt.len() - reused,
            generated_tokens,
            prefill_secs,
            decode_secs: decode_start.elapsed().as_secs_f64(),
            stop,
            dropped_messages: 0,
        })
    }

    /// The ids of tokens that spell one of `words` (after leading white space, ignoring
    /// case, perhaps with punctuation after it), computed once per word.
    pub(super) fn vocative_tokens(&mut self, words: &[String]) -> Vec<u32> {
        let mut out = Vec::new();
        for w in words {
            let w = w.to_lowercase();
            if !self.vocative_ids.contains_key(&w) {
                let ids = (0..self.tokenizer.vocab_size() as u32)
                    .filter(|&id| {
                        let t = self.tokenizer.decode_with(&[id], true).trim_start().to_lowercase();
                        t.strip_prefix(w.as_str()).is_some_and(|after| {
                            after.chars().next().is_none_or(|c| !c.is_alphanumeric())
                        })
                    })
                    .collect();
                self.vocative_ids.insert(w.clone(), ids);
            }
            out.extend_from_slice(&self.vocative_ids[&w]);
        }
        out
    }

    /// Constrained choice: the index of the `choices` continuation the model finds most
    /// likely after the conversation (mean log-probability per token), so the answer is
    /// always one of them.
    pub fn choose(
        &mut self,
        messages: &[ChatMessage],
        choices: &[&str],
    ) -> Result<usize, EngineError> {
        let (prompt, _) = self.prompt_tokens(messages, 64)?;
        let mut best = (0, f32::NEG_INFINITY);
        for (i, choice) in choices.iter().enumerate() {
            let cont = self.tokenizer.encode(choice, false, false);
            if cont.is_empty() {
                continue;
            }
            let mut seq = prompt.clone();
            let mut total = 0.0;
            for &t in &cont {
                let (logits, _) = self.eval(&seq)?;
                total += log_softmax_at(&logits, t as usize);
                seq.push(t);
            }
            let score = total / cont.len() as f32;
            if score > best.1 {
                best = (i, score);
            }
        }
        Ok(best.0)
    }
}

/// Runs one generated token through the model and records it as processed.
fn step(model: &mut Model, processed: &mut Vec<u32>, token: u32) -> Result<Vec<f32>, EngineError> {
    let logits = model.forward(&[token])?;
    processed.push(token);
    Ok(logits.to_vec1::<f32>()?)
}

/// How many leading tokens `a` and `b` share.
pub(super) fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

fn log_softmax_at(logits: &[f32], i: usize) -> f32 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = logits.iter().map(|l| (l - max).exp()).sum();
    logits.get(i).map_or(f32::NEG_INFINITY, |l| l - max - sum.ln())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_and_log_softmax() {
        assert_eq!(common_prefix(&[1, 2, 3], &[1, 2, 4, 5]), 2);
        let l = [0.0f32, 0.0];
        assert!((log_softmax_at(&l, 0) - (0.5f32).ln()).abs() < 1e-6);
    }
}
