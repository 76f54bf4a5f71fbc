//! Who is calling: the users file (names and argon2 hashes of their tokens), bearer
//! tokens, the login cookie and its CSRF token.
//!
//! With no users, the server is one person's on loopback: every request is the user
//! `local`, whose sessions are the CLI's own store. Once a user exists, every request
//! (but the page, its static files, `/healthz` and the login) authenticates, and each
//! user's sessions live in their own store under `<data-dir>/users/<name>/`.

use super::error::ApiError;
use super::AppState;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, Method};
use rand::Rng;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The users file in the data dir.
pub const USERS_FILE: &str = "users.json";
/// The login cookie's name.
pub(crate) const COOKIE: &str = "upward_session";
/// How long a login cookie lasts.
pub(crate) const LOGIN_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// Most logins held at once (the oldest goes first).
const MAX_LOGINS: usize = 10_000;

/// Why the users file cannot be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// Reading or writing the file failed.
    #[error("{path}: {cause}")]
    Io {
        /// The users file.
        path: PathBuf,
        /// The error.
        cause: std::io::Error,
    },
    /// The file is not a users file of ours.
    #[error("{path} is damaged ({reason}); move it away to start over")]
    Corrupt {
        /// The users file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A user name upward cannot use.
    #[error("{0:?} is not a user name: use 1-32 letters, digits, '-' or '_'")]
    BadName(String),
    /// The name is taken.
    #[error("user {0} already exists (`upward users remove {0}` first to give a new token)")]
    Exists(String),
    /// No user by that name.
    #[error("no user {0}; `upward users list` shows them")]
    NoSuchUser(String),
}

/// One user: a name and the argon2 hash of their token.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct UserRecord {
    /// The user's name (also their folder under `users/`).
    pub name: String,
    /// When the user was added (RFC 3339).
    pub created: String,
    /// The public part of the token, which finds the hash to check.
    id: String,
    /// Argon2 PHC string of the token's secret.
    hash: String,
}

#[derive(Default, serde::Serialize, serde::Deserialize)]
struct UsersFile {
    users: Vec<UserRecord>,
}

/// The users of a data dir (`<data-dir>/users.json`, owner-only).
#[derive(Debug)]
pub struct Users {
    path: PathBuf,
    list: Vec<UserRecord>,
}

