//! Coach Q&A and plain chat as a service: the prompt (grounded in the knowledge base for
//! the coach), the streamed answer, and saving the exchange.
//!
//! A [`Chat`] is one user's conversation; it holds no model (the methods take one), so
//! a server can keep many and queue them on one model. It is `Send`.

use super::events::{Event, Notice, Saving};
use super::save;
use crate::backend::{BackendError, ChatBackend, ChatRequest};
use crate::engine::{GenerateOptions, Reply, StopReason};
use crate::gguf::chat_template::ChatMessage;
use crate::kb::cite::{coach_prompt, Cited};
use crate::kb::KnowledgeBase;
use crate::lang::Lang;
use crate::store::Store;
use std::sync::atomic::AtomicBool;

/// The coach's answer to a question, with the principles it was grounded in.
#[derive(Clone, Debug)]
pub struct Answer {
    /// The model's reply and its counters.
    pub reply: Reply,
    /// The principles given to the model, cited after the answer.
    pub sources: Vec<Cited>,
}

/// Answers `question` as the coach: the principles that match it go into the prompt
/// (within the model's context), the answer streams as [`Event::Text`].
pub fn ask_coach(
    model: &mut dyn ChatBackend,
    kb: &KnowledgeBase,
    question: &str,
    lang: Lang,
    opts: &GenerateOptions,
    cancel: &AtomicBool,
    sink: &mut dyn FnMut(Event),
) -> Result<Answer, BackendError> {
    let prompt = coach_prompt(kb, question, lang, &|t| model.count_tokens(t));
    let msgs = [ChatMessage::new("system", &prompt.system), ChatMessage::new("user", question)];
    let reply = model.chat(&ChatRequest::new(&msgs, opts.clone()), cancel, &mut |t| {
        sink(Event::Text(t.to_string()))
    })?;
    if reply.stop == StopReason::Cancelled {
        sink(Event::Notice(Notice::Interrupted));
    }
    Ok(Answer { reply, sources: prompt.sources })
}

/// A chat with the model: its messages, and the session it is saved in.
#[derive(Clone, Debug)]
pub struct Chat {
    base: Vec<ChatMessage>,
    messages: Vec<ChatMessage>,
    lang: Lang,
    model: String,
    /// Started with the first answer (None: not yet, or not saving).
    session: Option<i64>,
}

impl Chat {
    /// A new chat under `system`, saved as a session of `model` (its display name), in
    /// `lang`.
    pub fn new(system: &str, lang: Lang, model: &str) -> Chat {
        let base = vec![ChatMessage::new("system", system)];
        Chat { messages: base.clone(), base, lang, model: model.to_string(), session: None }
    }

    /// The conversation so far (with the system message).
    pub fn messages(&self) -> &[ChatMessage] {
        &self.messages
    }

    /// The saved session, once the first answer is saved.
    pub fn session(&self) -> Option<i64> {
        self.session
    }

    /// Sends `input`, streams the answer as [`Event::Text`] and saves the exchange to
    /// `store` (the first one starts the session). Notices: messages left out for the
    /// context, an interrupted answer, a failed save. On a model error the input is
    /// dropped from the conversation.
    pub fn send(
        &mut self,
        model: &mut dyn ChatBackend,
        store: Option<&Store>,
        input: &str,
        opts: &GenerateOptions,
        cancel: &AtomicBool,
        sink: &mut dyn FnMut(Event),
    ) -> Result<Reply, BackendError> {
        self.messages.push(ChatMessage::new("user", input));
        let req = ChatRequest::new(&self.messages, opts.clone());
        let reply = match model.chat(&req, cancel, &mut |t| sink(Event::Text(t.to_string()))) {
            Ok(r) => r,
            Err(e) => {
                self.messages.pop();
                return Err(e);
            }
        };
        if reply.dropped_messages > 0 {
            let (ctx, dropped) = (model.context_size(), reply.dropped_messages);
            sink(Event::Notice(Notice::ContextTrimmed { ctx, dropped }));
        }
        if reply.stop == StopReason::Cancelled {
            sink(Event::Notice(Notice::Interrupted));
        }
        self.messages.push(ChatMessage::new("assistant", &reply.text));
        if let Some(store) = store {
            let saved = match self.session {
                Some(id) => save::save_exchange(store, id, input, &reply),
                None => save::start_chat(store, self.lang, &self.model, input).and_then(|id| {
                    self.session = Some(id);
                    save::save_exchange(store, id, input, &reply)
                }),
            };
            if let Err(e) = saved {
                let error = e.to_string();
                sink(Event::Notice(Notice::NotSaved { what: Saving::Turn, error }));
            }
        }
        Ok(reply)
    }

    /// Forgets the conversation (and the model's cache of it); the next answer starts a
    /// new session.
    pub fn clear(&mut self, model: &mut dyn ChatBackend) {
        self.messages = self.base.clone();
        self.session = None;
        model.reset();
    }

    /// Ends the saved session (a one-shot chat is ended at once).
    pub fn finish(&self, store: Option<&Store>, sink: &mut dyn FnMut(Event)) {
        if let (Some(store), Some(id)) = (store, self.session) {
            if let Err(e) = store.end_session(id, None) {
                let error = e.to_string();
                sink(Event::Notice(Notice::NotSaved { what: Saving::Session, error }));
            }
        }
    }
}

/// Saves a one-shot exchange (a question answered outside a [`Chat`], e.g. `chat --coach`)
/// as an ended chat session; a store error is a notice.
pub fn save_one_shot(
    store: &Store,
    lang: Lang,
    model: &str,
    prompt: &str,
    reply: &Reply,
    sink: &mut dyn FnMut(Event),
) -> Option<i64> {
    match save::save_chat(store, lang, model, prompt, reply) {
        Ok(id) => Some(id),
        Err(e) => {
            let error = e.to_string();
            sink(Event::Notice(Notice::NotSaved { what: Saving::Session, error }));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_chat_can_move_between_threads() {
        fn assert_send<T: Send>() {}
        assert_send::<super::Chat>();
    }
}
