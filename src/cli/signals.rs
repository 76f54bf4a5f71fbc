//! Ctrl-C and termination requests.
//!
//! In the REPL, SIGINT stops only the reply being generated ([`cancel_flag`]). In one-shot
//! modes (`roleplay --script`, `chat --prompt`, `bench`), SIGINT and SIGTERM stop the run
//! ([`one_shot`]): the command finishes the current step's bookkeeping (the interrupted
//! turn is marked as such), and returns [`Interrupted`], which `main` turns into exit
//! status 130 or 143.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Once;

/// SIGINT's number.
pub const SIGINT: i32 = 2;
/// SIGTERM's number.
pub const SIGTERM: i32 = 15;

static FLAG: AtomicBool = AtomicBool::new(false);
static SIGNAL: AtomicI32 = AtomicI32::new(0);

/// A one-shot run stopped by a signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interrupted {
    /// The signal's number.
    pub signal: i32,
}

impl Interrupted {
    /// The conventional exit status: 128 + the signal number.
    pub fn exit_code(self) -> u8 {
        (128 + self.signal).clamp(0, 255) as u8
    }
}

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self.signal {
            SIGINT => "SIGINT (Ctrl-C)",
            SIGTERM => "SIGTERM",
            _ => "a signal",
        };
        write!(f, "stopped by {name}")
    }
}

impl std::error::Error for Interrupted {}

#[cfg(unix)]
extern "C" fn on_signal(sig: libc::c_int) {
    // Only atomic stores: async-signal-safe.
    SIGNAL.store(sig, Ordering::SeqCst);
    FLAG.store(true, Ordering::SeqCst);
}

#[cfg(unix)]
fn install(sig: i32) {
    // SAFETY: the handler only stores to atomics; the struct is zeroed then filled.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        // If it cannot be installed, the signal keeps its default meaning (exit).
        libc::sigaction(sig, &sa, std::ptr::null_mut());
    }
}

#[cfg(not(unix))]
fn install(sig: i32) {
    if sig == SIGINT {
        let _ = ctrlc::set_handler(|| {
            SIGNAL.store(SIGINT, Ordering::SeqCst);
            FLAG.store(true, Ordering::SeqCst);
        });
    }
}

/// Lets a closed output pipe end the process quietly, as it ends `ls` or `grep` (Rust
/// ignores SIGPIPE, so `upward sessions list | head -1` would otherwise panic on its next
/// line). Only for commands that just print: the others keep the error, to save what they
/// were doing.
pub fn quiet_on_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: restoring a signal's default disposition before any thread is started.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// The process-wide Ctrl-C flag: set by SIGINT while a model is generating, cleared by
/// whoever starts the next generation. Installed on first use.
pub fn cancel_flag() -> &'static AtomicBool {
    static INT: Once = Once::new();
    INT.call_once(|| install(SIGINT));
    &FLAG
}

/// The flag for one-shot runs: SIGINT and SIGTERM both set it (and are remembered for
/// [`caught`]); nobody clears it.
pub fn one_shot() -> &'static AtomicBool {
    static TERM: Once = Once::new();
    cancel_flag();
    TERM.call_once(|| install(SIGTERM));
    &FLAG
}

/// The signal that stopped a one-shot run, if one came.
pub fn caught() -> Option<Interrupted> {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        signal => Some(Interrupted { signal }),
    }
}

/// `Err(Interrupted)` once a signal came: for checks between the steps of a run.
pub fn check() -> Result<(), Interrupted> {
    caught().map_or(Ok(()), Err)
}
