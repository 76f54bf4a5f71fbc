//! AVX2 + FMA dot products, and AVX-512 / AVX-VNNI variants, for every x86_64 CPU that has
//! them: chosen at run time (see `level.rs`), whatever the build's `target-cpu`.
//!
//! Each function computes one weight row against `N` activation rows, unpacking every weight
//! block into registers once and reusing it `N` times (prefill), which also serves mat-vec
//! (`N = 1`, decode). Integer products use `_mm256_maddubs_epi16` (u8 × i8 → i16 pairs);
//! at the levels with a 256-bit `vpdpbusd` (AVX-512 VNNI with VL, or AVX-VNNI) the 32-value
//! formats use it instead.
//!
//! Every function is `#[inline(always)]` and generic over the [`Level`] it runs at: it is
//! compiled into the `#[target_feature]` entry point of that level (`level::run`), never
//! called on its own, so its intrinsics inline there.
//!
//! Safety: every function here reads weight blocks through raw pointers, and may only run
//! inside the entry point of its level (the CPU has the instructions). The safe wrappers in
//! `mod.rs` check that `w.len()` is exactly `blocks × block_bytes` and that every activation
//! row has exactly `blocks` blocks, which is all the reads below rely on.

use std::arch::x86_64::*;

/// How far ahead of the block being read the kernels ask for weight bytes. Decode streams
/// every weight once from main memory; software prefetching this far ahead keeps enough
/// loads in flight (1B-class Q4_K decode: +45% on the development machine, where the
/// hardware prefetcher alone left the cores waiting).
const PREFETCH_AHEAD: usize = 2048;

/// Prefetches the cache lines `PREFETCH_AHEAD` bytes past `p..p + len` into L1. Never
/// faults, even past the end of the weights (hence `wrapping_add`).
#[inline(always)]
unsafe fn prefetch_ahead(p: *const u8, len: usize) {
    let mut off = 0;
    while off < len {
        _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(PREFETCH_AHEAD + off) as *const i8);
        off += 64;
    }
}

use super::blocks::{f16_at, scale_min_k4, Fmt32, Q8Block, Q8KBlock};
use super::blocks::{Q4_0, Q4_1, Q4_K_BYTES, Q5_0, Q5_1, Q5_K_BYTES, Q6_K_BYTES, Q8_0};
use super::level::Level;

#[inline(always)]
unsafe fn hsum(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    _mm_cvtss_f32(s)
}

/// `acc` plus, in each i32 lane, the sum of the 4 products `u·s` of its bytes (u unsigned,
/// s signed), exact, in one instruction: `vpdpbusd` of AVX-512 VL or of AVX-VNNI (recent
/// laptop CPUs without AVX-512), the same operation in two encodings. Only for levels with
/// [`Level::VNNI`].
#[inline(always)]
pub(crate) unsafe fn dpbusd256<L: Level>(acc: __m256i, u: __m256i, s: __m256i) -> __m256i {
    debug_assert!(L::VNNI);
    if L::AVX512 {
        _mm256_dpbusd_epi32(acc, u, s)
    } else {
        _mm256_dpbusd_avx_epi32(acc, u, s)
    }
}

/// Σ over groups of 4 of `u[i] * s[i]` (u unsigned, s signed) as 8 i32 lanes.
#[inline(always)]
unsafe fn dot_u8_i8<L: Level>(u: __m256i, s: __m256i) -> __m256i {
    if L::VNNI {
        dpbusd256::<L>(_mm256_setzero_si256(), u, s)
    } else {
        _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1))
    }
}

/// 32 nibbles of 16 bytes: low nibbles in bytes 0..16, high nibbles in bytes 16..32.
#[inline(always)]
unsafe fn nibbles(p: *const u8) -> __m256i {
    let x = _mm_loadu_si128(p as *const __m128i);
    let m = _mm_set1_epi8(0x0F);
    let lo = _mm_and_si128(x, m);
    let hi = _mm_and_si128(_mm_srli_epi16(x, 4), m);
    _mm256_set_m128i(hi, lo)
}

