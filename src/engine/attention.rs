//! Causal self-attention over the KV cache on the CPU, one query row at a time.
//!
//! Each (query, head) pair is computed on its own with a fixed summation order, so a
//! position's output does not depend on how many positions were processed together: a
//! conversation continued from the cache gives the same logits as a fresh prefill of the
//! same tokens. It also avoids the copies and transposes of a tensor-op formulation in the
//! decode step.

use rayon::prelude::*;

use super::activation::exp;

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

/// Attention of `s` queries at positions `pos..pos + s`.
///
/// `q` is `[s, heads, head_dim]`; `k` and `v` are the cache, `[kv_heads, capacity,
/// head_dim]`, already holding positions `0..pos + s`; `out` is `[s, heads, head_dim]`.
/// Query `i` sees keys `0..=pos + i`, or only the last `window` of them.
#[allow(clippy::too_many_arguments)]
pub fn attend(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    shape: AttnShape,
    pos: usize,
    s: usize,
    window: Option<usize>,
    scale: f32,
    out: &mut [f32],
) {
    let AttnShape { heads, kv_heads, head_dim: hd, capacity } = shape;
    debug_assert_eq!(q.len(), s * heads * hd);
    debug_assert_eq!(out.len(), s * heads * hd);
    debug_assert!(k.len() >= kv_heads * capacity * hd && pos + s <= capacity);
    // One item per (query, KV head): its query heads are contiguous in `q` and `out`.
    let group = heads / kv_heads * hd;
    let work = |(idx, o): (usize, &mut [f32])| {
        let (i, g) = (idx / kv_heads, idx % kv_heads);
        let qs = &q[idx * group..(idx + 1) * group];
        group_rows(qs, k, v, shape, pos + i, g * (heads / kv_heads), window, scale, o);
    };
    // A few short rows: too little work per head to be worth waking threads.
    if s * heads * (pos + s) * hd < 64 * 1024 {
        out.chunks_mut(group).enumerate().for_each(work);
    } else {
        out.par_chunks_mut(group).enumerate().for_each(work);
    }
}

/// Attention of the single query at position `pos` (its cache entry already written) for
/// heads `first..first + out.len() / head_dim` only, on the calling thread: `q` holds all
/// heads of the query, `out` the chosen heads' outputs. The decode step splits heads over
/// threads with it; each head's result is bit-identical to [`attend`]'s.
#[allow(clippy::too_many_arguments)]
pub fn attend_heads(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    shape: AttnShape,
    pos: usize,
    window: Option<usize>,
    scale: f32,
    first: usize,
    out: &mut [f32],
) {
    let hd = shape.head_dim;
    for (j, o) in out.chunks_mut(hd).enumerate() {
        let h = first + j;
        group_rows(&q[h * hd..(h + 1) * hd], k, v, shape, pos, h, window, scale, o);
    }
}

/// Keys per block of the value pass: a block stays in L1 while every head of the group
/// adds it.
const VALUE_BLOCK: usize = 64;

/// The query at position `qpos` for heads `h0..h0 + n`, which share one KV head: `qs` holds
/// their `n` query rows, `o` receives their outputs (`n * head_dim` values). Each key and
/// value block is read once for the whole group; each head's result is the same bits as
/// when it is computed alone (`n = 1`), because every (head, key) pair and every output
/// lane is computed in the same order either way.
#[allow(clippy::too_many_arguments)]
#[inline]
fn group_rows(
    qs: &[f32],
    k: &[f32],
    v: &[f32],
    shape: AttnShape,
    qpos: usize,
    h0: usize,
    window: Option<usize>,
    scale: f32,
    o: &mut [f32],
) {
    let AttnShape { heads, kv_heads, head_dim: hd, capacity } = shape;
    let n = qs.len() / hd;
    let start = window.map_or(0, |w| (qpos + 1).saturating_sub(w));
    let kvh = h0 / (heads / kv_heads);
    let base = kvh * capacity * hd;
    let keys = &k[base + start * hd..base + (qpos + 1) * hd];
    let vals = &v[base + start * hd..base + (qpos + 1) * hd];
    let nk = qpos + 1 - start;
    let mut scores = vec![0f32; n * nk];
    // Eight keys at a time; each key's dot product is `dot`'s, bit for bit.
    let full = nk / 8 * 8;
    for (b, eight) in keys[..full * hd].chunks_exact(8 * hd).enumerate() {
        for (j, q) in qs.chunks_exact(hd).enumerate() {
            let d = dot8(q, eight);
            for (sc, d) in scores[j * nk + 8 * b..j * nk + 8 * b + 8].iter_mut().zip(d) {
                *sc = d * scale;
            }
        }
    }
    for (j, q) in qs.chunks_exact(hd).enumerate() {
        for (t, krow) in keys[full * hd..].chunks_exact(hd).enumerate() {
            scores[j * nk + full + t] = dot(q, krow) * scale;
        }
    }
    let sums: Vec<f32> = scores.chunks_exact_mut(nk.max(1)).map(softmax_numerators).collect();
    o.fill(0.0);
    for (b, block) in vals.chunks(VALUE_BLOCK * hd).enumerate() {
        let keys_in = block.len() / hd;
        for (j, oj) in o.chunks_exact_mut(hd).enumerate() {
            let p = &scores[j * nk + b * VALUE_BLOCK..j * nk + b * VALUE_BLOCK + keys_in];
            weighted_sum(p, block, oj);
        }
    }
    for (oj, sum) in o.chunks_exact_mut(hd).zip(sums) {
        let inv = 1.0 / sum;
        for x in oj.iter_mut() {
            *x *= inv;
        }
    }
}

