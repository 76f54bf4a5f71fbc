//! The coaching JSON API the page uses, and the role-play's Server-Sent Events. Each
//! handler calls the coaching service ([`crate::coach`]) or the caller's store; model
//! work goes through the fair queue. See docs/api.md.

use super::auth::{self, Caller, Users, COOKIE, LOGIN_TTL};
use super::error::{self, ApiError};
use super::queue::{Job, Worker};
use super::{AppState, MAX_DRAFT_CHARS};
use crate::backend::ChatBackend;
use crate::coach::critique::{self as service, Helper};
use crate::coach::roleplay::{RoleplayRun, Start};
use crate::coach::{Event, Notice};
use crate::critique::KindChoice;
use crate::lang::Lang;
use crate::roleplay::authored::{self, BossChoice, Why};
use crate::store::{export_json, export_markdown};
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

type Shared = State<Arc<AppState>>;

/// Most role-plays in memory per user (the oldest is dropped: it is saved, and resumes).
const RUNS_PER_USER: usize = 8;

/// A role-play in progress.
struct RunEntry {
    user: String,
    run: Arc<Mutex<RoleplayRun>>,
    used: Instant,
}

/// The role-plays in progress, by run id.
#[derive(Default)]
pub(crate) struct Runs(Mutex<HashMap<String, RunEntry>>);

impl Runs {
    /// Run `id` of `user`; another user's run is not found, like a missing one.
    fn get(&self, user: &str, id: &str) -> Result<Arc<Mutex<RoleplayRun>>, ApiError> {
        let mut runs = self.0.lock().map_err(ApiError::internal)?;
        match runs.get_mut(id) {
            Some(e) if e.user == user => {
                e.used = Instant::now();
                Ok(e.run.clone())
            }
            _ => Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such role-play")),
        }
    }

    fn insert(&self, user: &str, run: RoleplayRun) -> Result<String, ApiError> {
        let mut runs = self.0.lock().map_err(ApiError::internal)?;
        let mine: Vec<(String, Instant)> =
            runs.iter().filter(|(_, e)| e.user == user).map(|(k, e)| (k.clone(), e.used)).collect();
        if mine.len() >= RUNS_PER_USER {
            if let Some((oldest, _)) = mine.iter().min_by_key(|(_, t)| *t) {
                runs.remove(oldest);
            }
        }
        let id = new_id();
        let entry = RunEntry {
            user: user.to_string(),
            run: Arc::new(Mutex::new(run)),
            used: Instant::now(),
        };
        runs.insert(id.clone(), entry);
        Ok(id)
    }

    fn remove(&self, id: &str) {
        if let Ok(mut runs) = self.0.lock() {
            runs.remove(id);
        }
    }
}

fn new_id() -> String {
    use rand::Rng;
    rand::rng().random::<[u8; 8]>().iter().map(|b| format!("{b:02x}")).collect()
}

/// A JSON body (at most [`super::MAX_BODY`] bytes): a bad one is a JSON 400, a large one 413.
pub(crate) struct Body<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too_large",
                    "the request is over 64 KiB",
                )
            } else {
                ApiError::bad_request("bad_body", "the request body could not be read")
            }
        })?;
        serde_json::from_slice(&bytes)
            .map(Body)
            .map_err(|e| ApiError::bad_request("bad_json", format!("bad JSON body: {e}")))
    }
}

/// The language of the request: `lang` if given, else the browser's Accept-Language.
pub(crate) fn request_lang(lang: Option<&str>, headers: &HeaderMap) -> Lang {
    if let Some(l) = lang.and_then(Lang::parse) {
        return l;
    }
    let accept = headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let mut tags: Vec<(f32, usize, &str)> = accept
        .split(',')
        .enumerate()
        .map(|(i, part)| {
            let mut it = part.split(';');
            let tag = it.next().unwrap_or("").trim();
            let q = it
                .find_map(|p| p.trim().strip_prefix("q=").and_then(|q| q.parse().ok()))
                .unwrap_or(1.0);
            (q, i, tag)
        })
        .collect();
    tags.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, _, tag) in tags {
        let tag = tag.to_ascii_lowercase();
        if tag.starts_with("zh") {
            return Lang::Zh;
        }
        if tag.starts_with("en") {
            return Lang::En;
        }
    }
    Lang::En
}

