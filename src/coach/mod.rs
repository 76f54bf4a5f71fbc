//! The coaching service: every front end (the coach REPL, each CLI subcommand, a server)
//! calls it and renders what it returns and streams.
//!
//! - [`roleplay`]: role-play runs: start, turn, hint, feedback, end with a debrief,
//!   resume; each turn saved as it completes.
//! - [`critique`]: critiques with the rules, and the model where its policy allows.
//! - [`ask`]: coach Q&A grounded in the knowledge base, and plain chat.
//! - [`save`]: writing critiques and chats to the session store.
//! - [`events`]: what the service streams to the caller's sink: text, scored turns,
//!   notices (a store error is a notice, never dropped).
//!
//! State (a [`roleplay::RoleplayRun`], an [`ask::Chat`]) is per conversation and `Send`;
//! the model (`&mut dyn` [`ChatBackend`](crate::backend::ChatBackend)) and the user's
//! [`Store`](crate::store::Store) are passed to each call, so that one model can serve
//! many conversations in turn. Rendering for a terminal is the front ends' job.

pub mod ask;
pub mod critique;
pub mod events;
pub mod roleplay;
pub mod save;

pub use events::{Event, Notice, Saving};

/// Why a service call failed.
#[derive(Debug, thiserror::Error)]
pub enum CoachError {
    /// The session store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The role-play could not go on.
    #[error(transparent)]
    Roleplay(#[from] crate::roleplay::RoleplayError),
    /// The session to resume is not a role-play.
    #[error("session {0} is not a role-play")]
    NotRoleplay(i64),
}
