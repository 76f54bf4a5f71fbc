//! Prompt caches on disk: the KV cache of a long prompt (a role-play's persona prompt and
//! opening), saved once and loaded when the same model file meets exactly the same tokens
//! again. Starting a role-play a second time then skips that prefill, which takes seconds
//! for a 1.5B model on a laptop.
//!
//! One file per (model, tokens): a magic line, a JSON header (model identity, shape,
//! tokens), then the keys and values as little-endian f16, as the KV cache holds them
//! (format 2; format 1 files held f32 and are removed as stale). Files are written atomically
//! (a temporary file renamed into place); a file that does not match is ignored and
//! removed; only the most recently used [`KEEP`] files are kept.

use std::io::Write;
use std::path::{Path, PathBuf};

use half::f16;
use sha2::{Digest, Sha256};

use super::generate::{Engine, EngineError};

/// Files kept in the folder (each holds one prompt's keys and values: tens of MB).
pub const KEEP: usize = 8;

const MAGIC: &[u8; 8] = b"UPWKV02\n";

/// The first line of format 1 files (f32 values, before the cache became f16).
const MAGIC_F32: &[u8; 8] = b"UPWKV01\n";

/// Errors of the prompt cache. A failed load is only a miss for callers.
#[derive(Debug, thiserror::Error)]
pub enum PromptCacheError {
    /// Reading or writing the folder failed.
    #[error("prompt cache {path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a prompt cache for this model and these tokens.
    #[error("prompt cache {path}: {reason}")]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// What did not match.
        reason: String,
    },
    /// The engine refused the saved values.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

#[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug, Clone)]
struct Header {
    model: String,
    layers: usize,
    kv_heads: usize,
    head_dim: usize,
    tokens: Vec<u32>,
}

/// A folder of saved prompt caches.
#[derive(Clone, Debug)]
pub struct PromptCache {
    dir: PathBuf,
}

impl PromptCache {
    /// Prompt caches in `dir` (created on the first save).
    pub fn new(dir: impl Into<PathBuf>) -> PromptCache {
        PromptCache { dir: dir.into() }
    }

    /// `$UPWARD_CACHE_DIR/prompts`, else the platform cache folder (`~/.cache/upward/prompts`
    /// on Linux); `None` when there is no home folder.
    pub fn from_env() -> Option<PromptCache> {
        if let Some(dir) = std::env::var_os("UPWARD_CACHE_DIR").filter(|d| !d.is_empty()) {
            return Some(PromptCache::new(PathBuf::from(dir).join("prompts")));
        }
        let dirs = directories::ProjectDirs::from("", "", "upward")?;
        Some(PromptCache::new(dirs.cache_dir().join("prompts")))
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Loads the saved cache of exactly `tokens` into `engine`: `Ok(true)` when it was
    /// there, `Ok(false)` when there is none. A file that does not match is removed.
    pub fn load(&self, engine: &mut Engine, tokens: &[u32]) -> Result<bool, PromptCacheError> {
        let path = self.path_for(engine, tokens);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(source) => return Err(PromptCacheError::Io { path, source }),
        };
        let parsed = parse(&bytes, &header_for(engine, tokens)).and_then(|data| {
            engine.import_cache(tokens, &data).map_err(|e| e.to_string())?;
            Ok(())
        });
        match parsed {
            Ok(()) => {
                crate::private::restrict_file(&path);
                // Mark it recently used (eviction goes by modification time).
                let _ = std::fs::File::options()
                    .append(true)
                    .open(&path)
                    .and_then(|f| f.set_modified(std::time::SystemTime::now()));
                Ok(true)
            }
            Err(reason) => {
                // The engine is untouched (or, if it refused the values, holds nothing).
                let _ = std::fs::remove_file(&path);
                Err(PromptCacheError::Mismatch { path, reason })
            }
        }
    }

    /// Saves what `engine` has cached (its tokens and their keys and values), then removes
    /// all but the [`KEEP`] most recently used files.
    pub fn save(&self, engine: &Engine) -> Result<(), PromptCacheError> {
        let (tokens, data) = engine.export_cache()?;
        let path = self.path_for(engine, &tokens);
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| PromptCacheError::Io { path, source }
        };
        // Owner-only, like the session database (docs/data.md).
        crate::private::create_dir(&self.dir, true).map_err(io(&self.dir))?;
        let header = serde_json::to_vec(&header_for(engine, &tokens)).map_err(|e| {
            PromptCacheError::Mismatch { path: path.clone(), reason: e.to_string() }
        })?;
        let mut bytes = Vec::with_capacity(MAGIC.len() + 8 + header.len() + 2 * data.len());
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&(header.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&header);
        for v in &data {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let written = crate::private::file_options()
            .create(true)
            .truncate(true)
            .open(&tmp)
            .and_then(|mut f| f.write_all(&bytes).and_then(|()| f.sync_all()))
            .and_then(|()| std::fs::rename(&tmp, &path));
        if let Err(source) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(PromptCacheError::Io { path, source });
        }
        self.evict();
        Ok(())
    }

    /// Removes all but the `KEEP` most recently used files.
    fn evict(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return };
        let mut files: Vec<(std::time::SystemTime, PathBuf)> = entries
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "kv"))
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
            .collect();
        files.sort_by_key(|f| std::cmp::Reverse(f.0));
        for (_, path) in files.into_iter().skip(KEEP) {
            let _ = std::fs::remove_file(path);
        }
    }

    /// The file for `tokens` with this engine's model: a hash of both.
    fn path_for(&self, engine: &Engine, tokens: &[u32]) -> PathBuf {
        let mut h = Sha256::new();
        h.update(model_identity(engine).as_bytes());
        for t in tokens {
            h.update(t.to_le_bytes());
        }
        let hex: String = h.finalize().iter().take(16).map(|b| format!("{b:02x}")).collect();
        self.dir.join(format!("{hex}.kv"))
    }
}

