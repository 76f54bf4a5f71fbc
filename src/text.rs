//! CJK-aware text helpers shared by every module that shows or reads user text.

use std::path::Path;
use unicode_width::UnicodeWidthStr;

/// Terminal display width of `s` (CJK characters count two columns).
pub fn display_width(s: &str) -> usize {
    UnicodeWidthStr::width(s)
}

/// Cuts `s` to at most `max_cols` display columns on a character boundary, adding `…`
/// when something was cut.
pub fn truncate_to_width(s: &str, max_cols: usize) -> String {
    if display_width(s) <= max_cols {
        return s.to_string();
    }
    let mut out = String::new();
    let mut cols = 0;
    for c in s.chars() {
        let w = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
        if cols + w + 1 > max_cols {
            break;
        }
        cols += w;
        out.push(c);
    }
    out.push('…');
    out
}

/// Wraps `s` into lines of at most `width` display columns. English words are kept
/// whole where they fit; CJK text may break between any two characters.
pub fn wrap(s: &str, width: usize) -> Vec<String> {
    let width = width.max(8);
    let mut lines = Vec::new();
    for para in s.split('\n') {
        let mut line = String::new();
        let mut cols = 0;
        for word in split_breakable(para) {
            let w = display_width(word);
            if cols + w > width && !line.is_empty() {
                lines.push(line.trim_end().to_string());
                line = String::new();
                cols = 0;
                if word.trim().is_empty() {
                    continue;
                }
            }
            line.push_str(word);
            cols += w;
        }
        lines.push(line.trim_end().to_string());
    }
    lines
}

/// Splits text into units that may not be broken: runs of non-CJK non-space characters,
/// single CJK characters, and single spaces.
fn split_breakable(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in s.char_indices() {
        let breakable = c.is_whitespace() || crate::lang::is_cjk(c);
        if breakable {
            if let Some(st) = start.take() {
                out.push(&s[st..i]);
            }
            out.push(&s[i..i + c.len_utf8()]);
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(st) = start {
        out.push(&s[st..]);
    }
    out
}

/// Why a user-supplied text could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadTextError {
    /// The file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path given by the user.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The bytes are not UTF-8 text (binary file or another encoding).
    #[error("{path} is not UTF-8 text (invalid byte at offset {offset}); save it as UTF-8 and try again")]
    NotUtf8 {
        /// The path given by the user (or `-` for stdin).
        path: String,
        /// Offset of the first invalid byte.
        offset: usize,
    },
    /// The bytes contain NUL characters: almost certainly a binary file.
    #[error("{path} looks like a binary file, not text")]
    Binary {
        /// The path given by the user (or `-` for stdin).
        path: String,
    },
}

/// Decodes bytes supplied by the user as UTF-8 text (a leading BOM is dropped).
pub fn decode_user_text(bytes: &[u8], path: &str) -> Result<String, ReadTextError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if bytes.contains(&0) {
        return Err(ReadTextError::Binary { path: path.to_string() });
    }
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok(s.to_string()),
        Err(e) => Err(ReadTextError::NotUtf8 { path: path.to_string(), offset: e.valid_up_to() }),
    }
}

/// Reads a user text from a file, or from stdin when `path` is `-`.
pub fn read_user_text(path: &Path) -> Result<String, ReadTextError> {
    let shown = path.display().to_string();
    let bytes = if shown == "-" {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)
            .map_err(|source| ReadTextError::Io { path: shown.clone(), source })?;
        buf
    } else {
        std::fs::read(path).map_err(|source| ReadTextError::Io { path: shown.clone(), source })?
    };
    decode_user_text(&bytes, &shown)
}

/// Writes `contents` to `path` atomically: a temporary file in the same directory is
/// written, flushed to disk and renamed over the target.
pub fn write_atomic(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(contents)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn width_counts_cjk_double() {
        assert_eq!(display_width("abc"), 3);
        assert_eq!(display_width("感谢"), 4);
        assert_eq!(truncate_to_width("感谢领导的指导", 7), "感谢领…");
    }

    #[test]
    fn wraps_cjk_and_words() {
        let lines = wrap("hello wonderful world", 11);
        assert_eq!(lines, vec!["hello", "wonderful", "world"]);
        let lines = wrap("感谢您一直以来的指导", 8);
        assert!(lines.iter().all(|l| display_width(l) <= 8), "{lines:?}");
        assert_eq!(lines.concat(), "感谢您一直以来的指导");
    }

    #[test]
    fn rejects_binary_and_bad_utf8() {
        assert!(matches!(decode_user_text(b"ab\0cd", "f"), Err(ReadTextError::Binary { .. })));
        assert!(matches!(
            decode_user_text(b"ok \xff\xfe", "f"),
            Err(ReadTextError::NotUtf8 { offset: 3, .. })
        ));
        assert_eq!(decode_user_text("\u{feff}你好".as_bytes(), "f").unwrap(), "你好");
    }

    #[test]
    fn atomic_write_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a/b.txt");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
    }
}
