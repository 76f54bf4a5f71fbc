//! Remote models: a catalogue entry with `api = "openai"` names a model served by an
//! OpenAI-compatible server (vLLM, llama.cpp's server, Ollama), and `--model
//! openai+URL#MODEL` names one without editing a file.

use serde::{Deserialize, Serialize};

/// Prefix of the ad hoc form of `--model`: `openai+http://host:8000/v1#model-id`.
pub const ADHOC_PREFIX: &str = "openai+";

/// The environment variable holding the API key of an ad hoc remote model.
pub const ADHOC_KEY_ENV: &str = "UPWARD_API_KEY";

/// How a server constrains a choice (the critique's judgements) to the candidates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Guided {
    /// Detected from the server's `/v1/models` (`owned_by`), else `json_schema`.
    #[default]
    #[serde(rename = "auto")]
    Auto,
    /// vLLM's `guided_choice`.
    #[serde(rename = "vllm")]
    Vllm,
    /// llama.cpp's server (and llama-cpp-python's): a GBNF `grammar`.
    #[serde(rename = "llama.cpp")]
    LlamaCpp,
    /// Ollama: `response_format` with a JSON schema (its `format`).
    #[serde(rename = "ollama")]
    Ollama,
    /// OpenAI's `response_format` with a JSON schema.
    #[serde(rename = "json_schema")]
    JsonSchema,
    /// No guided decoding: ask for a JSON answer and parse it.
    #[serde(rename = "none")]
    None,
}

impl Guided {
    /// The value as written in `models.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            Guided::Auto => "auto",
            Guided::Vllm => "vllm",
            Guided::LlamaCpp => "llama.cpp",
            Guided::Ollama => "ollama",
            Guided::JsonSchema => "json_schema",
            Guided::None => "none",
        }
    }

    /// Parses a `guided` value.
    pub fn parse(s: &str) -> Option<Guided> {
        [
            Guided::Auto,
            Guided::Vllm,
            Guided::LlamaCpp,
            Guided::Ollama,
            Guided::JsonSchema,
            Guided::None,
        ]
        .into_iter()
        .find(|g| g.as_str() == s)
    }
}

/// Where a remote model is served and how to talk to it. Holds the NAME of the
/// environment variable with the API key, never the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Remote {
    /// The server's API root, e.g. `http://gpu-box:8000/v1` (no trailing `/`).
    pub base_url: String,
    /// The server's model id, e.g. `Qwen/Qwen2.5-32B-Instruct`.
    pub model: String,
    /// Environment variable holding the API key, if the server needs one.
    pub api_key_env: Option<String>,
    /// How choices are constrained.
    pub guided: Guided,
}

/// Checks a base URL: `http://` or `https://`, a host, no credentials, no query; returns
/// it without a trailing `/`.
pub fn check_base_url(url: &str) -> Result<String, String> {
    let url = url.trim();
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| format!("`base_url` must start with http:// or https://, got `{url}`"))?;
    let host = rest.split('/').next().unwrap_or("");
    if host.is_empty() {
        return Err(format!("`base_url` has no host: `{url}`"));
    }
    if host.contains('@') {
        return Err(
            "`base_url` must not hold credentials; put the key in an environment variable named by `api_key_env`"
                .into(),
        );
    }
    if rest.contains(['?', '#', ' ']) {
        return Err(format!(
            "`base_url` must be a plain URL (no query, fragment or space): `{url}`"
        ));
    }
    Ok(url.trim_end_matches('/').to_string())
}

