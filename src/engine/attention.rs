//! Causal self-attention over the KV cache on the CPU, one query row at a time.
//!
//! Each (query, head) pair is computed on its own with a fixed summation order, so a
//! position's output does not depend on how many positions were processed together: a
//! conversation continued from the cache gives the same logits as a fresh prefill of the
//! same tokens. It also avoids the copies and transposes of a tensor-op formulation in the
//! decode step.

use half::f16;
use rayon::prelude::*;

use super::activation::exp;

#[cfg(target_arch = "x86_64")]
mod x86;

/// Shapes of one attention call.
#[derive(Clone, Copy, Debug)]
pub struct AttnShape {
    /// Query heads.
    pub heads: usize,
    /// Key/value heads (query heads are grouped onto them).
    pub kv_heads: usize,
    /// Per-head dimension.
    pub head_dim: usize,
    /// Positions the cache tensors can hold.
    pub capacity: usize,
}

/// Which code computes the dot products and weighted sums. Every choice gives the same
/// bits: they differ only in how many rows and keys one pass over memory serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kern {
    /// Plain Rust.
    Portable,
    /// AVX2, FMA and F16C (needs `head_dim % 8 == 0`).
    #[cfg(target_arch = "x86_64")]
    Avx2,
    /// AVX-512F on top of those (the dot products and weighted sums twice as wide).
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

impl Kern {
    /// The fastest choice for this CPU (see [`crate::kernels::isa::current`]).
    fn best(head_dim: usize) -> Kern {
        #[cfg(target_arch = "x86_64")]
        if head_dim.is_multiple_of(8) && super::f16::simd() {
            use crate::kernels::isa::{current, Isa};
            return if current() >= Isa::Avx512Vnni { Kern::Avx512 } else { Kern::Avx2 };
        }
        let _ = head_dim;
        Kern::Portable
    }
}

/// Attention of `s` queries at positions `pos..pos + s`.
///
/// `q` is `[s, heads, head_dim]`; `k` and `v` are the cache, `[kv_heads, capacity,
/// head_dim]`, already holding positions `0..pos + s`; `out` is `[s, heads, head_dim]`.
/// Query `i` sees keys `0..=pos + i`, or only the last `window` of them.
#[allow(clippy::too_many_arguments)]
pub fn attend(
    q: &[f32],
    k: &[f16],
    v: &[f16],
    shape: AttnShape,
    pos: usize,
    s: usize,
    window: Option<usize>,
    scale: f32,
    out: &mut [f32],
) {
    attend_with(Kern::best(shape.head_dim), q, k, v, shape, pos, s, window, scale, out)
}

/// Query positions per work item of [`attend`]: their rows share each key and value block
/// loaded.
const POSITIONS_PER_ITEM: usize = 4;

#[allow(clippy::too_many_arguments)]
fn attend_with(
    kern: Kern,
    q: &[f32],
    k: &[f16],
    v: &[f16],
    shape: AttnShape,
    pos: usize,
    s: usize,
    window: Option<usize>,
    scale: f32,
    out: &mut [f32],
) {
    let AttnShape { heads, kv_heads, head_dim: hd, capacity } = shape;
    assert_eq!(q.len(), s * heads * hd, "one query row per position and head");
    assert_eq!(out.len(), s * heads * hd, "one output row per position and head");
    assert!(k.len() >= kv_heads * capacity * hd && v.len() >= kv_heads * capacity * hd);
    assert!(pos + s <= capacity, "queries past the cache capacity");
    let rep = heads / kv_heads;
    let row = heads * hd;
    // Fewer positions per item when there are few, so that every thread gets some.
    let per = (s / (4 * rayon::current_num_threads())).clamp(1, POSITIONS_PER_ITEM);
    let work = |(item, o): (usize, &mut [f32])| {
        let i0 = item * per;
        let m = o.len() / row;
        let mut qs = vec![0f32; m * rep * hd];
        let mut os = vec![0f32; m * rep * hd];
        let mut qpos = Vec::with_capacity(m * rep);
        for g in 0..kv_heads {
            qpos.clear();
            for i in 0..m {
                let at = (i0 + i) * row + g * rep * hd;
                qs[i * rep * hd..(i + 1) * rep * hd].copy_from_slice(&q[at..at + rep * hd]);
                qpos.extend(std::iter::repeat_n(pos + i0 + i, rep));
            }
            let slab = g * capacity * hd..(g + 1) * capacity * hd;
            group(kern, &qs, &qpos, &k[slab.clone()], &v[slab], hd, window, scale, &mut os);
            for i in 0..m {
                let at = i * row + g * rep * hd;
                o[at..at + rep * hd].copy_from_slice(&os[i * rep * hd..(i + 1) * rep * hd]);
            }
        }
    };
    // A few short rows: too little work to be worth waking threads.
    if s * heads * (pos + s) * hd < 64 * 1024 {
        out.chunks_mut(per * row).enumerate().for_each(work);
    } else {
        out.par_chunks_mut(per * row).enumerate().for_each(work);
    }
}