/// 0x10 in byte `j` where bit `j` of `qh` is set, else 0.
#[inline(always)]
unsafe fn high_bits<L: Level>(qh: u32) -> __m256i {
    if L::AVX512 {
        return _mm256_maskz_mov_epi8(qh, _mm256_set1_epi8(0x10));
    }
    let x = _mm256_set1_epi32(qh as i32);
    let shuf = _mm256_setr_epi64x(
        0x0000000000000000,
        0x0101010101010101,
        0x0202020202020202,
        0x0303030303030303,
    );
    let bytes = _mm256_shuffle_epi8(x, shuf);
    let mask = _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe);
    let set = _mm256_cmpeq_epi8(_mm256_or_si256(bytes, mask), _mm256_set1_epi64x(-1));
    _mm256_and_si256(set, _mm256_set1_epi8(0x10))
}

/// The AVX2 side of a 32-value format: its quantized values in one register.
pub(crate) trait Simd32: Fmt32 {
    /// The 32 values of the block at `p` (unsigned 0..=31, or signed for Q8_0).
    unsafe fn load<L: Level>(p: *const u8) -> __m256i;
    /// `(d, c)` of the block at `p`, as in [`Fmt32::unpack`].
    unsafe fn scales(p: *const u8) -> (f32, f32);
    /// Whether the block stores `c` (the minimum) as its second f16; otherwise
    /// `c = CORR · d`.
    const HAS_MIN: bool;
    /// `c / d` for the formats without a stored minimum.
    const CORR: f32;
    /// `[d0, c0, d1, c1]` of the blocks at `p0` and `p1`: the same values as
    /// [`Simd32::scales`], both blocks at once (`c` undefined for Q8_0).
    #[inline(always)]
    unsafe fn scales2(p0: *const u8, p1: *const u8) -> __m128 {
        // The first 4 bytes of a block: `d` and the minimum, or `d` and 2 bytes of values
        // (which are dropped).
        let r0 = (p0 as *const i32).read_unaligned();
        let r1 = (p1 as *const i32).read_unaligned();
        let h = _mm_cvtph_ps(_mm_insert_epi32(_mm_cvtsi32_si128(r0), r1, 1));
        if Self::HAS_MIN || Self::SIGNED {
            // Q8_0 has no `c`: its lanes 1 and 3 are never used.
            h
        } else {
            _mm_mul_ps(_mm_moveldup_ps(h), _mm_setr_ps(1.0, Self::CORR, 1.0, Self::CORR))
        }
    }
}

#[inline(always)]
unsafe fn f16p(p: *const u8) -> f32 {
    f16_at(std::slice::from_raw_parts(p, 2), 0)
}

impl Simd32 for Q4_0 {
    const HAS_MIN: bool = false;
    const CORR: f32 = -8.0;
    #[inline(always)]
    unsafe fn load<L: Level>(p: *const u8) -> __m256i {
        nibbles(p.add(2))
    }
    #[inline(always)]
    unsafe fn scales(p: *const u8) -> (f32, f32) {
        let d = f16p(p);
        (d, -8.0 * d)
    }
}

impl Simd32 for Q4_1 {
    const HAS_MIN: bool = true;
    const CORR: f32 = 0.0;
    #[inline(always)]
    unsafe fn load<L: Level>(p: *const u8) -> __m256i {
        nibbles(p.add(4))
    }
    #[inline(always)]
    unsafe fn scales(p: *const u8) -> (f32, f32) {
        (f16p(p), f16p(p.add(2)))
    }
}

impl Simd32 for Q5_0 {
    const HAS_MIN: bool = false;
    const CORR: f32 = -16.0;
    #[inline(always)]
    unsafe fn load<L: Level>(p: *const u8) -> __m256i {
        let qh = (p.add(2) as *const u32).read_unaligned();
        _mm256_or_si256(nibbles(p.add(6)), high_bits::<L>(u32::from_le(qh)))
    }
    #[inline(always)]
    unsafe fn scales(p: *const u8) -> (f32, f32) {
        let d = f16p(p);
        (d, -16.0 * d)
    }
}

impl Simd32 for Q5_1 {
    const HAS_MIN: bool = true;
    const CORR: f32 = 0.0;
    #[inline(always)]
    unsafe fn load<L: Level>(p: *const u8) -> __m256i {
        let qh = (p.add(4) as *const u32).read_unaligned();
        _mm256_or_si256(nibbles(p.add(8)), high_bits::<L>(u32::from_le(qh)))
    }
    #[inline(always)]
    unsafe fn scales(p: *const u8) -> (f32, f32) {
        (f16p(p), f16p(p.add(2)))
    }
}

