//! Coaching sessions and progress, kept in a local SQLite database.
//!
//! Every role-play, chat and critique is a *session*; role-play and chat sessions hold
//! *turns*, critiques hold their result. Nothing leaves the machine: the database lives in
//! the data dir ([`data_dir`]), `upward.db`.
//!
//! | file | job |
//! |---|---|
//! | `schema` | tables and migrations (`PRAGMA user_version`) |
//! | `db` | [`Store`]: opening safely, writing turns and critiques, reading sessions |
//! | `records` | typed views of the stored JSON: turn scores, critique verdicts, debriefs |
//! | `export` | a session as Markdown or JSON |
//! | `progress` | first / best / latest result per criterion, trends, terminal chart |
//! | `html` | the self-contained HTML progress page |

mod db;
mod export;
mod html;
mod progress;
mod records;
mod schema;

pub use db::Store;
pub use export::{export_json, export_markdown, ExportFormat};
pub use html::progress_html;
pub use progress::{
    criterion_label, progress_chart, status_value, CriterionProgress, Point, Progress, Trend,
    TREND_THRESHOLD,
};
pub use records::{CritiqueDoc, DebriefDoc, Practise, Scores, Verdict};
pub use schema::SCHEMA_VERSION;

use crate::lang::Lang;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// File name of the database inside the data dir.
pub const DB_FILE: &str = "upward.db";

/// What went wrong with the store. Each message says which file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No data dir was given and the platform has none (no home directory).
    #[error("no data directory could be determined (no home directory?); pass --data-dir DIR or set UPWARD_DATA_DIR")]
    NoDataDir,
    /// The data dir could not be created.
    #[error("cannot create the data directory {path}: {cause}; pass --data-dir DIR or set UPWARD_DATA_DIR to a writable directory")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The underlying error (shown in the message).
        cause: std::io::Error,
    },
    /// The file exists but is not an SQLite database, or is damaged.
    #[error("{path} is not a readable upward database (damaged, or not SQLite); it was left untouched. Move it aside to start a new one, or pass --data-dir DIR")]
    Corrupt {
        /// The database file.
        path: PathBuf,
    },
    /// The file is an SQLite database written by another program.
    #[error("{path} is an SQLite database of another program, not upward's; it was left untouched. Pass --data-dir DIR to use another directory")]
    Foreign {
        /// The database file.
        path: PathBuf,
    },
    /// The database was written by a newer upward.
    #[error("{path} uses schema version {found}, newer than this upward understands (up to {supported}); upgrade upward. The file was left untouched")]
    TooNew {
        /// The database file.
        path: PathBuf,
        /// Version found in the file.
        found: i64,
        /// Newest version this binary knows.
        supported: i64,
    },
    /// The file or its directory cannot be written.
    #[error("cannot write {path}: the file or its directory is read-only ({detail}); fix the permissions or pass --data-dir DIR")]
    ReadOnly {
        /// The database file.
        path: PathBuf,
        /// SQLite's message.
        detail: String,
    },
    /// The disk (or the database's size limit) is full.
    #[error("cannot write {path}: the disk is full; free some space and try again (nothing already saved was lost)")]
    DiskFull {
        /// The database file.
        path: PathBuf,
    },
    /// Another process held the database locked for longer than the busy timeout.
    #[error("{path} is locked by another upward process; try again in a moment")]
    Busy {
        /// The database file.
        path: PathBuf,
    },
    /// No session with this id.
    #[error("no session {id}; `upward sessions list` shows the saved ones")]
    NoSuchSession {
        /// The id asked for.
        id: i64,
    },
    /// A value could not be turned into JSON.
    #[error("cannot encode {what} as JSON: {cause}")]
    Json {
        /// What was being encoded.
        what: &'static str,
        /// The underlying error (shown in the message).
        cause: serde_json::Error,
    },
    /// Any other SQLite error.
    #[error("database error in {path}: {cause}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// The underlying error (shown in the message).
        cause: rusqlite::Error,
    },
}

impl StoreError {
    /// Classifies an SQLite error on `path` into a user-facing error.
    pub(crate) fn from_sqlite(path: &Path, e: rusqlite::Error) -> StoreError {
        use rusqlite::ErrorCode as C;
        let path = path.to_path_buf();
        match e.sqlite_error_code() {
            Some(C::NotADatabase) | Some(C::DatabaseCorrupt) => StoreError::Corrupt { path },
            Some(C::DiskFull) => StoreError::DiskFull { path },
            Some(C::ReadOnly) | Some(C::CannotOpen) | Some(C::PermissionDenied) => {
                StoreError::ReadOnly { path, detail: e.to_string() }
            }
            Some(C::DatabaseBusy) | Some(C::DatabaseLocked) => StoreError::Busy { path },
            _ => StoreError::Sqlite { path, cause: e },
        }
    }
}

/// Kind of a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionKind {
    /// A role-play with the boss.
    Roleplay,
    /// One critique of a draft.
    Critique,
    /// A free chat with the model or the coach.
    Chat,
}

