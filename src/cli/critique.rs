//! `upward critique` (being built).

use super::Global;

/// Arguments of `upward critique`.
#[derive(Debug, clap::Args)]
pub struct CritiqueArgs {}

/// Runs `upward critique`.
pub fn run(_args: CritiqueArgs, _g: &Global) -> anyhow::Result<()> {
    anyhow::bail!("`upward critique` is not built yet")
}
