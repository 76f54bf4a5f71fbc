//! `upward serve` over HTTP: a real server process on a free loopback port with SmolLM2,
//! driven with a blocking HTTP client the way the page and OpenAI clients use it.

mod common;

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Stdio};

/// A running `upward serve`; stopped with SIGTERM (graceful) when dropped.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    /// Starts `upward serve` on SmolLM2 in `dir` on a free port, greedy and short.
    fn start(dir: &Path) -> Server {
        Server::start_with(dir, &[])
    }

    /// [`Server::start`] with more `serve` arguments.
    fn start_with(dir: &Path, args: &[&str]) -> Server {
        let mut c = common::upward_std(dir);
        c.env("UPWARD_MODEL", common::smol());
        Server::spawn(c, args)
    }

    /// Runs `upward serve` with `c`'s global options (model, data dir) and `args`.
    fn spawn(mut c: std::process::Command, args: &[&str]) -> Server {
        c.args(["serve", "--listen", "127.0.0.1:0", "--temperature", "0"])
            .args(["--max-tokens", "24", "--ctx", "2048"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = c.spawn().expect("upward serve starts");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let base = loop {
            let line = lines.next().expect("upward serve printed its address").unwrap();
            if let Some(at) = line.find("http://") {
                break line[at..].trim_end_matches('/').to_string();
            }
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Server { child, base }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Stops the server gracefully and waits for it.
    fn stop(mut self) -> std::process::ExitStatus {
        terminate(&self.child);
        let status = self.child.wait().unwrap();
        std::mem::forget(self);
        status
    }
}

fn terminate(child: &Child) {
    // SAFETY: signalling a child process this test started.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        terminate(&self.child);
        let _ = self.child.wait();
    }
}

/// Status and JSON body of a response, whether it is a success or an error.
fn answer(r: Result<ureq::Response, ureq::Error>) -> (u16, Value) {
    let resp = match r {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("request failed: {e}"),
    };
    let status = resp.status();
    let text = resp.into_string().unwrap();
    let v = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    (status, v)
}

fn get(url: &str, token: Option<&str>) -> (u16, Value) {
    let mut r = ureq::get(url);
    if let Some(t) = token {
        r = r.set("Authorization", &format!("Bearer {t}"));
    }
    answer(r.call())
}

fn post(url: &str, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut r = ureq::post(url);
    if let Some(t) = token {
        r = r.set("Authorization", &format!("Bearer {t}"));
    }
    answer(r.send_json(body))
}

/// One Server-Sent Event.
#[derive(Debug)]
struct Sse {
    event: String,
    data: String,
}

/// Reads a whole SSE response into its events.
fn sse_events(resp: ureq::Response) -> Vec<Sse> {
    assert!(resp.content_type().starts_with("text/event-stream"), "{}", resp.content_type());
    let mut text = String::new();
    resp.into_reader().read_to_string(&mut text).unwrap();
    let mut out = Vec::new();
    for block in text.split("\n\n") {
        let (mut event, mut data) = (String::from("message"), Vec::new());
        for line in block.lines() {
            if let Some(e) = line.strip_prefix("event:") {
                event = e.trim().to_string();
            } else if let Some(d) = line.strip_prefix("data:") {
                data.push(d.strip_prefix(' ').unwrap_or(d).to_string());
            }
        }
        if !data.is_empty() {
            out.push(Sse { event, data: data.join("\n") });
        }
    }
    out
}

/// Plays one role-play turn over SSE; returns its events.
fn turn(server: &Server, token: Option<&str>, id: &str, text: &str) -> Vec<Sse> {
    let mut r = ureq::post(&server.url(&format!("/api/roleplay/{id}/turn")));
    if let Some(t) = token {
        r = r.set("Authorization", &format!("Bearer {t}"));
    }
    sse_events(r.send_json(json!({ "text": text })).expect("the turn streams"))
}

fn data(e: &Sse) -> Value {
    serde_json::from_str(&e.data).unwrap_or_else(|err| panic!("bad event data ({err}): {e:?}"))
}

fn add_user(dir: &Path, name: &str) -> String {
    let out = common::upward(dir).args(["users", "add", name]).output().unwrap();
    let stdout = common::stdout_of(&out);
    let token = stdout.lines().last().expect("a token line").to_string();
    assert!(!token.contains(' ') && token.len() > 40, "the last line is the token alone: {stdout}");
    token
}

const DRAFT: &str = "Hi Dana, the Acme renewal is stuck in procurement: their CFO wants a 15% \
discount by Friday. I tried two counter-offers. Could you join a 20-minute call on Thursday \
so we can keep the deal at 8%?";

/// The page's critique is the object `upward critique --json` prints, and it is saved.
#[test]
fn a_critique_is_the_cli_object_and_is_saved() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let (status, v) =
        post(&server.url("/api/critique"), None, json!({ "text": DRAFT, "kind": "help" }));
    assert_eq!(status, 200, "{v}");
    let cli = common::upward_smol(dir.path())
        .args(["critique", "--json", "--kind", "help", "--no-save", "-"])
        .write_stdin(DRAFT)
        .output()
        .unwrap();
    let cli = common::json_of(&cli);
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&v), keys(&cli), "the same fields as the CLI");
    assert_eq!(v["model"], cli["model"]);
    assert_eq!(v["criteria"], cli["criteria"], "the same rubric verdicts");
    let (_, list) = get(&server.url("/api/sessions"), None);
    let list = list["sessions"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["kind"], "critique");
    // Bad input is a JSON 400, never a panic.
    let (status, e) = post(&server.url("/api/critique"), None, json!({ "text": "  " }));
    assert_eq!((status, e["code"].as_str()), (400, Some("empty")));
    let long = "x".repeat(8_001);
    let (status, e) = post(&server.url("/api/critique"), None, json!({ "text": long }));
    assert_eq!((status, e["code"].as_str()), (400, Some("too_long")));
    assert!(server.stop().success());
}