/// Attention of the single query at position `pos` (its cache entry already written) for
/// heads `first..first + out.len() / head_dim` only, on the calling thread: `q` holds all
/// heads of the query, `out` the chosen heads' outputs. The decode step splits heads over
/// threads with it; each head's result is bit-identical to [`attend`]'s.
#[allow(clippy::too_many_arguments)]
pub fn attend_heads(
    q: &[f32],
    k: &[f16],
    v: &[f16],
    shape: AttnShape,
    pos: usize,
    window: Option<usize>,
    scale: f32,
    first: usize,
    out: &mut [f32],
) {
    attend_heads_with(Kern::best(shape.head_dim), q, k, v, shape, pos, window, scale, first, out)
}

#[allow(clippy::too_many_arguments)]
fn attend_heads_with(
    kern: Kern,
    q: &[f32],
    k: &[f16],
    v: &[f16],
    shape: AttnShape,
    pos: usize,
    window: Option<usize>,
    scale: f32,
    first: usize,
    out: &mut [f32],
) {
    let AttnShape { heads, kv_heads, head_dim: hd, capacity } = shape;
    let rep = heads / kv_heads;
    let n = out.len() / hd;
    assert!(first + n <= heads && q.len() == heads * hd && pos < capacity);
    // Runs of the chosen heads that share a KV head.
    let mut h = first;
    while h < first + n {
        let g = h / rep;
        let end = ((g + 1) * rep).min(first + n);
        let qpos = vec![pos; end - h];
        let slab = g * capacity * hd..(g + 1) * capacity * hd;
        let o = &mut out[(h - first) * hd..(end - first) * hd];
        group(kern, &q[h * hd..end * hd], &qpos, &k[slab.clone()], &v[slab], hd, window, scale, o);
        h = end;
    }
}

/// Bytes of keys or values converted to f32 at a time: the block stays in L1 while every
/// row of the group uses it.
const BLOCK_BYTES: usize = 16 * 1024;