impl Simd32 for Q8_0 {
    const HAS_MIN: bool = false;
    const CORR: f32 = 0.0;
    #[inline(always)]
    unsafe fn load<L: Level>(p: *const u8) -> __m256i {
        _mm256_loadu_si256(p.add(2) as *const __m256i)
    }
    #[inline(always)]
    unsafe fn scales(p: *const u8) -> (f32, f32) {
        (f16p(p), 0.0)
    }
}

/// A 32-value format row against `N` Q8 rows. Requires `w.len() == nb * F::BYTES` and
/// `xs[n].len() == nb` for every `n`.
///
/// Per output: the exact integer dot `Σq·y` of each block, then two chains of fused
/// multiply-adds over the even blocks and two over the odd ones, in block order:
/// `acc = fma(Σq·y, d·dx, acc)` and (formats with an offset or a minimum `c`)
/// `corr = fma(c, sx, corr)`; the result is `(acc_even + acc_odd) + (corr_even + corr_odd)`.
/// The prefill panels (`panel.rs`) do exactly this, so a row's result does not depend on
/// the batch it is in. Here lanes 0 and 2 of a register hold the even and odd `acc`, lanes
/// 1 and 3 of another the even and odd `corr`.
#[inline(always)]
pub(crate) unsafe fn tile32<F: Simd32, L: Level, const N: usize>(
    w: &[u8],
    xs: [&[Q8Block]; N],
) -> [f32; N] {
    let nb = w.len() / F::BYTES;
    let mut accv = [_mm_setzero_ps(); N];
    let mut corrv = [_mm_setzero_ps(); N];
    let wp = w.as_ptr();
    let xp: [*const Q8Block; N] = std::array::from_fn(|n| xs[n].as_ptr());
    let mut b = 0;
    while b + 2 <= nb {
        let p0 = wp.add(b * F::BYTES);
        let p1 = wp.add((b + 1) * F::BYTES);
        prefetch_ahead(p0, 2 * F::BYTES);
        let sc = F::scales2(p0, p1);
        let (u0, g0) = unsign::<F>(F::load::<L>(p0));
        let (u1, g1) = unsign::<F>(F::load::<L>(p1));
        for n in 0..N {
            let x0 = xp[n].add(b);
            let x1 = xp[n].add(b + 1);
            // `Q8Block` is `repr(C)` and starts with `d, s`: [dx0, sx0, dx1, sx1].
            let xds = _mm_castpd_ps(_mm_loadh_pd(_mm_load_sd(x0 as *const f64), x1 as *const f64));
            let v0 = dot_u8_i8::<L>(u0, signed_y::<F>(&*x0, g0));
            let v1 = dot_u8_i8::<L>(u1, signed_y::<F>(&*x1, g1));
            let prod = _mm_mul_ps(sc, xds);
            accv[n] = _mm_fmadd_ps(pair_sums(v0, v1), prod, accv[n]);
            if !F::SIGNED {
                corrv[n] = _mm_fmadd_ps(sc, xds, corrv[n]);
            }
        }
        b += 2;
    }
    let tail = (b < nb).then(|| {
        let p0 = wp.add(b * F::BYTES);
        (F::scales(p0), unsign::<F>(F::load::<L>(p0)))
    });
    std::array::from_fn(|n| {
        let mut a = [0f32; 4];
        let mut c = [0f32; 4];
        _mm_storeu_ps(a.as_mut_ptr(), accv[n]);
        _mm_storeu_ps(c.as_mut_ptr(), corrv[n]);
        let (mut acc_e, acc_o, mut corr_e, corr_o) = (a[0], a[2], c[1], c[3]);
        if let Some(((d0, c0), (u0, g0))) = tail {
            let x0 = &*xp[n].add(b);
            let v0 = dot_u8_i8::<L>(u0, signed_y::<F>(x0, g0));
            acc_e = (hsum_i32(v0) as f32).mul_add(d0 * x0.d, acc_e);
            if !F::SIGNED {
                corr_e = c0.mul_add(x0.s, corr_e);
            }
        }
        if F::SIGNED {
            acc_e + acc_o
        } else {
            (acc_e + acc_o) + (corr_e + corr_o)
        }
    })
}

