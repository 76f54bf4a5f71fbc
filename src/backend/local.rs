//! [`ChatBackend`] for our own engine: a GGUF model on this machine.

use super::{BackendError, BackendInfo, ChatBackend, ChatRequest};
use crate::engine::{Engine, PromptCache, Reply};
use crate::gguf::chat_template::ChatMessage;
use std::sync::atomic::AtomicBool;

impl ChatBackend for Engine {
    fn info(&self) -> BackendInfo {
        let path = self.file().path().to_path_buf();
        let model = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
        BackendInfo { kind: "local", model, path: Some(path), context_size: self.context_size() }
    }

    fn chat(
        &mut self,
        req: &ChatRequest<'_>,
        cancel: &AtomicBool,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<Reply, BackendError> {
        Ok(self.chat_with(req.messages, &req.options, &req.rules, cancel, on_text)?)
    }

    fn choose(
        &mut self,
        messages: &[ChatMessage],
        choices: &[&str],
    ) -> Result<usize, BackendError> {
        Ok(Engine::choose(self, messages, choices)?)
    }

    fn count_tokens(&self, text: &str) -> usize {
        Engine::count_tokens(self, text)
    }

    fn context_size(&self) -> usize {
        Engine::context_size(self)
    }

    fn prefill(
        &mut self,
        messages: &[ChatMessage],
        reserve: usize,
        saved: Option<&PromptCache>,
    ) -> Result<usize, BackendError> {
        /// Fewer new tokens than this are quicker to run than a file is to read.
        const WORTH_A_FILE: usize = 32;
        let (tokens, _) = self.prompt_tokens(messages, reserve)?;
        let missing = tokens.len() - self.cached_prefix(&tokens);
        let saved = saved.filter(|_| missing > WORTH_A_FILE);
        // A file that cannot be read or does not match is a miss, never an error.
        if saved.is_some_and(|s| s.load(self, &tokens).unwrap_or(false)) {
            return Ok(0);
        }
        let (_, reused) = self.eval(&tokens)?;
        if let Some(saved) = saved {
            // Not saving only costs the next start its prefill.
            let _ = saved.save(self);
        }
        Ok(tokens.len() - reused)
    }

    fn cached_tokens(&self) -> usize {
        Engine::cached_tokens(self)
    }

    fn reset(&mut self) {
        Engine::reset(self)
    }

    fn engine(&mut self) -> Option<&mut Engine> {
        Some(self)
    }
}
