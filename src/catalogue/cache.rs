//! The model cache (`…/upward/models/<name>/<file>`) and atomic landing of downloads.
//!
//! A download is written to a hidden temporary file in the model's folder while its
//! SHA-256 is computed; only when the digest (and size) match is it flushed to disk and
//! renamed to its final name. A file under its final name is therefore always complete.

use super::{CatalogueError, Entry};
use sha2::{Digest, Sha256};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// Environment variable that replaces the cache folder (`$UPWARD_CACHE_DIR/models/...`).
pub const CACHE_DIR_ENV: &str = "UPWARD_CACHE_DIR";

/// Where downloaded models live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelCache {
    root: PathBuf,
}

impl ModelCache {
    /// A cache whose model folders live directly under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        ModelCache { root: root.into() }
    }

    /// `$UPWARD_CACHE_DIR/models`, else the platform cache folder
    /// (`~/.cache/upward/models` on Linux).
    pub fn from_env() -> Result<Self, CatalogueError> {
        if let Some(dir) = std::env::var_os(CACHE_DIR_ENV).filter(|d| !d.is_empty()) {
            return Ok(Self::new(PathBuf::from(dir).join("models")));
        }
        let dirs =
            directories::ProjectDirs::from("", "", "upward").ok_or(CatalogueError::NoCacheDir)?;
        Ok(Self::new(dirs.cache_dir().join("models")))
    }

    /// The folder holding all models.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The folder of one model.
    pub fn dir(&self, entry: &Entry) -> PathBuf {
        self.root.join(&entry.name)
    }

    /// Where the model's file is (or will be) stored.
    pub fn path(&self, entry: &Entry) -> PathBuf {
        self.dir(entry).join(&entry.file)
    }

    /// The cached file, when it has been downloaded.
    pub fn cached(&self, entry: &Entry) -> Option<PathBuf> {
        let p = self.path(entry);
        p.is_file().then_some(p)
    }

    /// Takes the pull lock of `entry` (an exclusive lock on its folder, created if needed),
    /// waiting while another process holds it. The kernel releases it when the holder
    /// exits, however it exits. `None` where folders cannot be locked.
    pub(crate) fn lock(&self, entry: &Entry) -> Option<std::fs::File> {
        let dir = self.dir(entry);
        std::fs::create_dir_all(&dir).ok()?;
        let f = std::fs::File::open(&dir).ok()?;
        f.lock().ok()?;
        Some(f)
    }

    /// Removes what interrupted pulls of `entry` left behind (partial files and pip work
    /// folders untouched for `min_age`); a pull in progress keeps touching its files.
    pub fn sweep_stale(&self, entry: &Entry, min_age: std::time::Duration) {
        let Ok(rd) = std::fs::read_dir(self.dir(entry)) else {
            return;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let leftover =
                (name.starts_with('.') && name.ends_with(".partial")) || name.starts_with(".pip-");
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age >= min_age);
            if leftover && old {
                let p = e.path();
                let _ =
                    if p.is_dir() { std::fs::remove_dir_all(&p) } else { std::fs::remove_file(&p) };
            }
        }
    }

    /// The digest recorded when the file was downloaded (`<file>.sha256`), if any.
    pub fn recorded_sha256(&self, entry: &Entry) -> Option<String> {
        let text = std::fs::read_to_string(sidecar(&self.path(entry))).ok()?;
        let hex = text.split_whitespace().next()?.to_ascii_lowercase();
        (hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit())).then_some(hex)
    }
}

/// Path of the file that records a cached model's SHA-256.
pub(crate) fn sidecar(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".sha256");
    path.with_file_name(name)
}

/// Why a landing was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LandError {
    #[error("checksum mismatch: expected sha256 {expected}, got {actual}")]
    Checksum { expected: String, actual: String },
    #[error("size mismatch: expected {expected} bytes, got {actual}")]
    Size { expected: u64, actual: u64 },
    #[error("the data is not a GGUF model file (it starts with {0:?})")]
    NotGguf(String),
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// A file being written into the cache: hashed as it is written, renamed into place only
/// after its checksum is confirmed. Dropping it deletes the partial file.
pub(crate) struct Landing {
    dest: PathBuf,
    tmp: tempfile::NamedTempFile,
    hasher: Sha256,
    written: u64,
    head: Vec<u8>,
    require_gguf: bool,
}

impl Landing {
    /// Starts writing a model file: like [`Landing::new`], and the data must start with
    /// the GGUF magic (an HTML error page from a proxy or mirror is refused).
    pub(crate) fn for_model(dest: &Path) -> io::Result<Self> {
        let mut l = Self::new(dest)?;
        l.require_gguf = true;
        Ok(l)
    }

