//! The CPU decode path: one token through the network on reusable f32 buffers, calling the
//! kernels directly, with no tensor op or copy per layer.
//!
//! Each layer runs five parallel steps on a spinning [`Team`]: the q/k/v mat-vecs, the
//! attention heads, the output projection, gate and up (with the activation), and the
//! down projection; then the output layer. The input of each step is quantized once
//! ([`PreparedRows`]) and the matrices are cut into row ranges that the threads take as
//! they become free. Every output element is computed exactly as the tensor path computes
//! it (row results do not depend on the ranges), so decode continues a prefill bit for bit.
//!
//! Several sequences, each with its own KV cache, decode together in one step
//! ([`Model::forward_batch`]): the mat-vecs become small mat-muls that stream each weight
//! once for all of them ([`kernels::matmul_rows`]), attention runs per sequence on its own
//! cache, and each sequence's logits are bit for bit those it gets alone.

use super::{activate, Layer, Model};
use crate::engine::attention::{attend_heads, AttnShape};
use crate::engine::cache::KvCache;
use crate::engine::config::{Activation, ModelConfig, RopeStyle};
use crate::engine::linear::{Embedding, QLinear};
use crate::engine::team::Team;
use crate::kernels::{self, KernelError, PreparedRows};
use candle_core::quantized::GgmlDType;
use candle_core::{DType, Result, Tensor};
use half::f16;

/// Host (f32 `Vec`) copies of one layer's small vectors.
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

/// Reusable activations of one decode step: `n` rows each, one per sequence.
#[derive(Default)]
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

/// Values per row of each activation.
#[derive(Clone, Copy)]
struct Dims {
    hidden: usize,
    q_rows: usize,
    kv_rows: usize,
    ff: usize,
}

impl Scratch {
    /// Sizes every buffer for `n` rows (keeping its allocation).
    fn rows(&mut self, n: usize, d: Dims) {
        for (b, w) in [
            (&mut self.x, d.hidden),
            (&mut self.h, d.hidden),
            (&mut self.q, d.q_rows),
            (&mut self.k, d.kv_rows),
            (&mut self.v, d.kv_rows),
            (&mut self.att, d.q_rows),
            (&mut self.o, d.hidden),
            (&mut self.gate, d.ff),
            (&mut self.up, d.ff),
        ] {
            b.resize(n * w, 0.0);
        }
    }
}

/// The decode path's state: host copies of the small weights, buffers and threads.
pub(super) struct Decode {
    layers: Vec<HostLayer>,
    norm: Vec<f32>,
    cos: Vec<f32>,
    sin: Vec<f32>,
    local: Option<(Vec<f32>, Vec<f32>)>,
    dims: Dims,
    scratch: Scratch,
    input: PreparedRows,
    team: Team,
}

fn host(t: &Tensor) -> Result<Vec<f32>> {
    t.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()
}

fn host_opt(t: Option<&Tensor>) -> Result<Option<Vec<f32>>> {
    t.map(host).transpose()
}

/// Row ranges of one matrix are cut to about this share of its bytes per thread...
const PIECES_PER_THREAD: usize = 4;
/// ...but no smaller than this (a few microseconds of work)...
const MIN_PIECE_BYTES: usize = 16 * 1024;
/// ...and no larger than this (large output layers still balance well).
const MAX_PIECE_BYTES: usize = 256 * 1024;

/// A matrix as the kernels see it.
#[derive(Clone, Copy)]
struct Weight<'a> {
    dtype: GgmlDType,
    bytes: &'a [u8],
    rows: usize,
    cols: usize,
}

