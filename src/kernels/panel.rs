//! Prefill through repacked weight panels: weights repacked per call into panels of
//! `LANES` rows of unsigned bytes, so that one integer dot instruction multiplies a whole
//! panel by 4 activation values at once. Two widths ([`Wide`]): 16 rows with AVX-512 VNNI
//! (`vpdpbusd` on 512 bits), and 8 rows for CPUs without AVX-512 (most laptops): `vpdpbusd`
//! on 256 bits with AVX-VNNI, else AVX2's `vpmaddubsw` + `vpmaddwd` (exact for weight bytes
//! up to 63, so every format but Q8_0).
//!
//! The arithmetic is, output by output, exactly that of the direct kernels in `x86.rs`
//! (which serve decode), so a row of `x` gives the same bits whatever the batch it is in:
//! the activations are quantized by the same functions (Q8 blocks of 32 for the 32-value
//! formats, Q8_K super-blocks of 256 for the K-quants), every integer dot of a weight block
//! is exact, and the float part runs per output with the same fused multiply-adds in the
//! same order: `acc = fma(Σq·y, d·dx, acc)` and, for formats with an offset or a minimum, a
//! second chain `corr = fma(c, sx, corr)` (32-value formats: even and odd blocks in
//! separate chains, summed as `(acc_e + acc_o) + (corr_e + corr_o)`) or
//! `corr = fma(Σ mn·bsum, dmin·dx, corr)` (Q4_K, Q5_K: one chain, `acc - corr`).
//! The repacking costs one pass over the panel's weights and is reused by every
//! activation row: worth it from a few rows up (decode keeps the direct kernels).
//!
//! Each width belongs to one [`Level`] ([`Wide::L`]); every parallel task runs inside that
//! level's `#[target_feature]` entry point (`level::run`), where all of this inlines.

use std::arch::x86_64::*;

use std::marker::PhantomData;

use rayon::prelude::*;

use super::blocks::{self, f16_at, scale_min_k4, Q8KBlock};
use super::isa::Isa;
use super::level::{self, Level};
use super::x86::{q6k_half, Simd32};

/// Panels per parallel task: the activations stream once per task from L2.
const MAX_PANELS_PER_TASK: usize = 4;
/// The widest panel ([`Wide::LANES`]).
const MAX_LANES: usize = 16;

/// A vector width for the panels: `LANES` lanes of i32 (`I`) or f32 (`F`), one weight row
/// per lane.
pub(crate) trait Wide: 'static {
    /// The level whose instructions this width uses.
    type L: Level;
    /// Integer register.
    type I: Copy;
    /// Float register.
    type F: Copy;
    /// Weight rows per panel.
    const LANES: usize;
    /// Activation rows per register tile (as many as the registers hold).
    const MT: usize;
    /// Whether [`dot4`](Wide::dot4) is exact for weight bytes up to 255 (else up to 128).
    const FULL_BYTES: bool;
    unsafe fn zero_i() -> Self::I;
    unsafe fn zero_f() -> Self::F;
    unsafe fn load_i(p: *const u8) -> Self::I;
    unsafe fn load_f(p: *const f32) -> Self::F;
    /// `acc + Σ_j w[4l + j] · y[j]` in every lane `l`: `w` unsigned bytes, `y` the four
    /// signed bytes of one activation group (little-endian in an i32).
    unsafe fn dot4(acc: Self::I, w: Self::I, y: i32) -> Self::I;
    /// Two groups at once: `s0 + s1` gains `Σ w0·y0 + Σ w1·y1` per lane (how it is split
    /// between `s0` and `s1` is the width's choice).
    #[inline(always)]
    unsafe fn dot4x2(
        s0: &mut Self::I,
        s1: &mut Self::I,
        w0: Self::I,
        y0: i32,
        w1: Self::I,
        y1: i32,
    ) {
        *s0 = Self::dot4(*s0, w0, y0);
        *s1 = Self::dot4(*s1, w1, y1);
    }
    unsafe fn add_i(a: Self::I, b: Self::I) -> Self::I;
    unsafe fn sub_i(a: Self::I, b: Self::I) -> Self::I;
    unsafe fn mullo_i(a: Self::I, b: Self::I) -> Self::I;
    unsafe fn set1_i(v: i32) -> Self::I;
    unsafe fn set1_f(v: f32) -> Self::F;
    unsafe fn to_f(v: Self::I) -> Self::F;
    unsafe fn fmadd(a: Self::F, b: Self::F, c: Self::F) -> Self::F;
    unsafe fn mul_f(a: Self::F, b: Self::F) -> Self::F;
    unsafe fn add_f(a: Self::F, b: Self::F) -> Self::F;
    unsafe fn sub_f(a: Self::F, b: Self::F) -> Self::F;
    /// Stores all `LANES` floats at `p`.
    unsafe fn store_f(p: *mut f32, v: Self::F);
}

