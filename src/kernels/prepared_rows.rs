//! Several activation rows at once for the batched decode step: [`PreparedRows`] quantizes
//! `m` rows once, and [`matmul_rows`] computes a row range of `X · Wᵀ` for all of them,
//! reusing each weight row (unpacked into registers once) for up to 4 activation rows. So
//! `m` sequences decoding together stream every weight once per step instead of `m` times.
//!
//! Row `i`'s results are bit-identical to [`matvec_rows`](super::matvec_rows) on row `i`
//! alone: the same activation quantization, and the kernels' tiles give each row the bits
//! it gets alone (see the module documentation of [`crate::kernels`]).

use candle_core::quantized::GgmlDType;

use super::{isa, prepared_rows_on, KernelError, PreparedRow, Store};

/// `m` activation rows quantized once, in every format their mat-muls need (the buffers
/// are reused from one [`prepare`](PreparedRows::prepare) to the next).
#[derive(Default)]
pub struct PreparedRows {
    /// Rows held.
    m: usize,
    /// The rows' quantized forms, row after row (`cols` is the length of one row).
    all: PreparedRow,
}

impl PreparedRows {
    /// Quantizes the `m` rows of `x` (row-major, `m × cols`) for weights of each of
    /// `dtypes`, each row exactly as [`PreparedRow::prepare`] quantizes it alone.
    pub fn prepare(
        &mut self,
        x: &[f32],
        m: usize,
        dtypes: &[GgmlDType],
    ) -> Result<(), KernelError> {
        let cols = x.len().checked_div(m).unwrap_or(0);
        if cols.checked_mul(m) != Some(x.len()) {
            return Err(KernelError::Length {
                what: "the input rows",
                got: x.len(),
                want: m * cols,
            });
        }
        self.m = m;
        self.all.prepare_rows_on(isa::current(), x, cols, dtypes)
    }

    /// Rows held.
    pub fn rows(&self) -> usize {
        self.m
    }

    /// Values per row.
    pub fn cols(&self) -> usize {
        self.all.cols
    }
}

/// Rows `first..first + n` of `X · Wᵀ` for every prepared row of `x`, on the calling thread:
/// `outs[i]` (all `n` long, one per prepared row) receives row `i`'s results, and
/// `weights` is the whole matrix (`x.cols()` columns) in GGUF layout. Each weight row is
/// read once for up to 4 activation rows; `outs[i]` is bit-identical to
/// [`matvec_rows`](super::matvec_rows) on row `i` alone.
pub fn matmul_rows(
    dtype: GgmlDType,
    weights: &[u8],
    x: &PreparedRows,
    first: usize,
    outs: &mut [&mut [f32]],
) -> Result<(), KernelError> {
    let m = x.m;
    if outs.len() != m {
        return Err(KernelError::Length { what: "the output rows", got: outs.len(), want: m });
    }
    let n = outs.first().map_or(0, |o| o.len());
    if let Some(o) = outs.iter().find(|o| o.len() != n) {
        return Err(KernelError::Length { what: "an output row", got: o.len(), want: n });
    }
    let rows = RowOutputs { outs, base: first };
    prepared_rows_on(isa::current(), dtype, weights, &x.all, m, first, n, rows)
}

/// [`matmul_rows`]' outputs: activation row `i`'s result for weight row `r` goes to
/// `outs[i][r - base]`.
struct RowOutputs<'a, 'b> {
    outs: &'a mut [&'b mut [f32]],
    base: usize,
}