impl SessionKind {
    /// The stored name: `roleplay`, `critique` or `chat`.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionKind::Roleplay => "roleplay",
            SessionKind::Critique => "critique",
            SessionKind::Chat => "chat",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<SessionKind> {
        match s {
            "roleplay" => Some(SessionKind::Roleplay),
            "critique" => Some(SessionKind::Critique),
            "chat" => Some(SessionKind::Chat),
            _ => None,
        }
    }

    /// A label for people.
    pub fn label(self, lang: Lang) -> &'static str {
        match self {
            SessionKind::Roleplay => lang.pick("角色扮演", "role-play"),
            SessionKind::Critique => lang.pick("点评", "critique"),
            SessionKind::Chat => lang.pick("对话", "chat"),
        }
    }
}

/// Who said a turn.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The user (the salesperson).
    #[default]
    User,
    /// The boss, played by the model.
    Boss,
    /// The coach's remarks.
    Coach,
    /// The model in a plain chat.
    Assistant,
}

impl Role {
    /// The stored name: `user`, `boss`, `coach` or `assistant`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Boss => "boss",
            Role::Coach => "coach",
            Role::Assistant => "assistant",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "user" => Some(Role::User),
            "boss" => Some(Role::Boss),
            "coach" => Some(Role::Coach),
            "assistant" => Some(Role::Assistant),
            _ => None,
        }
    }

    /// A label for people.
    pub fn label(self, lang: Lang) -> &'static str {
        match self {
            Role::User => lang.pick("我", "Me"),
            Role::Boss => lang.pick("老板", "Boss"),
            Role::Coach => lang.pick("教练", "Coach"),
            Role::Assistant => lang.pick("助手", "Assistant"),
        }
    }
}

/// A session about to start.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewSession {
    /// Role-play, critique or chat.
    pub kind: SessionKind,
    /// Scenario id (role-play).
    pub scenario: Option<String>,
    /// Boss persona id (role-play).
    pub persona: Option<String>,
    /// Model name or path.
    pub model: Option<String>,
    /// Language of the session.
    pub lang: Lang,
    /// A short title for listings.
    pub title: Option<String>,
}

impl NewSession {
    /// A session of `kind` in `lang` with nothing else set.
    pub fn new(kind: SessionKind, lang: Lang) -> NewSession {
        NewSession { kind, scenario: None, persona: None, model: None, lang, title: None }
    }
}

/// One completed turn, as written by the REPL or role-play.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TurnRecord {
    /// Who spoke.
    pub role: Role,
    /// What was said.
    pub text: String,
    /// Scores of a user turn in a role-play, stored as
    /// `{ criterion_id: "met|partial|missing" }`.
    pub scores: Option<Scores>,
    /// The boss's trust after this turn (role-play).
    pub trust: Option<f64>,
    /// Prompt tokens fed for this turn.
    pub prompt_tokens: u64,
    /// Prompt tokens reused from the KV cache.
    pub reused_tokens: u64,
    /// Tokens generated.
    pub generated_tokens: u64,
    /// Prefill time in milliseconds.
    pub prefill_ms: f64,
    /// Decode time in milliseconds.
    pub decode_ms: f64,
    /// The reply was cut short (Ctrl-C or a signal): kept, but not a complete turn.
    #[serde(default)]
    pub interrupted: bool,
}

impl TurnRecord {
    /// A turn of `role` saying `text`, with no scores or timings.
    pub fn new(role: Role, text: impl Into<String>) -> TurnRecord {
        TurnRecord { role, text: text.into(), ..TurnRecord::default() }
    }
}

/// A finished critique to save.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CritiqueRecord {
    /// Attach to this existing session (e.g. a chat); `None` makes it its own session of
    /// kind critique.
    pub session_id: Option<i64>,
    /// The draft that was critiqued.
    pub draft: String,
    /// Rubric: `help` or `thanks`.
    pub kind: String,
    /// Language of the critique.
    pub lang: Lang,
    /// Overall score 0–100.
    pub score: Option<f64>,
    /// The full critique result JSON (`kind, lang, score, criteria, comment, rewrite`).
    pub result: Value,
    /// Model name or path (for the session row).
    pub model: Option<String>,
}

impl CritiqueRecord {
    /// Builds a record from a critique result JSON, taking `kind`, `lang` and `score` from
    /// it (`lang` falls back to the draft's language, `kind` to `help`).
    pub fn from_result(draft: impl Into<String>, result: Value) -> CritiqueRecord {
        let draft = draft.into();
        let kind = result.get("kind").and_then(Value::as_str).unwrap_or("help").to_string();
        let lang = result
            .get("lang")
            .and_then(Value::as_str)
            .and_then(Lang::parse)
            .unwrap_or_else(|| Lang::detect(&draft));
        let score = result.get("score").and_then(Value::as_f64);
        CritiqueRecord { session_id: None, draft, kind, lang, score, result, model: None }
    }
}