/// 16 rows per panel on AVX-512 VNNI.
pub(crate) struct V512;

impl Wide for V512 {
    type L = level::Avx512;
    type I = __m512i;
    type F = __m512;
    const LANES: usize = 16;
    const MT: usize = 4;
    const FULL_BYTES: bool = true;
    #[inline(always)]
    unsafe fn zero_i() -> __m512i {
        _mm512_setzero_si512()
    }
    #[inline(always)]
    unsafe fn zero_f() -> __m512 {
        _mm512_setzero_ps()
    }
    #[inline(always)]
    unsafe fn load_i(p: *const u8) -> __m512i {
        _mm512_loadu_si512(p as *const _)
    }
    #[inline(always)]
    unsafe fn load_f(p: *const f32) -> __m512 {
        _mm512_loadu_ps(p)
    }
    #[inline(always)]
    unsafe fn dot4(acc: __m512i, w: __m512i, y: i32) -> __m512i {
        _mm512_dpbusd_epi32(acc, w, _mm512_set1_epi32(y))
    }
    #[inline(always)]
    unsafe fn add_i(a: __m512i, b: __m512i) -> __m512i {
        _mm512_add_epi32(a, b)
    }
    #[inline(always)]
    unsafe fn sub_i(a: __m512i, b: __m512i) -> __m512i {
        _mm512_sub_epi32(a, b)
    }
    #[inline(always)]
    unsafe fn mullo_i(a: __m512i, b: __m512i) -> __m512i {
        _mm512_mullo_epi32(a, b)
    }
    #[inline(always)]
    unsafe fn set1_i(v: i32) -> __m512i {
        _mm512_set1_epi32(v)
    }
    #[inline(always)]
    unsafe fn set1_f(v: f32) -> __m512 {
        _mm512_set1_ps(v)
    }
    #[inline(always)]
    unsafe fn to_f(v: __m512i) -> __m512 {
        _mm512_cvtepi32_ps(v)
    }
    #[inline(always)]
    unsafe fn fmadd(a: __m512, b: __m512, c: __m512) -> __m512 {
        _mm512_fmadd_ps(a, b, c)
    }
    #[inline(always)]
    unsafe fn mul_f(a: __m512, b: __m512) -> __m512 {
        _mm512_mul_ps(a, b)
    }
    #[inline(always)]
    unsafe fn add_f(a: __m512, b: __m512) -> __m512 {
        _mm512_add_ps(a, b)
    }
    #[inline(always)]
    unsafe fn sub_f(a: __m512, b: __m512) -> __m512 {
        _mm512_sub_ps(a, b)
    }
    #[inline(always)]
    unsafe fn store_f(p: *mut f32, v: __m512) {
        _mm512_storeu_ps(p, v)
    }
}

/// 8 rows per panel on 256-bit registers: at a level with [`Level::VNNI`], one `vpdpbusd`
/// per group, exact for every format; otherwise AVX2's `vpmaddubsw` + `vpmaddwd`, exact for
/// weight bytes up to 63 (every format but Q8_0).
pub(crate) struct Wide256<L>(PhantomData<L>);

/// The AVX2 panels.
pub(crate) type V256 = Wide256<level::Avx2>;
/// The AVX-VNNI panels.
pub(crate) type V256Vnni = Wide256<level::AvxVnni>;

