//! A role-play in progress: the scenario, the persona, the turns so far and the
//! conversation the boss model sees.

use super::coach::{director_note, score_turn, trust_delta, TurnScore};
use super::persona::Persona;
use super::reply::{boss_options, boss_rules};
use crate::critique::{DraftKind, Rubric, Status};
use crate::engine::{Engine, EngineError, GenerateOptions, PromptCache, Reply, StopReason};
use crate::gguf::chat_template::ChatMessage;
use crate::kb::{KnowledgeBase, Scenario};
use crate::lang::Lang;
use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;

/// Why a role-play step failed.
#[derive(Debug, thiserror::Error)]
pub enum RoleplayError {
    /// No scenario with that id.
    #[error("unknown scenario {0:?}; `upward roleplay --list` shows them")]
    UnknownScenario(String),
    /// No persona with that id.
    #[error("unknown persona {0:?}; `upward roleplay --list` shows them")]
    UnknownPersona(String),
    /// Nothing was said.
    #[error("say something first")]
    EmptyTurn,
    /// A prompt template failed.
    #[error("prompt template {name}: {reason}")]
    Template {
        /// Template name.
        name: String,
        /// What went wrong.
        reason: String,
    },
    /// The model failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A remote model failed.
    #[error(transparent)]
    Backend(crate::backend::BackendError),
}

impl From<crate::backend::BackendError> for RoleplayError {
    fn from(e: crate::backend::BackendError) -> Self {
        match e {
            crate::backend::BackendError::Engine(e) => RoleplayError::Engine(e),
            other => RoleplayError::Backend(other),
        }
    }
}

/// One exchange: what the user said, how the coach scored it, and the boss's answer.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Turn {
    /// The user's words.
    pub user: String,
    /// The boss's answer (partial if interrupted).
    pub boss: String,
    /// The coach's scores.
    pub score: TurnScore,
    /// Trust after this turn (0-100).
    pub trust: u8,
    /// The private director's note given to the boss.
    pub note: String,
    /// True when the user interrupted the answer.
    pub interrupted: bool,
}

/// A role-play session.
pub struct Roleplay {
    /// The scenario played.
    pub scenario: Scenario,
    /// The boss.
    pub persona: Persona,
    /// Language of the conversation.
    pub lang: Lang,
    /// The kind of text the user's turns are read as (the rubric's).
    pub kind: DraftKind,
    /// Which rubric scores the user's turns.
    pub rubric: Rubric,
    system: String,
    trust: i32,
    turns: Vec<Turn>,
    /// Messages of the conversation left out of the last prompt (context trimming).
    dropped: usize,
    /// Whether the last turn left out more of the conversation than the one before.
    trimmed: bool,
}

impl Roleplay {
    /// Starts `scenario_id` with `persona_id` (default: the scenario's natural boss).
    pub fn new(
        kb: &KnowledgeBase,
        personas: &[Persona],
        scenario_id: &str,
        persona_id: Option<&str>,
        lang: Lang,
    ) -> Result<Roleplay, RoleplayError> {
        let scenario = kb
            .scenario(scenario_id)
            .cloned()
            .ok_or_else(|| RoleplayError::UnknownScenario(scenario_id.to_string()))?;
        let persona_id = persona_id.unwrap_or(default_persona(&scenario));
        let persona = personas
            .iter()
            .find(|p| p.id == persona_id)
            .cloned()
            .ok_or_else(|| RoleplayError::UnknownPersona(persona_id.to_string()))?;
        // The scenario's own principles, then those retrieved for its situation.
        let mut ids: Vec<&str> = scenario.principles.iter().map(String::as_str).collect();
        for hit in kb.search(scenario.situation.get(lang), Some(lang), 3) {
            if !ids.contains(&hit.principle.id.as_str()) && ids.len() < 5 {
                ids.push(&hit.principle.id);
            }
        }
        let principles: Vec<serde_json::Value> = ids
            .iter()
            .filter_map(|id| kb.principle(id))
            .map(|p| serde_json::json!({ "title": p.title.get(lang), "summary": p.summary.get(lang) }))
            .collect();
        let ctx = serde_json::json!({
            "persona": persona.context(lang),
            "scenario": {
                "title": scenario.title.get(lang),
                "situation": scenario.situation.get(lang),
                "boss_cares": scenario.boss_cares.get(lang),
                "boss_private": scenario.boss_private.get(lang),
            },
            "principles": principles,
        });
        let name = format!("roleplay_boss.{}.jinja", lang.code());
        let system = crate::prompts::render(&name, &ctx)
            .map_err(|e| RoleplayError::Template { name, reason: e.to_string() })?;
        // The scenario's rubric was checked when the knowledge base loaded.
        let rubric = Rubric::parse(&scenario.rubric).unwrap_or(Rubric::Help);
        let kind = rubric.kind();
        Ok(Roleplay {
            trust: persona.start_trust as i32,
            scenario,
            persona,
            lang,
            kind,
            rubric,
            system,
            turns: Vec::new(),
            dropped: 0,
            trimmed: false,
        })
    }

