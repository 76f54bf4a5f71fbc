//! Resuming a role-play from the store: `record::save_turn` then `turns_from_store` and
//! `Roleplay::restore` give back the same conversation (what the boss model sees, trust,
//! scores, an interrupted answer), so the next reply continues it from a warm cache.

mod common;

use std::sync::atomic::AtomicBool;
use upward::engine::{Engine, GenerateOptions, LoadOptions, SamplingParams};
use upward::kb::KnowledgeBase;
use upward::lang::Lang;
use upward::roleplay::record::{save_turn, turns_from_store};
use upward::roleplay::{load_personas, Roleplay};
use upward::store::{NewSession, SessionKind, Store};

#[test]
fn a_stored_roleplay_restores_to_the_same_conversation() {
    let kb = KnowledgeBase::load_default().unwrap();
    let personas = load_personas().unwrap();
    let mut engine = Engine::load(&common::smol(), &LoadOptions::default()).unwrap();
    let opts = GenerateOptions { sampling: SamplingParams::greedy(), max_tokens: 16 };
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(Some(dir.path())).unwrap();
    for lang in [Lang::En, Lang::Zh] {
        let mut rp = Roleplay::new(&kb, &personas, "resources-critical", None, lang).unwrap();
        let id = store.create_session(&NewSession::new(SessionKind::Roleplay, lang)).unwrap();
        let lines = match lang {
            Lang::En => [
                "Boss, the Acme deal is stuck and it's not my fault.",
                "Could you join the CIO call on Tuesday? I tried twice already; backup is a pilot.",
                "Thanks, I will send a summary tonight.",
            ],
            Lang::Zh => [
                "王总，这个客户太难搞了，不是我的问题。",
                "王总，华东项目卡在采购，我已经谈过两次，想请您周二前约对方副总，备选方案是先签一期。",
                "谢谢王总，我今晚把纪要发您。",
            ],
        };
        for (i, text) in lines.iter().enumerate() {
            // The second answer is cut short, as Ctrl-C does.
            let stop = AtomicBool::new(false);
            let mut pieces = 0;
            let (turn, reply) = rp
                .take_turn(&mut engine, text, &opts, &stop, &mut |_| {
                    pieces += 1;
                    if i == 1 && pieces == 1 {
                        stop.store(true, std::sync::atomic::Ordering::SeqCst);
                    }
                })
                .unwrap();
            assert_eq!(turn.interrupted, i == 1, "turn {i}");
            save_turn(&store, id, turn, &reply).unwrap();
        }
        let stored = store.session(id).unwrap();
        assert_eq!(stored.turns.len(), 6);
        assert!(stored.turns[3].interrupted && !stored.turns[1].interrupted);

        let mut back = Roleplay::new(&kb, &personas, "resources-critical", None, lang).unwrap();
        let turns = turns_from_store(&back, &stored.turns);
        back.restore(turns);
        assert_eq!(back.trust(), rp.trust(), "{lang:?}");
        assert_eq!(back.turns().len(), 3);
        for (a, b) in back.turns().iter().zip(rp.turns()) {
            assert_eq!(
                (&a.user, &a.boss, a.trust, a.interrupted, &a.score.statuses, a.score.score),
                (&b.user, &b.boss, b.trust, b.interrupted, &b.score.statuses, b.score.score)
            );
        }
        // What the boss model is sent next is the same, token for token, so the cache
        // that holds the conversation is reused.
        assert_eq!(back.messages("next"), rp.messages("next"));
        let (tokens, _) = engine.prompt_tokens(&rp.messages(""), opts.max_tokens).unwrap();
        let ran = back.warm_cache(&mut engine, opts.max_tokens, None).unwrap();
        assert!(ran * 10 < tokens.len(), "resuming re-ran {ran} of {} tokens", tokens.len());
        assert!(engine.cached_prefix(&tokens) + 1 >= tokens.len());
    }
}

/// A user turn saved without its answer (the program stopped in between) restores with an
/// empty answer instead of pairing it with the next turn's.
#[test]
fn a_turn_without_an_answer_restores_alone() {
    use upward::store::{Role, TurnRecord};
    let kb = KnowledgeBase::load_default().unwrap();
    let personas = load_personas().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(Some(dir.path())).unwrap();
    let id = store.create_session(&NewSession::new(SessionKind::Roleplay, Lang::En)).unwrap();
    let mut first = TurnRecord::new(Role::User, "First, with no answer.");
    first.trust = Some(40.0);
    store.append_turn(id, &first).unwrap();
    let mut second = TurnRecord::new(Role::User, "Second.");
    second.trust = Some(45.0);
    store.append_turn(id, &second).unwrap();
    store.append_turn(id, &TurnRecord::new(Role::Boss, "Go on.")).unwrap();
    let mut rp = Roleplay::new(&kb, &personas, "weekly-report", None, Lang::En).unwrap();
    let turns = turns_from_store(&rp, &store.session(id).unwrap().turns);
    let pairs: Vec<_> = turns.iter().map(|t| (t.user.as_str(), t.boss.as_str())).collect();
    assert_eq!(pairs, [("First, with no answer.", ""), ("Second.", "Go on.")]);
    rp.restore(turns);
    assert_eq!(rp.trust(), 45);
}
