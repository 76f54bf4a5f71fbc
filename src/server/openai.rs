//! The OpenAI-compatible API: `GET /v1/models` and `POST /v1/chat/completions`, streamed
//! (`data: {chunk}` lines ending with `data: [DONE]`) or not, through the same fair queue
//! as the coach. Errors use OpenAI's shape, `{"error": {"message", "type", "code"}}`.

use super::api::{on_model, Body, TurnStream};
use super::auth::Caller;
use super::error::ApiError;
use super::queue::Job;
use super::AppState;
use crate::backend::{ChatBackend, ChatRequest};
use crate::engine::{Reply, StopReason, StopRules};
use crate::gguf::chat_template::ChatMessage;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Most stop sequences (as OpenAI allows).
const MAX_STOPS: usize = 4;

/// An error in OpenAI's shape.
pub(crate) struct OpenAiError(ApiError);

impl From<ApiError> for OpenAiError {
    fn from(e: ApiError) -> Self {
        OpenAiError(e)
    }
}

impl IntoResponse for OpenAiError {
    fn into_response(self) -> Response {
        let e = self.0;
        let kind =
            if e.status.is_server_error() { "server_error" } else { "invalid_request_error" };
        let body = json!({ "error": { "message": e.message, "type": kind, "code": e.code } });
        let mut r = (e.status, Json(body)).into_response();
        if let Some(s) = e.retry_after {
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        r
    }
}

/// The caller, with an OpenAI-shaped 401.
pub(crate) struct OpenAiCaller(Caller);

impl FromRequestParts<Arc<AppState>> for OpenAiCaller {
    type Rejection = OpenAiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, OpenAiError> {
        Ok(OpenAiCaller(super::auth::authenticate(state, parts)?))
    }
}

/// `GET /v1/models`: the one model this server runs.
pub(crate) async fn models(State(s): State<Arc<AppState>>, _c: OpenAiCaller) -> Json<Value> {
    Json(json!({
        "object": "list",
        "data": [{ "id": s.model_name, "object": "model", "created": 0, "owned_by": "upward" }],
    }))
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<Part>),
}

#[derive(Deserialize)]
struct Part {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
}