/// Attention of the query rows `qs` (`qpos.len()` rows of `hd`; row `r` at position
/// `qpos[r]`) that share one KV head, whose keys and values are `k` and `v`
/// (`[capacity, hd]`); `o` receives their outputs. Each key and value block is converted
/// and read once for all the rows.
///
/// A row's result does not depend on the other rows: its score for key `j` is
/// [`dot`]`(q, k_j) · scale` (keys widened from f16 exactly), its weights are
/// [`softmax_numerators`] of its scores, and every output lane accumulates
/// `weight · value` with fused multiply-adds in key order, then is multiplied by
/// `1 / sum`. Every [`Kern`] computes exactly that.
#[allow(clippy::too_many_arguments)]
fn group(
    kern: Kern,
    qs: &[f32],
    qpos: &[usize],
    k: &[f16],
    v: &[f16],
    hd: usize,
    window: Option<usize>,
    scale: f32,
    o: &mut [f32],
) {
    let rows = qpos.len();
    debug_assert_eq!(qs.len(), rows * hd);
    debug_assert_eq!(o.len(), rows * hd);
    let starts: Vec<usize> =
        qpos.iter().map(|&p| window.map_or(0, |w| (p + 1).saturating_sub(w))).collect();
    let ends: Vec<usize> = qpos.iter().map(|&p| p + 1).collect();
    let lo = starts.iter().copied().min().unwrap_or(0);
    let hi = ends.iter().copied().max().unwrap_or(0);
    let nk = hi - lo;
    let block = (BLOCK_BYTES / 4 / hd.max(1)).max(8) / 8 * 8;
    let mut buf = vec![0f32; block * hd];
    let mut dots = vec![0f32; rows * block];
    // Scores of every row for keys lo..hi (a row uses only its own range of them).
    let mut scores = vec![0f32; rows * nk];
    for b0 in (lo..hi).step_by(block) {
        let n = block.min(hi - b0);
        let n8 = n.next_multiple_of(8);
        load_keys(kern, &k[b0 * hd..(b0 + n) * hd], n8, hd, &mut buf[..n8 * hd]);
        row_dots(kern, qs, &buf[..n8 * hd], n8, hd, &mut dots[..rows * n8]);
        for r in 0..rows {
            let dst = &mut scores[r * nk + b0 - lo..r * nk + b0 - lo + n];
            for (sc, d) in dst.iter_mut().zip(&dots[r * n8..r * n8 + n]) {
                *sc = d * scale;
            }
        }
    }
    let sums: Vec<f32> = (0..rows)
        .map(|r| softmax(kern, &mut scores[r * nk + starts[r] - lo..r * nk + ends[r] - lo]))
        .collect();
    o.fill(0.0);
    // Keys every row uses, and per row the keys before and after them.
    let common =
        (starts.iter().copied().max().unwrap_or(0), ends.iter().copied().min().unwrap_or(0));
    for b0 in (lo..hi).step_by(block) {
        let b1 = (b0 + block).min(hi);
        let vals = &mut buf[..(b1 - b0) * hd];
        super::f16::to_f32(&v[b0 * hd..b1 * hd], vals);
        let vals = &*vals;
        let (c0, c1) = (common.0.max(b0), common.1.min(b1));
        let one = |r: usize, a: usize, b: usize, o: &mut [f32]| {
            if a < b {
                let p = &scores[r * nk + a - lo..r * nk + b - lo];
                weighted_sums(
                    kern,
                    p,
                    nk,
                    1,
                    &vals[(a - b0) * hd..(b - b0) * hd],
                    hd,
                    &mut o[r * hd..(r + 1) * hd],
                );
            }
        };
        if c0 >= c1 {
            for r in 0..rows {
                one(r, starts[r].max(b0), ends[r].min(b1), o);
            }
            continue;
        }
        for (r, &start) in starts.iter().enumerate() {
            one(r, start.max(b0), c0, o);
        }
        let p = &scores[c0 - lo..];
        weighted_sums(kern, p, nk, rows, &vals[(c0 - b0) * hd..(c1 - b0) * hd], hd, o);
        for (r, &end) in ends.iter().enumerate() {
            one(r, c1, end.min(b1), o);
        }
    }
    for (or, sum) in o.chunks_exact_mut(hd).zip(sums) {
        let inv = 1.0 / sum;
        for x in or.iter_mut() {
            *x *= inv;
        }
    }
}

