//! The critique's model path on our engine: [`CritiqueModel`] for [`Engine`].

use super::CritiqueModel;
use crate::engine::{Engine, GenerateOptions, SamplingParams};
use crate::gguf::chat_template::ChatMessage;
use std::sync::atomic::AtomicBool;

/// Borrows an engine as a critique model. Choices are constrained (scored continuations);
/// generation is greedy, so a critique is reproducible.
pub struct EngineModel<'a>(pub &'a mut Engine);

fn messages(system: &str, user: &str) -> [ChatMessage; 2] {
    [ChatMessage::new("system", system), ChatMessage::new("user", user)]
}

impl CritiqueModel for EngineModel<'_> {
    fn choose(&mut self, system: &str, user: &str, choices: &[&str]) -> Result<usize, String> {
        self.0.choose(&messages(system, user), choices).map_err(|e| e.to_string())
    }

    fn generate(&mut self, system: &str, user: &str, max_tokens: usize) -> Result<String, String> {
        let opts = GenerateOptions { sampling: SamplingParams::greedy(), max_tokens };
        self.0
            .chat(&messages(system, user), &opts, &AtomicBool::new(false), &mut |_| {})
            .map(|r| r.text.trim().to_string())
            .map_err(|e| e.to_string())
    }
}
