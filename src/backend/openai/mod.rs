//! [`ChatBackend`] for a remote OpenAI-compatible server (vLLM, llama.cpp's server,
//! Ollama): `/v1/chat/completions` streamed as server-sent events, and `/v1/models`.
//!
//! What maps onto the request: temperature, top_p, top_k, min_p, the repeat penalty
//! (sent as both `repeat_penalty` and `repetition_penalty`; each server reads its own),
//! seed, max_tokens, and the stop strings (plus `"\n\n"` for the blank-line rule). The
//! other [`StopRules`](crate::engine::StopRules) act on the streamed text as they do on our engine's (the same
//! [`ReplyText`]): sentence limits, turn markers, stripped speaker labels; when they end
//! the reply the stream is closed, which stops the server generating. Not honoured:
//! `vocatives` (banning tokens needs the server's tokenizer) and the engine's repetition
//! detector (it works on token ids).
//!
//! Without a tokenizer, token counts are estimates ([`estimate_tokens`]) unless the
//! server reports `usage`.

mod choice;
pub mod http;
mod sse;

use super::{BackendError, BackendInfo, ChatBackend, ChatRequest};
use crate::catalogue::{Guided, Remote};
use crate::engine::stop::{Cut, ReplyText};
use crate::engine::{Reply, StopReason};
use crate::gguf::chat_template::ChatMessage;
use http::Client;
use serde_json::{json, Value};
use sse::{Event, SseError, SseReader};
use std::io::BufReader;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// Context window assumed when neither the entry nor the server says.
pub const DEFAULT_CONTEXT: usize = 8192;

/// Tokens of `text` estimated without a tokenizer: each CJK character (Han, kana,
/// Hangul, CJK punctuation) counts one token, and the rest one token per four
/// characters, rounded up. Real tokenizers of the models we target (Qwen, Llama) give
/// about this for Chinese and English prose.
pub fn estimate_tokens(text: &str) -> usize {
    let (mut cjk, mut other) = (0usize, 0usize);
    for c in text.chars() {
        if is_cjk(c) {
            cjk += 1;
        } else {
            other += 1;
        }
    }
    cjk + other.div_ceil(4)
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3000..=0x303F | 0x3040..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF
        | 0xAC00..=0xD7AF | 0xF900..=0xFAFF | 0xFF00..=0xFFEF | 0x20000..=0x2FA1F)
}

/// A model on an OpenAI-compatible server.
#[derive(Debug)]
pub struct OpenAiBackend {
    client: Client,
    remote: Remote,
    context: usize,
    /// The guided decoding in use (never `Auto` once connected).
    guided: Guided,
    /// How the last [`ChatBackend::choose`] was decided.
    last_choice: Option<&'static str>,
    /// Why the last reply is incomplete (the server closed the stream mid-reply).
    incomplete: Option<String>,
}

/// One model as `/v1/models` lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ServerModel {
    /// The model id.
    pub id: String,
    /// `owned_by`, which names the server software on vLLM and llama.cpp.
    pub owned_by: Option<String>,
    /// The context window, where the server says (`max_model_len` on vLLM,
    /// `meta.n_ctx_train` on llama.cpp).
    pub context: Option<usize>,
}

/// Lists the models a server serves (`GET /v1/models`).
pub fn list_models(remote: &Remote) -> Result<Vec<ServerModel>, BackendError> {
    let client = Client::new(&remote.base_url, remote.api_key_env.as_deref())?;
    models_of(&client)
}

fn models_of(client: &Client) -> Result<Vec<ServerModel>, BackendError> {
    let resp = client.get("models", &AtomicBool::new(false))?;
    let v: Value =
        resp.into_json().map_err(|e| client.error(format!("/models did not answer JSON ({e})")))?;
    let data = v
        .get("data")
        .or_else(|| v.get("models"))
        .and_then(Value::as_array)
        .ok_or_else(|| client.error("/models answered without a `data` list"))?;
    Ok(data
        .iter()
        .filter_map(|m| {
            let id = m.get("id").or_else(|| m.get("name"))?.as_str()?.to_string();
            let n = |v: Option<&Value>| v.and_then(Value::as_u64).map(|n| n as usize);
            let context = n(m.get("max_model_len")).or_else(|| n(m.pointer("/meta/n_ctx_train")));
            let owned_by = m.get("owned_by").and_then(Value::as_str).map(str::to_string);
            Some(ServerModel { id, owned_by, context })
        })
        .collect())
}