/// Checks a user's text: not empty, not over the draft limit.
fn check_text(text: &str) -> Result<(), ApiError> {
    if text.trim().is_empty() {
        return Err(ApiError::bad_request("empty", "the text is empty"));
    }
    let n = text.chars().count();
    if n > MAX_DRAFT_CHARS {
        return Err(ApiError::bad_request(
            "too_long",
            format!("the text has {n} characters; the limit is {MAX_DRAFT_CHARS}"),
        ));
    }
    Ok(())
}

/// Sets `cancel` when dropped: a handler whose client went away cancels its job.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Runs `work` on the model through the queue and waits for its answer.
pub(crate) async fn on_model<T: Send + 'static>(
    state: &AppState,
    caller: &Caller,
    work: impl FnOnce(&mut Worker, &AtomicBool) -> T + Send + 'static,
) -> Result<T, ApiError> {
    state.rate(&caller.name)?;
    let cancel = Arc::new(AtomicBool::new(false));
    let _guard = CancelOnDrop(cancel.clone());
    let (tx, rx) = oneshot::channel();
    let flag = cancel.clone();
    state.enqueue(Job {
        user: caller.name.clone(),
        cancel: cancel.clone(),
        position: Box::new(|_| {}),
        work: Box::new(move |w| {
            let _ = tx.send(work(w, &flag));
        }),
    })?;
    rx.await.map_err(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the server is shutting down",
        )
    })
}

/// `GET /healthz`.
pub(crate) async fn healthz() -> Json<Value> {
    Json(json!({ "ok": true }))
}

/// `GET /api/status`: what the model is doing (for operators; needs a login like the
/// rest of the API).
pub(crate) async fn status(State(s): Shared, _caller: Caller) -> Json<Value> {
    let m = &s.model_stats;
    let n = |c: &std::sync::atomic::AtomicUsize| c.load(Ordering::Relaxed);
    Json(json!({
        "model": {
            "slots": s.slots,
            "active": n(&m.active),
            "queued": s.queue.len(),
            "replies": n(&m.replies),
            "decode_steps": n(&m.decode_steps),
            "largest_batch": n(&m.largest_batch),
        },
    }))
}

/// Any other path.
pub(crate) async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

/// `GET /api/me`.
pub(crate) async fn me(State(s): Shared, caller: Caller, headers: HeaderMap) -> Json<Value> {
    Json(json!({
        "user": caller.name,
        "auth": caller.auth,
        "csrf": caller.csrf,
        "lang": request_lang(None, &headers).code(),
        "model": s.model_name,
    }))
}

#[derive(Deserialize)]
pub(crate) struct LoginBody {
    token: String,
}

/// `POST /api/login`: a token for an HttpOnly, SameSite=Strict cookie and a CSRF token.
pub(crate) async fn login(
    State(s): Shared,
    Body(b): Body<LoginBody>,
) -> Result<Response, ApiError> {
    let users = Users::load(&s.data_dir).map_err(ApiError::internal)?;
    let (user, cookie, csrf) =
        s.sessions.login(&users, b.token.trim()).ok_or_else(ApiError::unauthorized)?;
    let set = format!(
        "{COOKIE}={cookie}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
        LOGIN_TTL.as_secs()
    );
    let mut r = Json(json!({ "user": user, "csrf": csrf })).into_response();
    r.headers_mut()
        .insert(header::SET_COOKIE, HeaderValue::from_str(&set).map_err(ApiError::internal)?);
    Ok(r)
}

