//! Architecture hyper-parameters read from GGUF metadata.

use crate::gguf::metadata::keys;
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

/// How RoPE pairs the dimensions of a head (llama.cpp's `LLAMA_ROPE_TYPE_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RopeStyle {
    /// Adjacent pairs `(2i, 2i+1)` (llama.cpp's `NORM`).
    Interleaved,
    /// The two halves of the head `(i, i + d/2)` (GPT-NeoX).
    Neox,
}

/// The activation of the gated MLP: `act(gate) · up`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// SiLU (SwiGLU).
    Silu,
    /// GELU, tanh approximation (GeGLU).
    GeluTanh,
}

/// What sets an architecture apart from the plain llama block. The forward passes read
/// these (through [`ModelConfig`]) and never the architecture itself.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Quirks {
    /// RoPE pairing.
    pub rope_style: RopeStyle,
    /// MLP activation.
    pub activation: Activation,
    /// q/k/v projections may carry biases (`attn_{q,k,v}.bias`).
    pub qkv_bias: bool,
    /// Per-head RMSNorm of queries and keys before RoPE (`attn_{q,k}_norm`).
    pub qk_norm: bool,
    /// Sandwich norms: RMSNorm of the attention and MLP outputs before the residual add
    /// (`post_attention_norm`, `post_ffw_norm`).
    pub sandwich_norms: bool,
    /// Embeddings are multiplied by √hidden.
    pub scale_embeddings: bool,
    /// `attention.sliding_window` is read: local layers attend within a window.
    pub sliding_window: bool,
    /// With a sliding window, every `swa_pattern`-th layer is global.
    pub swa_pattern: usize,
    /// RoPE base of the local (sliding-window) layers.
    pub rope_base_local: f32,
}

