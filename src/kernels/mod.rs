//! Quantized matrix kernels for the CPU: `out = x · Wᵀ` straight from GGUF weight bytes.
//!
//! Weights stay in their GGUF (ggml) block layout: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 (blocks of
//! 32), Q4_K, Q5_K, Q6_K (super-blocks of 256), and F32/F16/BF16 rows. As in llama.cpp, the
//! activations are quantized once per call to 8 bits (Q8 blocks with their sums for the
//! 32-value formats, Q8_K super-blocks for the K-quants) and the dot products run on
//! integers: AVX2 (`maddubs`, or `vpdpbusd` with AVX-512 VNNI or AVX-VNNI) on x86_64, a
//! portable scalar path elsewhere. Float rows are multiplied in f32.
//!
//! The path is chosen at run time, once per call, from [`isa::current`] (the CPU's level,
//! which `UPWARD_ISA` can lower): every SIMD kernel is compiled for every level into its own
//! `#[target_feature]` entry point (`level.rs`), so one binary built for plain x86-64 runs
//! the AVX-512 kernels on a CPU that has them and the AVX2 ones on one that does not.
//!
//! Decode (`m = 1`) and small batches multiply each weight block in place (unpacked into
//! registers once, reused for up to 4 activation rows). Prefill (`m >= 8`) on x86 repacks
//! the weights per call into panels of bytes (16 rows with AVX-512 VNNI, so that one
//! `vpdpbusd` serves 16 rows; 8 with AVX-VNNI or AVX2: see `panel.rs`). [`matmul`] splits
//! work over rayon's global pool by row chunks. The engine's decode step instead quantizes
//! its input once ([`PreparedRow`]) and runs row ranges on its own threads
//! ([`matvec_rows`]). On x86 the row kernels prefetch the weight bytes they will read 2 KB
//! later: decode streams each weight once from main memory.
//!
//! Every path computes each output the same way whatever `m` and the thread count: the
//! same activation quantization, exact integer dots per weight block, then the per-block
//! float scaling accumulated in one fixed order with the same fused multiply-adds. So row `i`
//! of a batch is bit-identical to that row alone, which lets the engine continue from its
//! KV cache and get exactly the logits of a fresh prefill (within one process, which runs one
//! level: the AVX-512, AVX-VNNI, AVX2 and portable paths differ from each other in the last
//! bits).
//!
//! The cargo feature `portable-kernels` makes every x86 CPU take the portable path (to test
//! it).

mod blocks;
pub mod isa;
pub(crate) mod level;
#[cfg(target_arch = "x86_64")]
mod panel;
mod prepared_rows;
mod scalar;
#[cfg(test)]
mod tests;
#[cfg(target_arch = "x86_64")]
mod x86;

use std::cell::RefCell;

use candle_core::quantized::GgmlDType;
use rayon::prelude::*;

use blocks::{Q8Block, Q8KBlock};
use isa::Isa;
use level::Level;
pub use prepared_rows::{matmul_rows, PreparedRows};

/// Errors from the kernels: always a caller's mistake in shapes or types, described fully.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KernelError {
    /// The weight type has no kernel here.
    #[error(
        "quantized kernels: {0:?} weights are not supported (supported: F32, F16, BF16, Q4_0, \
         Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K); re-quantize the model to one of these"
    )]
    Unsupported(GgmlDType),
    /// The row length is not a whole number of blocks.
    #[error(
        "quantized kernels: a {dtype:?} row holds blocks of {block} values, but the row has \
         {cols} columns (not a multiple of {block})"
    )]
    PartialBlock {
        /// Weight type.
        dtype: GgmlDType,
        /// Columns per row.
        cols: usize,
        /// Values per block of that type.
        block: usize,
    },
    /// A buffer has the wrong length for the stated shape.
    #[error("quantized kernels: {what} has {got} elements, but the shape needs {want}")]
    Length {
        /// Which buffer (weights in bytes, inputs and outputs in f32 values).
        what: &'static str,
        /// Its length.
        got: usize,
        /// The length the shape implies.
        want: usize,
    },
    /// [`matvec_rows`] got a row that was not prepared for this weight type.
    #[error("quantized kernels: the input row was not prepared for {0:?} weights")]
    NotPrepared(GgmlDType),
    /// The shape is too large to address.
    #[error("quantized kernels: shape {rows}x{cols} overflows the address space")]
    Overflow {
        /// Rows.
        rows: usize,
        /// Columns.
        cols: usize,
    },
}

