//! GGUF (ggml) block layouts: sizes, scalar dequantization, scalar block unpacking, and
//! the 8-bit activation blocks that the integer dot products consume.
//!
//! Every weight block is read from raw little-endian bytes, exactly as stored in a GGUF
//! file, so no alignment is assumed anywhere.

use half::{bf16, f16};

use super::isa::Isa;
use super::level::{self, Level};

/// Read a little-endian f16 at `b[at..at + 2]` as f32.
#[inline(always)]
pub(crate) fn f16_at(b: &[u8], at: usize) -> f32 {
    f16::from_le_bytes([b[at], b[at + 1]]).to_f32()
}

/// Bytes per block of 32 values.
pub(crate) const Q4_0_BYTES: usize = 18;
pub(crate) const Q4_1_BYTES: usize = 20;
pub(crate) const Q5_0_BYTES: usize = 22;
pub(crate) const Q5_1_BYTES: usize = 24;
pub(crate) const Q8_0_BYTES: usize = 34;
/// Bytes per super-block of 256 values.
pub(crate) const Q4_K_BYTES: usize = 144;
pub(crate) const Q5_K_BYTES: usize = 176;
pub(crate) const Q6_K_BYTES: usize = 210;

/// Activations quantized to 8 bits in blocks of 32 (llama.cpp's Q8_0/Q8_1 in one):
/// `x[i] ≈ d * qs[i]`, and `s = d * Σ qs[i]` for the formats with an offset or a minimum.
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub struct Q8Block {
    pub(crate) d: f32,
    pub(crate) s: f32,
    pub(crate) qs: [i8; 32],
}

impl Default for Q8Block {
    fn default() -> Self {
        Q8Block { d: 0.0, s: 0.0, qs: [0; 32] }
    }
}

/// Activations quantized to 8 bits in super-blocks of 256 (llama.cpp's Q8_K):
/// `x[i] ≈ d * qs[i]`, `bsums[g] = Σ qs[16g..16g + 16]`.
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub struct Q8KBlock {
    pub(crate) d: f32,
    pub(crate) qs: [i8; 256],
    pub(crate) bsums: [i16; 16],
}

impl Default for Q8KBlock {
    fn default() -> Self {
        Q8KBlock { d: 0.0, qs: [0; 256], bsums: [0; 16] }
    }
}

/// Quantize `x` (a multiple of 32 long) into `out` (`x.len() / 32` blocks), at the
/// process's level ([`isa::current`](super::isa::current)).
#[allow(dead_code)]
pub(crate) fn quantize_q8(x: &[f32], out: &mut [Q8Block]) {
    quantize_q8_on(super::isa::current(), x, out)
}

/// [`quantize_q8`] at level `isa`.
pub(crate) fn quantize_q8_on(isa: Isa, x: &[f32], out: &mut [Q8Block]) {
    assert_eq!(x.len(), out.len() * 32);
    struct Job<'a>(&'a [f32], &'a mut [Q8Block]);
    impl level::Job for Job<'_> {
        type Out = ();
        #[inline(always)]
        unsafe fn run<L: Level>(self) {
            quantize_q8_at::<L>(self.0, self.1)
        }
    }
    level::run(isa, Job(x, out))
}

/// [`quantize_q8`] with level `L`'s instructions.
///
/// # Safety
/// Runs inside `L`'s entry point (`level::run`); `x.len() == 32 * out.len()`.
#[inline(always)]
pub(crate) unsafe fn quantize_q8_at<L: Level>(x: &[f32], out: &mut [Q8Block]) {
    #[cfg(target_arch = "x86_64")]
    if L::SIMD {
        for (xb, ob) in x.chunks_exact(32).zip(out.iter_mut()) {
            // SAFETY: `xb` has 32 floats and `ob.qs` 32 bytes.
            let amax = super::x86::absmax32(xb.as_ptr());
            let d = amax / 127.0;
            let id = if d > 0.0 { 1.0 / d } else { 0.0 };
            let (s0, s1) = super::x86::quant32(xb.as_ptr(), id, ob.qs.as_mut_ptr());
            ob.d = d;
            ob.s = d * (s0 + s1) as f32;
        }
        return;
    }
    quantize_q8_portable(x, out);
}

