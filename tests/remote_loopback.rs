//! The remote backend through the `upward` binary, against a tiny HTTP server on
//! loopback: a normal stream, the error answers (401, 404, 429 then success, 500), a
//! stream that breaks off, malformed events, an unreachable server, and the critique's
//! constrained choice (guided, parsed, rules).

mod common;
#[path = "common/http.rs"]
mod http;

use http::{chat_events, models_answer, Answer, Req, Server};
use std::path::{Path, PathBuf};
use std::time::Duration;

const MODEL_ID: &str = "team/qwen-test";
const KEY_VAR: &str = "UPWARD_TEST_REMOTE_KEY";
const KEY: &str = "sk-test-5ecret-value-0042";

/// A models.toml with one remote entry for `base_url`, and extra lines for it.
fn models_file(dir: &Path, base_url: &str, extra: &str) -> PathBuf {
    let p = dir.join("models.toml");
    std::fs::write(
        &p,
        format!(
            "[[models]]\nname = \"team\"\napi = \"openai\"\nbase_url = \"{base_url}\"\nmodel = \"{MODEL_ID}\"\napi_key_env = \"{KEY_VAR}\"\n{extra}"
        ),
    )
    .unwrap();
    p
}

const PROXY_VARS: [&str; 8] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
];

/// `upward` as [`common::upward`], without the caller's proxy settings.
fn bare(dir: &Path) -> assert_cmd::Command {
    let mut c = common::upward(dir);
    for v in PROXY_VARS {
        c.env_remove(v);
    }
    c
}