/// Whether [`matmul`] and [`dequantize_row`] handle weights of this type.
pub fn supported(dtype: GgmlDType) -> bool {
    use GgmlDType::*;
    matches!(dtype, F32 | F16 | BF16 | Q4_0 | Q4_1 | Q5_0 | Q5_1 | Q8_0 | Q4K | Q5K | Q6K)
}

/// Bytes of one row of `cols` values of type `dtype` in GGUF layout (a partial trailing
/// block, which GGUF never stores, counts as a whole one).
pub fn row_bytes(dtype: GgmlDType, cols: usize) -> usize {
    cols.div_ceil(dtype.block_size()) * dtype.type_size()
}

fn check_cols(dtype: GgmlDType, cols: usize) -> Result<usize, KernelError> {
    if !supported(dtype) {
        return Err(KernelError::Unsupported(dtype));
    }
    let block = dtype.block_size();
    if !cols.is_multiple_of(block) {
        return Err(KernelError::PartialBlock { dtype, cols, block });
    }
    Ok(cols / block * dtype.type_size())
}

fn check_len(
    what: &'static str,
    got: usize,
    want: Option<usize>,
    rows: usize,
    cols: usize,
) -> Result<(), KernelError> {
    let want = want.ok_or(KernelError::Overflow { rows, cols })?;
    if got != want {
        return Err(KernelError::Length { what, got, want });
    }
    Ok(())
}

/// Dequantize one row of `cols` values (`bytes` is exactly [`row_bytes`]`(dtype, cols)`) into
/// `out` (`cols` long), with the same arithmetic as ggml: used for embedding lookups.
pub fn dequantize_row(
    dtype: GgmlDType,
    bytes: &[u8],
    cols: usize,
    out: &mut [f32],
) -> Result<(), KernelError> {
    let rb = check_cols(dtype, cols)?;
    check_len("the weight row (bytes)", bytes.len(), Some(rb), 1, cols)?;
    check_len("the output row", out.len(), Some(cols), 1, cols)?;
    use GgmlDType::*;
    match dtype {
        F32 => blocks::dequant_f32(bytes, out),
        F16 => blocks::dequant_f16(bytes, out),
        BF16 => blocks::dequant_bf16(bytes, out),
        Q4_0 => blocks::dequant_q4_0(bytes, out),
        Q4_1 => blocks::dequant_q4_1(bytes, out),
        Q5_0 => blocks::dequant_q5_0(bytes, out),
        Q5_1 => blocks::dequant_q5_1(bytes, out),
        Q8_0 => blocks::dequant_q8_0(bytes, out),
        Q4K => blocks::dequant_q4_k(bytes, out),
        Q5K => blocks::dequant_q5_k(bytes, out),
        Q6K => blocks::dequant_q6_k(bytes, out),
        other => return Err(KernelError::Unsupported(other)),
    }
    Ok(())
}

/// `out = x · Wᵀ`: `weights` holds `rows` rows of `cols` values of type `dtype` in GGUF
/// layout (a GGUF tensor of dims `[cols, rows]`), `x` is `m × cols` row-major f32 and `out`
/// is `m × rows`. `m = 1` is decode (mat-vec), larger `m` is prefill. Runs on rayon's global
/// pool; every length is checked first.
pub fn matmul(
    dtype: GgmlDType,
    weights: &[u8],
    rows: usize,
    cols: usize,
    x: &[f32],
    m: usize,
    out: &mut [f32],
) -> Result<(), KernelError> {
    matmul_with(dtype, weights, rows, cols, x, m, out, isa::current())
}

