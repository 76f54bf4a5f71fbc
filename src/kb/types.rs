//! Data types of the knowledge base, shared with critique and role-play.

use crate::lang::Lang;
use crate::rubric::{Criterion, Rubric};
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

/// A passage of the transcript: `text` verbatim on 1-based `line`, at character offsets
/// `start..end` of that line.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Passage {
    /// 1-based line of `source/transcript-zh.txt`.
    pub line: usize,
    /// First character of `text` in the line (0-based).
    pub start: usize,
    /// One past its last character.
    pub end: usize,
    /// The passage, verbatim.
    pub text: String,
}

/// One sentence of a principle's summary and the transcript passages it rests on.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Claim {
    /// The sentence.
    pub text: Bilingual,
    /// What in the talk says it (at least one).
    pub passages: Vec<Passage>,
}

/// One idea of the talk, with verbatim quotes from the transcript.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Principle {
    /// Stable id, e.g. `structured-report`.
    pub id: String,
    /// Short title.
    pub title: Bilingual,
    /// The summary: the sentences of `claims`, joined. Says only what the talk says.
    pub summary: Bilingual,
    /// The summary sentence by sentence, each with its passages.
    pub claims: Vec<Claim>,
    /// Practical advice of ours that goes beyond the talk, kept apart from its words.
    pub beyond_talk: Option<Bilingual>,
    /// A note on the quotes (e.g. a transcription slip and what the speaker said).
    pub note: Option<Bilingual>,
    /// Verbatim substrings of the transcript that support it.
    pub quotes: Vec<String>,
    /// Examples of doing it right (ours: invented situations, not the talk's).
    pub dos: Vec<Bilingual>,
    /// Examples of getting it wrong (ours, like `dos`).
    pub donts: Vec<Bilingual>,
    /// Critique criteria it supports, most central first (only criteria of the talk).
    pub criteria: Vec<Criterion>,
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
    /// Which rubric scores the user's turns (`help`, `thanks` or `skip-level` in the
    /// files), checked when the knowledge base loads.
    pub rubric: Rubric,
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
