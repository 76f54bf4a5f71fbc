//! GGUF files: the tokenizer in their metadata and their chat templates.
pub mod chat_template;
pub mod tokenizer;

pub use chat_template::{ChatMessage, ChatTemplate, TemplateError};
pub use tokenizer::{StreamDecoder, Tokenizer, TokenizerError};
