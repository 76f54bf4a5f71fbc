//! Our transformer forward pass for the llama, qwen2, qwen3 and gemma3 architectures,
//! on candle tensors, with mmap'd quantized weights and a reusable KV cache.

pub(crate) mod check;
mod decode;

use super::activation;
use super::attention::{attend, AttnShape};
use super::cache::KvCache;
use super::config::{Activation, ModelConfig, RopeStyle};
use super::linear::{with_f32_slice, Embedding, QLinear};
use crate::gguf::GgufFile;
use candle_core::quantized::ggml_file::qtensor_from_ggml;
use candle_core::{DType, Device, Result, Tensor, D};
use candle_nn::ops::{rms_norm, softmax_last_dim};
use candle_nn::rotary_emb::{rope, rope_i};
use decode::Decode;

/// How many prompt tokens go through the network at once (bounds attention memory).
const PREFILL_CHUNK: usize = 512;

struct Attention {
    q: QLinear,
    k: QLinear,
    v: QLinear,
    o: QLinear,
    q_norm: Option<Tensor>,
    k_norm: Option<Tensor>,
}

struct Mlp {
    gate: QLinear,
    up: QLinear,
    down: QLinear,
}

struct Layer {
    attn_norm: Tensor,
    attn: Attention,
    post_attn_norm: Option<Tensor>,
    ffn_norm: Tensor,
    mlp: Mlp,
    post_ffn_norm: Option<Tensor>,
    local: bool,
}

/// Cosine and sine tables for every position up to the cache capacity.
struct Rope {
    cos: Tensor,
    sin: Tensor,
}

impl Rope {
    fn new(base: f32, scale: f32, head_dim: usize, positions: usize, dev: &Device) -> Result<Rope> {
        let half = head_dim / 2;
        let inv: Vec<f32> =
            (0..half).map(|i| 1.0 / base.powf(2.0 * i as f32 / head_dim as f32)).collect();
        let mut cos = Vec::with_capacity(positions * half);
        let mut sin = Vec::with_capacity(positions * half);
        for p in 0..positions {
            for f in &inv {
                let a = p as f32 / scale * f;
                cos.push(a.cos());
                sin.push(a.sin());
            }
        }
        Ok(Rope {
            cos: Tensor::from_vec(cos, (positions, half), dev)?,
            sin: Tensor::from_vec(sin, (positions, half), dev)?,
        })
    }
}

/// The gated MLP's activation on host values: `gate = act(gate) · up`.
fn activate(act: Activation, gate: &mut [f32], up: &[f32]) {
    match act {
        Activation::GeluTanh => activation::gelu_tanh_mul(gate, up),
        Activation::Silu => activation::silu_mul(gate, up),
    }
}

/// A loaded model with its KV cache.
pub struct Model {
    cfg: ModelConfig,
    embed: Embedding,
    layers: Vec<Layer>,
    norm: Tensor,
    lm_head: QLinear,
    rope: Rope,
    rope_local: Option<Rope>,
    cache: KvCache,
    device: Device,
    decode: Option<Decode>,
}

fn load_f32(file: &GgufFile, name: &str, dev: &Device) -> Result<Tensor> {
    let t = file.tensor(name).map_err(candle_core::Error::wrap)?;
    let q = qtensor_from_ggml(t.dtype, t.bytes(), t.dims.clone(), &Device::Cpu)?;
    q.dequantize(&Device::Cpu)?.to_dtype(DType::F32)?.to_device(dev)
}

fn load_opt_f32(file: &GgufFile, name: &str, dev: &Device) -> Result<Option<Tensor>> {
    if file.has_tensor(name) {
        load_f32(file, name, dev).map(Some)
    } else {
        Ok(None)
    }
}

fn linear(file: &GgufFile, name: &str, bias: bool, dev: &Device) -> Result<QLinear> {
    let w = file.tensor(&format!("{name}.weight")).map_err(candle_core::Error::wrap)?;
    let b = if bias { load_opt_f32(file, &format!("{name}.bias"), dev)? } else { None };
    QLinear::new(w, b, dev)
}

