//! Role-play sessions as a service: start, turn, hint, feedback, restart, end with a
//! debrief, and resume, each turn saved as it completes.
//!
//! A [`RoleplayRun`] is one user's conversation with the boss. It holds no model and no
//! store: the methods that need them take them, so that many runs can share one model
//! (a server's fair queue) and each user's store. It is `Send`.

use super::events::{Event, Notice, Saving};
use super::CoachError;
use crate::backend::ChatBackend;
use crate::engine::{GenerateOptions, PromptCache, Reply, StopReason};
use crate::kb::KnowledgeBase;
use crate::lang::Lang;
use crate::roleplay::authored::{self, Why};
use crate::roleplay::record::{save_turn, turns_from_store};
use crate::roleplay::{self, Debrief, Persona, Roleplay, RoleplayError, Turn};
use crate::store::{NewSession, SessionKind, Store};
use std::sync::atomic::AtomicBool;

/// Where a role-play is saved.
#[derive(Clone, Debug, PartialEq)]
pub enum SaveState {
    /// Not yet: the session is created with the first turn, so a role-play left before
    /// any turn leaves no empty session behind.
    Pending(Box<NewSession>),
    /// In this session.
    Saved(i64),
    /// Not saved (no store, or a write failed: the user was told).
    Off,
}

/// How a role-play starts: which scenario and boss, in which language, on which model.
#[derive(Clone, Debug)]
pub struct Start<'a> {
    /// Scenario id.
    pub scenario: &'a str,
    /// Persona id (default: the scenario's).
    pub persona: Option<&'a str>,
    /// Language of the conversation.
    pub lang: Lang,
    /// The model's display name, recorded with the session.
    pub model: Option<&'a str>,
}

/// What one turn produced.
#[derive(Clone, Debug)]
pub struct TurnDone {
    /// The turn: the user's words, the scores, the boss's answer, the trust.
    pub turn: Turn,
    /// The model's counters (zeros for an authored boss).
    pub reply: Reply,
    /// This turn's prompt left out more of the conversation than the last one.
    pub context_trimmed: bool,
}

/// One role-play in progress, with where it is saved.
pub struct RoleplayRun {
    rp: Roleplay,
    save: SaveState,
    /// Why the boss speaks authored lines (None: the model plays it).
    authored: Option<Why>,
    /// The first store error, kept so the end can say the run is not fully saved.
    save_error: Option<String>,
    /// The session it was saved in, if one was created (kept after a failure).
    session: Option<i64>,
}

impl RoleplayRun {
    /// Starts a role-play. With `store`, it is saved as a new session from its first
    /// turn on. `boss` says why the authored boss plays, if it does (see
    /// [`authored::decide`]); a notice tells the user so.
    pub fn start(
        kb: &KnowledgeBase,
        personas: &[Persona],
        start: &Start<'_>,
        store: Option<&Store>,
        boss: Option<Why>,
        sink: &mut dyn FnMut(Event),
    ) -> Result<RoleplayRun, RoleplayError> {
        let rp = Roleplay::new(kb, personas, start.scenario, start.persona, start.lang)?;
        let save = match store {
            Some(_) => {
                let mut n = NewSession::new(SessionKind::Roleplay, start.lang);
                n.scenario = Some(rp.scenario.id.clone());
                n.persona = Some(rp.persona.id.clone());
                n.model = start.model.map(str::to_string);
                n.title = Some(rp.scenario.title.get(start.lang).to_string());
                SaveState::Pending(Box::new(n))
            }
            None => SaveState::Off,
        };
        if let Some(why) = &boss {
            sink(Event::Notice(Notice::BossAuthored(why.clone())));
        }
        Ok(RoleplayRun { rp, save, authored: boss, save_error: None, session: None })
    }

