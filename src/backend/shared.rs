//! One model, several callers at once. The model runs on its own thread; each caller
//! holds a [`ModelHandle`], a [`ChatBackend`] that sends its requests there.
//!
//! - **Our engine** decodes up to `slots` replies together (continuous batching). Each
//!   reply runs in a slot with its own [`Sequence`], and every decode step runs one token
//!   of each in one pass over the weights. A reply joins once its prompt is prefilled and
//!   leaves when it ends. Each reply is what it would be alone: same tokens, same text.
//! - **Conversation caches** are kept between turns. A conversation's cache stays in its
//!   slot while the slot is free. It is copied out ([`SavedSequence`]) when another
//!   conversation needs the slot, and copies past the [`CacheLimits`] go, least recently
//!   used first. Work that is no conversation's (a critique) takes the free slot that
//!   shares the longest prefix with its prompt.
//! - **A remote backend** batches on its own server; here its requests run one at a time.

use super::{BackendError, BackendInfo, ChatBackend, ChatRequest};
use crate::engine::{
    Engine, EngineError, GenerateOptions, Next, Reply, ReplyGen, SavedSequence, Sequence,
    StopReason, StopRules,
};
use crate::gguf::chat_template::ChatMessage;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Limits on the conversation caches copied out of their slots.
#[derive(Clone, Copy, Debug)]
pub struct CacheLimits {
    /// Most copies kept.
    pub count: usize,
    /// Most bytes of copies kept.
    pub bytes: usize,
}

/// What the model thread has done so far (for `/healthz` and tests).
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

/// One sequence of the engine's batch and the conversation whose cache it holds.
struct Slot {
    seq: Sequence,
    conversation: Option<String>,
    /// When it was last given out (a counter): the least recently used goes first.
    used: u64,
    busy: bool,
}

/// A reply decoding in a slot.
struct Active<'t> {
    slot: usize,
    job: ChatJob,
    reply: ReplyGen<'t>,
    /// The model's output after the slot's last token.
    logits: Vec<f32>,
    prompt_tokens: usize,
    reused: usize,
    dropped: usize,
    prefill_secs: f64,
    started: Instant,
}

/// The engine's side of the model thread: slots, kept caches, the replies in progress.
struct Batcher<'e> {
    engine: &'e mut Engine,
    slots: Vec<Slot>,
    most_slots: usize,
    kept: VecDeque<(String, SavedSequence)>,
    limits: CacheLimits,
    clock: u64,
    stats: &'e Stats,
}

impl<'e> Batcher<'e> {
    fn new(
        engine: &'e mut Engine,
        most_slots: usize,
        limits: CacheLimits,
        stats: &'e Stats,
    ) -> Self {
        Batcher {
            engine,
            slots: Vec::new(),
            most_slots,
            kept: VecDeque::new(),
            limits,
            clock: 0,
            stats,
        }
    }

