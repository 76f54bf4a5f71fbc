//! The critique's model on any backend: [`CritiqueModel`] for a [`ChatBackend`].

use super::{ChatBackend, ChatRequest};
use crate::critique::CritiqueModel;
use crate::engine::{GenerateOptions, SamplingParams};
use crate::gguf::chat_template::ChatMessage;
use std::sync::atomic::AtomicBool;

/// Borrows a backend as a critique model. Choices are constrained as the backend
/// constrains them (see [`ChatBackend::last_choice_mode`]); generation is greedy, so a
/// critique is reproducible where the backend is.
pub struct BackendModel<'a>(pub &'a mut dyn ChatBackend);

fn messages(system: &str, user: &str) -> [ChatMessage; 2] {
    [ChatMessage::new("system", system), ChatMessage::new("user", user)]
}

impl CritiqueModel for BackendModel<'_> {
    fn choose(&mut self, system: &str, user: &str, choices: &[&str]) -> Result<usize, String> {
        self.0.choose(&messages(system, user), choices).map_err(|e| e.to_string())
    }

    fn generate(&mut self, system: &str, user: &str, max_tokens: usize) -> Result<String, String> {
        let opts = GenerateOptions { sampling: SamplingParams::greedy(), max_tokens };
        let msgs = messages(system, user);
        self.0
            .chat(&ChatRequest::new(&msgs, opts), &AtomicBool::new(false), &mut |_| {})
            .map(|r| r.text.trim().to_string())
            .map_err(|e| e.to_string())
    }
}