impl<L: Level> Wide for Wide256<L> {
    type L = L;
    type I = __m256i;
    type F = __m256;
    const LANES: usize = 8;
    // Two activation rows keep the chains of a tile within the 16 AVX2 registers.
    const MT: usize = 2;
    const FULL_BYTES: bool = L::VNNI;
    #[inline(always)]
    unsafe fn zero_i() -> __m256i {
        _mm256_setzero_si256()
    }
    #[inline(always)]
    unsafe fn zero_f() -> __m256 {
        _mm256_setzero_ps()
    }
    #[inline(always)]
    unsafe fn load_i(p: *const u8) -> __m256i {
        _mm256_loadu_si256(p as *const __m256i)
    }
    #[inline(always)]
    unsafe fn load_f(p: *const f32) -> __m256 {
        _mm256_loadu_ps(p)
    }
    #[inline(always)]
    unsafe fn dot4(acc: __m256i, w: __m256i, y: i32) -> __m256i {
        let y = _mm256_set1_epi32(y);
        if L::VNNI {
            return super::x86::dpbusd256::<L>(acc, w, y);
        }
        // Pairs of u8·i8 products in i16 are exact while 2·w·128 <= 32767, i.e. for weight
        // bytes below 128: the 4- and 5-bit formats and Q6_K use at most 63 (Q8_0, whose
        // shifted bytes reach 255, is not given to this form).
        let pairs = _mm256_maddubs_epi16(w, y);
        _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)))
    }
    #[inline(always)]
    unsafe fn dot4x2(
        s0: &mut __m256i,
        s1: &mut __m256i,
        w0: __m256i,
        y0: i32,
        w1: __m256i,
        y1: i32,
    ) {
        if Self::FULL_BYTES {
            *s0 = Self::dot4(*s0, w0, y0);
            *s1 = Self::dot4(*s1, w1, y1);
            return;
        }
        // The two groups' pairs add up in i16 first: |sum| <= 4·63·128 = 32256 for the
        // weight bytes this width gets (at most 63), so one widening step serves both.
        let p0 = _mm256_maddubs_epi16(w0, _mm256_set1_epi32(y0));
        let p1 = _mm256_maddubs_epi16(w1, _mm256_set1_epi32(y1));
        let quads = _mm256_madd_epi16(_mm256_add_epi16(p0, p1), _mm256_set1_epi16(1));
        *s0 = _mm256_add_epi32(*s0, quads);
    }
    #[inline(always)]
    unsafe fn add_i(a: __m256i, b: __m256i) -> __m256i {
        _mm256_add_epi32(a, b)
    }
    #[inline(always)]
    unsafe fn sub_i(a: __m256i, b: __m256i) -> __m256i {
        _mm256_sub_epi32(a, b)
    }
    #[inline(always)]
    unsafe fn mullo_i(a: __m256i, b: __m256i) -> __m256i {
        _mm256_mullo_epi32(a, b)
    }
    #[inline(always)]
    unsafe fn set1_i(v: i32) -> __m256i {
        _mm256_set1_epi32(v)
    }
    #[inline(always)]
    unsafe fn set1_f(v: f32) -> __m256 {
        _mm256_set1_ps(v)
    }
    #[inline(always)]
    unsafe fn to_f(v: __m256i) -> __m256 {
        _mm256_cvtepi32_ps(v)
    }
    #[inline(always)]
    unsafe fn fmadd(a: __m256, b: __m256, c: __m256) -> __m256 {
        _mm256_fmadd_ps(a, b, c)
    }
    #[inline(always)]
    unsafe fn mul_f(a: __m256, b: __m256) -> __m256 {
        _mm256_mul_ps(a, b)
    }
    #[inline(always)]
    unsafe fn add_f(a: __m256, b: __m256) -> __m256 {
        _mm256_add_ps(a, b)
    }
    #[inline(always)]
    unsafe fn sub_f(a: __m256, b: __m256) -> __m256 {
        _mm256_sub_ps(a, b)
    }
    #[inline(always)]
    unsafe fn store_f(p: *mut f32, v: __m256) {
        _mm256_storeu_ps(p, v)
    }
}

/// A task's repacked panels: bytes `[panel][group of 4][16 rows][4]`, and per panel the
/// float scales `d`, `c` per block (`[panel][block][16]`) and, for the K-quants, the integer
/// sub-block scales `sc` and minimums `mn` (`[panel][sub-block][16]`).
pub(crate) struct Panels {
    q: Vec<u8>,
    d: Vec<f32>,
    c: Vec<f32>,
    sc: Vec<i32>,
    mn: Vec<f32>,
}

/// One weight format on the panel path.
pub(crate) trait PanelKernel {
    /// The quantized activations of all `m` rows.
    type Acts: Sync;
    /// Values per float scale (32, or 256 for the K-quants).
    const BLOCK: usize;
    /// Values per integer sub-block scale (K-quants; 0 for the 32-value formats).
    const SUB: usize;
    /// Quantize `x` (`m × cols`), each row exactly as the decode path does at level `isa`.
    fn acts(isa: Isa, x: &[f32], m: usize, cols: usize) -> Self::Acts;
    /// Decode one weight row: bytes `q` (0..=255), per block `d` and `c`, per sub-block
    /// `sc` and `mn` (empty for the 32-value formats).
    ///
    /// # Safety
    /// Runs inside `L`'s entry point.
    unsafe fn decode_row<L: Level>(
        row: &[u8],
        q: &mut [u8],
        d: &mut [f32],
        c: &mut [f32],
        sc: &mut [i32],
        mn: &mut [f32],
    );
    /// `M` activation rows (from `i`) against panel `pi`; returns `[M][LANES]` results.
    ///
    /// # Safety
    /// `p` holds panel `pi` (of `W::LANES` rows) for rows of `cols` values and rows
    /// `i..i + M` exist in `a`.
    unsafe fn tile<W: Wide, const M: usize>(
        p: &Panels,
        pi: usize,
        a: &Self::Acts,
        cols: usize,
        i: usize,
    ) -> [W::F; M];
}

