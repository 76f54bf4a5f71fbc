//! The engine's side of the model thread: replies decoding together in slots, each slot
//! a [`Sequence`] that keeps its conversation's cache between turns.

use super::{answer, CacheLimits, ChatJob, Request, Stats};
use crate::engine::{
    Engine, EngineError, Next, Reply, ReplyGen, SavedSequence, Sequence, StopReason,
};
use crate::gguf::Tokenizer;
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, TryRecvError};
use std::time::Instant;

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
pub(super) struct Batcher<'e> {
    engine: &'e mut Engine,
    slots: Vec<Slot>,
    most_slots: usize,
    kept: VecDeque<(String, SavedSequence)>,
    limits: CacheLimits,
    clock: u64,
    stats: &'e Stats,
}

impl<'e> Batcher<'e> {
    pub(super) fn new(
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
    pub(super) fn run(mut self, rx: &mpsc::Receiver<Request>) {
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
    fn admit<'t>(&mut self, job: ChatJob, tokenizer: &'t Tokenizer) -> Option<Active<'t>> {
        if job.cancel.load(Ordering::Relaxed) {
            // The caller went away while it waited: nothing to prefill.
            job.done(Ok(Reply::without_model("", StopReason::Cancelled)), None);
            return None;
        }
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