impl Store for RowOutputs<'_, '_> {
    #[inline(always)]
    fn put(&mut self, i: usize, r: usize, v: f32) {
        self.outs[i][r - self.base] = v
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{quantized, Rng, ALL};
    use super::super::{matvec_rows, row_bytes};
    use super::*;

    /// The kernels' test data: candle-quantized weight bytes, varied activations.
    fn weights(dtype: GgmlDType, rows: usize, cols: usize, seed: u64) -> Vec<u8> {
        quantized(dtype, rows, cols, seed).0
    }

    fn data(seed: u64, n: usize) -> Vec<f32> {
        Rng(seed).data(n)
    }

    /// Every row of a batch of 1 to 9 rows, in any row ranges, has the bits of
    /// `matvec_rows` on that row alone (batches of 4 and the 1-3 row remainders).
    #[test]
    fn each_row_equals_matvec_rows_alone() {
        for (t, &dtype) in ALL.iter().enumerate() {
            let cols = match dtype.block_size() {
                256 => 512,
                32 => 96,
                _ => 40,
            };
            let rows = 37;
            let w = weights(dtype, rows, cols, 7 + t as u64);
            assert_eq!(w.len(), rows * row_bytes(dtype, cols));
            for m in 1..=9 {
                let x = data(100 + t as u64 * 10 + m as u64, m * cols);
                let mut want = vec![0f32; m * rows];
                let mut one = PreparedRow::default();
                for (xr, o) in x.chunks_exact(cols).zip(want.chunks_exact_mut(rows)) {
                    one.prepare(xr, &[dtype]).unwrap();
                    matvec_rows(dtype, &w, &one, 0, o).unwrap();
                }
                let mut many = PreparedRows::default();
                many.prepare(&x, m, &[GgmlDType::F32, dtype]).unwrap();
                assert_eq!((many.rows(), many.cols()), (m, cols));
                for cut in [1, 4, 5, rows] {
                    let mut got = vec![f32::NAN; m * rows];
                    let mut per_row: Vec<_> =
                        got.chunks_exact_mut(rows).map(|o| o.chunks_mut(cut)).collect();
                    for p in 0..rows.div_ceil(cut) {
                        let mut outs: Vec<&mut [f32]> =
                            per_row.iter_mut().map(|c| c.next().unwrap()).collect();
                        matmul_rows(dtype, &w, &many, p * cut, &mut outs).unwrap();
                    }
                    let same = got.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits());
                    assert!(same, "{dtype:?}, {m} rows in ranges of {cut}: differs from alone");
                }
            }
        }
    }

    #[test]
    fn bad_inputs_are_errors() {
        let w = weights(GgmlDType::Q4K, 4, 256, 1);
        let x = vec![0.5f32; 2 * 256];
        let mut rows = PreparedRows::default();
        let err = rows.prepare(&x[..301], 2, &[GgmlDType::Q4K]).unwrap_err();
        assert!(matches!(err, KernelError::Length { .. }), "{err}");
        let err = rows.prepare(&x[..300], 2, &[GgmlDType::Q4K]).unwrap_err();
        assert!(matches!(err, KernelError::PartialBlock { cols: 150, .. }), "{err}");
        rows.prepare(&x, 2, &[GgmlDType::Q4_0]).unwrap();
        let (mut a, mut b) = (vec![0f32; 2], vec![0f32; 2]);
        let err = matmul_rows(GgmlDType::Q4K, &w, &rows, 0, &mut [&mut a, &mut b]).unwrap_err();
        assert_eq!(err, KernelError::NotPrepared(GgmlDType::Q4K));
        rows.prepare(&x, 2, &[GgmlDType::Q4K]).unwrap();
        assert!(matmul_rows(GgmlDType::Q4K, &w, &rows, 2, &mut [&mut a, &mut b]).is_ok());
        let err = matmul_rows(GgmlDType::Q4K, &w, &rows, 3, &mut [&mut a, &mut b]).unwrap_err();
        assert!(matches!(err, KernelError::Length { got: 576, want: 720, .. }), "{err}");
        let err = matmul_rows(GgmlDType::Q4K, &w, &rows, 0, &mut [&mut a]).unwrap_err();
        assert!(matches!(err, KernelError::Length { what: "the output rows", .. }), "{err}");
        let mut c = vec![0f32; 3];
        let err = matmul_rows(GgmlDType::Q4K, &w, &rows, 0, &mut [&mut a, &mut c]).unwrap_err();
        assert!(matches!(err, KernelError::Length { what: "an output row", .. }), "{err}");
    }
}
