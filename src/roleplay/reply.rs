//! The shape of a boss reply: a token budget and a sentence limit per persona, stops at
//! a blank line or wherever the model starts writing someone else's turn, and no "sir"
//! or "boss" for the salesperson. A real manager answers in one to four sentences.

use super::persona::Persona;
use crate::engine::{GenerateOptions, StopRules};
use crate::lang::Lang;

/// Labels that start somebody else's turn, or the director's private note echoed back.
const TURN_MARKERS: &[&str] = &[
    "User:",
    "USER:",
    "user:",
    "Salesperson:",
    "Sales rep:",
    "Salesman:",
    "Employee:",
    "You:",
    "Me:",
    "Human:",
    "Assistant:",
    "[Director",
    "(Director",
    "Director's note",
    "用户：",
    "用户:",
    "销售：",
    "销售:",
    "员工：",
    "下属：",
    "我：",
    "你：",
    "助手：",
    "【导演",
    "[导演",
    "（导演",
    "导演提示",
];

/// Generic labels a reply may open with ("Boss: …"); they are left out.
const OWN_LABELS: &[&str] = &["Boss:", "Manager:", "领导：", "领导:", "老板："];

/// Forms of address the boss never uses for the salesperson, in either language.
const NOT_FOR_THE_USER: &[&str] = &["sir", "boss", "ma'am", "madam", "领导", "老板", "老大"];

/// The stop rules of `persona`'s replies: at most its sentence limit, ending at a blank
/// line or at a turn marker (including its own name written as a label after the reply
/// began), with its own name left out at the start and no "sir"/"boss"/"领导" for the
/// salesperson.
pub fn boss_rules(persona: &Persona, lang: Lang) -> StopRules {
    let mut stop: Vec<String> = TURN_MARKERS.iter().map(|s| s.to_string()).collect();
    let mut labels: Vec<String> = Vec::new();
    for name in [persona.name.get(lang), persona.name.get(other(lang))] {
        for colon in [":", "："] {
            labels.push(format!("{name}{colon}"));
            stop.push(format!("{name}{colon}"));
        }
    }
    labels.extend(OWN_LABELS.iter().map(|s| s.to_string()));
    StopRules {
        max_sentences: Some(persona.reply_sentences()),
        blank_line: true,
        stop_strings: stop,
        strip_prefixes: labels,
        vocatives: NOT_FOR_THE_USER.iter().map(|s| s.to_string()).collect(),
    }
}

/// `opts` with the persona's token budget (never above what `opts` allows).
pub fn boss_options(persona: &Persona, opts: &GenerateOptions) -> GenerateOptions {
    GenerateOptions {
        max_tokens: opts.max_tokens.min(persona.reply_tokens()).max(1),
        ..opts.clone()
    }
}

fn other(lang: Lang) -> Lang {
    match lang {
        Lang::Zh => Lang::En,
        Lang::En => Lang::Zh,
    }
}