/// [`matmul`] at level `isa` (lowered to what the CPU has): tests compare every level.
#[allow(clippy::too_many_arguments)]
fn matmul_with(
    dtype: GgmlDType,
    weights: &[u8],
    rows: usize,
    cols: usize,
    x: &[f32],
    m: usize,
    out: &mut [f32],
    isa: Isa,
) -> Result<(), KernelError> {
    let rb = check_cols(dtype, cols)?;
    check_len("the weights (bytes)", weights.len(), rb.checked_mul(rows), rows, cols)?;
    check_len("the input x", x.len(), m.checked_mul(cols), m, cols)?;
    check_len("the output", out.len(), m.checked_mul(rows), m, rows)?;
    if rows == 0 || m == 0 {
        return Ok(());
    }
    if cols == 0 {
        out.fill(0.0);
        return Ok(());
    }
    let isa = isa::at_most(isa);
    #[cfg(target_arch = "x86_64")]
    if m >= PANEL_MIN_M && panel_matmul_on(isa, dtype, weights, rows, cols, x, m, out) {
        return Ok(());
    }
    macro_rules! go {
        ($k:ty) => {
            run::<$k>(isa, weights, rows, cols, x, m, out)
        };
    }
    use GgmlDType::*;
    match dtype {
        F32 => go!(KFloat<scalar::RowF32>),
        F16 => go!(KFloat<scalar::RowF16>),
        BF16 => go!(KFloat<scalar::RowBf16>),
        Q4_0 => go!(K32<blocks::Q4_0>),
        Q4_1 => go!(K32<blocks::Q4_1>),
        Q5_0 => go!(K32<blocks::Q5_0>),
        Q5_1 => go!(K32<blocks::Q5_1>),
        Q8_0 => go!(K32<blocks::Q8_0>),
        Q4K => go!(KQ4K),
        Q5K => go!(KQ5K),
        Q6K => go!(KQ6K),
        other => return Err(KernelError::Unsupported(other)),
    }
    Ok(())
}

/// [`matmul`] through repacked panels of the width of level `isa` (at most the CPU's): 16
/// rows with AVX-512 VNNI, else 8 (AVX-VNNI or AVX2); `false` (nothing written) on the
/// portable level or when the weight type has no panel kernel at that width.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
fn panel_matmul_on(
    isa: Isa,
    dtype: GgmlDType,
    weights: &[u8],
    rows: usize,
    cols: usize,
    x: &[f32],
    m: usize,
    out: &mut [f32],
) -> bool {
    match isa::at_most(isa) {
        Isa::Avx512Vnni => panel_matmul::<panel::V512>(dtype, weights, rows, cols, x, m, out),
        Isa::AvxVnni => panel_matmul::<panel::V256Vnni>(dtype, weights, rows, cols, x, m, out),
        Isa::Avx2 => panel_matmul::<panel::V256>(dtype, weights, rows, cols, x, m, out),
        Isa::Portable => false,
    }
}

/// [`matmul`] through repacked panels of width `W` (lengths already checked); `false` when
/// this weight type has no panel kernel at this width, and nothing was written.
#[cfg(target_arch = "x86_64")]
fn panel_matmul<W: panel::Wide>(
    dtype: GgmlDType,
    weights: &[u8],
    rows: usize,
    cols: usize,
    x: &[f32],
    m: usize,
    out: &mut [f32],
) -> bool {
    use panel::{D32, DQ4K, DQ5K, DQ6K};
    let rb = row_bytes(dtype, cols);
    macro_rules! go {
        ($d:ty) => {
            panel::run::<$d, W>(weights, rows, cols, rb, x, m, out)
        };
    }
    match dtype {
        GgmlDType::Q4_0 => go!(D32<blocks::Q4_0>),
        GgmlDType::Q4_1 => go!(D32<blocks::Q4_1>),
        GgmlDType::Q5_0 => go!(D32<blocks::Q5_0>),
        GgmlDType::Q5_1 => go!(D32<blocks::Q5_1>),
        GgmlDType::Q8_0 if W::FULL_BYTES => go!(D32<blocks::Q8_0>),
        GgmlDType::Q4K => go!(DQ4K),
        GgmlDType::Q5K => go!(DQ5K),
        GgmlDType::Q6K => go!(DQ6K),
        _ => return false,
    }
    true
}

// ---------------------------------------------------------------------------------------
// Kernels: a weight format, its activation format and the row × N-rows dot product.
// ---------------------------------------------------------------------------------------

/// Activation element types, each with a reusable per-thread buffer.
trait Act: Copy + Default + Send + Sync + 'static {
    /// Run `f` on a buffer of `len` elements: the thread's reusable one when it is free
    /// (the decode path allocates nothing), a fresh one when it is in use by a caller
    /// further up this thread's stack (rayon may run one matmul inside another's wait).
    fn with_buf<R>(len: usize, f: impl FnOnce(&mut [Self]) -> R) -> R;
    /// This format's copy of a prepared row (empty when it was not prepared).
    fn prepared(row: &PreparedRow) -> &[Self];
}