impl Model {
    /// Builds the model over a mapped file with a KV cache of `ctx` positions.
    pub fn load(file: &GgufFile, cfg: ModelConfig, ctx: usize, dev: &Device) -> Result<Model> {
        let (qkv_bias, qk_norm, sandwich) = (cfg.qkv_bias, cfg.qk_norm, cfg.sandwich_norms);
        let mut layers = Vec::with_capacity(cfg.n_layers);
        for i in 0..cfg.n_layers {
            let p = |s: &str| format!("blk.{i}.{s}");
            let norm = |s: &str| load_f32(file, &p(s), dev);
            layers.push(Layer {
                attn_norm: norm("attn_norm.weight")?,
                attn: Attention {
                    q: linear(file, &p("attn_q"), qkv_bias, dev)?,
                    k: linear(file, &p("attn_k"), qkv_bias, dev)?,
                    v: linear(file, &p("attn_v"), qkv_bias, dev)?,
                    o: linear(file, &p("attn_output"), false, dev)?,
                    q_norm: if qk_norm { Some(norm("attn_q_norm.weight")?) } else { None },
                    k_norm: if qk_norm { Some(norm("attn_k_norm.weight")?) } else { None },
                },
                post_attn_norm: if sandwich {
                    Some(norm("post_attention_norm.weight")?)
                } else {
                    None
                },
                ffn_norm: norm("ffn_norm.weight")?,
                mlp: Mlp {
                    gate: linear(file, &p("ffn_gate"), false, dev)?,
                    up: linear(file, &p("ffn_up"), false, dev)?,
                    down: linear(file, &p("ffn_down"), false, dev)?,
                },
                post_ffn_norm: if sandwich { Some(norm("post_ffw_norm.weight")?) } else { None },
                local: cfg.is_local_layer(i),
            });
        }
        let embed_bytes = file.tensor("token_embd.weight").map_err(candle_core::Error::wrap)?;
        let lm_head = if cfg.tied_output {
            QLinear::new(embed_bytes.clone(), None, dev)?
        } else {
            linear(file, "output", false, dev)?
        };
        let ctx = ctx.max(16);
        let rope = Rope::new(cfg.rope_base, cfg.rope_scale, cfg.head_dim, ctx, dev)?;
        let rope_local = match cfg.sliding_window {
            Some(_) => Some(Rope::new(cfg.rope_base_local, 1.0, cfg.head_dim, ctx, dev)?),
            None => None,
        };
        let cache = KvCache::new(cfg.n_layers, cfg.n_kv_heads, cfg.head_dim, ctx, dev)?;
        let mut model = Model {
            embed: Embedding::new(embed_bytes)?,
            norm: load_f32(file, "output_norm.weight", dev)?,
            layers,
            lm_head,
            rope,
            rope_local,
            cache,
            device: dev.clone(),
            cfg,
            decode: None,
        };
        model.decode = Decode::new(&model)?;
        Ok(model)
    }

    /// Hyper-parameters.
    pub fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    /// The KV cache (its length is the number of positions already processed).
    pub fn cache(&self) -> &KvCache {
        &self.cache
    }

    /// Mutable access to the cache, to truncate, snapshot or restore it.
    pub fn cache_mut(&mut self) -> &mut KvCache {
        &mut self.cache
    }

    /// Runs `tokens` after the cached positions and returns the logits (`[vocab]`, f32)
    /// predicted after the last one.
    pub fn forward(&mut self, tokens: &[u32]) -> Result<Tensor> {
        if tokens.is_empty() {
            candle_core::bail!("no tokens to process");
        }
        if let ([token], Some(_)) = (tokens, &self.decode) {
            return self.decode_step(*token);
        }
        let mut last = None;
        for chunk in tokens.chunks(PREFILL_CHUNK) {
            last = Some(self.forward_chunk(chunk)?);
        }
        let hidden = last.expect("at least one chunk");
        let h = rms_norm(&hidden, &self.norm, self.cfg.eps as f32)?;
        self.lm_head.forward(&h)?.squeeze(0)
    }

    /// One token through the CPU decode path; returns its logits.
    fn decode_step(&mut self, token: u32) -> Result<Tensor> {
        let Model { cfg, embed, layers, lm_head, cache, decode, device, .. } = self;
        let Some(d) = decode.as_mut() else {
            candle_core::bail!("the decode path is not available on this device");
        };
        let logits = d.step(token, cfg, embed, layers, lm_head, cache)?;
        let n = logits.len();
        let logits = Tensor::from_vec(logits, n, device)?;
        match lm_head.bias() {
            Some(b) => logits.broadcast_add(b),
            None => Ok(logits),
        }
    }

    /// Processes one chunk and returns the hidden state of its last position `[1, hidden]`.
    fn forward_chunk(&mut self, tokens: &[u32]) -> Result<Tensor> {
        let s = tokens.len();
        let pos = self.cache.len();
        let mut x = self.embed.forward(tokens, &self.device)?;
        if let Some(scale) = self.cfg.embed_scale {
            x = (x * scale as f64)?;
        }
        let mask = self.masks(pos, s)?;
        for i in 0..self.layers.len() {
            x = self.layer_forward(i, &x, pos, mask.as_ref())?;
        }
        self.cache.advance(s);
        x.narrow(0, s - 1, 1)
    }