/// [`quantize_q8`] in portable code (the reference for the SIMD one).
pub(crate) fn quantize_q8_portable(x: &[f32], out: &mut [Q8Block]) {
    for (xb, ob) in x.chunks_exact(32).zip(out.iter_mut()) {
        let amax = xb.iter().fold(0f32, |a, &v| a.max(v.abs()));
        let d = amax / 127.0;
        let id = if d > 0.0 { 1.0 / d } else { 0.0 };
        let mut sum = 0i32;
        for (q, &v) in ob.qs.iter_mut().zip(xb) {
            // `as` saturates (and maps NaN to 0), so no value can wrap.
            let r = (v * id).round_ties_even() as i32;
            *q = r as i8;
            sum += r;
        }
        ob.d = d;
        ob.s = d * sum as f32;
    }
}

/// Quantize `x` (a multiple of 256 long) into `out` (`x.len() / 256` super-blocks), at
/// the process's level ([`isa::current`](super::isa::current)).
#[allow(dead_code)]
pub(crate) fn quantize_q8k(x: &[f32], out: &mut [Q8KBlock]) {
    quantize_q8k_on(super::isa::current(), x, out)
}

/// [`quantize_q8k`] at level `isa`.
pub(crate) fn quantize_q8k_on(isa: Isa, x: &[f32], out: &mut [Q8KBlock]) {
    assert_eq!(x.len(), out.len() * 256);
    struct Job<'a>(&'a [f32], &'a mut [Q8KBlock]);
    impl level::Job for Job<'_> {
        type Out = ();
        #[inline(always)]
        unsafe fn run<L: Level>(self) {
            quantize_q8k_at::<L>(self.0, self.1)
        }
    }
    level::run(isa, Job(x, out))
}

/// [`quantize_q8k`] with level `L`'s instructions.
///
/// # Safety
/// Runs inside `L`'s entry point (`level::run`); `x.len() == 256 * out.len()`.
#[inline(always)]
pub(crate) unsafe fn quantize_q8k_at<L: Level>(x: &[f32], out: &mut [Q8KBlock]) {
    #[cfg(target_arch = "x86_64")]
    if L::SIMD {
        for (xb, ob) in x.chunks_exact(256).zip(out.iter_mut()) {
            // SAFETY: `xb` has 256 floats and `ob.qs` 256 bytes: 8 runs of 32.
            let mut amax = 0f32;
            for j in 0..8 {
                amax = amax.max(super::x86::absmax32(xb.as_ptr().add(32 * j)));
            }
            let d = amax / 127.0;
            let id = if d > 0.0 { 1.0 / d } else { 0.0 };
            for j in 0..8 {
                let (s0, s1) = super::x86::quant32(
                    xb.as_ptr().add(32 * j),
                    id,
                    ob.qs.as_mut_ptr().add(32 * j),
                );
                ob.bsums[2 * j] = s0 as i16;
                ob.bsums[2 * j + 1] = s1 as i16;
            }
            ob.d = d;
        }
        return;
    }
    quantize_q8k_portable(x, out);
}

/// [`quantize_q8k`] in portable code (the reference for the SIMD one).
pub(crate) fn quantize_q8k_portable(x: &[f32], out: &mut [Q8KBlock]) {
    for (xb, ob) in x.chunks_exact(256).zip(out.iter_mut()) {
        let amax = xb.iter().fold(0f32, |a, &v| a.max(v.abs()));
        let d = amax / 127.0;
        let id = if d > 0.0 { 1.0 / d } else { 0.0 };
        for (q, &v) in ob.qs.iter_mut().zip(xb) {
            *q = (v * id).round_ties_even() as i32 as i8;
        }
        for (g, bs) in ob.bsums.iter_mut().enumerate() {
            *bs = ob.qs[16 * g..16 * g + 16].iter().map(|&q| q as i16).sum();
        }
        ob.d = d;
    }
}

