//! `upward serve`: the coach in the browser, for one person or a team, on one model.
//!
//! - [`auth`]: users, tokens, the login cookie and CSRF;
//! - `api`: the coaching JSON API and the role-play's Server-Sent Events;
//! - `openai`: the OpenAI-compatible API (`/v1/models`, `/v1/chat/completions`);
//! - `queue`: the fair queue and the one thread that runs the model;
//! - `assets`: the web app (`web/`), embedded in the binary;
//! - `error`: JSON errors.
//!
//! The server does no coaching of its own: every endpoint calls the coaching service
//! ([`crate::coach`]) and the session store. See docs/api.md.

mod api;
mod assets;
pub mod auth;
mod error;
mod openai;
mod queue;

use crate::backend::shared::{CacheLimits, SharedModel};
use crate::backend::ChatBackend;
use crate::critique::judge::JudgePolicy;
use crate::engine::GenerateOptions;
use crate::kb::KnowledgeBase;
use crate::roleplay::Persona;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use auth::{UserError, UserRecord, Users};

/// Most bytes in a request body.
pub const MAX_BODY: usize = 64 * 1024;
/// Most characters in a draft or a role-play line.
pub const MAX_DRAFT_CHARS: usize = 8_000;

/// How to run the server.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Where to listen (loopback unless users exist).
    pub listen: SocketAddr,
    /// The data dir: the users file, the local user's store, `users/<name>/` stores.
    pub data_dir: PathBuf,
    /// The model's display name (also its id in `/v1/models`).
    pub model_name: String,
    /// Whether the model may judge critiques (as `upward critique` decides it).
    pub judge: JudgePolicy,
    /// The languages the model speaks, when known (who plays the boss, per language).
    pub speaks: Option<Vec<String>>,
    /// Most jobs waiting for the model (a full queue answers 503).
    pub queue: usize,
    /// Most model requests (turns, critiques, completions) per user per minute.
    pub turns_per_minute: usize,
    /// Replies the model decodes together (our engine; a remote model serves one at a
    /// time here and batches on its server).
    pub slots: usize,
    /// Most conversations whose KV cache is kept between turns.
    pub cached_conversations: usize,
    /// Most bytes of kept KV caches.
    pub cache_bytes: usize,
    /// Sampling for the boss and the coach.
    pub sampling: GenerateOptions,
}

/// Why the server cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A non-loopback address with no users.
    #[error(
        "refusing to listen on {0} with no users: anyone who can reach it could use the coach \
         and read the sessions; add one with `upward users add NAME`, or listen on 127.0.0.1"
    )]
    OffLoopback(SocketAddr),
    /// The users file cannot be read.
    #[error(transparent)]
    Users(#[from] UserError),
    /// The address cannot be bound.
    #[error("cannot listen on {addr}: {cause}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        cause: std::io::Error,
    },
    /// The runtime or the server failed.
    #[error("server: {0}")]
    Io(#[from] std::io::Error),
    /// The knowledge base or the personas cannot be loaded.
    #[error("{0}")]
    Coaching(String),
}