impl<'a> Weight<'a> {
    fn of(l: &'a QLinear) -> Result<Weight<'a>> {
        let Some((dtype, bytes)) = l.kernel_weight() else {
            candle_core::bail!("the decode path needs a layer our CPU kernels run");
        };
        Ok(Weight { dtype, bytes, rows: l.rows(), cols: l.cols() })
    }

    /// Rows per piece when `threads` share this matrix: a multiple of 4 (the kernels'
    /// row group).
    fn piece_rows(&self, threads: usize) -> usize {
        let rb = kernels::row_bytes(self.dtype, self.cols).max(1);
        let bytes = (self.rows * rb / (threads * PIECES_PER_THREAD).max(1))
            .clamp(MIN_PIECE_BYTES, MAX_PIECE_BYTES);
        (bytes / rb).max(1).next_multiple_of(4)
    }
}

/// Rows `first..first + len` of one matrix for every sequence (`outs[i]` is sequence
/// `i`'s share of its output): one item of a parallel step.
struct Rows<'a> {
    w: Weight<'a>,
    first: usize,
    outs: Vec<&'a mut [f32]>,
    done: std::result::Result<(), KernelError>,
}

/// Cuts `w`'s output `out` (`n` rows of `w.rows`, one per sequence) into pieces of
/// `per` weight rows.
fn pieces<'a>(w: Weight<'a>, out: &'a mut [f32], n: usize, per: usize) -> Vec<Rows<'a>> {
    if w.rows == 0 || n == 0 {
        return Vec::new();
    }
    let mut cuts: Vec<_> = out.chunks_mut(w.rows).map(|o| o.chunks_mut(per)).collect();
    (0..w.rows.div_ceil(per))
        .map(|i| Rows {
            w,
            first: i * per,
            outs: cuts.iter_mut().filter_map(|c| c.next()).collect(),
            done: Ok(()),
        })
        .collect()
}

impl Rows<'_> {
    fn run(&mut self, x: &PreparedRows) {
        self.done = kernels::matmul_rows(self.w.dtype, self.w.bytes, x, self.first, &mut self.outs);
    }
}

/// `out_j = X · W_jᵀ` for every `(W_j, out_j)`, `X` being `n` rows, as one parallel step
/// over `team`: each weight row is streamed once for all `n`.
fn matvecs(
    team: &Team,
    input: &mut PreparedRows,
    x: &[f32],
    n: usize,
    jobs: Vec<(&QLinear, &mut [f32])>,
) -> Result<()> {
    let mut items = Vec::new();
    let mut dtypes = Vec::with_capacity(jobs.len());
    for (l, out) in jobs {
        let w = Weight::of(l)?;
        if out.len() != n * w.rows {
            candle_core::bail!("a {}x{} layer got {} outputs", w.rows, w.cols, out.len());
        }
        dtypes.push(w.dtype);
        items.extend(pieces(w, out, n, w.piece_rows(team.threads())));
    }
    input.prepare(x, n, &dtypes).map_err(candle_core::Error::wrap)?;
    let input = &*input;
    team.for_each(&mut items, |p| p.run(input)).map_err(candle_core::Error::wrap)?;
    items.into_iter().try_for_each(|p| p.done).map_err(candle_core::Error::wrap)
}

/// The gated MLP's first half as one parallel step: the same rows of gate and up in each
/// piece, then the activation over them, leaving `act(gate) · up` in `gate`.
fn gate_up(
    team: &Team,
    input: &mut PreparedRows,
    act: Activation,
    (x, n): (&[f32], usize),
    (gate, gate_out): (&QLinear, &mut [f32]),
    (up, up_out): (&QLinear, &mut [f32]),
) -> Result<()> {
    let (g, u) = (Weight::of(gate)?, Weight::of(up)?);
    if g.rows != u.rows || gate_out.len() != n * g.rows || up_out.len() != n * u.rows {
        candle_core::bail!("gate ({}) and up ({}) rows differ", g.rows, u.rows);
    }
    input.prepare(x, n, &[g.dtype, u.dtype]).map_err(candle_core::Error::wrap)?;
    let input = &*input;
    let per = g.piece_rows(team.threads()).max(u.piece_rows(team.threads()));
    let mut items: Vec<(Rows, Rows)> =
        pieces(g, gate_out, n, per).into_iter().zip(pieces(u, up_out, n, per)).collect();
    team.for_each(&mut items, |(g, u)| {
        g.run(input);
        u.run(input);
        if g.done.is_ok() && u.done.is_ok() {
            for (go, uo) in g.outs.iter_mut().zip(&u.outs) {
                activate(act, go, uo);
            }
        }
    })
    .map_err(candle_core::Error::wrap)?;
    items.into_iter().try_for_each(|(g, u)| g.done.and(u.done)).map_err(candle_core::Error::wrap)
}

