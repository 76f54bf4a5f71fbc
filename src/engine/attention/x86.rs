//! AVX2/FMA/F16C versions of attention's three inner loops, chosen at run time. Each gives
//! the portable code's bits: the same fused multiply-adds in the same order per result.
//!
//! Keys are widened into a block laid out in pairs: for keys `2u` and `2u + 1`, chunk `c`
//! (eight dimensions) of the first then of the second, so the pair's chunk is one 64-byte
//! line.

use half::f16;
use std::arch::x86_64::*;

/// Offset of key `t`'s chunk `c` in a block of `nc` chunks per key.
#[inline(always)]
fn at(t: usize, c: usize, nc: usize) -> usize {
    ((t / 2 * nc + c) * 2 + t % 2) * 8
}

/// Widens `src` (`n` keys of `hd`) into `buf` (`n8` keys, paired), zero-padded.
///
/// # Safety
/// The CPU must have AVX2, FMA and F16C; `hd % 8 == 0`, `n8` even and `buf.len() ==
/// n8 * hd >= src.len()`.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn load_keys(src: &[f16], n8: usize, hd: usize, buf: &mut [f32]) {
    let nc = hd / 8;
    let n = src.len() / hd;
    assert!(hd.is_multiple_of(8) && n8.is_multiple_of(2) && n <= n8 && buf.len() == n8 * hd);
    let (s, b) = (src.as_ptr() as *const __m128i, buf.as_mut_ptr());
    for t in 0..n8 {
        for c in 0..nc {
            let x = if t < n {
                _mm256_cvtph_ps(_mm_loadu_si128(s.byte_add(2 * (t * hd + 8 * c))))
            } else {
                _mm256_setzero_ps()
            };
            _mm256_storeu_ps(b.add(at(t, c, nc)), x);
        }
    }
}

/// The sums `((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7))` of eight accumulators.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn reduce8(acc: &[__m256; 8]) -> [f32; 8] {
    // Lanes 0..4 of `g0123` hold (l0+l1)+(l2+l3) of accumulators 0..4, lanes 4..8 their
    // (l4+l5)+(l6+l7); likewise `g4567` for accumulators 4..8.
    let g0123 = _mm256_hadd_ps(_mm256_hadd_ps(acc[0], acc[1]), _mm256_hadd_ps(acc[2], acc[3]));
    let g4567 = _mm256_hadd_ps(_mm256_hadd_ps(acc[4], acc[5]), _mm256_hadd_ps(acc[6], acc[7]));
    let first = _mm256_permute2f128_ps(g0123, g4567, 0x20);
    let second = _mm256_permute2f128_ps(g0123, g4567, 0x31);
    let mut out = [0f32; 8];
    _mm256_storeu_ps(out.as_mut_ptr(), _mm256_add_ps(first, second));
    out
}

/// `dots[r * n8 + t]` = the dot product of row `r` of `qs` with key `t` of `keys` (a block
/// from [`load_keys`]), for two rows and four keys at a time.
///
/// # Safety
/// The CPU must have AVX2 and FMA; `hd % 8 == 0`, `n8 % 8 == 0`, `keys.len() == n8 * hd`,
/// `dots.len() == qs.len() / hd * n8`.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn row_dots(qs: &[f32], keys: &[f32], n8: usize, hd: usize, dots: &mut [f32]) {
    let (nc, rows) = (hd / 8, qs.len() / hd);
    assert!(hd.is_multiple_of(8) && n8.is_multiple_of(8) && keys.len() == n8 * hd);
    assert_eq!(dots.len(), rows * n8);
    let (q, k) = (qs.as_ptr(), keys.as_ptr());
    let mut r = 0;
    while r + 2 <= rows {
        let (q0, q1) = (q.add(r * hd), q.add((r + 1) * hd));
        for t in (0..n8).step_by(4) {
            let mut acc = [_mm256_setzero_ps(); 8];
            for c in 0..nc {
                let (a, b) = (_mm256_loadu_ps(q0.add(8 * c)), _mm256_loadu_ps(q1.add(8 * c)));
                for j in 0..4 {
                    let kj = _mm256_loadu_ps(k.add(at(t + j, c, nc)));
                    acc[j] = _mm256_fmadd_ps(a, kj, acc[j]);
                    acc[4 + j] = _mm256_fmadd_ps(b, kj, acc[4 + j]);
                }
            }
            let d = reduce8(&acc);
            dots[r * n8 + t..r * n8 + t + 4].copy_from_slice(&d[..4]);
            dots[(r + 1) * n8 + t..(r + 1) * n8 + t + 4].copy_from_slice(&d[4..]);
        }
        r += 2;
    }
    if r < rows {
        let q0 = q.add(r * hd);
        for t in (0..n8).step_by(8) {
            let mut acc = [_mm256_setzero_ps(); 8];
            for c in 0..nc {
                let a = _mm256_loadu_ps(q0.add(8 * c));
                for (j, acc) in acc.iter_mut().enumerate() {
                    *acc = _mm256_fmadd_ps(a, _mm256_loadu_ps(k.add(at(t + j, c, nc))), *acc);
                }
            }
            dots[r * n8 + t..r * n8 + t + 8].copy_from_slice(&reduce8(&acc));
        }
    }
}

