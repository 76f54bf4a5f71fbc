//! cargo-fuzz target: see `upward_fuzz::chat_template`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| upward_fuzz::chat_template(data));
