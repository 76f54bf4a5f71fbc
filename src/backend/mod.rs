//! The model behind the coach: one chat-backend trait that every caller (role-play,
//! critique, coach Q&A, the front ends) talks to, whatever runs the model.
//!
//! - [`local`]: our own engine on a GGUF file ([`crate::engine::Engine`]).
//! - [`openai`]: a remote OpenAI-compatible server (vLLM, llama.cpp's server, Ollama).
//!
//! The trait is deliberately small: stream a reply, choose among candidate
//! continuations, count tokens, and warm, snapshot and restore a KV cache where the
//! backend has one. What differs between backends (how a choice is constrained, whether
//! a cache exists) stays behind it.

pub mod local;
pub mod openai;
pub mod shared;

use crate::engine::{EngineError, GenerateOptions, PromptCache, Reply, StopRules};
use crate::gguf::chat_template::ChatMessage;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

/// Why a backend call failed.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// Our engine failed (bad prompt, template, computation).
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// Even the system prompt and the last message do not fit the context.
    #[error("the prompt needs {tokens} tokens but the context holds {ctx}; shorten it")]
    PromptTooLong {
        /// Tokens needed.
        tokens: usize,
        /// Context capacity.
        ctx: usize,
    },
    /// The model's thread stopped before answering (the server is shutting down, or the
    /// model failed on the request).
    #[error("the model stopped before answering (shutting down, or it failed); try again")]
    Stopped,
    /// A remote server could not be reached, refused the request or answered nonsense.
    #[error("remote model {endpoint}: {reason}")]
    Remote {
        /// The server's base URL (never with credentials).
        endpoint: String,
        /// What went wrong, in words a user can act on.
        reason: String,
    },
}

impl BackendError {
    /// True when the prompt does not fit the context (the CLI adds `--ctx` advice).
    pub fn is_prompt_too_long(&self) -> bool {
        matches!(
            self,
            BackendError::PromptTooLong { .. }
                | BackendError::Engine(EngineError::PromptTooLong { .. })
        )
    }
}

/// One chat request: the conversation (the model speaks next), how to sample, and
/// where the reply ends.
#[derive(Clone, Debug)]
pub struct ChatRequest<'a> {
    /// The conversation, oldest first; a leading `system` message is the instructions.
    pub messages: &'a [ChatMessage],
    /// Sampling and the token budget.
    pub options: GenerateOptions,
    /// Where the reply ends and how it may address the reader.
    pub rules: StopRules,
}

impl<'a> ChatRequest<'a> {
    /// A request with the default stop rules.
    pub fn new(messages: &'a [ChatMessage], options: GenerateOptions) -> Self {
        ChatRequest { messages, options, rules: StopRules::default() }
    }
}

/// What a backend is, for display, reports and policy choices.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BackendInfo {
    /// `local` or `openai`.
    pub kind: &'static str,
    /// The model's name as the backend knows it (file name or remote model id).
    pub model: String,
    /// The GGUF file, for a local model.
    pub path: Option<PathBuf>,
    /// Context window in tokens (an estimate where the server does not say).
    pub context_size: usize,
}

/// A model that chats. `Send` so that a server can move it to a worker thread.
pub trait ChatBackend: Send {
    /// What this backend is.
    fn info(&self) -> BackendInfo;

    /// Answers `req.messages`, streaming text to `on_text` as it is decoded; what
    /// `on_text` receives, joined, is the returned text. Setting `cancel` stops the
    /// answer: what was generated is returned with [`crate::engine::StopReason::Cancelled`].
    fn chat(
        &mut self,
        req: &ChatRequest<'_>,
        cancel: &AtomicBool,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<Reply, BackendError>;

    /// Constrained choice: the index of the `choices` continuation the model picks after
    /// `messages`; always one of them.
    fn choose(&mut self, messages: &[ChatMessage], choices: &[&str])
        -> Result<usize, BackendError>;

    /// The tokens of a plain text (an estimate where the backend has no tokenizer here).
    fn count_tokens(&self, text: &str) -> usize;

    /// Context window in tokens.
    fn context_size(&self) -> usize {
        self.info().context_size
    }

    /// Runs `messages` into the cache ahead of the next reply (keeping `reserve` tokens
    /// for it), loading or saving it in `saved` where that is worth it. Returns the
    /// tokens run. Backends without a cache do nothing.
    fn prefill(
        &mut self,
        _messages: &[ChatMessage],
        _reserve: usize,
        _saved: Option<&PromptCache>,
    ) -> Result<usize, BackendError> {
        Ok(0)
    }

    /// Tokens in the cache (0 without one).
    fn cached_tokens(&self) -> usize {
        0
    }

    /// Forgets the cached conversation.
    fn reset(&mut self) {}

    /// How the last [`choose`](Self::choose) was decided, for reports: `guided` (the
    /// server's guided decoding), `parsed` (a plain answer read back) or `rules` (it
    /// failed, so the caller falls back to the rules). `None` where choices are always
    /// constrained (our engine scores the candidates) or none was made.
    fn last_choice_mode(&self) -> Option<&'static str> {
        None
    }

    /// Why the last reply is incomplete when the backend, not the user, cut it short (a
    /// server that closed the stream mid-reply; the reply then says
    /// [`crate::engine::StopReason::Cancelled`]). `None` when it ended normally.
    fn incomplete(&self) -> Option<&str> {
        None
    }

    /// The local engine behind this backend, for the few things only it has (benchmarks,
    /// `/info`'s tensor details). `None` for remote backends.
    fn engine(&mut self) -> Option<&mut crate::engine::Engine> {
        None
    }
}

/// Opens the backend for a resolved model: our engine on its GGUF file, or a remote
/// server (connecting to it, so an unreachable one fails here).
pub fn open(
    resolved: &crate::catalogue::ResolvedModel,
    opts: &crate::engine::LoadOptions,
) -> Result<Box<dyn ChatBackend>, BackendError> {
    if let Some(remote) = &resolved.remote {
        let ctx = resolved.entry.as_ref().map_or(0, |e| e.context_length as usize);
        return Ok(Box::new(openai::OpenAiBackend::connect(remote, ctx)?));
    }
    Ok(Box::new(crate::engine::Engine::load(&resolved.path, opts)?))
}
