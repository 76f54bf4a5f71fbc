//! `upward models` (being built).

use super::Global;

/// Subcommands of `upward models`.
#[derive(Debug, clap::Subcommand)]
pub enum ModelsCommand {
    /// List.
    List,
}

/// Runs `upward models`.
pub fn run(_cmd: ModelsCommand, _g: &Global) -> anyhow::Result<()> {
    anyhow::bail!("`upward models` is not built yet")
}
