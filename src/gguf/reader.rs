//! The GGUF header parser: metadata and the tensor table, read from untrusted bytes.
//!
//! Every count, length, size and offset comes from the file, so every one is checked
//! against the bytes that remain and computed with checked arithmetic. Beyond the format
//! itself it rejects what llama.cpp rejects: duplicated keys and tensor names, an alignment
//! that is not a power of two, and tensor data that is not laid out back to back (a
//! misaligned offset, or a wrong type that changes a tensor's size).

use candle_core::quantized::gguf_file::{Content, TensorInfo, Value, VersionedMagic};
use candle_core::quantized::GgmlDType;
use std::collections::HashMap;

/// Alignment of tensor data when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// Most elements of one metadata array (vocabularies have about 262k).
const MAX_ARRAY_LEN: u64 = 1 << 24;
/// Most values in all metadata together: bounds memory to a few hundred MB whatever the
/// file claims (a value takes 32 bytes in memory but one byte on disk).
const MAX_TOTAL_VALUES: u64 = 1 << 24;
/// Deepest nesting of arrays.
const MAX_DEPTH: usize = 4;
/// Most dimensions of a tensor (ggml's limit).
const MAX_DIMS: u32 = 4;

/// A parsed header: metadata and tensor infos, with the tensors in file order.
pub struct Header {
    /// Metadata and tensor infos, in the form the rest of the crate reads.
    pub content: Content,
    /// Tensor names in the order of the tensor table.
    pub order: Vec<String>,
    /// Byte size of each tensor's data, by name.
    pub sizes: HashMap<String, u64>,
    /// Where the data section ends (the last tensor's padded end).
    pub data_end: u64,
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    values: u64,
}

type R<T> = Result<T, String>;

impl<'a> Cursor<'a> {
    fn take(&mut self, n: u64, what: &str) -> R<&'a [u8]> {
        let left = (self.buf.len() - self.pos) as u64;
        if n > left {
            return Err(format!(
                "{what} needs {n} bytes at offset {} but only {left} remain",
                self.pos
            ));
        }
        let s = &self.buf[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(s)
    }
    fn arr<const N: usize>(&mut self, what: &str) -> R<[u8; N]> {
        let s = self.take(N as u64, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }
    fn u32(&mut self, what: &str) -> R<u32> {
        self.arr(what).map(u32::from_le_bytes)
    }
    fn u64(&mut self, what: &str) -> R<u64> {
        self.arr(what).map(u64::from_le_bytes)
    }
    fn remaining(&self) -> u64 {
        (self.buf.len() - self.pos) as u64
    }
    fn bytes(&mut self, what: &str) -> R<&'a [u8]> {
        let n = self.u64(what)?;
        self.take(n, what)
    }
    /// A metadata string: lossy UTF-8 without trailing NULs (as candle reads them).
    fn string(&mut self, what: &str) -> R<String> {
        let mut b = self.bytes(what)?;
        while let [rest @ .., 0] = b {
            b = rest;
        }
        Ok(String::from_utf8_lossy(b).into_owned())
    }
    /// A key or tensor name: valid UTF-8, not empty.
    fn name(&mut self, what: &str) -> R<String> {
        let b = self.bytes(what)?;
        let s = std::str::from_utf8(b).map_err(|_| format!("{what} is not valid UTF-8"))?;
        if s.is_empty() {
            return Err(format!("{what} is empty"));
        }
        Ok(s.to_string())
    }

