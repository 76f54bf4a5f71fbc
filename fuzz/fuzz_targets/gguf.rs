//! cargo-fuzz target: see `upward_fuzz::gguf`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| upward_fuzz::gguf(data));
