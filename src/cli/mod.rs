//! Command-line surface: global options, subcommands and their dispatch.
//! Each subcommand lives in its own file with its `Args` and `run`.

mod bench;
mod bench_concurrent;
mod bench_serve;
mod chat;
mod coach;
mod critique;
mod kb;
mod models;
mod progress;
mod roleplay;
mod serve;
mod sessions;
mod signals;
mod users;

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
    /// Serve the coach in the browser, and an OpenAI-compatible API, on one model.
    Serve(serve::ServeArgs),
    /// Add, list and remove the users of `upward serve`.
    #[command(subcommand)]
    Users(users::UsersCommand),
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let g = cli.global;
    let just_prints = match &cli.command {
        Some(Command::Models(_) | Command::Kb(_) | Command::Sessions(_)) => true,
        Some(Command::Progress(_) | Command::Users(_) | Command::Critique(_)) => true,
        Some(Command::Roleplay(a)) => a.list,
        _ => false,
    };
    if just_prints {
        signals::quiet_on_closed_pipe();
    }
    match cli.command {
        None => coach::run_repl(&g),
        Some(Command::Chat(a)) => chat::run(a, &g),
        Some(Command::Models(c)) => models::run(c, &g),
        Some(Command::Kb(c)) => kb::run(c, &g),
        Some(Command::Critique(a)) => critique::run(a, &g),
        Some(Command::Roleplay(a)) => roleplay::run(a, &g),
        Some(Command::Sessions(c)) => sessions::run(c, &g),
        Some(Command::Progress(a)) => progress::run(a, &g),
        Some(Command::Bench(a)) => bench::run(a, &g),
        Some(Command::Serve(a)) => serve::run(a, &g),
        Some(Command::Users(c)) => users::run(c, &g),
    }
}

/// Sampling and context options shared by every command that generates text.
#[derive(Debug, Clone, clap::Args)]
pub struct SamplingArgs {
    /// Sampling temperature (0 = greedy, deterministic).
    #[arg(long, default_value_t = 0.7)]
    pub temperature: f32,
    /// Top-k (0 = off).
    #[arg(long, default_value_t = 40)]
    pub top_k: usize,
    /// Top-p (1 = off).
    #[arg(long, default_value_t = 0.95)]
    pub top_p: f32,
    /// Min-p (0 = off).
    #[arg(long, default_value_t = 0.05)]
    pub min_p: f32,
    /// Repeat penalty (1 = off).
    #[arg(long, default_value_t = 1.1)]
    pub repeat_penalty: f32,
    /// Random seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Most tokens per answer.
    #[arg(long, default_value_t = 512)]
    pub max_tokens: usize,
    /// Context window (KV cache) in tokens [default: the model's training context, as
    /// far as memory allows].
    #[arg(long, default_value_t = upward::engine::AUTO_CTX, hide_default_value = true)]
    pub ctx: usize,
}

impl SamplingArgs {
    /// The defaults, as if no flag was given.
    pub fn defaults() -> SamplingArgs {
        use clap::{Args, FromArgMatches};
        let cmd = SamplingArgs::augment_args(clap::Command::new("defaults"));
        SamplingArgs::from_arg_matches(&cmd.get_matches_from(["defaults"]))
            .expect("the defaults parse")
    }

    /// The engine's generation options.
    pub fn options(&self) -> upward::engine::GenerateOptions {
        upward::engine::GenerateOptions {
            sampling: upward::engine::SamplingParams {
                temperature: self.temperature,
                top_k: self.top_k,
                top_p: self.top_p,
                min_p: self.min_p,
                repeat_penalty: self.repeat_penalty,
                repeat_last_n: 64,
                seed: self.seed,
            },
            max_tokens: self.max_tokens.max(1),
        }
    }
}

pub use signals::{cancel_flag, Interrupted};

/// `e`, with the advice to raise `--ctx` when a prompt did not fit the context; for the
/// commands that have the flag (those with [`SamplingArgs`]).
pub fn ctx_advice(e: impl Into<anyhow::Error>) -> anyhow::Error {
    use upward::backend::BackendError;
    use upward::engine::EngineError;
    use upward::roleplay::RoleplayError;
    let e = e.into();
    let too_long = e.chain().any(|c| {
        matches!(c.downcast_ref::<EngineError>(), Some(EngineError::PromptTooLong { .. }))
            || c.downcast_ref::<BackendError>().is_some_and(BackendError::is_prompt_too_long)
            || matches!(
                c.downcast_ref::<RoleplayError>(),
                Some(RoleplayError::Backend(b)) if b.is_prompt_too_long()
            )
    });
    if too_long {
        anyhow::anyhow!("{e} or raise --ctx")
    } else {
        e
    }
}

/// A model ready to chat, behind the backend trait (our engine, or a remote server).
pub type Model = Box<dyn upward::backend::ChatBackend>;

/// Resolves `--model` (or the catalogue's default, with its fallback), pulling it if
/// needed, and opens it. Returns the model and its display name.
pub fn load_model(g: &Global, ctx: usize, announce: bool) -> anyhow::Result<(Model, String)> {
    let (model, name, _) = load_resolved(g, ctx, announce, true)?;
    Ok((model, name))
}

/// [`load_model`], downloading a missing model only when `allow_download`, also
/// returning what the catalogue resolved. The backend comes from
/// [`upward::backend::open`], so every kind of model plugs in here.
pub fn load_resolved(
    g: &Global,
    ctx: usize,
    announce: bool,
    allow_download: bool,
) -> anyhow::Result<(Model, String, upward::catalogue::ResolvedModel)> {
    use anyhow::Context;
    use upward::catalogue::{self, Catalogue};
    if let Some(t) = g.threads {
        upward::threads::set(t);
    }
    let cat = Catalogue::load_default(g.models_file.as_deref())?;
    let resolved = catalogue::resolve_choice(g.model.as_deref(), &cat, allow_download)?;
    let name = resolved.display_name();
    if announce {
        let verb = if resolved.remote.is_some() { "connecting to" } else { "loading" };
        eprintln!("upward: {verb} {name} ({})", resolved.location());
    }
    let opts = upward::engine::LoadOptions {
        ctx,
        template_fallback: resolved
            .entry
            .as_ref()
            .and_then(|e| e.chat_template)
            .map(|t| t.as_str().to_string()),
    };
    let what = if resolved.remote.is_some() { "reach" } else { "load" };
    let model = upward::backend::open(&resolved, &opts)
        .with_context(|| format!("cannot {what} model {name}"))?;
    Ok((model, name, resolved))
}
