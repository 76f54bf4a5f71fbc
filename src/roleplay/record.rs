//! Saving role-play turns to the session store and rebuilding a role-play from it.

use super::coach::{director_note, score_of, TurnScore};
use super::session::{Roleplay, Turn};
use crate::engine::Reply;
use crate::store::{Role, Store, StoreError, TurnRecord};

/// Writes one turn (the user's words with scores and trust, then the boss's answer with
/// token counts and timings, marked when Ctrl-C cut it short), each in its own short
/// transaction.
pub fn save_turn(
    store: &Store,
    session: i64,
    turn: &Turn,
    reply: &Reply,
) -> Result<(), StoreError> {
    let mut user = TurnRecord::new(Role::User, turn.user.clone());
    user.scores = Some(turn.score.statuses.clone());
    user.trust = Some(turn.trust as f64);
    store.append_turn(session, &user)?;
    let mut boss = TurnRecord::new(Role::Boss, turn.boss.clone());
    boss.prompt_tokens = reply.prompt_tokens as u64;
    boss.reused_tokens = reply.reused_tokens as u64;
    boss.generated_tokens = reply.generated_tokens as u64;
    boss.prefill_ms = reply.prefill_secs * 1000.0;
    boss.decode_ms = reply.decode_secs * 1000.0;
    boss.interrupted = turn.interrupted;
    store.append_turn(session, &boss)?;
    Ok(())
}

/// Rebuilds the turns of a stored role-play: each user turn with its scores and trust,
/// paired with the boss answer that followed (the director's note is recomputed, so the
/// model sees exactly the conversation it saw before).
pub fn turns_from_store(rp: &Roleplay, stored: &[crate::store::Turn]) -> Vec<Turn> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < stored.len() {
        let t = &stored[i];
        if t.role != Role::User {
            i += 1;
            continue;
        }
        let statuses = t.scores.clone().unwrap_or_default();
        let score = TurnScore { score: score_of(rp.rubric, &statuses), statuses };
        let boss = stored.get(i + 1).filter(|b| b.role == Role::Boss);
        out.push(Turn {
            user: t.text.clone(),
            boss: boss.map(|b| b.text.clone()).unwrap_or_default(),
            note: director_note(&score, rp.lang),
            trust: t.trust.unwrap_or(50.0).clamp(0.0, 100.0) as u8,
            score,
            interrupted: boss.is_some_and(|b| b.interrupted),
        });
        i += if boss.is_some() { 2 } else { 1 };
    }
    out
}
