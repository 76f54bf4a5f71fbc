//! [`Store`]: the connection, opened safely, and every read and write.

use super::records::{scores_from_text, CritiqueDoc, DebriefDoc};
use super::schema::{self, FileState, SCHEMA_VERSION};
use super::{
    Critique, CritiqueRecord, NewSession, Role, Session, SessionDetail, SessionKind,
    SessionSummary, StoreError, Turn, TurnRecord,
};
use crate::lang::Lang;
use rusqlite::{
    params, Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior,
};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a writer waits for another process's lock before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The session store: one SQLite connection to `upward.db`.
///
/// Every write is one short transaction, so a process killed at any moment leaves every
/// completed write in the file. Several processes may use the same database at once (WAL
/// mode, 5 s busy timeout).
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

/// Current time as stored: RFC 3339 UTC with milliseconds.
pub(crate) fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

fn parse_json(raw: Option<String>) -> Option<Value> {
    // A value edited by hand into invalid JSON is kept as a string rather than lost.
    raw.map(|s| serde_json::from_str(&s).unwrap_or(Value::String(s)))
}

fn to_json(v: &Value, what: &'static str) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|cause| StoreError::Json { what, cause })
}

fn lang_of(s: &str) -> Lang {
    Lang::parse(s).unwrap_or(Lang::En)
}

impl Store {
    /// Opens (creating if needed) `upward.db` in the data dir (see [`super::data_dir`]).
    ///
    /// Refuses, without writing a byte, a file that is not SQLite, is damaged, belongs to
    /// another program or has a newer schema than this binary knows.
    ///
    /// The data dir is created owner-only (`0700`), and an existing default one is
    /// tightened to that; the database and its `-wal`/`-shm` files are `0600`.
    pub fn open(dir: Option<&Path>) -> Result<Store, StoreError> {
        let named =
            dir.is_some() || std::env::var_os("UPWARD_DATA_DIR").is_some_and(|d| !d.is_empty());
        let dir = super::data_dir(dir)?;
        crate::private::create_dir(&dir, !named)
            .map_err(|cause| StoreError::DataDir { path: dir.clone(), cause })?;
        Store::open_file(&dir.join(super::DB_FILE))
    }

    /// Opens the store, or explains why it cannot be used: the caller (the REPL) then runs
    /// without saving and shows the warning.
    pub fn open_or_warn(dir: Option<&Path>) -> (Option<Store>, Option<String>) {
        match Store::open(dir) {
            Ok(s) => (Some(s), None),
            Err(e) => (None, Some(format!("sessions will not be saved: {e}"))),
        }
    }

