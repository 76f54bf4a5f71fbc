//! What the coaching service tells its caller while it works: streamed text, a scored
//! turn, notices. Front ends render them (a terminal, JSON, or a web page).

use crate::lang::Lang;
use crate::roleplay::Why;

/// One event, sent to the sink the caller supplies (`&mut dyn FnMut(Event)`).
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// A piece of the answer being written (the boss's line, the coach's answer). Raw
    /// model text: filter it before printing it to a terminal.
    Text(String),
    /// A role-play turn is over: the coach's score of the user's words and the trust
    /// after them.
    TurnScored {
        /// The turn's score, 0-100.
        score: u8,
        /// Trust after the turn, 0-100.
        trust: u8,
        /// Ctrl-C cut the boss's answer short.
        interrupted: bool,
    },
    /// Something the user should know.
    Notice(Notice),
}

/// What a store write was saving when it failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Saving {
    /// Creating the session of a role-play or chat.
    Session,
    /// A turn or an exchange.
    Turn,
    /// The debrief that ends a role-play.
    Debrief,
    /// A critique.
    Critique,
}

/// Things the user should know, in words any front end can show.
#[derive(Clone, Debug, PartialEq)]
pub enum Notice {
    /// Ctrl-C stopped the answer; what was written is kept (and saved, marked).
    Interrupted,
    /// The conversation outgrew the model's context: older turns are no longer sent.
    ContextTrimmed {
        /// The context window in tokens.
        ctx: usize,
        /// Messages left out of the last prompt.
        dropped: usize,
    },
    /// The boss speaks authored lines instead of the model, and why.
    BossAuthored(Why),
    /// A store write failed: this (and, for a role-play, the rest of it) is not saved.
    NotSaved {
        /// What was being saved.
        what: Saving,
        /// The store's error.
        error: String,
    },
    /// Preparing the model failed; the next answer may be slower, nothing is lost.
    Warning(String),
}

impl Notice {
    /// The notice in words, in `lang`.
    pub fn message(&self, lang: Lang) -> String {
        match self {
            Notice::Interrupted => lang.pick("（已中断）", "(interrupted)").to_string(),
            Notice::ContextTrimmed { ctx, .. } => match lang {
                Lang::Zh => format!(
                    "（对话超出了模型的上下文（{ctx} 个 token）：最早的几轮已不再发给领导，他记不得了。）"
                ),
                Lang::En => format!(
                    "(The conversation outgrew the model's context ({ctx} tokens): the oldest turns are no longer shown to the boss.)"
                ),
            },
            Notice::BossAuthored(why) => crate::roleplay::authored::notice(why, lang),
            Notice::NotSaved { what, error } => {
                let what = match (what, lang) {
                    (Saving::Session | Saving::Turn | Saving::Debrief, Lang::Zh) => {
                        "本次会话没有完整保存"
                    }
                    (Saving::Session | Saving::Turn | Saving::Debrief, Lang::En) => {
                        "this session is not fully saved"
                    }
                    (Saving::Critique, Lang::Zh) => "这次点评没有保存",
                    (Saving::Critique, Lang::En) => "this critique is not saved",
                };
                format!("{what}: {error}")
            }
            Notice::Warning(w) => w.clone(),
        }
    }
}