/// Lanes `c..c + 8W` of rows `r0..r0 + R` of `o`, held in registers over all keys.
///
/// # Safety
/// AVX2 and FMA; the indices are in bounds (checked by [`weighted_sums`]).
#[target_feature(enable = "avx2,fma")]
#[inline]
#[allow(clippy::too_many_arguments)]
unsafe fn tile<const R: usize, const W: usize>(
    p: &[f32],
    stride: usize,
    n: usize,
    vals: &[f32],
    hd: usize,
    o: &mut [f32],
    r0: usize,
    c: usize,
) {
    let (po, vo, oo) = (p.as_ptr(), vals.as_ptr(), o.as_mut_ptr());
    let mut acc = [[_mm256_setzero_ps(); W]; R];
    for (r, acc) in acc.iter_mut().enumerate() {
        for (j, a) in acc.iter_mut().enumerate() {
            *a = _mm256_loadu_ps(oo.add((r0 + r) * hd + c + 8 * j));
        }
    }
    for k in 0..n {
        let row = vo.add(k * hd + c);
        let v: [__m256; W] = std::array::from_fn(|j| _mm256_loadu_ps(row.add(8 * j)));
        for (r, acc) in acc.iter_mut().enumerate() {
            let w = _mm256_set1_ps(*po.add((r0 + r) * stride + k));
            for (a, v) in acc.iter_mut().zip(&v) {
                *a = _mm256_fmadd_ps(w, *v, *a);
            }
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        for (j, a) in acc.iter().enumerate() {
            _mm256_storeu_ps(oo.add((r0 + r) * hd + c + 8 * j), *a);
        }
    }
}

/// `o_r += Σ_k p[r * stride + k] · vals_k` for `rows` rows, lane by lane in key order.
///
/// # Safety
/// The CPU must have AVX2 and FMA; `hd % 8 == 0`.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn weighted_sums(
    p: &[f32],
    stride: usize,
    rows: usize,
    vals: &[f32],
    hd: usize,
    o: &mut [f32],
) {
    let n = vals.len() / hd;
    assert!(hd.is_multiple_of(8) && vals.len() == n * hd && o.len() >= rows * hd);
    assert!(rows == 0 || p.len() >= (rows - 1) * stride + n);
    let mut r = 0;
    while r + 2 <= rows {
        let mut c = 0;
        while c + 32 <= hd {
            tile::<2, 4>(p, stride, n, vals, hd, o, r, c);
            c += 32;
        }
        while c < hd {
            tile::<2, 1>(p, stride, n, vals, hd, o, r, c);
            c += 8;
        }
        r += 2;
    }
    if r < rows {
        let mut c = 0;
        while c + 64 <= hd {
            tile::<1, 8>(p, stride, n, vals, hd, o, r, c);
            c += 64;
        }
        while c < hd {
            tile::<1, 1>(p, stride, n, vals, hd, o, r, c);
            c += 8;
        }
    }
}

/// [`super::softmax_numerators`] with AVX2 and FMA (vectorized; the same bits).
///
/// # Safety
/// The CPU must have AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn softmax_numerators(scores: &mut [f32]) -> f32 {
    super::softmax_numerators(scores)
}