/// Four rows of a 32-value format against one Q8 row (decode), lane `r` of every register
/// for row `r`: the same operations as [`tile32`] per row, so the same bits. Requires
/// `w[r].len() == x.len() * F::BYTES` for every `r`.
#[inline(always)]
pub(crate) unsafe fn rows4_32<F: Simd32, L: Level>(w: [&[u8]; 4], x: &[Q8Block]) -> [f32; 4] {
    let nb = x.len();
    let wp: [*const u8; 4] = std::array::from_fn(|r| w[r].as_ptr());
    let mut acc = [_mm_setzero_ps(); 2];
    let mut corr = [_mm_setzero_ps(); 2];
    for b in 0..nb {
        let xb = &*x.as_ptr().add(b);
        let y = _mm256_loadu_si256(xb.qs.as_ptr() as *const __m256i);
        let p: [*const u8; 4] = std::array::from_fn(|r| wp[r].add(b * F::BYTES));
        if b % 2 == 0 {
            for pr in p {
                prefetch_ahead(pr, 2 * F::BYTES);
            }
        }
        let v: [__m256i; 4] = std::array::from_fn(|r| {
            let (u, g) = unsign::<F>(F::load::<L>(p[r]));
            let y = if F::SIGNED { _mm256_sign_epi8(y, g) } else { y };
            dot_u8_i8::<L>(u, y)
        });
        // [Σv0, Σv1, Σv2, Σv3]
        let h = _mm256_hadd_epi32(_mm256_hadd_epi32(v[0], v[1]), _mm256_hadd_epi32(v[2], v[3]));
        let isum = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
        // The first 4 bytes of each block: [d, e] per row, as in `Simd32::scales2`.
        let raw = _mm_setr_epi32(
            (p[0] as *const i32).read_unaligned(),
            (p[1] as *const i32).read_unaligned(),
            (p[2] as *const i32).read_unaligned(),
            (p[3] as *const i32).read_unaligned(),
        );
        let de = _mm256_cvtph_ps(raw);
        let (lo, hi) = (_mm256_castps256_ps128(de), _mm256_extractf128_ps(de, 1));
        let d = _mm_shuffle_ps(lo, hi, 0b10_00_10_00);
        let chain = b & 1;
        let dx = _mm_set1_ps(xb.d);
        acc[chain] = _mm_fmadd_ps(_mm_cvtepi32_ps(isum), _mm_mul_ps(d, dx), acc[chain]);
        if !F::SIGNED {
            let c = if F::HAS_MIN {
                _mm_shuffle_ps(lo, hi, 0b11_01_11_01)
            } else {
                _mm_mul_ps(d, _mm_set1_ps(F::CORR))
            };
            corr[chain] = _mm_fmadd_ps(c, _mm_set1_ps(xb.s), corr[chain]);
        }
    }
    let mut sum = _mm_add_ps(acc[0], acc[1]);
    if !F::SIGNED {
        sum = _mm_add_ps(sum, _mm_add_ps(corr[0], corr[1]));
    }
    let mut out = [0f32; 4];
    _mm_storeu_ps(out.as_mut_ptr(), sum);
    out
}

/// `[Σa, Σa, Σb, Σb]` (as floats) of the 8 lanes of `a` and of `b`.
#[inline(always)]
unsafe fn pair_sums(a: __m256i, b: __m256i) -> __m128 {
    // [a01, a23, b01, b23 | a45, a67, b45, b67]
    let h = _mm256_hadd_epi32(a, b);
    let s = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    _mm_cvtepi32_ps(s)
}

/// The unsigned operand of the byte dot and the sign source for the activations.
#[inline(always)]
unsafe fn unsign<F: Simd32>(q: __m256i) -> (__m256i, __m256i) {
    if F::SIGNED {
        (_mm256_sign_epi8(q, q), q)
    } else {
        (q, _mm256_setzero_si256())
    }
}

/// The activations of block `xb`, with the signs of the weights moved onto them (Q8_0).
#[inline(always)]
unsafe fn signed_y<F: Simd32>(xb: &Q8Block, sign: __m256i) -> __m256i {
    let y = _mm256_loadu_si256(xb.qs.as_ptr() as *const __m256i);
    if F::SIGNED {
        _mm256_sign_epi8(y, sign)
    } else {
        y
    }
}

