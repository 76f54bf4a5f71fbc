//! The HTTP side of the remote backend: timeouts, proxies (`HTTPS_PROXY`, `HTTP_PROXY`,
//! `ALL_PROXY`, `NO_PROXY`), retries on 429 and 503 honouring `Retry-After`, and one-line
//! errors. The API key is sent as a bearer token and appears nowhere else: not in
//! `Debug`, errors or logs.

use crate::backend::BackendError;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Seconds to wait for a connection (default 10).
pub const CONNECT_TIMEOUT_ENV: &str = "UPWARD_REMOTE_TIMEOUT";
/// Seconds to wait for each read of an answer (default 300: a large model's first token
/// after a long prompt can take minutes on a busy server).
pub const READ_TIMEOUT_ENV: &str = "UPWARD_REMOTE_READ_TIMEOUT";

/// Retries after a 429 or 503 answer.
const RETRIES: u32 = 3;
/// The longest single wait before a retry, whatever `Retry-After` says.
const MAX_WAIT: Duration = Duration::from_secs(30);

/// A secret that never prints.
#[derive(Clone)]
pub(crate) struct ApiKey(String);

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

/// A client for one server.
#[derive(Clone)]
pub(crate) struct Client {
    agent: ureq::Agent,
    /// The API root, e.g. `http://host:8000/v1`.
    pub(crate) base_url: String,
    key: Option<ApiKey>,
    /// Where the key came from (the variable's name), for messages.
    key_env: Option<String>,
    read_timeout: Duration,
    connect_timeout: Duration,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.base_url)
            .field("key", &self.key)
            .field("key_env", &self.key_env)
            .finish_non_exhaustive()
    }
}

fn secs_env(name: &str, default: f64) -> Result<Duration, String> {
    match std::env::var(name) {
        Err(_) => Ok(Duration::from_secs_f64(default)),
        Ok(v) => match v.trim().parse::<f64>() {
            Ok(s) if s > 0.0 && s < 1e6 => Ok(Duration::from_secs_f64(s)),
            _ => Err(format!("{name} must be a number of seconds, got `{v}`")),
        },
    }
}

impl Client {
    /// A client for `base_url`, with the key from the variable `key_env` when set.
    pub(crate) fn new(base_url: &str, key_env: Option<&str>) -> Result<Client, BackendError> {
        let fail = |reason: String| BackendError::Remote { endpoint: base_url.into(), reason };
        let connect_timeout = secs_env(CONNECT_TIMEOUT_ENV, 10.0).map_err(fail)?;
        let read_timeout = secs_env(READ_TIMEOUT_ENV, 300.0).map_err(fail)?;
        let mut builder = ureq::AgentBuilder::new()
            .timeout_connect(connect_timeout)
            .timeout_read(read_timeout)
            .user_agent(concat!("upward/", env!("CARGO_PKG_VERSION")));
        if let Some((var, url)) = proxy_for(base_url) {
            let proxy = ureq::Proxy::new(&url).map_err(|_| {
                fail(format!("{var} is not a proxy URL ureq understands (http://host:port)"))
            })?;
            builder = builder.proxy(proxy);
        }
        let key = key_env
            .and_then(|v| std::env::var(v).ok())
            .map(|k| k.trim().to_string())
            .filter(|k| !k.is_empty())
            .map(ApiKey);
        Ok(Client {
            agent: builder.build(),
            base_url: base_url.to_string(),
            key,
            key_env: key_env.map(str::to_string),
            read_timeout,
            connect_timeout,
        })
    }

    /// An error about this server.
    pub(crate) fn error(&self, reason: impl Into<String>) -> BackendError {
        BackendError::Remote { endpoint: self.base_url.clone(), reason: self.redact(reason.into()) }
    }

    /// `text` without the key (a server may echo it back) and on one line.
    fn redact(&self, text: String) -> String {
        let text = match &self.key {
            Some(k) if k.0.len() >= 4 => text.replace(&k.0, "***"),
            _ => text,
        };
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    /// GET `path` (relative to the API root), with retries.
    pub(crate) fn get(
        &self,
        path: &str,
        cancel: &AtomicBool,
    ) -> Result<ureq::Response, BackendError> {
        self.send("GET", path, None, cancel)
    }

    /// POST a JSON body to `path`, with retries.
    pub(crate) fn post(
        &self,
        path: &str,
        body: &serde_json::Value,
        cancel: &AtomicBool,
    ) -> Result<ureq::Response, BackendError> {
        self.send("POST", path, Some(body.to_string()), cancel)
    }

    fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<String>,
        cancel: &AtomicBool,
    ) -> Result<ureq::Response, BackendError> {
        let url = format!("{}/{}", self.base_url, path.trim_start_matches('/'));
        let mut attempt = 0;
        loop {
            let mut req = self.agent.request(method, &url);
            if let Some(k) = &self.key {
                req = req.set("Authorization", &format!("Bearer {}", k.0));
            }
            let result = match &body {
                Some(b) => req.set("Content-Type", "application/json").send_string(b),
                None => req.call(),
            };
            match result {
                Ok(resp) => return Ok(resp),
                Err(ureq::Error::Status(code @ (429 | 503), resp)) if attempt < RETRIES => {
                    let wait = retry_after(&resp)
                        .unwrap_or(Duration::from_secs(1 << attempt))
                        .min(MAX_WAIT);
                    attempt += 1;
                    if !sleep_unless(wait, cancel) {
                        return Err(
                            self.error(format!("HTTP {code}; stopped while waiting to retry"))
                        );
                    }
                }
                Err(ureq::Error::Status(code, resp)) => {
                    return Err(self.status_error(code, resp, attempt))
                }
                Err(ureq::Error::Transport(t)) => return Err(self.transport_error(&t)),
            }
        }
    }