/// [`row_dots`] with AVX-512: four rows and eight keys at a time, each 512-bit register
/// holding one chunk of a key pair (the accumulators are then split into the AVX2 ones).
///
/// # Safety
/// The CPU must have AVX-512F, AVX2 and FMA; the same conditions as [`row_dots`].
#[target_feature(enable = "avx512f,avx2,fma")]
pub(super) unsafe fn row_dots_512(
    qs: &[f32],
    keys: &[f32],
    n8: usize,
    hd: usize,
    dots: &mut [f32],
) {
    let (nc, rows) = (hd / 8, qs.len() / hd);
    assert!(hd.is_multiple_of(8) && n8.is_multiple_of(8) && keys.len() == n8 * hd);
    assert_eq!(dots.len(), rows * n8);
    let full = rows / 4 * 4;
    // Each query chunk twice, for both keys of a pair.
    let mut dup = vec![0f32; full * hd * 2];
    for (r, q) in qs.chunks_exact(hd).take(full).enumerate() {
        for (c, chunk) in q.chunks_exact(8).enumerate() {
            let at = (r * nc + c) * 16;
            dup[at..at + 8].copy_from_slice(chunk);
            dup[at + 8..at + 16].copy_from_slice(chunk);
        }
    }
    let (d, k) = (dup.as_ptr(), keys.as_ptr());
    for r in (0..full).step_by(4) {
        for t in (0..n8).step_by(8) {
            let mut acc = [[_mm512_setzero_ps(); 4]; 4];
            for c in 0..nc {
                let q: [__m512; 4] =
                    std::array::from_fn(|i| _mm512_loadu_ps(d.add(((r + i) * nc + c) * 16)));
                for u in 0..4 {
                    let kp = _mm512_loadu_ps(k.add(((t / 2 + u) * nc + c) * 16));
                    for (acc, q) in acc.iter_mut().zip(&q) {
                        acc[u] = _mm512_fmadd_ps(*q, kp, acc[u]);
                    }
                }
            }
            for (i, acc) in acc.iter().enumerate() {
                let halves: [__m256; 8] = std::array::from_fn(|j| {
                    let pair = _mm512_castps_si512(acc[j / 2]);
                    let half = if j % 2 == 0 {
                        _mm512_castsi512_si256(pair)
                    } else {
                        _mm512_extracti64x4_epi64::<1>(pair)
                    };
                    _mm256_castsi256_ps(half)
                });
                let at = (r + i) * n8 + t;
                dots[at..at + 8].copy_from_slice(&reduce8(&halves));
            }
        }
    }
    if full < rows {
        row_dots(&qs[full * hd..], keys, n8, hd, &mut dots[full * n8..]);
    }
}

/// [`weighted_sums`] with AVX-512: four rows by 64 lanes at a time.
///
/// # Safety
/// The CPU must have AVX-512F, AVX2 and FMA; `hd % 8 == 0`.
#[target_feature(enable = "avx512f,avx2,fma")]
pub(super) unsafe fn weighted_sums_512(
    p: &[f32],
    stride: usize,
    rows: usize,
    vals: &[f32],
    hd: usize,
    o: &mut [f32],
) {
    let n = vals.len() / hd;
    assert!(hd.is_multiple_of(8) && vals.len() == n * hd && o.len() >= rows * hd);
    assert!(rows == 0 || p.len() >= (rows - 1) * stride + n);
    let full = if hd.is_multiple_of(64) { rows / 4 * 4 } else { 0 };
    let (po, vo, oo) = (p.as_ptr(), vals.as_ptr(), o.as_mut_ptr());
    for r0 in (0..full).step_by(4) {
        for c in (0..hd).step_by(64) {
            let mut acc = [[_mm512_setzero_ps(); 4]; 4];
            for (r, acc) in acc.iter_mut().enumerate() {
                for (j, a) in acc.iter_mut().enumerate() {
                    *a = _mm512_loadu_ps(oo.add((r0 + r) * hd + c + 16 * j));
                }
            }
            for k in 0..n {
                let row = vo.add(k * hd + c);
                let v: [__m512; 4] = std::array::from_fn(|j| _mm512_loadu_ps(row.add(16 * j)));
                for (r, acc) in acc.iter_mut().enumerate() {
                    let w = _mm512_set1_ps(*po.add((r0 + r) * stride + k));
                    for (a, v) in acc.iter_mut().zip(&v) {
                        *a = _mm512_fmadd_ps(w, *v, *a);
                    }
                }
            }
            for (r, acc) in acc.iter().enumerate() {
                for (j, a) in acc.iter().enumerate() {
                    _mm512_storeu_ps(oo.add((r0 + r) * hd + c + 16 * j), *a);
                }
            }
        }
    }
    if full < rows {
        weighted_sums(&p[full * stride..], stride, rows - full, vals, hd, &mut o[full * hd..]);
    }
}