/// Two turns streamed over SSE: deltas join to the boss's line, the turn is scored and
/// moves trust, the second turn reuses the conversation's cache even after another
/// conversation used the model, and both turns are in the saved session.
#[test]
fn a_two_turn_roleplay_streams_over_sse_and_is_saved() {
    let dir = tempfile::tempdir().unwrap();
    // One slot: the other conversation below takes it, so this one's cache is copied out
    // and loaded back for its second turn.
    let server = Server::start_with(dir.path(), &["--slots", "1"]);
    let (status, me) = get(&server.url("/api/me"), None);
    assert_eq!(status, 200);
    assert_eq!((me["user"].as_str(), me["auth"].as_bool()), (Some("local"), Some(false)));
    let (_, sc) = get(&server.url("/api/scenarios?lang=en"), None);
    assert!(sc["scenarios"].as_array().unwrap().iter().any(|s| s["id"] == "weekly-report"));
    let start = json!({ "scenario": "weekly-report", "lang": "en" });
    let (status, rp) = post(&server.url("/api/roleplay"), None, start.clone());
    assert_eq!(status, 200, "{rp}");
    let id = rp["id"].as_str().unwrap().to_string();
    assert!(!rp["opening"].as_str().unwrap().is_empty());
    let lines = [
        "The Acme renewal slipped a week because procurement wants a discount. I called their CFO twice.",
        "Could you join a 20-minute call on Thursday so we can hold the price?",
    ];
    let mut trust = rp["trust"].as_i64().unwrap();
    let mut reused = Vec::new();
    for (n, line) in lines.iter().enumerate() {
        if n == 1 {
            // Another conversation takes the model between this one's turns.
            let (_, other) = post(&server.url("/api/roleplay"), None, start.clone());
            let o = turn(
                &server,
                None,
                other["id"].as_str().unwrap(),
                "Quick update on Beta: on track.",
            );
            assert!(o.iter().any(|e| e.event == "done"));
        }
        let events = turn(&server, None, &id, line);
        let deltas: String = events
            .iter()
            .filter(|e| e.event == "delta")
            .map(|e| data(e)["text"].as_str().unwrap().to_string())
            .collect();
        let t = events.iter().find(|e| e.event == "turn").map(data).expect("a turn event");
        let done = events.iter().find(|e| e.event == "done").map(data).expect("a done event");
        assert!(events.iter().filter(|e| e.event == "delta").count() > 1, "streamed: {events:?}");
        assert_eq!(deltas, t["boss"].as_str().unwrap(), "the deltas are the boss's line");
        assert!(t["score"]["score"].as_u64().unwrap() <= 100);
        assert!(t["score"]["scores"].as_object().is_some_and(|s| !s.is_empty()));
        let now = t["trust"].as_i64().unwrap();
        assert_eq!(t["trust_delta"].as_i64().unwrap(), now - trust);
        trust = now;
        assert_eq!(done["turn"].as_u64(), Some(n as u64 + 1));
        assert_eq!(done["interrupted"], false);
        reused.push((t["reused_tokens"].as_u64().unwrap(), t["prompt_tokens"].as_u64().unwrap()));
        if n == 1 {
            let session = done["session"].as_i64().expect("saved");
            let (status, s) = get(&server.url(&format!("/api/sessions/{session}")), None);
            assert_eq!(status, 200, "{s}");
            let turns = s["turns"].as_array().unwrap();
            let texts: Vec<&str> = turns.iter().map(|t| t["text"].as_str().unwrap()).collect();
            assert!(texts.contains(&lines[0]) && texts.contains(&lines[1]), "{texts:?}");
            assert_eq!(turns.len(), 4, "two user lines and two boss lines");
        }
    }
    // The second turn ran on the first one's cache, loaded back: most of its prompt is reused.
    let (reused2, prompt2) = reused[1];
    assert!(reused2 * 2 > prompt2, "second turn reused {reused2} of {prompt2} prompt tokens");
    eprintln!("second turn: {reused2} of {prompt2} prompt tokens reused");
    let (status, end) = post(&server.url(&format!("/api/roleplay/{id}/end")), None, json!({}));
    assert_eq!(status, 200, "{end}");
    assert!(end["debrief"].is_object());
    let (status, _) = post(&server.url(&format!("/api/roleplay/{id}/hint")), None, json!({}));
    assert_eq!(status, 404, "an ended role-play is gone");
    assert!(server.stop().success());
}

