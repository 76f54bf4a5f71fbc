//! `upward kb` (being built).

use super::Global;

/// Subcommands of `upward kb`.
#[derive(Debug, clap::Subcommand)]
pub enum KbCommand {
    /// List.
    List,
}

/// Runs `upward kb`.
pub fn run(_cmd: KbCommand, _g: &Global) -> anyhow::Result<()> {
    anyhow::bail!("`upward kb` is not built yet")
}