/// The 6-bit scales and minimums of the 8 sub-blocks of a Q4_K/Q5_K super-block, from its
/// 12 packed bytes, on 32-bit words (the same result as [`scale_min_k4_ref`]).
#[inline(always)]
pub(crate) fn scale_min_k4(s: &[u8]) -> ([u8; 8], [u8; 8]) {
    const LOW6: u32 = 0x3f3f_3f3f;
    const LOW4: u32 = 0x0f0f_0f0f;
    const LOW2: u32 = 0x0303_0303;
    let w = |i: usize| u32::from_le_bytes([s[4 * i], s[4 * i + 1], s[4 * i + 2], s[4 * i + 3]]);
    let (w0, w1, w2) = (w(0), w(1), w(2));
    // Scales 0..4 are the low 6 bits of bytes 0..4, minimums 0..4 those of bytes 4..8; the
    // upper four of each take their low 4 bits from bytes 8..12 and their top 2 bits from
    // the top bits of bytes 0..4 (scales) or 4..8 (minimums).
    let sc_lo = w0 & LOW6;
    let sc_hi = (w2 & LOW4) | (((w0 >> 6) & LOW2) << 4);
    let mn_lo = w1 & LOW6;
    let mn_hi = ((w2 >> 4) & LOW4) | (((w1 >> 6) & LOW2) << 4);
    let mut sc = [0u8; 8];
    let mut mn = [0u8; 8];
    sc[..4].copy_from_slice(&sc_lo.to_le_bytes());
    sc[4..].copy_from_slice(&sc_hi.to_le_bytes());
    mn[..4].copy_from_slice(&mn_lo.to_le_bytes());
    mn[4..].copy_from_slice(&mn_hi.to_le_bytes());
    (sc, mn)
}

