//! `upward roleplay` (being built).

use super::Global;

/// Arguments of `upward roleplay`.
#[derive(Debug, clap::Args)]
pub struct RoleplayArgs {}

/// Runs `upward roleplay`.
pub fn run(_args: RoleplayArgs, _g: &Global) -> anyhow::Result<()> {
    anyhow::bail!("`upward roleplay` is not built yet")
}

/// Opens the coach REPL (`upward` with no subcommand).
pub fn run_repl(_g: &Global) -> anyhow::Result<()> {
    anyhow::bail!("the coach REPL is not built yet")
}