/// `Σ_j mn[j] · (bsums[2j] + bsums[2j + 1])`.
#[inline(always)]
unsafe fn sum_mins(mn: &[u8; 8], bsums: &[i16; 16]) -> i32 {
    let b = _mm256_loadu_si256(bsums.as_ptr() as *const __m256i);
    let pairs = _mm_hadd_epi16(_mm256_castsi256_si128(b), _mm256_extracti128_si256(b, 1));
    let m = _mm_cvtepu8_epi16(_mm_loadl_epi64(mn.as_ptr() as *const __m128i));
    let p = _mm_madd_epi16(m, pairs);
    let p = _mm_add_epi32(p, _mm_unpackhi_epi64(p, p));
    let p = _mm_add_epi32(p, _mm_shuffle_epi32(p, 1));
    _mm_cvtsi128_si32(p)
}

/// `Σ u*y` with the i16 pair sums weighted by `scale` (an i16 per lane), as 8 i32 lanes.
#[inline(always)]
unsafe fn scaled_dot(u: __m256i, y: __m256i, scale: __m256i) -> __m256i {
    _mm256_madd_epi16(_mm256_maddubs_epi16(u, y), scale)
}

/// Q4_K row against `N` Q8_K rows. Same length contract as [`tile32`].
#[inline(always)]
pub(crate) unsafe fn tile_q4k<const N: usize>(w: &[u8], xs: [&[Q8KBlock]; N]) -> [f32; N] {
    let nb = w.len() / Q4_K_BYTES;
    let mask = _mm256_set1_epi8(0x0F);
    let mut acc = [0f32; N];
    let mut corr = [0f32; N];
    let xp: [*const Q8KBlock; N] = std::array::from_fn(|n| xs[n].as_ptr());
    for b in 0..nb {
        let blk = w.get_unchecked(b * Q4_K_BYTES..(b + 1) * Q4_K_BYTES);
        prefetch_ahead(blk.as_ptr(), Q4_K_BYTES);
        let d = f16_at(blk, 0);
        let dmin = f16_at(blk, 2);
        let (sc, mn) = scale_min_k4(&blk[4..16]);
        let qs = blk.as_ptr().add(16);
        let mut isum = [_mm256_setzero_si256(); N];
        for j in 0..4 {
            let q = _mm256_loadu_si256(qs.add(32 * j) as *const __m256i);
            let lo = _mm256_and_si256(q, mask);
            let hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), mask);
            let s_lo = _mm256_set1_epi16(sc[2 * j] as i16);
            let s_hi = _mm256_set1_epi16(sc[2 * j + 1] as i16);
            for n in 0..N {
                let y = (*xp[n].add(b)).qs.as_ptr().add(64 * j);
                let y_lo = _mm256_loadu_si256(y as *const __m256i);
                let y_hi = _mm256_loadu_si256(y.add(32) as *const __m256i);
                let p = _mm256_add_epi32(scaled_dot(lo, y_lo, s_lo), scaled_dot(hi, y_hi, s_hi));
                isum[n] = _mm256_add_epi32(isum[n], p);
            }
        }
        for n in 0..N {
            let xb = &*xp[n].add(b);
            acc[n] = (hsum_i32(isum[n]) as f32).mul_add(d * xb.d, acc[n]);
            corr[n] = (sum_mins(&mn, &xb.bsums) as f32).mul_add(dmin * xb.d, corr[n]);
        }
    }
    std::array::from_fn(|n| acc[n] - corr[n])
}