    fn status_error(&self, code: u16, resp: ureq::Response, retries: u32) -> BackendError {
        let detail = server_message(resp);
        let detail = if detail.is_empty() { String::new() } else { format!(": {detail}") };
        let reason = match code {
            401 | 403 => match (&self.key, &self.key_env) {
                (Some(_), Some(var)) => format!(
                    "the server refused the API key in ${var} (HTTP {code}{detail}); check it"
                ),
                (None, Some(var)) => format!(
                    "the server wants an API key (HTTP {code}{detail}) and ${var} is not set"
                ),
                _ => format!(
                    "the server wants an API key (HTTP {code}{detail}); name its variable with `api_key_env` in models.toml"
                ),
            },
            404 => format!(
                "not found (HTTP 404{detail}): the model id is unknown to the server, or `base_url` lacks its /v1; `upward models verify NAME` lists the server's models"
            ),
            429 | 503 => format!(
                "the server is busy (HTTP {code}{detail}) and still was after {retries} retries; try again later"
            ),
            500..=599 => format!("server error (HTTP {code}{detail})"),
            _ => format!("the server rejected the request (HTTP {code}{detail})"),
        };
        self.error(reason)
    }

    fn transport_error(&self, t: &ureq::Transport) -> BackendError {
        use ureq::ErrorKind as K;
        let host = host_of(&self.base_url);
        let io_kind = std::error::Error::source(t)
            .and_then(|s| s.downcast_ref::<std::io::Error>())
            .map(|e| e.kind());
        let timed_out =
            matches!(io_kind, Some(std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock))
                || t.to_string().contains("timed out");
        let reason = match t.kind() {
            K::Dns => format!("cannot resolve host `{host}` (DNS failure); check `base_url`"),
            K::ConnectionFailed if timed_out => format!(
                "no connection to {host} within {:.0} s (is the server up and reachable? {CONNECT_TIMEOUT_ENV} sets the wait)",
                self.connect_timeout.as_secs_f64()
            ),
            K::ConnectionFailed if io_kind == Some(std::io::ErrorKind::ConnectionRefused)
                || t.to_string().contains("refused") =>
            {
                format!("connection refused by {host}: is the server running on that port?")
            }
            K::ConnectionFailed => format!("cannot connect to {host}: {}", first_line(t)),
            K::Io if timed_out => format!(
                "the server sent nothing for {:.0} s ({READ_TIMEOUT_ENV} sets the wait)",
                self.read_timeout.as_secs_f64()
            ),
            K::InvalidProxyUrl | K::ProxyConnect | K::ProxyUnauthorized => {
                format!("the proxy failed: {} (check HTTPS_PROXY, HTTP_PROXY, NO_PROXY)", first_line(t))
            }
            _ => first_line(t),
        };
        self.error(reason)
    }

    /// A read failure in the middle of an answer, in words.
    pub(crate) fn read_error(&self, e: &std::io::Error) -> String {
        match e.kind() {
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
                format!("the server sent nothing for {:.0} s", self.read_timeout.as_secs_f64())
            }
            _ => format!("the connection broke ({e})"),
        }
    }
}

/// `Retry-After` in seconds (the HTTP-date form is not used by model servers).
fn retry_after(resp: &ureq::Response) -> Option<Duration> {
    let v = resp.header("Retry-After")?.trim().parse::<f64>().ok()?;
    (v.is_finite() && v >= 0.0).then(|| Duration::from_secs_f64(v))
}

/// Sleeps `d` in short steps; false when `cancel` was set.
fn sleep_unless(d: Duration, cancel: &AtomicBool) -> bool {
    let step = Duration::from_millis(50);
    let start = std::time::Instant::now();
    while start.elapsed() < d {
        if cancel.load(Ordering::Relaxed) {
            return false;
        }
        std::thread::sleep(step.min(d.saturating_sub(start.elapsed())));
    }
    !cancel.load(Ordering::Relaxed)
}

