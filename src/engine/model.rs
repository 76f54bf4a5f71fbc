//! Our transformer forward pass for the llama, qwen2, qwen3 and gemma3 architectures,
//! on candle tensors, with mmap'd quantized weights and a reusable KV cache.

use super::attention::{attend, AttnShape};
use super::cache::KvCache;
use super::config::{Arch, ModelConfig};
use super::linear::{with_f32_slice, Embedding, QLinear};
use crate::gguf::GgufFile;
use crate::kernels;
use candle_core::quantized::ggml_file::qtensor_from_ggml;
use candle_core::{DType, Device, Result, Tensor, D};
use candle_nn::ops::{rms_norm, softmax_last_dim};
use candle_nn::rotary_emb::{rope, rope_i};
use rayon::prelude::*;

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

/// Host (f32 `Vec`) copies of one layer's small vectors, for the CPU decode path.
struct HostLayer {
    attn_norm: Vec<f32>,
    q_norm: Option<Vec<f32>>,
    k_norm: Option<Vec<f32>>,
    q_bias: Option<Vec<f32>>,
    k_bias: Option<Vec<f32>>,
    v_bias: Option<Vec<f32>>,
    post_attn_norm: Option<Vec<f32>>,
    ffn_norm: Vec<f32>,
    post_ffn_norm: Option<Vec<f32>>,
}

/// Reusable activations of one decode step.
struct Scratch {
    x: Vec<f32>,
    h: Vec<f32>,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    att: Vec<f32>,
    o: Vec<f32>,
    gate: Vec<f32>,
    up: Vec<f32>,
}

/// The CPU decode path (one token at a time): every step works on reusable f32 buffers
/// and calls the kernels directly, with no tensor op, allocation or copy per layer.
/// It computes exactly what the tensor path computes, in the same order.
struct Decode {
    layers: Vec<HostLayer>,
    norm: Vec<f32>,
    cos: Vec<f32>,
    sin: Vec<f32>,
    local: Option<(Vec<f32>, Vec<f32>)>,
    scratch: Scratch,
}

fn host(t: &Tensor) -> Result<Vec<f32>> {
    t.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()
}

fn host_opt(t: Option<&Tensor>) -> Result<Option<Vec<f32>>> {
    t.map(host).transpose()
}