/// The OpenAI-compatible API, non-streamed and streamed.
#[test]
fn openai_chat_completions_stream_and_not() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let (status, models) = get(&server.url("/v1/models"), None);
    assert_eq!(status, 200);
    let model = models["data"][0]["id"].as_str().unwrap().to_string();
    let body = json!({
        "model": model,
        "messages": [{ "role": "user", "content": "Name three colours." }],
        "temperature": 0.0, "top_p": 1.0, "max_tokens": 12, "seed": 7,
    });
    let (status, v) = post(&server.url("/v1/chat/completions"), None, body.clone());
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["object"], "chat.completion");
    let text = v["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(!text.trim().is_empty());
    assert!(v["usage"]["completion_tokens"].as_u64().unwrap() <= 12);
    let mut stream = body.clone();
    stream["stream"] = json!(true);
    let resp = ureq::post(&server.url("/v1/chat/completions")).send_json(stream).unwrap();
    let events = sse_events(resp);
    assert_eq!(events.last().unwrap().data, "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1].iter().map(data).collect();
    assert!(chunks.iter().all(|c| c["object"] == "chat.completion.chunk"));
    let streamed: String =
        chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    assert!(!streamed.trim().is_empty());
    let last = &chunks[chunks.len() - 1]["choices"][0]["finish_reason"];
    assert!(last == "stop" || last == "length", "{last}");
    // A stop sequence ends the reply before it.
    let mut stopped = body.clone();
    stopped["stop"] = json!([text.chars().skip(3).take(3).collect::<String>()]);
    let (_, s) = post(&server.url("/v1/chat/completions"), None, stopped.clone());
    let cut = s["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(!cut.contains(stopped["stop"][0].as_str().unwrap()), "{cut:?}");
    // Bad parameters are OpenAI-shaped 400s; an unknown model is a 404.
    let mut bad = body.clone();
    bad["temperature"] = json!(3.5);
    let (status, e) = post(&server.url("/v1/chat/completions"), None, bad);
    assert_eq!(status, 400);
    assert!(e["error"]["message"].is_string());
    let mut other = body;
    other["model"] = json!("gpt-nothing");
    assert_eq!(post(&server.url("/v1/chat/completions"), None, other).0, 404);
    assert!(server.stop().success());
}

/// Several requests at once decode together (the model's largest batch is more than one
/// reply), and each reply is the one it gets alone, on a server with one slot.
#[test]
fn concurrent_requests_decode_together_and_match_their_replies_alone() {
    let prompts = [
        "Name three colours.",
        "Count from one to five.",
        "请用一句话介绍你自己。",
        "Write one short sentence to a sales manager.",
    ];
    let replies = |slots: &str, together: bool| -> (Vec<String>, Value) {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::start_with(dir.path(), &["--slots", slots]);
        let (_, models) = get(&server.url("/v1/models"), None);
        let model = models["data"][0]["id"].as_str().unwrap().to_string();
        let ask = |prompt: &str| {
            let body = json!({
                "model": model,
                "messages": [{ "role": "user", "content": prompt }],
                "temperature": 0.0, "max_tokens": 40,
            });
            let (status, v) = post(&server.url("/v1/chat/completions"), None, body);
            assert_eq!(status, 200, "{v}");
            v["choices"][0]["message"]["content"].as_str().unwrap().to_string()
        };
        let texts: Vec<String> = if together {
            std::thread::scope(|s| {
                let asks: Vec<_> = prompts.iter().map(|p| s.spawn(|| ask(p))).collect();
                asks.into_iter().map(|h| h.join().unwrap()).collect()
            })
        } else {
            prompts.iter().map(|p| ask(p)).collect()
        };
        let (status, health) = get(&server.url("/api/status"), None);
        assert_eq!(status, 200, "{health}");
        assert!(server.stop().success());
        (texts, health)
    };
    let (alone, one) = replies("1", false);
    assert_eq!(one["model"]["slots"], 1, "{one}");
    assert_eq!(one["model"]["largest_batch"], 1, "{one}");
    assert!(alone.iter().all(|t| !t.trim().is_empty()), "{alone:?}");
    let (together, four) = replies("4", true);
    assert_eq!(four["model"]["slots"], 4, "{four}");
    assert_eq!(four["model"]["replies"], 4, "{four}");
    assert!(four["model"]["largest_batch"].as_u64().unwrap() >= 2, "decoded together: {four}");
    assert_eq!(together, alone, "each reply is the one it gets alone");
}

/// Once a user exists every request needs a token (bearer or the login cookie with its
/// CSRF header); the page, its files and /healthz stay open.
#[test]
fn users_need_a_token_or_a_login() {
    let dir = tempfile::tempdir().unwrap();
    let token = add_user(dir.path(), "ana");
    let list =
        common::stdout_of(&common::upward(dir.path()).args(["users", "list"]).output().unwrap());
    assert!(list.contains("ana") && !list.contains(&token));
    let server = Server::start(dir.path());
    let (status, e) = get(&server.url("/api/me"), None);
    assert_eq!((status, e["code"].as_str()), (401, Some("unauthorized")));
    assert_eq!(get(&server.url("/api/sessions"), Some("upw_0000_bad")).0, 401);
    assert_eq!(post(&server.url("/v1/chat/completions"), None, json!({})).0, 401);
    assert_eq!(get(&server.url("/healthz"), None), (200, json!({ "ok": true })));
    let (status, me) = get(&server.url("/api/me"), Some(&token));
    assert_eq!((status, me["user"].as_str(), me["auth"].as_bool()), (200, Some("ana"), Some(true)));
    // The page's login: an HttpOnly, SameSite=Strict cookie, and CSRF for writes.
    let resp = ureq::post(&server.url("/api/login")).send_json(json!({ "token": token })).unwrap();
    let cookie = resp.header("set-cookie").unwrap().to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    let csrf = resp.into_json::<Value>().unwrap()["csrf"].as_str().unwrap().to_string();
    let session = cookie.split(';').next().unwrap().to_string();
    let me = ureq::get(&server.url("/api/me")).set("Cookie", &session).call().unwrap();
    assert_eq!(me.into_json::<Value>().unwrap()["csrf"], json!(csrf));
    let start = json!({ "scenario": "weekly-report", "lang": "en" });
    let no_csrf =
        ureq::post(&server.url("/api/roleplay")).set("Cookie", &session).send_json(start.clone());
    assert_eq!(answer(no_csrf).0, 403);
    let with = ureq::post(&server.url("/api/roleplay"))
        .set("Cookie", &session)
        .set("X-CSRF-Token", &csrf)
        .send_json(start);
    assert_eq!(answer(with).0, 200);
    let (status, _) = post(&server.url("/api/login"), None, json!({ "token": "upw_nope_nope" }));
    assert_eq!(status, 401);
    // A removed user's token stops working at once.
    common::stdout_of(
        &common::upward(dir.path()).args(["users", "remove", "ana"]).output().unwrap(),
    );
    assert_eq!(get(&server.url("/api/me"), Some(&token)).0, 401);
    assert!(server.stop().success());
}

/// User B cannot read or delete user A's session: a 404 exactly like a missing one.
#[test]
fn another_users_session_is_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let a = add_user(dir.path(), "ana");
    let b = add_user(dir.path(), "bo");
    let server = Server::start(dir.path());
    let (status, _) = post(&server.url("/api/critique"), Some(&a), json!({ "text": DRAFT }));
    assert_eq!(status, 200);
    let (_, list) = get(&server.url("/api/sessions"), Some(&a));
    let id = list["sessions"][0]["id"].as_i64().unwrap();
    let (_, theirs) = get(&server.url("/api/sessions"), Some(&b));
    assert_eq!(theirs["sessions"], json!([]), "B sees none of A's sessions");
    let other = get(&server.url(&format!("/api/sessions/{id}")), Some(&b));
    let missing = get(&server.url("/api/sessions/999999"), Some(&b));
    assert_eq!(other.0, 404);
    assert_eq!(other, missing, "the same answer as a missing session");
    let del = answer(
        ureq::delete(&server.url(&format!("/api/sessions/{id}")))
            .set("Authorization", &format!("Bearer {b}"))
            .call(),
    );
    assert_eq!(del.0, 404);
    assert_eq!(get(&server.url(&format!("/api/sessions/{id}")), Some(&a)).0, 200, "still A's");
    // A role-play run id of A's is just as unknown to B.
    let (_, rp) =
        post(&server.url("/api/roleplay"), Some(&a), json!({ "scenario": "weekly-report" }));
    let hint = format!("/api/roleplay/{}/hint", rp["id"].as_str().unwrap());
    assert_eq!(post(&server.url(&hint), Some(&b), json!({})).0, 404);
    assert_eq!(post(&server.url(&hint), Some(&a), json!({})).0, 200);
    assert!(server.stop().success());
}

/// Off loopback with no users, `serve` refuses to start, with one line saying why.
#[test]
fn serve_refuses_to_listen_off_loopback_without_users() {
    let dir = tempfile::tempdir().unwrap();
    let out = common::upward_smol(dir.path())
        .args(["serve", "--listen", "0.0.0.0:0"])
        .timeout(std::time::Duration::from_secs(120))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("refusing to listen on 0.0.0.0") && err.contains("users add"), "{err}");
}

