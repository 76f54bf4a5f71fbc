//! Portable dot products: one weight row against `N` quantized activation rows.
//!
//! These are the reference the SIMD paths are tested against, and the path every
//! target without a SIMD kernel takes (plain loops over small fixed arrays, which
//! auto-vectorize reasonably on NEON as well).

use super::blocks::{f16_at, q6k_values, scale_min_k4, Fmt32, Q8Block, Q8KBlock};
use super::blocks::{Q4_K_BYTES, Q5_K_BYTES, Q6_K_BYTES};

#[inline(always)]
fn idot32(a: &[i8; 32], b: &[i8; 32]) -> i32 {
    a.iter().zip(b).map(|(&x, &y)| x as i32 * y as i32).sum()
}

/// `Σ_k w[k] x_n[k]` for a 32-value block format.
pub(crate) fn tile32<F: Fmt32, const N: usize>(w: &[u8], xs: [&[Q8Block]; N]) -> [f32; N] {
    let mut out = [0f32; N];
    for (b, wb) in w.chunks_exact(F::BYTES).enumerate() {
        let (q, d, c) = F::unpack(wb);
        for n in 0..N {
            let xb = &xs[n][b];
            out[n] += d * xb.d * idot32(&q, &xb.qs) as f32;
            if !F::SIGNED {
                out[n] += c * xb.s;
            }
        }
    }
    out
}

#[inline(always)]
fn idot_u8(q: &[u8], y: &[i8]) -> i32 {
    q.iter().zip(y).map(|(&a, &b)| a as i32 * b as i32).sum()
}

/// Q4_K row against Q8_K activations.
pub(crate) fn tile_q4k<const N: usize>(w: &[u8], xs: [&[Q8KBlock]; N]) -> [f32; N] {
    let mut out = [0f32; N];
    for (b, wb) in w.chunks_exact(Q4_K_BYTES).enumerate() {
        let d = f16_at(wb, 0);
        let dmin = f16_at(wb, 2);
        let (sc, mn) = scale_min_k4(&wb[4..16]);
        let mut q = [0u8; 256];
        for j in 0..4 {
            for l in 0..32 {
                let v = wb[16 + 32 * j + l];
                q[64 * j + l] = v & 0x0F;
                q[64 * j + 32 + l] = v >> 4;
            }
        }
        for n in 0..N {
            let xb = &xs[n][b];
            let mut isum = 0i32;
            let mut msum = 0i32;
            for s in 0..8 {
                let r = 32 * s..32 * s + 32;
                isum += sc[s] as i32 * idot_u8(&q[r.clone()], &xb.qs[r]);
                msum += mn[s] as i32 * (xb.bsums[2 * s] as i32 + xb.bsums[2 * s + 1] as i32);
            }
            out[n] += xb.d * (d * isum as f32 - dmin * msum as f32);
        }
    }
    out
}

/// Q5_K row against Q8_K activations.
pub(crate) fn tile_q5k<const N: usize>(w: &[u8], xs: [&[Q8KBlock]; N]) -> [f32; N] {
    let mut out = [0f32; N];
    for (b, wb) in w.chunks_exact(Q5_K_BYTES).enumerate() {
        let d = f16_at(wb, 0);
        let dmin = f16_at(wb, 2);
        let (sc, mn) = scale_min_k4(&wb[4..16]);
        let qh = &wb[16..48];
        let mut q = [0u8; 256];
        for j in 0..4 {
            for l in 0..32 {
                let v = wb[48 + 32 * j + l];
                let h = qh[l] >> (2 * j);
                q[64 * j + l] = (v & 0x0F) | ((h & 1) << 4);
                q[64 * j + 32 + l] = (v >> 4) | (((h >> 1) & 1) << 4);
            }
        }
        for n in 0..N {
            let xb = &xs[n][b];
            let mut isum = 0i32;
            let mut msum = 0i32;
            for s in 0..8 {
                let r = 32 * s..32 * s + 32;
                isum += sc[s] as i32 * idot_u8(&q[r.clone()], &xb.qs[r]);
                msum += mn[s] as i32 * (xb.bsums[2 * s] as i32 + xb.bsums[2 * s + 1] as i32);
            }
            out[n] += xb.d * (d * isum as f32 - dmin * msum as f32);
        }
    }
    out
}

/// Q6_K row against Q8_K activations.
pub(crate) fn tile_q6k<const N: usize>(w: &[u8], xs: [&[Q8KBlock]; N]) -> [f32; N] {
    let mut out = [0f32; N];
    for (b, wb) in w.chunks_exact(Q6_K_BYTES).enumerate() {
        let d = f16_at(wb, 208);
        let q = q6k_values(wb);
        for n in 0..N {
            let xb = &xs[n][b];
            let mut isum = 0i32;
            for g in 0..16 {
                let r = 16 * g..16 * g + 16;
                let sc = wb[192 + g] as i8 as i32;
                isum += sc * (idot_u8(&q[r.clone()], &xb.qs[r]) - 32 * xb.bsums[g] as i32);
            }
            out[n] += d * xb.d * isum as f32;
        }
    }
    out
}

/// A row of floats stored as F32, F16 or BF16.
pub(crate) trait FloatRow {
    /// Bytes per value.
    const BYTES: usize;
    /// Value `k` of the row.
    fn get(w: &[u8], k: usize) -> f32;
}

pub(crate) struct RowF32;
pub(crate) struct RowF16;
pub(crate) struct RowBf16;

impl FloatRow for RowF32 {
    const BYTES: usize = 4;
    #[inline(always)]
    fn get(w: &[u8], k: usize) -> f32 {
        f32::from_le_bytes([w[4 * k], w[4 * k + 1], w[4 * k + 2], w[4 * k + 3]])
    }
}

impl FloatRow for RowF16 {
    const BYTES: usize = 2;
    #[inline(always)]
    fn get(w: &[u8], k: usize) -> f32 {
        f16_at(w, 2 * k)
    }
}

impl FloatRow for RowBf16 {
    const BYTES: usize = 2;
    #[inline(always)]
    fn get(w: &[u8], k: usize) -> f32 {
        half::bf16::from_le_bytes([w[2 * k], w[2 * k + 1]]).to_f32()
    }
}

/// A float row against `N` f32 activation rows.
pub(crate) fn tile_float<R: FloatRow, const N: usize>(w: &[u8], xs: [&[f32]; N]) -> [f32; N] {
    let mut out = [0f32; N];
    let cols = w.len() / R::BYTES;
    for (n, x) in xs.iter().enumerate() {
        out[n] = x[..cols].iter().enumerate().map(|(k, &xk)| R::get(w, k) * xk).sum();
    }
    out
}