/// `upward --models-file F --model team ARGS` with the key in the environment.
fn upward(dir: &Path, models: &Path, args: &[&str]) -> std::process::Output {
    let mut c = bare(dir);
    c.env(KEY_VAR, KEY)
        .env("UPWARD_REMOTE_TIMEOUT", "5")
        .env("UPWARD_REMOTE_READ_TIMEOUT", "20")
        .arg("--models-file")
        .arg(models)
        .args(["--model", "team"])
        .args(args)
        .timeout(Duration::from_secs(120));
    c.output().unwrap()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The last line on stderr, which must be the error; and nothing on any output holds
/// the key.
fn error_line(o: &std::process::Output) -> String {
    assert!(!o.status.success(), "expected a failure: {}", stderr(o));
    let all = format!("{}{}", String::from_utf8_lossy(&o.stdout), stderr(o));
    assert!(!all.contains(KEY), "the key leaked: {all}");
    let err = stderr(o);
    let line = err.lines().rfind(|l| !l.trim().is_empty()).unwrap_or_default().to_string();
    assert!(line.starts_with("upward: error: "), "{err}");
    assert!(!line.contains("panicked"), "{err}");
    line
}

/// A server that lists the model and answers chats with `chat`.
fn server<F>(chat: F) -> Server
where
    F: Fn(&Req, usize) -> Answer + Send + Sync + 'static,
{
    Server::start(move |req, n| match req.path.as_str() {
        "/v1/models" => models_answer(&[MODEL_ID], "vllm"),
        "/v1/chat/completions" => chat(req, n),
        _ => Answer::error(404, "no such route"),
    })
}

#[test]
fn chat_streams_a_remote_reply_and_sends_the_key_only_to_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(|_, _| Answer::Sse(chat_events(&["Ask your boss ", "for ten minutes."], true)));
    let models = models_file(dir.path(), &s.base_url(), "");
    let out = upward(
        dir.path(),
        &models,
        &["chat", "--prompt", "How do I ask?", "--temperature", "0.3", "--seed", "7"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Ask your boss for ten minutes."), "{stdout}");
    assert!(!stdout.contains(KEY) && !stderr(&out).contains(KEY));
    let chats = s.requests_to("/v1/chat/completions");
    assert_eq!(chats.len(), 1);
    assert_eq!(chats[0].header("authorization"), Some(format!("Bearer {KEY}").as_str()));
    let body = chats[0].json();
    assert_eq!(body["model"], MODEL_ID);
    assert_eq!(body["stream"], true);
    assert_eq!(body["seed"], 7);
    assert!((body["temperature"].as_f64().unwrap() - 0.3).abs() < 1e-6);
    assert_eq!(body["messages"].as_array().unwrap().last().unwrap()["content"], "How do I ask?");

    // JSON: the server's usage fills the counts; the chat is saved as a session.
    let out = upward(dir.path(), &models, &["chat", "--prompt", "Again?", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v = common::json_of(&out);
    assert_eq!(v["answer"], "Ask your boss for ten minutes.");
    assert_eq!(v["stop"], "end_of_turn");
    assert_eq!(v["prompt_tokens"], 21);
    assert_eq!(v["generated_tokens"], 7);
    assert_eq!(v["model"], "team");
    assert_eq!(common::sessions_json(dir.path()).len(), 2);
}

#[test]
fn adhoc_model_form_needs_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(|_, _| Answer::Sse(chat_events(&["Hello."], true)));
    let spec = format!("openai+{}#{MODEL_ID}", s.base_url());
    let out = bare(dir.path())
        .args(["--model", &spec, "chat", "--prompt", "hi", "--no-save"])
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Hello."));
    assert!(stderr(&out).contains(&format!("connecting to {MODEL_ID}")), "{}", stderr(&out));
}

#[test]
fn a_bad_key_is_one_line_naming_the_variable_not_the_key() {
    let dir = tempfile::tempdir().unwrap();
    // The server echoes the key back in its error, as some do.
    let s = Server::start(|req, _| {
        let got = req.header("authorization").unwrap_or("").to_string();
        Answer::error(401, &format!("invalid api key: {got}"))
    });
    let models = models_file(dir.path(), &s.base_url(), "");
    let line = error_line(&upward(dir.path(), &models, &["chat", "--prompt", "hi"]));
    assert!(line.contains("refused the API key") && line.contains(KEY_VAR), "{line}");
    assert!(line.contains("HTTP 401"), "{line}");
}

#[test]
fn an_unknown_model_id_is_a_404_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(|_, _| Answer::error(404, "The model `team/qwen-test` does not exist."));
    let models = models_file(dir.path(), &s.base_url(), "");
    let line = error_line(&upward(dir.path(), &models, &["chat", "--prompt", "hi"]));
    assert!(line.contains("HTTP 404") && line.contains("model id is unknown"), "{line}");
}

#[test]
fn a_busy_server_is_retried_after_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(|_, n| {
        // Request 0 is /v1/models; the first chat is told to come back in a second.
        if n == 1 {
            Answer::Full(429, vec![("Retry-After".into(), "1".into())], "slow down".into())
        } else {
            Answer::Sse(chat_events(&["Done after a retry."], true))
        }
    });
    let models = models_file(dir.path(), &s.base_url(), "");
    let out = upward(dir.path(), &models, &["chat", "--prompt", "hi", "--no-save"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Done after a retry."));
    assert_eq!(s.requests_to("/v1/chat/completions").len(), 2);

    // Always busy: a bounded number of tries, then one line.
    let s =
        server(|_, _| Answer::Full(503, vec![("Retry-After".into(), "0".into())], String::new()));
    let models = models_file(dir.path(), &s.base_url(), "");
    let line = error_line(&upward(dir.path(), &models, &["chat", "--prompt", "hi"]));
    assert!(line.contains("busy (HTTP 503") && line.contains("3 retries"), "{line}");
    assert_eq!(s.requests_to("/v1/chat/completions").len(), 4);
}

#[test]
fn a_server_error_is_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(|_, _| Answer::error(500, "CUDA out of memory.\nTraceback: ..."));
    let models = models_file(dir.path(), &s.base_url(), "");
    let line = error_line(&upward(dir.path(), &models, &["chat", "--prompt", "hi"]));
    assert!(line.contains("server error (HTTP 500: CUDA out of memory."), "{line}");
}

#[test]
fn a_stream_that_breaks_keeps_the_partial_reply_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let s =
        server(|_, _| Answer::Sse(chat_events(&["First you ", "set the context, then"], false)));
    let models = models_file(dir.path(), &s.base_url(), "");
    let out = upward(dir.path(), &models, &["chat", "--prompt", "hi"]);
    let line = error_line(&out);
    assert!(String::from_utf8_lossy(&out.stdout).contains("First you set the context, then"));
    assert!(line.contains("closed the stream") && line.contains("incomplete"), "{line}");
    // The partial reply is saved, marked as interrupted.
    let sessions = common::sessions_json(dir.path());
    assert_eq!(sessions.len(), 1, "{sessions:?}");

    let out = upward(dir.path(), &models, &["chat", "--prompt", "hi", "--json", "--no-save"]);
    error_line(&out);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["answer"], "First you set the context, then");
    assert_eq!(v["stop"], "cancelled");
    assert!(v["incomplete"].as_str().unwrap().contains("closed the stream"), "{v}");
}