/// Activations of the 32-value formats: as `blocks::quantize_q8` (the same functions), plus
/// the integer sums `Σy` per block.
pub(crate) struct Acts32 {
    q: Vec<i8>,
    d: Vec<f32>,
    s: Vec<f32>,
    si: Vec<i32>,
}

/// The 32-value formats through their AVX2 unpack (Q8_0's signed values shift by 128).
pub(crate) struct D32<F>(std::marker::PhantomData<F>);

impl<F: Simd32> PanelKernel for D32<F> {
    type Acts = Acts32;
    const BLOCK: usize = 32;
    const SUB: usize = 0;

    fn acts(isa: Isa, x: &[f32], m: usize, cols: usize) -> Acts32 {
        let nb = cols / 32;
        let mut a = Acts32 {
            q: vec![0; m * cols],
            d: vec![0.0; m * nb],
            s: vec![0.0; m * nb],
            si: vec![0; m * nb],
        };
        a.q.par_chunks_mut(cols)
            .zip(a.d.par_chunks_mut(nb))
            .zip(a.s.par_chunks_mut(nb))
            .zip(a.si.par_chunks_mut(nb))
            .zip(x.par_chunks(cols))
            .for_each(|((((q, d), s), si), x)| {
                // The decode path's own quantizer, then its fields laid out for the panels.
                let mut blk = vec![blocks::Q8Block::default(); nb];
                blocks::quantize_q8_on(isa, x, &mut blk);
                for (b, xb) in blk.iter().enumerate() {
                    for (o, &v) in q[32 * b..32 * b + 32].iter_mut().zip(&xb.qs) {
                        *o = v;
                    }
                    d[b] = xb.d;
                    s[b] = xb.s;
                    si[b] = xb.qs.iter().map(|&v| v as i32).sum();
                }
            });
        a
    }

    #[inline(always)]
    unsafe fn decode_row<L: Level>(
        row: &[u8],
        q: &mut [u8],
        d: &mut [f32],
        c: &mut [f32],
        _: &mut [i32],
        _: &mut [f32],
    ) {
        assert!(row.len() == d.len() * F::BYTES && q.len() == 32 * d.len() && c.len() == d.len());
        for b in 0..d.len() {
            // Block `b` of `row` and bytes `32b..32b + 32` of `q` are in bounds (asserted
            // above).
            let p = row.as_ptr().add(b * F::BYTES);
            let mut v = F::load::<L>(p);
            let (db, cb) = F::scales(p);
            if F::SIGNED {
                v = _mm256_xor_si256(v, _mm256_set1_epi8(-128));
            }
            _mm256_storeu_si256(q.as_mut_ptr().add(32 * b) as *mut __m256i, v);
            d[b] = db;
            c[b] = cb;
        }
    }

    #[inline(always)]
    unsafe fn tile<W: Wide, const M: usize>(
        p: &Panels,
        pi: usize,
        a: &Acts32,
        cols: usize,
        i: usize,
    ) -> [W::F; M] {
        let nb = cols / 32;
        let mut acc = [[W::zero_f(); M]; 2];
        let mut corr = [[W::zero_f(); M]; 2];
        // Even blocks into chain 0, odd ones into chain 1, as `x86::tile32`.
        let mut t = 0;
        while t + 2 <= nb {
            step32::<W, F, M>(p, pi, a, cols, i, t, &mut acc[0], &mut corr[0]);
            step32::<W, F, M>(p, pi, a, cols, i, t + 1, &mut acc[1], &mut corr[1]);
            t += 2;
        }
        if t < nb {
            step32::<W, F, M>(p, pi, a, cols, i, t, &mut acc[0], &mut corr[0]);
        }
        std::array::from_fn(|n| {
            let sum = W::add_f(acc[0][n], acc[1][n]);
            if F::SIGNED {
                sum
            } else {
                W::add_f(sum, W::add_f(corr[0][n], corr[1][n]))
            }
        })
    }
}

