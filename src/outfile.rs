//! Writing a file the user named on the command line (`sessions export -o FILE`,
//! `progress --html FILE`) without replacing what should not be replaced.
//!
//! - `-` is standard output.
//! - A regular file (or a new one) is written atomically: a temporary file in the same
//!   folder, flushed and renamed over the target. An existing file keeps its permissions;
//!   a new one is created owner-only (`0600`), since exports hold private coaching notes.
//! - Devices, FIFOs, sockets and anything under `/dev` or `/proc` (`/dev/stdout`,
//!   `/dev/fd/3`) are written through, in place, never replaced.
//! - A symbolic link is followed to its target, which is then written as above. A link
//!   to nothing is refused: creating a file wherever a link points is how a link planted
//!   in a shared folder redirects a write.
//! - A missing folder is an error, not created: a typo in the path should not invent
//!   folders.
//! - Every write error (a full disk, `/dev/full`) is reported.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Why the output could not be written. Each message names the path.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The folder the file would go into does not exist.
    #[error("cannot write {path}: the folder {folder} does not exist (create it first)")]
    NoFolder {
        /// The path given.
        path: PathBuf,
        /// Its folder.
        folder: PathBuf,
    },
    /// The path is a folder.
    #[error("cannot write {0}: it is a folder; name a file")]
    IsFolder(PathBuf),
    /// A symbolic link that points nowhere.
    #[error("refusing to write {link}: it is a symbolic link to {target}, which does not exist; name the target itself")]
    DanglingLink {
        /// The link given.
        link: PathBuf,
        /// Where it points.
        target: PathBuf,
    },
    /// Too many links in a row (a loop).
    #[error("cannot write {0}: too many levels of symbolic links")]
    LinkLoop(PathBuf),
    /// Any other I/O error, such as a full disk.
    #[error("cannot write {path}: {cause}")]
    Io {
        /// The file being written.
        path: PathBuf,
        /// What the system said.
        cause: std::io::Error,
    },
}

/// Where the bytes went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Written {
    /// To standard output (`-`).
    Stdout,
    /// Into a device, FIFO or `/dev` path, in place.
    Through(PathBuf),
    /// Into a regular file (created or atomically replaced); the path after links.
    File(PathBuf),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> OutputError + '_ {
    move |cause| OutputError::Io { path: path.to_path_buf(), cause }
}

/// True for paths that name a process's streams or devices: written through, whatever
/// they resolve to.
fn is_special(p: &Path) -> bool {
    p.starts_with("/dev") || p.starts_with("/proc")
}

/// Follows symbolic links from `path` (at most 40), stopping early at a special path.
/// Returns the final path and whether any link was followed.
fn resolve(path: &Path) -> Result<(PathBuf, bool), OutputError> {
    let mut cur = path.to_path_buf();
    let mut followed = false;
    for _ in 0..40 {
        if is_special(&cur) {
            return Ok((cur, followed));
        }
        match std::fs::symlink_metadata(&cur) {
            Ok(m) if m.file_type().is_symlink() => {
                let target = std::fs::read_link(&cur).map_err(io_err(&cur))?;
                cur = match cur.parent() {
                    Some(dir) if target.is_relative() => dir.join(target),
                    _ => target,
                };
                followed = true;
            }
            _ => return Ok((cur, followed)),
        }
    }
    Err(OutputError::LinkLoop(path.to_path_buf()))
}

/// Writes `bytes` to `path` as the module docs describe.
pub fn write_output(path: &Path, bytes: &[u8]) -> Result<Written, OutputError> {
    if path.as_os_str() == "-" {
        let mut out = std::io::stdout().lock();
        out.write_all(bytes).and_then(|()| out.flush()).map_err(io_err(Path::new("stdout")))?;
        return Ok(Written::Stdout);
    }
    let (target, followed) = resolve(path)?;
    if is_special(&target) {
        write_through(&target, bytes)?;
        return Ok(Written::Through(target));
    }
    match std::fs::metadata(&target) {
        Ok(m) if m.is_dir() => Err(OutputError::IsFolder(path.to_path_buf())),
        Ok(m) if m.is_file() => {
            replace(&target, bytes, Some(m.permissions()))?;
            Ok(Written::File(target))
        }
        Ok(_) => {
            write_through(&target, bytes)?;
            Ok(Written::Through(target))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if followed {
                return Err(OutputError::DanglingLink { link: path.to_path_buf(), target });
            }
            replace(&target, bytes, None)?;
            Ok(Written::File(target))
        }
        Err(cause) => Err(OutputError::Io { path: target, cause }),
    }
}

/// Writes into an existing device, FIFO or stream in place (appending, so a redirected
/// standard output keeps what was already written to it).
fn write_through(path: &Path, bytes: &[u8]) -> Result<(), OutputError> {
    let mut f = std::fs::OpenOptions::new().append(true).open(path).map_err(io_err(path))?;
    f.write_all(bytes).and_then(|()| f.flush()).map_err(io_err(path))
}

/// Writes a regular file atomically: temporary file, flush, rename.
fn replace(
    path: &Path,
    bytes: &[u8],
    keep: Option<std::fs::Permissions>,
) -> Result<(), OutputError> {
    let folder = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !folder.is_dir() {
        return Err(OutputError::NoFolder {
            path: path.to_path_buf(),
            folder: folder.to_path_buf(),
        });
    }
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(folder)
        .map_err(io_err(path))?;
    tmp.write_all(bytes).map_err(io_err(path))?;
    if let Some(p) = keep {
        tmp.as_file().set_permissions(p).map_err(io_err(path))?;
    }
    tmp.as_file().sync_all().map_err(io_err(path))?;
    tmp.persist(path).map_err(|e| OutputError::Io { path: path.to_path_buf(), cause: e.error })?;
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn regular_files_links_and_folders() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.md");
        assert_eq!(write_output(&f, b"one").unwrap(), Written::File(f.clone()));
        assert_eq!(std::fs::metadata(&f).unwrap().permissions().mode() & 0o777, 0o600);
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640)).unwrap();
        write_output(&f, b"two").unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"two");
        assert_eq!(std::fs::metadata(&f).unwrap().permissions().mode() & 0o777, 0o640);
        let link = dir.path().join("link.md");
        std::os::unix::fs::symlink("a.md", &link).unwrap();
        assert_eq!(write_output(&link, b"three").unwrap(), Written::File(f.clone()));
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read(&f).unwrap(), b"three");
        let dangling = dir.path().join("dangling");
        std::os::unix::fs::symlink("nowhere/x", &dangling).unwrap();
        assert!(matches!(write_output(&dangling, b"x"), Err(OutputError::DanglingLink { .. })));
        let missing = dir.path().join("no/such/x.md");
        assert!(matches!(write_output(&missing, b"x"), Err(OutputError::NoFolder { .. })));
        assert!(!dir.path().join("no").exists());
        assert!(matches!(write_output(dir.path(), b"x"), Err(OutputError::IsFolder(_))));
        let e = write_output(Path::new("/dev/full"), b"x").unwrap_err();
        assert!(e.to_string().contains("/dev/full"), "{e}");
    }
}
