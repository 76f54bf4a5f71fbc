//! A pre-allocated key/value cache that can be truncated to a prefix and snapshotted.
//!
//! Each layer owns two f16 tensors of shape `[kv_heads, capacity, head_dim]` allocated
//! once. New positions are rounded to f16 and written in place before anything attends
//! to them, so every path (a prefill chunk of any size, a decode step) reads the same
//! rounded keys and values. Truncating is O(1) (the length moves back), which is what lets
//! a new turn reuse every cached token it shares with the previous prompt.

use candle_core::{CpuStorage, DType, Device, InplaceOp1, Layout, Result, Tensor};
use half::f16;

use super::f16::to_f16;

/// The cache of every layer of one conversation.
pub struct KvCache {
    keys: Vec<Tensor>,
    values: Vec<Tensor>,
    len: usize,
    capacity: usize,
}

/// A copy of a cache prefix, restorable later (e.g. a cached system prompt).
pub struct KvSnapshot {
    keys: Vec<Tensor>,
    values: Vec<Tensor>,
    len: usize,
}

impl KvSnapshot {
    /// Positions held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes of keys and values it holds.
    pub fn bytes(&self) -> usize {
        let values: usize = self.keys.iter().chain(&self.values).map(|t| t.elem_count()).sum();
        values * KvCache::BYTES_PER_VALUE
    }
}

/// A zeroed f16 tensor. On the CPU its memory comes from the allocator already zeroed
/// (`calloc`: fresh pages are mapped only when first written), so a large cache costs
/// memory only as it fills; `Tensor::zeros` would write every f16 zero.
fn lazy_zeros(shape: (usize, usize, usize), device: &Device) -> Result<Tensor> {
    if !device.is_cpu() {
        return Tensor::zeros(shape, DType::F16, device);
    }
    let bits = std::mem::ManuallyDrop::new(vec![0u16; shape.0 * shape.1 * shape.2]);
    let (ptr, len, cap) = (bits.as_ptr() as *mut f16, bits.len(), bits.capacity());
    // SAFETY: `half::f16` is `#[repr(transparent)]` over `u16`: same size and alignment,
    // and every bit pattern is a valid f16 (0 is +0.0). The allocation is handed over
    // whole (the `ManuallyDrop` never frees it) with its own length and capacity.
    let values = unsafe { Vec::from_raw_parts(ptr, len, cap) };
    Tensor::from_vec(values, shape, device)
}

impl KvCache {
    /// Bytes per cached key or value element (f16).
    pub const BYTES_PER_VALUE: usize = 2;

    /// Allocates a cache for `layers` layers of `kv_heads × capacity × head_dim`.
    pub fn new(
        layers: usize,
        kv_heads: usize,
        head_dim: usize,
        capacity: usize,
        device: &Device,
    ) -> Result<KvCache> {
        let alloc = || lazy_zeros((kv_heads, capacity, head_dim), device);
        let keys = (0..layers).map(|_| alloc()).collect::<Result<Vec<_>>>()?;
        let values = (0..layers).map(|_| alloc()).collect::<Result<Vec<_>>>()?;
        Ok(KvCache { keys, values, len: 0, capacity })
    }

    /// Positions filled.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Maximum positions.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Bytes allocated.
    pub fn bytes(&self) -> usize {
        self.keys.iter().chain(&self.values).map(|t| t.elem_count() * Self::BYTES_PER_VALUE).sum()
    }

    fn check_room(&self, n: usize) -> Result<()> {
        if self.len + n > self.capacity {
            candle_core::bail!(
                "the context is full ({} of {} positions used)",
                self.len,
                self.capacity
            );
        }
        Ok(())
    }

    /// Writes `k`, `v` (`[kv_heads, n, head_dim]`, any float type) of `layer` at the
    /// current length, rounded to f16, and returns views of all positions so far including
    /// them. Call [`KvCache::advance`] once every layer has been written.
    pub fn append(&mut self, layer: usize, k: &Tensor, v: &Tensor) -> Result<(Tensor, Tensor)> {
        let n = k.dim(1)?;
        self.check_room(n)?;
        let (heads, _, head_dim) = self.keys[layer].dims3()?;
        for (t, src) in [(&self.keys[layer], k), (&self.values[layer], v)] {
            if src.dims() != [heads, n, head_dim] {
                candle_core::bail!(
                    "cannot cache a {:?} tensor as {heads}x{n}x{head_dim}",
                    src.dims()
                );
            }
            if t.device().is_cpu() {
                // Our own rounding, the same as `write_position`'s.
                let src = src.to_dtype(DType::F32)?.contiguous()?;
                super::linear::with_f32_slice(&src, |data| {
                    t.inplace_op1(&WriteRows {
                        data,
                        n,
                        head_dim,
                        capacity: self.capacity,
                        pos: self.len,
                    })
                })?;
            } else {
                t.slice_set(&src.to_dtype(DType::F16)?.contiguous()?, 1, self.len)?;
            }
        }
        let total = self.len + n;
        Ok((self.keys[layer].narrow(1, 0, total)?, self.values[layer].narrow(1, 0, total)?))
    }