    /// The boss's opening line.
    pub fn opening(&self) -> &str {
        self.scenario.opening.get(self.lang)
    }

    /// Completed turns.
    pub fn turns(&self) -> &[Turn] {
        &self.turns
    }

    /// Current trust (0-100).
    pub fn trust(&self) -> u8 {
        self.trust.clamp(0, 100) as u8
    }

    /// Puts back turns saved earlier (resuming a session).
    pub fn restore(&mut self, turns: Vec<Turn>) {
        if let Some(last) = turns.last() {
            self.trust = last.trust as i32;
        }
        self.turns = turns;
    }

    /// Forgets every turn (trust back to the persona's start).
    pub fn restart(&mut self) {
        self.turns.clear();
        self.trust = self.persona.start_trust as i32;
        (self.dropped, self.trimmed) = (0, false);
    }

    /// True when the last turn's prompt had to leave out older turns that the turn
    /// before still showed the boss: the context was trimmed (the REPL says so, and
    /// `roleplay --json` marks the turn).
    pub fn context_trimmed(&self) -> bool {
        self.trimmed
    }

    /// The generation options of a boss reply: `opts` within the persona's budget.
    pub fn reply_options(&self, opts: &GenerateOptions) -> GenerateOptions {
        boss_options(&self.persona, opts)
    }