macro_rules! act_buffer {
    ($t:ty, $name:ident, $field:ident) => {
        thread_local! {
            static $name: RefCell<Vec<$t>> = const { RefCell::new(Vec::new()) };
        }
        impl Act for $t {
            fn prepared(row: &PreparedRow) -> &[Self] {
                &row.$field
            }
            fn with_buf<R>(len: usize, f: impl FnOnce(&mut [Self]) -> R) -> R {
                $name.with(|cell| match cell.try_borrow_mut() {
                    Ok(mut buf) => {
                        if buf.len() < len {
                            buf.resize(len, <$t>::default());
                        }
                        f(&mut buf[..len])
                    }
                    Err(_) => f(&mut vec![<$t>::default(); len]),
                })
            }
        }
    };
}

act_buffer!(Q8Block, Q8_BUF, q8);
act_buffer!(Q8KBlock, Q8K_BUF, q8k);
act_buffer!(f32, F32_BUF, f32s);

/// One activation row quantized once, in every format its mat-vecs need, so that several
/// weight matrices (or several threads' row ranges of one) share the work: see
/// [`matvec_rows`]. The buffers are reused from one [`prepare`](PreparedRow::prepare) to
/// the next.
#[derive(Default)]
pub struct PreparedRow {
    cols: usize,
    q8: Vec<Q8Block>,
    q8k: Vec<Q8KBlock>,
    f32s: Vec<f32>,
}

impl PreparedRow {
    /// Quantizes `x` for weights of each of `dtypes` (the formats they share are computed
    /// once), exactly as [`matmul`] quantizes a single row.
    pub fn prepare(&mut self, x: &[f32], dtypes: &[GgmlDType]) -> Result<(), KernelError> {
        self.prepare_on(isa::current(), x, dtypes)
    }

    /// [`prepare`](PreparedRow::prepare) at level `isa`.
    fn prepare_on(&mut self, isa: Isa, x: &[f32], dtypes: &[GgmlDType]) -> Result<(), KernelError> {
        self.prepare_rows_on(isa, x, x.len(), dtypes)
    }