impl Decode {
    /// Builds the decode path when every layer runs on our CPU kernels (else `None`).
    fn new(m: &Model) -> Result<Option<Decode>> {
        if !m.device.is_cpu() {
            return Ok(None);
        }
        let all = m.layers.iter().flat_map(|l| {
            [&l.attn.q, &l.attn.k, &l.attn.v, &l.attn.o, &l.mlp.gate, &l.mlp.up, &l.mlp.down]
        });
        if all.chain([&m.lm_head]).any(|l| l.kernel_weight().is_none()) {
            return Ok(None);
        }
        let layers = m
            .layers
            .iter()
            .map(|l| {
                Ok(HostLayer {
                    attn_norm: host(&l.attn_norm)?,
                    q_norm: host_opt(l.attn.q_norm.as_ref())?,
                    k_norm: host_opt(l.attn.k_norm.as_ref())?,
                    q_bias: host_opt(l.attn.q.bias())?,
                    k_bias: host_opt(l.attn.k.bias())?,
                    v_bias: host_opt(l.attn.v.bias())?,
                    post_attn_norm: host_opt(l.post_attn_norm.as_ref())?,
                    ffn_norm: host(&l.ffn_norm)?,
                    post_ffn_norm: host_opt(l.post_ffn_norm.as_ref())?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let cfg = &m.cfg;
        let (q_rows, kv_rows) = (cfg.n_heads * cfg.head_dim, cfg.n_kv_heads * cfg.head_dim);
        let ff = m.layers.first().map_or(0, |l| l.mlp.gate.rows());
        let scratch = Scratch {
            x: vec![0.0; cfg.hidden],
            h: vec![0.0; cfg.hidden],
            q: vec![0.0; q_rows],
            k: vec![0.0; kv_rows],
            v: vec![0.0; kv_rows],
            att: vec![0.0; q_rows],
            o: vec![0.0; cfg.hidden],
            gate: vec![0.0; ff],
            up: vec![0.0; ff],
        };
        let local = match &m.rope_local {
            Some(r) => Some((host(&r.cos)?, host(&r.sin)?)),
            None => None,
        };
        Ok(Some(Decode {
            layers,
            norm: host(&m.norm)?,
            cos: host(&m.rope.cos)?,
            sin: host(&m.rope.sin)?,
            local,
            scratch,
        }))
    }
}

/// √(2/π) as candle's tanh GELU rounds it.
const SQRT_2_OVER_PI: f32 = 0.797_884_6;

/// `out = x · Wᵀ` for one row with our kernels.
fn matvec(l: &QLinear, x: &[f32], out: &mut [f32]) -> Result<()> {
    let Some((dtype, w)) = l.kernel_weight() else {
        candle_core::bail!("the decode path needs a layer our CPU kernels run");
    };
    kernels::matmul(dtype, w, l.rows(), l.cols(), x, 1, out).map_err(candle_core::Error::wrap)
}

/// Bytes of weights below which one piece of a grouped mat-vec runs on one thread (the
/// kernels then stay serial inside it).
const PIECE_BYTES: usize = 64 * 1024;

/// Several mat-vecs over the same input `x` in one parallel region: each matrix is cut
/// into row ranges run as independent kernel calls, so the threads wake once for the
/// group. Row results do not depend on the ranges: bit-identical to one call each.
fn matvecs(x: &[f32], jobs: &mut [(&QLinear, &mut [f32])]) -> Result<()> {
    if rayon::current_num_threads() <= 1 {
        for (l, out) in jobs.iter_mut() {
            matvec(l, x, out)?;
        }
        return Ok(());
    }
    let mut pieces = Vec::new();
    for (l, out) in jobs.iter_mut() {
        let Some((dtype, w)) = l.kernel_weight() else {
            candle_core::bail!("the decode path needs a layer our CPU kernels run");
        };
        let (rows, cols) = (l.rows(), l.cols());
        let rb = kernels::row_bytes(dtype, cols);
        if out.len() != rows || w.len() != rows * rb {
            candle_core::bail!("a {rows}x{cols} layer got {} outputs", out.len());
        }
        // Equal pieces of at most about PIECE_BYTES each.
        let n = (rows * rb).div_ceil(PIECE_BYTES).max(1);
        let per = rows.div_ceil(n).max(1);
        for (wp, op) in w.chunks(per * rb).zip(out.chunks_mut(per)) {
            pieces.push((dtype, wp, cols, op));
        }
    }
    pieces.into_par_iter().try_for_each(|(dtype, w, cols, out)| {
        kernels::matmul(dtype, w, out.len(), cols, x, 1, out).map_err(candle_core::Error::wrap)
    })
}

/// RMSNorm of `x` into `out`, with candle's arithmetic (sequential sum of squares).
fn rms_into(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    let sum2 = x.iter().map(|&v| v * v).sum::<f32>();
    let m = (sum2 / x.len() as f32 + eps).sqrt();
    for ((d, s), a) in out.iter_mut().zip(x).zip(w) {
        *d = *s / m * *a;
    }
}

/// RMSNorm in place, over consecutive rows of `w.len()` values.
fn rms_rows(x: &mut [f32], w: &[f32], eps: f32) {
    for row in x.chunks_exact_mut(w.len()) {
        let sum2 = row.iter().map(|&v| v * v).sum::<f32>();
        let m = (sum2 / row.len() as f32 + eps).sqrt();
        for (d, a) in row.iter_mut().zip(w) {
            *d = *d / m * *a;
        }
    }
}

/// Rotates every head (`head_dim` values each) of `x` by one position's `cos`/`sin`
/// (`head_dim / 2` each): adjacent pairs when `interleaved` (llama), else halves.
fn rope_rows(x: &mut [f32], cos: &[f32], sin: &[f32], interleaved: bool) {
    let half = cos.len();
    for head in x.chunks_exact_mut(2 * half) {
        for (i, (&c, &s)) in cos.iter().zip(sin).enumerate() {
            let (i1, i2) = if interleaved { (2 * i, 2 * i + 1) } else { (i, i + half) };
            let (a, b) = (head[i1], head[i2]);
            head[i1] = a * c - b * s;
            head[i2] = a * s + b * c;
        }
    }
}

fn add_into(x: &mut [f32], y: &[f32]) {
    for (a, b) in x.iter_mut().zip(y) {
        *a += *b;
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
        let qkv_bias = cfg.arch == Arch::Qwen2;
        let qk_norm = matches!(cfg.arch, Arch::Qwen3 | Arch::Gemma3);
        let sandwich = cfg.arch == Arch::Gemma3;
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
        let lm_head = if file.has_tensor("output.weight") {
            linear(file, "output", false, dev)?
        } else {
            QLinear::new(embed_bytes.clone(), None, dev)?
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
        let Model { cfg, embed, layers, lm_head, cache, decode, .. } = self;
        let Some(d) = decode.as_mut() else {
            candle_core::bail!("the decode path is not available on this device");
        };
        let pos = cache.len();
        if pos >= cache.capacity() {
            candle_core::bail!(
                "the context is full ({} of {} positions used)",
                pos,
                cache.capacity()
            );
        }
        let eps = cfg.eps as f32;
        let (hd, nh, nkv) = (cfg.head_dim, cfg.n_heads, cfg.n_kv_heads);
        let half = hd / 2;
        let shape =
            AttnShape { heads: nh, kv_heads: nkv, head_dim: hd, capacity: cache.capacity() };
        let scale = 1.0 / (hd as f32).sqrt();
        let interleaved = cfg.arch == Arch::Llama;
        let sc = &mut d.scratch;
        embed.lookup_into(token, &mut sc.x)?;
        if cfg.arch == Arch::Gemma3 {
            let mul = (cfg.hidden as f64).sqrt() as f32;
            for v in sc.x.iter_mut() {
                *v = *v * mul + 0.0;
            }
        }
        for (i, (layer, hl)) in layers.iter().zip(&d.layers).enumerate() {
            rms_into(&sc.x, &hl.attn_norm, eps, &mut sc.h);
            matvecs(
                &sc.h,
                &mut [
                    (&layer.attn.q, &mut sc.q),
                    (&layer.attn.k, &mut sc.k),
                    (&layer.attn.v, &mut sc.v),
                ],
            )?;
            for (out, bias) in
                [(&mut sc.q, &hl.q_bias), (&mut sc.k, &hl.k_bias), (&mut sc.v, &hl.v_bias)]
            {
                if let Some(b) = bias {
                    add_into(out, b);
                }
            }
            if let (Some(qn), Some(kn)) = (&hl.q_norm, &hl.k_norm) {
                rms_rows(&mut sc.q, qn, eps);
                rms_rows(&mut sc.k, kn, eps);
            }
            let (cos, sin) = match (&d.local, layer.local) {
                (Some((c, s)), true) => (c, s),
                _ => (&d.cos, &d.sin),
            };
            let (cos, sin) =
                (&cos[pos * half..(pos + 1) * half], &sin[pos * half..(pos + 1) * half]);
            rope_rows(&mut sc.q, cos, sin, interleaved);
            rope_rows(&mut sc.k, cos, sin, interleaved);
            cache.write_position(i, &sc.k, &sc.v)?;
            let window = if layer.local { cfg.sliding_window } else { None };
            let (kc, vc) = cache.layer(i);
            with_f32_slice(kc, |ks| {
                with_f32_slice(vc, |vs| {
                    attend(&sc.q, ks, vs, shape, pos, 1, window, scale, &mut sc.att);
                    Ok(())
                })
            })?;
            matvec(&layer.attn.o, &sc.att, &mut sc.o)?;
            if let Some(w) = &hl.post_attn_norm {
                rms_rows(&mut sc.o, w, eps);
            }
            add_into(&mut sc.x, &sc.o);
            rms_into(&sc.x, &hl.ffn_norm, eps, &mut sc.h);
            matvecs(&sc.h, &mut [(&layer.mlp.gate, &mut sc.gate), (&layer.mlp.up, &mut sc.up)])?;
            match cfg.arch {
                Arch::Gemma3 => {
                    for (g, u) in sc.gate.iter_mut().zip(&sc.up) {
                        let v = *g;
                        *g = 0.5
                            * v
                            * (1.0 + f32::tanh(SQRT_2_OVER_PI * v * (1.0 + 0.044715 * v * v)))
                            * u;
                    }
                }
                _ => {
                    for (g, u) in sc.gate.iter_mut().zip(&sc.up) {
                        let v = *g;
                        *g = v / (1.0 + (-v).exp()) * u;
                    }
                }
            }
            matvec(&layer.mlp.down, &sc.gate, &mut sc.o)?;
            if let Some(w) = &hl.post_ffn_norm {
                rms_rows(&mut sc.o, w, eps);
            }
            add_into(&mut sc.x, &sc.o);
        }
        cache.advance(1);
        rms_into(&sc.x, &d.norm, eps, &mut sc.h);
        let mut logits = vec![0f32; lm_head.rows()];
        matvec(lm_head, &sc.h, &mut logits)?;
        if let Some(b) = lm_head.bias() {
            return Tensor::from_vec(logits, b.dims(), &self.device)?.broadcast_add(b);
        }
        Tensor::from_vec(logits, lm_head.rows(), &self.device)
    }

    /// Processes one chunk and returns the hidden state of its last position `[1, hidden]`.
    fn forward_chunk(&mut self, tokens: &[u32]) -> Result<Tensor> {
        let s = tokens.len();
        let pos = self.cache.len();
        let mut x = self.embed.forward(tokens, &self.device)?;
        if self.cfg.arch == Arch::Gemma3 {
            x = (x * (self.cfg.hidden as f64).sqrt())?;
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
        let gate = match self.cfg.arch {
            Arch::Gemma3 => gate.gelu()?,
            _ => candle_nn::ops::silu(&gate)?,
        };
        let up = layer.mlp.up.forward(&h)?;
        let mut m = layer.mlp.down.forward(&(gate * up)?)?;
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
        let (q, k) = match cfg.arch {
            Arch::Llama => (rope_i(&q, &cos, &sin)?, rope_i(&k, &cos, &sin)?),
            _ => (rope(&q, &cos, &sin)?, rope(&k, &cos, &sin)?),
        };
        let v = v.transpose(0, 1)?;
        let (k_all, v_all) = self.cache.append(i, &k.squeeze(0)?, &v)?;
        let window = if layer.local { cfg.sliding_window } else { None };
        if self.device.is_cpu() {
            let q = q.squeeze(0)?.transpose(0, 1)?.contiguous()?; // [s, heads, head_dim]
            let (kc, vc) = self.cache.layer(i);
            let shape = AttnShape {
                heads: nh,
                kv_heads: nkv,
                head_dim: hd,
                capacity: self.cache.capacity(),
            };
            let scale = 1.0 / (hd as f32).sqrt();
            let mut out = vec![0f32; s * nh * hd];
            with_f32_slice(&q, |qs| {
                with_f32_slice(kc, |ks| {
                    with_f32_slice(vc, |vs| {
                        attend(qs, ks, vs, shape, pos, s, window, scale, &mut out);
                        Ok(())
                    })
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
                let d = (x - y).unwrap().abs().unwrap().max_all().unwrap();
                assert!(d.to_scalar::<f32>().unwrap() < 1e-5, "{arch}: caches differ");
            }
        }
    }
}