/// Parses the ad hoc form `openai+URL#MODEL` (e.g.
/// `openai+http://localhost:8000/v1#Qwen/Qwen2.5-7B-Instruct`); `None` when `s` does
/// not use it. The key, if any, comes from [`ADHOC_KEY_ENV`].
pub fn parse_adhoc(s: &str) -> Option<Result<Remote, String>> {
    let rest = s.strip_prefix(ADHOC_PREFIX)?;
    let Some((url, model)) = rest.rsplit_once('#') else {
        return Some(Err(format!(
            "`{s}`: the model id is missing; write {ADHOC_PREFIX}URL#MODEL, e.g. {ADHOC_PREFIX}http://localhost:8000/v1#Qwen/Qwen2.5-7B-Instruct"
        )));
    };
    let model = model.trim();
    if model.is_empty() {
        return Some(Err(format!("`{s}`: the model id after `#` is empty")));
    }
    Some(check_base_url(url).map(|base_url| Remote {
        base_url,
        model: model.to_string(),
        api_key_env: Some(ADHOC_KEY_ENV.to_string()),
        guided: Guided::Auto,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adhoc_form_parses_and_rejects_mistakes() {
        let r = parse_adhoc("openai+http://localhost:8000/v1/#Qwen/Qwen2.5-7B").unwrap().unwrap();
        assert_eq!(r.base_url, "http://localhost:8000/v1");
        assert_eq!(r.model, "Qwen/Qwen2.5-7B");
        assert_eq!(r.guided, Guided::Auto);
        assert!(parse_adhoc("qwen2.5-1.5b").is_none());
        assert!(parse_adhoc("openai+http://h:1/v1").unwrap().unwrap_err().contains("model id"));
        assert!(parse_adhoc("openai+ftp://h/v1#m").unwrap().unwrap_err().contains("http://"));
        let e = parse_adhoc("openai+http://u:secret@h/v1#m").unwrap().unwrap_err();
        assert!(e.contains("credentials") && !e.contains("secret"), "{e}");
    }

    #[test]
    fn guided_names_round_trip() {
        for g in ["auto", "vllm", "llama.cpp", "ollama", "json_schema", "none"] {
            assert_eq!(Guided::parse(g).unwrap().as_str(), g);
        }
        assert!(Guided::parse("xgrammar").is_none());
    }

    const REMOTE: &str = r#"
default = "team"
[[models]]
name = "team"
api = "openai"
base_url = "http://gpu-box:8000/v1/"
model = "Qwen/Qwen2.5-32B-Instruct"
api_key_env = "UPWARD_API_KEY"
"#;

    fn err(text: &str) -> String {
        crate::catalogue::Catalogue::parse(text, "t.toml", None).unwrap_err().to_string()
    }

    #[test]
    fn a_remote_entry_needs_only_its_server() {
        let cat = crate::catalogue::Catalogue::parse(REMOTE, "t.toml", None).unwrap();
        let e = cat.default_entry();
        let r = e.remote.as_ref().unwrap();
        assert_eq!(r.base_url, "http://gpu-box:8000/v1");
        assert_eq!(r.model, "Qwen/Qwen2.5-32B-Instruct");
        assert_eq!(r.api_key_env.as_deref(), Some("UPWARD_API_KEY"));
        assert_eq!((r.guided, e.context_length, e.judge), (Guided::Auto, 0, None));
        assert!(e.sources.is_empty() && e.is_remote());
        let with = REMOTE.replace(
            "api_key_env",
            "guided = \"llama.cpp\"\ncontext_length = 8192\njudge = true\napi_key_env",
        );
        let cat = crate::catalogue::Catalogue::parse(&with, "t.toml", None).unwrap();
        let e = cat.default_entry();
        assert_eq!(e.remote.as_ref().unwrap().guided, Guided::LlamaCpp);
        assert_eq!((e.context_length, e.judge), (8192, Some(true)));
    }

    #[test]
    fn remote_entry_mistakes_point_at_their_line() {
        let e = err(&REMOTE.replace("api = \"openai\"", "api = \"anthropic\""));
        assert!(e.starts_with("t.toml:5:") && e.contains("only one is `openai`"), "{e}");
        let e = err(&REMOTE.replace("model = ", "file = \"a.gguf\"\nmodel = "));
        assert!(e.starts_with("t.toml:7:") && e.contains("`file` does not belong"), "{e}");
        let e = err(&REMOTE.replace("model = \"Qwen/Qwen2.5-32B-Instruct\"\n", ""));
        assert!(e.contains("needs `model`"), "{e}");
        let e = err(&REMOTE.replace("\"UPWARD_API_KEY\"", "\"sk-abc 123\""));
        assert!(e.starts_with("t.toml:8:") && e.contains("NAME of an environment variable"), "{e}");
        let e = err(&REMOTE.replace("api = \"openai\"\n", ""));
        assert!(e.contains("`base_url` belongs to a remote model"), "{e}");
        let e = err(&REMOTE.replace("api_key_env", "guided = \"outlines\"\napi_key_env"));
        assert!(e.contains("unknown `guided` `outlines`"), "{e}");
    }
}