    fn value(&mut self, ty: u32, depth: usize, key: &str) -> R<Value> {
        self.values += 1;
        if self.values > MAX_TOTAL_VALUES {
            return Err(format!("metadata holds more than {MAX_TOTAL_VALUES} values"));
        }
        let v = match ty {
            0 => Value::U8(self.arr::<1>(key)?[0]),
            1 => Value::I8(self.arr::<1>(key)?[0] as i8),
            2 => Value::U16(u16::from_le_bytes(self.arr(key)?)),
            3 => Value::I16(i16::from_le_bytes(self.arr(key)?)),
            4 => Value::U32(self.u32(key)?),
            5 => Value::I32(i32::from_le_bytes(self.arr(key)?)),
            6 => Value::F32(f32::from_le_bytes(self.arr(key)?)),
            7 => match self.arr::<1>(key)?[0] {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                b => {
                    return Err(format!("metadata key {key}: boolean byte {b} is neither 0 nor 1"))
                }
            },
            8 => Value::String(self.string(key)?),
            9 => {
                if depth >= MAX_DEPTH {
                    return Err(format!(
                        "metadata key {key}: arrays nested deeper than {MAX_DEPTH}"
                    ));
                }
                let elem = self.u32(key)?;
                let len = self.u64(key)?;
                let min = min_size(elem).ok_or_else(|| {
                    format!("metadata key {key}: unknown array element type {elem}")
                })?;
                if len > MAX_ARRAY_LEN {
                    return Err(format!(
                        "metadata key {key}: array of {len} elements (at most {MAX_ARRAY_LEN})"
                    ));
                }
                if len.saturating_mul(min) > self.remaining() {
                    return Err(format!(
                        "metadata key {key}: array of {len} elements runs past the end of the file"
                    ));
                }
                let mut vs = Vec::with_capacity(len as usize);
                for _ in 0..len {
                    vs.push(self.value(elem, depth + 1, key)?);
                }
                Value::Array(vs)
            }
            10 => Value::U64(self.u64(key)?),
            11 => Value::I64(i64::from_le_bytes(self.arr(key)?)),
            12 => Value::F64(f64::from_le_bytes(self.arr(key)?)),
            t => return Err(format!("metadata key {key}: unknown value type {t}")),
        };
        Ok(v)
    }
}

/// Smallest on-disk size of a value of type `ty`, or None for an unknown type.
fn min_size(ty: u32) -> Option<u64> {
    Some(match ty {
        0 | 1 | 7 => 1,
        2 | 3 => 2,
        4..=6 => 4,
        10..=12 | 8 => 8,
        9 => 12,
        _ => return None,
    })
}

/// The ggml type with code `code`, among those candle reads.
pub fn dtype_from_code(code: u32) -> Option<GgmlDType> {
    use GgmlDType::*;
    Some(match code {
        0 => F32,
        1 => F16,
        2 => Q4_0,
        3 => Q4_1,
        6 => Q5_0,
        7 => Q5_1,
        8 => Q8_0,
        9 => Q8_1,
        10 => Q2K,
        11 => Q3K,
        12 => Q4K,
        13 => Q5K,
        14 => Q6K,
        15 => Q8K,
        30 => BF16,
        _ => return None,
    })
}

/// Bytes of a tensor of `dims` (row-major, outermost first) and type `dtype`, checked.
pub fn tensor_bytes(dims: &[usize], dtype: GgmlDType) -> R<u64> {
    let mut elems: u64 = 1;
    for &d in dims {
        elems = elems.checked_mul(d as u64).filter(|&e| e <= i64::MAX as u64).ok_or_else(|| {
            format!("dimensions {dims:?} hold more elements than a 64-bit count allows")
        })?;
    }
    let bs = dtype.block_size() as u64;
    let inner = dims.last().copied().unwrap_or(1) as u64;
    if !inner.is_multiple_of(bs) {
        return Err(format!(
            "type {dtype:?} packs {bs} values per block but a row has {inner} (dimensions {dims:?})"
        ));
    }
    (elems / bs)
        .checked_mul(dtype.type_size() as u64)
        .ok_or_else(|| format!("dimensions {dims:?} of type {dtype:?} overflow a 64-bit size"))
}

fn align_up(x: u64, a: u64) -> Option<u64> {
    x.checked_add(a - 1).map(|v| v / a * a)
}

