//! Quantized linear layers and embedding tables over mmap'd GGUF weights.
//!
//! On the CPU, [`QLinear`] runs our kernels ([`crate::kernels`]) straight on the mapped
//! bytes: no copy, no dequantization. On other devices (or for a type without a kernel)
//! it falls back to candle's `QMatMul`.

use crate::gguf::file::TensorBytes;
use crate::kernels;
use candle_core::quantized::{ggml_file::qtensor_from_ggml, GgmlDType, QMatMul};
use candle_core::{DType, Device, Module, Result, Tensor};

/// A linear layer `y = x·Wᵀ (+ b)` with quantized `W` of shape `[rows, cols]`.
pub struct QLinear {
    weight: TensorBytes,
    rows: usize,
    cols: usize,
    bias: Option<Tensor>,
    fallback: Option<QMatMul>,
}

impl QLinear {
    /// Wraps a `[rows, cols]` weight (and an optional `[rows]` bias).
    pub fn new(weight: TensorBytes, bias: Option<Tensor>, device: &Device) -> Result<QLinear> {
        let (rows, cols) = match weight.dims.as_slice() {
            [r, c] => (*r, *c),
            d => candle_core::bail!("expected a 2-d weight, got dims {d:?}"),
        };
        check_size(&weight, rows, cols)?;
        let use_kernel = device.is_cpu() && kernels::supported(weight.dtype);
        let fallback = if use_kernel {
            None
        } else {
            let q = qtensor_from_ggml(weight.dtype, weight.bytes(), vec![rows, cols], device)?;
            Some(QMatMul::from_qtensor(q)?)
        };
        Ok(QLinear { weight, rows, cols, bias, fallback })
    }

    /// Output features.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Input features.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The raw weight (type and GGUF bytes) when our CPU kernels run this layer.
    pub(crate) fn kernel_weight(&self) -> Option<(GgmlDType, &[u8])> {
        match self.fallback {
            None => Some((self.weight.dtype, self.weight.bytes())),
            Some(_) => None,
        }
    }

    /// The bias, if any.
    pub(crate) fn bias(&self) -> Option<&Tensor> {
        self.bias.as_ref()
    }

    /// Applies the layer to `x` of shape `[..., cols]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = match &self.fallback {
            Some(mm) => mm.forward(x)?,
            None => self.forward_kernel(x)?,
        };
        match &self.bias {
            Some(b) => y.broadcast_add(b),
            None => Ok(y),
        }
    }

    fn forward_kernel(&self, x: &Tensor) -> Result<Tensor> {
        let mut out_dims = x.dims().to_vec();
        let Some(last) = out_dims.last_mut() else {
            candle_core::bail!("linear layer applied to a scalar")
        };
        if *last != self.cols {
            candle_core::bail!("linear layer expects {} input features, got {}", self.cols, last);
        }
        *last = self.rows;
        let m = x.elem_count() / self.cols;
        let mut out = vec![0f32; m * self.rows];
        with_f32_slice(x, |xs| {
            kernels::matmul(
                self.weight.dtype,
                self.weight.bytes(),
                self.rows,
                self.cols,
                xs,
                m,
                &mut out,
            )
            .map_err(candle_core::Error::wrap)
        })?;
        Tensor::from_vec(out, out_dims, x.device())
    }
}

/// Fails unless `t` holds exactly `rows` whole rows of `cols` values: the kernels and the
/// row lookups index the bytes by these counts.
fn check_size(t: &TensorBytes, rows: usize, cols: usize) -> Result<()> {
    let (bs, ts) = (t.dtype.block_size(), t.dtype.type_size());
    let need =
        (cols.is_multiple_of(bs)).then(|| (cols / bs).checked_mul(ts)?.checked_mul(rows)).flatten();
    if need != Some(t.len) {
        candle_core::bail!(
            "a {rows}x{cols} {:?} matrix cannot be stored in {} bytes",
            t.dtype,
            t.len
        );
    }
    Ok(())
}

/// Runs `f` on the contiguous f32 data of a CPU tensor.
pub fn with_f32_slice<R>(x: &Tensor, f: impl FnOnce(&[f32]) -> Result<R>) -> Result<R> {
    let x = if x.dtype() == DType::F32 { x.contiguous()? } else { x.to_dtype(DType::F32)? };
    let (storage, layout) = x.storage_and_layout();
    match &*storage {
        candle_core::Storage::Cpu(cpu) => {
            let all = cpu.as_slice::<f32>()?;
            let start = layout.start_offset();
            f(&all[start..start + x.elem_count()])
        }
        _ => candle_core::bail!("expected a CPU tensor"),
    }
}

/// A token-embedding table looked up row by row, never dequantized whole.
pub struct Embedding {
    table: TensorBytes,
    vocab: usize,
    dim: usize,
}

impl Embedding {
    /// Wraps a `[vocab, dim]` table.
    pub fn new(table: TensorBytes) -> Result<Embedding> {
        let (vocab, dim) = match table.dims.as_slice() {
            [v, d] => (*v, *d),
            d => candle_core::bail!("expected a 2-d embedding table, got dims {d:?}"),
        };
        check_size(&table, vocab, dim)?;
        Ok(Embedding { table, vocab, dim })
    }

    /// The table's bytes (for a tied output layer).
    pub fn table(&self) -> &TensorBytes {
        &self.table
    }

    /// Dequantizes the row of token `id` into `dst` (`dim` long).
    pub(crate) fn lookup_into(&self, id: u32, dst: &mut [f32]) -> Result<()> {
        let id = id as usize;
        if id >= self.vocab {
            candle_core::bail!("token id {id} is outside the vocabulary ({})", self.vocab);
        }
        let dtype = self.table.dtype;
        let row_bytes = self.dim / dtype.block_size() * dtype.type_size();
        let row = &self.table.bytes()[id * row_bytes..(id + 1) * row_bytes];
        dequantize_row(dtype, row, self.dim, dst)
    }

    /// Looks up `ids`, returning `[ids.len(), dim]` f32.
    pub fn forward(&self, ids: &[u32], device: &Device) -> Result<Tensor> {
        let dtype = self.table.dtype;
        let row_bytes = self.dim / dtype.block_size() * dtype.type_size();
        let bytes = self.table.bytes();
        let mut out = vec![0f32; ids.len() * self.dim];
        for (i, &id) in ids.iter().enumerate() {
            let id = id as usize;
            if id >= self.vocab {
                candle_core::bail!("token id {id} is outside the vocabulary ({})", self.vocab);
            }
            let row = &bytes[id * row_bytes..(id + 1) * row_bytes];
            let dst = &mut out[i * self.dim..(i + 1) * self.dim];
            dequantize_row(dtype, row, self.dim, dst)?;
        }
        Tensor::from_vec(out, (ids.len(), self.dim), device)
    }
}

/// Dequantizes one row with our kernels, or candle's for types they lack.
fn dequantize_row(dtype: GgmlDType, row: &[u8], cols: usize, dst: &mut [f32]) -> Result<()> {
    if kernels::supported(dtype) {
        return kernels::dequantize_row(dtype, row, cols, dst).map_err(candle_core::Error::wrap);
    }
    let q = qtensor_from_ggml(dtype, row, vec![cols], &Device::Cpu)?;
    let v = q.dequantize(&Device::Cpu)?.to_vec1::<f32>()?;
    dst.copy_from_slice(&v);
    Ok(())
}