/// Block `t` of `M` activation rows (from `i`) against panel `pi`, into `acc` (and `corr`).
///
/// # Safety
/// As [`PanelKernel::tile`], and `t < cols / 32`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn step32<W: Wide, F: Simd32, const M: usize>(
    p: &Panels,
    pi: usize,
    a: &Acts32,
    cols: usize,
    i: usize,
    t: usize,
    acc: &mut [W::F; M],
    corr: &mut [W::F; M],
) {
    let lanes = W::LANES;
    let nb = cols / 32;
    let qp = p.q.as_ptr().add(pi * lanes * cols);
    let dv = W::load_f(p.d.as_ptr().add(pi * lanes * nb + t * lanes));
    let yp: [*const i8; M] = std::array::from_fn(|n| a.q.as_ptr().add((i + n) * cols));
    let at = |n: usize| (i + n) * nb + t;
    let mut s0 = [W::zero_i(); M];
    let mut s1 = [W::zero_i(); M];
    for g in (0..8).step_by(2) {
        let k = 32 * t + 4 * g;
        let w0 = W::load_i(qp.add(k * lanes));
        let w1 = W::load_i(qp.add((k + 4) * lanes));
        for n in 0..M {
            let y0 = (yp[n].add(k) as *const i32).read_unaligned();
            let y1 = (yp[n].add(k + 4) as *const i32).read_unaligned();
            W::dot4x2(&mut s0[n], &mut s1[n], w0, y0, w1, y1);
        }
    }
    for n in 0..M {
        let mut isum = W::add_i(s0[n], s1[n]);
        if F::SIGNED {
            isum = W::sub_i(isum, W::set1_i(128 * *a.si.get_unchecked(at(n))));
        }
        let scale = W::mul_f(dv, W::set1_f(*a.d.get_unchecked(at(n))));
        acc[n] = W::fmadd(W::to_f(isum), scale, acc[n]);
        if !F::SIGNED {
            let cv = W::load_f(p.c.as_ptr().add(pi * lanes * nb + t * lanes));
            let sx = W::set1_f(*a.s.get_unchecked(at(n)));
            corr[n] = W::fmadd(cv, sx, corr[n]);
        }
    }
}

/// Activations of the K-quants: Q8_K super-blocks, exactly as the decode path makes them.
pub(crate) struct ActsK {
    nb: usize,
    x: Vec<Q8KBlock>,
}

fn acts_k(isa: Isa, x: &[f32], m: usize, cols: usize) -> ActsK {
    let nb = cols / 256;
    let mut a = ActsK { nb, x: vec![Q8KBlock::default(); m * nb] };
    a.x.par_chunks_mut(nb)
        .zip(x.par_chunks(cols))
        .for_each(|(o, x)| blocks::quantize_q8k_on(isa, x, o));
    a
}

/// The K-quant tile: per super-block the exact integer `Σ sc·dot` (and `Σ mn·bsum`), then
/// the float chains as in `x86::tile_q4k` / `tile_q6k`. `MIN`: Q4_K/Q5_K; else Q6_K
/// (sub-blocks of 16 with the offset -32 in the integers).
#[inline(always)]
unsafe fn tile_k<W: Wide, const SUB: usize, const MIN: bool, const M: usize>(
    p: &Panels,
    pi: usize,
    a: &ActsK,
    cols: usize,
    i: usize,
) -> [W::F; M] {
    let lanes = W::LANES;
    let nb = a.nb;
    let per = 256 / SUB;
    let qp = p.q.as_ptr().add(pi * lanes * cols);
    let pd = p.d.as_ptr().add(pi * lanes * nb);
    let pc = p.c.as_ptr().add(pi * lanes * nb);
    let psc = p.sc.as_ptr().add(pi * lanes * nb * per);
    let pmn = p.mn.as_ptr().add(pi * lanes * nb * per);
    let mut acc = [W::zero_f(); M];
    let mut corr = [W::zero_f(); M];
    let xb: [*const Q8KBlock; M] = std::array::from_fn(|n| a.x.as_ptr().add((i + n) * nb));
    for b in 0..nb {
        let mut isum = [W::zero_i(); M];
        let mut msum = [W::zero_f(); M];
        for s in 0..per {
            let t = b * per + s;
            let mut s0 = [W::zero_i(); M];
            let mut s1 = [W::zero_i(); M];
            for g in (0..SUB / 4).step_by(2) {
                let k = SUB * t + 4 * g;
                let w0 = W::load_i(qp.add(k * lanes));
                let w1 = W::load_i(qp.add((k + 4) * lanes));
                for n in 0..M {
                    let y = (*xb[n].add(b)).qs.as_ptr().add(SUB * s + 4 * g);
                    let y0 = (y as *const i32).read_unaligned();
                    let y1 = (y.add(4) as *const i32).read_unaligned();
                    W::dot4x2(&mut s0[n], &mut s1[n], w0, y0, w1, y1);
                }
            }
            let scv = W::load_i(psc.add(t * lanes) as *const u8);
            for n in 0..M {
                let bs = &(*xb[n].add(b)).bsums;
                let mut dot = W::add_i(s0[n], s1[n]);
                if MIN {
                    let pair = bs[2 * s] as i32 + bs[2 * s + 1] as i32;
                    let mnv = W::load_f(pmn.add(t * lanes));
                    msum[n] = W::fmadd(mnv, W::set1_f(pair as f32), msum[n]);
                } else {
                    dot = W::sub_i(dot, W::set1_i(32 * bs[s] as i32));
                }
                isum[n] = W::add_i(isum[n], W::mullo_i(dot, scv));
            }
        }
        let dv = W::load_f(pd.add(b * lanes));
        for n in 0..M {
            let xd = W::set1_f((*xb[n].add(b)).d);
            acc[n] = W::fmadd(W::to_f(isum[n]), W::mul_f(dv, xd), acc[n]);
            if MIN {
                let mv = W::load_f(pc.add(b * lanes));
                corr[n] = W::fmadd(msum[n], W::mul_f(mv, xd), corr[n]);
            }
        }
    }
    if MIN {
        for n in 0..M {
            acc[n] = W::sub_f(acc[n], corr[n]);
        }
    }
    acc
}