/// One cache layer's keys and values.
type LayerKv<'a> = (&'a [f16], &'a [f16]);

/// Runs `f` on the keys and values of `layer` in every cache of `caches` at once (`got`
/// holds those already taken).
fn with_layers<'a, R>(
    caches: &[&KvCache],
    layer: usize,
    got: Vec<LayerKv<'a>>,
    f: &mut dyn FnMut(&[LayerKv<'_>]) -> Result<R>,
) -> Result<R> {
    match caches.split_first() {
        None => f(&got),
        Some((c, rest)) => c.with_layer(layer, |k, v| {
            let mut got = got.clone();
            got.push((k, v));
            with_layers(rest, layer, got, f)
        }),
    }
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

impl Decode {
    /// Builds the decode path when every layer runs on our CPU kernels (else `None`), with
    /// as many threads as rayon's global pool.
    pub(super) fn new(m: &Model) -> Result<Option<Decode>> {
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
        let dims = Dims { hidden: cfg.hidden, q_rows, kv_rows, ff };
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
            dims,
            scratch: Scratch::default(),
            input: PreparedRows::default(),
            team: Team::new(rayon::current_num_threads()),
        }))
    }

    /// Runs `token` at the next cache position and returns the logits (without the output
    /// layer's bias).
    pub(super) fn step(
        &mut self,
        token: u32,
        cfg: &ModelConfig,
        embed: &Embedding,
        layers: &[Layer],
        lm_head: &QLinear,
        cache: &mut KvCache,
    ) -> Result<Vec<f32>> {
        let mut logits = self.step_many(&[token], cfg, embed, layers, lm_head, &mut [cache])?;
        Ok(logits.pop().unwrap_or_default())
    }

    /// Runs `tokens[i]` at the next position of `caches[i]` for every `i` in one pass
    /// over the weights, and returns each sequence's logits (without the output layer's
    /// bias), bit for bit those of [`step`](Self::step) on that sequence alone. On an error
    /// no cache has advanced.
    pub(super) fn step_many(
        &mut self,
        tokens: &[u32],
        cfg: &ModelConfig,
        embed: &Embedding,
        layers: &[Layer],
        lm_head: &QLinear,
        caches: &mut [&mut KvCache],
    ) -> Result<Vec<Vec<f32>>> {
        let n = tokens.len();
        if caches.len() != n {
            candle_core::bail!("{n} tokens for {} sequences", caches.len());
        }
        for c in caches.iter() {
            if c.len() >= c.capacity() {
                candle_core::bail!(
                    "the context is full ({} of {} positions used)",
                    c.len(),
                    c.capacity()
                );
            }
            if c.capacity() * cfg.head_dim / 2 > self.cos.len() {
                candle_core::bail!("a cache of {} positions exceeds the model's", c.capacity());
            }
        }
        if n == 0 {
            return Ok(Vec::new());
        }
        let eps = cfg.eps as f32;
        let (hd, nh, nkv) = (cfg.head_dim, cfg.n_heads, cfg.n_kv_heads);
        let half = hd / 2;
        let scale = 1.0 / (hd as f32).sqrt();
        let interleaved = cfg.rope_style == RopeStyle::Interleaved;
        let pos: Vec<usize> = caches.iter().map(|c| c.len()).collect();
        let shapes: Vec<AttnShape> = caches
            .iter()
            .map(|c| AttnShape { heads: nh, kv_heads: nkv, head_dim: hd, capacity: c.capacity() })
            .collect();
        // A KV head's query heads in one attention item, split only while there are fewer
        // items than threads (each split widens the same keys again).
        let rep = (nh / nkv.max(1)).max(1);
        let parts = self.team.threads().div_ceil(n * nkv.max(1)).clamp(1, rep);
        let heads_per_item = rep.div_ceil(parts);
        let d = self.dims;
        self.scratch.rows(n, d);
        let Decode { layers: host_layers, norm, cos, sin, local, scratch: sc, input, team, .. } =
            self;
        for (&token, x) in tokens.iter().zip(sc.x.chunks_exact_mut(d.hidden)) {
            embed.lookup_into(token, x)?;
            if let Some(mul) = cfg.embed_scale {
                for v in x.iter_mut() {
                    *v = *v * mul + 0.0;
                }
            }
        }
        for (i, (layer, hl)) in layers.iter().zip(host_layers.iter()).enumerate() {
            for (x, h) in sc.x.chunks_exact(d.hidden).zip(sc.h.chunks_exact_mut(d.hidden)) {
                rms_into(x, &hl.attn_norm, eps, h);
            }
            let qkv = vec![
                (&layer.attn.q, &mut sc.q[..]),
                (&layer.attn.k, &mut sc.k[..]),
                (&layer.attn.v, &mut sc.v[..]),
            ];
            matvecs(team, input, &sc.h, n, qkv)?;
            for (out, bias) in
                [(&mut sc.q, &hl.q_bias), (&mut sc.k, &hl.k_bias), (&mut sc.v, &hl.v_bias)]
            {
                if let Some(b) = bias {
                    for row in out.chunks_exact_mut(b.len()) {
                        add_into(row, b);
                    }
                }
            }
            if let (Some(qn), Some(kn)) = (&hl.q_norm, &hl.k_norm) {
                rms_rows(&mut sc.q, qn, eps);
                rms_rows(&mut sc.k, kn, eps);
            }
            let (cos, sin) = match (&*local, layer.local) {
                (Some((c, s)), true) => (c, s),
                _ => (&*cos, &*sin),
            };
            let rows = sc.q.chunks_exact_mut(d.q_rows).zip(sc.k.chunks_exact_mut(d.kv_rows));
            for ((q, k), &p) in rows.zip(&pos) {
                let (cos, sin) = (&cos[p * half..(p + 1) * half], &sin[p * half..(p + 1) * half]);
                rope_rows(q, cos, sin, interleaved);
                rope_rows(k, cos, sin, interleaved);
            }
            let kv = sc.k.chunks_exact(d.kv_rows).zip(sc.v.chunks_exact(d.kv_rows));
            for (c, (k, v)) in caches.iter_mut().zip(kv) {
                c.write_position(i, k, v)?;
            }
            let window = if layer.local { cfg.sliding_window } else { None };
            let q = &sc.q;
            // Items of heads that share a KV head, each on its own sequence's cache: the
            // keys and values are widened once for all the item's heads.
            let mut heads: Vec<(usize, usize, &mut [f32])> = Vec::new();
            for (s, att) in sc.att.chunks_mut(d.q_rows).enumerate() {
                for (g, group) in att.chunks_mut(rep * hd).enumerate() {
                    for (j, out) in group.chunks_mut(heads_per_item * hd).enumerate() {
                        heads.push((s, g * rep + j * heads_per_item, out));
                    }
                }
            }
            let layers: Vec<&KvCache> = caches.iter().map(|c| &**c).collect();
            with_layers(&layers, i, Vec::new(), &mut |kv| {
                team.for_each(&mut heads, |(s, h, out)| {
                    let q = &q[*s * d.q_rows..(*s + 1) * d.q_rows];
                    let (ks, vs) = kv[*s];
                    attend_heads(q, ks, vs, shapes[*s], pos[*s], window, scale, *h, out)
                })
                .map_err(candle_core::Error::wrap)
            })?;
            matvecs(team, input, &sc.att, n, vec![(&layer.attn.o, &mut sc.o[..])])?;
            if let Some(w) = &hl.post_attn_norm {
                rms_rows(&mut sc.o, w, eps);
            }
            add_into(&mut sc.x, &sc.o);
            for (x, h) in sc.x.chunks_exact(d.hidden).zip(sc.h.chunks_exact_mut(d.hidden)) {
                rms_into(x, &hl.ffn_norm, eps, h);
            }
            gate_up(
                team,
                input,
                cfg.activation,
                (&sc.h, n),
                (&layer.mlp.gate, &mut sc.gate),
                (&layer.mlp.up, &mut sc.up),
            )?;
            matvecs(team, input, &sc.gate, n, vec![(&layer.mlp.down, &mut sc.o[..])])?;
            if let Some(w) = &hl.post_ffn_norm {
                rms_rows(&mut sc.o, w, eps);
            }
            add_into(&mut sc.x, &sc.o);
        }
        for c in caches.iter_mut() {
            c.advance(1);
        }
        for (x, h) in sc.x.chunks_exact(d.hidden).zip(sc.h.chunks_exact_mut(d.hidden)) {
            rms_into(x, norm, eps, h);
        }
        let vocab = lm_head.rows();
        let mut logits = vec![0f32; n * vocab];
        matvecs(team, input, &sc.h, n, vec![(lm_head, &mut logits[..])])?;
        Ok(logits.chunks_exact(vocab.max(1)).take(n).map(<[f32]>::to_vec).collect())
    }
}

