//! The CPU decode path: one token through the network on reusable f32 buffers, calling the
//! kernels directly, with no tensor op or copy per layer.
//!
//! Each layer runs five parallel steps on a spinning [`Team`]: the q/k/v mat-vecs, the
//! attention heads, the output projection, gate and up (with the activation), and the
//! down projection; then the output layer. The input of each step is quantized once
//! ([`PreparedRow`]) and the matrices are cut into row ranges that the threads take as
//! they become free. Every output element is computed exactly as the tensor path computes
//! it (row results do not depend on the ranges), so decode continues a prefill bit for bit.

use super::{activate, Layer, Model};
use crate::engine::attention::{attend_heads, AttnShape};
use crate::engine::cache::KvCache;
use crate::engine::config::{Activation, ModelConfig, RopeStyle};
use crate::engine::linear::{Embedding, QLinear};
use crate::engine::team::Team;
use crate::kernels::{self, KernelError, PreparedRow};
use candle_core::quantized::GgmlDType;
use candle_core::{DType, Result, Tensor};

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

/// The decode path's state: host copies of the small weights, buffers and threads.
pub(super) struct Decode {
    layers: Vec<HostLayer>,
    norm: Vec<f32>,
    cos: Vec<f32>,
    sin: Vec<f32>,
    local: Option<(Vec<f32>, Vec<f32>)>,
    scratch: Scratch,
    input: PreparedRow,
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

/// Rows `first..first + out.len()` of one matrix: one item of a parallel step.
struct Rows<'a> {
    w: Weight<'a>,
    first: usize,
    out: &'a mut [f32],
    done: std::result::Result<(), KernelError>,
}

/// Cuts `w`'s output `out` into pieces for `threads`.
fn pieces<'a>(w: Weight<'a>, out: &'a mut [f32], threads: usize) -> Vec<Rows<'a>> {
    let per = w.piece_rows(threads);
    out.chunks_mut(per)
        .enumerate()
        .map(|(i, out)| Rows { w, first: i * per, out, done: Ok(()) })
        .collect()
}

impl Rows<'_> {
    fn run(&mut self, x: &PreparedRow) {
        self.done = kernels::matvec_rows(self.w.dtype, self.w.bytes, x, self.first, self.out);
    }
}

/// `out_j = x · W_jᵀ` for every `(W_j, out_j)`, as one parallel step over `team`.
fn matvecs(
    team: &Team,
    input: &mut PreparedRow,
    x: &[f32],
    jobs: Vec<(&QLinear, &mut [f32])>,
) -> Result<()> {
    let mut items = Vec::new();
    let mut dtypes = Vec::with_capacity(jobs.len());
    for (l, out) in jobs {
        let w = Weight::of(l)?;
        if out.len() != w.rows {
            candle_core::bail!("a {}x{} layer got {} outputs", w.rows, w.cols, out.len());
        }
        dtypes.push(w.dtype);
        items.extend(pieces(w, out, team.threads()));
    }
    input.prepare(x, &dtypes).map_err(candle_core::Error::wrap)?;
    let input = &*input;
    team.for_each(&mut items, |p| p.run(input)).map_err(candle_core::Error::wrap)?;
    items.into_iter().try_for_each(|p| p.done).map_err(candle_core::Error::wrap)
}