/// Q5_K row against `N` Q8_K rows. Same length contract as [`tile32`].
#[inline(always)]
pub(crate) unsafe fn tile_q5k<const N: usize>(w: &[u8], xs: [&[Q8KBlock]; N]) -> [f32; N] {
    let nb = w.len() / Q5_K_BYTES;
    let mask = _mm256_set1_epi8(0x0F);
    let bit5 = _mm256_set1_epi8(0x10);
    let mut acc = [0f32; N];
    let mut corr = [0f32; N];
    let xp: [*const Q8KBlock; N] = std::array::from_fn(|n| xs[n].as_ptr());
    for b in 0..nb {
        let blk = w.get_unchecked(b * Q5_K_BYTES..(b + 1) * Q5_K_BYTES);
        prefetch_ahead(blk.as_ptr(), Q5_K_BYTES);
        let d = f16_at(blk, 0);
        let dmin = f16_at(blk, 2);
        let (sc, mn) = scale_min_k4(&blk[4..16]);
        let qh = _mm256_loadu_si256(blk.as_ptr().add(16) as *const __m256i);
        let qs = blk.as_ptr().add(48);
        let mut isum = [_mm256_setzero_si256(); N];
        for j in 0..4 {
            let q = _mm256_loadu_si256(qs.add(32 * j) as *const __m256i);
            let m1 = _mm256_set1_epi8((1u8 << (2 * j)) as i8);
            let m2 = _mm256_set1_epi8((2u8 << (2 * j)) as i8);
            let h1 = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, m1), m1), bit5);
            let h2 = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, m2), m2), bit5);
            let lo = _mm256_or_si256(_mm256_and_si256(q, mask), h1);
            let hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), mask), h2);
            let s_lo = _mm256_set1_epi16(sc[2 * j] as i16);
            let s_hi = _mm256_set1_epi16(sc[2 * j + 1] as i16);
            for n in 0..N {
                let y = (*xp[n].add(b)).qs.as_ptr().add(64 * j);
                let y_lo = _mm256_loadu_si256(y as *const __m256i);
                let y_hi = _mm256_loadu_si256(y.add(32) as *const __m256i);
                let p = _mm256_add_epi32(scaled_dot(lo, y_lo, s_lo), scaled_dot(hi, y_hi, s_hi));
                isum[n] = _mm256_add_epi32(isum[n], p);
            }
        }
        for n in 0..N {
            let xb = &*xp[n].add(b);
            acc[n] = (hsum_i32(isum[n]) as f32).mul_add(d * xb.d, acc[n]);
            corr[n] = (sum_mins(&mn, &xb.bsums) as f32).mul_add(dmin * xb.d, corr[n]);
        }
    }
    std::array::from_fn(|n| acc[n] - corr[n])
}

/// The 6-bit values (0..=63) of half `h` (values `128h..128h + 128`) of the Q6_K block at
/// `p`, as four registers of 32 in value order: low 4 bits from `ql`, high 2 from `qh`.
/// Requires the whole 210-byte block at `p`.
#[inline(always)]
pub(crate) unsafe fn q6k_half(p: *const u8, h: usize) -> [__m256i; 4] {
    let (m4, m3, m2) = (_mm256_set1_epi8(0x0F), _mm256_set1_epi8(0x03), _mm256_set1_epi8(0x30));
    let ql0 = _mm256_loadu_si256(p.add(64 * h) as *const __m256i);
    let ql1 = _mm256_loadu_si256(p.add(64 * h + 32) as *const __m256i);
    let qh = _mm256_loadu_si256(p.add(128 + 32 * h) as *const __m256i);
    [
        _mm256_or_si256(_mm256_and_si256(ql0, m4), _mm256_slli_epi16(_mm256_and_si256(qh, m3), 4)),
        _mm256_or_si256(_mm256_and_si256(ql1, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), m2)),
        _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4), _mm256_and_si256(qh, m2)),
        _mm256_or_si256(
            _mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
            _mm256_and_si256(_mm256_srli_epi16(qh, 2), m2),
        ),
    ]
}

/// Q6_K row against `N` Q8_K rows. Same length contract as [`tile32`].
#[inline(always)]
pub(crate) unsafe fn tile_q6k<const N: usize>(w: &[u8], xs: [&[Q8KBlock]; N]) -> [f32; N] {
    let nb = w.len() / Q6_K_BYTES;
    let mut acc = [0f32; N];
    let xp: [*const Q8KBlock; N] = std::array::from_fn(|n| xs[n].as_ptr());
    for b in 0..nb {
        let blk = w.get_unchecked(b * Q6_K_BYTES..(b + 1) * Q6_K_BYTES);
        prefetch_ahead(blk.as_ptr(), Q6_K_BYTES);
        let d = f16_at(blk, 208);
        let p = blk.as_ptr();
        let mut sc = [0i16; 16];
        for (g, s) in sc.iter_mut().enumerate() {
            *s = blk[192 + g] as i8 as i16;
        }
        let mut isum = [_mm256_setzero_si256(); N];
        for h in 0..2 {
            let q = q6k_half(p, h);
            for (k, &qk) in q.iter().enumerate() {
                let g = 8 * h + 2 * k;
                let scale = _mm256_set_m128i(_mm_set1_epi16(sc[g + 1]), _mm_set1_epi16(sc[g]));
                for n in 0..N {
                    let y = (*xp[n].add(b)).qs.as_ptr().add(128 * h + 32 * k);
                    let y = _mm256_loadu_si256(y as *const __m256i);
                    isum[n] = _mm256_add_epi32(isum[n], scaled_dot(qk, y, scale));
                }
            }
        }
        for n in 0..N {
            let xb = &*xp[n].add(b);
            let mut off = 0i32;
            for (&s, &bs) in sc.iter().zip(&xb.bsums) {
                off += s as i32 * bs as i32;
            }
            let total = hsum_i32(isum[n]) - 32 * off;
            acc[n] = (total as f32).mul_add(d * xb.d, acc[n]);
        }
    }
    acc
}