#[derive(Deserialize)]
struct Message {
    role: String,
    content: Option<Content>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Stop {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
pub(crate) struct ChatBody {
    #[serde(default)]
    model: Option<String>,
    messages: Vec<Message>,
    #[serde(default)]
    stream: bool,
    #[serde(default)]
    temperature: Option<f32>,
    #[serde(default)]
    top_p: Option<f32>,
    #[serde(default)]
    max_tokens: Option<usize>,
    #[serde(default)]
    max_completion_tokens: Option<usize>,
    #[serde(default)]
    stop: Option<Stop>,
    #[serde(default)]
    seed: Option<u64>,
}

fn bad(code: &'static str, message: impl Into<String>) -> OpenAiError {
    OpenAiError(ApiError::bad_request(code, message))
}

/// The conversation, checked: known roles, text content.
fn messages(body: &ChatBody) -> Result<Vec<ChatMessage>, OpenAiError> {
    if body.messages.is_empty() {
        return Err(bad("invalid_messages", "messages is empty"));
    }
    body.messages
        .iter()
        .map(|m| {
            let role = match m.role.as_str() {
                "system" | "developer" => "system",
                "user" => "user",
                "assistant" => "assistant",
                other => {
                    return Err(bad("invalid_role", format!("role {other:?} is not supported")))
                }
            };
            let text = match &m.content {
                None => String::new(),
                Some(Content::Text(t)) => t.clone(),
                Some(Content::Parts(parts)) => {
                    if parts.iter().any(|p| p.kind != "text") {
                        return Err(bad("invalid_content", "only text content is supported"));
                    }
                    parts.iter().filter_map(|p| p.text.as_deref()).collect::<Vec<_>>().join("")
                }
            };
            Ok(ChatMessage::new(role, &text))
        })
        .collect()
}

/// `POST /v1/chat/completions`.
pub(crate) async fn chat_completions(
    State(s): State<Arc<AppState>>,
    OpenAiCaller(caller): OpenAiCaller,
    body: Result<Body<ChatBody>, ApiError>,
) -> Result<Response, OpenAiError> {
    let Body(body) = body?;
    if let Some(m) = body.model.as_deref().filter(|m| !m.is_empty() && *m != s.model_name) {
        return Err(OpenAiError(ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            "model_not_found",
            format!("model {m:?} is not served here; GET /v1/models lists {:?}", s.model_name),
        )));
    }
    let msgs = messages(&body)?;
    let mut opts = s.sampling.clone();
    let t = body.temperature.unwrap_or(1.0);
    if !(0.0..=2.0).contains(&t) {
        return Err(bad("invalid_temperature", "temperature is between 0 and 2"));
    }
    let p = body.top_p.unwrap_or(1.0);
    if !(p > 0.0 && p <= 1.0) {
        return Err(bad("invalid_top_p", "top_p is in (0, 1]"));
    }
    opts.sampling.temperature = t;
    opts.sampling.top_p = p;
    opts.sampling.seed = body.seed.unwrap_or_else(rand::random);
    if let Some(n) = body.max_completion_tokens.or(body.max_tokens) {
        if n == 0 {
            return Err(bad("invalid_max_tokens", "max_tokens is at least 1"));
        }
        opts.max_tokens = n.min(s.context_size);
    }
    let stops = match body.stop {
        None => Vec::new(),
        Some(Stop::One(s)) => vec![s],
        Some(Stop::Many(v)) => v,
    };
    if stops.len() > MAX_STOPS || stops.iter().any(|s| s.is_empty()) {
        return Err(bad("invalid_stop", "stop is up to 4 non-empty strings"));
    }
    let rules = StopRules { stop_strings: stops, ..StopRules::default() };
    let id = format!("chatcmpl-{}", rand::random::<u64>());
    let created = chrono::Utc::now().timestamp();
    let model = s.model_name.clone();
    if !body.stream {
        let reply = on_model(&s, &caller, move |w, cancel| {
            w.enter(None);
            let req = ChatRequest { messages: &msgs, options: opts, rules };
            w.model.chat(&req, cancel, &mut |_| {})
        })
        .await?
        .map_err(|e| backend_error(&e))?;
        let v = json!({
            "id": id, "object": "chat.completion", "created": created, "model": model,
            "choices": [{
                "index": 0,
                "message": { "role": "assistant", "content": reply.text },
                "finish_reason": finish(&reply),
            }],
            "usage": usage(&reply),
        });
        return Ok(Json(v).into_response());
    }
    s.rate(&caller.name)?;
    let (tx, rx) = mpsc::unbounded_channel();
    let cancel = Arc::new(AtomicBool::new(false));
    let chunk = {
        let (id, model) = (id.clone(), model.clone());
        move |delta: Value, finish: Value| {
            let v = json!({
                "id": id, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }],
            });
            SseEvent::default().data(v.to_string())
        }
    };
    let (flag, out) = (cancel.clone(), tx.clone());
    let work = move |w: &mut super::queue::Worker| {
        w.enter(None);
        let send = |e: SseEvent| {
            if out.send(e).is_err() {
                flag.store(true, Ordering::Relaxed);
            }
        };
        send(chunk(json!({ "role": "assistant", "content": "" }), Value::Null));
        let req = ChatRequest { messages: &msgs, options: opts, rules };
        let result =
            w.model.chat(&req, &flag, &mut |t| send(chunk(json!({ "content": t }), Value::Null)));
        match result {
            Ok(reply) => send(chunk(json!({}), json!(finish(&reply)))),
            Err(e) => {
                let OpenAiError(e) = backend_error(&e);
                let v = json!({ "error": { "message": e.message, "type": "server_error", "code": e.code } });
                send(SseEvent::default().data(v.to_string()));
            }
        }
        send(SseEvent::default().data("[DONE]"));
    };
    s.enqueue(Job {
        user: caller.name.clone(),
        cancel: cancel.clone(),
        position: Box::new(|_| {}),
        work: Box::new(work),
    })?;
    drop(tx);
    let stream = TurnStream { rx, cancel };
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(5)))
        .into_response())
}

fn finish(r: &Reply) -> &'static str {
    match r.stop {
        StopReason::MaxTokens | StopReason::ContextFull => "length",
        _ => "stop",
    }
}

fn usage(r: &Reply) -> Value {
    json!({
        "prompt_tokens": r.prompt_tokens,
        "completion_tokens": r.generated_tokens,
        "total_tokens": r.prompt_tokens + r.generated_tokens,
    })
}

fn backend_error(e: &crate::backend::BackendError) -> OpenAiError {
    if e.is_prompt_too_long() {
        bad("context_length_exceeded", e.to_string())
    } else {
        OpenAiError(ApiError::internal(e))
    }
}