    /// [`Roleplay::take_turn`] with the authored boss answering instead of a model
    /// ([`super::authored`]): the same scoring, trust and note; `shared` are the lines
    /// every scenario shares.
    pub fn take_authored_turn(
        &mut self,
        shared: &crate::kb::BossLines,
        text: &str,
    ) -> Result<&Turn, RoleplayError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(RoleplayError::EmptyTurn);
        }
        let score = score_turn(text, self.rubric, self.lang);
        let note = director_note(&score, self.lang);
        let trust = (self.trust + trust_delta(&score)).clamp(0, 100);
        let boss = super::authored::reply(self, shared, &score, trust as u8);
        self.trust = trust;
        let user = text.to_string();
        self.turns.push(Turn { user, boss, score, trust: trust as u8, note, interrupted: false });
        Ok(self.turns.last().expect("just pushed"))
    }

    /// The text the boss model sees for a user turn: the words and the director's note.
    fn user_message(&self, text: &str, note: &str) -> String {
        if note.is_empty() {
            text.to_string()
        } else if self.lang == Lang::Zh {
            format!("{text}\n\n【导演提示】{note}")
        } else {
            format!("{text}\n\n[Director's note] {note}")
        }
    }

    /// The conversation as the model sees it, ending with a new user message. Earlier
    /// turns are rendered exactly as before so the KV cache covers them.
    pub fn messages(&self, next_user: &str) -> Vec<ChatMessage> {
        let enter = self
            .lang
            .pick("（你敲门走进领导的办公室。）", "(You knock and step into your boss's office.)");
        let mut m = vec![
            ChatMessage::new("system", &self.system),
            ChatMessage::new("user", enter),
            ChatMessage::new("assistant", self.opening()),
        ];
        for t in &self.turns {
            m.push(ChatMessage::new("user", self.user_message(&t.user, &t.note)));
            m.push(ChatMessage::new("assistant", &t.boss));
        }
        m.push(ChatMessage::new("user", next_user));
        m
    }

    /// Prefills the conversation so far (persona prompt, opening, past turns) into the
    /// engine's KV cache, so that the next reply only runs the new user turn. The REPL
    /// calls it while the user reads the opening. `reserve` is the room kept for the
    /// reply, as in [`Engine::prompt_tokens`]. With `saved`, a role-play started before
    /// with the same model loads its cache from disk instead, and a new one is saved.
    /// Returns the tokens run.
    pub fn warm_cache(
        &self,
        engine: &mut Engine,
        reserve: usize,
        saved: Option<&PromptCache>,
    ) -> Result<usize, RoleplayError> {
        /// Fewer new tokens than this are quicker to run than a file is to read.
        const WORTH_A_FILE: usize = 32;
        let reserve = reserve.min(self.persona.reply_tokens());
        let (tokens, _) = engine.prompt_tokens(&self.messages(""), reserve)?;
        // Only a fresh start is worth a file: later turns are in the session store.
        let fresh = self.turns.is_empty();
        let missing = tokens.len() - engine.cached_prefix(&tokens);
        let saved = saved.filter(|_| fresh && missing > WORTH_A_FILE);
        // A file that cannot be read or does not match is a miss, never an error.
        if saved.is_some_and(|s| s.load(engine, &tokens).unwrap_or(false)) {
            return Ok(0);
        }
        let (_, reused) = engine.eval(&tokens)?;
        if let Some(saved) = saved {
            // Not saving only costs the next start its prefill.
            let _ = saved.save(engine);
        }
        Ok(tokens.len() - reused)
    }

    /// Scores the user's turn, steers the boss with a director's note and streams the
    /// boss's answer. An interrupted answer is kept (marked) and the role-play goes on.
    pub fn take_turn(
        &mut self,
        engine: &mut dyn crate::backend::ChatBackend,
        text: &str,
        opts: &GenerateOptions,
        cancel: &AtomicBool,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<(&Turn, Reply), RoleplayError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(RoleplayError::EmptyTurn);
        }
        let score = score_turn(text, self.rubric, self.lang);
        let note = director_note(&score, self.lang);
        let msgs = self.messages(&self.user_message(text, &note));
        let opts = self.reply_options(opts);
        let rules = boss_rules(&self.persona, self.lang);
        let req = crate::backend::ChatRequest { messages: &msgs, options: opts, rules };
        let reply = engine.chat(&req, cancel, on_text)?;
        self.trimmed = reply.dropped_messages > self.dropped;
        self.dropped = reply.dropped_messages;
        let trust = (self.trust + trust_delta(&score)).clamp(0, 100);
        self.trust = trust;
        self.turns.push(Turn {
            user: text.to_string(),
            boss: reply.text.trim().to_string(),
            score,
            trust: trust as u8,
            note,
            interrupted: reply.stop == StopReason::Cancelled,
        });
        Ok((self.turns.last().expect("just pushed"), reply))
    }

    /// Per-criterion best status across the turns so far.
    pub fn best_statuses(&self) -> BTreeMap<String, Status> {
        let mut best: BTreeMap<String, Status> = BTreeMap::new();
        for t in &self.turns {
            for (id, s) in &t.score.statuses {
                let e = best.entry(id.clone()).or_insert(*s);
                if rank(*s) > rank(*e) {
                    *e = *s;
                }
            }
        }
        best
    }
}

/// Orders statuses: missing < partial < met.
pub fn rank(s: Status) -> u8 {
    match s {
        Status::Missing => 0,
        Status::Partial => 1,
        Status::Met => 2,
    }
}

/// The boss a scenario is naturally played with: its `persona`, else by id.
fn default_persona(s: &Scenario) -> &str {
    if let Some(p) = &s.persona {
        return p;
    }
    match s.id.as_str() {
        "skip-level" => "numbers-vp",
        "year-end-thanks" => "supportive-mentor",
        _ => "demanding-director",
    }
}