pub(crate) struct DQ4K;
pub(crate) struct DQ5K;
pub(crate) struct DQ6K;

/// Scales of a Q4_K/Q5_K super-block: `d`, `dmin` and the 8 integer scales and minimums.
fn k4_scales(blk: &[u8], b: usize, d: &mut [f32], c: &mut [f32], sc: &mut [i32], mn: &mut [f32]) {
    d[b] = f16_at(blk, 0);
    c[b] = f16_at(blk, 2);
    let (s, m) = scale_min_k4(&blk[4..16]);
    for j in 0..8 {
        sc[8 * b + j] = s[j] as i32;
        mn[8 * b + j] = m[j] as f32;
    }
}

impl PanelKernel for DQ4K {
    type Acts = ActsK;
    const BLOCK: usize = 256;
    const SUB: usize = 32;
    fn acts(isa: Isa, x: &[f32], m: usize, cols: usize) -> ActsK {
        acts_k(isa, x, m, cols)
    }
    #[inline(always)]
    unsafe fn decode_row<L: Level>(
        row: &[u8],
        q: &mut [u8],
        d: &mut [f32],
        c: &mut [f32],
        sc: &mut [i32],
        mn: &mut [f32],
    ) {
        for (b, blk) in row.chunks_exact(blocks::Q4_K_BYTES).enumerate() {
            k4_scales(blk, b, d, c, sc, mn);
            let qb = &mut q[256 * b..256 * b + 256];
            // `blk` has 144 bytes (qs at 16..144) and `qb` 256.
            let m4 = _mm256_set1_epi8(0x0F);
            for j in 0..4 {
                let v = _mm256_loadu_si256(blk.as_ptr().add(16 + 32 * j) as *const __m256i);
                let o = qb.as_mut_ptr().add(64 * j) as *mut __m256i;
                _mm256_storeu_si256(o, _mm256_and_si256(v, m4));
                _mm256_storeu_si256(o.add(1), _mm256_and_si256(_mm256_srli_epi16(v, 4), m4));
            }
        }
    }
    #[inline(always)]
    unsafe fn tile<W: Wide, const M: usize>(
        p: &Panels,
        pi: usize,
        a: &ActsK,
        cols: usize,
        i: usize,
    ) -> [W::F; M] {
        tile_k::<W, 32, true, M>(p, pi, a, cols, i)
    }
}

impl PanelKernel for DQ5K {
    type Acts = ActsK;
    const BLOCK: usize = 256;
    const SUB: usize = 32;
    fn acts(isa: Isa, x: &[f32], m: usize, cols: usize) -> ActsK {
        acts_k(isa, x, m, cols)
    }
    #[inline(always)]
    unsafe fn decode_row<L: Level>(
        row: &[u8],
        q: &mut [u8],
        d: &mut [f32],
        c: &mut [f32],
        sc: &mut [i32],
        mn: &mut [f32],
    ) {
        for (b, blk) in row.chunks_exact(blocks::Q5_K_BYTES).enumerate() {
            k4_scales(blk, b, d, c, sc, mn);
            let qh = &blk[16..48];
            let qb = &mut q[256 * b..256 * b + 256];
            for j in 0..4 {
                for l in 0..32 {
                    let v = blk[48 + 32 * j + l];
                    let h = qh[l] >> (2 * j);
                    qb[64 * j + l] = (v & 0x0F) | ((h & 1) << 4);
                    qb[64 * j + 32 + l] = (v >> 4) | (((h >> 1) & 1) << 4);
                }
            }
        }
    }
    #[inline(always)]
    unsafe fn tile<W: Wide, const M: usize>(
        p: &Panels,
        pi: usize,
        a: &ActsK,
        cols: usize,
        i: usize,
    ) -> [W::F; M] {
        tile_k::<W, 32, true, M>(p, pi, a, cols, i)
    }
}

