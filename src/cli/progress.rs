//! `upward progress` (being built).

use super::Global;

/// Arguments of `upward progress`.
#[derive(Debug, clap::Args)]
pub struct ProgressArgs {}

/// Runs `upward progress`.
pub fn run(_args: ProgressArgs, _g: &Global) -> anyhow::Result<()> {
    anyhow::bail!("`upward progress` is not built yet")
}