/// The gated MLP's first half as one parallel step: the same rows of gate and up in each
/// piece, then the activation over them, leaving `act(gate) · up` in `gate`.
fn gate_up(
    team: &Team,
    input: &mut PreparedRow,
    act: Activation,
    x: &[f32],
    (gate, gate_out): (&QLinear, &mut [f32]),
    (up, up_out): (&QLinear, &mut [f32]),
) -> Result<()> {
    let (g, u) = (Weight::of(gate)?, Weight::of(up)?);
    if g.rows != u.rows || gate_out.len() != g.rows || up_out.len() != u.rows {
        candle_core::bail!("gate ({}) and up ({}) rows differ", g.rows, u.rows);
    }
    input.prepare(x, &[g.dtype, u.dtype]).map_err(candle_core::Error::wrap)?;
    let input = &*input;
    let per = g.piece_rows(team.threads()).max(u.piece_rows(team.threads()));
    let mut items: Vec<(Rows, Rows)> = gate_out
        .chunks_mut(per)
        .zip(up_out.chunks_mut(per))
        .enumerate()
        .map(|(i, (go, uo))| {
            let first = i * per;
            (
                Rows { w: g, first, out: go, done: Ok(()) },
                Rows { w: u, first, out: uo, done: Ok(()) },
            )
        })
        .collect();
    team.for_each(&mut items, |(g, u)| {
        g.run(input);
        u.run(input);
        if g.done.is_ok() && u.done.is_ok() {
            activate(act, g.out, u.out);
        }
    })
    .map_err(candle_core::Error::wrap)?;
    items.into_iter().try_for_each(|(g, u)| g.done.and(u.done)).map_err(candle_core::Error::wrap)
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
            input: PreparedRow::default(),
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
        let interleaved = cfg.rope_style == RopeStyle::Interleaved;
        let Decode { layers: host_layers, norm, cos, sin, local, scratch: sc, input, team } = self;
        embed.lookup_into(token, &mut sc.x)?;
        if let Some(mul) = cfg.embed_scale {
            for v in sc.x.iter_mut() {
                *v = *v * mul + 0.0;
            }
        }
        for (i, (layer, hl)) in layers.iter().zip(host_layers.iter()).enumerate() {
            rms_into(&sc.x, &hl.attn_norm, eps, &mut sc.h);
            let qkv = vec![
                (&layer.attn.q, &mut sc.q[..]),
                (&layer.attn.k, &mut sc.k[..]),
                (&layer.attn.v, &mut sc.v[..]),
            ];
            matvecs(team, input, &sc.h, qkv)?;
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
            let (cos, sin) = match (&*local, layer.local) {
                (Some((c, s)), true) => (c, s),
                _ => (&*cos, &*sin),
            };
            let (cos, sin) =
                (&cos[pos * half..(pos + 1) * half], &sin[pos * half..(pos + 1) * half]);
            rope_rows(&mut sc.q, cos, sin, interleaved);
            rope_rows(&mut sc.k, cos, sin, interleaved);
            cache.write_position(i, &sc.k, &sc.v)?;
            let window = if layer.local { cfg.sliding_window } else { None };
            let q = &sc.q;
            let mut heads: Vec<(usize, &mut [f32])> = sc.att.chunks_mut(hd).enumerate().collect();
            cache.with_layer(i, |ks, vs| {
                team.for_each(&mut heads, |(h, out)| {
                    attend_heads(q, ks, vs, shape, pos, window, scale, *h, out)
                })
                .map_err(candle_core::Error::wrap)
            })?;
            matvecs(team, input, &sc.att, vec![(&layer.attn.o, &mut sc.o[..])])?;
            if let Some(w) = &hl.post_attn_norm {
                rms_rows(&mut sc.o, w, eps);
            }
            add_into(&mut sc.x, &sc.o);
            rms_into(&sc.x, &hl.ffn_norm, eps, &mut sc.h);
            gate_up(
                team,
                input,
                cfg.activation,
                &sc.h,
                (&layer.mlp.gate, &mut sc.gate),
                (&layer.mlp.up, &mut sc.up),
            )?;
            matvecs(team, input, &sc.gate, vec![(&layer.mlp.down, &mut sc.o[..])])?;
            if let Some(w) = &hl.post_ffn_norm {
                rms_rows(&mut sc.o, w, eps);
            }
            add_into(&mut sc.x, &sc.o);
        }
        cache.advance(1);
        rms_into(&sc.x, norm, eps, &mut sc.h);
        let mut logits = vec![0f32; lm_head.rows()];
        matvecs(team, input, &sc.h, vec![(lm_head, &mut logits[..])])?;
        Ok(logits)
    }
}