/// A stored session (the row, without turns).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(from = "SessionJson")]
pub struct Session {
    /// Id, as shown by `upward sessions list`.
    pub id: i64,
    /// Role-play, critique or chat.
    pub kind: SessionKind,
    /// Scenario id.
    pub scenario: Option<String>,
    /// Persona id.
    pub persona: Option<String>,
    /// Model.
    pub model: Option<String>,
    /// Language.
    pub lang: Lang,
    /// Start time, RFC 3339 UTC.
    pub started_at: String,
    /// End time, RFC 3339 UTC, once ended.
    pub ended_at: Option<String>,
    /// Title.
    pub title: Option<String>,
    /// Role-play debrief JSON, once ended.
    pub debrief: Option<Value>,
    /// What the store reads from the debrief: score, statuses, principles to practise.
    #[serde(skip)]
    pub debrief_doc: Option<DebriefDoc>,
}

/// [`Session`] as exported, read back with its debrief's typed view rebuilt.
#[derive(Deserialize)]
struct SessionJson {
    id: i64,
    kind: SessionKind,
    scenario: Option<String>,
    persona: Option<String>,
    model: Option<String>,
    lang: Lang,
    started_at: String,
    ended_at: Option<String>,
    title: Option<String>,
    debrief: Option<Value>,
}

impl From<SessionJson> for Session {
    fn from(s: SessionJson) -> Session {
        Session {
            debrief_doc: s.debrief.as_ref().and_then(|v| DebriefDoc::from_text(&v.to_string())),
            id: s.id,
            kind: s.kind,
            scenario: s.scenario,
            persona: s.persona,
            model: s.model,
            lang: s.lang,
            started_at: s.started_at,
            ended_at: s.ended_at,
            title: s.title,
            debrief: s.debrief,
        }
    }
}

/// A line of `upward sessions list`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionSummary {
    /// The session row.
    #[serde(flatten)]
    pub session: Session,
    /// Number of turns.
    pub turns: u64,
    /// Number of critiques.
    pub critiques: u64,
    /// The debrief's score, or the latest critique's.
    pub score: Option<f64>,
}

/// A stored turn.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Turn {
    /// Position in the session, from 1.
    pub seq: i64,
    /// Who spoke.
    pub role: Role,
    /// What was said.
    pub text: String,
    /// Per-criterion scores (unknown ids and statuses left out).
    pub scores: Option<Scores>,
    /// Boss trust after the turn.
    pub trust: Option<f64>,
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Reused prompt tokens.
    pub reused_tokens: u64,
    /// Generated tokens.
    pub generated_tokens: u64,
    /// Prefill milliseconds.
    pub prefill_ms: f64,
    /// Decode milliseconds.
    pub decode_ms: f64,
    /// The reply was cut short (Ctrl-C or a signal).
    #[serde(default)]
    pub interrupted: bool,
    /// When it was written, RFC 3339 UTC.
    pub created_at: String,
}

/// A stored critique.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(from = "CritiqueJson")]
pub struct Critique {
    /// Critique id.
    pub id: i64,
    /// The session holding it.
    pub session_id: i64,
    /// The draft.
    pub draft: String,
    /// Rubric: `help` or `thanks`.
    pub kind: String,
    /// Language.
    pub lang: Lang,
    /// Overall score.
    pub score: Option<f64>,
    /// Full result JSON.
    pub result: Value,
    /// What the store reads from the result: verdicts, comment, rewrite.
    #[serde(skip)]
    pub doc: CritiqueDoc,
    /// When it was written, RFC 3339 UTC.
    pub created_at: String,
}

/// [`Critique`] as exported, read back with its result's typed view rebuilt.
#[derive(Deserialize)]
struct CritiqueJson {
    id: i64,
    session_id: i64,
    draft: String,
    kind: String,
    lang: Lang,
    score: Option<f64>,
    result: Value,
    created_at: String,
}

impl From<CritiqueJson> for Critique {
    fn from(c: CritiqueJson) -> Critique {
        Critique {
            doc: CritiqueDoc::from_text(&c.result.to_string()),
            id: c.id,
            session_id: c.session_id,
            draft: c.draft,
            kind: c.kind,
            lang: c.lang,
            score: c.score,
            result: c.result,
            created_at: c.created_at,
        }
    }
}

/// Everything stored about one session: enough to show, export or resume it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionDetail {
    /// The session row.
    pub session: Session,
    /// Its turns in order.
    pub turns: Vec<Turn>,
    /// Its critiques in order.
    pub critiques: Vec<Critique>,
}

/// The data dir: `dir` if given, else `$UPWARD_DATA_DIR`, else the platform data dir
/// (`~/.local/share/upward` on Linux).
pub fn data_dir(dir: Option<&Path>) -> Result<PathBuf, StoreError> {
    if let Some(d) = dir {
        return Ok(d.to_path_buf());
    }
    if let Some(d) = std::env::var_os("UPWARD_DATA_DIR").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d));
    }
    directories::ProjectDirs::from("", "", "upward")
        .map(|p| p.data_dir().to_path_buf())
        .ok_or(StoreError::NoDataDir)
}

/// The database file for `dir` (see [`data_dir`]).
pub fn db_path(dir: Option<&Path>) -> Result<PathBuf, StoreError> {
    Ok(data_dir(dir)?.join(DB_FILE))
}
