//! Private data on disk. The session database, the REPL history and the prompt caches hold
//! what a salesperson wrote about their boss, so the folders upward makes for them are
//! owner-only (`0700`) and so are their files (`0600`). See docs/data.md.
//!
//! A folder that already exists is tightened only when `tighten` says it is upward's own
//! (the platform default); a folder the user named (`--data-dir`, `UPWARD_DATA_DIR`,
//! `UPWARD_CACHE_DIR`) keeps the mode the user gave it, while the files upward writes
//! into it are still owner-only. On systems without Unix modes these are plain
//! `create_dir_all` and no-ops.

use std::path::Path;

/// Mode of private folders.
pub const DIR_MODE: u32 = 0o700;
/// Mode of private files.
pub const FILE_MODE: u32 = 0o600;

/// Creates `dir` owner-only if it is missing (its missing parents are made as usual);
/// an existing `dir` is set owner-only when `tighten`.
pub fn create_dir(dir: &Path, tighten: bool) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        if dir.is_dir() {
            if tighten {
                let mode = std::fs::metadata(dir)?.permissions().mode() & 0o777;
                if mode != DIR_MODE {
                    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(DIR_MODE))?;
                }
            }
            return Ok(());
        }
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        match std::fs::DirBuilder::new().mode(DIR_MODE).create(dir) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
            other => other,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tighten;
        std::fs::create_dir_all(dir)
    }
}

/// Makes an existing file owner-only (best effort: a file of another user is left alone).
pub fn restrict_file(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(m) = std::fs::symlink_metadata(path) {
            if m.is_file() && m.permissions().mode() & 0o777 != FILE_MODE {
                let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(FILE_MODE));
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// Options that create a file owner-only (for writing; add `create`, `truncate` as needed).
pub fn file_options() -> std::fs::OpenOptions {
    let mut o = std::fs::OpenOptions::new();
    o.write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(FILE_MODE);
    }
    o
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn folders_and_files_are_owner_only() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("a/b");
        create_dir(&d, false).unwrap();
        assert_eq!(mode(&d), 0o700);
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        create_dir(&d, false).unwrap();
        assert_eq!(mode(&d), 0o755, "a folder the user named keeps its mode");
        create_dir(&d, true).unwrap();
        assert_eq!(mode(&d), 0o700);
        let f = d.join("x");
        file_options().create(true).truncate(true).open(&f).unwrap();
        assert_eq!(mode(&f), 0o600);
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        restrict_file(&f);
        assert_eq!(mode(&f), 0o600);
    }
}