impl OpenAiBackend {
    /// Connects: asks the server for its models (so an unreachable server or a bad key
    /// fails here, in one line), learns the context window and, for `guided = "auto"`,
    /// which guided decoding it has. `context_length` is the entry's (0: ask the server).
    pub fn connect(remote: &Remote, context_length: usize) -> Result<Self, BackendError> {
        let client = Client::new(&remote.base_url, remote.api_key_env.as_deref())?;
        let models = models_of(&client)?;
        let listed = models.iter().find(|m| m.id == remote.model);
        let context = match (context_length, listed.and_then(|m| m.context)) {
            (n, _) if n > 0 => n,
            (_, Some(n)) => n,
            _ => DEFAULT_CONTEXT,
        };
        let guided = match remote.guided {
            Guided::Auto => {
                choice::detect(listed.or(models.first()).and_then(|m| m.owned_by.as_deref()))
            }
            g => g,
        };
        Ok(OpenAiBackend {
            client,
            remote: remote.clone(),
            context,
            guided,
            last_choice: None,
            incomplete: None,
        })
    }

    /// The guided decoding used for choices.
    pub fn guided(&self) -> Guided {
        self.guided
    }

    fn sampling(&self, body: &mut Value, req: &ChatRequest<'_>) {
        let s = &req.options.sampling;
        let greedy = s.temperature <= 0.0;
        body["temperature"] = json!(s.temperature.max(0.0));
        if !greedy && s.top_p < 1.0 {
            body["top_p"] = json!(s.top_p);
        }
        if !greedy && s.top_k > 0 {
            body["top_k"] = json!(s.top_k);
        }
        if !greedy && s.min_p > 0.0 {
            body["min_p"] = json!(s.min_p);
        }
        if s.repeat_penalty != 1.0 {
            body["repeat_penalty"] = json!(s.repeat_penalty);
            body["repetition_penalty"] = json!(s.repeat_penalty);
        }
        body["seed"] = json!(s.seed);
    }

