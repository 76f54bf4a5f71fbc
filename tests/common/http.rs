//! A tiny HTTP/1.1 server on loopback for the remote-backend tests: each request is
//! recorded and answered by the test's handler (a full response, a server-sent event
//! stream that may break off, or raw bytes); every connection is closed after one
//! answer.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// A request as the server saw it.
#[derive(Clone, Debug)]
pub struct Req {
    /// `GET`, `POST`.
    pub method: String,
    /// The path, e.g. `/v1/chat/completions`.
    pub path: String,
    /// Header lines, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: String,
}

impl Req {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The body as JSON (Null when it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// How to answer.
pub enum Answer {
    /// Status, extra headers, body (sent with Content-Length).
    Full(u16, Vec<(String, String)>, String),
    /// `text/event-stream`: these events (each sent as `data: ...\n\n`), then the
    /// connection closes.
    Sse(Vec<String>),
    /// Bytes as they are, then close.
    Raw(Vec<u8>),
}

impl Answer {
    /// A JSON body with status 200.
    pub fn json(v: serde_json::Value) -> Answer {
        Answer::Full(200, vec![("Content-Type".into(), "application/json".into())], v.to_string())
    }

    /// A JSON error body with `status`.
    pub fn error(status: u16, message: &str) -> Answer {
        Answer::Full(
            status,
            vec![("Content-Type".into(), "application/json".into())],
            serde_json::json!({"error": {"message": message}}).to_string(),
        )
    }
}

/// The running server.
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Every request so far, in order.
    pub requests: Arc<Mutex<Vec<Req>>>,
}

impl Server {
    /// Starts a server whose `handler` gets each request and how many came before it.
    pub fn start<F>(handler: F) -> Server
    where
        F: Fn(&Req, usize) -> Answer + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        let handler = Arc::new(handler);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (seen, handler) = (seen.clone(), handler.clone());
                std::thread::spawn(move || serve(stream, &seen, &*handler));
            }
        });
        Server { addr, requests }
    }

    /// The API root, `http://127.0.0.1:PORT/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The requests to `path` so far.
    pub fn requests_to(&self, path: &str) -> Vec<Req> {
        self.requests.lock().unwrap().iter().filter(|r| r.path == path).cloned().collect()
    }
}

fn serve(stream: TcpStream, seen: &Mutex<Vec<Req>>, handler: &dyn Fn(&Req, usize) -> Answer) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let mut headers = Vec::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((n, v)) = l.split_once(':') {
            headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let len = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    let _ = reader.read_exact(&mut body);
    let req = Req { method, path, headers, body: String::from_utf8_lossy(&body).into_owned() };
    let n = {
        let mut s = seen.lock().unwrap();
        s.push(req.clone());
        s.len() - 1
    };
    let mut out = stream;
    let answer = handler(&req, n);
    let _ = match answer {
        Answer::Full(status, hdrs, body) => {
            let mut head = format!(
                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
                body.len()
            );
            for (k, v) in hdrs {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str("\r\n");
            out.write_all(head.as_bytes()).and_then(|_| out.write_all(body.as_bytes()))
        }
        Answer::Sse(events) => {
            let mut text = String::from(
                "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n",
            );
            for e in events {
                text.push_str(&format!("data: {e}\n\n"));
            }
            out.write_all(text.as_bytes())
        }
        Answer::Raw(bytes) => out.write_all(&bytes),
    };
    let _ = out.flush();
}

/// The events of a streamed chat reply: `pieces` as deltas, then (when `finish`) a
/// stop, the usage and `[DONE]`.
pub fn chat_events(pieces: &[&str], finish: bool) -> Vec<String> {
    let mut ev: Vec<String> = pieces
        .iter()
        .map(|p| {
            serde_json::json!({"choices": [{"index": 0, "delta": {"content": p}, "finish_reason": null}]})
                .to_string()
        })
        .collect();
    if finish {
        ev.push(
            serde_json::json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
                .to_string(),
        );
        ev.push(
            serde_json::json!({"choices": [], "usage": {"prompt_tokens": 21, "completion_tokens": 7, "total_tokens": 28}})
                .to_string(),
        );
        ev.push("[DONE]".into());
    }
    ev
}

/// A `/v1/models` answer listing `ids`, owned by `owned_by`.
pub fn models_answer(ids: &[&str], owned_by: &str) -> Answer {
    Answer::json(serde_json::json!({
        "object": "list",
        "data": ids.iter().map(|id| serde_json::json!({"id": id, "object": "model", "owned_by": owned_by})).collect::<Vec<_>>(),
    }))
}