/// Replaces scores by `e^(score - max)` and returns their sum (eight partial sums, added
/// pairwise like `dot`'s lanes).
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

/// `o += Σ_k p[k] · vals_k` over the rows of `vals` (each `o.len()` long): every lane
/// accumulates with fused multiply-adds in key order, so summing a list of keys in
/// consecutive blocks gives the same bits as in one call.
#[cfg(all(target_arch = "x86_64", target_feature = "avx2", target_feature = "fma"))]
#[inline]
fn weighted_sum(p: &[f32], vals: &[f32], o: &mut [f32]) {
    use std::arch::x86_64::*;
    let hd = o.len();
    assert_eq!(vals.len(), p.len() * hd, "one value row per weight");
    /// Lanes `c..c + 8W` of `o`, held in `W` registers over all keys.
    ///
    /// SAFETY: `c + 8W <= hd == o.len()` and `vals.len() == p.len() * hd`.
    #[inline(always)]
    unsafe fn lanes<const W: usize>(p: &[f32], vals: &[f32], o: &mut [f32], c: usize) {
        let hd = o.len();
        let mut acc: [__m256; W] =
            std::array::from_fn(|j| _mm256_loadu_ps(o.as_ptr().add(c + 8 * j)));
        for (k, &w) in p.iter().enumerate() {
            let w = _mm256_set1_ps(w);
            let row = vals.as_ptr().add(k * hd + c);
            for (j, acc) in acc.iter_mut().enumerate() {
                *acc = _mm256_fmadd_ps(w, _mm256_loadu_ps(row.add(8 * j)), *acc);
            }
        }
        for (j, acc) in acc.iter().enumerate() {
            _mm256_storeu_ps(o.as_mut_ptr().add(c + 8 * j), *acc);
        }
    }
    let mut c = 0;
    // SAFETY: each call covers lanes below `hd`; the lengths were checked above.
    unsafe {
        while c + 64 <= hd {
            lanes::<8>(p, vals, o, c);
            c += 64;
        }
        while c + 8 <= hd {
            lanes::<1>(p, vals, o, c);
            c += 8;
        }
    }
    if c < hd {
        for (&w, row) in p.iter().zip(vals.chunks_exact(hd)) {
            for (a, v) in o[c..].iter_mut().zip(&row[c..]) {
                *a = w.mul_add(*v, *a);
            }
        }
    }
}