    /// Writes the key and value rows (`[kv_heads, head_dim]` each, row-major) of one new
    /// position of `layer` at the current length, rounded to f16, in place (no allocation
    /// on the CPU). Call [`KvCache::advance`] once every layer has been written.
    pub fn write_position(&mut self, layer: usize, k: &[f32], v: &[f32]) -> Result<()> {
        self.check_room(1)?;
        let (heads, _, head_dim) = self.keys[layer].dims3()?;
        if k.len() != heads * head_dim || v.len() != heads * head_dim {
            candle_core::bail!(
                "a cache position holds {heads}x{head_dim} values, got {} keys and {} values",
                k.len(),
                v.len()
            );
        }
        for (t, data) in [(&self.keys[layer], k), (&self.values[layer], v)] {
            if t.device().is_cpu() {
                t.inplace_op1(&WriteRows {
                    data,
                    n: 1,
                    head_dim,
                    capacity: self.capacity,
                    pos: self.len,
                })?;
            } else {
                let src = Tensor::from_slice(data, (heads, 1, head_dim), t.device())?;
                t.slice_set(&src.to_dtype(DType::F16)?, 1, self.len)?;
            }
        }
        Ok(())
    }

    /// The full key and value tensors of `layer` (`[kv_heads, capacity, head_dim]`, f16).
    pub fn layer(&self, layer: usize) -> (&Tensor, &Tensor) {
        (&self.keys[layer], &self.values[layer])
    }

    /// Calls `f` with the keys and values of `layer` as `[kv_heads, capacity, head_dim]`
    /// slices (CPU caches only).
    pub fn with_layer<R>(
        &self,
        layer: usize,
        f: impl FnOnce(&[f16], &[f16]) -> Result<R>,
    ) -> Result<R> {
        let (k, kl) = self.keys[layer].storage_and_layout();
        let (v, vl) = self.values[layer].storage_and_layout();
        match (&*k, &*v) {
            (candle_core::Storage::Cpu(k), candle_core::Storage::Cpu(v)) => {
                let n = self.keys[layer].elem_count();
                let (ks, vs) = (kl.start_offset(), vl.start_offset());
                f(&k.as_slice::<f16>()?[ks..ks + n], &v.as_slice::<f16>()?[vs..vs + n])
            }
            _ => candle_core::bail!("expected a CPU cache"),
        }
    }

    /// Marks `n` newly appended positions as filled.
    pub fn advance(&mut self, n: usize) {
        self.len = (self.len + n).min(self.capacity);
    }

    /// Forgets every position from `len` on.
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// Copies the first `len` positions (at most the filled length).
    pub fn snapshot(&self, len: usize) -> Result<KvSnapshot> {
        let len = len.min(self.len);
        let copy = |ts: &[Tensor]| {
            ts.iter()
                .map(|t| {
                    // A fresh contiguous copy: never a view sharing the live cache's storage.
                    let view = t.narrow(1, 0, len)?;
                    if view.is_contiguous() {
                        view.copy()
                    } else {
                        view.contiguous()
                    }
                })
                .collect::<Result<Vec<_>>>()
        };
        Ok(KvSnapshot { keys: copy(&self.keys)?, values: copy(&self.values)?, len })
    }

    /// The first `len` positions (at most the filled length) as plain f16 values: for each
    /// layer its keys, then its values, each `[kv_heads, len, head_dim]` row-major.
    pub fn export(&self, len: usize) -> Result<Vec<f16>> {
        let snap = self.snapshot(len)?;
        let mut out = Vec::new();
        for (k, v) in snap.keys.iter().zip(&snap.values) {
            out.extend(k.flatten_all()?.to_vec1::<f16>()?);
            out.extend(v.flatten_all()?.to_vec1::<f16>()?);
        }
        Ok(out)
    }

    /// Replaces the contents with `len` positions laid out as [`export`](Self::export)
    /// gives them.
    pub fn import(&mut self, len: usize, data: &[f16]) -> Result<()> {
        let (kv_heads, _, head_dim) = self.keys[0].dims3()?;
        let per = kv_heads * len * head_dim;
        if len > self.capacity || data.len() != self.keys.len() * 2 * per {
            candle_core::bail!(
                "saved cache of {len} positions ({} values) does not fit this cache",
                data.len()
            );
        }
        let dev = self.keys[0].device().clone();
        let mut keys = Vec::with_capacity(self.keys.len());
        let mut values = Vec::with_capacity(self.keys.len());
        for layer in data.chunks_exact(2 * per.max(1)).take(self.keys.len()) {
            let (k, v) = layer.split_at(per);
            keys.push(Tensor::from_slice(k, (kv_heads, len, head_dim), &dev)?);
            values.push(Tensor::from_slice(v, (kv_heads, len, head_dim), &dev)?);
        }
        if len == 0 {
            self.len = 0;
            return Ok(());
        }
        self.restore(&KvSnapshot { keys, values, len })
    }

