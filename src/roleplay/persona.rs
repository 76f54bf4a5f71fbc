//! Boss personas (`prompts/personas.toml`), rendered into the boss's system prompt.

use crate::kb::Bilingual;
use crate::lang::Lang;
use serde::Deserialize;

/// A boss the user can practise with.
#[derive(Clone, Debug, Deserialize)]
pub struct Persona {
    /// Stable id, e.g. `demanding-director`.
    pub id: String,
    /// Name as addressed.
    pub name: Bilingual,
    /// Role and relation to the user.
    pub title: Bilingual,
    /// How they talk.
    pub voice: Bilingual,
    /// What they care about.
    pub cares: Bilingual,
    /// What annoys them.
    pub annoyed_by: Bilingual,
    /// Trust at the start of a role-play (0-100).
    pub start_trust: u8,
    /// Most sentences per reply (default [`DEFAULT_REPLY_SENTENCES`]).
    #[serde(default)]
    pub reply_sentences: Option<usize>,
    /// Most tokens per reply (default [`DEFAULT_REPLY_TOKENS`]).
    #[serde(default)]
    pub reply_tokens: Option<usize>,
}

/// Sentences per boss reply when a persona sets none: a real manager answers in one to
/// four.
pub const DEFAULT_REPLY_SENTENCES: usize = 4;
/// Tokens per boss reply when a persona sets none: room for four sentences in either
/// language on the catalogue's tokenizers.
pub const DEFAULT_REPLY_TOKENS: usize = 160;

#[derive(Deserialize)]
struct PersonaFile {
    persona: Vec<Persona>,
}

/// Why personas could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PersonaError {
    /// The file is missing.
    #[error("cannot load personas.toml: {0}")]
    Load(String),
    /// The file is malformed.
    #[error("personas.toml: {0}")]
    Parse(String),
}

/// Parses a personas file.
pub fn parse_personas(text: &str) -> Result<Vec<Persona>, PersonaError> {
    let file: PersonaFile = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| text[..s.start].lines().count().max(1));
        PersonaError::Parse(match line {
            Some(l) => format!("line {l}: {}", e.message()),
            None => e.message().to_string(),
        })
    })?;
    if file.persona.is_empty() {
        return Err(PersonaError::Parse("no [[persona]] entries".into()));
    }
    Ok(file.persona)
}

/// The shipped personas (or those in `$UPWARD_PROMPTS_DIR`).
pub fn load_personas() -> Result<Vec<Persona>, PersonaError> {
    let text =
        crate::prompts::load("personas.toml").map_err(|e| PersonaError::Load(e.to_string()))?;
    parse_personas(&text)
}

impl Persona {
    /// Most sentences per reply.
    pub fn reply_sentences(&self) -> usize {
        self.reply_sentences.unwrap_or(DEFAULT_REPLY_SENTENCES).max(1)
    }

    /// Most tokens per reply.
    pub fn reply_tokens(&self) -> usize {
        self.reply_tokens.unwrap_or(DEFAULT_REPLY_TOKENS).max(8)
    }

    /// The template context for this persona in `lang`.
    pub fn context(&self, lang: Lang) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "name": self.name.get(lang),
            "title": self.title.get(lang),
            "voice": self.voice.get(lang),
            "cares": self.cares.get(lang),
            "annoyed_by": self.annoyed_by.get(lang),
            "sentences": self.reply_sentences(),
        })
    }
}
