//! Prefill on AVX-512 VNNI: weights repacked per call into 16-row panels of unsigned bytes,
//! so that one `vpdpbusd` multiplies 16 weight rows by 4 activation values at once.
//!
//! Every format is first decoded to bytes `q` (0..=255) with, per sub-block of `SUB` values
//! (32, or 16 for Q6_K whose scales cover 16 values), a scale `d` and an offset `c`:
//! `w = d·q + c`. Activations are quantized to i8 in blocks of 32 (`x ≈ dx·y`), with the
//! sums `sx = dx·Σy` per sub-block, so a sub-block contributes `d·dx·Σ q·y + c·sx`.
//! The repacking costs one pass over the panel's weights and is reused by every
//! activation row: worth it from a few rows up (decode keeps the direct kernels).

use std::arch::x86_64::*;

use rayon::prelude::*;

use super::blocks::{self, f16_at, scale_min_k4};
use super::x86::{absmax32, quant32, Simd32};

/// Weight rows per panel (the lanes of a 512-bit register of i32).
const PANEL: usize = 16;
/// Activation rows per register tile.
const MT: usize = 4;
/// Panels per parallel task: the activations stream once per task from L2.
const MAX_PANELS_PER_TASK: usize = 4;

/// Decodes one weight row into bytes and per-sub-block `(d, c)`.
pub(crate) trait Decode {
    /// Values per sub-block sharing one `(d, c)`.
    const SUB: usize;
    /// `q.len() == cols`, `d.len() == c.len() == cols / SUB`.
    fn decode_row(row: &[u8], q: &mut [u8], d: &mut [f32], c: &mut [f32]);
}

/// The 32-value formats through their scalar unpack (Q8_0's signed values shift by 128).
pub(crate) struct D32<F>(std::marker::PhantomData<F>);

impl<F: Simd32> Decode for D32<F> {
    const SUB: usize = 32;
    fn decode_row(row: &[u8], q: &mut [u8], d: &mut [f32], c: &mut [f32]) {
        assert!(row.len() == d.len() * F::BYTES && q.len() == 32 * d.len() && c.len() == d.len());
        for b in 0..d.len() {
            // SAFETY: block `b` of `row` and bytes `32b..32b + 32` of `q` are in bounds
            // (asserted above).
            unsafe {
                let p = row.as_ptr().add(b * F::BYTES);
                let mut v = F::load(p);
                let (db, mut cb) = F::scales(p);
                if F::SIGNED {
                    v = _mm256_xor_si256(v, _mm256_set1_epi8(-128));
                    cb -= 128.0 * db;
                }
                _mm256_storeu_si256(q.as_mut_ptr().add(32 * b) as *mut __m256i, v);
                d[b] = db;
                c[b] = cb;
            }
        }
    }
}

pub(crate) struct DQ4K;
pub(crate) struct DQ5K;
pub(crate) struct DQ6K;

impl Decode for DQ4K {
    const SUB: usize = 32;
    fn decode_row(row: &[u8], q: &mut [u8], d: &mut [f32], c: &mut [f32]) {
        for (b, blk) in row.chunks_exact(blocks::Q4_K_BYTES).enumerate() {
            let (dd, dmin) = (f16_at(blk, 0), f16_at(blk, 2));
            let (sc, mn) = scale_min_k4(&blk[4..16]);
            for s in 0..8 {
                d[8 * b + s] = dd * sc[s] as f32;
                c[8 * b + s] = -dmin * mn[s] as f32;
            }
            let qb = &mut q[256 * b..256 * b + 256];
            // SAFETY: `blk` has 144 bytes (qs at 16..144) and `qb` 256.
            unsafe {
                let m4 = _mm256_set1_epi8(0x0F);
                for j in 0..4 {
                    let v = _mm256_loadu_si256(blk.as_ptr().add(16 + 32 * j) as *const __m256i);
                    let o = qb.as_mut_ptr().add(64 * j) as *mut __m256i;
                    _mm256_storeu_si256(o, _mm256_and_si256(v, m4));
                    _mm256_storeu_si256(o.add(1), _mm256_and_si256(_mm256_srli_epi16(v, 4), m4));
                }
            }
        }
    }
}

