//! `upward serve`: loads the model and hands it to [`upward::server`].

use super::{Global, SamplingArgs};
use std::io::Write;
use std::net::SocketAddr;
use upward::critique::judge::{self, CalibrationStore};

/// Arguments of `upward serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on. Off loopback only once users exist (`upward users add`).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Open the page in the browser once listening.
    #[arg(long)]
    pub open: bool,
    /// Most requests waiting for the model (more get 503 with Retry-After).
    #[arg(long, default_value_t = 64)]
    pub queue: usize,
    /// Most model requests (turns, critiques, completions) per user per minute.
    #[arg(long, default_value_t = 30)]
    pub turns_per_minute: usize,
    /// Replies the model decodes at once, from different users: one pass over the weights
    /// serves them all. A remote model serves one at a time here (its server batches).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub slots: u16,
    /// Most conversations whose KV cache is kept between their turns.
    #[arg(long, default_value_t = 16)]
    pub cached_conversations: usize,
    /// Most MiB of kept KV caches.
    #[arg(long, default_value_t = 2048)]
    pub cache_mib: usize,
    #[command(flatten)]
    pub sampling: SamplingArgs,
}

/// Runs `upward serve` until SIGTERM or Ctrl-C.
pub fn run(args: ServeArgs, g: &Global) -> anyhow::Result<()> {
    let data_dir = upward::store::data_dir(g.data_dir.as_deref())?;
    // Refuse a bad address before spending time on the model.
    upward::server::check_listen(&data_dir, args.listen)?;
    let (mut model, name, resolved) = super::load_resolved(g, args.sampling.ctx, true, true)?;
    let policy = match &model.info().path {
        Some(path) => {
            judge::policy(path, resolved.entry.as_ref(), CalibrationStore::from_env().as_ref())
        }
        None => upward::coach::critique::policy(&model.info()),
    };
    let speaks = super::coach::model_speaks(g, &name, model.as_mut());
    let opts = upward::server::ServeOptions {
        listen: args.listen,
        data_dir,
        model_name: name.clone(),
        judge: policy,
        speaks,
        queue: args.queue,
        turns_per_minute: args.turns_per_minute,
        slots: usize::from(args.slots),
        cached_conversations: args.cached_conversations,
        cache_bytes: args.cache_mib.saturating_mul(1024 * 1024),
        sampling: args.sampling.options(),
    };
    let open = args.open;
    upward::server::serve(opts, model, |addr| {
        println!("upward: serving {name} on http://{addr}/");
        let _ = std::io::stdout().flush();
        if open {
            open_browser(&format!("http://{addr}/"));
        }
    })?;
    eprintln!("upward: stopped");
    Ok(())
}

/// Opens `url` in the desktop's browser (best effort).
fn open_browser(url: &str) {
    let cmd = if cfg!(target_os = "macos") {
        "open"
    } else if cfg!(windows) {
        "explorer"
    } else {
        "xdg-open"
    };
    if std::process::Command::new(cmd).arg(url).spawn().is_err() {
        eprintln!("upward: open {url} in your browser");
    }
}
