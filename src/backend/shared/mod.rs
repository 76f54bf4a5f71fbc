//! One model, several callers at once. The model runs on its own thread; each caller
//! holds a [`ModelHandle`], a [`ChatBackend`] that sends its requests there.
//!
//! - **Our engine** decodes up to `slots` replies together (continuous batching). Each
//!   reply runs in a slot with its own [`Sequence`](crate::engine::Sequence), and every decode step runs one token
//!   of each in one pass over the weights. A reply joins once its prompt is prefilled and
//!   leaves when it ends. Each reply is what it would be alone: same tokens, same text.
//! - **Conversation caches** are kept between turns. A conversation's cache stays in its
//!   slot while the slot is free. It is copied out
//!   ([`SavedSequence`](crate::engine::SavedSequence)) when another conversation needs the
//!   slot, and copies past the [`CacheLimits`] go, least recently used first. A prompt
//!   starts from the longest prefix of it that any slot holds (conversations on one
//!   scenario share its long system prompt), copied rather than prefilled again.
//! - **A remote backend** batches on its own server; here its requests run one at a time.
//!
//! This module holds the handles and what they send; `batcher` the engine's side.

mod batcher;

use super::{BackendError, BackendInfo, ChatBackend, ChatRequest};
use crate::engine::{GenerateOptions, Reply, StopRules};
use crate::gguf::chat_template::ChatMessage;
use batcher::Batcher;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;

/// Limits on the conversation caches copied out of their slots.
#[derive(Clone, Copy, Debug)]
pub struct CacheLimits {
    /// Most copies kept.
    pub count: usize,
    /// Most bytes of copies kept.
    pub bytes: usize,
}

/// What the model thread has done so far (for `/api/status` and tests).
#[derive(Debug, Default)]
pub struct Stats {
    /// Replies finished.
    pub replies: AtomicUsize,
    /// Decode steps run (each runs one token of every reply in it).
    pub decode_steps: AtomicUsize,
    /// The most replies one decode step ran together.
    pub largest_batch: AtomicUsize,
    /// Replies decoding now.
    pub active: AtomicUsize,
}

/// The model thread and the way to reach it.
pub struct SharedModel {
    requests: mpsc::Sender<Request>,
    info: BackendInfo,
    slots: usize,
    stats: Arc<Stats>,
    thread: std::thread::JoinHandle<()>,
}

impl SharedModel {
    /// Moves `backend` to its own thread. Our engine serves up to `slots` replies at a
    /// time; any other backend one.
    pub fn start(
        mut backend: Box<dyn ChatBackend>,
        slots: usize,
        limits: CacheLimits,
    ) -> SharedModel {
        let info = backend.info();
        let slots = if backend.engine().is_some() { slots.max(1) } else { 1 };
        let stats = Arc::new(Stats::default());
        let (requests, rx) = mpsc::channel();
        let counters = stats.clone();
        let thread = std::thread::Builder::new()
            .name("upward-model".into())
            .spawn(move || match backend.engine() {
                Some(engine) => Batcher::new(engine, slots, limits, &counters).run(&rx),
                None => one_at_a_time(backend.as_mut(), &rx),
            })
            .expect("spawning the model thread");
        SharedModel { requests, info, slots, stats, thread }
    }

    /// A new caller's handle.
    pub fn handle(&self) -> ModelHandle {
        ModelHandle {
            requests: self.requests.clone(),
            info: self.info.clone(),
            conversation: None,
            incomplete: None,
            choice_mode: None,
        }
    }

    /// Replies the model serves at a time.
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// What the model thread has done so far.
    pub fn stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    /// Waits for the model thread to end: once every handle is gone, after the replies in
    /// progress finish.
    pub fn join(self) {
        drop(self.requests);
        let _ = self.thread.join();
    }
}

/// A caller's way to the shared model: a [`ChatBackend`] whose requests run on the
/// model thread, tagged with the caller's conversation.
pub struct ModelHandle {
    requests: mpsc::Sender<Request>,
    info: BackendInfo,
    conversation: Option<String>,
    incomplete: Option<String>,
    choice_mode: Option<&'static str>,
}

impl ModelHandle {
    /// The conversation the next requests belong to, whose cache is kept between its
    /// turns; `None` for work that is no conversation's.
    pub fn enter(&mut self, conversation: Option<&str>) {
        self.conversation = conversation.map(str::to_string);
    }

    /// Forgets conversation `key`'s cache (it ended or restarted).
    pub fn forget(&mut self, key: &str) {
        let _ = self.requests.send(Request::Forget(key.to_string()));
        if self.conversation.as_deref() == Some(key) {
            self.conversation = None;
        }
    }

    fn send(&self, r: Request) -> Result<(), BackendError> {
        self.requests.send(r).map_err(|_| BackendError::Stopped)
    }
}

