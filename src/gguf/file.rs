//! A GGUF file opened with mmap: metadata, tensor infos and zero-copy tensor bytes.

use super::metadata::{self, required, MetaError, Metadata};
use super::reader;
use candle_core::quantized::gguf_file::{Content, TensorInfo, Value};
use candle_core::quantized::GgmlDType;
use memmap2::Mmap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why a GGUF file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    /// The file is missing or unreadable.
    #[error("cannot open model file {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file does not start with the GGUF magic bytes.
    #[error("{path} is not a GGUF model file (it starts with {found:?}, expected \"GGUF\")")]
    BadMagic {
        /// The file.
        path: PathBuf,
        /// The first bytes found.
        found: String,
    },
    /// The header, metadata or tensor table could not be parsed.
    #[error("{path} is a corrupt GGUF file: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A tensor's data lies beyond the end of the file (an interrupted download).
    #[error("{path} is truncated: tensor {tensor} needs bytes up to {needed} but the file has {len}; download it again (upward models pull NAME)")]
    Truncated {
        /// The file.
        path: PathBuf,
        /// The first tensor that does not fit.
        tensor: String,
        /// End offset the tensor needs.
        needed: u64,
        /// File length.
        len: u64,
    },
    /// A metadata key the model needs is absent or has the wrong type.
    #[error("{path}: {source}")]
    Metadata {
        /// The file.
        path: PathBuf,
        /// The key and what is wrong with it.
        source: MetaError,
    },
    /// A tensor the architecture needs is absent.
    #[error("{path}: tensor {name} is missing")]
    MissingTensor {
        /// The file.
        path: PathBuf,
        /// The tensor name.
        name: String,
    },
}

/// A GGUF file mapped into memory. Cloning is cheap (the mapping is shared).
#[derive(Clone)]
pub struct GgufFile {
    path: PathBuf,
    mmap: Arc<Mmap>,
    content: Arc<Content>,
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufFile").field("path", &self.path).finish()
    }
}

/// Bytes of one tensor stored in the mapped file, with its shape and type.
#[derive(Clone)]
pub struct TensorBytes {
    /// The shared mapping the bytes live in.
    pub mmap: Arc<Mmap>,
    /// Offset of the first byte in the mapping.
    pub offset: usize,
    /// Number of bytes.
    pub len: usize,
    /// Element type.
    pub dtype: GgmlDType,
    /// Dimensions in GGUF order reversed to row-major (outermost first), e.g. `[rows, cols]`.
    pub dims: Vec<usize>,
}

impl TensorBytes {
    /// The raw bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.mmap[self.offset..self.offset + self.len]
    }
}

impl GgufFile {
    /// Opens and validates a GGUF file: magic, header, metadata and that every tensor's
    /// data lies inside the file. Weights are mapped, not read.
    pub fn open(path: &Path) -> Result<GgufFile, GgufError> {
        let open_err = |source| GgufError::Open { path: path.to_path_buf(), source };
        let file = std::fs::File::open(path).map_err(open_err)?;
        // SAFETY: the mapping is read-only; a model file modified while in use is the
        // user's error, as with any mmap-based loader (llama.cpp does the same).
        let mmap = unsafe { Mmap::map(&file) }.map_err(open_err)?;
        Self::from_mmap(path, mmap)
    }

    /// Opens a GGUF file held in memory, with `name` in place of a path in messages: the
    /// same checks as [`open`](Self::open), for tests and fuzzing.
    pub fn from_bytes(name: &str, bytes: &[u8]) -> Result<GgufFile, GgufError> {
        let path = Path::new(name);
        let open_err = |source| GgufError::Open { path: path.to_path_buf(), source };
        let mut map = memmap2::MmapMut::map_anon(bytes.len().max(1)).map_err(open_err)?;
        map[..bytes.len()].copy_from_slice(bytes);
        let map = map.make_read_only().map_err(open_err)?;
        if bytes.is_empty() {
            return Err(GgufError::BadMagic { path: path.to_path_buf(), found: String::new() });
        }
        Self::from_mmap(path, map)
    }