/// `POST /api/logout`: ends the cookie login.
pub(crate) async fn logout(State(s): Shared, req: Request) -> Response {
    let (parts, _) = req.into_parts();
    if let Some(c) = auth::cookie(&parts, COOKIE) {
        s.sessions.logout(c);
    }
    let clear = format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    let mut r = StatusCode::NO_CONTENT.into_response();
    if let Ok(v) = HeaderValue::from_str(&clear) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

#[derive(Deserialize)]
pub(crate) struct LangQuery {
    lang: Option<String>,
}

/// `GET /api/scenarios`.
pub(crate) async fn scenarios(
    State(s): Shared,
    _caller: Caller,
    headers: HeaderMap,
    Query(q): Query<LangQuery>,
) -> Json<Value> {
    let lang = request_lang(q.lang.as_deref(), &headers);
    Json(json!({
        "scenarios": s.kb.scenarios().iter().map(|sc| scenario_json(sc, lang)).collect::<Vec<_>>(),
        "personas": s.personas.iter().map(|p| persona_json(p, lang)).collect::<Vec<_>>(),
    }))
}

fn scenario_json(sc: &crate::kb::Scenario, lang: Lang) -> Value {
    json!({
        "id": sc.id,
        "title": sc.title.get(lang),
        "situation": sc.situation.get(lang),
        "rubric": sc.rubric,
        "persona": sc.persona,
    })
}

fn persona_json(p: &crate::roleplay::Persona, lang: Lang) -> Value {
    json!({
        "id": p.id,
        "name": format!("{} · {}", p.name.get(lang), p.title.get(lang)),
        "style": p.voice.get(lang),
    })
}

#[derive(Deserialize)]
pub(crate) struct CritiqueBody {
    text: String,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    lang: Option<String>,
}

/// `POST /api/critique`: the object `upward critique --json` prints; saved like it.
pub(crate) async fn critique(
    State(s): Shared,
    caller: Caller,
    Body(b): Body<CritiqueBody>,
) -> Result<Json<Value>, ApiError> {
    use clap::ValueEnum;
    check_text(&b.text)?;
    let kind = match b.kind.as_deref() {
        None => KindChoice::Auto,
        Some(k) => KindChoice::from_str(k, true).map_err(|_| {
            ApiError::bad_request("bad_kind", "kind is one of auto, help, thanks, skip-level")
        })?,
    };
    let lang = b.lang.as_deref().and_then(Lang::parse);
    let said = lang.unwrap_or_else(|| Lang::detect(&b.text));
    let store = caller.store()?;
    let (kb, name, policy) = (s.kb.clone(), s.model_name.clone(), s.judge.clone());
    let judge = policy.judge;
    let done = on_model(&s, &caller, move |w, _| {
        w.enter(None);
        let helper = Helper { model: &mut w.model, name: &name, judge };
        let mut notices = Vec::new();
        let r = service::critique(&b.text, kind, lang, &kb, Some(helper), Some(&store), &mut |e| {
            if let Event::Notice(n) = e {
                notices.push(n.message(said));
            }
        });
        (r, notices)
    })
    .await?;
    let (done, notices) = done;
    for n in notices {
        eprintln!("upward serve: {n}");
    }
    let done = done.map_err(|e| ApiError::bad_request("bad_draft", e.message(said)))?;
    Ok(Json(done.to_json(Some((&s.model_name, &policy)))))
}

/// Who plays the boss in `lang`: the model unless it cannot speak the language.
fn boss(s: &AppState, lang: Lang) -> Option<Why> {
    authored::decide(BossChoice::Auto, &s.model_name, s.speaks.as_deref(), lang)
}

/// The answer to a start, restart or resume.
fn started(id: &str, run: &RoleplayRun, notice: Option<String>) -> Json<Value> {
    let rp = run.roleplay();
    let lang = rp.lang;
    let turns: Vec<Value> = rp.turns().iter().map(turn_json).collect();
    Json(json!({
        "id": id,
        "opening": rp.opening(),
        "trust": rp.trust(),
        "scenario": scenario_json(&rp.scenario, lang),
        "persona": persona_json(&rp.persona, lang),
        "lang": lang.code(),
        "session": run.session(),
        "boss": if run.authored().is_some() { "authored" } else { "model" },
        "notice": notice,
        "turns": turns,
    }))
}

fn turn_json(t: &crate::roleplay::Turn) -> Value {
    json!({
        "user": t.user,
        "boss": t.boss,
        "scores": t.score.statuses,
        "score": t.score.score,
        "trust": t.trust,
        "interrupted": t.interrupted,
    })
}

#[derive(Deserialize)]
pub(crate) struct StartBody {
    scenario: String,
    #[serde(default)]
    persona: Option<String>,
    #[serde(default)]
    lang: Option<String>,
}

/// `POST /api/roleplay`.
pub(crate) async fn roleplay_start(
    State(s): Shared,
    caller: Caller,
    headers: HeaderMap,
    Body(b): Body<StartBody>,
) -> Result<Json<Value>, ApiError> {
    let lang = request_lang(b.lang.as_deref(), &headers);
    start_run(&s, &caller, &b.scenario, b.persona.as_deref(), lang)
}

fn start_run(
    s: &AppState,
    caller: &Caller,
    scenario: &str,
    persona: Option<&str>,
    lang: Lang,
) -> Result<Json<Value>, ApiError> {
    let store = caller.store()?;
    let start = Start { scenario, persona, lang, model: Some(&s.model_name) };
    let mut notice = None;
    let run =
        RoleplayRun::start(&s.kb, &s.personas, &start, Some(&store), boss(s, lang), &mut |e| {
            if let Event::Notice(n) = e {
                notice = Some(n.message(lang));
            }
        })
        .map_err(|e| ApiError::bad_request("bad_roleplay", e.to_string()))?;
    let id = s.runs.insert(&caller.name, run)?;
    let run = s.runs.get(&caller.name, &id)?;
    let run = run.lock().map_err(ApiError::internal)?;
    Ok(started(&id, &run, notice))
}

#[derive(Deserialize)]
pub(crate) struct TurnBody {
    text: String,
}

pub(crate) fn sse(name: &str, data: Value) -> SseEvent {
    SseEvent::default().event(name).data(data.to_string())
}

/// The events of one turn; dropping it (the client went away) cancels the turn.
pub(crate) struct TurnStream {
    pub rx: mpsc::UnboundedReceiver<SseEvent>,
    pub cancel: Arc<AtomicBool>,
}

impl tokio_stream::Stream for TurnStream {
    type Item = Result<SseEvent, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx).map(|e| e.map(Ok))
    }
}

