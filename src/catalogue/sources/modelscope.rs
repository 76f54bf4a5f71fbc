//! ModelScope (modelscope.cn): the model hub that users in mainland China reach without a
//! mirror. The Qwen entries list it after Hugging Face, so the default model can still be
//! fetched where Hugging Face is blocked, before the catalogue falls back to another model.
//!
//! - The file: `{endpoint}/models/{repo}/resolve/{revision}/{file}` (redirects followed).
//! - The endpoint: `MODELSCOPE_ENDPOINT` (a full URL, for a mirror or a proxy), else
//!   `MODELSCOPE_DOMAIN` (a host name, as the ModelScope SDK reads it), else
//!   `https://www.modelscope.cn`.
//! - The checksum: the repository's file list
//!   (`{endpoint}/api/v1/models/{repo}/repo/files?Revision=…&Recursive=true`) publishes
//!   each file's SHA-256 and size. The download is checked against the catalogue's
//!   `sha256` when it has one (the two must agree), else against the listed one; a file
//!   with no known digest is refused.

use super::hf::{connect_timeout, host_of};
use super::{progress_bar, Ctx};
use std::time::Duration;

/// A full URL replacing the ModelScope endpoint, e.g. a mirror.
pub const ENDPOINT_ENV: &str = "MODELSCOPE_ENDPOINT";
/// A host name replacing `www.modelscope.cn` (the ModelScope SDK's own variable).
pub const DOMAIN_ENV: &str = "MODELSCOPE_DOMAIN";
/// The public hub.
pub const DEFAULT_ENDPOINT: &str = "https://www.modelscope.cn";

/// The endpoint to use: `explicit` (from the pull options), else the environment (read
/// through `var`), else the public hub. No trailing slash.
pub(crate) fn endpoint(
    explicit: Option<&str>,
    var: impl Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let set = |v: Option<String>| v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let url = match (explicit.map(str::to_string), set(var(ENDPOINT_ENV)), set(var(DOMAIN_ENV))) {
        (Some(e), _, _) | (None, Some(e), _) => e,
        (None, None, Some(domain)) if domain.contains("://") => domain,
        (None, None, Some(domain)) => format!("https://{domain}"),
        (None, None, None) => DEFAULT_ENDPOINT.to_string(),
    };
    let url = url.trim_end_matches('/').to_string();
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(r) if !r.is_empty() && !r.contains(char::is_whitespace) => Ok(url),
        _ => Err(format!(
            "the ModelScope endpoint `{url}` is not an http(s) URL; set {ENDPOINT_ENV} to one \
             such as {DEFAULT_ENDPOINT}"
        )),
    }
}

/// Percent-encodes one URL path segment or query value (RFC 3986 unreserved kept).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Encodes a `/`-separated path segment by segment.
fn encode_path(p: &str) -> String {
    p.split('/').map(encode).collect::<Vec<_>>().join("/")
}

/// The download URL of `file` in `repo` at `revision`.
pub(crate) fn file_url(endpoint: &str, repo: &str, revision: &str, file: &str) -> String {
    format!(
        "{endpoint}/models/{}/resolve/{}/{}",
        encode_path(repo),
        encode(revision),
        encode_path(file)
    )
}

/// The URL of the repository's file list (with each file's SHA-256 and size).
pub(crate) fn files_url(endpoint: &str, repo: &str, revision: &str) -> String {
    format!(
        "{endpoint}/api/v1/models/{}/repo/files?Revision={}&Recursive=true",
        encode_path(repo),
        encode(revision)
    )
}

/// What the file list says about one file.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Listed {
    /// Lower-case hex SHA-256, when published.
    pub sha256: Option<String>,
    /// Size in bytes, when published.
    pub size: Option<u64>,
}

/// Finds `file` in a file-list answer (`{"Data": {"Files": [{"Path", "Sha256", "Size"}]}}`).
/// `Ok(None)`: the list is well-formed but lacks the file.
pub(crate) fn parse_listing(body: &str, file: &str) -> Result<Option<Listed>, String> {
    let v: serde_json::Value = serde_json::from_str(body)
        .map_err(|e| format!("the file list is not JSON ({e}); is the endpoint ModelScope?"))?;
    let files =
        v.get("Data").and_then(|d| d.get("Files")).and_then(|f| f.as_array()).ok_or_else(|| {
            let msg = v.get("Message").and_then(|m| m.as_str()).unwrap_or("no Data.Files");
            format!("the file list has no files ({msg})")
        })?;
    let Some(f) = files.iter().find(|f| f.get("Path").and_then(|p| p.as_str()) == Some(file))
    else {
        return Ok(None);
    };
    let sha256 = f
        .get("Sha256")
        .and_then(|s| s.as_str())
        .map(str::to_ascii_lowercase)
        .filter(|s| s.len() == 64 && s.chars().all(|c| c.is_ascii_hexdigit()));
    let size = f.get("Size").and_then(|s| s.as_u64());
    Ok(Some(Listed { sha256, size }))
}

