//! cargo-fuzz target: see `upward_fuzz::models_toml`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| upward_fuzz::models_toml(data));
