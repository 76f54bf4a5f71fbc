//! What every front end (the coach REPL, `upward critique`, `upward chat`) shares about a
//! coaching session. Today: saving critiques and chats to the session store ([`save`]).

pub mod save;