impl ChatBackend for ModelHandle {
    fn info(&self) -> BackendInfo {
        self.info.clone()
    }

    fn chat(
        &mut self,
        req: &ChatRequest<'_>,
        cancel: &AtomicBool,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<Reply, BackendError> {
        let (events, rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(cancel.load(Ordering::Relaxed)));
        self.send(Request::Chat(ChatJob {
            conversation: self.conversation.clone(),
            messages: req.messages.to_vec(),
            options: req.options.clone(),
            rules: req.rules.clone(),
            cancel: stop.clone(),
            events,
        }))?;
        loop {
            // The caller's flag is not ours to share: it is copied across while waiting.
            if cancel.load(Ordering::Relaxed) {
                stop.store(true, Ordering::Relaxed);
            }
            match rx.recv_timeout(Duration::from_millis(20)) {
                Ok(ChatEvent::Text(t)) => on_text(&t),
                Ok(ChatEvent::Done(reply, incomplete)) => {
                    self.incomplete = incomplete;
                    return reply;
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Err(BackendError::Stopped),
            }
        }
    }

    fn choose(
        &mut self,
        messages: &[ChatMessage],
        choices: &[&str],
    ) -> Result<usize, BackendError> {
        let (answer, rx) = mpsc::channel();
        let choices = choices.iter().map(|c| c.to_string()).collect();
        self.send(Request::Choose { messages: messages.to_vec(), choices, answer })?;
        let (picked, mode) = rx.recv().map_err(|_| BackendError::Stopped)?;
        self.choice_mode = mode;
        picked
    }

    fn count_tokens(&self, text: &str) -> usize {
        let (answer, rx) = mpsc::channel();
        let asked = self.send(Request::Count { text: text.to_string(), answer });
        // With the model gone, a rough estimate (no request can run anyway).
        asked.ok().and_then(|_| rx.recv().ok()).unwrap_or(text.chars().count())
    }

    fn context_size(&self) -> usize {
        self.info.context_size
    }

    fn last_choice_mode(&self) -> Option<&'static str> {
        self.choice_mode
    }

    fn incomplete(&self) -> Option<&str> {
        self.incomplete.as_deref()
    }
}

/// What a handle asks of the model thread.
enum Request {
    Chat(ChatJob),
    Choose {
        messages: Vec<ChatMessage>,
        choices: Vec<String>,
        answer: mpsc::Sender<(Result<usize, BackendError>, Option<&'static str>)>,
    },
    Count {
        text: String,
        answer: mpsc::Sender<usize>,
    },
    Forget(String),
}

/// One reply to generate.
struct ChatJob {
    conversation: Option<String>,
    messages: Vec<ChatMessage>,
    options: GenerateOptions,
    rules: StopRules,
    cancel: Arc<AtomicBool>,
    events: mpsc::Sender<ChatEvent>,
}

impl ChatJob {
    fn done(&self, reply: Result<Reply, BackendError>, incomplete: Option<String>) {
        let _ = self.events.send(ChatEvent::Done(reply, incomplete));
    }

    fn text(&self) -> impl FnMut(&str) + '_ {
        |t: &str| {
            let _ = self.events.send(ChatEvent::Text(t.to_string()));
        }
    }
}

/// What the model thread sends back about a reply.
enum ChatEvent {
    /// More of the reply's text.
    Text(String),
    /// The reply, and why the backend cut it short, if it did.
    Done(Result<Reply, BackendError>, Option<String>),
}

/// Answers the requests that are not replies (and forgets nothing: no cache here).
fn answer(backend: &mut dyn ChatBackend, r: Request) -> Option<ChatJob> {
    match r {
        Request::Chat(job) => return Some(job),
        Request::Choose { messages, choices, answer } => {
            let choices: Vec<&str> = choices.iter().map(String::as_str).collect();
            let picked = backend.choose(&messages, &choices);
            let _ = answer.send((picked, backend.last_choice_mode()));
        }
        Request::Count { text, answer } => {
            let _ = answer.send(backend.count_tokens(&text));
        }
        Request::Forget(_) => {}
    }
    None
}

/// A backend without batching: each request runs to its end before the next.
fn one_at_a_time(backend: &mut dyn ChatBackend, rx: &mpsc::Receiver<Request>) {
    for r in rx {
        let Some(job) = answer(backend, r) else { continue };
        let req = ChatRequest {
            messages: &job.messages,
            options: job.options.clone(),
            rules: job.rules.clone(),
        };
        let run = std::panic::AssertUnwindSafe(|| backend.chat(&req, &job.cancel, &mut job.text()));
        match std::panic::catch_unwind(run) {
            Ok(reply) => job.done(reply, backend.incomplete().map(str::to_string)),
            // A bug, not bad input: the caller is told (the job is dropped unanswered).
            Err(_) => {
                eprintln!("upward: the model failed on a request");
                backend.reset();
            }
        }
    }
}
