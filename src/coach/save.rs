//! Saving critiques and chats to the session store, the same way from every front end,
//! so that `upward sessions list` and `upward progress` see all of them.

use crate::critique::Critique;
use crate::engine::{Reply, StopReason};
use crate::lang::Lang;
use crate::store::{CritiqueRecord, NewSession, Role, SessionKind, Store, StoreError, TurnRecord};

/// Saves a finished critique of `draft` as its own session (kind `critique`, titled by the
/// draft's first line). `model` names the model that helped, if one did. Returns the
/// session id.
pub fn save_critique(
    store: &Store,
    draft: &str,
    critique: &Critique,
    model: Option<&str>,
) -> Result<i64, StoreError> {
    let result = serde_json::to_value(critique)
        .map_err(|cause| StoreError::Json { what: "critique", cause })?;
    let mut rec = CritiqueRecord::from_result(draft, result);
    rec.model = model.map(str::to_string);
    store.save_critique(&rec)
}

/// Starts a chat session with `model`, titled by the first line of `first_prompt`.
pub fn start_chat(
    store: &Store,
    lang: Lang,
    model: &str,
    first_prompt: &str,
) -> Result<i64, StoreError> {
    let first_line = first_prompt.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let mut s = NewSession::new(SessionKind::Chat, lang);
    s.model = Some(model.to_string());
    s.title = Some(crate::text::truncate_to_width(first_line.trim(), 40));
    store.create_session(&s)
}

/// Appends one exchange to chat `session`: the user's prompt, then the model's answer with
/// its token counts and timings (marked when Ctrl-C cut it short).
pub fn save_exchange(
    store: &Store,
    session: i64,
    prompt: &str,
    reply: &Reply,
) -> Result<(), StoreError> {
    store.append_turn(session, &TurnRecord::new(Role::User, prompt))?;
    let mut answer = TurnRecord::new(Role::Assistant, reply.text.clone());
    answer.prompt_tokens = reply.prompt_tokens as u64;
    answer.reused_tokens = reply.reused_tokens as u64;
    answer.generated_tokens = reply.generated_tokens as u64;
    answer.prefill_ms = reply.prefill_secs * 1000.0;
    answer.decode_ms = reply.decode_secs * 1000.0;
    answer.interrupted = reply.stop == StopReason::Cancelled;
    store.append_turn(session, &answer)?;
    Ok(())
}

/// Saves a one-shot chat (one prompt, one answer) as an ended chat session; returns its id.
pub fn save_chat(
    store: &Store,
    lang: Lang,
    model: &str,
    prompt: &str,
    reply: &Reply,
) -> Result<i64, StoreError> {
    let id = start_chat(store, lang, model, prompt)?;
    save_exchange(store, id, prompt, reply)?;
    store.end_session(id, None)?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::critique::{critique, KindChoice};
    use crate::kb::KnowledgeBase;

    #[test]
    fn a_saved_critique_reads_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(Some(dir.path())).unwrap();
        let kb = KnowledgeBase::load_default().unwrap();
        let draft = "王总，华东项目卡在采购，我们试过两次，想请您周三前约对方副总。";
        let c = critique(draft, KindChoice::Auto, None, &kb).unwrap();
        let id = save_critique(&store, draft, &c, Some("smollm2-135m")).unwrap();
        let d = store.session(id).unwrap();
        assert_eq!(d.session.kind, SessionKind::Critique);
        assert_eq!(d.session.model.as_deref(), Some("smollm2-135m"));
        assert_eq!(d.critiques.len(), 1);
        let back: Critique = serde_json::from_value(d.critiques[0].result.clone()).unwrap();
        assert_eq!(back, c);
        assert_eq!(d.critiques[0].score, Some(c.score as f64));
    }

    #[test]
    fn a_one_shot_chat_is_two_turns_in_an_ended_session() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(Some(dir.path())).unwrap();
        let reply = Reply {
            text: "Paris.".into(),
            prompt_tokens: 30,
            reused_tokens: 0,
            prefilled_tokens: 30,
            generated_tokens: 3,
            prefill_secs: 0.02,
            decode_secs: 0.01,
            stop: StopReason::Cancelled,
            dropped_messages: 0,
        };
        let id = save_chat(&store, Lang::En, "m", "Capital of France?\nThanks", &reply).unwrap();
        let d = store.session(id).unwrap();
        assert_eq!(d.session.kind, SessionKind::Chat);
        assert_eq!(d.session.title.as_deref(), Some("Capital of France?"));
        assert!(d.session.ended_at.is_some());
        let turns: Vec<_> = d.turns.iter().map(|t| (t.role, t.text.as_str())).collect();
        assert_eq!(
            turns,
            [(Role::User, "Capital of France?\nThanks"), (Role::Assistant, "Paris.")]
        );
        assert!(d.turns[1].interrupted && !d.turns[0].interrupted);
        assert_eq!(d.turns[1].generated_tokens, 3);
    }
}
