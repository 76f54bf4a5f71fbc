//! The critique's model path on any chat backend: [`CritiqueModel`] on top of
//! [`ChatBackend`] (our engine, or a remote server).

use super::CritiqueModel;
use crate::backend::{ChatBackend, ChatRequest};
use crate::engine::{GenerateOptions, SamplingParams};
use crate::gguf::chat_template::ChatMessage;
use std::sync::atomic::AtomicBool;

/// Borrows a chat backend as a critique model. Choices are constrained (the backend picks
/// one of the candidates); generation is greedy, so a critique is reproducible.
pub struct BackendModel<'a>(pub &'a mut dyn ChatBackend);

fn messages(system: &str, user: &str) -> [ChatMessage; 2] {
    [ChatMessage::new("system", system), ChatMessage::new("user", user)]
}

impl CritiqueModel for BackendModel<'_> {
    fn choose(&mut self, system: &str, user: &str, choices: &[&str]) -> Result<usize, String> {
        self.0.choose(&messages(system, user), choices).map_err(|e| e.to_string())
    }

    fn generate(&mut self, system: &str, user: &str, max_tokens: usize) -> Result<String, String> {
        let msgs = messages(system, user);
        let opts = GenerateOptions { sampling: SamplingParams::greedy(), max_tokens };
        self.0
            .chat(&ChatRequest::new(&msgs, opts), &AtomicBool::new(false), &mut |_| {})
            .map(|r| r.text.trim().to_string())
            .map_err(|e| e.to_string())
    }
}