pub(crate) fn fetch(repo: &str, file: &str, revision: &str, ctx: &Ctx) -> Result<String, String> {
    let endpoint = endpoint(ctx.opts.modelscope_endpoint.as_deref(), |k| std::env::var(k).ok())?;
    let timeout = connect_timeout(ctx);
    let agent = ureq::AgentBuilder::new()
        .try_proxy_from_env(true)
        .timeout_connect(timeout)
        .timeout_read(timeout * 6)
        .redirects(10)
        .user_agent(&format!("upward/{}", env!("CARGO_PKG_VERSION")))
        .build();

    // 1. The published digest (unless the catalogue pins one).
    let catalogue_sha = ctx.entry.sha256.as_deref();
    let mut listed = Listed { sha256: None, size: None };
    let list_url = files_url(&endpoint, repo, revision);
    let listing = agent
        .get(&list_url)
        .call()
        .map_err(|e| describe(e, &list_url, repo, timeout))
        .and_then(|r| r.into_string().map_err(|e| format!("cannot read {list_url}: {e}")));
    match listing.and_then(|body| parse_listing(&body, file)) {
        Ok(Some(l)) => listed = l,
        Ok(None) => {
            return Err(format!(
                "not found on {}: {repo} has no file {file} at revision {revision}",
                host_of(&endpoint)
            ))
        }
        // Without a pinned digest, the list is the only checksum: give up.
        Err(e) if catalogue_sha.is_none() => return Err(e),
        Err(e) => ctx.opts.say(&format!(
            "upward: note: ModelScope file list unavailable ({e}); checking against the catalogue's sha256"
        )),
    }
    if let (Some(cat), Some(pub_sha)) = (catalogue_sha, listed.sha256.as_deref()) {
        if cat != pub_sha {
            return Err(format!(
                "ModelScope lists sha256 {pub_sha} for {file}, the catalogue expects {cat}: the \
                 catalogue is out of date or the endpoint serves another file"
            ));
        }
    }
    let Some(expected) = catalogue_sha.map(str::to_string).or(listed.sha256) else {
        return Err(format!(
            "{} publishes no sha256 for {file} and the catalogue has none: refusing an unchecked \
             download",
            host_of(&endpoint)
        ));
    };

    // 2. The file.
    let url = file_url(&endpoint, repo, revision, file);
    let resp = agent.get(&url).call().map_err(|e| describe(e, &url, repo, timeout))?;
    let total = resp
        .header("content-length")
        .and_then(|s| s.trim().parse::<u64>().ok())
        .or(listed.size)
        .or(ctx.entry.size);
    let mut landing = ctx.landing()?;
    let pb = progress_bar(ctx.opts.progress, total, format!("downloading {file} (ModelScope)"));
    let mut reader = resp.into_reader();
    let copied = landing.copy_from(&mut reader, &|n| pb.inc(n));
    pb.finish_and_clear();
    copied.map_err(|e| format!("download from {} interrupted: {e}", host_of(&url)))?;
    ctx.finish(landing, Some(&expected))
}

