//! Causal self-attention over the KV cache on the CPU, one query row at a time.
//!
//! Each (query, head) pair is computed on its own with a fixed summation order, so a
//! position's output does not depend on how many positions were processed together: a
//! conversation continued from the cache gives the same logits as a fresh prefill of the
//! same tokens. It also avoids the copies and transposes of a tensor-op formulation in the
//! decode step.

use rayon::prelude::*;

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
    let work = |(idx, o): (usize, &mut [f32])| {
        let (i, h) = (idx / heads, idx % heads);
        let qrow = &q[idx * hd..(idx + 1) * hd];
        head_row(qrow, k, v, shape, pos + i, h, window, scale, o);
    };
    // A few short rows: too little work per head to be worth waking threads.
    if s * heads * (pos + s) * hd < 64 * 1024 {
        out.chunks_mut(hd).enumerate().for_each(work);
    } else {
        out.par_chunks_mut(hd).enumerate().for_each(work);
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
        head_row(&q[h * hd..(h + 1) * hd], k, v, shape, pos, h, window, scale, o);
    }
}

/// One query row of head `h` at position `qpos` against the cached keys and values it
/// sees, into `o` (`head_dim` values).
#[allow(clippy::too_many_arguments)]
#[inline]
fn head_row(
    qrow: &[f32],
    k: &[f32],
    v: &[f32],
    shape: AttnShape,
    qpos: usize,
    h: usize,
    window: Option<usize>,
    scale: f32,
    o: &mut [f32],
) {
    let AttnShape { heads, kv_heads, head_dim: hd, capacity } = shape;
    let start = window.map_or(0, |w| (qpos + 1).saturating_sub(w));
    let kvh = h / (heads / kv_heads);
    let base = kvh * capacity * hd;
    let keys = &k[base + start * hd..base + (qpos + 1) * hd];
    let vals = &v[base + start * hd..base + (qpos + 1) * hd];
    let mut scores = Vec::with_capacity(qpos + 1 - start);
    // Four keys at a time for instruction-level parallelism; each key's dot product
    // keeps the order of `dot`.
    let mut quads = keys.chunks_exact(4 * hd);
    for four in quads.by_ref() {
        scores.extend(dot4(qrow, four).map(|d| d * scale));
    }
    for krow in quads.remainder().chunks_exact(hd) {
        scores.push(dot(qrow, krow) * scale);
    }
    let max = scores.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
    let mut sum = 0.0f32;
    for sc in scores.iter_mut() {
        *sc = (*sc - max).exp();
        sum += *sc;
    }
    o.fill(0.0);
    // Values four rows at a time; every output lane still adds them in key order.
    let mut vquads = vals.chunks_exact(4 * hd);
    let mut ps = scores.chunks_exact(4);
    for (four, p) in vquads.by_ref().zip(ps.by_ref()) {
        let (w0, w1, w2, w3) = (p[0] / sum, p[1] / sum, p[2] / sum, p[3] / sum);
        let (v0, rest) = four.split_at(hd);
        let (v1, rest) = rest.split_at(hd);
        let (v2, v3) = rest.split_at(hd);
        for ((((a, x0), x1), x2), x3) in o.iter_mut().zip(v0).zip(v1).zip(v2).zip(v3) {
            let mut acc = *a;
            acc += w0 * x0;
            acc += w1 * x1;
            acc += w2 * x2;
            acc += w3 * x3;
            *a = acc;
        }
    }
    for (vrow, p) in vquads.remainder().chunks_exact(hd).zip(ps.remainder()) {
        let w = p / sum;
        for (a, b) in o.iter_mut().zip(vrow) {
            *a += w * b;
        }
    }
}

/// Dot product with a fixed summation order (eight lanes, then the lanes in order).
#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ta, tb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    let mut sum = 0.0;
    for x in acc {
        sum += x;
    }
    for (x, y) in ta.iter().zip(tb) {
        sum += x * y;
    }
    sum
}

/// [`dot`] of `a` with four consecutive rows of `b` (each `a.len()` long), interleaved.
#[inline]
fn dot4(a: &[f32], b: &[f32]) -> [f32; 4] {
    let n = a.len();
    let rows = [&b[..n], &b[n..2 * n], &b[2 * n..3 * n], &b[3 * n..4 * n]];
    let mut acc = [[0f32; 8]; 4];
    let chunks = n / 8;
    for c in 0..chunks {
        let x = &a[c * 8..c * 8 + 8];
        for (acc, row) in acc.iter_mut().zip(rows) {
            let y = &row[c * 8..c * 8 + 8];
            for l in 0..8 {
                acc[l] += x[l] * y[l];
            }
        }
    }
    let mut out = [0f32; 4];
    for ((o, acc), row) in out.iter_mut().zip(acc).zip(rows) {
        let mut sum = 0.0;
        for x in acc {
            sum += x;
        }
        for i in chunks * 8..n {
            sum += a[i] * row[i];
        }
        *o = sum;
    }
    out
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
    fn dot4_is_four_dots_bit_for_bit() {
        for n in [8usize, 12, 64, 70] {
            let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..4 * n).map(|i| (i as f32 * 0.11).cos()).collect();
            let got = dot4(&a, &b);
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