#[test]
fn malformed_events_are_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let s =
        server(|_, _| Answer::Sse(vec!["{\"choices\": [{\"delta\": {\"content\": \"Hi".into()]));
    let models = models_file(dir.path(), &s.base_url(), "");
    let line = error_line(&upward(dir.path(), &models, &["chat", "--prompt", "hi"]));
    assert!(line.contains("malformed event stream") && line.contains("not JSON"), "{line}");
    let s = server(|_, _| {
        let html = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n<html><body>proxy login</body></html>\n";
        Answer::Raw(html.as_bytes().to_vec())
    });
    let models = models_file(dir.path(), &s.base_url(), "");
    let line = error_line(&upward(dir.path(), &models, &["chat", "--prompt", "hi"]));
    assert!(line.contains("malformed event stream") && line.contains("<html>"), "{line}");
}

#[test]
fn an_unreachable_server_fails_fast_and_clearly() {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let models = models_file(dir.path(), &format!("http://127.0.0.1:{port}/v1"), "");
    let line = error_line(&upward(dir.path(), &models, &["chat", "--prompt", "hi"]));
    assert!(line.contains("connection refused"), "{line}");
    assert!(line.contains(&format!("127.0.0.1:{port}")), "{line}");

    // A non-routable address with a one-second connect timeout: the wait ends there, at
    // once where the network says it is unreachable, or with whatever a gateway that
    // intercepts such addresses answers; always one line naming the server.
    let models = models_file(dir.path(), "http://10.255.255.1:8000/v1", "");
    let mut c = bare(dir.path());
    c.env("UPWARD_REMOTE_TIMEOUT", "1")
        .arg("--models-file")
        .arg(&models)
        .args(["--model", "team", "chat", "--prompt", "hi"])
        .timeout(Duration::from_secs(60));
    let line = error_line(&c.output().unwrap());
    assert!(line.contains("10.255.255.1:8000"), "{line}");
}

/// A loopback port whose listener never accepts and whose queue is full, so that a new
/// connection waits for its handshake until the client gives up.
#[cfg(target_os = "linux")]
fn black_hole() -> (u16, Vec<std::net::TcpStream>, i32) {
    // SAFETY: plain socket calls on a descriptor this function owns; the address
    // structure is fully initialised and its size passed.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        assert!(fd >= 0);
        let mut addr: libc::sockaddr_in = std::mem::zeroed();
        addr.sin_family = libc::AF_INET as libc::sa_family_t;
        addr.sin_addr.s_addr = u32::from_ne_bytes([127, 0, 0, 1]);
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        assert_eq!(libc::bind(fd, &addr as *const _ as *const libc::sockaddr, len), 0);
        assert_eq!(libc::listen(fd, 0), 0);
        let mut got: libc::sockaddr_in = std::mem::zeroed();
        let mut glen = len;
        libc::getsockname(fd, &mut got as *mut _ as *mut libc::sockaddr, &mut glen);
        let port = u16::from_be(got.sin_port);
        // Fill the accept queue.
        let mut held = Vec::new();
        for _ in 0..4 {
            match std::net::TcpStream::connect_timeout(
                &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
                Duration::from_millis(300),
            ) {
                Ok(s) => held.push(s),
                Err(_) => break,
            }
        }
        (port, held, fd)
    }
}

