//! The inference engine: our forward pass over GGUF weights, a reusable KV cache,
//! sampling and streaming generation.

pub mod activation;
pub mod attention;
pub mod batch;
pub mod cache;
pub mod config;
mod device;
pub mod f16;
pub mod generate;
pub mod linear;
pub mod model;
pub mod prompt_cache;
pub mod repeat;
pub mod reply;
pub mod sampler;
pub mod stop;
pub mod team;
pub mod trim;

pub use batch::{argmax, SavedSequence, Sequence};
pub use cache::{KvCache, KvSnapshot};
pub use config::{Activation, Arch, ConfigError, ModelConfig, Quirks, RopeStyle};
pub use generate::{
    auto_context, Engine, EngineError, GenerateOptions, LoadOptions, Reply, StopReason, AUTO_CTX,
};
pub use model::Model;
pub use prompt_cache::PromptCache;
pub use reply::{Next, ReplyGen};
pub use sampler::{Sampler, SamplingParams};
pub use stop::StopRules;