    /// Replaces the cache contents with a snapshot.
    pub fn restore(&mut self, snap: &KvSnapshot) -> Result<()> {
        if snap.keys.len() != self.keys.len() || snap.len > self.capacity {
            candle_core::bail!("snapshot does not fit this cache");
        }
        if snap.len > 0 {
            for (dst, src) in self.keys.iter().zip(&snap.keys) {
                dst.slice_set(src, 1, 0)?;
            }
            for (dst, src) in self.values.iter().zip(&snap.values) {
                dst.slice_set(src, 1, 0)?;
            }
        }
        self.len = snap.len;
        Ok(())
    }
}

/// Rounds `n` positions' `[kv_heads, n, head_dim]` f32 rows to f16 into a `[kv_heads,
/// capacity, head_dim]` CPU tensor at `pos..pos + n`.
struct WriteRows<'a> {
    data: &'a [f32],
    n: usize,
    head_dim: usize,
    capacity: usize,
    pos: usize,
}

impl InplaceOp1 for WriteRows<'_> {
    fn name(&self) -> &'static str {
        "kv-cache-write-rows"
    }

    fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> Result<()> {
        let CpuStorage::F16(all) = storage else {
            candle_core::bail!("the KV cache must be f16");
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("the KV cache must be contiguous");
        };
        let all = &mut all[start..end];
        let run = self.n * self.head_dim;
        for (h, rows) in self.data.chunks_exact(run).enumerate() {
            let at = (h * self.capacity + self.pos) * self.head_dim;
            to_f16(rows, &mut all[at..at + run]);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_truncate_snapshot() -> Result<()> {
        let dev = Device::Cpu;
        let mut c = KvCache::new(1, 2, 4, 8, &dev)?;
        let a = Tensor::ones((2, 3, 4), DType::F32, &dev)?;
        let (k, _) = c.append(0, &a, &a)?;
        c.advance(3);
        assert_eq!(k.dims(), &[2, 3, 4]);
        let snap = c.snapshot(2)?;
        let b = (Tensor::ones((2, 1, 4), DType::F32, &dev)? * 5.0)?;
        c.truncate(2);
        let (k, _) = c.append(0, &b, &b)?;
        c.advance(1);
        assert_eq!(k.dims(), &[2, 3, 4]);
        let row = k.narrow(1, 2, 1)?.flatten_all()?.to_dtype(DType::F32)?;
        assert_eq!(row.to_vec1::<f32>()?, vec![5.0; 8]);
        // Writing one position in place is the same as appending it.
        let kv: Vec<f32> = (0..8).map(|i| i as f32).collect();
        c.write_position(0, &kv, &kv)?;
        c.advance(1);
        let (k, v) = c.layer(0);
        for t in [k, v] {
            let row = t.narrow(1, 3, 1)?.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
            assert_eq!(row, kv);
        }
        assert!(c.write_position(0, &kv[..4], &kv).is_err());
        c.restore(&snap)?;
        assert_eq!(c.len(), 2);
        // Export and import round-trip; a wrong length is an error.
        let saved = c.export(2)?;
        assert_eq!(saved.len(), 2 * 2 * 2 * 4);
        c.truncate(0);
        c.import(2, &saved)?;
        assert_eq!((c.len(), c.export(2)?), (2, saved.clone()));
        assert!(c.import(2, &saved[1..]).is_err());
        assert!(c.import(9, &vec![f16::ZERO; 2 * 2 * 9 * 4]).is_err());
        // Overflow is an error, not a panic.
        let big = Tensor::ones((2, 7, 4), DType::F32, &dev)?;
        assert!(c.append(0, &big, &big).is_err());
        Ok(())
    }

    /// A chunk appended at once and the same positions written one by one hold the same
    /// f16 bits: every path attends over the same rounded keys and values.
    #[test]
    fn append_and_write_position_round_alike() -> Result<()> {
        let dev = Device::Cpu;
        let (heads, n, hd) = (2, 5, 12);
        let vals: Vec<f32> = (0..heads * n * hd).map(|i| (i as f32 * 0.377).sin() * 7.3).collect();
        let t = Tensor::from_slice(&vals, (heads, n, hd), &dev)?;
        let mut a = KvCache::new(1, heads, hd, 8, &dev)?;
        a.append(0, &t, &t)?;
        a.advance(n);
        let mut b = KvCache::new(1, heads, hd, 8, &dev)?;
        for p in 0..n {
            let row: Vec<f32> = (0..heads)
                .flat_map(|h| vals[(h * n + p) * hd..(h * n + p + 1) * hd].to_vec())
                .collect();
            b.write_position(0, &row, &row)?;
            b.advance(1);
        }
        let (ea, eb) = (a.export(n)?, b.export(n)?);
        assert_eq!(ea.len(), 2 * heads * n * hd);
        assert!(ea.iter().zip(&eb).all(|(x, y)| x.to_bits() == y.to_bits()));
        // The values are f16 roundings of the input (not f32 copies).
        let keys: Vec<f32> = ea[..heads * n * hd].iter().map(|h| h.to_f32()).collect();
        let want: Vec<f32> = vals.iter().map(|&v| f16::from_f32(v).to_f32()).collect();
        assert_eq!(keys, want);
        assert_ne!(keys, vals);
        assert_eq!(a.bytes(), 2 * heads * 8 * hd * 2);
        Ok(())
    }
}
