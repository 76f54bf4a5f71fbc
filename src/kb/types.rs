//! Data types of the knowledge base, shared with critique and role-play.

use crate::lang::Lang;
use serde::{Deserialize, Serialize};

/// A text in both languages.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Bilingual {
    /// Chinese.
    pub zh: String,
    /// English.
    pub en: String,
}

impl Bilingual {
    /// The text in `lang`.
    pub fn get(&self, lang: Lang) -> &str {
        match lang {
            Lang::Zh => &self.zh,
            Lang::En => &self.en,
        }
    }
}

/// One idea of the talk, with verbatim quotes from the transcript.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Principle {
    /// Stable id, e.g. `structured-report`.
    pub id: String,
    /// Short title.
    pub title: Bilingual,
    /// One- or two-sentence summary.
    pub summary: Bilingual,
    /// Verbatim substrings of the transcript that support it.
    pub quotes: Vec<String>,
    /// Examples of doing it right.
    pub dos: Vec<Bilingual>,
    /// Examples of getting it wrong.
    pub donts: Vec<Bilingual>,
    /// Critique criterion ids it supports (`situation`, `effort`, `ask`, `plan`, `tone`,
    /// `timing`, `politics`, `specific`, `attribution`, `impact`, `sincere`, `occasion`,
    /// `forward`).
    pub criteria: Vec<String>,
    /// Free tags for retrieval.
    pub tags: Vec<String>,
}

/// A role-play situation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scenario {
    /// Stable id, e.g. `weekly-report`.
    pub id: String,
    /// Title.
    pub title: Bilingual,
    /// The situation the user is in, told to the user and the boss.
    pub situation: Bilingual,
    /// What the boss cares about and is under pressure from.
    pub boss_cares: Bilingual,
    /// Which rubric scores the user's turns: `help` or `thanks`.
    pub rubric: String,
    /// Principle ids this scenario trains.
    pub principles: Vec<String>,
    /// What a good outcome looks like.
    pub good_outcome: Bilingual,
    /// The boss's first line, opening the conversation.
    pub opening: Bilingual,
    /// What the boss privately wants from this conversation (never said aloud).
    pub boss_private: Bilingual,
    /// The persona this scenario is played with unless another is chosen.
    pub persona: Option<String>,
    /// The authored boss's lines for this scenario.
    pub lines: Vec<BossLine>,
}

/// One line the authored boss can say (no model needed): chosen when the user's turn
/// lacks criterion `lacks` (`none`: it lacked nothing), optionally only for one persona
/// or one trust band.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BossLine {
    /// Criterion id the turn lacks, or `none`.
    pub lacks: String,
    /// Only for this persona id.
    pub persona: Option<String>,
    /// Only in this trust band: `low`, `mid` or `high`.
    pub trust: Option<String>,
    /// The words.
    pub text: Bilingual,
}

/// A short reaction the authored boss puts before a line, by how the turn went
/// (`mood`: `good`, `bad` or `any`), optionally for one persona or trust band.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BossReaction {
    /// `good`, `bad` or `any`.
    pub mood: String,
    /// Only for this persona id.
    pub persona: Option<String>,
    /// Only in this trust band: `low`, `mid` or `high`.
    pub trust: Option<String>,
    /// The words.
    pub text: Bilingual,
}

/// Lines shared by every scenario (`knowledge/boss_lines.toml`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BossLines {
    /// Lines by what the turn lacks, for any scenario.
    pub lines: Vec<BossLine>,
    /// Reactions by how the turn went.
    pub reactions: Vec<BossReaction>,
}

/// The trust bands the authored boss's lines can be limited to.
pub const TRUST_BANDS: [&str; 3] = ["low", "mid", "high"];
/// What a turn can lack besides a criterion id: nothing.
pub const LACKS_NOTHING: &str = "none";
/// How a turn went, for reactions.
pub const MOODS: [&str; 3] = ["good", "bad", "any"];

/// Every critique criterion id, by rubric.
pub const HELP_CRITERIA: [&str; 7] =
    ["situation", "effort", "ask", "plan", "tone", "timing", "politics"];
/// Every thank-you-note criterion id.
pub const THANKS_CRITERIA: [&str; 6] =
    ["specific", "attribution", "impact", "sincere", "occasion", "forward"];
