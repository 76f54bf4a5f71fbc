//! `upward sessions` (being built).

use super::Global;

/// Subcommands of `upward sessions`.
#[derive(Debug, clap::Subcommand)]
pub enum SessionsCommand {
    /// List.
    List,
}

/// Runs `upward sessions`.
pub fn run(_cmd: SessionsCommand, _g: &Global) -> anyhow::Result<()> {
    anyhow::bail!("`upward sessions` is not built yet")
}
