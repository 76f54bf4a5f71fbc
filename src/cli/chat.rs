//! `upward chat` (being built).

use super::Global;

/// Arguments of `upward chat`.
#[derive(Debug, clap::Args)]
pub struct ChatArgs {}

/// Runs `upward chat`.
pub fn run(_args: ChatArgs, _g: &Global) -> anyhow::Result<()> {
    anyhow::bail!("`upward chat` is not built yet")
}