impl Decode for DQ5K {
    const SUB: usize = 32;
    fn decode_row(row: &[u8], q: &mut [u8], d: &mut [f32], c: &mut [f32]) {
        for (b, blk) in row.chunks_exact(blocks::Q5_K_BYTES).enumerate() {
            let (dd, dmin) = (f16_at(blk, 0), f16_at(blk, 2));
            let (sc, mn) = scale_min_k4(&blk[4..16]);
            for s in 0..8 {
                d[8 * b + s] = dd * sc[s] as f32;
                c[8 * b + s] = -dmin * mn[s] as f32;
            }
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
}

impl Decode for DQ6K {
    const SUB: usize = 16;
    fn decode_row(row: &[u8], q: &mut [u8], d: &mut [f32], c: &mut [f32]) {
        for (b, blk) in row.chunks_exact(blocks::Q6_K_BYTES).enumerate() {
            let dd = f16_at(blk, 208);
            for g in 0..16 {
                let dg = dd * blk[192 + g] as i8 as f32;
                d[16 * b + g] = dg;
                c[16 * b + g] = -32.0 * dg;
            }
            let qb = &mut q[256 * b..256 * b + 256];
            // SAFETY: `blk` has 210 bytes (ql 0..128, qh 128..192) and `qb` 256.
            unsafe {
                let p = blk.as_ptr();
                let o = qb.as_mut_ptr() as *mut __m256i;
                let (m4, m3, m2) = (
                    _mm256_set1_epi8(0x0F),
                    _mm256_set1_epi8(0x03),
                    _mm256_set1_epi8(0x30),
                );
                for h in 0..2 {
                    let ql0 = _mm256_loadu_si256(p.add(64 * h) as *const __m256i);
                    let ql1 = _mm256_loadu_si256(p.add(64 * h + 32) as *const __m256i);
                    let qh = _mm256_loadu_si256(p.add(128 + 32 * h) as *const __m256i);
                    let v = [
                        _mm256_or_si256(
                            _mm256_and_si256(ql0, m4),
                            _mm256_slli_epi16(_mm256_and_si256(qh, m3), 4),
                        ),
                        _mm256_or_si256(
                            _mm256_and_si256(ql1, m4),
                            _mm256_and_si256(_mm256_slli_epi16(qh, 2), m2),
                        ),
                        _mm256_or_si256(
                            _mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4),
                            _mm256_and_si256(qh, m2),
                        ),
                        _mm256_or_si256(
                            _mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                            _mm256_and_si256(_mm256_srli_epi16(qh, 2), m2),
                        ),
                    ];
                    for (k, v) in v.into_iter().enumerate() {
                        _mm256_storeu_si256(o.add(4 * h + k), v);
                    }
                }
            }
        }
    }
}

/// Activations of the prefill path: i8 values, a scale per 32 and a scaled sum per `sub`.
struct Acts {
    cols: usize,
    q: Vec<i8>,
    d: Vec<f32>,
    s: Vec<f32>,
}

impl Acts {
    fn new(x: &[f32], m: usize, cols: usize, sub: usize) -> Acts {
        let mut a = Acts {
            cols,
            q: vec![0; m * cols],
            d: vec![0.0; m * cols / 32],
            s: vec![0.0; m * cols / sub],
        };
        let per = 32 / sub;
        a.q.par_chunks_mut(cols)
            .zip(a.d.par_chunks_mut(cols / 32))
            .zip(a.s.par_chunks_mut(cols / sub))
            .zip(x.par_chunks(cols))
            .for_each(|(((q, d), s), x)| {
                for (b, xb) in x.chunks_exact(32).enumerate() {
                    // SAFETY: `xb` has 32 floats and `q` 32 bytes from `32b`.
                    unsafe {
                        let amax = absmax32(xb.as_ptr());
                        let db = amax / 127.0;
                        let id = if db > 0.0 { 1.0 / db } else { 0.0 };
                        d[b] = db;
                        let (s0, s1) = quant32(xb.as_ptr(), id, q.as_mut_ptr().add(32 * b));
                        if per == 2 {
                            s[2 * b] = db * s0 as f32;
                            s[2 * b + 1] = db * s1 as f32;
                        } else {
                            s[b] = db * (s0 + s1) as f32;
                        }
                    }
                }
            });
        a
    }
}

/// A task's repacked panels: bytes `[panel][group of 4][16 rows][4]`, scales `[panel][sub][16]`.
struct Panels {
    q: Vec<u8>,
    d: Vec<f32>,
    c: Vec<f32>,
}

fn repack<D: Decode>(w: &[u8], rb: usize, cols: usize, r0: usize, r1: usize) -> Panels {
    let nsub = cols / D::SUB;
    let np = (r1 - r0).div_ceil(PANEL);
    let mut p = Panels {
        q: vec![0; np * PANEL * cols],
        d: vec![0.0; np * PANEL * nsub],
        c: vec![0.0; np * PANEL * nsub],
    };
    let mut q = vec![0u8; cols];
    let mut d = vec![0f32; nsub];
    let mut c = vec![0f32; nsub];
    for r in r0..r1 {
        D::decode_row(&w[r * rb..(r + 1) * rb], &mut q, &mut d, &mut c);
        let (pi, lane) = ((r - r0) / PANEL, (r - r0) % PANEL);
        let pq = &mut p.q[pi * PANEL * cols..(pi + 1) * PANEL * cols];
        for (g, four) in q.chunks_exact(4).enumerate() {
            pq[(g * PANEL + lane) * 4..(g * PANEL + lane) * 4 + 4].copy_from_slice(four);
        }
        let base = pi * PANEL * nsub;
        for t in 0..nsub {
            p.d[base + t * PANEL + lane] = d[t];
            p.c[base + t * PANEL + lane] = c[t];
        }
    }
    p
}

/// `M` activation rows (from `i`) against one panel; returns `[M][16]` results.
///
/// # Safety
/// `pq` holds `16 * cols` bytes, `pd`/`pc` `16 * cols / SUB` floats, and rows `i..i + M`
/// exist in `a` (all checked by the caller's construction: `run` builds them to size).
#[inline(always)]
unsafe fn panel_tile<D: Decode, const M: usize>(
    pq: &[u8],
    pd: &[f32],
    pc: &[f32],
    a: &Acts,
    i: usize,
) -> [__m512; M] {
    let cols = a.cols;
    let sub = D::SUB;
    let nsub = cols / sub;
    let mut acc = [_mm512_setzero_ps(); M];
    let qp = pq.as_ptr();
    let yp: [*const i8; M] = std::array::from_fn(|n| a.q.as_ptr().add((i + n) * cols));
    let dx: [*const f32; M] = std::array::from_fn(|n| a.d.as_ptr().add((i + n) * cols / 32));
    let sx: [*const f32; M] = std::array::from_fn(|n| a.s.as_ptr().add((i + n) * nsub));
    for t in 0..nsub {
        let dv = _mm512_loadu_ps(pd.as_ptr().add(t * PANEL));
        let cv = _mm512_loadu_ps(pc.as_ptr().add(t * PANEL));
        let mut s0 = [_mm512_setzero_si512(); M];
        let mut s1 = [_mm512_setzero_si512(); M];
        let mut g = 0;
        while g < sub / 4 {
            let k = t * sub + 4 * g;
            let w0 = _mm512_loadu_si512(qp.add(k * PANEL) as *const _);
            let w1 = _mm512_loadu_si512(qp.add((k + 4) * PANEL) as *const _);
            for n in 0..M {
                let y0 = _mm512_set1_epi32((yp[n].add(k) as *const i32).read_unaligned());
                let y1 = _mm512_set1_epi32((yp[n].add(k + 4) as *const i32).read_unaligned());
                s0[n] = _mm512_dpbusd_epi32(s0[n], w0, y0);
                s1[n] = _mm512_dpbusd_epi32(s1[n], w1, y1);
            }
            g += 2;
        }
        for n in 0..M {
            let isum = _mm512_add_epi32(s0[n], s1[n]);
            let scale = _mm512_mul_ps(dv, _mm512_set1_ps(*dx[n].add(t * sub / 32)));
            acc[n] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), scale, acc[n]);
            acc[n] = _mm512_fmadd_ps(cv, _mm512_set1_ps(*sx[n].add(t)), acc[n]);
        }
    }
    acc
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

