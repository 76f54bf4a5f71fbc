//! Command-line surface: global options, subcommands and their dispatch.
//! Each subcommand lives in its own file with its `Args` and `run`.

mod bench;
mod chat;
mod critique;
mod kb;
mod models;
mod progress;
mod roleplay;
mod sessions;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use upward::lang::Lang;

/// upward: practise managing up with an offline coach.
#[derive(Debug, Parser)]
#[command(name = "upward", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Options every subcommand understands.
#[derive(Debug, Clone, clap::Args)]
pub struct Global {
    /// Model to use: a name from models.toml or a path to a .gguf file.
    #[arg(long, global = true, env = "UPWARD_MODEL")]
    pub model: Option<String>,
    /// Language of the coach (default: from the locale).
    #[arg(long, global = true, value_enum)]
    pub lang: Option<Lang>,
    /// Where sessions are stored (default: the XDG data dir).
    #[arg(long, global = true, env = "UPWARD_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Model catalogue to read instead of the built-in models.toml.
    #[arg(long, global = true, env = "UPWARD_MODELS_FILE")]
    pub models_file: Option<PathBuf>,
    /// CPU threads for the model (default: all cores).
    #[arg(long, global = true)]
    pub threads: Option<usize>,
}

impl Global {
    /// The language asked for, or the locale's.
    pub fn lang(&self) -> Lang {
        self.lang.unwrap_or_else(Lang::from_locale)
    }
}

/// The subcommands; with none, the coach REPL opens.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Chat with the model directly (REPL, or one-shot with --prompt / stdin).
    Chat(chat::ChatArgs),
    /// List, download, verify and locate models.
    #[command(subcommand)]
    Models(models::ModelsCommand),
    /// Check and search the knowledge base.
    #[command(subcommand)]
    Kb(kb::KbCommand),
    /// Critique a help request or thank-you note.
    Critique(critique::CritiqueArgs),
    /// Role-play a conversation with your boss.
    Roleplay(roleplay::RoleplayArgs),
    /// List, show, resume, export and delete coaching sessions.
    #[command(subcommand)]
    Sessions(sessions::SessionsCommand),
    /// Your progress on each criterion over time.
    Progress(progress::ProgressArgs),
    /// Measure load time, prefill and decode speed, and memory.
    Bench(bench::BenchArgs),
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let g = cli.global;
    match cli.command {
        None => roleplay::run_repl(&g),
        Some(Command::Chat(a)) => chat::run(a, &g),
        Some(Command::Models(c)) => models::run(c, &g),
        Some(Command::Kb(c)) => kb::run(c, &g),
        Some(Command::Critique(a)) => critique::run(a, &g),
        Some(Command::Roleplay(a)) => roleplay::run(a, &g),
        Some(Command::Sessions(c)) => sessions::run(c, &g),
        Some(Command::Progress(a)) => progress::run(a, &g),
        Some(Command::Bench(a)) => bench::run(a, &g),
    }
}