/// Widens `n` keys (`src`, `[n, hd]` f16, `n <= n8`) into `buf` (`n8` keys) in the layout
/// `kern` reads, zero-padded.
fn load_keys(kern: Kern, src: &[f16], n8: usize, hd: usize, buf: &mut [f32]) {
    match kern {
        Kern::Portable => {
            let n = src.len();
            super::f16::to_f32(src, &mut buf[..n]);
            buf[n..n8 * hd].fill(0.0);
        }
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Kern::Avx2` and `Kern::Avx512` are chosen only when the CPU has AVX2,
        // FMA and F16C (and AVX-512F for the latter).
        Kern::Avx2 | Kern::Avx512 => unsafe { x86::load_keys(src, n8, hd, buf) },
    }
}

/// `dots[r * n8 + t] = dot(q_r, key_t)` for every row `r` of `qs` and key `t < n8` of
/// `keys` (laid out by [`load_keys`]).
fn row_dots(kern: Kern, qs: &[f32], keys: &[f32], n8: usize, hd: usize, dots: &mut [f32]) {
    match kern {
        Kern::Portable => {
            for (q, d) in qs.chunks_exact(hd).zip(dots.chunks_exact_mut(n8)) {
                for (d, krow) in d.iter_mut().zip(keys.chunks_exact(hd)) {
                    *d = dot(q, krow);
                }
            }
        }
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as in `load_keys`.
        Kern::Avx2 => unsafe { x86::row_dots(qs, keys, n8, hd, dots) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as in `load_keys`.
        Kern::Avx512 => unsafe { x86::row_dots_512(qs, keys, n8, hd, dots) },
    }
}

/// [`softmax_numerators`], compiled for `kern`'s instructions (the same bits).
fn softmax(kern: Kern, scores: &mut [f32]) -> f32 {
    match kern {
        Kern::Portable => softmax_numerators(scores),
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as in `load_keys`.
        Kern::Avx2 | Kern::Avx512 => unsafe { x86::softmax_numerators(scores) },
    }
}

/// `o_r += Σ_k p[r * stride + k] · vals_k` for rows `r < rows` (`o` is `[rows, hd]`) over the
/// keys of `vals` (`[n, hd]`): every lane accumulates with fused multiply-adds in key
/// order, so summing a list of keys in consecutive pieces gives the same bits as in one.
fn weighted_sums(
    kern: Kern,
    p: &[f32],
    stride: usize,
    rows: usize,
    vals: &[f32],
    hd: usize,
    o: &mut [f32],
) {
    let n = vals.len() / hd;
    match kern {
        Kern::Portable => {
            for (r, or) in o.chunks_exact_mut(hd).take(rows).enumerate() {
                for (&w, row) in p[r * stride..r * stride + n].iter().zip(vals.chunks_exact(hd)) {
                    for (a, v) in or.iter_mut().zip(row) {
                        *a = w.mul_add(*v, *a);
                    }
                }
            }
        }
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as in `load_keys`.
        Kern::Avx2 => unsafe { x86::weighted_sums(p, stride, rows, vals, hd, o) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as in `load_keys`.
        Kern::Avx512 => unsafe { x86::weighted_sums_512(p, stride, rows, vals, hd, o) },
    }
}

/// Replaces scores by `e^(score - max)` and returns their sum (eight partial sums, added
/// pairwise like `dot`'s lanes).
#[inline(always)]
fn softmax_numerators(scores: &mut [f32]) -> f32 {
    let max = scores.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
    for sc in scores.iter_mut() {
        *sc = exp(*sc - max);
    }
    let mut part = [0f32; 8];
    let mut eights = scores.chunks_exact(8);
    for e in eights.by_ref() {
        for l in 0..8 {
            part[l] += e[l];
        }
    }
    let mut sum =
        ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
    for &x in eights.remainder() {
        sum += x;
    }
    sum
}

/// Dot product with a fixed summation order: eight lanes accumulate `a[8c + l] · b[8c + l]`
/// with fused multiply-adds in order of `c`, are summed pairwise
/// (`((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7))`), then any tail follows in order.
#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ta, tb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] = x[l].mul_add(y[l], acc[l]);
        }
    }
    let mut sum = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (x, y) in ta.iter().zip(tb) {
        sum = x.mul_add(*y, sum);
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Attention in f64 over the f16 cache, as the definition says.
    #[allow(clippy::too_many_arguments)]
    fn naive(
        q: &[f32],
        k: &[f16],
        v: &[f16],
        sh: AttnShape,
        pos: usize,
        s: usize,
        w: Option<usize>,
        scale: f32,
    ) -> Vec<f32> {
        let hd = sh.head_dim;
        let mut out = vec![0f32; s * sh.heads * hd];
        for i in 0..s {
            for h in 0..sh.heads {
                let kvh = h / (sh.heads / sh.kv_heads);
                let qp = pos + i;
                let keys: Vec<usize> = (0..=qp).filter(|j| w.is_none_or(|w| qp - j < w)).collect();
                let sc: Vec<f64> = keys
                    .iter()
                    .map(|&j| {
                        (0..hd)
                            .map(|d| {
                                q[(i * sh.heads + h) * hd + d] as f64
                                    * k[(kvh * sh.capacity + j) * hd + d].to_f64()
                            })
                            .sum::<f64>()
                            * scale as f64
                    })
                    .collect();
                let m = sc.iter().cloned().fold(f64::MIN, f64::max);
                let e: Vec<f64> = sc.iter().map(|x| (x - m).exp()).collect();
                let z: f64 = e.iter().sum();
                for d in 0..hd {
                    let val: f64 = keys
                        .iter()
                        .zip(&e)
                        .map(|(&j, p)| p / z * v[(kvh * sh.capacity + j) * hd + d].to_f64())
                        .sum();
                    out[(i * sh.heads + h) * hd + d] = val as f32;
                }
            }
        }
        out
    }

    fn rnd(seed: &mut u32, n: usize) -> Vec<f32> {
        (0..n)
            .map(|_| {
                *seed = seed.wrapping_mul(1664525).wrapping_add(1013904223);
                ((*seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5) * 4.0
            })
            .collect()
    }

    /// The paths this CPU has: the portable one, and the SIMD one where it runs.
    fn kerns(hd: usize) -> Vec<Kern> {
        let mut k = vec![Kern::Portable];
        #[cfg(target_arch = "x86_64")]
        match Kern::best(hd) {
            Kern::Avx512 => k.extend([Kern::Avx2, Kern::Avx512]),
            Kern::Avx2 => k.push(Kern::Avx2),
            Kern::Portable => {}
        }
        k
    }

    /// Every path matches the definition, gives the same bits as the portable path, and
    /// gives each position the same bits however the positions are split into calls
    /// (prefill chunks, decode steps, heads split over threads).
    #[test]
    fn matches_naive_and_is_chunk_invariant_on_every_path() {
        let shapes = [
            AttnShape { heads: 6, kv_heads: 2, head_dim: 12, capacity: 90 },
            AttnShape { heads: 9, kv_heads: 3, head_dim: 64, capacity: 90 },
            AttnShape { heads: 4, kv_heads: 1, head_dim: 256, capacity: 90 },
            AttnShape { heads: 2, kv_heads: 2, head_dim: 16, capacity: 90 },
        ];
        for sh in shapes {
            let mut seed = 7u32;
            let (hd, s) = (sh.head_dim, 83);
            let to16 = |x: Vec<f32>| x.into_iter().map(f16::from_f32).collect::<Vec<_>>();
            let k = to16(rnd(&mut seed, sh.kv_heads * sh.capacity * hd));
            let v = to16(rnd(&mut seed, sh.kv_heads * sh.capacity * hd));
            let q = rnd(&mut seed, s * sh.heads * hd);
            let row = sh.heads * hd;
            for window in [None, Some(7), Some(40)] {
                let scale = 0.7 / (hd as f32).sqrt();
                let want = naive(&q, &k, &v, sh, 0, s, window, scale);
                let mut first: Option<Vec<f32>> = None;
                for kern in kerns(hd) {
                    let mut all = vec![0f32; q.len()];
                    attend_with(kern, &q, &k, &v, sh, 0, s, window, scale, &mut all);
                    let err =
                        all.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
                    assert!(err < 1e-4, "{sh:?} {window:?} {kern:?}: off by {err}");
                    // Chunks of 5, 1 and 30 positions, then one at a time: the same bits.
                    let mut parts = vec![0f32; q.len()];
                    let mut at = 0;
                    for n in [5, 1, 30] {
                        let (qi, oi) =
                            (&q[at * row..(at + n) * row], &mut parts[at * row..(at + n) * row]);
                        attend_with(kern, qi, &k, &v, sh, at, n, window, scale, oi);
                        at += n;
                    }
                    for i in at..s {
                        let o = &mut parts[i * row..(i + 1) * row];
                        attend_with(
                            kern,
                            &q[i * row..(i + 1) * row],
                            &k,
                            &v,
                            sh,
                            i,
                            1,
                            window,
                            scale,
                            o,
                        );
                    }
                    assert!(all == parts, "{sh:?} {window:?} {kern:?}: chunking changed bits");
                    // The last position's heads in two groups, as decode threads split them.
                    let last = &q[(s - 1) * row..];
                    let mut heads = vec![0f32; row];
                    let split = (sh.heads / 2 + 1).min(sh.heads - 1) * hd;
                    let (a, b) = heads.split_at_mut(split);
                    attend_heads_with(kern, last, &k, &v, sh, s - 1, window, scale, 0, a);
                    attend_heads_with(kern, last, &k, &v, sh, s - 1, window, scale, split / hd, b);
                    assert!(heads == all[(s - 1) * row..], "{sh:?} {window:?} {kern:?}: heads");
                    // Every path gives the portable path's bits.
                    match &first {
                        None => first = Some(all),
                        Some(f) => assert!(*f == all, "{sh:?} {window:?} {kern:?}: paths differ"),
                    }
                }
            }
        }
    }

    /// The public entry points run the SIMD path on a CPU that has it.
    #[test]
    fn the_simd_path_is_chosen_at_run_time() {
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2")
            && std::is_x86_feature_detected!("fma")
            && std::is_x86_feature_detected!("f16c")
            && crate::kernels::isa::current() >= crate::kernels::isa::Isa::Avx2
        {
            assert_ne!(Kern::best(64), Kern::Portable);
            let wide = crate::kernels::isa::current() >= crate::kernels::isa::Isa::Avx512Vnni;
            assert_eq!(Kern::best(64) == Kern::Avx512, wide);
        }
        assert_eq!(Kern::best(12), Kern::Portable);
    }
}