/// The model file as its path, size and modification time: a changed file is another model.
fn model_identity(engine: &Engine) -> String {
    let path = engine.file().path();
    let modified = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    format!("{}|{}|{}", path.display(), engine.file().len(), modified)
}

fn header_for(engine: &Engine, tokens: &[u32]) -> Header {
    let cfg = engine.config();
    Header {
        model: model_identity(engine),
        layers: cfg.n_layers,
        kv_heads: cfg.n_kv_heads,
        head_dim: cfg.head_dim,
        tokens: tokens.to_vec(),
    }
}

/// The values of a file whose header is `want`, or why it is not one.
fn parse(bytes: &[u8], want: &Header) -> Result<Vec<f16>, String> {
    if bytes.starts_with(MAGIC_F32) {
        return Err("saved by an older upward (f32 values); it will be saved again".into());
    }
    let rest = bytes.strip_prefix(MAGIC).ok_or("not an upward prompt cache")?;
    let (len, rest) = rest.split_at_checked(8).ok_or("truncated header")?;
    let len = u64::from_le_bytes(len.try_into().map_err(|_| "truncated header")?) as usize;
    let (header, data) = rest.split_at_checked(len).ok_or("truncated header")?;
    let header: Header = serde_json::from_slice(header).map_err(|e| format!("bad header: {e}"))?;
    if &header != want {
        return Err("made for another model or other tokens".into());
    }
    let values = want.layers * 2 * want.kv_heads * want.tokens.len() * want.head_dim;
    if data.len() != 2 * values {
        return Err(format!("holds {} bytes of values, expected {}", data.len(), 2 * values));
    }
    Ok(data.chunks_exact(2).map(|b| f16::from_le_bytes([b[0], b[1]])).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    #[test]
    fn only_the_most_recent_files_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let cache = PromptCache::new(dir.path());
        let base = SystemTime::now() - Duration::from_secs(3600);
        for i in 0..KEEP + 3 {
            let path = dir.path().join(format!("{i:02}.kv"));
            let f = std::fs::File::create(&path).unwrap();
            f.set_modified(base + Duration::from_secs(i as u64)).unwrap();
        }
        std::fs::write(dir.path().join("notes.txt"), "not ours").unwrap();
        cache.evict();
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        let mut want: Vec<String> = (3..KEEP + 3).map(|i| format!("{i:02}.kv")).collect();
        want.push("notes.txt".into());
        assert_eq!(left, want);
    }

    #[test]
    fn parse_rejects_what_is_not_a_matching_cache() {
        let want =
            Header { model: "m".into(), layers: 1, kv_heads: 1, head_dim: 2, tokens: vec![7] };
        let file = |h: &Header, values: usize| {
            let header = serde_json::to_vec(h).unwrap();
            let mut b = MAGIC.to_vec();
            b.extend_from_slice(&(header.len() as u64).to_le_bytes());
            b.extend_from_slice(&header);
            b.extend((0..values).flat_map(|i| f16::from_f32(i as f32).to_le_bytes()));
            b
        };
        let got: Vec<f32> =
            parse(&file(&want, 4), &want).unwrap().iter().map(|h| h.to_f32()).collect();
        assert_eq!(got, vec![0.0, 1.0, 2.0, 3.0]);
        // A format 1 file (f32 values, twice the bytes) is refused with the reason, never
        // read as f16.
        let mut old = file(&want, 8);
        old[..8].copy_from_slice(MAGIC_F32);
        assert!(parse(&old, &want).unwrap_err().contains("older upward"));
        assert!(parse(&file(&want, 3), &want).unwrap_err().contains("bytes of values"));
        let other = Header { tokens: vec![8], ..want.clone() };
        assert!(parse(&file(&other, 4), &want).unwrap_err().contains("another model"));
        assert!(parse(b"GGUF....", &want).is_err());
        assert!(parse(&file(&want, 4)[..12], &want).is_err());
    }
}