    /// Serves requests until every handle is gone and no reply is left.
    fn run(mut self, rx: &mpsc::Receiver<Request>) {
        let tokenizer = self.engine.shared_tokenizer();
        let mut waiting: VecDeque<ChatJob> = VecDeque::new();
        let mut active: Vec<Active<'_>> = Vec::new();
        let mut open = true;
        loop {
            // Wait for work when there is none; otherwise take what has come.
            if active.is_empty() && waiting.is_empty() {
                match rx.recv() {
                    Ok(r) => self.take(r, &mut waiting),
                    Err(_) => return,
                }
            }
            while open {
                match rx.try_recv() {
                    Ok(r) => self.take(r, &mut waiting),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => open = false,
                }
            }
            let round = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                while active.len() < self.most_slots {
                    let Some(job) = waiting.pop_front() else { break };
                    if let Some(a) = self.admit(job, &tokenizer) {
                        active.push(a);
                    }
                }
                self.stats.active.store(active.len(), Ordering::Relaxed);
                if !active.is_empty() {
                    self.step(&mut active);
                }
            }));
            if round.is_err() {
                // A bug, not bad input. Dropping the replies in progress tells their
                // callers (the model stopped before answering); the caches start afresh.
                eprintln!("upward: the model failed; the replies in progress end with an error");
                active.clear();
                self.kept.clear();
                for s in &mut self.slots {
                    (s.busy, s.conversation) = (false, None);
                    s.seq.clear();
                }
            }
            if active.is_empty() && waiting.is_empty() && !open {
                return;
            }
        }
    }

    /// A request from a handle: a reply waits for a slot, the rest is answered now.
    fn take(&mut self, r: Request, waiting: &mut VecDeque<ChatJob>) {
        if let Request::Forget(key) = &r {
            self.kept.retain(|(k, _)| k != key);
            for s in self.slots.iter_mut().filter(|s| s.conversation.as_ref() == Some(key)) {
                s.conversation = None;
            }
            return;
        }
        if let Some(job) = answer(self.engine, r) {
            waiting.push_back(job);
        }
    }

    /// Gives `job` a slot and prefills its prompt; a job that fails is answered here.
    fn admit<'t>(
        &mut self,
        job: ChatJob,
        tokenizer: &'t crate::gguf::Tokenizer,
    ) -> Option<Active<'t>> {
        let started = Instant::now();
        let prepared = self.engine.prompt_tokens(&job.messages, job.options.max_tokens);
        let (tokens, dropped) = match prepared {
            Ok(p) => p,
            Err(e) => {
                job.done(Err(e.into()), None);
                return None;
            }
        };
        let slot = match self.slot_for(job.conversation.as_deref(), &tokens) {
            Ok(i) => i,
            Err(e) => {
                job.done(Err(e.into()), None);
                return None;
            }
        };
        let seq = &mut self.slots[slot].seq;
        let reused = seq.cached_prefix(&tokens).min(tokens.len() - 1);
        let logits = match self.engine.prefill_sequence(seq, &tokens) {
            Ok(l) => l,
            Err(e) => {
                self.slots[slot].busy = false;
                job.done(Err(e.into()), None);
                return None;
            }
        };
        let reply = self.engine.start_reply(tokenizer, &job.options, &job.rules);
        Some(Active {
            slot,
            job,
            reply,
            logits,
            prompt_tokens: tokens.len(),
            reused,
            dropped,
            prefill_secs: started.elapsed().as_secs_f64(),
            started: Instant::now(),
        })
    }

    /// A free slot for `conversation`'s `prompt`, marked busy: the conversation's own
    /// slot, else one its saved cache is loaded into, else the one sharing the longest
    /// prefix with the prompt (a new slot rather than none shared, while there is room).
    fn slot_for(
        &mut self,
        conversation: Option<&str>,
        prompt: &[u32],
    ) -> Result<usize, EngineError> {
        self.clock += 1;
        let free = |s: &Slot| !s.busy;
        let own = conversation.and_then(|c| {
            self.slots.iter().position(|s| free(s) && s.conversation.as_deref() == Some(c))
        });
        let saved = conversation.and_then(|c| self.kept.iter().position(|(k, _)| k == c));
        let i = match own {
            Some(i) => i,
            None => {
                let shared =
                    |s: &Slot| if saved.is_some() { 0 } else { s.seq.cached_prefix(prompt) };
                // Best: most shared; then holding no conversation; then least recently used.
                let best =
                    (0..self.slots.len()).filter(|&i| free(&self.slots[i])).max_by_key(|&i| {
                        let s = &self.slots[i];
                        (shared(s), s.conversation.is_none(), u64::MAX - s.used)
                    });
                let room = self.slots.len() < self.most_slots;
                let i = match best {
                    Some(i) if !(room && shared(&self.slots[i]) == 0) => i,
                    _ => {
                        let seq = self.engine.new_sequence(self.engine.context_size())?;
                        self.slots.push(Slot { seq, conversation: None, used: 0, busy: false });
                        self.slots.len() - 1
                    }
                };
                self.swap_out(i);
                let copy = match saved {
                    Some(k) => self.kept.remove(k).map(|(_, copy)| copy),
                    None => self.shared_prefix(i, prompt),
                };
                // A copy that does not load is only a longer prefill.
                if copy.is_some_and(|c| self.slots[i].seq.load(&c).is_err()) {
                    self.slots[i].seq.clear();
                }
                i
            }
        };
        let s = &mut self.slots[i];
        (s.busy, s.used, s.conversation) = (true, self.clock, conversation.map(str::to_string));
        Ok(i)
    }

    /// A copy of the longest prefix of `prompt` that another slot holds (busy or not), when
    /// it is longer than what slot `i` holds: conversations on the same scenario share
    /// their long system prompt, and copying its keys and values beats prefilling them.
    fn shared_prefix(&self, i: usize, prompt: &[u32]) -> Option<SavedSequence> {
        /// Fewer tokens than this are as quick to prefill as to copy.
        const WORTH_A_COPY: usize = 32;
        let have = self.slots[i].seq.cached_prefix(prompt);
        let (donor, len) = (0..self.slots.len())
            .filter(|&j| j != i)
            .map(|j| (j, self.slots[j].seq.cached_prefix(prompt)))
            .max_by_key(|&(_, len)| len)?;
        if len < have + WORTH_A_COPY {
            return None;
        }
        self.slots[donor].seq.save_prefix(len).ok()
    }

    /// Copies slot `i`'s conversation out (to keep it for its next turn) before another
    /// takes the slot.
    fn swap_out(&mut self, i: usize) {
        let s = &mut self.slots[i];
        let Some(key) = s.conversation.take() else { return };
        if s.seq.tokens().is_empty() {
            return;
        }
        match s.seq.save() {
            Ok(copy) if copy.bytes() <= self.limits.bytes => {
                self.kept.push_back((key, copy));
                let total = |k: &VecDeque<(String, SavedSequence)>| {
                    k.iter().map(|(_, c)| c.bytes()).sum::<usize>()
                };
                while self.kept.len() > self.limits.count || total(&self.kept) > self.limits.bytes {
                    self.kept.pop_front();
                }
            }
            Ok(_) => {}
            Err(e) => eprintln!("upward: cannot keep a conversation's cache: {e}"),
        }
    }

    /// One token of every active reply: each picks its next token from its logits, and
    /// those that go on run together in one decode step.
    fn step(&mut self, active: &mut Vec<Active<'_>>) {
        // Replies that end now: why, or the error of the step they were in.
        let mut ended: Vec<(usize, Result<StopReason, String>)> = Vec::new();
        let mut fed: Vec<(usize, u32, bool)> = Vec::new();
        for (i, a) in active.iter_mut().enumerate() {
            let seq = &self.slots[a.slot].seq;
            let mut text = a.job.text();
            let next = a.reply.next(
                self.engine,
                &mut a.logits,
                seq.tokens(),
                seq.capacity(),
                &a.job.cancel,
                &mut text,
            );
            match next {
                Next::Token(t) => fed.push((i, t, false)),
                Next::Last(t) => fed.push((i, t, true)),
                Next::Stop(why) => ended.push((i, Ok(why))),
            }
        }
        if !fed.is_empty() {
            // The sequences go in slot order, each with its reply's token.
            fed.sort_by_key(|&(i, _, _)| active[i].slot);
            let tokens: Vec<u32> = fed.iter().map(|&(_, t, _)| t).collect();
            let wanted: Vec<usize> = fed.iter().map(|&(i, _, _)| active[i].slot).collect();
            let mut seqs: Vec<&mut Sequence> = self
                .slots
                .iter_mut()
                .enumerate()
                .filter(|(j, _)| wanted.contains(j))
                .map(|(_, s)| &mut s.seq)
                .collect();
            match self.engine.decode_sequences(&mut seqs, &tokens) {
                Ok(logits) => {
                    self.stats.decode_steps.fetch_add(1, Ordering::Relaxed);
                    self.stats.largest_batch.fetch_max(fed.len(), Ordering::Relaxed);
                    for (&(i, _, last), l) in fed.iter().zip(logits) {
                        active[i].logits = l;
                        if last {
                            ended.push((i, Ok(StopReason::MaxTokens)));
                        }
                    }
                }
                // No sequence changed; the replies in the step fail with it.
                Err(e) => ended.extend(fed.iter().map(|&(i, _, _)| (i, Err(e.to_string())))),
            }
        }
        // Highest index first, so that each removal leaves the others' indices alone.
        ended.sort_by_key(|&(i, _)| std::cmp::Reverse(i));
        for (i, outcome) in ended {
            let a = active.swap_remove(i);
            match outcome {
                Ok(why) => self.finish(a, why),
                Err(why) => {
                    self.slots[a.slot].busy = false;
                    let e = EngineError::Compute(candle_core::Error::Msg(why));
                    a.job.done(Err(e.into()), None);
                }
            }
        }
    }

    /// Ends reply `a` for `why`: its last text and the reply go to its handle, and its
    /// slot is free again (still holding the conversation's cache).
    fn finish(&mut self, a: Active<'_>, why: StopReason) {
        self.slots[a.slot].busy = false;
        let Active { job, reply, prompt_tokens, reused, dropped, prefill_secs, started, .. } = a;
        let (text, generated_tokens) = reply.finish(why, &mut job.text());
        self.stats.replies.fetch_add(1, Ordering::Relaxed);
        job.done(
            Ok(Reply {
                text,
                prompt_tokens,
                reused_tokens: reused,
                prefilled_tokens: prompt_tokens - reused,
                generated_tokens,
                prefill_secs,
                decode_secs: started.elapsed().as_secs_f64(),
                stop: why,
                dropped_messages: dropped,
            }),
            None,
        );
    }
}
