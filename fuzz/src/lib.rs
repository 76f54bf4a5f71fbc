//! The fuzz targets' entry points, one per untrusted input. The cargo-fuzz binaries in
//! `fuzz_targets/` call them on nightly; `tests/fuzz_corpus.rs` replays the committed
//! corpus (`fuzz/corpus/TARGET/`) through the same functions on stable.

#[path = "entries.rs"]
mod entries;

pub use entries::*;