    /// Resumes stored role-play `id`: its turns come back, saved on to the same session.
    /// `boss` decides who plays the boss in the session's language.
    pub fn resume(
        kb: &KnowledgeBase,
        personas: &[Persona],
        store: &Store,
        id: i64,
        boss: impl FnOnce(Lang) -> Option<Why>,
        sink: &mut dyn FnMut(Event),
    ) -> Result<RoleplayRun, CoachError> {
        let detail = store.session(id)?;
        let s = &detail.session;
        let scenario = s.scenario.clone().ok_or(CoachError::NotRoleplay(id))?;
        let mut rp = Roleplay::new(kb, personas, &scenario, s.persona.as_deref(), s.lang)?;
        let turns = turns_from_store(&rp, &detail.turns);
        rp.restore(turns);
        let authored = boss(s.lang);
        if let Some(why) = &authored {
            sink(Event::Notice(Notice::BossAuthored(why.clone())));
        }
        Ok(RoleplayRun {
            rp,
            save: SaveState::Saved(id),
            authored,
            save_error: None,
            session: Some(id),
        })
    }

    /// The role-play: scenario, persona, turns, trust.
    pub fn roleplay(&self) -> &Roleplay {
        &self.rp
    }

    /// Language of the conversation.
    pub fn lang(&self) -> Lang {
        self.rp.lang
    }

    /// Why the boss speaks authored lines; `None` when the model plays it.
    pub fn authored(&self) -> Option<&Why> {
        self.authored.as_ref()
    }

    /// Where the run is saved.
    pub fn save_state(&self) -> &SaveState {
        &self.save
    }

    /// The saved session's id, once there is one (even when a later write failed).
    pub fn session(&self) -> Option<i64> {
        self.session
    }

    /// Every turn so far (and the debrief, once ended) is saved.
    pub fn saved(&self) -> bool {
        self.session.is_some() && self.save_error.is_none()
    }

    /// The first store error of this run (or why it could not be saved at all).
    pub fn save_error(&self) -> Option<&str> {
        self.save_error.as_deref()
    }

    /// Marks the run as not saved because the store could not be opened: `why` is what
    /// the end of the run reports.
    pub fn not_saving(&mut self, why: impl Into<String>) {
        self.save = SaveState::Off;
        self.save_error.get_or_insert(why.into());
    }

    /// Prefills the conversation so far into the model's cache so that the next reply
    /// starts at once (with `saved`, from a cache file of an earlier start). Nothing to
    /// do for an authored boss. Returns the tokens run.
    pub fn warm(
        &self,
        model: &mut dyn ChatBackend,
        reserve: usize,
        saved: Option<&PromptCache>,
    ) -> Result<usize, RoleplayError> {
        if self.authored.is_some() {
            return Ok(0);
        }
        self.rp.warm_cache(model, reserve, saved)
    }

    /// Plays one user turn: scores it, streams the boss's answer (the model's, or an
    /// authored line when the authored boss plays; `model` may then be `None`), and saves
    /// it. Events: the text, then [`Notice::Interrupted`] and [`Notice::ContextTrimmed`]
    /// when they apply, then [`Event::TurnScored`], then any [`Notice::NotSaved`].
    #[allow(clippy::too_many_arguments)]
    pub fn turn(
        &mut self,
        kb: &KnowledgeBase,
        model: Option<&mut dyn ChatBackend>,
        store: Option<&Store>,
        text: &str,
        opts: &GenerateOptions,
        cancel: &AtomicBool,
        sink: &mut dyn FnMut(Event),
    ) -> Result<TurnDone, RoleplayError> {
        let (turn, reply, ctx) = match (&self.authored, model) {
            (Some(_), _) => {
                let turn = self.rp.take_authored_turn(kb.boss_lines(), text)?.clone();
                sink(Event::Text(turn.boss.clone()));
                let reply = authored::no_model_reply(&turn.boss);
                (turn, reply, 0)
            }
            (None, Some(m)) => {
                let (turn, reply) = self
                    .rp
                    .take_turn(m, text, opts, cancel, &mut |t| sink(Event::Text(t.to_string())))?;
                (turn.clone(), reply, m.context_size())
            }
            (None, None) => return Err(RoleplayError::NoModel),
        };
        let trimmed = self.rp.context_trimmed();
        if reply.stop == StopReason::Cancelled {
            sink(Event::Notice(Notice::Interrupted));
        }
        if trimmed {
            let dropped = reply.dropped_messages;
            sink(Event::Notice(Notice::ContextTrimmed { ctx, dropped }));
        }
        sink(Event::TurnScored {
            score: turn.score.score,
            trust: turn.trust,
            interrupted: turn.interrupted,
        });
        if let Some(store) = store {
            self.save_turn(store, &turn, &reply, sink);
        }
        Ok(TurnDone { turn, reply, context_trimmed: trimmed })
    }