    /// Starts writing `dest` (its folder is created).
    pub(crate) fn new(dest: &Path) -> io::Result<Self> {
        let dir = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let name = dest.file_name().unwrap_or_default().to_string_lossy();
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".partial")
            .tempfile_in(dir)?;
        Ok(Landing {
            dest: dest.to_path_buf(),
            tmp,
            hasher: Sha256::new(),
            written: 0,
            head: Vec::with_capacity(4),
            require_gguf: false,
        })
    }

    /// Copies all of `reader` in, calling `on_bytes` after each chunk.
    pub(crate) fn copy_from(
        &mut self,
        reader: &mut dyn Read,
        on_bytes: &dyn Fn(u64),
    ) -> io::Result<u64> {
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0u64;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => return Ok(total),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.write_all(&buf[..n])?;
            total += n as u64;
            on_bytes(n as u64);
        }
    }

    /// Checks the digest and size, then flushes and renames the file into place; records
    /// the digest beside it. Returns the SHA-256 (lower-case hex).
    pub(crate) fn finish(
        self,
        expected_sha256: Option<&str>,
        expected_size: Option<u64>,
    ) -> Result<String, LandError> {
        let Landing { dest, tmp, hasher, written, head, require_gguf } = self;
        if require_gguf && !crate::gguf::metadata::has_magic(&head) {
            return Err(LandError::NotGguf(String::from_utf8_lossy(&head).into_owned()));
        }
        let actual = hex(&hasher.finalize());
        if let Some(expected) = expected_sha256 {
            if !expected.eq_ignore_ascii_case(&actual) {
                return Err(LandError::Checksum {
                    expected: expected.to_ascii_lowercase(),
                    actual,
                });
            }
        }
        if let Some(expected) = expected_size {
            if expected != written {
                return Err(LandError::Size { expected, actual: written });
            }
        }
        tmp.as_file().sync_all()?;
        tmp.persist(&dest).map_err(|e| e.error)?;
        if let Some(dir) = dest.parent() {
            // Make the rename itself durable; not every platform can open a directory.
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
        let name = dest.file_name().unwrap_or_default().to_string_lossy();
        crate::text::write_atomic(&sidecar(&dest), format!("{actual}  {name}\n").as_bytes())?;
        Ok(actual)
    }
}

impl Write for Landing {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.tmp.write(buf)?;
        self.hasher.update(&buf[..n]);
        if self.head.len() < 4 {
            let take = (4 - self.head.len()).min(n);
            self.head.extend_from_slice(&buf[..take]);
        }
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tmp.flush()
    }
}

/// Lower-case hex of a digest.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 (lower-case hex) and size of a file, read in 1 MiB blocks.
pub fn sha256_file(path: &Path) -> io::Result<(String, u64)> {
    let mut f = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((hex(&hasher.finalize()), size))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELLO_SHA: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn landing_renames_only_after_checksum() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("m/x.gguf");
        let mut l = Landing::new(&dest).unwrap();
        l.copy_from(&mut &b"hel"[..], &|_| {}).unwrap();
        l.write_all(b"lo").unwrap();
        // While writing, nothing under the final name exists.
        assert!(!dest.exists());
        let sha = l.finish(Some(&HELLO_SHA.to_uppercase()), Some(5)).unwrap();
        assert_eq!(sha, HELLO_SHA);
        assert_eq!(std::fs::read(&dest).unwrap(), b"hello");
        assert_eq!(names(&dir.path().join("m")), ["x.gguf", "x.gguf.sha256"]);
        let cache = ModelCache::new(dir.path());
        let entry = crate::catalogue::Catalogue::builtin().get("smollm2-135m").unwrap().clone();
        assert!(cache.cached(&entry).is_none());
        assert_eq!(sha256_file(&dest).unwrap(), (HELLO_SHA.to_string(), 5));
    }

    #[test]
    fn stale_leftovers_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ModelCache::new(dir.path());
        let entry = crate::catalogue::Catalogue::builtin().get("smollm2-135m").unwrap().clone();
        let d = cache.dir(&entry);
        std::fs::create_dir_all(d.join(".pip-abc")).unwrap();
        std::fs::write(d.join(".m.gguf.x1.partial"), b"half").unwrap();
        std::fs::write(d.join("keep.txt"), b"mine").unwrap();
        cache.sweep_stale(&entry, std::time::Duration::from_secs(3600));
        assert_eq!(names(&d).len(), 3, "fresh leftovers may belong to a running pull");
        cache.sweep_stale(&entry, std::time::Duration::ZERO);
        assert_eq!(names(&d), ["keep.txt"]);
    }

    #[test]
    fn bad_checksum_or_size_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("x.gguf");
        let mut l = Landing::new(&dest).unwrap();
        l.write_all(b"hello").unwrap();
        let err = l.finish(Some(&"0".repeat(64)), None).unwrap_err();
        assert!(matches!(err, LandError::Checksum { .. }), "{err}");
        assert!(names(dir.path()).is_empty(), "{:?}", names(dir.path()));

        let mut l = Landing::new(&dest).unwrap();
        l.write_all(b"hello").unwrap();
        assert!(matches!(l.finish(None, Some(6)), Err(LandError::Size { expected: 6, actual: 5 })));
        assert!(names(dir.path()).is_empty());

        // A model file must be GGUF: an HTML page from a misconfigured mirror is refused.
        let mut l = Landing::for_model(&dest).unwrap();
        l.write_all(b"<html>").unwrap();
        assert!(matches!(l.finish(None, None), Err(LandError::NotGguf(_))));
        assert!(names(dir.path()).is_empty());
    }
}