    /// Opens (creating if needed) the database at `path`.
    pub fn open_file(path: &Path) -> Result<Store, StoreError> {
        let err = |e| StoreError::from_sqlite(path, e);
        // A new database starts owner-only; SQLite gives its -wal and -shm files the
        // database's mode. (Failing here is left to SQLite to report.)
        let _ = crate::private::file_options().create_new(true).open(path);
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(err)?;
        // Look before writing anything: these only read the header and the schema.
        match schema::inspect(&conn).map_err(err)? {
            FileState::Foreign => return Err(StoreError::Foreign { path: path.to_path_buf() }),
            FileState::Ours(v) if v > SCHEMA_VERSION => {
                return Err(StoreError::TooNew {
                    path: path.to_path_buf(),
                    found: v,
                    supported: SCHEMA_VERSION,
                })
            }
            _ => {}
        }
        if conn.is_readonly(rusqlite::MAIN_DB).map_err(err)? {
            return Err(StoreError::ReadOnly {
                path: path.to_path_buf(),
                detail: "opened read-only".into(),
            });
        }
        // Ours (or new): older upward versions made these files world-readable.
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut f = path.as_os_str().to_os_string();
            f.push(suffix);
            crate::private::restrict_file(Path::new(&f));
        }
        conn.pragma_update(None, "foreign_keys", "ON").map_err(err)?;
        // Deleted sessions are overwritten on disk, not just unlinked.
        conn.pragma_update(None, "secure_delete", "ON").map_err(err)?;
        let _mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0)).map_err(err)?;
        conn.pragma_update(None, "synchronous", "FULL").map_err(err)?;
        let found = schema::migrate(&conn).map_err(err)?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                path: path.to_path_buf(),
                found,
                supported: SCHEMA_VERSION,
            });
        }
        Ok(Store { conn, path: path.to_path_buf() })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True when `p` is the database file or its WAL/shared-memory companion, so that an
    /// export or report never overwrites the store.
    pub fn is_store_file(&self, p: &Path) -> bool {
        let Ok(target) = std::fs::canonicalize(p) else { return false };
        ["", "-wal", "-shm", "-journal"].iter().any(|suffix| {
            let mut f = self.path.clone().into_os_string();
            f.push(suffix);
            std::fs::canonicalize(&f).is_ok_and(|c| c == target)
        })
    }

    fn err(&self, e: rusqlite::Error) -> StoreError {
        StoreError::from_sqlite(&self.path, e)
    }

    /// Runs `f` in one short write transaction (taking the write lock at once).
    fn write<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let tx = Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        let out = f(&tx)?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(out)
    }

    fn insert_session(&self, tx: &Transaction<'_>, s: &NewSession) -> Result<i64, StoreError> {
        tx.execute(
            "INSERT INTO sessions (kind, scenario, persona, model, lang, started_at, title)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![s.kind.as_str(), s.scenario, s.persona, s.model, s.lang.code(), now(), s.title],
        )
        .map_err(|e| self.err(e))?;
        Ok(tx.last_insert_rowid())
    }

    fn exists(&self, tx: &Connection, id: i64) -> Result<bool, StoreError> {
        tx.query_row("SELECT 1 FROM sessions WHERE id = ?1", [id], |_| Ok(()))
            .optional()
            .map(|o| o.is_some())
            .map_err(|e| self.err(e))
    }

    /// Starts a session; returns its id.
    pub fn create_session(&self, s: &NewSession) -> Result<i64, StoreError> {
        self.write(|tx| self.insert_session(tx, s))
    }

    /// Appends a completed turn to session `session_id` (one transaction, durable once
    /// this returns). Returns the turn's position, from 1.
    pub fn append_turn(&self, session_id: i64, t: &TurnRecord) -> Result<i64, StoreError> {
        let scores = t
            .scores
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|cause| StoreError::Json { what: "turn scores", cause })?;
        self.write(|tx| {
            if !self.exists(tx, session_id)? {
                return Err(StoreError::NoSuchSession { id: session_id });
            }
            let seq: i64 = tx
                .query_row(
                    "SELECT COALESCE(MAX(seq), 0) + 1 FROM turns WHERE session_id = ?1",
                    [session_id],
                    |r| r.get(0),
                )
                .map_err(|e| self.err(e))?;
            tx.execute(
                "INSERT INTO turns (session_id, seq, role, text, scores, trust, prompt_tokens,
                    reused_tokens, generated_tokens, prefill_ms, decode_ms, created_at,
                    interrupted)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                params![
                    session_id,
                    seq,
                    t.role.as_str(),
                    t.text,
                    scores,
                    t.trust,
                    t.prompt_tokens as i64,
                    t.reused_tokens as i64,
                    t.generated_tokens as i64,
                    t.prefill_ms,
                    t.decode_ms,
                    now(),
                    t.interrupted
                ],
            )
            .map_err(|e| self.err(e))?;
            Ok(seq)
        })
    }

    /// Saves a critique. Without `session_id` it becomes its own (ended) session of kind
    /// critique, titled by the draft's first line. Returns the id of the session holding it.
    pub fn save_critique(&self, c: &CritiqueRecord) -> Result<i64, StoreError> {
        let result = to_json(&c.result, "critique result")?;
        self.write(|tx| {
            let session_id = match c.session_id {
                Some(id) if self.exists(tx, id)? => id,
                Some(id) => return Err(StoreError::NoSuchSession { id }),
                None => {
                    let first_line = c.draft.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
                    let title = crate::text::truncate_to_width(first_line.trim(), 40);
                    let s = NewSession {
                        kind: SessionKind::Critique,
                        scenario: None,
                        persona: None,
                        model: c.model.clone(),
                        lang: c.lang,
                        title: Some(title),
                    };
                    let id = self.insert_session(tx, &s)?;
                    tx.execute("UPDATE sessions SET ended_at = started_at WHERE id = ?1", [id])
                        .map_err(|e| self.err(e))?;
                    id
                }
            };
            tx.execute(
                "INSERT INTO critiques (session_id, draft, kind, lang, score, result, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![session_id, c.draft, c.kind, c.lang.code(), c.score, result, now()],
            )
            .map_err(|e| self.err(e))?;
            Ok(session_id)
        })
    }

    /// Ends a session, with the role-play debrief if there is one. Ending again replaces
    /// the debrief (when one is given) and the end time.
    pub fn end_session(&self, id: i64, debrief: Option<&Value>) -> Result<(), StoreError> {
        let debrief = debrief.map(|v| to_json(v, "debrief")).transpose()?;
        self.write(|tx| {
            let n = tx
                .execute(
                    "UPDATE sessions SET ended_at = ?2, debrief = COALESCE(?3, debrief)
                     WHERE id = ?1",
                    params![id, now(), debrief],
                )
                .map_err(|e| self.err(e))?;
            if n == 0 {
                return Err(StoreError::NoSuchSession { id });
            }
            Ok(())
        })
    }

    /// Sets a session's title.
    pub fn set_title(&self, id: i64, title: &str) -> Result<(), StoreError> {
        self.write(|tx| {
            let n = tx
                .execute("UPDATE sessions SET title = ?2 WHERE id = ?1", params![id, title])
                .map_err(|e| self.err(e))?;
            if n == 0 {
                return Err(StoreError::NoSuchSession { id });
            }
            Ok(())
        })
    }

    fn session_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Session> {
        let kind: String = r.get("kind")?;
        let lang: String = r.get("lang")?;
        let debrief: Option<String> = r.get("debrief")?;
        Ok(Session {
            id: r.get("id")?,
            // The CHECK constraint keeps kinds valid; a hand-edited one reads as chat.
            kind: SessionKind::parse(&kind).unwrap_or(SessionKind::Chat),
            scenario: r.get("scenario")?,
            persona: r.get("persona")?,
            model: r.get("model")?,
            lang: lang_of(&lang),
            started_at: r.get("started_at")?,
            ended_at: r.get("ended_at")?,
            title: r.get("title")?,
            debrief_doc: debrief.as_deref().and_then(DebriefDoc::from_text),
            debrief: parse_json(debrief),
        })
    }

    /// Every session, oldest first, with turn counts and scores.
    pub fn list_sessions(&self) -> Result<Vec<SessionSummary>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT s.*,
                    (SELECT count(*) FROM turns t WHERE t.session_id = s.id) AS n_turns,
                    (SELECT count(*) FROM critiques c WHERE c.session_id = s.id) AS n_crit,
                    (SELECT c.score FROM critiques c WHERE c.session_id = s.id
                     ORDER BY c.id DESC LIMIT 1) AS crit_score
                 FROM sessions s ORDER BY s.started_at, s.id",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                let session = Store::session_from_row(r)?;
                let debrief_score = session.debrief_doc.as_ref().and_then(|d| d.score);
                let crit_score: Option<f64> = r.get("crit_score")?;
                Ok(SessionSummary {
                    turns: r.get::<_, i64>("n_turns")? as u64,
                    critiques: r.get::<_, i64>("n_crit")? as u64,
                    score: debrief_score.or(crit_score),
                    session,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    /// One session with its turns and critiques.
    pub fn session(&self, id: i64) -> Result<SessionDetail, StoreError> {
        // One read transaction, so turns and critiques match the session row.
        let tx = Transaction::new_unchecked(&self.conn, TransactionBehavior::Deferred)
            .map_err(|e| self.err(e))?;
        let session = tx
            .query_row("SELECT * FROM sessions WHERE id = ?1", [id], Store::session_from_row)
            .optional()
            .map_err(|e| self.err(e))?
            .ok_or(StoreError::NoSuchSession { id })?;
        let turns = {
            let mut stmt = tx
                .prepare("SELECT * FROM turns WHERE session_id = ?1 ORDER BY seq")
                .map_err(|e| self.err(e))?;
            let rows = stmt
                .query_map([id], |r| {
                    let role: String = r.get("role")?;
                    Ok(Turn {
                        seq: r.get("seq")?,
                        role: Role::parse(&role).unwrap_or(Role::User),
                        text: r.get("text")?,
                        scores: r
                            .get::<_, Option<String>>("scores")?
                            .as_deref()
                            .and_then(scores_from_text),
                        trust: r.get("trust")?,
                        prompt_tokens: r.get::<_, i64>("prompt_tokens")?.max(0) as u64,
                        reused_tokens: r.get::<_, i64>("reused_tokens")?.max(0) as u64,
                        generated_tokens: r.get::<_, i64>("generated_tokens")?.max(0) as u64,
                        prefill_ms: r.get("prefill_ms")?,
                        decode_ms: r.get("decode_ms")?,
                        interrupted: r.get("interrupted")?,
                        created_at: r.get("created_at")?,
                    })
                })
                .map_err(|e| self.err(e))?;
            rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))?
        };
        let critiques = self.critiques_where(&tx, "WHERE session_id = ?1", Some(id))?;
        tx.finish().map_err(|e| self.err(e))?;
        Ok(SessionDetail { session, turns, critiques })
    }

    fn critiques_where(
        &self,
        conn: &Connection,
        filter: &str,
        id: Option<i64>,
    ) -> Result<Vec<Critique>, StoreError> {
        let sql = format!("SELECT * FROM critiques {filter} ORDER BY created_at, id");
        let mut stmt = conn.prepare(&sql).map_err(|e| self.err(e))?;
        let map = |r: &rusqlite::Row<'_>| {
            let lang: String = r.get("lang")?;
            let result: String = r.get("result")?;
            Ok(Critique {
                id: r.get("id")?,
                session_id: r.get("session_id")?,
                draft: r.get("draft")?,
                kind: r.get("kind")?,
                lang: lang_of(&lang),
                score: r.get("score")?,
                doc: CritiqueDoc::from_text(&result),
                result: parse_json(Some(result)).unwrap_or(Value::Null),
                created_at: r.get("created_at")?,
            })
        };
        let rows = match id {
            Some(id) => stmt.query_map([id], map),
            None => stmt.query_map([], map),
        }
        .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    /// Every critique, oldest first (for progress).
    pub fn all_critiques(&self) -> Result<Vec<Critique>, StoreError> {
        self.critiques_where(&self.conn, "", None)
    }

    /// Every role-play session with its turns, oldest first (for progress).
    pub fn roleplays(&self) -> Result<Vec<SessionDetail>, StoreError> {
        let ids: Vec<i64> = {
            let mut stmt = self
                .conn
                .prepare("SELECT id FROM sessions WHERE kind = 'roleplay' ORDER BY started_at, id")
                .map_err(|e| self.err(e))?;
            let rows = stmt.query_map([], |r| r.get(0)).map_err(|e| self.err(e))?;
            rows.collect::<Result<_, _>>().map_err(|e| self.err(e))?
        };
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            match self.session(id) {
                Ok(d) => out.push(d),
                // Deleted by another process meanwhile.
                Err(StoreError::NoSuchSession { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Deletes a session with its turns and critiques; the deleted text is overwritten on
    /// disk.
    pub fn delete_session(&self, id: i64) -> Result<(), StoreError> {
        self.write(|tx| {
            let n =
                tx.execute("DELETE FROM sessions WHERE id = ?1", [id]).map_err(|e| self.err(e))?;
            if n == 0 {
                return Err(StoreError::NoSuchSession { id });
            }
            Ok(())
        })?;
        self.checkpoint();
        Ok(())
    }

    /// Deletes every session; returns how many there were.
    pub fn delete_all(&self) -> Result<usize, StoreError> {
        let n = self.write(|tx| {
            tx.execute("DELETE FROM turns", []).map_err(|e| self.err(e))?;
            tx.execute("DELETE FROM critiques", []).map_err(|e| self.err(e))?;
            tx.execute("DELETE FROM sessions", []).map_err(|e| self.err(e))
        })?;
        self.checkpoint();
        Ok(n)
    }

    /// Moves the WAL into the main file and empties it, so deleted text does not linger in
    /// the log. Best effort: a reader in another process may keep part of the log alive.
    fn checkpoint(&self) {
        let _ = self.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
    }

    /// Per-criterion progress over every critique and role-play (on or after `since`, a
    /// local date).
    pub fn progress(
        &self,
        since: Option<chrono::NaiveDate>,
    ) -> Result<super::Progress, StoreError> {
        let critiques = self.all_critiques()?;
        let roleplays = self.roleplays()?;
        Ok(super::progress::compute(&critiques, &roleplays, since))
    }

    /// The raw connection, for tests that need to damage or inspect the file.
    #[cfg(test)]
    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rubric::{Criterion, Status};

    fn open_tmp() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(Some(dir.path())).unwrap();
        (dir, store)
    }

    #[test]
    fn turns_are_numbered_and_read_back() {
        let (_d, s) = open_tmp();
        let id = s.create_session(&NewSession::new(SessionKind::Roleplay, Lang::Zh)).unwrap();
        let mut t = TurnRecord::new(Role::User, "王总，想请您帮个忙");
        let scores: super::super::Scores =
            [(Criterion::Ask, Status::Met), (Criterion::Plan, Status::Partial)].into();
        t.scores = Some(scores.clone());
        t.trust = Some(55.0);
        t.prompt_tokens = 120;
        assert_eq!(s.append_turn(id, &t).unwrap(), 1);
        assert_eq!(s.append_turn(id, &TurnRecord::new(Role::Boss, "说吧")).unwrap(), 2);
        let d = s.session(id).unwrap();
        assert_eq!(d.turns.len(), 2);
        assert_eq!(d.turns[0].scores, Some(scores));
        assert_eq!(d.turns[0].trust, Some(55.0));
        assert_eq!(d.turns[0].prompt_tokens, 120);
        assert_eq!(d.turns[1].role, Role::Boss);
        assert_eq!(d.session.lang, Lang::Zh);
        assert!(matches!(s.append_turn(999, &t), Err(StoreError::NoSuchSession { id: 999 })));
    }

    #[test]
    fn disk_full_is_reported_and_keeps_saved_turns() {
        let (_d, s) = open_tmp();
        let id = s.create_session(&NewSession::new(SessionKind::Chat, Lang::En)).unwrap();
        s.append_turn(id, &TurnRecord::new(Role::User, "first")).unwrap();
        // Cap the file at its current size: the next big write hits SQLITE_FULL.
        s.conn().execute_batch("PRAGMA wal_checkpoint(TRUNCATE);").unwrap();
        let pages: i64 = s.conn().query_row("PRAGMA page_count", [], |r| r.get(0)).unwrap();
        s.conn().query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(())).unwrap();
        let big = TurnRecord::new(Role::User, "x".repeat(200_000));
        let e = s.append_turn(id, &big).unwrap_err();
        assert!(matches!(e, StoreError::DiskFull { .. }), "{e:?}");
        assert!(e.to_string().contains("disk is full"), "{e}");
        let d = s.session(id).unwrap();
        assert_eq!(d.turns.len(), 1);
        assert_eq!(d.turns[0].text, "first");
    }

    #[test]
    fn delete_cascades_and_reports_missing() {
        let (_d, s) = open_tmp();
        let id = s.create_session(&NewSession::new(SessionKind::Roleplay, Lang::En)).unwrap();
        s.append_turn(id, &TurnRecord::new(Role::User, "hi")).unwrap();
        s.delete_session(id).unwrap();
        let n: i64 = s.conn().query_row("SELECT count(*) FROM turns", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 0);
        assert!(matches!(s.delete_session(id), Err(StoreError::NoSuchSession { .. })));
        assert!(matches!(s.session(id), Err(StoreError::NoSuchSession { .. })));
    }

    #[test]
    fn data_dir_that_is_a_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("afile");
        std::fs::write(&f, b"not a dir").unwrap();
        let e = Store::open(Some(&f)).unwrap_err();
        assert!(
            matches!(e, StoreError::DataDir { .. }) || matches!(e, StoreError::ReadOnly { .. })
        );
        assert!(e.to_string().contains("--data-dir"), "{e}");
        assert_eq!(std::fs::read(&f).unwrap(), b"not a dir");
    }

    #[test]
    fn knows_its_own_files() {
        let (d, s) = open_tmp();
        assert!(s.is_store_file(&d.path().join("upward.db")));
        assert!(s.is_store_file(&d.path().join(".").join("upward.db")));
        assert!(!s.is_store_file(&d.path().join("export.md")));
    }
}
