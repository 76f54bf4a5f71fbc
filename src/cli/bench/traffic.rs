//! The weight bytes one decode step reads, from the model's tensors (not the file size):
//! every layer's matrices, the output matrix (the embedding table again when the output is
//! tied to it) and one row of the embedding table.

use std::collections::BTreeMap;
use upward::engine::ModelConfig;
use upward::gguf::{GgufError, GgufFile};

/// The matrices of each layer that a decode step multiplies by.
const LAYER_MATRICES: [&str; 7] =
    ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"];

/// Weight bytes read per decoded token.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Traffic {
    /// All of it.
    pub bytes_per_token: u64,
    /// Of that, the output (vocabulary) matrix.
    pub output_matrix_bytes: u64,
    /// Whether the output matrix is the embedding table.
    pub tied_output: bool,
    /// The bytes by storage type (`q4_k`, `q6_k`, ...), output matrix included.
    pub by_dtype: BTreeMap<String, u64>,
}

/// Counts the bytes for the model in `file` with hyper-parameters `cfg`.
pub fn per_token(file: &GgufFile, cfg: &ModelConfig) -> Result<Traffic, GgufError> {
    let mut by_dtype = BTreeMap::new();
    let mut add = |dtype: candle_core::quantized::GgmlDType, n: u64| {
        *by_dtype.entry(dtype_name(dtype)).or_insert(0u64) += n;
        n
    };
    let mut total = 0;
    for i in 0..cfg.n_layers {
        for m in LAYER_MATRICES {
            let t = file.tensor(&format!("blk.{i}.{m}.weight"))?;
            total += add(t.dtype, t.len as u64);
        }
    }
    let embed = file.tensor("token_embd.weight")?;
    let rows = embed.dims.first().copied().unwrap_or(1).max(1);
    total += add(embed.dtype, (embed.len / rows) as u64);
    let output = if cfg.tied_output { embed } else { file.tensor("output.weight")? };
    let output_matrix_bytes = add(output.dtype, output.len as u64);
    total += output_matrix_bytes;
    Ok(Traffic {
        bytes_per_token: total,
        output_matrix_bytes,
        tied_output: cfg.tied_output,
        by_dtype,
    })
}

/// ggml's name of a storage type: `q4_1`, `q4_k`, `q6_k`, `f16`.
fn dtype_name(dtype: candle_core::quantized::GgmlDType) -> String {
    let name = format!("{dtype:?}").to_lowercase();
    match name.strip_suffix('k') {
        Some(base) if base.starts_with('q') => format!("{base}_k"),
        _ => name,
    }
}

#[cfg(test)]
mod tests {
    use candle_core::quantized::GgmlDType;

    #[test]
    fn dtypes_are_named_as_ggml_names_them() {
        assert_eq!(super::dtype_name(GgmlDType::Q4K), "q4_k");
        assert_eq!(super::dtype_name(GgmlDType::Q4_1), "q4_1");
        assert_eq!(super::dtype_name(GgmlDType::F16), "f16");
    }
}