    /// Quantizes the rows of `x` (row-major, `cols` values each) back to back, each
    /// exactly as [`prepare`](PreparedRow::prepare) quantizes it alone: every format works
    /// block by block, and a row is a whole number of blocks.
    fn prepare_rows_on(
        &mut self,
        isa: Isa,
        x: &[f32],
        cols: usize,
        dtypes: &[GgmlDType],
    ) -> Result<(), KernelError> {
        self.cols = cols;
        self.q8.clear();
        self.q8k.clear();
        self.f32s.clear();
        for &dtype in dtypes {
            check_cols(dtype, cols)?;
            use GgmlDType::*;
            match dtype {
                F32 | F16 | BF16 if self.f32s.is_empty() => self.f32s.extend_from_slice(x),
                Q4_0 | Q4_1 | Q5_0 | Q5_1 | Q8_0 if self.q8.is_empty() => {
                    self.q8.resize(x.len() / 32, Q8Block::default());
                    blocks::quantize_q8_on(isa, x, &mut self.q8);
                }
                Q4K | Q5K | Q6K if self.q8k.is_empty() => {
                    self.q8k.resize(x.len() / 256, Q8KBlock::default());
                    blocks::quantize_q8k_on(isa, x, &mut self.q8k);
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Rows `first..first + out.len()` of `x · Wᵀ` for one prepared row `x`, on the calling
/// thread: `weights` is the whole `rows × x.cols` matrix in GGUF layout. Bit-identical to
/// the same rows of [`matmul`] with `m = 1`, so callers may split a matrix any way.
pub fn matvec_rows(
    dtype: GgmlDType,
    weights: &[u8],
    x: &PreparedRow,
    first: usize,
    out: &mut [f32],
) -> Result<(), KernelError> {
    matvec_rows_on(isa::current(), dtype, weights, x, first, out)
}

/// [`matvec_rows`] at level `isa` (`x` prepared at the same level).
fn matvec_rows_on(
    isa: Isa,
    dtype: GgmlDType,
    weights: &[u8],
    x: &PreparedRow,
    first: usize,
    out: &mut [f32],
) -> Result<(), KernelError> {
    let n = out.len();
    prepared_rows_on(isa, dtype, weights, x, 1, first, n, Strided { out, stride: 0, base: first })
}

/// Rows `first..first + n` of `X · Wᵀ` for the `m` rows prepared one after another in `x`
/// (each `x.cols` long), at level `isa`, on the calling thread: row `i`'s result for weight
/// row `r` goes to `put.put(i, r, _)`. Checks the weights' length and the preparation; the
/// single-row and multi-row entry points ([`matvec_rows`], [`matmul_rows`]) share it.
#[allow(clippy::too_many_arguments)]
fn prepared_rows_on(
    isa: Isa,
    dtype: GgmlDType,
    weights: &[u8],
    x: &PreparedRow,
    m: usize,
    first: usize,
    n: usize,
    mut put: impl Store,
) -> Result<(), KernelError> {
    let cols = x.cols;
    let rb = check_cols(dtype, cols)?;
    let end = first.checked_add(n).ok_or(KernelError::Overflow { rows: first, cols })?;
    let want = rb.checked_mul(end).ok_or(KernelError::Overflow { rows: end, cols })?;
    if weights.len() < want {
        return Err(KernelError::Length { what: "the weights (bytes)", got: weights.len(), want });
    }
    use GgmlDType::*;
    let prepared = match dtype {
        F32 | F16 | BF16 => x.f32s.len() == m * cols,
        Q4K | Q5K | Q6K => x.q8k.len() * 256 == m * cols,
        _ => x.q8.len() * 32 == m * cols,
    };
    if !prepared {
        return Err(KernelError::NotPrepared(dtype));
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    if cols == 0 {
        for (i, r) in (0..m).flat_map(|i| (first..first + n).map(move |r| (i, r))) {
            put.put(i, r, 0.0);
        }
        return Ok(());
    }
    #[allow(clippy::too_many_arguments)]
    fn go<K: Kernel>(
        isa: Isa,
        w: &[u8],
        rb: usize,
        x: &PreparedRow,
        m: usize,
        r0: usize,
        r1: usize,
        put: impl Store,
    ) {
        let xq = <K::A as Act>::prepared(x);
        let na = x.cols / K::ACT;
        debug_assert_eq!(xq.len(), na * m, "the rows were not prepared for this weight type");
        compute_rows_on::<K>(isa, w, rb, xq, na, m, r0, r1, put);
    }
    let (w, r1) = (weights, first + n);
    match dtype {
        F32 => go::<KFloat<scalar::RowF32>>(isa, w, rb, x, m, first, r1, put),
        F16 => go::<KFloat<scalar::RowF16>>(isa, w, rb, x, m, first, r1, put),
        BF16 => go::<KFloat<scalar::RowBf16>>(isa, w, rb, x, m, first, r1, put),
        Q4_0 => go::<K32<blocks::Q4_0>>(isa, w, rb, x, m, first, r1, put),
        Q4_1 => go::<K32<blocks::Q4_1>>(isa, w, rb, x, m, first, r1, put),
        Q5_0 => go::<K32<blocks::Q5_0>>(isa, w, rb, x, m, first, r1, put),
        Q5_1 => go::<K32<blocks::Q5_1>>(isa, w, rb, x, m, first, r1, put),
        Q8_0 => go::<K32<blocks::Q8_0>>(isa, w, rb, x, m, first, r1, put),
        Q4K => go::<KQ4K>(isa, w, rb, x, m, first, r1, put),
        Q5K => go::<KQ5K>(isa, w, rb, x, m, first, r1, put),
        Q6K => go::<KQ6K>(isa, w, rb, x, m, first, r1, put),
        other => return Err(KernelError::Unsupported(other)),
    }
    Ok(())
}

/// A weight format, its activation format and the row × N-rows dot product, at every
/// [`Level`]. The `unsafe` methods run only inside the entry point of their level
/// (`level::run`), with lengths the driver guarantees.
trait Kernel {
    type A: Act;
    /// Values per weight block.
    const BLOCK: usize;
    /// Bytes per weight block.
    const BYTES: usize;
    /// Values per activation element.
    const ACT: usize;
    /// Quantizes activations (whole rows, back to back) with level `L`'s instructions.
    unsafe fn quantize<L: Level>(x: &[f32], out: &mut [Self::A]);
    /// Dot products of one weight row with `N` activation rows (each exactly as long as
    /// the row: the driver guarantees it).
    unsafe fn tile<L: Level, const N: usize>(w: &[u8], xs: [&[Self::A]; N]) -> [f32; N];
    /// Dot products of 4 weight rows with one activation row (decode): bit for bit
    /// `tile::<L, 1>` of each row, computed together where that is faster.
    #[inline(always)]
    unsafe fn rows4<L: Level>(w: [&[u8]; 4], x: &[Self::A]) -> [f32; 4] {
        [
            Self::tile::<L, 1>(w[0], [x])[0],
            Self::tile::<L, 1>(w[1], [x])[0],
            Self::tile::<L, 1>(w[2], [x])[0],
            Self::tile::<L, 1>(w[3], [x])[0],
        ]
    }
}

#[cfg(target_arch = "x86_64")]
use x86::{Simd32 as Fmt32Fast, SimdFloat as FloatFast};

#[cfg(not(target_arch = "x86_64"))]
use {blocks::Fmt32 as Fmt32Fast, scalar::FloatRow as FloatFast};

/// 32-value formats against Q8 blocks.
struct K32<F>(std::marker::PhantomData<F>);

impl<F: Fmt32Fast> Kernel for K32<F> {
    type A = Q8Block;
    const BLOCK: usize = 32;
    const BYTES: usize = F::BYTES;
    const ACT: usize = 32;
    #[inline(always)]
    unsafe fn quantize<L: Level>(x: &[f32], out: &mut [Q8Block]) {
        blocks::quantize_q8_at::<L>(x, out)
    }
    #[inline(always)]
    unsafe fn tile<L: Level, const N: usize>(w: &[u8], xs: [&[Q8Block]; N]) -> [f32; N] {
        // `tile32` reads whole rows: `w.len() == nb * F::BYTES` and every `xs[n]` has `nb`
        // blocks.
        #[cfg(target_arch = "x86_64")]
        if L::SIMD {
            return x86::tile32::<F, L, N>(w, xs);
        }
        scalar::tile32::<F, N>(w, xs)
    }
    #[inline(always)]
    unsafe fn rows4<L: Level>(w: [&[u8]; 4], x: &[Q8Block]) -> [f32; 4] {
        // As for `tile`: every `w[r]` is a whole row of `x.len()` blocks.
        #[cfg(target_arch = "x86_64")]
        if L::SIMD {
            return x86::rows4_32::<F, L>(w, x);
        }
        std::array::from_fn(|r| scalar::tile32::<F, 1>(w[r], [x])[0])
    }
}

macro_rules! k_quant {
    ($name:ident, $bytes:expr, $f:ident) => {
        struct $name;
        impl Kernel for $name {
            type A = Q8KBlock;
            const BLOCK: usize = 256;
            const BYTES: usize = $bytes;
            const ACT: usize = 256;
            #[inline(always)]
            unsafe fn quantize<L: Level>(x: &[f32], out: &mut [Q8KBlock]) {
                blocks::quantize_q8k_at::<L>(x, out)
            }
            #[inline(always)]
            unsafe fn tile<L: Level, const N: usize>(w: &[u8], xs: [&[Q8KBlock]; N]) -> [f32; N] {
                // As for `K32::tile`: whole rows of whole super-blocks.
                #[cfg(target_arch = "x86_64")]
                if L::SIMD {
                    return x86::$f::<N>(w, xs);
                }
                scalar::$f::<N>(w, xs)
            }
        }
    };
}

k_quant!(KQ4K, blocks::Q4_K_BYTES, tile_q4k);
k_quant!(KQ5K, blocks::Q5_K_BYTES, tile_q5k);
k_quant!(KQ6K, blocks::Q6_K_BYTES, tile_q6k);

/// Float rows against f32 activations (copied into the reusable buffer).
struct KFloat<R>(std::marker::PhantomData<R>);

impl<R: FloatFast> Kernel for KFloat<R> {
    type A = f32;
    const BLOCK: usize = 1;
    const BYTES: usize = R::BYTES;
    const ACT: usize = 1;
    #[inline(always)]
    unsafe fn quantize<L: Level>(x: &[f32], out: &mut [f32]) {
        out.copy_from_slice(x)
    }
    #[inline(always)]
    unsafe fn tile<L: Level, const N: usize>(w: &[u8], xs: [&[f32]; N]) -> [f32; N] {
        // Every `xs[n]` holds exactly `w.len() / R::BYTES` values.
        #[cfg(target_arch = "x86_64")]
        if L::SIMD {
            return x86::tile_float::<R, N>(w, xs);
        }
        scalar::tile_float::<R, N>(w, xs)
    }
}

// ---------------------------------------------------------------------------------------
// The driver: quantize x once, then row chunks in parallel, 4 activation rows at a time.
// ---------------------------------------------------------------------------------------

/// Below this many weight bytes × activation rows, a call runs on the calling thread alone:
/// splitting it costs more than it saves.
const SERIAL_WORK: usize = 96 * 1024;
/// Row chunks of prefill calls stay under this many weight bytes, to be reused from L2.
const CHUNK_BYTES: usize = 192 * 1024;
/// From this many activation rows up, prefill repacks weights into panels.
#[allow(dead_code)]
const PANEL_MIN_M: usize = 8;
/// Row chunks per pool thread, for load balance.
const CHUNKS_PER_THREAD: usize = 4;

/// Rows `r0..r1` of the output for all `m` activation rows; `put(i, r, v)` stores one value.
/// Runs the kernels of the process's level ([`isa::current`]), chosen once for the call.
/// (The entry for callers outside this file, such as multi-row mat-vecs.)
#[allow(clippy::too_many_arguments, dead_code)]
fn compute_rows<K: Kernel>(
    w: &[u8],
    rb: usize,
    xq: &[K::A],
    na: usize,
    m: usize,
    r0: usize,
    r1: usize,
    put: impl FnMut(usize, usize, f32),
) {
    compute_rows_on::<K>(isa::current(), w, rb, xq, na, m, r0, r1, put)
}

/// Where [`compute_rows_on`] stores output `(i, r)`.
trait Store {
    fn put(&mut self, i: usize, r: usize, v: f32);
}

impl<F: FnMut(usize, usize, f32)> Store for F {
    #[inline(always)]
    fn put(&mut self, i: usize, r: usize, v: f32) {
        self(i, r, v)
    }
}

/// `out[i * stride + r - base]`: every layout this file writes, as one type, so that the
/// kernels are compiled once per level rather than once per call site.
struct Strided<'a> {
    out: &'a mut [f32],
    stride: usize,
    base: usize,
}

impl Store for Strided<'_> {
    #[inline(always)]
    fn put(&mut self, i: usize, r: usize, v: f32) {
        self.out[i * self.stride + r - self.base] = v
    }
}

/// [`compute_rows`] at level `isa`.
#[allow(clippy::too_many_arguments)]
fn compute_rows_on<K: Kernel>(
    isa: Isa,
    w: &[u8],
    rb: usize,
    xq: &[K::A],
    na: usize,
    m: usize,
    r0: usize,
    r1: usize,
    put: impl Store,
) {
    assert!(
        r0 <= r1
            && w.len() >= r1 * rb
            && xq.len() >= m * na
            && na * K::ACT * K::BYTES == rb * K::BLOCK
    );
    struct Job<'a, K: Kernel, P> {
        w: &'a [u8],
        rb: usize,
        xq: &'a [K::A],
        na: usize,
        m: usize,
        r0: usize,
        r1: usize,
        put: P,
    }
    impl<K: Kernel, P: Store> level::Job for Job<'_, K, P> {
        type Out = ();
        #[inline(always)]
        unsafe fn run<L: Level>(self) {
            let Job { w, rb, xq, na, m, r0, r1, put, .. } = self;
            compute_rows_at::<K, L>(w, rb, xq, na, m, r0, r1, put)
        }
    }
    level::run(isa, Job::<K, _> { w, rb, xq, na, m, r0, r1, put })
}

/// [`compute_rows`] with level `L`'s kernels.
///
/// # Safety
/// Runs inside `L`'s entry point; the lengths are as [`compute_rows_on`] asserts.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn compute_rows_at<K: Kernel, L: Level>(
    w: &[u8],
    rb: usize,
    xq: &[K::A],
    na: usize,
    m: usize,
    r0: usize,
    r1: usize,
    mut put: impl Store,
) {
    let xr = |i: usize| &xq[i * na..(i + 1) * na];
    let mut i = 0;
    while i + 4 <= m {
        let xs = [xr(i), xr(i + 1), xr(i + 2), xr(i + 3)];
        for r in r0..r1 {
            let v = K::tile::<L, 4>(&w[r * rb..(r + 1) * rb], xs);
            for (n, v) in v.into_iter().enumerate() {
                put.put(i + n, r, v);
            }
        }
        i += 4;
    }
    let rest = m - i;
    let mut r = r0;
    if rest == 1 {
        while r + 4 <= r1 {
            let wr = |k: usize| &w[(r + k) * rb..(r + k + 1) * rb];
            let v = K::rows4::<L>([wr(0), wr(1), wr(2), wr(3)], xr(i));
            for (k, v) in v.into_iter().enumerate() {
                put.put(i, r + k, v);
            }
            r += 4;
        }
    }
    for r in r..r1 {
        let wr = &w[r * rb..(r + 1) * rb];
        match rest {
            3 => {
                let v = K::tile::<L, 3>(wr, [xr(i), xr(i + 1), xr(i + 2)]);
                for (n, v) in v.into_iter().enumerate() {
                    put.put(i + n, r, v);
                }
            }
            2 => {
                let v = K::tile::<L, 2>(wr, [xr(i), xr(i + 1)]);
                put.put(i, r, v[0]);
                put.put(i + 1, r, v[1]);
            }
            1 => put.put(i, r, K::tile::<L, 1>(wr, [xr(i)])[0]),
            _ => {}
        }
    }
}

/// Quantizes activation rows (back to back) for `K` at level `isa`.
fn quantize_on<K: Kernel>(isa: Isa, x: &[f32], out: &mut [K::A]) {
    assert_eq!(x.len(), out.len() * K::ACT);
    struct Job<'a, K: Kernel>(&'a [f32], &'a mut [K::A]);
    impl<K: Kernel> level::Job for Job<'_, K> {
        type Out = ();
        #[inline(always)]
        unsafe fn run<L: Level>(self) {
            K::quantize::<L>(self.0, self.1)
        }
    }
    level::run(isa, Job::<K>(x, out))
}