impl Users {
    /// Reads the users of `data_dir` (none when the file is missing).
    pub fn load(data_dir: &Path) -> Result<Users, UserError> {
        let path = data_dir.join(USERS_FILE);
        let list = match std::fs::read(&path) {
            Ok(bytes) => {
                let f: UsersFile = serde_json::from_slice(&bytes).map_err(|e| {
                    UserError::Corrupt { path: path.clone(), reason: e.to_string() }
                })?;
                f.users
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(cause) => return Err(UserError::Io { path, cause }),
        };
        Ok(Users { path, list })
    }

    /// The users, oldest first.
    pub fn list(&self) -> &[UserRecord] {
        &self.list
    }

    /// No users: the server is loopback-only and needs no login.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Adds user `name` and returns their new token (shown once; only its hash is kept).
    pub fn add(&mut self, name: &str) -> Result<String, UserError> {
        if !valid_name(name) {
            return Err(UserError::BadName(name.to_string()));
        }
        if self.list.iter().any(|u| u.name == name) {
            return Err(UserError::Exists(name.to_string()));
        }
        let mut rng = rand::rng();
        let id = hex(&rng.random::<[u8; 6]>());
        let secret = hex(&rng.random::<[u8; 32]>());
        let salt = SaltString::encode_b64(&rng.random::<[u8; 16]>())
            .map_err(|e| UserError::Corrupt { path: self.path.clone(), reason: e.to_string() })?;
        let hash = Argon2::default()
            .hash_password(secret.as_bytes(), &salt)
            .map_err(|e| UserError::Corrupt { path: self.path.clone(), reason: e.to_string() })?
            .to_string();
        let created = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        self.list.push(UserRecord { name: name.to_string(), created, id: id.clone(), hash });
        self.save()?;
        Ok(format!("upw_{id}_{secret}"))
    }

    /// Removes user `name`: their token stops working at once. Their saved sessions stay
    /// on disk (under `users/<name>/`).
    pub fn remove(&mut self, name: &str) -> Result<(), UserError> {
        let before = self.list.len();
        self.list.retain(|u| u.name != name);
        if self.list.len() == before {
            return Err(UserError::NoSuchUser(name.to_string()));
        }
        self.save()
    }

    /// The user whose token this is (an argon2 check of its secret).
    pub(crate) fn verify(&self, token: &str) -> Option<&UserRecord> {
        let rest = token.strip_prefix("upw_")?;
        let (id, secret) = rest.split_once('_')?;
        let user = self.list.iter().find(|u| u.id == id)?;
        let hash = PasswordHash::new(&user.hash).ok()?;
        Argon2::default().verify_password(secret.as_bytes(), &hash).ok()?;
        Some(user)
    }

    fn save(&self) -> Result<(), UserError> {
        let io = |cause| UserError::Io { path: self.path.clone(), cause };
        let dir = self.path.parent().unwrap_or(Path::new("."));
        crate::private::create_dir(dir, false).map_err(io)?;
        let json = serde_json::to_vec_pretty(&UsersFile { users: self.list.clone() })
            .map_err(|e| io(std::io::Error::other(e)))?;
        let tmp = dir.join(format!(".{USERS_FILE}.{}.tmp", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        let write = || -> std::io::Result<()> {
            use std::io::Write;
            let mut f = crate::private::file_options().create_new(true).write(true).open(&tmp)?;
            f.write_all(&json)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            io(e)
        })
    }
}

/// A name usable as a user and a folder.
fn valid_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && !name.starts_with('-')
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Equal without telling, by its timing, where two strings differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A logged-in browser.
struct Login {
    user: String,
    user_id: String,
    csrf: String,
    since: Instant,
}

/// Logins and the tokens already checked (by their SHA-256; argon2 once per token).
#[derive(Default)]
pub(crate) struct Sessions {
    logins: Mutex<HashMap<String, Login>>,
    checked: Mutex<HashMap<[u8; 32], String>>,
}

/// The caller of a request.
#[derive(Clone, Debug)]
pub(crate) struct Caller {
    /// User name (`local` without users).
    pub name: String,
    /// Users are configured.
    pub auth: bool,
    /// The CSRF token of a cookie login.
    pub csrf: Option<String>,
    /// The folder of this user's session store.
    pub dir: PathBuf,
}

impl Caller {
    /// Opens this user's session store.
    pub fn store(&self) -> Result<crate::store::Store, ApiError> {
        crate::store::Store::open(Some(&self.dir)).map_err(ApiError::from)
    }
}

impl Sessions {
    /// The user of a bearer token, checking its hash the first time.
    fn bearer(&self, users: &Users, token: &str) -> Option<UserRecord> {
        let key = digest(token);
        let known = self.checked.lock().ok()?.get(&key).cloned();
        if let Some(id) = known {
            return users.list.iter().find(|u| u.id == id).cloned();
        }
        let user = tokio::task::block_in_place(|| users.verify(token).cloned())?;
        if let Ok(mut c) = self.checked.lock() {
            if c.len() > MAX_LOGINS {
                c.clear();
            }
            c.insert(key, user.id.clone());
        }
        Some(user)
    }

    /// Logs in with `token`: the cookie value and the CSRF token, or None.
    pub fn login(&self, users: &Users, token: &str) -> Option<(String, String, String)> {
        let user = self.bearer(users, token)?;
        let mut rng = rand::rng();
        let cookie = hex(&rng.random::<[u8; 32]>());
        let csrf = hex(&rng.random::<[u8; 32]>());
        let mut logins = self.logins.lock().ok()?;
        logins.retain(|_, l| l.since.elapsed() < LOGIN_TTL);
        if logins.len() >= MAX_LOGINS {
            let oldest = logins.iter().min_by_key(|(_, l)| l.since).map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                logins.remove(&k);
            }
        }
        let login = Login {
            user: user.name.clone(),
            user_id: user.id,
            csrf: csrf.clone(),
            since: Instant::now(),
        };
        logins.insert(cookie.clone(), login);
        Some((user.name, cookie, csrf))
    }

    /// Forgets the login of `cookie`.
    pub fn logout(&self, cookie: &str) {
        if let Ok(mut l) = self.logins.lock() {
            l.remove(cookie);
        }
    }
}

/// The value of cookie `name` in a request.
pub(crate) fn cookie<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Authenticates a request (see the module doc). Bearer requests need no CSRF token; a
/// cookie-authenticated POST or DELETE must send `X-CSRF-Token`.
pub(crate) fn authenticate(state: &AppState, parts: &Parts) -> Result<Caller, ApiError> {
    let users = Users::load(&state.data_dir).map_err(ApiError::internal)?;
    if users.is_empty() {
        let dir = state.data_dir.clone();
        return Ok(Caller { name: "local".into(), auth: false, csrf: None, dir });
    }
    let caller = |name: String, csrf| Caller {
        dir: state.data_dir.join("users").join(&name),
        name,
        auth: true,
        csrf,
    };
    if let Some(v) = parts.headers.get(header::AUTHORIZATION) {
        let token = v.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")).map(str::trim);
        return match token.and_then(|t| state.sessions.bearer(&users, t)) {
            Some(u) => Ok(caller(u.name, None)),
            None => Err(ApiError::unauthorized()),
        };
    }
    let key = cookie(parts, COOKIE).ok_or_else(ApiError::unauthorized)?;
    let (name, csrf) = {
        let logins = state.sessions.logins.lock().map_err(ApiError::internal)?;
        let login = logins.get(key).filter(|l| l.since.elapsed() < LOGIN_TTL);
        // A removed user's login ends with their token.
        let login = login
            .filter(|l| users.list.iter().any(|u| u.id == l.user_id))
            .ok_or_else(ApiError::unauthorized)?;
        (login.user.clone(), login.csrf.clone())
    };
    if matches!(parts.method, Method::POST | Method::DELETE | Method::PUT | Method::PATCH) {
        let sent = parts.headers.get("x-csrf-token").and_then(|v| v.to_str().ok());
        if !sent.is_some_and(|s| same(s, &csrf)) {
            return Err(ApiError::new(
                axum::http::StatusCode::FORBIDDEN,
                "csrf",
                "missing or wrong X-CSRF-Token header",
            ));
        }
    }
    Ok(caller(name, Some(csrf)))
}

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        authenticate(state, parts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_verifies_only_its_user_and_is_stored_hashed() {
        let dir = tempfile::tempdir().unwrap();
        let mut users = Users::load(dir.path()).unwrap();
        let a = users.add("ana").unwrap();
        let b = users.add("bo").unwrap();
        let users = Users::load(dir.path()).unwrap();
        assert_eq!(users.verify(&a).unwrap().name, "ana");
        assert_eq!(users.verify(&b).unwrap().name, "bo");
        let wrong = format!("{}x", &a[..a.len() - 1]);
        assert!(users.verify(&wrong).is_none());
        let file = std::fs::read_to_string(dir.path().join(USERS_FILE)).unwrap();
        assert!(!file.contains(a.rsplit('_').next().unwrap()));
        assert!(matches!(Users::load(dir.path()).unwrap().add("ana"), Err(UserError::Exists(_))));
        assert!(matches!(Users::load(dir.path()).unwrap().add("../x"), Err(UserError::BadName(_))));
    }
}