    /// Additive attention masks for a chunk of `s` queries at `pos` (None when `s == 1`).
    /// Returns the causal mask and, for sliding-window models, the windowed one.
    fn masks(&self, pos: usize, s: usize) -> Result<Option<(Tensor, Option<Tensor>)>> {
        if s == 1 {
            return Ok(None);
        }
        let total = pos + s;
        let build = |window: Option<usize>| -> Result<Tensor> {
            let start = window_start(pos, window);
            let keys = total - start;
            let mut m = vec![0f32; s * keys];
            for i in 0..s {
                let q = pos + i;
                for j in 0..keys {
                    let k = start + j;
                    let visible = k <= q && window.is_none_or(|w| q - k < w);
                    if !visible {
                        m[i * keys + j] = f32::NEG_INFINITY;
                    }
                }
            }
            Tensor::from_vec(m, (s, keys), &self.device)
        };
        let causal = build(None)?;
        let local = match self.cfg.sliding_window {
            Some(w) => Some(build(Some(w))?),
            None => None,
        };
        Ok(Some((causal, local)))
    }

    fn layer_forward(
        &mut self,
        i: usize,
        x: &Tensor,
        pos: usize,
        mask: Option<&(Tensor, Option<Tensor>)>,
    ) -> Result<Tensor> {
        let eps = self.cfg.eps as f32;
        let layer = &self.layers[i];
        let h = rms_norm(x, &layer.attn_norm, eps)?;
        let mut a = self.attention(i, &h, pos, mask)?;
        let layer = &self.layers[i];
        if let Some(w) = &layer.post_attn_norm {
            a = rms_norm(&a, w, eps)?;
        }
        let x = (x + a)?;
        let h = rms_norm(&x, &layer.ffn_norm, eps)?;
        let gate = layer.mlp.gate.forward(&h)?;
        let up = layer.mlp.up.forward(&h)?;
        let act = if self.device.is_cpu() {
            // The decode path's own activation code, so both paths give the same bits.
            let mut g = gate.flatten_all()?.to_vec1::<f32>()?;
            with_f32_slice(&up, |u| {
                activate(self.cfg.activation, &mut g, u);
                Ok(())
            })?;
            Tensor::from_vec(g, gate.shape(), &self.device)?
        } else {
            let gate = match self.cfg.activation {
                Activation::GeluTanh => gate.gelu()?,
                Activation::Silu => candle_nn::ops::silu(&gate)?,
            };
            (gate * up)?
        };
        let mut m = layer.mlp.down.forward(&act)?;
        if let Some(w) = &layer.post_ffn_norm {
            m = rms_norm(&m, w, eps)?;
        }
        x + m
    }