/// Everything the handlers share.
pub(crate) struct AppState {
    data_dir: PathBuf,
    sessions: auth::Sessions,
    queue: Arc<queue::Queue>,
    kb: Arc<KnowledgeBase>,
    personas: Arc<Vec<Persona>>,
    model_name: String,
    judge: JudgePolicy,
    speaks: Option<Vec<String>>,
    sampling: GenerateOptions,
    context_size: usize,
    /// Replies the model decodes together.
    slots: usize,
    /// What the model thread has done (for `/api/status`).
    model_stats: Arc<crate::backend::shared::Stats>,
    runs: api::Runs,
    /// Every request authenticates (users exist, or existed while running).
    auth_required: std::sync::atomic::AtomicBool,
    turns_per_minute: usize,
    recent: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl AppState {
    /// Counts one model request of `user` against the per-minute limit.
    pub(crate) fn rate(&self, user: &str) -> Result<(), error::ApiError> {
        let minute = Duration::from_secs(60);
        let mut recent = self.recent.lock().map_err(error::ApiError::internal)?;
        let q = recent.entry(user.to_string()).or_default();
        while q.front().is_some_and(|t| t.elapsed() >= minute) {
            q.pop_front();
        }
        if q.len() >= self.turns_per_minute {
            let wait = q.front().map(|t| minute.saturating_sub(t.elapsed()).as_secs() + 1);
            return Err(error::ApiError::too_many(wait.unwrap_or(60)));
        }
        q.push_back(Instant::now());
        Ok(())
    }

    /// Queues model work for `user`; a full queue is a 503.
    pub(crate) fn enqueue(&self, job: queue::Job) -> Result<(), error::ApiError> {
        let waiting = self.queue.len() as u64;
        self.queue.push(job).map_err(|_| error::ApiError::busy(5 + waiting))
    }
}

fn router(state: Arc<AppState>) -> Router {
    let api = Router::new()
        .route("/healthz", get(api::healthz))
        .route("/api/me", get(api::me))
        .route("/api/status", get(api::status))
        .route("/api/login", post(api::login))
        .route("/api/logout", post(api::logout))
        .route("/api/scenarios", get(api::scenarios))
        .route("/api/critique", post(api::critique))
        .route("/api/roleplay", post(api::roleplay_start))
        .route("/api/roleplay/{id}/turn", post(api::roleplay_turn))
        .route("/api/roleplay/{id}/hint", post(api::roleplay_hint))
        .route("/api/roleplay/{id}/feedback", post(api::roleplay_feedback))
        .route("/api/roleplay/{id}/restart", post(api::roleplay_restart))
        .route("/api/roleplay/{id}/end", post(api::roleplay_end))
        .route("/api/sessions", get(api::sessions_list))
        .route("/api/sessions/{id}", get(api::session_show).delete(api::session_delete))
        .route("/api/sessions/{id}/export", get(api::session_export))
        .route("/api/sessions/{id}/resume", post(api::session_resume))
        .route("/api/progress", get(api::progress))
        .route("/api/kb/search", get(api::kb_search))
        .route("/v1/models", get(openai::models))
        .route("/v1/chat/completions", post(openai::chat_completions))
        .route("/", get(assets::index))
        .route("/static/{*file}", get(assets::file))
        .fallback(api::not_found);
    api.layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(error::panic_response))
        .with_state(state)
}

/// Refuses a non-loopback `listen` while `data_dir` has no users.
pub fn check_listen(data_dir: &std::path::Path, listen: SocketAddr) -> Result<(), ServeError> {
    if !listen.ip().is_loopback() && Users::load(data_dir)?.is_empty() {
        return Err(ServeError::OffLoopback(listen));
    }
    Ok(())
}

/// Runs the server on `model` until SIGTERM or Ctrl-C; `ready` is told the address it
/// listens on (useful with port 0). In-flight model work finishes (and is saved) before
/// it returns; queued work is dropped.
pub fn serve(
    opts: ServeOptions,
    model: Box<dyn ChatBackend>,
    ready: impl FnOnce(SocketAddr),
) -> Result<(), ServeError> {
    check_listen(&opts.data_dir, opts.listen)?;
    let kb = KnowledgeBase::load_default().map_err(|e| ServeError::Coaching(e.to_string()))?;
    let personas =
        crate::roleplay::load_personas().map_err(|e| ServeError::Coaching(e.to_string()))?;
    let queue = Arc::new(queue::Queue::new(opts.queue));
    let context_size = model.context_size();
    let limits = CacheLimits { count: opts.cached_conversations, bytes: opts.cache_bytes };
    let model = SharedModel::start(model, opts.slots, limits);
    let runners = queue::spawn(&queue, &model);
    let state = Arc::new(AppState {
        data_dir: opts.data_dir.clone(),
        sessions: auth::Sessions::default(),
        queue: queue.clone(),
        kb: Arc::new(kb),
        personas: Arc::new(personas),
        model_name: opts.model_name.clone(),
        judge: opts.judge.clone(),
        speaks: opts.speaks.clone(),
        sampling: opts.sampling.clone(),
        context_size,
        slots: model.slots(),
        model_stats: model.stats(),
        runs: api::Runs::default(),
        auth_required: (!Users::load(&opts.data_dir)?.is_empty()).into(),
        turns_per_minute: opts.turns_per_minute.max(1),
        recent: Mutex::default(),
    });
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let result = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(opts.listen)
            .await
            .map_err(|cause| ServeError::Bind { addr: opts.listen, cause })?;
        ready(listener.local_addr()?);
        let closing = queue.clone();
        axum::serve(listener, router(state))
            .with_graceful_shutdown(async move {
                shutdown_signal().await;
                eprintln!("upward serve: shutting down (finishing the turn in progress)");
                closing.close();
            })
            .await?;
        Ok(())
    });
    queue.close();
    for r in runners {
        let _ = r.join();
    }
    model.join();
    result
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