/// [`scale_min_k4`] written as the format describes it, byte by byte (the reference).
#[cfg(test)]
pub(crate) fn scale_min_k4_ref(s: &[u8]) -> ([u8; 8], [u8; 8]) {
    let mut sc = [0u8; 8];
    let mut mn = [0u8; 8];
    for j in 0..4 {
        sc[j] = s[j] & 63;
        mn[j] = s[j + 4] & 63;
    }
    for j in 4..8 {
        sc[j] = (s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4);
        mn[j] = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
    (sc, mn)
}

/// One 32-value weight format, decoded as `w[i] = d * q[i] + c`, with `q` in i8.
pub(crate) trait Fmt32 {
    /// Bytes per block.
    const BYTES: usize;
    /// Whether `q` is signed (Q8_0) or unsigned 0..=31 (the 4- and 5-bit formats).
    const SIGNED: bool;
    /// Decode one block: the integer values, the scale `d` and the offset `c`.
    fn unpack(b: &[u8]) -> ([i8; 32], f32, f32);
}

pub(crate) struct Q4_0;
pub(crate) struct Q4_1;
pub(crate) struct Q5_0;
pub(crate) struct Q5_1;
pub(crate) struct Q8_0;

#[inline(always)]
fn nibbles(qs: &[u8], q: &mut [i8; 32]) {
    for j in 0..16 {
        q[j] = (qs[j] & 0x0F) as i8;
        q[j + 16] = (qs[j] >> 4) as i8;
    }
}

#[inline(always)]
fn high_bits(qh: u32, q: &mut [i8; 32]) {
    for (j, v) in q.iter_mut().enumerate() {
        *v |= (((qh >> j) & 1) << 4) as i8;
    }
}

#[inline(always)]
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl Fmt32 for Q4_0 {
    const BYTES: usize = Q4_0_BYTES;
    const SIGNED: bool = false;
    fn unpack(b: &[u8]) -> ([i8; 32], f32, f32) {
        let d = f16_at(b, 0);
        let mut q = [0i8; 32];
        nibbles(&b[2..18], &mut q);
        (q, d, -8.0 * d)
    }
}

impl Fmt32 for Q4_1 {
    const BYTES: usize = Q4_1_BYTES;
    const SIGNED: bool = false;
    fn unpack(b: &[u8]) -> ([i8; 32], f32, f32) {
        let mut q = [0i8; 32];
        nibbles(&b[4..20], &mut q);
        (q, f16_at(b, 0), f16_at(b, 2))
    }
}

impl Fmt32 for Q5_0 {
    const BYTES: usize = Q5_0_BYTES;
    const SIGNED: bool = false;
    fn unpack(b: &[u8]) -> ([i8; 32], f32, f32) {
        let d = f16_at(b, 0);
        let mut q = [0i8; 32];
        nibbles(&b[6..22], &mut q);
        high_bits(u32_at(b, 2), &mut q);
        (q, d, -16.0 * d)
    }
}

impl Fmt32 for Q5_1 {
    const BYTES: usize = Q5_1_BYTES;
    const SIGNED: bool = false;
    fn unpack(b: &[u8]) -> ([i8; 32], f32, f32) {
        let mut q = [0i8; 32];
        nibbles(&b[8..24], &mut q);
        high_bits(u32_at(b, 4), &mut q);
        (q, f16_at(b, 0), f16_at(b, 2))
    }
}

impl Fmt32 for Q8_0 {
    const BYTES: usize = Q8_0_BYTES;
    const SIGNED: bool = true;
    fn unpack(b: &[u8]) -> ([i8; 32], f32, f32) {
        let mut q = [0i8; 32];
        for (v, &x) in q.iter_mut().zip(&b[2..34]) {
            *v = x as i8;
        }
        (q, f16_at(b, 0), 0.0)
    }
}

// ---------------------------------------------------------------------------------------
// Dequantization, bit-for-bit the arithmetic of ggml (and candle): used for embeddings.
// ---------------------------------------------------------------------------------------

pub(crate) fn dequant_q4_0(b: &[u8], y: &mut [f32]) {
    for (blk, y) in b.chunks_exact(Q4_0_BYTES).zip(y.chunks_exact_mut(32)) {
        let d = f16_at(blk, 0);
        for j in 0..16 {
            let x0 = (blk[2 + j] & 0x0F) as i16 - 8;
            let x1 = (blk[2 + j] >> 4) as i16 - 8;
            y[j] = x0 as f32 * d;
            y[j + 16] = x1 as f32 * d;
        }
    }
}

pub(crate) fn dequant_q4_1(b: &[u8], y: &mut [f32]) {
    for (blk, y) in b.chunks_exact(Q4_1_BYTES).zip(y.chunks_exact_mut(32)) {
        let d = f16_at(blk, 0);
        let m = f16_at(blk, 2);
        for j in 0..16 {
            y[j] = (blk[4 + j] & 0x0F) as f32 * d + m;
            y[j + 16] = (blk[4 + j] >> 4) as f32 * d + m;
        }
    }
}

pub(crate) fn dequant_q5_0(b: &[u8], y: &mut [f32]) {
    for (blk, y) in b.chunks_exact(Q5_0_BYTES).zip(y.chunks_exact_mut(32)) {
        let d = f16_at(blk, 0);
        let qh = u32_at(blk, 2);
        for j in 0..16 {
            let xh0 = (((qh >> j) << 4) & 0x10) as u8;
            let xh1 = ((qh >> (j + 12)) & 0x10) as u8;
            let x0 = ((blk[6 + j] & 0x0F) | xh0) as i32 - 16;
            let x1 = ((blk[6 + j] >> 4) | xh1) as i32 - 16;
            y[j] = x0 as f32 * d;
            y[j + 16] = x1 as f32 * d;
        }
    }
}

pub(crate) fn dequant_q5_1(b: &[u8], y: &mut [f32]) {
    for (blk, y) in b.chunks_exact(Q5_1_BYTES).zip(y.chunks_exact_mut(32)) {
        let d = f16_at(blk, 0);
        let m = f16_at(blk, 2);
        let qh = u32_at(blk, 4);
        for j in 0..16 {
            let xh0 = (((qh >> j) << 4) & 0x10) as u8;
            let xh1 = ((qh >> (j + 12)) & 0x10) as u8;
            let x0 = (blk[8 + j] & 0x0F) | xh0;
            let x1 = (blk[8 + j] >> 4) | xh1;
            y[j] = x0 as f32 * d + m;
            y[j + 16] = x1 as f32 * d + m;
        }
    }
}

pub(crate) fn dequant_q8_0(b: &[u8], y: &mut [f32]) {
    for (blk, y) in b.chunks_exact(Q8_0_BYTES).zip(y.chunks_exact_mut(32)) {
        let d = f16_at(blk, 0);
        for (v, &q) in y.iter_mut().zip(&blk[2..34]) {
            *v = q as i8 as f32 * d;
        }
    }
}

pub(crate) fn dequant_q4_k(b: &[u8], y: &mut [f32]) {
    for (blk, y) in b.chunks_exact(Q4_K_BYTES).zip(y.chunks_exact_mut(256)) {
        let d = f16_at(blk, 0);
        let min = f16_at(blk, 2);
        let (sc, mn) = scale_min_k4(&blk[4..16]);
        let qs = &blk[16..144];
        for j in 0..4 {
            let d1 = d * sc[2 * j] as f32;
            let m1 = min * mn[2 * j] as f32;
            let d2 = d * sc[2 * j + 1] as f32;
            let m2 = min * mn[2 * j + 1] as f32;
            let q = &qs[32 * j..32 * j + 32];
            let y = &mut y[64 * j..64 * j + 64];
            for l in 0..32 {
                y[l] = d1 * (q[l] & 0x0F) as f32 - m1;
                y[l + 32] = d2 * (q[l] >> 4) as f32 - m2;
            }
        }
    }
}

pub(crate) fn dequant_q5_k(b: &[u8], y: &mut [f32]) {
    for (blk, y) in b.chunks_exact(Q5_K_BYTES).zip(y.chunks_exact_mut(256)) {
        let d = f16_at(blk, 0);
        let min = f16_at(blk, 2);
        let (sc, mn) = scale_min_k4(&blk[4..16]);
        let qh = &blk[16..48];
        let qs = &blk[48..176];
        for j in 0..4 {
            let d1 = d * sc[2 * j] as f32;
            let m1 = min * mn[2 * j] as f32;
            let d2 = d * sc[2 * j + 1] as f32;
            let m2 = min * mn[2 * j + 1] as f32;
            let (u1, u2) = (1u8 << (2 * j), 2u8 << (2 * j));
            let q = &qs[32 * j..32 * j + 32];
            let y = &mut y[64 * j..64 * j + 64];
            for l in 0..32 {
                let h1 = if qh[l] & u1 != 0 { 16 } else { 0 };
                let h2 = if qh[l] & u2 != 0 { 16 } else { 0 };
                y[l] = d1 * ((q[l] & 0x0F) + h1) as f32 - m1;
                y[l + 32] = d2 * ((q[l] >> 4) + h2) as f32 - m2;
            }
        }
    }
}

/// The 256 6-bit values (0..=63, before the -32 offset) of a Q6_K super-block.
#[inline(always)]
pub(crate) fn q6k_values(blk: &[u8]) -> [u8; 256] {
    let mut q = [0u8; 256];
    for n in 0..2 {
        let ql = &blk[64 * n..64 * n + 64];
        let qh = &blk[128 + 32 * n..128 + 32 * n + 32];
        let q = &mut q[128 * n..128 * n + 128];
        for l in 0..32 {
            q[l] = (ql[l] & 0x0F) | ((qh[l] & 3) << 4);
            q[l + 32] = (ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4);
            q[l + 64] = (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4);
            q[l + 96] = (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4);
        }
    }
    q
}

pub(crate) fn dequant_q6_k(b: &[u8], y: &mut [f32]) {
    for (blk, y) in b.chunks_exact(Q6_K_BYTES).zip(y.chunks_exact_mut(256)) {
        let d = f16_at(blk, 208);
        let q = q6k_values(blk);
        for (i, (v, &q)) in y.iter_mut().zip(q.iter()).enumerate() {
            let sc = blk[192 + i / 16] as i8;
            *v = d * sc as f32 * (q as i32 - 32) as f32;
        }
    }
}

pub(crate) fn dequant_f32(b: &[u8], y: &mut [f32]) {
    for (v, c) in y.iter_mut().zip(b.chunks_exact(4)) {
        *v = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
    }
}

pub(crate) fn dequant_f16(b: &[u8], y: &mut [f32]) {
    for (v, c) in y.iter_mut().zip(b.chunks_exact(2)) {
        *v = f16::from_le_bytes([c[0], c[1]]).to_f32();
    }
}

pub(crate) fn dequant_bf16(b: &[u8], y: &mut [f32]) {
    for (v, c) in y.iter_mut().zip(b.chunks_exact(2)) {
        *v = bf16::from_le_bytes([c[0], c[1]]).to_f32();
    }
}