#[cfg(target_os = "linux")]
#[test]
fn a_server_that_never_accepts_hits_the_connect_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let (port, _held, fd) = black_hole();
    let models = models_file(dir.path(), &format!("http://127.0.0.1:{port}/v1"), "");
    let mut c = bare(dir.path());
    c.env("UPWARD_REMOTE_TIMEOUT", "1")
        .arg("--models-file")
        .arg(&models)
        .args(["--model", "team", "chat", "--prompt", "hi"])
        .timeout(Duration::from_secs(60));
    let line = error_line(&c.output().unwrap());
    // SAFETY: closing the descriptor black_hole opened, once.
    unsafe { libc::close(fd) };
    assert!(line.contains(&format!("no connection to 127.0.0.1:{port} within 1 s")), "{line}");
}

#[test]
fn a_server_that_stops_answering_hits_the_read_timeout() {
    let dir = tempfile::tempdir().unwrap();
    // Accepts, reads the request, and says nothing until the client gives up.
    let s = server(|_, _| {
        std::thread::sleep(Duration::from_secs(30));
        Answer::error(500, "too late")
    });
    let models = models_file(dir.path(), &s.base_url(), "");
    let mut c = bare(dir.path());
    c.env("UPWARD_REMOTE_READ_TIMEOUT", "1")
        .arg("--models-file")
        .arg(&models)
        .args(["--model", "team", "chat", "--prompt", "hi"])
        .timeout(Duration::from_secs(60));
    let line = error_line(&c.output().unwrap());
    assert!(line.contains("the server sent nothing for 1 s"), "{line}");
}

#[test]
fn proxies_and_no_proxy_are_honoured() {
    let dir = tempfile::tempdir().unwrap();
    // The "proxy" answers for a host that does not exist: the request reaches it with
    // the absolute URL, as HTTP proxies receive them.
    let proxy = Server::start(|req, _| match req.path.as_str() {
        "http://gpu-box.invalid:8000/v1/models" => models_answer(&[MODEL_ID], "vllm"),
        "http://gpu-box.invalid:8000/v1/chat/completions" => {
            Answer::Sse(chat_events(&["Via the proxy."], true))
        }
        _ => Answer::error(502, "unexpected"),
    });
    let models = models_file(dir.path(), "http://gpu-box.invalid:8000/v1", "");
    let run = |no_proxy: &str| {
        bare(dir.path())
            .env("HTTP_PROXY", format!("http://{}", proxy.addr))
            .env("NO_PROXY", no_proxy)
            .env(KEY_VAR, KEY)
            .arg("--models-file")
            .arg(&models)
            .args(["--model", "team", "chat", "--prompt", "hi", "--no-save"])
            .timeout(Duration::from_secs(60))
            .output()
            .unwrap()
    };
    let out = run("example.com");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Via the proxy."));
    // NO_PROXY names the host: no proxy, and the name does not resolve.
    let line = error_line(&run("other.org,.invalid"));
    assert!(line.contains("cannot resolve host `gpu-box.invalid:8000` (DNS failure)"), "{line}");
}