    /// Oldest messages (after a leading system message) left out until the estimate
    /// fits the context with room for the reply; the count left out.
    fn fit<'m>(
        &self,
        messages: &'m [ChatMessage],
        reserve: usize,
    ) -> Result<(Vec<&'m ChatMessage>, usize), BackendError> {
        let cost = |m: &ChatMessage| estimate_tokens(&m.content) + 4;
        let mut kept: Vec<&ChatMessage> = messages.iter().collect();
        let first = usize::from(kept.first().is_some_and(|m| m.role == "system"));
        let mut dropped = 0;
        while kept.iter().map(|m| cost(m)).sum::<usize>() + reserve > self.context
            && kept.len() > first + 1
        {
            kept.remove(first);
            dropped += 1;
        }
        let tokens: usize = kept.iter().map(|m| cost(m)).sum();
        if tokens + reserve.min(16) > self.context {
            return Err(BackendError::PromptTooLong { tokens, ctx: self.context });
        }
        Ok((kept, dropped))
    }

    fn stream(
        &mut self,
        req: &ChatRequest<'_>,
        cancel: &AtomicBool,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<Reply, BackendError> {
        self.incomplete = None;
        if req.messages.is_empty() {
            return Err(self.client.error("nothing to answer: the conversation is empty"));
        }
        let reserve = req.options.max_tokens.min(self.context / 2);
        let (kept, dropped) = self.fit(req.messages, reserve)?;
        let mut stop: Vec<String> = req.rules.stop_strings.clone();
        if req.rules.blank_line {
            stop.push("\n\n".into());
        }
        stop.retain(|s| !s.is_empty());
        let mut body = json!({
            "model": self.remote.model,
            "messages": kept.iter().map(|m| json!({"role": m.role, "content": m.content})).collect::<Vec<_>>(),
            "stream": true,
            "stream_options": {"include_usage": true},
            "max_tokens": req.options.max_tokens.max(1),
        });
        if !stop.is_empty() {
            body["stop"] = json!(stop);
        }
        self.sampling(&mut body, req);
        let started = Instant::now();
        let resp = self.client.post("chat/completions", &body, cancel)?;
        let json_reply = resp.content_type().starts_with("application/json");
        let mut state = StreamState::default();
        let markers: Vec<String> = Vec::new();
        let mut text = ReplyText::new(&req.rules, &markers);
        let mut cut = None;
        let mut first_token: Option<f64> = None;
        let mut emit = |piece: &str, text: &mut ReplyText, first: &mut Option<f64>| {
            first.get_or_insert_with(|| started.elapsed().as_secs_f64());
            let (out, c) = text.push(piece, false);
            if !out.is_empty() {
                on_text(&out);
            }
            c
        };
        if json_reply {
            // A server that ignored `stream`: one JSON completion.
            let v: Value = resp
                .into_json()
                .map_err(|e| self.client.error(format!("the answer is not JSON ({e})")))?;
            state.read_chunk(&v, "message").map_err(|e| self.client.error(e))?;
            let piece = std::mem::take(&mut state.pending);
            cut = emit(&piece, &mut text, &mut first_token);
            state.done = true;
        } else {
            let mut events = SseReader::new(BufReader::new(resp.into_reader()));
            loop {
                if cancel.load(Ordering::Relaxed) {
                    state.cancelled = true;
                    break;
                }
                let ev = match events.next_event() {
                    Ok(Some(ev)) => ev,
                    Ok(None) => break,
                    Err(SseError::Io(e)) => {
                        state.broken = Some(self.client.read_error(&e));
                        break;
                    }
                    Err(SseError::Malformed(line)) => {
                        return Err(self.client.error(format!(
                            "malformed event stream (a line reads `{line}`); is base_url an OpenAI-compatible API?"
                        )))
                    }
                };
                let data = match ev {
                    Event::Error(e) => {
                        return Err(self
                            .client
                            .error(format!("the server failed: {}", sse::snippet(&e))))
                    }
                    Event::Data(d) if d.trim() == "[DONE]" => {
                        state.done = true;
                        break;
                    }
                    Event::Data(d) => d,
                };
                let v: Value = serde_json::from_str(&data).map_err(|_| {
                    self.client.error(format!(
                        "malformed event stream: an event is not JSON (`{}`)",
                        sse::snippet(&data)
                    ))
                })?;
                state.read_chunk(&v, "delta").map_err(|e| self.client.error(e))?;
                let piece = std::mem::take(&mut state.pending);
                if !piece.is_empty() {
                    cut = emit(&piece, &mut text, &mut first_token);
                    if cut.is_some() {
                        break;
                    }
                }
            }
        }
        let reason = match (cut, state.cancelled, state.finish.as_deref()) {
            (Some(Cut::Sentences), _, _) => StopReason::Sentences,
            (Some(Cut::Marker), _, _) => StopReason::Marker,
            (None, true, _) => StopReason::Cancelled,
            (None, false, Some("length")) => StopReason::MaxTokens,
            (None, false, Some(_)) => StopReason::EndOfTurn,
            (None, false, None) if state.done => StopReason::EndOfTurn,
            (None, false, None) => {
                // Closed mid-reply: keep what came, and say so.
                let why = state.broken.take().unwrap_or_else(|| {
                    "the server closed the stream before the reply ended".to_string()
                });
                if first_token.is_none() {
                    return Err(self.client.error(format!("{why}; no reply came")));
                }
                self.incomplete = Some(why);
                StopReason::Cancelled
            }
        };
        let (rest, reply_text) = text.finish(reason == StopReason::MaxTokens);
        if !rest.is_empty() {
            on_text(&rest);
        }
        let total = started.elapsed().as_secs_f64();
        let prefill = first_token.unwrap_or(total);
        let prompt_tokens = state
            .prompt_tokens
            .unwrap_or_else(|| kept.iter().map(|m| estimate_tokens(&m.content) + 4).sum::<usize>());
        let reused = state.cached_tokens.unwrap_or(0).min(prompt_tokens);
        Ok(Reply {
            generated_tokens: state
                .completion_tokens
                .unwrap_or_else(|| estimate_tokens(&reply_text)),
            text: reply_text,
            prompt_tokens,
            reused_tokens: reused,
            prefilled_tokens: prompt_tokens - reused,
            prefill_secs: prefill,
            decode_secs: total - prefill,
            stop: reason,
            dropped_messages: dropped,
        })
    }

    /// One non-streamed completion, for a choice; the answer's text.
    fn complete(&self, body: &Value) -> Result<String, BackendError> {
        let resp = self.client.post("chat/completions", body, &AtomicBool::new(false))?;
        let v: Value = resp
            .into_json()
            .map_err(|e| self.client.error(format!("the answer is not JSON ({e})")))?;
        let mut state = StreamState::default();
        state.read_chunk(&v, "message").map_err(|e| self.client.error(e))?;
        Ok(state.pending)
    }
}

/// What the stream has said so far.
#[derive(Default)]
struct StreamState {
    pending: String,
    finish: Option<String>,
    done: bool,
    cancelled: bool,
    broken: Option<String>,
    prompt_tokens: Option<usize>,
    completion_tokens: Option<usize>,
    cached_tokens: Option<usize>,
}

