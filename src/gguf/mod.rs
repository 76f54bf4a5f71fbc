//! GGUF model files: memory-mapped weights and metadata, the tokenizer stored in the
//! metadata, chat templates, and random-weight models for tests and benchmarks.

pub mod chat_template;
pub mod file;
pub mod metadata;
pub mod reader;
pub mod synth;
pub mod tokenizer;

pub use chat_template::{ChatMessage, ChatTemplate, TemplateError};
pub use file::{GgufError, GgufFile};
pub use metadata::{MetaError, Metadata};
pub use tokenizer::{StreamDecoder, Tokenizer, TokenizerError};