/// Stores `[M][16]` results (the first `lanes` of each) at row `i..` and column `col`.
///
/// # Safety
/// As [`SharedOut::write`]: the calling task owns columns `col..col + lanes`.
unsafe fn store<const M: usize>(
    acc: [__m512; M],
    out: SharedOut,
    rows: usize,
    i: usize,
    col: usize,
    lanes: usize,
) {
    for (n, v) in acc.iter().enumerate() {
        let mut tmp = [0f32; PANEL];
        _mm512_storeu_ps(tmp.as_mut_ptr(), *v);
        out.write((i + n) * rows + col, &tmp[..lanes]);
    }
}

/// Output columns `r0..r1` for all `m` activation rows.
///
/// # Safety
/// The calling task is the only one writing columns `r0..r1` of `out` (`m × rows`).
#[allow(clippy::too_many_arguments)]
unsafe fn compute_task<D: Decode>(
    w: &[u8],
    rb: usize,
    a: &Acts,
    m: usize,
    rows: usize,
    r0: usize,
    r1: usize,
    out: SharedOut,
) {
    let cols = a.cols;
    let nsub = cols / D::SUB;
    let p = repack::<D>(w, rb, cols, r0, r1);
    let n_out = r1 - r0;
    let np = n_out.div_ceil(PANEL);
    let mut i = 0;
    while i < m {
        let mt = (m - i).min(MT);
        for pi in 0..np {
            let pq = &p.q[pi * PANEL * cols..(pi + 1) * PANEL * cols];
            let pd = &p.d[pi * PANEL * nsub..(pi + 1) * PANEL * nsub];
            let pc = &p.c[pi * PANEL * nsub..(pi + 1) * PANEL * nsub];
            let lanes = (n_out - pi * PANEL).min(PANEL);
            let col = r0 + pi * PANEL;
            // SAFETY: the panel slices have the sizes `panel_tile` reads, rows i..i+mt
            // exist, and this task owns columns `col..col + lanes`.
            match mt {
                4 => store(
                    panel_tile::<D, 4>(pq, pd, pc, a, i),
                    out,
                    rows,
                    i,
                    col,
                    lanes,
                ),
                3 => store(
                    panel_tile::<D, 3>(pq, pd, pc, a, i),
                    out,
                    rows,
                    i,
                    col,
                    lanes,
                ),
                2 => store(
                    panel_tile::<D, 2>(pq, pd, pc, a, i),
                    out,
                    rows,
                    i,
                    col,
                    lanes,
                ),
                _ => store(
                    panel_tile::<D, 1>(pq, pd, pc, a, i),
                    out,
                    rows,
                    i,
                    col,
                    lanes,
                ),
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
pub(crate) fn run<D: Decode>(
    w: &[u8],
    rows: usize,
    cols: usize,
    rb: usize,
    x: &[f32],
    m: usize,
    out: &mut [f32],
) {
    assert!(w.len() == rows * rb && x.len() == m * cols && out.len() == m * rows);
    let a = Acts::new(x, m, cols, D::SUB);
    let threads = rayon::current_num_threads().max(1);
    let chunk = panels_per_task(rows.div_ceil(PANEL), threads) * PANEL;
    let shared = SharedOut {
        ptr: out.as_mut_ptr(),
        len: out.len(),
    };
    (0..rows.div_ceil(chunk)).into_par_iter().for_each(|c| {
        let r0 = c * chunk;
        let r1 = (r0 + chunk).min(rows);
        // SAFETY: task `c` alone handles weight rows (output columns) `r0..r1`, and `out`
        // stays mutably borrowed by this function until every task has finished.
        unsafe { compute_task::<D>(w, rb, &a, m, rows, r0, r1, shared) };
    });
}