impl Drop for TurnStream {
    fn drop(&mut self) {
        self.cancel.store(true, Ordering::Relaxed);
    }
}

/// `POST /api/roleplay/{id}/turn`: the turn, streamed as Server-Sent Events.
pub(crate) async fn roleplay_turn(
    State(s): Shared,
    caller: Caller,
    Path(id): Path<String>,
    Body(b): Body<TurnBody>,
) -> Result<Response, ApiError> {
    check_text(&b.text)?;
    let entry = s.runs.get(&caller.name, &id)?;
    s.rate(&caller.name)?;
    let (tx, rx) = mpsc::unbounded_channel();
    let cancel = Arc::new(AtomicBool::new(false));
    let user = caller.name.clone();
    let (kb, opts) = (s.kb.clone(), s.sampling.clone());
    let (flag, out, key) = (cancel.clone(), tx.clone(), id.clone());
    let work = move |w: &mut Worker| {
        let mut run = match entry.lock() {
            Ok(r) => r,
            Err(_) => return,
        };
        let lang = run.lang();
        let store = match caller.store() {
            Ok(store) => Some(store),
            Err(e) => {
                run.not_saving(e.message.clone());
                None
            }
        };
        let before = run.roleplay().trust();
        w.enter(Some(&key));
        let send = |e: SseEvent| {
            if out.send(e).is_err() {
                flag.store(true, Ordering::Relaxed);
            }
        };
        let mut sink = |e: Event| match e {
            Event::Text(t) => send(sse("delta", json!({ "text": t }))),
            Event::Notice(n) => send(sse("notice", json!({ "text": n.message(lang) }))),
            Event::TurnScored { .. } => {}
        };
        let model: Option<&mut dyn ChatBackend> = Some(&mut w.model);
        match run.turn(&kb, model, store.as_ref(), &b.text, &opts, &flag, &mut sink) {
            Ok(done) => {
                let t = &done.turn;
                let r = &done.reply;
                send(sse(
                    "turn",
                    json!({
                        "score": { "score": t.score.score, "scores": t.score.statuses, "note": t.note },
                        "trust": t.trust,
                        "trust_delta": i32::from(t.trust) - i32::from(before),
                        "boss": t.boss,
                        "prompt_tokens": r.prompt_tokens,
                        "reused_tokens": r.reused_tokens,
                        "prefilled_tokens": r.prefilled_tokens,
                        "generated_tokens": r.generated_tokens,
                        "prefill_ms": r.prefill_secs * 1000.0,
                    }),
                ));
                let n = run.roleplay().turns().len();
                send(sse(
                    "done",
                    json!({ "turn": n, "interrupted": t.interrupted, "session": run.session(), "saved": run.saved() }),
                ));
            }
            Err(e) => {
                let code =
                    if e.to_string().contains("context") { "too_long" } else { "turn_failed" };
                send(sse("error", error::body(code, &e.to_string())));
            }
        }
    };
    let queued = tx.clone();
    s.enqueue(Job {
        user,
        cancel: cancel.clone(),
        position: Box::new(move |p| {
            let _ = queued.send(sse("queue", json!({ "position": p })));
        }),
        work: Box::new(work),
    })?;
    drop(tx);
    let stream = TurnStream { rx, cancel };
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(5)))
        .into_response())
}

