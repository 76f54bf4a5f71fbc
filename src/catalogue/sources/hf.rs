//! Hugging Face files.
//!
//! hf-hub 0.4 supplies the conventions: `HF_ENDPOINT` (mirrors such as
//! `https://hf-mirror.com`), `HF_HOME` (its cache, reused when the file is already there,
//! and the login token), and the `…/resolve/<revision>/<file>` URL. hf-hub 0.4.3 itself
//! does not read `HF_HUB_OFFLINE` and its sync client cannot set timeouts, so the offline
//! switch is honoured here and the transfer uses our own ureq agent with a connect
//! timeout (`UPWARD_HTTP_TIMEOUT`, default 10 s): an unreachable hub fails in seconds.
//!
//! The hub answers a file request with a redirect that carries `X-Linked-Etag`, which for
//! LFS files is the file's SHA-256; it is the checksum used when the catalogue has none.

use super::{progress_bar, Ctx};
use hf_hub::api::sync::ApiBuilder;
use hf_hub::{Repo, RepoType};
use std::time::Duration;

/// Seconds to wait for a connection (and between bytes, times six).
pub const TIMEOUT_ENV: &str = "UPWARD_HTTP_TIMEOUT";
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether `HF_HUB_OFFLINE` asks for no network access (same values as huggingface_hub).
pub(crate) fn offline() -> bool {
    std::env::var("HF_HUB_OFFLINE")
        .map(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on"))
        .unwrap_or(false)
}

pub(crate) fn connect_timeout(ctx: &Ctx) -> Duration {
    ctx.opts.connect_timeout.unwrap_or_else(|| {
        std::env::var(TIMEOUT_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| *s > 0.0 && s.is_finite())
            .map(Duration::from_secs_f64)
            .unwrap_or(DEFAULT_CONNECT_TIMEOUT)
    })
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.chars().all(|c| c.is_ascii_hexdigit())
}

pub(crate) fn fetch(repo: &str, file: &str, revision: &str, ctx: &Ctx) -> Result<String, String> {
    let hf_repo = Repo::with_revision(repo.to_string(), RepoType::Model, revision.to_string());

    // 1. Already in the Hugging Face cache (HF_HOME)? Its blob is named by the etag.
    if let Some(p) = hf_hub::Cache::from_env().repo(hf_repo.clone()).get(file) {
        let etag = std::fs::canonicalize(&p)
            .ok()
            .and_then(|c| c.file_name().map(|n| n.to_string_lossy().into_owned()))
            .filter(|n| is_sha256(n));
        match super::local::copy_into(&p, ctx, etag.as_deref()) {
            Ok(sha) => {
                ctx.opts.say(&format!(
                    "upward: used the copy in the Hugging Face cache: {}",
                    p.display()
                ));
                return Ok(sha);
            }
            Err(e) => ctx
                .opts
                .say(&format!("upward: ignoring {} in the Hugging Face cache: {e}", p.display())),
        }
    }
    if offline() {
        return Err(
            "HF_HUB_OFFLINE is set and the file is not in the Hugging Face cache (HF_HOME)".into(),
        );
    }

    // 2. Download.
    let mut builder = ApiBuilder::from_env().with_progress(false);
    if let Ok(ep) = std::env::var("HF_ENDPOINT") {
        builder = builder.with_endpoint(ep.trim().trim_end_matches('/').to_string());
    }
    let api = builder.build().map_err(|e| format!("cannot set up the Hugging Face client: {e}"))?;
    let url = api.repo(hf_repo).url(file);
    let endpoint_host = host_of(&url).to_string();
    let timeout = connect_timeout(ctx);
    let agent = |redirects: u32| {
        ureq::AgentBuilder::new()
            .try_proxy_from_env(true)
            .timeout_connect(timeout)
            .timeout_read(timeout * 6)
            .redirects(redirects)
            .user_agent(&format!("upward/{}", env!("CARGO_PKG_VERSION")))
            .build()
    };
    let token = std::env::var("HF_TOKEN")
        .ok()
        .filter(|t| !t.trim().is_empty())
        .or_else(|| hf_hub::Cache::from_env().token());
    let request = |agent: &ureq::Agent, url: &str| {
        let mut req = agent.get(url);
        if let Some(t) = token.as_deref().filter(|_| host_of(url) == endpoint_host) {
            req = req.set("Authorization", &format!("Bearer {t}"));
        }
        req
    };

    // The hub's answer to a one-byte request: the redirect to the file, and its etag.
    let probe = agent(0);
    let mut current = url.clone();
    let mut hops = 0;
    let (etag, linked_size, download_url) = loop {
        let resp = match request(&probe, &current).set("Range", "bytes=0-0").call() {
            Ok(r) => r,
            Err(e) => return Err(describe(e, &current, timeout)),
        };
        let etag = resp
            .header("x-linked-etag")
            .or_else(|| resp.header("etag"))
            .map(|e| e.trim_start_matches("W/").trim_matches('"').to_ascii_lowercase());
        let size = resp.header("x-linked-size").and_then(|s| s.trim().parse::<u64>().ok());
        match (resp.status(), resp.header("location")) {
            (300..=399, Some(loc)) if hops < 5 && !loc.contains("://") => {
                // A relative redirect (renamed repository): ask again there.
                current = join(&current, loc);
                hops += 1;
            }
            (300..=399, Some(loc)) => break (etag, size, loc.to_string()),
            (300..=399, None) => {
                return Err(format!("{} answered a redirect without a location", host_of(&current)))
            }
            _ => break (etag, size, current.clone()),
        }
    };
    let hub_sha = etag.filter(|e| is_sha256(e));
    if let (Some(cat), Some(hub)) = (ctx.entry.sha256.as_deref(), hub_sha.as_deref()) {
        if cat != hub {
            return Err(format!(
                "the hub's file has sha256 {hub}, the catalogue expects {cat}: the catalogue is out of date \
                 or the mirror serves another file"
            ));
        }
    }

    let resp = request(&agent(10), &download_url)
        .call()
        .map_err(|e| describe(e, &download_url, timeout))?;
    let total =
        resp.header("content-length").and_then(|s| s.trim().parse::<u64>().ok()).or(linked_size);
    let mut landing = ctx.landing()?;
    let pb =
        progress_bar(ctx.opts.progress, total.or(ctx.entry.size), format!("downloading {file}"));
    let mut reader = resp.into_reader();
    let copied = landing.copy_from(&mut reader, &|n| pb.inc(n));
    pb.finish_and_clear();
    copied.map_err(|e| format!("download from {} interrupted: {e}", host_of(&download_url)))?;
    ctx.finish(landing, hub_sha.as_deref())
}

/// `scheme://host[:port]` of a URL ("" when it has none).
pub(crate) fn host_of(url: &str) -> &str {
    let after = url.find("://").map(|i| i + 3).unwrap_or(0);
    let end = url[after..].find('/').map(|i| after + i).unwrap_or(url.len());
    &url[..end]
}

/// Resolves a relative `Location` against the URL it came from.
fn join(base: &str, loc: &str) -> String {
    if loc.starts_with('/') {
        format!("{}{loc}", host_of(base))
    } else {
        let dir = base.rfind('/').map(|i| &base[..=i]).unwrap_or(base);
        format!("{dir}{loc}")
    }
}

/// One line about a failed request, naming the host and what the user can check.
fn describe(err: ureq::Error, url: &str, timeout: Duration) -> String {
    let host = host_of(url);
    let bare = host.split("://").nth(1).unwrap_or(host);
    match err {
        ureq::Error::Status(code @ (401 | 403), _) => format!(
            "{host} refused access (HTTP {code}): the repository may be gated or private; \
             accept its licence on the website and set HF_TOKEN"
        ),
        ureq::Error::Status(404, _) => {
            format!(
                "not found on {host} (HTTP 404): {url} (the catalogue entry may be out of date)"
            )
        }
        ureq::Error::Status(code, _) => format!("{host} answered HTTP {code} for {url}"),
        ureq::Error::Transport(t) => {
            let text = t.to_string();
            // The innermost cause ("Connection refused (os error 111)"), without the URL.
            let cause = std::error::Error::source(&t)
                .map(|e| e.to_string())
                .or_else(|| t.message().map(String::from))
                .unwrap_or_else(|| text.clone());
            match t.kind() {
                ureq::ErrorKind::Dns => {
                    format!("cannot resolve {bare} (offline, or its DNS is blocked)")
                }
                ureq::ErrorKind::ConnectionFailed if text.contains("timed out") => {
                    format!(
                        "{bare} did not answer within {}s (unreachable from here?)",
                        timeout.as_secs_f64()
                    )
                }
                ureq::ErrorKind::ConnectionFailed => format!("cannot connect to {bare}: {cause}"),
                ureq::ErrorKind::Io if text.contains("timed out") => {
                    format!(
                        "{bare} stopped answering (timed out after {}s)",
                        (timeout * 6).as_secs_f64()
                    )
                }
                _ => format!("request to {bare} failed: {text}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_helpers() {
        assert_eq!(
            host_of("https://hf-mirror.com/Qwen/x/resolve/main/a.gguf"),
            "https://hf-mirror.com"
        );
        assert_eq!(host_of("http://127.0.0.1:9/x"), "http://127.0.0.1:9");
        assert_eq!(join("https://h.co/a/resolve/main/f.gguf", "/api/x"), "https://h.co/api/x");
        assert_eq!(join("https://h.co/a/b", "c"), "https://h.co/a/c");
        assert!(is_sha256(&"a".repeat(64)) && !is_sha256("abc"));
    }
}
