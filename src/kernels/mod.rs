//! Quantized matrix kernels for the CPU (being built on the `kernels` branch).
//! Until they land, [`supported`] is false and the engine uses candle's kernels.

use candle_core::quantized::GgmlDType;

/// Errors from the kernels.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    /// The type has no kernel.
    #[error("no kernel for {0:?}")]
    Unsupported(GgmlDType),
}

/// True when [`matmul`] handles `dtype`.
pub fn supported(_dtype: GgmlDType) -> bool {
    false
}

/// `out (m×rows) = x (m×cols) · Wᵀ` for a quantized `W`.
pub fn matmul(
    dtype: GgmlDType,
    _weights: &[u8],
    _rows: usize,
    _cols: usize,
    _x: &[f32],
    _m: usize,
    _out: &mut [f32],
) -> Result<(), KernelError> {
    Err(KernelError::Unsupported(dtype))
}

/// Dequantizes one row.
pub fn dequantize_row(
    dtype: GgmlDType,
    _bytes: &[u8],
    _cols: usize,
    _out: &mut [f32],
) -> Result<(), KernelError> {
    Err(KernelError::Unsupported(dtype))
}