/// A run that is not mid-turn (a hint or feedback does not wait for the model).
fn idle(run: &Mutex<RoleplayRun>) -> Result<std::sync::MutexGuard<'_, RoleplayRun>, ApiError> {
    run.try_lock().map_err(|_| {
        ApiError::new(StatusCode::CONFLICT, "busy", "a turn of this role-play is still running")
    })
}

/// `POST /api/roleplay/{id}/hint`.
pub(crate) async fn roleplay_hint(
    State(s): Shared,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let entry = s.runs.get(&caller.name, &id)?;
    let run = idle(&entry)?;
    Ok(Json(json!({ "text": run.hint(&s.kb) })))
}

/// `POST /api/roleplay/{id}/feedback`.
pub(crate) async fn roleplay_feedback(
    State(s): Shared,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let entry = s.runs.get(&caller.name, &id)?;
    let run = idle(&entry)?;
    let text = run.feedback().unwrap_or_else(|| {
        run.lang().pick("还没有可以点评的回合。", "No turn to give feedback on yet.").to_string()
    });
    Ok(Json(json!({ "text": text })))
}

/// `POST /api/roleplay/{id}/restart`: the same scenario and boss, from the start (a new
/// session; the old one stays saved).
pub(crate) async fn roleplay_restart(
    State(s): Shared,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let entry = s.runs.get(&caller.name, &id)?;
    let (scenario, persona, lang) = {
        let run = idle(&entry)?;
        let rp = run.roleplay();
        (rp.scenario.id.clone(), rp.persona.id.clone(), rp.lang)
    };
    s.runs.remove(&id);
    start_run(&s, &caller, &scenario, Some(&persona), lang)
}

/// `POST /api/roleplay/{id}/end`: the debrief (the model writes the weakest turn's better
/// version), which ends the saved session.
pub(crate) async fn roleplay_end(
    State(s): Shared,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let entry = s.runs.get(&caller.name, &id)?;
    let store = caller.store()?;
    let kb = s.kb.clone();
    let key = id.clone();
    let out = on_model(&s, &caller, move |w, _| {
        let mut run = entry.lock().map_err(ApiError::internal)?;
        w.forget(&key);
        let model: Option<&mut dyn ChatBackend> = Some(&mut w.model);
        let d = run.end(&kb, model, Some(&store), &mut |_| {});
        let v = serde_json::to_value(&d).map_err(ApiError::internal)?;
        Ok::<_, ApiError>(json!({ "debrief": v, "session": run.session(), "saved": run.saved() }))
    })
    .await??;
    s.runs.remove(&id);
    Ok(Json(out))
}

/// Parses a session id; anything else is not found.
fn session_id(id: &str) -> Result<i64, ApiError> {
    id.parse().map_err(|_| ApiError::not_found())
}

/// `GET /api/sessions`.
pub(crate) async fn sessions_list(caller: Caller) -> Result<Json<Value>, ApiError> {
    let list = caller.store()?.list_sessions()?;
    Ok(Json(json!({ "sessions": list })))
}

/// `GET /api/sessions/{id}`: as `upward sessions show --json`.
pub(crate) async fn session_show(
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let d = caller.store()?.session(session_id(&id)?)?;
    let text = export_json(&d)?;
    Ok(([(header::CONTENT_TYPE, "application/json")], text).into_response())
}