impl PanelKernel for DQ6K {
    type Acts = ActsK;
    const BLOCK: usize = 256;
    const SUB: usize = 16;
    fn acts(isa: Isa, x: &[f32], m: usize, cols: usize) -> ActsK {
        acts_k(isa, x, m, cols)
    }
    #[inline(always)]
    unsafe fn decode_row<L: Level>(
        row: &[u8],
        q: &mut [u8],
        d: &mut [f32],
        _: &mut [f32],
        sc: &mut [i32],
        _: &mut [f32],
    ) {
        for (b, blk) in row.chunks_exact(blocks::Q6_K_BYTES).enumerate() {
            d[b] = f16_at(blk, 208);
            for g in 0..16 {
                sc[16 * b + g] = blk[192 + g] as i8 as i32;
            }
            let qb = &mut q[256 * b..256 * b + 256];
            // `blk` has 210 bytes (ql 0..128, qh 128..192) and `qb` 256.
            let o = qb.as_mut_ptr() as *mut __m256i;
            for h in 0..2 {
                for (k, v) in q6k_half(blk.as_ptr(), h).into_iter().enumerate() {
                    _mm256_storeu_si256(o.add(4 * h + k), v);
                }
            }
        }
    }
    #[inline(always)]
    unsafe fn tile<W: Wide, const M: usize>(
        p: &Panels,
        pi: usize,
        a: &ActsK,
        cols: usize,
        i: usize,
    ) -> [W::F; M] {
        tile_k::<W, 16, false, M>(p, pi, a, cols, i)
    }
}

/// Panels of rows `r0..r1`. Safety: runs inside `W::L`'s entry point.
#[inline(always)]
unsafe fn repack<K: PanelKernel, W: Wide>(
    w: &[u8],
    rb: usize,
    cols: usize,
    r0: usize,
    r1: usize,
) -> Panels {
    const { assert!(W::LANES <= MAX_LANES) };
    let panel = W::LANES;
    let nb = cols / K::BLOCK;
    let nsub = cols.checked_div(K::SUB).unwrap_or(0);
    let np = (r1 - r0).div_ceil(panel);
    let mut p = Panels {
        q: vec![0; np * panel * cols],
        d: vec![0.0; np * panel * nb],
        c: vec![0.0; np * panel * nb],
        sc: vec![0; np * panel * nsub],
        mn: vec![0.0; np * panel * nsub],
    };
    let mut q = vec![0u8; cols];
    let (mut d, mut c) = (vec![0f32; nb], vec![0f32; nb]);
    let (mut sc, mut mn) = (vec![0i32; nsub], vec![0f32; nsub]);
    for r in r0..r1 {
        let row = &w[r * rb..(r + 1) * rb];
        K::decode_row::<W::L>(row, &mut q, &mut d, &mut c, &mut sc, &mut mn);
        let (pi, lane) = ((r - r0) / panel, (r - r0) % panel);
        let pq = &mut p.q[pi * panel * cols..(pi + 1) * panel * cols];
        for (g, four) in q.chunks_exact(4).enumerate() {
            pq[(g * panel + lane) * 4..(g * panel + lane) * 4 + 4].copy_from_slice(four);
        }
        let base = pi * panel * nb;
        for t in 0..nb {
            p.d[base + t * panel + lane] = d[t];
            p.c[base + t * panel + lane] = c[t];
        }
        let base = pi * panel * nsub;
        for t in 0..nsub {
            p.sc[base + t * panel + lane] = sc[t];
            p.mn[base + t * panel + lane] = mn[t];
        }
    }
    p
}

/// The output matrix, shared by the parallel tasks of [`run`]: each task writes only the
/// columns of its own weight rows, so no two tasks ever write the same element.
#[derive(Clone, Copy)]
struct SharedOut {
    ptr: *mut f32,
    len: usize,
}

// SAFETY: `SharedOut` is only used by `run`, whose tasks write disjoint elements while the
// `&mut [f32]` it was made from is borrowed for the whole parallel section.
unsafe impl Send for SharedOut {}
unsafe impl Sync for SharedOut {}

impl SharedOut {
    /// Writes `vals` at `at..`; panics when out of bounds.
    ///
    /// # Safety
    /// No other thread reads or writes `at..at + vals.len()` meanwhile.
    unsafe fn write(&self, at: usize, vals: &[f32]) {
        assert!(at + vals.len() <= self.len);
        std::ptr::copy_nonoverlapping(vals.as_ptr(), self.ptr.add(at), vals.len());
    }
}