/// The server's own explanation from an error body (`{"error": {"message": ...}}`,
/// `{"error": "..."}`, `{"detail": ...}` or text), on one line, at most 200 characters.
fn server_message(resp: ureq::Response) -> String {
    use std::io::Read;
    let mut body = String::new();
    let _ = resp.into_reader().take(64 * 1024).read_to_string(&mut body);
    let msg = match serde_json::from_str::<serde_json::Value>(&body) {
        Ok(v) => {
            let pick = |v: &serde_json::Value| match v {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Null => None,
                other => other.get("message").and_then(|m| m.as_str()).map(str::to_string),
            };
            v.get("error")
                .and_then(pick)
                .or_else(|| {
                    v.get("detail").map(|d| d.as_str().map_or(d.to_string(), str::to_string))
                })
                .or_else(|| v.get("message").and_then(pick))
                .unwrap_or_default()
        }
        Err(_) if body.trim_start().starts_with('<') => String::new(),
        Err(_) => body,
    };
    let one: String = msg.split_whitespace().collect::<Vec<_>>().join(" ");
    let cut: String = one.chars().take(200).collect();
    if cut.len() < one.len() {
        format!("{cut}…")
    } else {
        cut
    }
}

fn first_line(e: &impl std::fmt::Display) -> String {
    e.to_string().lines().next().unwrap_or_default().to_string()
}

/// The host (and port) of a URL.
pub(crate) fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest)
}

fn env_any(names: &[&str]) -> Option<(String, String)> {
    names.iter().find_map(|n| {
        std::env::var(n).ok().filter(|v| !v.trim().is_empty()).map(|v| (n.to_string(), v))
    })
}

/// The proxy for `url` from the environment (variable name and value), or `None`:
/// `HTTPS_PROXY` for https, `HTTP_PROXY` for http, else `ALL_PROXY`; none when `NO_PROXY`
/// matches the host, and none for loopback addresses.
pub(crate) fn proxy_for(url: &str) -> Option<(String, String)> {
    let host_port = host_of(url);
    let host = split_host(host_port);
    if is_loopback(host) {
        return None;
    }
    if let Some((_, no)) = env_any(&["NO_PROXY", "no_proxy"]) {
        if no_proxy_matches(&no, host, host_port) {
            return None;
        }
    }
    let scheme_vars: &[&str] = if url.starts_with("https://") {
        &["HTTPS_PROXY", "https_proxy"]
    } else {
        // Lower case first: CGI servers set HTTP_PROXY from a request header.
        &["http_proxy", "HTTP_PROXY"]
    };
    env_any(scheme_vars).or_else(|| env_any(&["ALL_PROXY", "all_proxy"]))
}

/// The host of `host[:port]` (IPv6 in brackets), lower case.
fn split_host(host_port: &str) -> &str {
    if let Some(rest) = host_port.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    host_port.rsplit_once(':').map_or(host_port, |(h, _)| h)
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// `NO_PROXY` semantics as curl has them: `*` matches every host; an entry matches the
/// host itself and its subdomains (a leading `.` is optional); `host:port` entries
/// match that port only.
pub(crate) fn no_proxy_matches(no_proxy: &str, host: &str, host_port: &str) -> bool {
    let host = host.to_ascii_lowercase();
    no_proxy.split(',').map(|e| e.trim().to_ascii_lowercase()).filter(|e| !e.is_empty()).any(
        |entry| {
            if entry == "*" {
                return true;
            }
            if entry.contains(':') && !entry.starts_with('[') && entry.matches(':').count() == 1 {
                return entry == host_port.to_ascii_lowercase();
            }
            let entry = entry.trim_start_matches('.').trim_matches(['[', ']']);
            host == entry || host.ends_with(&format!(".{entry}"))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_proxy_matching() {
        assert!(no_proxy_matches("example.com", "example.com", "example.com:80"));
        assert!(no_proxy_matches(".example.com", "gpu.example.com", "gpu.example.com"));
        assert!(no_proxy_matches("foo, example.com", "a.b.example.com", "a.b.example.com"));
        assert!(!no_proxy_matches("example.com", "badexample.com", "badexample.com"));
        assert!(no_proxy_matches("*", "anything", "anything"));
        assert!(no_proxy_matches("10.0.0.5", "10.0.0.5", "10.0.0.5:8000"));
        assert!(no_proxy_matches("gpu:8000", "gpu", "gpu:8000"));
        assert!(!no_proxy_matches("gpu:8000", "gpu", "gpu:9000"));
        assert!(!no_proxy_matches("", "gpu", "gpu"));
    }

    #[test]
    fn hosts_and_loopback() {
        assert_eq!(host_of("http://gpu:8000/v1"), "gpu:8000");
        assert_eq!(split_host("gpu:8000"), "gpu");
        assert_eq!(split_host("[::1]:8000"), "::1");
        assert!(is_loopback("127.0.0.1") && is_loopback("::1") && is_loopback("LOCALHOST"));
        assert!(!is_loopback("10.0.0.1"));
        assert!(proxy_for("http://127.0.0.1:9/v1").is_none());
    }

    #[test]
    fn the_key_never_prints() {
        let c = Client {
            agent: ureq::agent(),
            base_url: "http://h/v1".into(),
            key: Some(ApiKey("sk-very-secret".into())),
            key_env: Some("K".into()),
            read_timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(1),
        };
        assert!(!format!("{c:?}").contains("very-secret"));
        let e = c.error("bad key sk-very-secret\nsecond line").to_string();
        assert!(!e.contains("very-secret") && !e.contains('\n'), "{e}");
    }
}