/// Parses and checks the header of a GGUF file held in `buf`, and checks that every
/// tensor's data lies inside `buf`. The error names the key or tensor at fault.
pub fn parse(buf: &[u8]) -> R<Header> {
    let mut c = Cursor { buf, pos: 0, values: 0 };
    if !super::metadata::has_magic(c.take(4, "magic")?) {
        return Err("bad magic".into());
    }
    let version = c.u32("version")?;
    let magic = match version {
        2 => VersionedMagic::GgufV2,
        3 => VersionedMagic::GgufV3,
        v => return Err(format!("unsupported GGUF version {v} (upward reads versions 2 and 3)")),
    };
    let n_tensors = c.u64("tensor count")?;
    let n_kv = c.u64("metadata count")?;
    // Each entry takes at least a length prefix, a type and a value.
    if n_kv.saturating_mul(13) > c.remaining() {
        return Err(format!("header claims {n_kv} metadata entries, more than the file holds"));
    }
    if n_tensors.saturating_mul(24) > c.remaining() {
        return Err(format!("header claims {n_tensors} tensors, more than the file holds"));
    }
    let mut metadata = HashMap::with_capacity(n_kv as usize);
    for i in 0..n_kv {
        let key = c.name(&format!("metadata key #{i}"))?;
        let ty = c.u32(&key)?;
        let value = c.value(ty, 0, &key)?;
        if metadata.insert(key.clone(), value).is_some() {
            return Err(format!("metadata key {key} appears twice"));
        }
    }
    let alignment = match metadata.get("general.alignment") {
        None => DEFAULT_ALIGNMENT,
        Some(Value::U32(a)) if a.is_power_of_two() => *a as u64,
        Some(v) => {
            return Err(format!(
                "metadata key general.alignment is {v:?}, not a power of two (u32)"
            ))
        }
    };
    let mut tensor_infos = HashMap::with_capacity(n_tensors as usize);
    let mut order = Vec::with_capacity(n_tensors as usize);
    let mut sizes = HashMap::with_capacity(n_tensors as usize);
    let mut expected_offset: u64 = 0;
    let mut prev: Option<(String, GgmlDType, Vec<usize>, u64)> = None;
    for i in 0..n_tensors {
        let name = c.name(&format!("tensor name #{i}"))?;
        let what = format!("tensor {name}");
        let n_dims = c.u32(&what)?;
        if n_dims == 0 || n_dims > MAX_DIMS {
            return Err(format!("{what} has {n_dims} dimensions (1 to {MAX_DIMS} allowed)"));
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for _ in 0..n_dims {
            let d = c.u64(&what)?;
            let d = usize::try_from(d)
                .ok()
                .filter(|&d| d > 0)
                .ok_or_else(|| format!("{what} has a dimension of {d}"))?;
            dims.push(d);
        }
        dims.reverse();
        let ty = c.u32(&what)?;
        let dtype = dtype_from_code(ty)
            .ok_or_else(|| format!("{what} has an unknown or unsupported type {ty}"))?;
        let offset = c.u64(&what)?;
        let size = tensor_bytes(&dims, dtype).map_err(|e| format!("{what}: {e}"))?;
        if !offset.is_multiple_of(alignment) {
            return Err(format!(
                "{what}: data offset {offset} is not a multiple of the alignment {alignment}"
            ));
        }
        if offset != expected_offset {
            return Err(match &prev {
                Some((p, dtype, dims, size)) => format!(
                    "tensor {p}: type {dtype:?} and dimensions {dims:?} need {size} bytes, \
                     but the next tensor ({name}) starts at data offset {offset}, not \
                     {expected_offset} (a wrong type or shape)"
                ),
                None => format!("{what}: data offset {offset}, but the first tensor starts at 0"),
            });
        }
        expected_offset = align_up(size, alignment)
            .and_then(|s| offset.checked_add(s))
            .ok_or_else(|| format!("{what}: data end overflows a 64-bit offset"))?;
        if tensor_infos.contains_key(&name) {
            return Err(format!("{what} appears twice"));
        }
        prev = Some((name.clone(), dtype, dims.clone(), size));
        let shape = candle_core::Shape::from(dims);
        tensor_infos.insert(name.clone(), TensorInfo { ggml_dtype: dtype, shape, offset });
        sizes.insert(name.clone(), size);
        order.push(name);
    }
    let tensor_data_offset = align_up(c.pos as u64, alignment)
        .ok_or_else(|| "tensor data offset overflows".to_string())?;
    let data_end = tensor_data_offset
        .checked_add(expected_offset)
        .ok_or_else(|| "tensor data end overflows a 64-bit offset".to_string())?;
    let content = Content { magic, metadata, tensor_infos, tensor_data_offset };
    Ok(Header { content, order, sizes, data_end })
}