impl StreamState {
    /// Reads one chunk (`delta`) or completion (`message`).
    fn read_chunk(&mut self, v: &Value, key: &str) -> Result<(), String> {
        if let Some(e) = v.get("error") {
            let msg =
                e.get("message").and_then(Value::as_str).map_or(e.to_string(), str::to_string);
            return Err(format!("the server failed: {}", sse::snippet(&msg)));
        }
        if let Some(c) = v.get("choices").and_then(Value::as_array).and_then(|c| c.first()) {
            if let Some(t) = c.get(key).and_then(|d| d.get("content")).and_then(Value::as_str) {
                self.pending.push_str(t);
            }
            if let Some(f) = c.get("finish_reason").and_then(Value::as_str) {
                self.finish = Some(f.to_string());
            }
        } else if v.get("usage").is_none() && v.get("choices").is_none() {
            return Err(format!("an event has no `choices` (`{}`)", sse::snippet(&v.to_string())));
        }
        if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
            let n = |p: &str| u.pointer(p).and_then(Value::as_u64).map(|n| n as usize);
            self.prompt_tokens = n("/prompt_tokens").or(self.prompt_tokens);
            self.completion_tokens = n("/completion_tokens").or(self.completion_tokens);
            self.cached_tokens = n("/prompt_tokens_details/cached_tokens").or(self.cached_tokens);
        }
        Ok(())
    }
}

impl ChatBackend for OpenAiBackend {
    fn info(&self) -> BackendInfo {
        BackendInfo {
            kind: "openai",
            model: self.remote.model.clone(),
            path: None,
            context_size: self.context,
        }
    }

    fn chat(
        &mut self,
        req: &ChatRequest<'_>,
        cancel: &AtomicBool,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<Reply, BackendError> {
        self.stream(req, cancel, on_text)
    }

    fn choose(
        &mut self,
        messages: &[ChatMessage],
        choices: &[&str],
    ) -> Result<usize, BackendError> {
        self.last_choice = Some("rules");
        if choices.is_empty() {
            return Err(self.client.error("nothing to choose from"));
        }
        let longest = choices.iter().map(|c| estimate_tokens(c)).max().unwrap_or(1);
        let ask = |mode: Guided| {
            let mut body = json!({
                "model": self.remote.model,
                "messages": choice::messages(mode, messages, choices),
                "temperature": 0.0,
                "max_tokens": longest + 24,
                "stream": false,
            });
            if let Some((field, value)) = choice::constraint(mode, choices) {
                body[field] = value;
            }
            body
        };
        if self.guided != Guided::None {
            match self.complete(&ask(self.guided)) {
                Ok(text) => {
                    if let Some(i) = choice::exact(&text, choices) {
                        self.last_choice = Some("guided");
                        return Ok(i);
                    }
                    // The server ignored the constraint (an unknown field is not an error
                    // everywhere): read the answer as a plain one.
                    if let Some(i) = choice::lenient(&text, choices) {
                        self.last_choice = Some("parsed");
                        return Ok(i);
                    }
                }
                // 400/422: the server has no such guided decoding; ask plainly from now on.
                Err(BackendError::Remote { reason, .. })
                    if reason.contains("HTTP 400") || reason.contains("HTTP 422") =>
                {
                    self.guided = Guided::None;
                }
                Err(e) => return Err(e),
            }
        }
        let text = self.complete(&ask(Guided::None))?;
        match choice::lenient(&text, choices) {
            Some(i) => {
                self.last_choice = Some("parsed");
                Ok(i)
            }
            None => Err(self.client.error(format!(
                "the model's answer `{}` is none of {}",
                sse::snippet(&text),
                choices.join(", ")
            ))),
        }
    }

    fn count_tokens(&self, text: &str) -> usize {
        estimate_tokens(text)
    }

    fn context_size(&self) -> usize {
        self.context
    }

    fn last_choice_mode(&self) -> Option<&'static str> {
        self.last_choice
    }

    fn incomplete(&self) -> Option<&str> {
        self.incomplete.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_estimate() {
        assert_eq!(estimate_tokens(""), 0);
        assert_eq!(estimate_tokens("abcd"), 1);
        assert_eq!(estimate_tokens("abcde"), 2);
        assert_eq!(estimate_tokens("老板，你好"), 5);
        assert_eq!(estimate_tokens("我用 AI"), 2 + 1);
    }

    #[test]
    fn usage_and_finish_are_read() {
        let mut s = StreamState::default();
        s.read_chunk(
            &json!({"choices":[{"delta":{"content":"Hi"},"finish_reason":null}]}),
            "delta",
        )
        .unwrap();
        s.read_chunk(
            &json!({"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":3,
                "prompt_tokens_details":{"cached_tokens":8}}}),
            "delta",
        )
        .unwrap();
        assert_eq!(s.pending, "Hi");
        assert_eq!(
            (s.prompt_tokens, s.completion_tokens, s.cached_tokens),
            (Some(12), Some(3), Some(8))
        );
        assert!(s
            .read_chunk(&json!({"error":{"message":"boom"}}), "delta")
            .unwrap_err()
            .contains("boom"));
        assert!(s.read_chunk(&json!({"hello":1}), "delta").is_err());
    }
}
