//! Prompt templates (minijinja), embedded in the binary from `prompts/`.
//!
//! A template is named by its file name, e.g. `kb_context.zh.jinja`. When the environment
//! variable `UPWARD_PROMPTS_DIR` names a directory, a file of the same name there takes
//! precedence over the embedded one (so a single prompt can be tried out without a
//! rebuild); templates it lacks still come from the binary.

use include_dir::{include_dir, Dir};
use minijinja::Environment;
use std::path::PathBuf;

/// The system prompt of `upward chat` when none is given. Models' built-in defaults vary
/// in quality (SmolLM2's sends greedy decoding off on a tangent); this one is neutral.
pub const DEFAULT_SYSTEM_PROMPT: &str =
    "You are a concise, helpful assistant. Answer in the language of the question.";

/// The environment variable naming a directory of prompt overrides.
pub const PROMPTS_DIR_ENV: &str = "UPWARD_PROMPTS_DIR";

static BUILTIN: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/prompts");

/// Why a prompt could not be loaded or rendered.
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    /// No such template, neither in the override directory nor built in.
    #[error("no prompt template named `{name}` (built in: {known})")]
    NotFound {
        /// The name asked for.
        name: String,
        /// The built-in template names.
        known: String,
    },
    /// The override file exists but could not be read.
    #[error("cannot read prompt override {path}: {message} (fix it or unset {PROMPTS_DIR_ENV})")]
    Read {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The template failed to parse or render.
    #[error("prompt template `{name}` failed: {source:#}")]
    Render {
        /// The template name.
        name: String,
        /// minijinja's error (with line).
        source: minijinja::Error,
    },
}

/// The built-in text of a template, ignoring any override.
pub fn builtin(name: &str) -> Option<&'static str> {
    BUILTIN.get_file(name).and_then(|f| f.contents_utf8())
}

/// Names of the built-in templates.
pub fn builtin_names() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = BUILTIN.files().filter_map(|f| f.path().to_str()).collect();
    v.sort_unstable();
    v
}

/// Loads a template's source: the override in `UPWARD_PROMPTS_DIR` if present, else the
/// built-in one.
pub fn load(name: &str) -> Result<String, PromptError> {
    load_with(name, std::env::var_os(PROMPTS_DIR_ENV).map(PathBuf::from))
}

/// [`load`] with an explicit override directory.
pub fn load_with(name: &str, dir: Option<PathBuf>) -> Result<String, PromptError> {
    if let Some(dir) = dir.filter(|d| !d.as_os_str().is_empty()) {
        // Names are plain file names: never let one reach outside the directory.
        if !name.contains(['/', '\\']) && name != ".." {
            let path = dir.join(name);
            if path.is_file() {
                let bytes = std::fs::read(&path).map_err(|e| PromptError::Read {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
                return crate::text::decode_user_text(&bytes, &path.display().to_string())
                    .map_err(|e| PromptError::Read { path, message: e.to_string() });
            }
        }
    }
    builtin(name).map(str::to_string).ok_or_else(|| PromptError::NotFound {
        name: name.to_string(),
        known: builtin_names().join(", "),
    })
}

/// A minijinja environment that loads templates by name through [`load`], with Python
/// string/list/dict methods (`.strip()`, `.items()`, ...), kept trailing newlines off and
/// strict undefined variables, so a typo in a template is an error, not silent blank text.
pub fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    minijinja_contrib::add_to_environment(&mut env);
    env.set_loader(|name| match load(name) {
        Ok(s) => Ok(Some(s)),
        Err(PromptError::NotFound { .. }) => Ok(None),
        Err(e) => Err(minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, e.to_string())),
    });
    env
}

/// Renders template `name` with `ctx` in a fresh [`environment`].
pub fn render<S: serde::Serialize>(name: &str, ctx: S) -> Result<String, PromptError> {
    let env = environment();
    let tmpl = env.get_template(name).map_err(|source| match source.kind() {
        minijinja::ErrorKind::TemplateNotFound => {
            PromptError::NotFound { name: name.to_string(), known: builtin_names().join(", ") }
        }
        _ => PromptError::Render { name: name.to_string(), source },
    })?;
    tmpl.render(ctx).map_err(|source| PromptError::Render { name: name.to_string(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_builtin_and_override() {
        assert!(builtin_names().contains(&"kb_context.zh.jinja"));
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("kb_context.en.jinja"), "override {{ x }}").unwrap();
        let over = load_with("kb_context.en.jinja", Some(dir.path().to_path_buf())).unwrap();
        assert_eq!(over, "override {{ x }}");
        // Missing from the override dir: falls back to the built-in one.
        let zh = load_with("kb_context.zh.jinja", Some(dir.path().to_path_buf())).unwrap();
        assert_eq!(zh, builtin("kb_context.zh.jinja").unwrap());
        let err = load_with("nope.jinja", None).unwrap_err();
        assert!(err.to_string().contains("kb_context.zh.jinja"), "{err}");
    }

    #[test]
    fn strict_undefined_is_an_error() {
        let env = environment();
        assert!(env.render_str("{{ missing }}", ()).is_err());
        assert_eq!(env.render_str("{{ ' a '.strip() }}", ()).unwrap(), "a");
    }
}
