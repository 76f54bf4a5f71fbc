//! Tables and migrations. The schema version is `PRAGMA user_version`; upward's databases
//! are marked with `PRAGMA application_id` so a foreign SQLite file is never altered.

use rusqlite::{Connection, Transaction, TransactionBehavior};

/// `PRAGMA application_id` of upward databases ("UPWD" in ASCII).
pub(crate) const APPLICATION_ID: i64 = 0x5550_5744;

/// Migrations, in order: entry `i` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // v1: sessions, turns, critiques.
    "CREATE TABLE sessions (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        kind        TEXT NOT NULL CHECK (kind IN ('roleplay', 'critique', 'chat')),
        scenario    TEXT,
        persona     TEXT,
        model       TEXT,
        lang        TEXT NOT NULL,
        started_at  TEXT NOT NULL,
        ended_at    TEXT,
        title       TEXT,
        debrief     TEXT
    );
    CREATE INDEX sessions_started ON sessions (started_at);
    CREATE TABLE turns (
        session_id       INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
        seq              INTEGER NOT NULL,
        role             TEXT NOT NULL CHECK (role IN ('user', 'boss', 'coach', 'assistant')),
        text             TEXT NOT NULL,
        scores           TEXT,
        trust            REAL,
        prompt_tokens    INTEGER NOT NULL DEFAULT 0,
        reused_tokens    INTEGER NOT NULL DEFAULT 0,
        generated_tokens INTEGER NOT NULL DEFAULT 0,
        prefill_ms       REAL NOT NULL DEFAULT 0,
        decode_ms        REAL NOT NULL DEFAULT 0,
        created_at       TEXT NOT NULL,
        PRIMARY KEY (session_id, seq)
    );
    CREATE TABLE critiques (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        session_id  INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
        draft       TEXT NOT NULL,
        kind        TEXT NOT NULL,
        lang        TEXT NOT NULL,
        score       REAL,
        result      TEXT NOT NULL,
        created_at  TEXT NOT NULL
    );
    CREATE INDEX critiques_session ON critiques (session_id);",
    // v2: an answer stopped by Ctrl-C is kept, marked as not complete.
    "ALTER TABLE turns ADD COLUMN interrupted INTEGER NOT NULL DEFAULT 0;",
];

/// The newest schema version this binary knows.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// What an existing file looks like before we touch it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FileState {
    /// An empty database (new file): ours to set up.
    Empty,
    /// An upward database at this schema version.
    Ours(i64),
    /// An SQLite database of another program.
    Foreign,
}

/// Reads the header fields and table count, without writing anything.
pub(crate) fn inspect(conn: &Connection) -> rusqlite::Result<FileState> {
    let app_id: i64 = conn.query_row("PRAGMA application_id", [], |r| r.get(0))?;
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let tables: i64 = conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))?;
    Ok(if app_id == APPLICATION_ID {
        FileState::Ours(version)
    } else if app_id == 0 && version == 0 && tables == 0 {
        FileState::Empty
    } else {
        FileState::Foreign
    })
}

/// Brings the schema up to [`SCHEMA_VERSION`] in one transaction. Returns the version
/// found inside the transaction (another process may have migrated meanwhile).
pub(crate) fn migrate(conn: &Connection) -> rusqlite::Result<i64> {
    let tx = Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
    let found: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found >= SCHEMA_VERSION {
        return Ok(found);
    }
    for sql in &MIGRATIONS[found.max(0) as usize..] {
        tx.execute_batch(sql)?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.pragma_update(None, "application_id", APPLICATION_ID)?;
    tx.commit()?;
    Ok(found)
}