/// `out = x · Wᵀ` with `K` at level `isa` (lengths already checked).
fn run<K: Kernel>(
    isa: Isa,
    w: &[u8],
    rows: usize,
    cols: usize,
    x: &[f32],
    m: usize,
    out: &mut [f32],
) {
    let rb = cols / K::BLOCK * K::BYTES;
    let na = cols / K::ACT;
    let threads = rayon::current_num_threads().max(1);
    let work = rows.saturating_mul(rb).saturating_mul(m);
    let serial = threads == 1 || work < SERIAL_WORK;
    <K::A as Act>::with_buf(m * na, |xq| {
        if serial || m < 8 {
            quantize_on::<K>(isa, x, xq);
        } else {
            x.par_chunks(cols)
                .zip(xq.par_chunks_mut(na))
                .for_each(|(xr, qr)| quantize_on::<K>(isa, xr, qr));
        }
        let xq: &[K::A] = xq;
        if serial {
            let out = Strided { out, stride: rows, base: 0 };
            compute_rows_on::<K>(isa, w, rb, xq, na, m, 0, rows, out);
            return;
        }
        let mut chunk = rows.div_ceil(threads * CHUNKS_PER_THREAD);
        if m > 1 {
            chunk = chunk.min((CHUNK_BYTES / rb.max(1)).max(1));
        }
        if m == 1 {
            out.par_chunks_mut(chunk).enumerate().for_each(|(c, o)| {
                let r0 = c * chunk;
                let r1 = r0 + o.len();
                let o = Strided { out: o, stride: 0, base: r0 };
                compute_rows_on::<K>(isa, w, rb, xq, na, 1, r0, r1, o);
            });
        } else {
            let parts: Vec<(usize, Vec<f32>)> = (0..rows.div_ceil(chunk))
                .into_par_iter()
                .map(|c| {
                    let r0 = c * chunk;
                    let r1 = (r0 + chunk).min(rows);
                    let n = r1 - r0;
                    let mut o = vec![0f32; n * m];
                    let put = Strided { out: &mut o, stride: n, base: r0 };
                    compute_rows_on::<K>(isa, w, rb, xq, na, m, r0, r1, put);
                    (r0, o)
                })
                .collect();
            for (r0, o) in parts {
                let n = o.len() / m;
                for (i, part) in o.chunks_exact(n).enumerate() {
                    out[i * rows + r0..i * rows + r0 + n].copy_from_slice(part);
                }
            }
        }
    })
}