impl Arch {
    /// The table of architecture differences (llama.cpp keeps the same in
    /// `llama-hparams`/`llama-model.cpp`); the one place the forward pass's behaviour
    /// depends on the architecture.
    pub fn quirks(self) -> Quirks {
        let llama = Quirks {
            rope_style: RopeStyle::Interleaved,
            activation: Activation::Silu,
            qkv_bias: false,
            qk_norm: false,
            sandwich_norms: false,
            scale_embeddings: false,
            sliding_window: false,
            swa_pattern: 6,
            rope_base_local: 10_000.0,
        };
        match self {
            Arch::Llama => llama,
            Arch::Qwen2 => Quirks { rope_style: RopeStyle::Neox, qkv_bias: true, ..llama },
            Arch::Qwen3 => Quirks { rope_style: RopeStyle::Neox, qk_norm: true, ..llama },
            Arch::Gemma3 => Quirks {
                rope_style: RopeStyle::Neox,
                activation: Activation::GeluTanh,
                qk_norm: true,
                sandwich_norms: true,
                scale_embeddings: true,
                sliding_window: true,
                ..llama
            },
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
    /// RoPE base of sliding-window layers.
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
    /// RoPE pairing.
    pub rope_style: RopeStyle,
    /// MLP activation.
    pub activation: Activation,
    /// q/k/v biases are loaded when present.
    pub qkv_bias: bool,
    /// Per-head q/k RMSNorm.
    pub qk_norm: bool,
    /// Post-attention and post-MLP RMSNorms.
    pub sandwich_norms: bool,
    /// Factor the embeddings are multiplied by, if any (√hidden for Gemma).
    pub embed_scale: Option<f32>,
    /// The output layer reuses the embedding table (no `output.weight`).
    pub tied_output: bool,
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

/// Most transformer blocks we accept (the largest open models have about 130).
const MAX_LAYERS: usize = 1024;

impl ModelConfig {
    /// Reads the hyper-parameters of `file` and checks them, and the shapes of the tensors
    /// they imply, before anything is loaded. Errors name the key or tensor at fault.
    pub fn from_gguf(file: &GgufFile) -> Result<ModelConfig, ConfigError> {
        let name = file.architecture()?;
        let arch = Arch::from_name(&name).ok_or(ConfigError::UnsupportedArch(name.clone()))?;
        let k = |s: &str| format!("{name}.{s}");
        let invalid = |key: &str, why: String| ConfigError::Invalid(format!("{}: {why}", k(key)));
        let positive = |key: &str| -> Result<usize, ConfigError> {
            match file.meta_usize(&k(key))? {
                0 => Err(invalid(key, "is 0".into())),
                v => Ok(v),
            }
        };
        // A float key, if present, must be finite and positive.
        let float = |key: &str, default: f32| -> Result<f32, ConfigError> {
            if file.meta(&k(key)).is_none() {
                return Ok(default);
            }
            let v = file.meta_f32(&k(key))?;
            if !v.is_finite() || v <= 0.0 {
                return Err(invalid(key, format!("is {v}, not a positive finite number")));
            }
            Ok(v)
        };
        let optional = |key: &str| file.meta(&k(key)).is_some();
        let n_layers = positive("block_count")?;
        if n_layers > MAX_LAYERS {
            return Err(invalid("block_count", format!("is {n_layers} (at most {MAX_LAYERS})")));
        }
        let hidden = positive("embedding_length")?;
        let n_heads = positive("attention.head_count")?;
        let n_kv_heads = if optional("attention.head_count_kv") {
            positive("attention.head_count_kv")?
        } else {
            n_heads
        };
        if !n_heads.is_multiple_of(n_kv_heads) {
            return Err(ConfigError::Invalid(format!(
                "{n_heads} attention heads cannot share {n_kv_heads} key/value heads"
            )));
        }
        let head_dim = if optional("attention.key_length") {
            positive("attention.key_length")?
        } else {
            hidden / n_heads
        };
        if optional("attention.value_length") && positive("attention.value_length")? != head_dim {
            return Err(invalid("attention.value_length", "differs from the key length".into()));
        }
        let quirks = arch.quirks();
        let sliding_window = if quirks.sliding_window && optional("attention.sliding_window") {
            Some(positive("attention.sliding_window")?)
        } else {
            None
        };
        let embed = file.tensor("token_embd.weight")?;
        let vocab = match embed.dims.as_slice() {
            [v, _] => *v,
            d => {
                return Err(ConfigError::Invalid(format!(
                    "tensor token_embd.weight has shape {d:?}, not [vocabulary, hidden]"
                )))
            }
        };
        if file.meta(keys::TOKENS).is_some() {
            let n = file.metadata().array(keys::TOKENS).ok().flatten().map_or(0, <[_]>::len);
            if n != vocab {
                return Err(ConfigError::Invalid(format!(
                    "tokenizer.ggml.tokens has {n} tokens but token_embd.weight has {vocab} rows"
                )));
            }
        }
        let cfg = ModelConfig {
            arch,
            n_layers,
            hidden,
            n_heads,
            n_kv_heads,
            head_dim,
            eps: float("attention.layer_norm_rms_epsilon", 1e-6)? as f64,
            rope_base: float("rope.freq_base", 10_000.0)?,
            rope_base_local: quirks.rope_base_local,
            rope_scale: float("rope.scaling.factor", 1.0)?.max(1.0),
            train_ctx: if optional("context_length") { positive("context_length")? } else { 4096 },
            sliding_window,
            swa_pattern: quirks.swa_pattern,
            vocab,
            rope_style: quirks.rope_style,
            activation: quirks.activation,
            qkv_bias: quirks.qkv_bias,
            qk_norm: quirks.qk_norm,
            sandwich_norms: quirks.sandwich_norms,
            embed_scale: quirks.scale_embeddings.then(|| (hidden as f64).sqrt() as f32),
            tied_output: !file.has_tensor("output.weight"),
        };
        if !cfg.head_dim.is_multiple_of(2) {
            return Err(ConfigError::Invalid(format!("odd head dimension {}", cfg.head_dim)));
        }
        super::model::check::tensors(file, &cfg).map_err(ConfigError::Invalid)?;
        Ok(cfg)
    }

    /// True when layer `i` attends only within the sliding window.
    pub fn is_local_layer(&self, i: usize) -> bool {
        self.sliding_window.is_some() && !(i + 1).is_multiple_of(self.swa_pattern)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf::synth::{write_random_model, SynthSpec};

    /// The table's quirks and the file's sliding window reach the config of each
    /// architecture; a file without `output.weight` ties the output to the embeddings.
    #[test]
    fn quirks_reach_the_config() {
        let dir = tempfile::tempdir().unwrap();
        for arch in ["llama", "qwen2", "qwen3", "gemma3"] {
            let spec = SynthSpec::tiny(arch);
            let path = dir.path().join(format!("{arch}.gguf"));
            write_random_model(&path, &spec, 3).unwrap();
            let cfg = ModelConfig::from_gguf(&GgufFile::open(&path).unwrap()).unwrap();
            let gemma = arch == "gemma3";
            let rope = if arch == "llama" { RopeStyle::Interleaved } else { RopeStyle::Neox };
            assert_eq!(cfg.rope_style, rope, "{arch}");
            let act = if gemma { Activation::GeluTanh } else { Activation::Silu };
            assert_eq!(cfg.activation, act, "{arch}");
            assert_eq!(cfg.qkv_bias, arch == "qwen2", "{arch}");
            assert_eq!(cfg.qk_norm, arch == "qwen3" || gemma, "{arch}");
            assert_eq!(cfg.sandwich_norms, gemma, "{arch}");
            let scale = gemma.then(|| (spec.hidden as f32).sqrt());
            assert_eq!(cfg.embed_scale, scale, "{arch}");
            assert_eq!(cfg.sliding_window, spec.sliding_window, "{arch}");
            assert_eq!(
                (0..6).filter(|&i| cfg.is_local_layer(i)).count(),
                if gemma { 5 } else { 0 }
            );
            assert!(cfg.tied_output, "{arch}");
        }
    }
}