impl Model {
    /// A new, empty KV cache for this model of `capacity` positions (at most the model's
    /// own context), for [`forward_in`](Self::forward_in) and
    /// [`forward_batch`](Self::forward_batch).
    pub fn new_cache(&self, capacity: usize) -> Result<KvCache> {
        if capacity > self.cache.capacity() {
            candle_core::bail!(
                "a cache of {capacity} positions exceeds the model's context ({})",
                self.cache.capacity()
            );
        }
        let cfg = &self.cfg;
        KvCache::new(cfg.n_layers, cfg.n_kv_heads, cfg.head_dim, capacity, &self.device)
    }

    /// [`forward`](Self::forward) on `cache` (made by [`new_cache`](Self::new_cache))
    /// instead of the model's own cache, which stays as it was.
    pub fn forward_in(&mut self, cache: &mut KvCache, tokens: &[u32]) -> Result<Tensor> {
        if cache.capacity() > self.cache.capacity() {
            candle_core::bail!("a cache of {} positions exceeds the model's", cache.capacity());
        }
        std::mem::swap(&mut self.cache, cache);
        let out = self.forward(tokens);
        std::mem::swap(&mut self.cache, cache);
        out
    }

    /// One decode step for several sequences together: `tokens[i]` runs at the next
    /// position of `caches[i]`, and the result holds each sequence's logits. On the CPU
    /// every matrix is streamed once for all of them; each sequence's logits are bit for
    /// bit those of [`forward_in`](Self::forward_in) on it alone. On an error no cache has
    /// advanced.
    pub fn forward_batch(
        &mut self,
        tokens: &[u32],
        caches: &mut [&mut KvCache],
    ) -> Result<Vec<Vec<f32>>> {
        if tokens.len() != caches.len() {
            candle_core::bail!("{} tokens for {} sequences", tokens.len(), caches.len());
        }
        if self.decode.is_none() {
            let mut out = Vec::with_capacity(tokens.len());
            for (&t, c) in tokens.iter().zip(caches.iter_mut()) {
                out.push(self.forward_in(c, &[t])?.to_vec1::<f32>()?);
            }
            return Ok(out);
        }
        let Model { cfg, embed, layers, lm_head, decode, device, .. } = self;
        let Some(d) = decode.as_mut() else {
            candle_core::bail!("the decode path is not available on this device");
        };
        let logits = d.step_many(tokens, cfg, embed, layers, lm_head, caches)?;
        let Some(b) = lm_head.bias() else {
            return Ok(logits);
        };
        logits
            .into_iter()
            .map(|l| {
                let n = l.len();
                Tensor::from_vec(l, n, device)?.broadcast_add(b)?.to_vec1::<f32>()
            })
            .collect()
    }
}
