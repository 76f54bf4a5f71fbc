//! `upward bench` (being built).

use super::Global;

/// Arguments of `upward bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {}

/// Runs `upward bench`.
pub fn run(_args: BenchArgs, _g: &Global) -> anyhow::Result<()> {
    anyhow::bail!("`upward bench` is not built yet")
}