    fn from_mmap(path: &Path, mmap: Mmap) -> Result<GgufFile, GgufError> {
        if !metadata::has_magic(&mmap) {
            let head = &mmap[..mmap.len().min(4)];
            return Err(GgufError::BadMagic {
                path: path.to_path_buf(),
                found: String::from_utf8_lossy(head).into_owned(),
            });
        }
        let header = reader::parse(&mmap)
            .map_err(|reason| GgufError::Corrupt { path: path.to_path_buf(), reason })?;
        let len = mmap.len() as u64;
        let data = header.content.tensor_data_offset;
        for name in &header.order {
            // Checked in `parse`: offsets and sizes fit a u64 together with the data offset.
            let end = data + header.content.tensor_infos[name].offset + header.sizes[name];
            if end > len {
                return Err(GgufError::Truncated {
                    path: path.to_path_buf(),
                    tensor: name.clone(),
                    needed: end,
                    len,
                });
            }
        }
        let content = header.content;
        Ok(GgufFile { path: path.to_path_buf(), mmap: Arc::new(mmap), content: Arc::new(content) })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Parsed header: metadata and tensor infos.
    pub fn content(&self) -> &Content {
        &self.content
    }

    /// File size in bytes.
    pub fn len(&self) -> usize {
        self.mmap.len()
    }

    /// True for an empty mapping (never for a valid file).
    pub fn is_empty(&self) -> bool {
        self.mmap.is_empty()
    }

    /// `general.architecture`.
    pub fn architecture(&self) -> Result<String, GgufError> {
        self.meta_str(metadata::keys::ARCHITECTURE)
    }

    /// The typed metadata reader.
    pub fn metadata(&self) -> Metadata<'_> {
        Metadata::new(&self.content.metadata)
    }

    /// A metadata value, if present.
    pub fn meta(&self, key: &str) -> Option<&Value> {
        self.metadata().get(key)
    }

    /// `r` with a metadata error put in the context of this file.
    pub fn check_meta<T>(&self, r: Result<T, MetaError>) -> Result<T, GgufError> {
        r.map_err(|source| GgufError::Metadata { path: self.path.clone(), source })
    }

    /// A required string metadata value.
    pub fn meta_str(&self, key: &str) -> Result<String, GgufError> {
        self.check_meta(required(key, self.metadata().str(key))).map(str::to_string)
    }

    /// A required non-negative integer metadata value (any integer width).
    pub fn meta_usize(&self, key: &str) -> Result<usize, GgufError> {
        self.check_meta(required(key, self.metadata().usize(key)))
    }

    /// A required float metadata value.
    pub fn meta_f32(&self, key: &str) -> Result<f32, GgufError> {
        self.check_meta(required(key, self.metadata().f32(key)))
    }

    /// True when the file has a tensor of that name.
    pub fn has_tensor(&self, name: &str) -> bool {
        self.content.tensor_infos.contains_key(name)
    }

    /// The bytes and layout of a tensor, without copying.
    pub fn tensor(&self, name: &str) -> Result<TensorBytes, GgufError> {
        let info = self.content.tensor_infos.get(name).ok_or_else(|| GgufError::MissingTensor {
            path: self.path.clone(),
            name: name.to_string(),
        })?;
        let corrupt = || GgufError::Corrupt {
            path: self.path.clone(),
            reason: format!("tensor {name} lies outside the file"),
        };
        let len = tensor_size(info).ok_or_else(corrupt)?;
        let offset = self
            .content
            .tensor_data_offset
            .checked_add(info.offset)
            .and_then(|o| usize::try_from(o).ok())
            .filter(|o| o.checked_add(len).is_some_and(|end| end <= self.mmap.len()))
            .ok_or_else(corrupt)?;
        Ok(TensorBytes {
            mmap: self.mmap.clone(),
            offset,
            len,
            dtype: info.ggml_dtype,
            dims: info.shape.dims().to_vec(),
        })
    }
}

/// Bytes a tensor occupies (its shape and type were checked when the file was opened).
fn tensor_size(info: &TensorInfo) -> Option<usize> {
    let size = reader::tensor_bytes(info.shape.dims(), info.ggml_dtype).ok()?;
    usize::try_from(size).ok()
}