    /// Saves a turn, creating the session with the first one. After a failure the run
    /// stops saving (a transcript with a hole would mislead) and says so once.
    fn save_turn(
        &mut self,
        store: &Store,
        turn: &Turn,
        reply: &Reply,
        sink: &mut dyn FnMut(Event),
    ) {
        if let SaveState::Pending(n) = &self.save {
            self.save = match store.create_session(n) {
                Ok(id) => {
                    self.session = Some(id);
                    SaveState::Saved(id)
                }
                Err(e) => return self.failed(Saving::Session, e.to_string(), sink),
            };
        }
        if let SaveState::Saved(id) = self.save {
            if let Err(e) = save_turn(store, id, turn, reply) {
                self.failed(Saving::Turn, e.to_string(), sink);
            }
        }
    }

    fn failed(&mut self, what: Saving, error: String, sink: &mut dyn FnMut(Event)) {
        self.save = SaveState::Off;
        self.save_error.get_or_insert(error.clone());
        sink(Event::Notice(Notice::NotSaved { what, error }));
    }

    /// What a strong next line would cover.
    pub fn hint(&self, kb: &KnowledgeBase) -> String {
        roleplay::hint(&self.rp, kb)
    }

    /// The scores of the last turn, if there is one.
    pub fn feedback(&self) -> Option<String> {
        roleplay::feedback(&self.rp)
    }