/// AVX2 side of a float row format: 8 values at a time as f32.
pub(crate) trait SimdFloat: super::scalar::FloatRow {
    unsafe fn load8(p: *const u8) -> __m256;
}

impl SimdFloat for super::scalar::RowF32 {
    #[inline(always)]
    unsafe fn load8(p: *const u8) -> __m256 {
        _mm256_loadu_ps(p as *const f32)
    }
}

impl SimdFloat for super::scalar::RowF16 {
    #[inline(always)]
    unsafe fn load8(p: *const u8) -> __m256 {
        _mm256_cvtph_ps(_mm_loadu_si128(p as *const __m128i))
    }
}

impl SimdFloat for super::scalar::RowBf16 {
    #[inline(always)]
    unsafe fn load8(p: *const u8) -> __m256 {
        let h = _mm256_cvtepu16_epi32(_mm_loadu_si128(p as *const __m128i));
        _mm256_castsi256_ps(_mm256_slli_epi32(h, 16))
    }
}

/// A float row against `N` f32 rows. Requires `xs[n].len() == w.len() / R::BYTES`.
#[inline(always)]
pub(crate) unsafe fn tile_float<R: SimdFloat, const N: usize>(
    w: &[u8],
    xs: [&[f32]; N],
) -> [f32; N] {
    let cols = w.len() / R::BYTES;
    let mut acc = [_mm256_setzero_ps(); N];
    let wp = w.as_ptr();
    let main = cols / 8 * 8;
    let mut k = 0;
    while k < main {
        if k % 32 == 0 {
            prefetch_ahead(wp.add(k * R::BYTES), 32 * R::BYTES);
        }
        let wv = R::load8(wp.add(k * R::BYTES));
        for n in 0..N {
            acc[n] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(xs[n].as_ptr().add(k)), acc[n]);
        }
        k += 8;
    }
    std::array::from_fn(|n| {
        let mut s = hsum(acc[n]);
        for (k, &xk) in xs[n].iter().enumerate().take(cols).skip(main) {
            s += R::get(w, k) * xk;
        }
        s
    })
}

/// Largest |x| of the 32 floats at `x`.
#[inline(always)]
pub(crate) unsafe fn absmax32(x: *const f32) -> f32 {
    let sign = _mm256_set1_ps(-0.0);
    let mut m = _mm256_setzero_ps();
    for i in 0..4 {
        m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x.add(8 * i))));
    }
    let h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    let h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    let h = _mm_max_ss(h, _mm_shuffle_ps(h, h, 1));
    _mm_cvtss_f32(h)
}

/// Rounds `x[i] * id` (ties to even, as `f32::round_ties_even`) for the 32 floats at `x`
/// into the i8 at `out`; returns the sums of the first and second 16 results.
#[inline(always)]
pub(crate) unsafe fn quant32(x: *const f32, id: f32, out: *mut i8) -> (i32, i32) {
    let mul = _mm256_set1_ps(id);
    let q: [__m256i; 4] = std::array::from_fn(|i| {
        _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x.add(8 * i)), mul))
    });
    let lo = _mm256_add_epi32(q[0], q[1]);
    let hi = _mm256_add_epi32(q[2], q[3]);
    let p01 = _mm256_packs_epi32(q[0], q[1]);
    let p23 = _mm256_packs_epi32(q[2], q[3]);
    let b = _mm256_packs_epi16(p01, p23);
    let b = _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256(out as *mut __m256i, b);
    (hsum_i32(lo), hsum_i32(hi))
}

#[inline(always)]
unsafe fn hsum_i32(v: __m256i) -> i32 {
    let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    let s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 1));
    _mm_cvtsi128_si32(s)
}
