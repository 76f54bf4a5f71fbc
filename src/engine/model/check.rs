//! Checks, before anything is loaded, that every tensor the architecture reads is present
//! with the shape the hyper-parameters imply: a file can parse and still describe a model
//! our forward pass would run into garbage or out of bounds.

use crate::engine::config::ModelConfig;
use crate::gguf::GgufFile;

/// The expected tensors of `cfg` in `file`; the error names the tensor or key at fault.
pub(crate) fn tensors(file: &GgufFile, cfg: &ModelConfig) -> Result<(), String> {
    let (h, hd) = (cfg.hidden, cfg.head_dim);
    let q_rows = mul(cfg.n_heads, hd)?;
    let kv_rows = mul(cfg.n_kv_heads, hd)?;
    let ffn_key = format!("{}.feed_forward_length", cfg.arch.name());
    let ffn = match file.meta(&ffn_key) {
        Some(_) => {
            let f = file.meta_usize(&ffn_key).map_err(|e| e.to_string())?;
            if f == 0 {
                return Err(format!("metadata key {ffn_key} is 0"));
            }
            f
        }
        None => shape(file, "blk.0.ffn_gate.weight")?.first().copied().unwrap_or(0),
    };
    expect(file, "token_embd.weight", &[cfg.vocab, h])?;
    expect(file, "output_norm.weight", &[h])?;
    if !cfg.tied_output {
        expect(file, "output.weight", &[cfg.vocab, h])?;
    }
    for i in 0..cfg.n_layers {
        let p = |s: &str| format!("blk.{i}.{s}");
        expect(file, &p("attn_norm.weight"), &[h])?;
        expect(file, &p("ffn_norm.weight"), &[h])?;
        expect(file, &p("attn_q.weight"), &[q_rows, h])?;
        expect(file, &p("attn_k.weight"), &[kv_rows, h])?;
        expect(file, &p("attn_v.weight"), &[kv_rows, h])?;
        expect(file, &p("attn_output.weight"), &[h, q_rows])?;
        expect(file, &p("ffn_gate.weight"), &[ffn, h])?;
        expect(file, &p("ffn_up.weight"), &[ffn, h])?;
        expect(file, &p("ffn_down.weight"), &[h, ffn])?;
        if cfg.qkv_bias {
            for (n, rows) in [("q", q_rows), ("k", kv_rows), ("v", kv_rows)] {
                let name = p(&format!("attn_{n}.bias"));
                if file.has_tensor(&name) {
                    expect(file, &name, &[rows])?;
                }
            }
        }
        if cfg.qk_norm {
            expect(file, &p("attn_q_norm.weight"), &[hd])?;
            expect(file, &p("attn_k_norm.weight"), &[hd])?;
        }
        if cfg.sandwich_norms {
            expect(file, &p("post_attention_norm.weight"), &[h])?;
            expect(file, &p("post_ffw_norm.weight"), &[h])?;
        }
    }
    Ok(())
}

fn mul(a: usize, b: usize) -> Result<usize, String> {
    a.checked_mul(b).ok_or_else(|| format!("{a} heads of {b} values overflow"))
}

fn shape(file: &GgufFile, name: &str) -> Result<Vec<usize>, String> {
    match file.content().tensor_infos.get(name) {
        Some(info) => Ok(info.shape.dims().to_vec()),
        None => Err(format!("tensor {name} is missing")),
    }
}

fn expect(file: &GgufFile, name: &str, dims: &[usize]) -> Result<(), String> {
    let found = shape(file, name)?;
    if found != dims {
        return Err(format!(
            "tensor {name} has shape {found:?} but the hyper-parameters need {dims:?}"
        ));
    }
    Ok(())
}
