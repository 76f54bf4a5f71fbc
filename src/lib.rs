#![warn(missing_docs)]
//! upward: an offline coach for salespeople "managing up".
//!
//! The library is split by job, one module each:
//!
//! | module | job |
//! |---|---|
//! | [`lang`] | Chinese/English detection and the locale default |
//! | [`text`] | CJK-aware text helpers (display width, truncation, safe reading) |
//! | [`term`] | the control-character filter for everything printed to a terminal |
//! | [`outfile`] | writing a file the user named, without replacing links, devices or FIFOs |
//! | [`private`] | owner-only folders and files for private data |
//! | [`catalogue`] | `models.toml`: named models, their sources, downloads and checks |
//! | [`gguf`] | GGUF files: mmap'd weights, tokenizer from metadata, chat templates |
//! | [`kernels`] | quantized matrix kernels for the CPU |
//! | [`engine`] | our forward pass, KV cache, sampling and streaming generation |
//! | [`backend`] | the chat-backend trait the coach talks to: our engine, or a remote server |
//! | [`kb`] | the knowledge base distilled from the talk, its checks and retrieval |
//! | [`prompts`] | embedded prompt templates (minijinja) with a directory override |
//! | [`critique`] | rubric-based critique of help requests and thank-you notes |
//! | [`roleplay`] | boss personas, scenarios, turn scoring and debriefs |
//! | [`coach`] | the coaching service every front end calls: role-play, critique, Q&A, chat, saving, events |
//! | [`store`] | coaching sessions and progress in SQLite |
//! | [`render`] | terminal output: colour, padding, the trust meter and the debrief |
//! | [`repl`] | the interactive coach, a front end; its commands from one table |
pub mod backend;
pub mod catalogue;
pub mod coach;
pub mod critique;
pub mod engine;
pub mod gguf;
pub mod kb;
pub mod kernels;
pub mod lang;
pub mod outfile;
pub mod private;
pub mod prompts;
pub mod render;
pub mod repl;
pub mod roleplay;
pub mod server;
pub mod store;
pub mod term;
pub mod text;