#[test]
fn models_list_and_verify_cover_remote_entries() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(|_, _| Answer::error(500, "unused"));
    let models = models_file(dir.path(), &s.base_url(), "context_length = 32768\n");
    let run = |args: &[&str]| {
        bare(dir.path())
            .arg("--models-file")
            .arg(&models)
            .args(args)
            .timeout(Duration::from_secs(60))
            .output()
            .unwrap()
    };
    let out = run(&["models", "list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("team") && table.contains(&format!("remote {}", s.base_url())),
        "{table}"
    );
    let out = run(&["models", "list", "--json"]);
    let v = common::json_of(&out);
    assert_eq!(v[0]["remote"]["model"], MODEL_ID);
    assert_eq!(v[0]["remote"]["api_key_env"], KEY_VAR);

    let out = run(&["models", "verify", "team"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("owned_by vllm") && text.trim_end().ends_with("ok"), "{text}");

    // The server does not serve the id: verification fails and lists what it serves.
    let other = Server::start(|_, _| models_answer(&["other/model"], "llamacpp"));
    let models = models_file(dir.path(), &other.base_url(), "");
    let out = bare(dir.path())
        .arg("--models-file")
        .arg(&models)
        .args(["models", "verify", "team"])
        .output()
        .unwrap();
    let line = error_line(&out);
    assert!(
        line.contains("does not serve `team/qwen-test`") && line.contains("other/model"),
        "{line}"
    );
}

#[test]
fn a_bad_remote_entry_points_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let models = models_file(dir.path(), "gpu-box:8000/v1", "");
    let out = common::upward(dir.path())
        .arg("--models-file")
        .arg(&models)
        .args(["models", "list"])
        .output()
        .unwrap();
    let line = error_line(&out);
    assert!(line.contains("models.toml:4:") && line.contains("http://"), "{line}");
}

/// A server for the critique: streamed chats (comment, rewrite) get a short English
/// reply, and non-streamed choice requests get `choice(req)`.
fn critique_server<F>(owned_by: &'static str, choice: F) -> Server
where
    F: Fn(&Req) -> Answer + Send + Sync + 'static,
{
    Server::start(move |req, _| match req.path.as_str() {
        "/v1/models" => models_answer(&[MODEL_ID], owned_by),
        "/v1/chat/completions" if req.json()["stream"] == true => {
            Answer::Sse(chat_events(&["Say what you need and by when."], true))
        }
        "/v1/chat/completions" => choice(req),
        _ => Answer::error(404, "no such route"),
    })
}

fn completion(text: &str) -> Answer {
    Answer::json(serde_json::json!({
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 50, "completion_tokens": 1},
    }))
}

const DRAFT: &str = "Hi Anna, could you help me with the Q3 pricing deck? I tried the template and asked finance. I need it by Friday for the client meeting. Thanks, Li";

fn critique(dir: &Path, models: &Path) -> std::process::Output {
    let draft = dir.join("draft.txt");
    std::fs::write(&draft, DRAFT).unwrap();
    upward(dir, models, &["critique", "--json", "--no-save", draft.to_str().unwrap()])
}

#[test]
fn critique_uses_the_servers_guided_choice() {
    let dir = tempfile::tempdir().unwrap();
    // vLLM (detected from owned_by): guided_choice holds the candidates.
    let s = critique_server("vllm", |req| {
        let v = req.json();
        match v["guided_choice"].as_array() {
            Some(c) if c.len() == 3 => completion("partial"),
            _ => Answer::error(400, "expected guided_choice"),
        }
    });
    let models = models_file(dir.path(), &s.base_url(), "judge = true\n");
    let out = critique(dir.path(), &models);
    assert!(out.status.success(), "{}", stderr(&out));
    let v = common::json_of(&out);
    assert_eq!(v["model_choice"], "guided", "{v}");
    assert_eq!(v["model"], "team");

    // llama.cpp (from the entry): a grammar.
    let s = critique_server("me", |req| match req.json()["grammar"].as_str() {
        Some(g) if g.contains("\"met\" | \"partial\" | \"missing\"") => completion("met"),
        _ => Answer::error(400, "expected a grammar"),
    });
    let models = models_file(dir.path(), &s.base_url(), "judge = true\nguided = \"llama.cpp\"\n");
    let v = common::json_of(&critique(dir.path(), &models));
    assert_eq!(v["model_choice"], "guided", "{v}");

    // JSON schema: the answer comes back as {"answer": ...}.
    let s = critique_server("someone", |req| {
        match req.json()["response_format"]["json_schema"]["schema"]["properties"]["answer"]["enum"]
            .as_array()
        {
            Some(_) => completion("{\"answer\": \"missing\"}"),
            None => Answer::error(400, "expected response_format"),
        }
    });
    let models = models_file(dir.path(), &s.base_url(), "judge = true\n");
    let v = common::json_of(&critique(dir.path(), &models));
    assert_eq!(v["model_choice"], "guided", "{v}");
}