/// `o += Σ_k p[k] · vals_k` over the rows of `vals` (each `o.len()` long): every lane
/// accumulates with fused multiply-adds in key order, so summing a list of keys in
/// consecutive blocks gives the same bits as in one call.
#[cfg(not(all(target_arch = "x86_64", target_feature = "avx2", target_feature = "fma")))]
#[inline]
fn weighted_sum(p: &[f32], vals: &[f32], o: &mut [f32]) {
    for (&w, row) in p.iter().zip(vals.chunks_exact(o.len())) {
        for (a, v) in o.iter_mut().zip(row) {
            *a = w.mul_add(*v, *a);
        }
    }
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

/// [`dot`] of `a` with eight consecutive rows of `b` (each `a.len()` long).
#[cfg(all(target_arch = "x86_64", target_feature = "avx2", target_feature = "fma"))]
#[inline]
fn dot8(a: &[f32], b: &[f32]) -> [f32; 8] {
    use std::arch::x86_64::*;
    let n = a.len();
    assert_eq!(b.len(), 8 * n, "dot8 takes eight rows");
    let main = n / 8 * 8;
    let mut out = [0f32; 8];
    // SAFETY: every load reads 8 floats at an offset below `main` of `a` or of one of the
    // eight rows of `b`, whose lengths were checked above.
    unsafe {
        let (ap, bp) = (a.as_ptr(), b.as_ptr());
        let mut acc = [_mm256_setzero_ps(); 8];
        let mut c = 0;
        while c < main {
            let x = _mm256_loadu_ps(ap.add(c));
            for (r, acc) in acc.iter_mut().enumerate() {
                *acc = _mm256_fmadd_ps(x, _mm256_loadu_ps(bp.add(r * n + c)), *acc);
            }
            c += 8;
        }
        // Lanes 0..4 of `g0123` hold (l0+l1)+(l2+l3) of rows 0..4, lanes 4..8 the
        // (l4+l5)+(l6+l7); likewise `g4567` for rows 4..8.
        let g0123 = _mm256_hadd_ps(_mm256_hadd_ps(acc[0], acc[1]), _mm256_hadd_ps(acc[2], acc[3]));
        let g4567 = _mm256_hadd_ps(_mm256_hadd_ps(acc[4], acc[5]), _mm256_hadd_ps(acc[6], acc[7]));
        let first = _mm256_permute2f128_ps(g0123, g4567, 0x20);
        let second = _mm256_permute2f128_ps(g0123, g4567, 0x31);
        _mm256_storeu_ps(out.as_mut_ptr(), _mm256_add_ps(first, second));
    }
    if main < n {
        for (r, o) in out.iter_mut().enumerate() {
            for (x, y) in a[main..].iter().zip(&b[r * n + main..(r + 1) * n]) {
                *o = x.mul_add(*y, *o);
            }
        }
    }
    out
}

/// [`dot`] of `a` with eight consecutive rows of `b` (each `a.len()` long).
#[cfg(not(all(target_arch = "x86_64", target_feature = "avx2", target_feature = "fma")))]
#[inline]
fn dot8(a: &[f32], b: &[f32]) -> [f32; 8] {
    let n = a.len();
    std::array::from_fn(|r| dot(a, &b[r * n..(r + 1) * n]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::too_many_arguments)]
    fn naive(
        q: &[f32],
        k: &[f32],
        v: &[f32],
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
                                (q[(i * sh.heads + h) * hd + d]
                                    * k[(kvh * sh.capacity + j) * hd + d])
                                    as f64
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
                        .map(|(&j, p)| p / z * v[(kvh * sh.capacity + j) * hd + d] as f64)
                        .sum();
                    out[(i * sh.heads + h) * hd + d] = val as f32;
                }
            }
        }
        out
    }

    #[test]
    fn weighted_sum_keeps_key_order_in_every_lane() {
        for hd in [8usize, 12, 64, 72, 256] {
            let keys = 13;
            let p: Vec<f32> = (0..keys).map(|i| (i as f32 * 0.7).sin().abs()).collect();
            let v: Vec<f32> = (0..keys * hd).map(|i| (i as f32 * 0.13).cos()).collect();
            // In two blocks of keys, from zero.
            let mut got = vec![0f32; hd];
            weighted_sum(&p[..5], &v[..5 * hd], &mut got);
            weighted_sum(&p[5..], &v[5 * hd..], &mut got);
            for (l, g) in got.iter().enumerate() {
                let mut want = 0f32;
                for k in 0..keys {
                    want = p[k].mul_add(v[k * hd + l], want);
                }
                assert_eq!(g.to_bits(), want.to_bits(), "hd {hd} lane {l}");
            }
        }
    }

    #[test]
    fn dot8_is_eight_dots_bit_for_bit() {
        for n in [8usize, 12, 64, 70, 256] {
            let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..8 * n).map(|i| (i as f32 * 0.11).cos()).collect();
            let got = dot8(&a, &b);
            for (t, g) in got.iter().enumerate() {
                assert_eq!(g.to_bits(), dot(&a, &b[t * n..(t + 1) * n]).to_bits());
            }
        }
    }

    #[test]
    fn matches_naive_and_is_chunk_invariant() {
        let sh = AttnShape { heads: 6, kv_heads: 2, head_dim: 12, capacity: 40 };
        let mut seed = 1u32;
        let mut rnd = |n: usize| -> Vec<f32> {
            (0..n)
                .map(|_| {
                    seed = seed.wrapping_mul(1664525).wrapping_add(1013904223);
                    (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
                })
                .collect()
        };
        let k = rnd(sh.kv_heads * sh.capacity * sh.head_dim);
        let v = rnd(sh.kv_heads * sh.capacity * sh.head_dim);
        let q = rnd(30 * sh.heads * sh.head_dim);
        for window in [None, Some(7)] {
            let mut all = vec![0f32; q.len()];
            attend(&q, &k, &v, sh, 0, 30, window, 0.3, &mut all);
            let want = naive(&q, &k, &v, sh, 0, 30, window, 0.3);
            assert!(all.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-5));
            // The same positions in two chunks, or one at a time: bit-identical.
            let row = sh.heads * sh.head_dim;
            let mut parts = vec![0f32; q.len()];
            attend(&q[..12 * row], &k, &v, sh, 0, 12, window, 0.3, &mut parts[..12 * row]);
            for i in 12..30 {
                attend(
                    &q[i * row..(i + 1) * row],
                    &k,
                    &v,
                    sh,
                    i,
                    1,
                    window,
                    0.3,
                    &mut parts[i * row..(i + 1) * row],
                );
            }
            assert_eq!(all, parts);
            // The last position's heads in two groups, as decode threads split them.
            let last = &q[29 * row..];
            let mut heads = vec![0f32; row];
            let (a, b) = heads.split_at_mut(4 * sh.head_dim);
            attend_heads(last, &k, &v, sh, 29, window, 0.3, 0, a);
            attend_heads(last, &k, &v, sh, 29, window, 0.3, 4, b);
            assert_eq!(heads, all[29 * row..]);
        }
    }
}
