//! Checking a cached model: SHA-256 against the catalogue (or the digest recorded at
//! download), size, and the GGUF header.

use super::cache::{sha256_file, ModelCache};
use super::{CatalogueError, Entry};
use serde::Serialize;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Where the expected checksum came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChecksumOrigin {
    /// The `sha256` of the catalogue entry.
    Catalogue,
    /// The digest recorded when the file was downloaded and checked (for Hugging Face
    /// files the hub's LFS SHA-256).
    Recorded,
    /// Nothing to compare with.
    None,
}

/// The result of checking one model file.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// The file checked.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// Expected size, when the catalogue knows it.
    pub expected_size: Option<u64>,
    /// Its SHA-256.
    pub sha256: String,
    /// The SHA-256 it should have, when known.
    pub expected_sha256: Option<String>,
    /// Where `expected_sha256` came from.
    pub checksum_origin: ChecksumOrigin,
    /// GGUF format version, when the file starts with the GGUF magic.
    pub gguf_version: Option<u32>,
}

impl VerifyReport {
    /// Whether the checksum matches (None when there is nothing to compare with).
    pub fn sha256_ok(&self) -> Option<bool> {
        self.expected_sha256.as_ref().map(|e| e.eq_ignore_ascii_case(&self.sha256))
    }

    /// Whether the size matches (None when unknown).
    pub fn size_ok(&self) -> Option<bool> {
        self.expected_size.map(|e| e == self.size)
    }

    /// Everything that could be checked passed.
    pub fn ok(&self) -> bool {
        self.gguf_version.is_some()
            && self.sha256_ok() != Some(false)
            && self.size_ok() != Some(false)
    }
}

/// Checks the cached file of `entry` (the cache from the environment).
pub fn verify(entry: &Entry) -> Result<VerifyReport, CatalogueError> {
    verify_in(entry, &ModelCache::from_env()?)
}

/// Checks the cached file of `entry` in `cache`.
pub fn verify_in(entry: &Entry, cache: &ModelCache) -> Result<VerifyReport, CatalogueError> {
    let path = cache
        .cached(entry)
        .ok_or_else(|| CatalogueError::NotCached { name: entry.name.clone() })?;
    let (expected, origin) = match (&entry.sha256, cache.recorded_sha256(entry)) {
        (Some(s), _) => (Some(s.clone()), ChecksumOrigin::Catalogue),
        (None, Some(r)) => (Some(r), ChecksumOrigin::Recorded),
        (None, None) => (None, ChecksumOrigin::None),
    };
    verify_file(&path, expected.as_deref(), entry.size).map(|mut r| {
        r.checksum_origin = origin;
        r
    })
}

/// Checks any file against an optional digest and size.
pub fn verify_file(
    path: &Path,
    expected_sha256: Option<&str>,
    expected_size: Option<u64>,
) -> Result<VerifyReport, CatalogueError> {
    let io = |source| CatalogueError::Io { path: path.to_path_buf(), source };
    let gguf_version = gguf_version(path).map_err(io)?;
    let (sha256, size) = sha256_file(path).map_err(io)?;
    Ok(VerifyReport {
        path: path.to_path_buf(),
        size,
        expected_size,
        sha256,
        expected_sha256: expected_sha256.map(str::to_ascii_lowercase),
        checksum_origin: if expected_sha256.is_some() {
            ChecksumOrigin::Catalogue
        } else {
            ChecksumOrigin::None
        },
        gguf_version,
    })
}

/// The GGUF version of a file, or None when it does not start with `GGUF`.
pub fn gguf_version(path: &Path) -> std::io::Result<Option<u32>> {
    let mut head = [0u8; 8];
    let mut f = std::fs::File::open(path)?;
    let mut got = 0;
    while got < head.len() {
        match f.read(&mut head[got..])? {
            0 => break,
            n => got += n,
        }
    }
    Ok(crate::gguf::metadata::version(&head[..got]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::Catalogue;

    #[test]
    fn reports_checksum_size_and_magic() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ModelCache::new(dir.path());
        let mut entry = Catalogue::builtin().get("smollm2-135m").unwrap().clone();
        assert!(matches!(verify_in(&entry, &cache), Err(CatalogueError::NotCached { .. })));

        let path = cache.path(&entry);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut bytes = b"GGUF\x03\x00\x00\x00".to_vec();
        bytes.extend_from_slice(&[7u8; 100]);
        std::fs::write(&path, &bytes).unwrap();
        let r = verify_in(&entry, &cache).unwrap();
        assert_eq!(r.gguf_version, Some(3));
        assert_eq!(r.size, 108);
        assert_eq!(r.checksum_origin, ChecksumOrigin::Catalogue);
        assert_eq!(r.sha256_ok(), Some(false));
        assert_eq!(r.size_ok(), Some(false));
        assert!(!r.ok());

        // Without a catalogue digest, the one recorded at download is used.
        entry.sha256 = None;
        entry.size = None;
        let (sha, _) = sha256_file(&path).unwrap();
        std::fs::write(super::super::cache::sidecar(&path), format!("{sha}  x\n")).unwrap();
        let r = verify_in(&entry, &cache).unwrap();
        assert_eq!(r.checksum_origin, ChecksumOrigin::Recorded);
        assert!(r.ok());

        std::fs::write(&path, b"not a model at all").unwrap();
        let r = verify_file(&path, None, None).unwrap();
        assert_eq!(r.gguf_version, None);
        assert!(!r.ok());
    }
}