#[test]
fn critique_parses_a_plain_answer_and_falls_back_to_the_rules() {
    let dir = tempfile::tempdir().unwrap();
    // No guided decoding: the server rejects the schema, and answers plainly in JSON.
    let s = critique_server("someone", |req| {
        if req.json().get("response_format").is_some() {
            Answer::error(400, "response_format is not supported")
        } else {
            completion("Sure: {\"answer\": \"partial\"}")
        }
    });
    let models = models_file(dir.path(), &s.base_url(), "judge = true\n");
    let out = critique(dir.path(), &models);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(common::json_of(&out)["model_choice"], "parsed");

    // Answers that name no candidate: the rules' critique, and the JSON says so.
    let s = critique_server("vllm", |_| completion("I would rather not say."));
    let models = models_file(dir.path(), &s.base_url(), "judge = true\nguided = \"none\"\n");
    let out = critique(dir.path(), &models);
    assert!(out.status.success(), "{}", stderr(&out));
    let v = common::json_of(&out);
    assert_eq!(v["model_choice"], "rules", "{v}");
    assert!(stderr(&out).contains("rule-based check"), "{}", stderr(&out));
    // The rules still judged every criterion.
    assert!(v["criteria"].as_array().is_some_and(|c| !c.is_empty()), "{v}");
}

#[test]
fn a_scripted_roleplay_streams_the_boss_from_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let s =
        server(|_, _| Answer::Sse(chat_events(&["Fine. ", "Send me the deck by Thursday."], true)));
    let models = models_file(dir.path(), &s.base_url(), "languages = [\"en\"]\n");
    let script = dir.path().join("script.txt");
    std::fs::write(
        &script,
        "Hi Anna, I need your help with the pricing deck by Friday.\nThanks, I will.\n",
    )
    .unwrap();
    let args =
        ["roleplay", "--scenario", "ask-advice", "--script", script.to_str().unwrap(), "--json"];
    let out = upward(dir.path(), &models, &args);
    assert!(out.status.success(), "{}", stderr(&out));
    let v = common::json_of(&out);
    assert_eq!(v["boss"], "model", "{v}");
    let turns = v["turns"].as_array().unwrap();
    assert_eq!(turns.len(), 2);
    assert_eq!(turns[0]["boss"], "Fine. Send me the deck by Thursday.");
    // Each turn sent the conversation so far, the boss's earlier answer included. (The
    // debrief's better version may ask the model once more, after the turns.)
    let chats = s.requests_to("/v1/chat/completions");
    assert!((2..=3).contains(&chats.len()), "{}", chats.len());
    let second = chats[1].json()["messages"].to_string();
    assert!(second.contains("Send me the deck by Thursday."), "{second}");

    // A failing server is one line, not a panic.
    let s = server(|_, _| Answer::error(500, "model crashed"));
    let models = models_file(dir.path(), &s.base_url(), "languages = [\"en\"]\n");
    let line = error_line(&upward(dir.path(), &models, &args));
    assert!(line.contains("server error (HTTP 500: model crashed)"), "{line}");
}