/// upward's own remote backend on `upward serve`'s OpenAI endpoint: a second upward,
/// with nothing but a models.toml entry (`api = "openai"`), verifies the model, chats and
/// critiques through the server, and saves in its own store.
#[test]
fn upward_runs_on_another_upwards_openai_endpoint() {
    let server_dir = tempfile::tempdir().unwrap();
    let server = Server::start(server_dir.path());
    let (status, models) = get(&server.url("/v1/models"), None);
    assert_eq!(status, 200);
    let id = models["data"][0]["id"].as_str().unwrap().to_string();
    let client_dir = tempfile::tempdir().unwrap();
    let file = client_dir.path().join("models.toml");
    let entry = format!(
        "[[models]]\nname = \"team\"\napi = \"openai\"\nbase_url = \"{}\"\nmodel = \"{id}\"\n",
        server.url("/v1")
    );
    std::fs::write(&file, entry).unwrap();
    let client = |args: &[&str]| {
        let mut c = common::upward(client_dir.path());
        for v in ["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"] {
            c.env_remove(v);
        }
        c.arg("--models-file").arg(&file).args(["--model", "team"]).args(args);
        c.timeout(std::time::Duration::from_secs(300)).output().unwrap()
    };
    let verify = client(&["models", "verify", "team"]);
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stderr));
    let chat = client(&["chat", "--prompt", "Name a colour.", "--max-tokens", "8", "--json"]);
    assert!(chat.status.success(), "{}", String::from_utf8_lossy(&chat.stderr));
    let reply: Value = serde_json::from_slice(&chat.stdout).unwrap();
    assert!(!reply["answer"].as_str().unwrap().trim().is_empty(), "{reply}");
    assert!(reply.get("incomplete").is_none(), "{reply}");
    let draft = client_dir.path().join("draft.txt");
    std::fs::write(&draft, "王总，这个客户一直拖着不签，您看怎么办？").unwrap();
    let critique = client(&["critique", "--json", draft.to_str().unwrap()]);
    assert!(critique.status.success(), "{}", String::from_utf8_lossy(&critique.stderr));
    let c: Value = serde_json::from_slice(&critique.stdout).unwrap();
    assert_eq!(c["model"], "team", "{c}");
    assert!(c["criteria"].as_array().is_some_and(|a| !a.is_empty()), "{c}");
    // Both are in the client's own store; the server's stays empty of them.
    let list = common::upward(client_dir.path()).args(["sessions", "list", "--json"]).output();
    let list: Value = serde_json::from_slice(&list.unwrap().stdout).unwrap();
    assert_eq!(list.as_array().map(Vec::len), Some(2), "{list}");
    // A second server on the remote model: one request at a time (the remote batches).
    let relay_dir = tempfile::tempdir().unwrap();
    let mut c = common::upward_std(relay_dir.path());
    for v in ["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"] {
        c.env_remove(v);
    }
    c.arg("--models-file").arg(&file).args(["--model", "team"]);
    let relay = Server::spawn(c, &["--slots", "4"]);
    let (_, health) = get(&relay.url("/api/status"), None);
    assert_eq!(health["model"]["slots"], 1, "{health}");
    let body = json!({ "text": "王总，这个客户一直拖着不签，您看怎么办？" });
    let (status, c) = post(&relay.url("/api/critique"), None, body);
    assert_eq!(status, 200, "{c}");
    assert!(c["criteria"].as_array().is_some_and(|a| !a.is_empty()), "{c}");
    assert!(relay.stop().success());
    assert!(server.stop().success());
}
