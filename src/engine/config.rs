//! Architecture hyper-parameters read from GGUF metadata.

use crate::gguf::{GgufError, GgufFile};

/// The architectures our forward pass implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    /// Llama family (SmolLM2, Llama 3): interleaved RoPE.
    Llama,
    /// Qwen2 / Qwen2.5: q/k/v biases, NeoX RoPE.
    Qwen2,
    /// Qwen3: per-head q/k RMSNorm, NeoX RoPE.
    Qwen3,
    /// Gemma 3: sandwich norms, q/k norms, GELU, sliding-window layers, scaled embeddings.
    Gemma3,
}

impl Arch {
    /// Parses `general.architecture`.
    pub fn from_name(name: &str) -> Option<Arch> {
        match name {
            "llama" => Some(Arch::Llama),
            "qwen2" => Some(Arch::Qwen2),
            "qwen3" => Some(Arch::Qwen3),
            "gemma3" => Some(Arch::Gemma3),
            _ => None,
        }
    }

    /// The GGUF name.
    pub fn name(self) -> &'static str {
        match self {
            Arch::Llama => "llama",
            Arch::Qwen2 => "qwen2",
            Arch::Qwen3 => "qwen3",
            Arch::Gemma3 => "gemma3",
        }
    }
}

/// Hyper-parameters of a model.
#[derive(Clone, Debug)]
pub struct ModelConfig {
    /// Architecture.
    pub arch: Arch,
    /// Number of transformer blocks.
    pub n_layers: usize,
    /// Hidden size.
    pub hidden: usize,
    /// Query heads.
    pub n_heads: usize,
    /// Key/value heads.
    pub n_kv_heads: usize,
    /// Per-head dimension of queries and keys (and values).
    pub head_dim: usize,
    /// RMSNorm epsilon.
    pub eps: f64,
    /// RoPE base frequency (global layers).
    pub rope_base: f32,
    /// RoPE base of sliding-window layers (Gemma 3).
    pub rope_base_local: f32,
    /// Linear RoPE scaling factor of global layers (1.0 = none).
    pub rope_scale: f32,
    /// Context length the model was trained for.
    pub train_ctx: usize,
    /// Sliding window of local layers, if any.
    pub sliding_window: Option<usize>,
    /// Every `swa_pattern`-th layer is global when a sliding window is set.
    pub swa_pattern: usize,
    /// Vocabulary size (rows of the embedding table).
    pub vocab: usize,
}

/// Why a model cannot be run.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file itself is unusable.
    #[error(transparent)]
    Gguf(#[from] GgufError),
    /// An architecture we do not implement.
    #[error("unsupported model architecture {0:?}: upward runs llama, qwen2, qwen3 and gemma3 GGUF models")]
    UnsupportedArch(String),
    /// Inconsistent hyper-parameters.
    #[error("invalid model hyper-parameters: {0}")]
    Invalid(String),
}

impl ModelConfig {
    /// Reads the hyper-parameters of `file`.
    pub fn from_gguf(file: &GgufFile) -> Result<ModelConfig, ConfigError> {
        let name = file.architecture()?;
        let arch = Arch::from_name(&name).ok_or(ConfigError::UnsupportedArch(name.clone()))?;
        let k = |s: &str| format!("{name}.{s}");
        let hidden = file.meta_usize(&k("embedding_length"))?;
        let n_heads = file.meta_usize(&k("attention.head_count"))?;
        let n_kv_heads = file.meta_usize(&k("attention.head_count_kv")).unwrap_or(n_heads);
        if n_heads == 0 || n_kv_heads == 0 || n_heads % n_kv_heads != 0 {
            return Err(ConfigError::Invalid(format!(
                "{n_heads} attention heads cannot share {n_kv_heads} key/value heads"
            )));
        }
        let head_dim = file.meta_usize(&k("attention.key_length")).unwrap_or(hidden / n_heads);
        let sliding_window = match arch {
            Arch::Gemma3 => file.meta_usize(&k("attention.sliding_window")).ok(),
            _ => None,
        };
        let vocab = file.tensor("token_embd.weight")?.dims[0];
        let cfg = ModelConfig {
            arch,
            n_layers: file.meta_usize(&k("block_count"))?,
            hidden,
            n_heads,
            n_kv_heads,
            head_dim,
            eps: file.meta_f32(&k("attention.layer_norm_rms_epsilon")).unwrap_or(1e-6) as f64,
            rope_base: file.meta_f32(&k("rope.freq_base")).unwrap_or(10_000.0),
            rope_base_local: 10_000.0,
            rope_scale: file.meta_f32(&k("rope.scaling.factor")).unwrap_or(1.0).max(1.0),
            train_ctx: file.meta_usize(&k("context_length")).unwrap_or(4096),
            sliding_window,
            swa_pattern: 6,
            vocab,
        };
        if !cfg.head_dim.is_multiple_of(2) {
            return Err(ConfigError::Invalid(format!("odd head dimension {}", cfg.head_dim)));
        }
        Ok(cfg)
    }

    /// True when layer `i` attends only within the sliding window.
    pub fn is_local_layer(&self, i: usize) -> bool {
        self.sliding_window.is_some() && !(i + 1).is_multiple_of(self.swa_pattern)
    }
}