/// Stores `[M][LANES]` results (the first `lanes` of each) at row `i..` and column `col`.
///
/// # Safety
/// As [`SharedOut::write`]: the calling task owns columns `col..col + lanes`.
#[inline(always)]
unsafe fn store<W: Wide, const M: usize>(
    acc: [W::F; M],
    out: SharedOut,
    rows: usize,
    i: usize,
    col: usize,
    lanes: usize,
) {
    for (n, v) in acc.iter().enumerate() {
        let mut tmp = [0f32; MAX_LANES];
        W::store_f(tmp.as_mut_ptr(), *v);
        out.write((i + n) * rows + col, &tmp[..lanes]);
    }
}

/// Output columns `r0..r1` for all `m` activation rows.
///
/// # Safety
/// The calling task is the only one writing columns `r0..r1` of `out` (`m × rows`), `a`
/// holds `m` rows of `cols` values, and this runs inside `W::L`'s entry point.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn compute_task<K: PanelKernel, W: Wide>(
    w: &[u8],
    rb: usize,
    cols: usize,
    a: &K::Acts,
    m: usize,
    rows: usize,
    r0: usize,
    r1: usize,
    out: SharedOut,
) {
    let p = repack::<K, W>(w, rb, cols, r0, r1);
    let n_out = r1 - r0;
    let np = n_out.div_ceil(W::LANES);
    let mut i = 0;
    while i < m {
        let mt = (m - i).min(W::MT);
        for pi in 0..np {
            let lanes = (n_out - pi * W::LANES).min(W::LANES);
            let col = r0 + pi * W::LANES;
            // SAFETY: `p` holds panel `pi`, rows i..i+mt exist, and this task owns columns
            // `col..col + lanes`.
            match mt {
                4 => store::<W, 4>(K::tile::<W, 4>(&p, pi, a, cols, i), out, rows, i, col, lanes),
                3 => store::<W, 3>(K::tile::<W, 3>(&p, pi, a, cols, i), out, rows, i, col, lanes),
                2 => store::<W, 2>(K::tile::<W, 2>(&p, pi, a, cols, i), out, rows, i, col, lanes),
                _ => store::<W, 1>(K::tile::<W, 1>(&p, pi, a, cols, i), out, rows, i, col, lanes),
            }
        }
        i += mt;
    }
}

/// Panels per task: as many as allowed (for reuse of the activations) while keeping the
/// threads evenly loaded.
fn panels_per_task(panels: usize, threads: usize) -> usize {
    (1..=MAX_PANELS_PER_TASK)
        .rev()
        .min_by_key(|&p| panels.div_ceil(p).div_ceil(threads) * p)
        .unwrap_or(1)
}

/// `out = x · Wᵀ` through repacked panels (lengths already checked by the caller).
pub(crate) fn run<K: PanelKernel, W: Wide>(
    w: &[u8],
    rows: usize,
    cols: usize,
    rb: usize,
    x: &[f32],
    m: usize,
    out: &mut [f32],
) {
    assert!(w.len() == rows * rb && x.len() == m * cols && out.len() == m * rows);
    assert!(cols.is_multiple_of(K::BLOCK));
    let a = K::acts(<W::L as Level>::ISA, x, m, cols);
    let threads = rayon::current_num_threads().max(1);
    let chunk = panels_per_task(rows.div_ceil(W::LANES), threads) * W::LANES;
    let shared = SharedOut { ptr: out.as_mut_ptr(), len: out.len() };
    (0..rows.div_ceil(chunk)).into_par_iter().for_each(|c| {
        let r0 = c * chunk;
        let r1 = (r0 + chunk).min(rows);
        // Task `c` alone handles weight rows (output columns) `r0..r1`, `a` was built for
        // `m` rows of `cols`, and `out` stays mutably borrowed by this function until every
        // task has finished.
        let task =
            Task::<K, W> { w, rb, cols, a: &a, m, rows, r0, r1, out: shared, w_: PhantomData };
        level::run(<W::L as Level>::ISA, task);
    });
}

/// One parallel task of [`run`], run inside the entry point of `W::L`.
struct Task<'a, K: PanelKernel, W> {
    w: &'a [u8],
    rb: usize,
    cols: usize,
    a: &'a K::Acts,
    m: usize,
    rows: usize,
    r0: usize,
    r1: usize,
    out: SharedOut,
    w_: PhantomData<W>,
}

impl<K: PanelKernel, W: Wide> level::Job for Task<'_, K, W> {
    type Out = ();
    #[inline(always)]
    unsafe fn run<L: Level>(self) {
        // Only ever `W::L` itself (`panel_matmul_on` picks a width the CPU supports).
        if L::ISA != <W::L as Level>::ISA {
            unreachable!("panels of {:?} run at {:?}", <W::L as Level>::ISA, L::ISA);
        }
        let Task { w, rb, cols, a, m, rows, r0, r1, out, .. } = self;
        compute_task::<K, W>(w, rb, cols, a, m, rows, r0, r1, out)
    }
}