    fn attention(
        &mut self,
        i: usize,
        h: &Tensor,
        pos: usize,
        mask: Option<&(Tensor, Option<Tensor>)>,
    ) -> Result<Tensor> {
        let cfg = &self.cfg;
        let (s, hd, nh, nkv) = (h.dim(0)?, cfg.head_dim, cfg.n_heads, cfg.n_kv_heads);
        let layer = &self.layers[i];
        let eps = cfg.eps as f32;
        let mut q = layer.attn.q.forward(h)?.reshape((s, nh, hd))?;
        let mut k = layer.attn.k.forward(h)?.reshape((s, nkv, hd))?;
        let v = layer.attn.v.forward(h)?.reshape((s, nkv, hd))?;
        if let (Some(qn), Some(kn)) = (&layer.attn.q_norm, &layer.attn.k_norm) {
            q = rms_norm(&q, qn, eps)?;
            k = rms_norm(&k, kn, eps)?;
        }
        let table = match (&self.rope_local, layer.local) {
            (Some(r), true) => r,
            _ => &self.rope,
        };
        let cos = table.cos.narrow(0, pos, s)?;
        let sin = table.sin.narrow(0, pos, s)?;
        let to_heads = |t: Tensor| t.transpose(0, 1)?.contiguous()?.unsqueeze(0);
        let (q, k) = (to_heads(q)?, to_heads(k)?);
        let (q, k) = match cfg.rope_style {
            RopeStyle::Interleaved => (rope_i(&q, &cos, &sin)?, rope_i(&k, &cos, &sin)?),
            RopeStyle::Neox => (rope(&q, &cos, &sin)?, rope(&k, &cos, &sin)?),
        };
        let v = v.transpose(0, 1)?;
        let (k_all, v_all) = self.cache.append(i, &k.squeeze(0)?, &v)?;
        let window = if layer.local { cfg.sliding_window } else { None };
        if self.device.is_cpu() {
            let q = q.squeeze(0)?.transpose(0, 1)?.contiguous()?; // [s, heads, head_dim]
            let shape = AttnShape {
                heads: nh,
                kv_heads: nkv,
                head_dim: hd,
                capacity: self.cache.capacity(),
            };
            let scale = 1.0 / (hd as f32).sqrt();
            let mut out = vec![0f32; s * nh * hd];
            let cache = &self.cache;
            with_f32_slice(&q, |qs| {
                cache.with_layer(i, |ks, vs| {
                    attend(qs, ks, vs, shape, pos, s, window, scale, &mut out);
                    Ok(())
                })
            })?;
            let out = Tensor::from_vec(out, (s, nh * hd), &self.device)?;
            return layer.attn.o.forward(&out);
        }
        let start = window_start(pos, window);
        let (k_all, v_all) = if start > 0 {
            let n = pos + s - start;
            (k_all.narrow(1, start, n)?, v_all.narrow(1, start, n)?)
        } else {
            (k_all, v_all)
        };
        // The cache is f16: widen its (already rounded) values for the tensor ops.
        let (k_all, v_all) = (k_all.to_dtype(DType::F32)?, v_all.to_dtype(DType::F32)?);
        let rep = nh / nkv;
        // Query heads sharing a key/value head are contiguous: fold them into rows.
        let q = q.squeeze(0)?.reshape((nkv, rep * s, hd))?;
        let scale = 1.0 / (hd as f64).sqrt();
        let att = (q.matmul(&k_all.t()?)? * scale)?;
        let att = match mask {
            Some((causal, local)) => {
                let m = if layer.local { local.as_ref().unwrap_or(causal) } else { causal };
                let keys = att.dim(D::Minus1)?;
                att.reshape((nkv, rep, s, keys))?.broadcast_add(m)?.reshape((nkv, rep * s, keys))?
            }
            None => att,
        };
        let att = softmax_last_dim(&att)?;
        let out = att.matmul(&v_all)?; // [nkv, rep*s, hd]
        let out = out.reshape((nh, s, hd))?.transpose(0, 1)?.reshape((s, nh * hd))?;
        layer.attn.o.forward(&out)
    }
}

/// First key position a query chunk starting at `pos` can see.
fn window_start(pos: usize, window: Option<usize>) -> usize {
    match window {
        Some(w) => (pos + 1).saturating_sub(w),
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf::synth::{write_random_model, SynthSpec};

    /// The CPU decode path gives the tensor path's logits and cache for every architecture
    /// (biases, q/k norms, sandwich norms, sliding windows, NeoX and interleaved RoPE).
    #[test]
    fn decode_path_matches_tensor_path() {
        let dir = tempfile::tempdir().unwrap();
        for arch in ["llama", "qwen2", "qwen3", "gemma3"] {
            let path = dir.path().join(format!("{arch}.gguf"));
            write_random_model(&path, &SynthSpec::tiny(arch), 11).unwrap();
            let file = GgufFile::open(&path).unwrap();
            let cfg = ModelConfig::from_gguf(&file).unwrap();
            let load = || Model::load(&file, cfg.clone(), 64, &Device::Cpu).unwrap();
            let (mut fast, mut slow) = (load(), load());
            assert!(fast.decode.is_some(), "{arch}: no decode path on the CPU");
            slow.decode = None;
            let prompt = [1u32, 5, 9, 2, 7, 3, 8, 4, 6, 10, 12, 11];
            fast.forward(&prompt).unwrap();
            slow.forward(&prompt).unwrap();
            for t in [3u32, 14, 1, 9, 0, 6, 2, 13, 5, 8, 7, 4, 11, 10, 12, 15, 3, 3, 1, 2] {
                let a = fast.forward(&[t]).unwrap().to_vec1::<f32>().unwrap();
                let b = slow.forward(&[t]).unwrap().to_vec1::<f32>().unwrap();
                let diff = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
                assert!(diff < 1e-5, "{arch}: decode logits differ by {diff}");
            }
            let (ka, va) = fast.cache().layer(0);
            let (kb, vb) = slow.cache().layer(0);
            for (x, y) in [(ka, kb), (va, vb)] {
                let (x, y) = (x.to_dtype(DType::F32).unwrap(), y.to_dtype(DType::F32).unwrap());
                let d = (x - y).unwrap().abs().unwrap().max_all().unwrap();
                assert!(d.to_scalar::<f32>().unwrap() < 1e-5, "{arch}: caches differ");
            }
        }
    }
}