/// One line about a failed request to ModelScope.
fn describe(err: ureq::Error, url: &str, repo: &str, timeout: Duration) -> String {
    let host = host_of(url);
    let bare = host.split("://").nth(1).unwrap_or(host);
    match err {
        ureq::Error::Status(code @ (401 | 403), _) => format!(
            "{host} refused access (HTTP {code}) to {repo}: the repository may be private or \
             need a licence accepted on the website"
        ),
        ureq::Error::Status(404, _) => {
            format!(
                "not found on {host} (HTTP 404): {url} (the catalogue entry may be out of date)"
            )
        }
        ureq::Error::Status(code, _) => format!("{host} answered HTTP {code} for {url}"),
        ureq::Error::Transport(t) => {
            let text = t.to_string();
            let cause = std::error::Error::source(&t)
                .map(|e| e.to_string())
                .or_else(|| t.message().map(String::from))
                .unwrap_or_else(|| text.clone());
            match t.kind() {
                ureq::ErrorKind::Dns => {
                    format!("cannot resolve {bare} (offline, or its DNS is blocked)")
                }
                ureq::ErrorKind::ConnectionFailed if text.contains("timed out") => format!(
                    "{bare} did not answer within {}s (unreachable from here?)",
                    timeout.as_secs_f64()
                ),
                ureq::ErrorKind::ConnectionFailed => format!("cannot connect to {bare}: {cause}"),
                ureq::ErrorKind::Io if text.contains("timed out") => format!(
                    "{bare} stopped answering (timed out after {}s)",
                    (timeout * 6).as_secs_f64()
                ),
                _ => format!("request to {bare} failed: {text}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
    }

    #[test]
    fn endpoint_from_options_environment_or_default() {
        assert_eq!(endpoint(None, env(&[])).unwrap(), "https://www.modelscope.cn");
        let mirror = [(ENDPOINT_ENV, " https://ms.example.cn/ ")];
        assert_eq!(endpoint(None, env(&mirror)).unwrap(), "https://ms.example.cn");
        // The SDK's host-name variable, when no full endpoint is set.
        let domain = [(DOMAIN_ENV, "modelscope.cn")];
        assert_eq!(endpoint(None, env(&domain)).unwrap(), "https://modelscope.cn");
        let both = [(DOMAIN_ENV, "modelscope.cn"), (ENDPOINT_ENV, "http://127.0.0.1:8080")];
        assert_eq!(endpoint(None, env(&both)).unwrap(), "http://127.0.0.1:8080");
        // Pull options win over the environment; empty values are ignored.
        assert_eq!(endpoint(Some("http://10.0.0.1"), env(&both)).unwrap(), "http://10.0.0.1");
        let empty = [(ENDPOINT_ENV, "  ")];
        assert_eq!(endpoint(None, env(&empty)).unwrap(), DEFAULT_ENDPOINT);
        // Not a URL: a clear error naming the variable.
        let bad = [(ENDPOINT_ENV, "ftp://x")];
        let err = endpoint(None, env(&bad)).unwrap_err();
        assert!(err.contains("MODELSCOPE_ENDPOINT") && err.contains("ftp://x"), "{err}");
        assert!(endpoint(None, env(&[(ENDPOINT_ENV, "https://")])).is_err());
    }

    #[test]
    fn builds_resolve_and_file_list_urls() {
        assert_eq!(
            file_url(
                DEFAULT_ENDPOINT,
                "Qwen/Qwen2.5-1.5B-Instruct-GGUF",
                "master",
                "qwen2.5-1.5b-instruct-q4_k_m.gguf"
            ),
            "https://www.modelscope.cn/models/Qwen/Qwen2.5-1.5B-Instruct-GGUF/resolve/master/\
             qwen2.5-1.5b-instruct-q4_k_m.gguf"
        );
        // Sub-folders keep their slashes; odd characters are escaped.
        assert_eq!(
            file_url("http://h:1", "o/r", "v1.0", "sub dir/a+b.gguf"),
            "http://h:1/models/o/r/resolve/v1.0/sub%20dir/a%2Bb.gguf"
        );
        assert_eq!(
            files_url(DEFAULT_ENDPOINT, "Qwen/Qwen3-1.7B-GGUF", "master"),
            "https://www.modelscope.cn/api/v1/models/Qwen/Qwen3-1.7B-GGUF/repo/files?\
             Revision=master&Recursive=true"
        );
        assert_eq!(files_url("http://h", "o/r", "a b&c"), {
            "http://h/api/v1/models/o/r/repo/files?Revision=a%20b%26c&Recursive=true"
        });
    }

    #[test]
    fn catalogue_source_defaults_to_master_and_rejects_paths_outside_the_repo() {
        use crate::catalogue::{Catalogue, Source};
        let text = |src: &str| {
            format!(
                "[[models]]\nname = \"a\"\narchitecture = \"qwen2\"\nquantization = \"Q4_0\"\n\
                 context_length = 64\nlanguages = [\"zh\"]\nlicence = \"MIT\"\nfile = \"a.gguf\"\n\
                 [[models.sources]]\nkind = \"modelscope\"\nrepo = \"Qwen/A-GGUF\"\n{src}\n"
            )
        };
        let cat = Catalogue::parse(&text("file = \"a.gguf\""), "t.toml", None).unwrap();
        let src = &cat.get("a").unwrap().sources[0];
        assert_eq!(
            src,
            &Source::Modelscope {
                repo: "Qwen/A-GGUF".into(),
                file: "a.gguf".into(),
                revision: "master".into()
            }
        );
        assert_eq!(src.label(), "ModelScope Qwen/A-GGUF (a.gguf)");
        for bad in ["file = \"../a.gguf\"", "file = \"/etc/a.gguf\"", "path = \"a.gguf\""] {
            let err = Catalogue::parse(&text(bad), "t.toml", None).unwrap_err().to_string();
            assert!(err.starts_with("t.toml:10:"), "{bad}: {err}");
        }
    }

    #[test]
    fn reads_the_published_digest_from_the_file_list() {
        let sha = "AB".repeat(32);
        let body = format!(
            r#"{{"Code":200,"Data":{{"Files":[
                {{"Path":"README.md","Type":"blob","Size":10,"Sha256":"{}"}},
                {{"Path":"m.gguf","Type":"blob","Size":1234,"Sha256":"{sha}"}}]}},"Success":true}}"#,
            "0".repeat(64)
        );
        let got = parse_listing(&body, "m.gguf").unwrap().unwrap();
        assert_eq!(got, Listed { sha256: Some(sha.to_ascii_lowercase()), size: Some(1234) });
        assert_eq!(parse_listing(&body, "other.gguf").unwrap(), None);
        // A malformed digest is no digest.
        let odd = r#"{"Data":{"Files":[{"Path":"m.gguf","Sha256":"xyz"}]}}"#;
        assert_eq!(parse_listing(odd, "m.gguf").unwrap().unwrap().sha256, None);
        // Not ModelScope's answer at all.
        assert!(parse_listing("<html>", "m.gguf").unwrap_err().contains("not JSON"));
        let refused = r#"{"Code":10010205001,"Message":"model not found","Success":false}"#;
        assert!(parse_listing(refused, "m.gguf").unwrap_err().contains("model not found"));
    }
}
