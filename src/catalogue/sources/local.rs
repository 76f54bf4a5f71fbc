//! A model file already on this machine, copied into the cache and checked.

use super::{progress_bar, Ctx};
use std::path::Path;

pub(crate) fn fetch(path: &Path, ctx: &Ctx) -> Result<String, String> {
    copy_into(path, ctx, None)
}

/// Copies `path` into the cache, checked against the catalogue's digest, else `expected`.
pub(crate) fn copy_into(path: &Path, ctx: &Ctx, expected: Option<&str>) -> Result<String, String> {
    let mut f =
        std::fs::File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let total = f.metadata().ok().map(|m| m.len());
    let mut landing = ctx.landing()?;
    let pb = progress_bar(ctx.opts.progress, total, format!("copying {}", ctx.entry.file));
    let copied = landing.copy_from(&mut f, &|n| pb.inc(n));
    pb.finish_and_clear();
    copied.map_err(|e| format!("cannot copy {}: {e}", path.display()))?;
    ctx.finish(landing, expected)
}