    /// Ends the role-play with a debrief (with a model, the weakest turn's better version
    /// is the model's rewrite) and saves it, ending the session.
    pub fn end(
        &mut self,
        kb: &KnowledgeBase,
        model: Option<&mut dyn ChatBackend>,
        store: Option<&Store>,
        sink: &mut dyn FnMut(Event),
    ) -> Debrief {
        let model = if self.authored.is_some() { None } else { model };
        let d = roleplay::debrief(&self.rp, kb, model);
        if let (Some(store), SaveState::Saved(id)) = (store, &self.save) {
            let id = *id;
            let saved = serde_json::to_value(&d)
                .map_err(|e| e.to_string())
                .and_then(|v| store.end_session(id, Some(&v)).map_err(|e| e.to_string()));
            if let Err(e) = saved {
                self.failed(Saving::Debrief, e, sink);
            }
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::roleplay::load_personas;

    fn assert_send<T: Send>() {}

    #[test]
    fn a_run_can_move_between_threads() {
        assert_send::<RoleplayRun>();
    }

    /// The authored boss needs no model; turns are saved from the first one on, and a
    /// store that fails mid-run is told as a notice, never dropped.
    #[test]
    fn turns_are_saved_and_failures_are_told() {
        let kb = KnowledgeBase::load_default().unwrap();
        let personas = load_personas().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(Some(dir.path())).unwrap();
        let start = Start { scenario: "weekly-report", persona: None, lang: Lang::En, model: None };
        let mut events = Vec::new();
        let mut sink = |e: Event| events.push(e);
        let mut run =
            RoleplayRun::start(&kb, &personas, &start, Some(&store), Some(Why::Forced), &mut sink)
                .unwrap();
        assert!(matches!(run.save_state(), SaveState::Pending(_)));
        let opts = GenerateOptions::default();
        let stop = AtomicBool::new(false);
        let line = "The Acme deal slipped a week; I called their CFO twice. Could you join Friday?";
        run.turn(&kb, None, Some(&store), line, &opts, &stop, &mut sink).unwrap();
        let id = run.session().expect("saved with the first turn");
        assert_eq!(store.session(id).unwrap().turns.len(), 2);
        // The session goes away under the run: the next turn cannot be saved.
        store.delete_session(id).unwrap();
        run.turn(&kb, None, Some(&store), line, &opts, &stop, &mut sink).unwrap();
        assert!(run.save_error().is_some());
        assert_eq!(run.save_state(), &SaveState::Off);
        let told = |e: &Event| matches!(e, Event::Notice(Notice::NotSaved { .. }));
        assert_eq!(events.iter().filter(|e| told(e)).count(), 1);
        assert!(events.iter().any(|e| matches!(e, Event::TurnScored { .. })));
        assert_eq!(events[0], Event::Notice(Notice::BossAuthored(Why::Forced)));
    }

    /// A model that answers every request with the same line, in two pieces.
    struct Canned;

    impl ChatBackend for Canned {
        fn info(&self) -> crate::backend::BackendInfo {
            crate::backend::BackendInfo {
                kind: "test",
                model: "canned".into(),
                path: None,
                context_size: 4096,
            }
        }
        fn chat(
            &mut self,
            req: &crate::backend::ChatRequest<'_>,
            _cancel: &AtomicBool,
            on_text: &mut dyn FnMut(&str),
        ) -> Result<Reply, crate::backend::BackendError> {
            on_text("Fine, ");
            on_text("go on.");
            let mut reply = authored::no_model_reply("Fine, go on.");
            reply.prompt_tokens = req.messages.len();
            reply.generated_tokens = 2;
            Ok(reply)
        }
        fn choose(
            &mut self,
            _: &[crate::gguf::chat_template::ChatMessage],
            _: &[&str],
        ) -> Result<usize, crate::backend::BackendError> {
            Ok(0)
        }
        fn count_tokens(&self, text: &str) -> usize {
            text.split_whitespace().count()
        }
    }

    /// The model plays the boss: its text streams, the turn is scored and saved with the
    /// model's counters, and the debrief ends the session.
    #[test]
    fn a_model_turn_streams_scores_and_saves() {
        let kb = KnowledgeBase::load_default().unwrap();
        let personas = load_personas().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(Some(dir.path())).unwrap();
        let start =
            Start { scenario: "weekly-report", persona: None, lang: Lang::En, model: Some("m") };
        let mut events = Vec::new();
        let mut sink = |e: Event| events.push(e);
        let mut run =
            RoleplayRun::start(&kb, &personas, &start, Some(&store), None, &mut sink).unwrap();
        let mut model = Canned;
        let stop = AtomicBool::new(false);
        let opts = GenerateOptions::default();
        let line = "The Acme deal slipped a week. Could you join the call on Friday?";
        let m: Option<&mut dyn ChatBackend> = Some(&mut model);
        let done = run.turn(&kb, m, Some(&store), line, &opts, &stop, &mut sink).unwrap();
        assert_eq!(done.turn.boss, "Fine, go on.");
        let d = run.end(&kb, Some(&mut model), Some(&store), &mut sink);
        assert_eq!(d.weakest_turn, Some(1));
        let texts: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                Event::Text(t) => Some(t.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(texts, ["Fine, ", "go on."]);
        assert!(matches!(events.last(), Some(Event::TurnScored { interrupted: false, .. })));
        let saved = store.session(run.session().unwrap()).unwrap();
        assert_eq!(saved.session.model.as_deref(), Some("m"));
        assert_eq!(saved.turns[1].generated_tokens, 2);
        assert!(saved.session.ended_at.is_some() && run.saved());
    }
}