#[derive(Deserialize)]
pub(crate) struct ExportQuery {
    format: Option<String>,
}

/// `GET /api/sessions/{id}/export?format=md|json`: a download.
pub(crate) async fn session_export(
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<ExportQuery>,
) -> Result<Response, ApiError> {
    let n = session_id(&id)?;
    let d = caller.store()?.session(n)?;
    let (text, ext, ctype) = match q.format.as_deref().unwrap_or("md") {
        "md" => (export_markdown(&d), "md", "text/markdown; charset=utf-8"),
        "json" => (export_json(&d)?, "json", "application/json"),
        _ => return Err(ApiError::bad_request("bad_format", "format is md or json")),
    };
    let disposition = format!("attachment; filename=\"upward-session-{n}.{ext}\"");
    Ok((
        [(header::CONTENT_TYPE, ctype.to_string()), (header::CONTENT_DISPOSITION, disposition)],
        text,
    )
        .into_response())
}

/// `DELETE /api/sessions/{id}`.
pub(crate) async fn session_delete(
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.store()?.delete_session(session_id(&id)?)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/sessions/{id}/resume`: a role-play again, its turns restored.
pub(crate) async fn session_resume(
    State(s): Shared,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let n = session_id(&id)?;
    let store = caller.store()?;
    let mut notice = None;
    let mut told = |e: Event| {
        if let Event::Notice(note) = e {
            notice = Some(note);
        }
    };
    let run = RoleplayRun::resume(&s.kb, &s.personas, &store, n, |lang| boss(&s, lang), &mut told)
        .map_err(|e| match e {
            crate::coach::CoachError::Store(e) => ApiError::from(e),
            crate::coach::CoachError::NotRoleplay(_) => {
                ApiError::bad_request("not_roleplay", "only a role-play can be resumed here")
            }
            other => ApiError::bad_request("bad_roleplay", other.to_string()),
        })?;
    let lang = run.lang();
    let notice = notice.map(|n: Notice| n.message(lang));
    let rid = s.runs.insert(&caller.name, run)?;
    let run = s.runs.get(&caller.name, &rid)?;
    let run = run.lock().map_err(ApiError::internal)?;
    Ok(started(&rid, &run, notice))
}

/// `GET /api/progress`: as `upward progress --json`.
pub(crate) async fn progress(caller: Caller) -> Result<Json<Value>, ApiError> {
    let p = caller.store()?.progress(None)?;
    Ok(Json(serde_json::to_value(&p).map_err(ApiError::internal)?))
}

#[derive(Deserialize)]
pub(crate) struct SearchQuery {
    q: String,
    lang: Option<String>,
    k: Option<usize>,
}

/// `GET /api/kb/search?q=...`: as `upward kb search --json`.
pub(crate) async fn kb_search(
    State(s): Shared,
    _caller: Caller,
    Query(q): Query<SearchQuery>,
) -> Result<Json<Value>, ApiError> {
    if q.q.trim().is_empty() {
        return Err(ApiError::bad_request("empty", "the query is empty"));
    }
    check_text(&q.q)?;
    let lang = q.lang.as_deref().and_then(Lang::parse).unwrap_or_else(|| Lang::detect(&q.q));
    let hits = s.kb.search(&q.q, Some(Lang::detect(&q.q)), q.k.unwrap_or(5).clamp(1, 20));
    let out: Vec<Value> = hits
        .iter()
        .map(|h| {
            let p = &h.principle;
            json!({
                "id": p.id,
                "score": (f64::from(h.score) * 1000.0).round() / 1000.0,
                "title": p.title.get(lang),
                "summary": p.summary.get(lang),
                "claims": p.claims.iter().map(|c| json!({ "text": c.text.get(lang), "passages": c.passages })).collect::<Vec<_>>(),
                "quotes": p.quotes,
                "note": p.note.as_ref().map(|n| n.get(lang)),
                "beyond_talk": p.beyond_talk.as_ref().map(|b| b.get(lang)),
            })
        })
        .collect();
    Ok(Json(Value::Array(out)))
}
