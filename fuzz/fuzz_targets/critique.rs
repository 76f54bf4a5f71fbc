//! cargo-fuzz target: see `upward_fuzz::critique`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| upward_fuzz::critique(data));
