//! cargo-fuzz target: see `upward_fuzz::tokenizer`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| upward_fuzz::tokenizer(data));
