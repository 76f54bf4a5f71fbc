//! `upward models`: list the catalogue, download, verify and locate models.

use super::Global;
use anyhow::Context;
use std::time::Instant;
use upward::catalogue::{self, Catalogue, ChecksumOrigin, Entry, ModelCache, PullOptions};
use upward::text::{display_width, truncate_to_width};

/// Subcommands of `upward models`.
#[derive(Debug, clap::Subcommand)]
pub enum ModelsCommand {
    /// List the catalogue's models, whether each is downloaded, and the default.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Download a model into the cache, trying its sources in order.
    Pull {
        /// Model name (default: the catalogue's default model).
        name: Option<String>,
    },
    /// Check a downloaded model: SHA-256, size and GGUF header.
    Verify {
        /// Model name (default: the catalogue's default model).
        name: Option<String>,
    },
    /// Print the path of a downloaded model (fails if it is not downloaded).
    Path {
        /// Model name (default: the catalogue's default model).
        name: Option<String>,
    },
}

/// Runs `upward models`.
pub fn run(cmd: ModelsCommand, g: &Global) -> anyhow::Result<()> {
    let cat = Catalogue::load_default(g.models_file.as_deref())?;
    let cache = ModelCache::from_env()?;
    let pick = |name: &Option<String>| -> anyhow::Result<Entry> {
        let name = name.as_deref().unwrap_or(cat.default_name());
        Ok(cat.get(name)?.clone())
    };
    match cmd {
        ModelsCommand::List { json } => list(&cat, &cache, json),
        ModelsCommand::Pull { name } => {
            let entry = pick(&name)?;
            if let Some(r) = &entry.remote {
                eprintln!(
                    "upward: `{}` is served by {}; nothing to download",
                    entry.name, r.base_url
                );
                return Ok(());
            }
            if let Some(p) = cache.cached(&entry) {
                eprintln!("upward: `{}` is already downloaded", entry.name);
                println!("{}", p.display());
                return Ok(());
            }
            let started = Instant::now();
            let opts = PullOptions {
                progress: true,
                cache: Some(cache.clone()),
                ..PullOptions::default()
            };
            let path = catalogue::pull(&entry, &opts)?;
            eprintln!("upward: `{}` ready in {:.1}s", entry.name, started.elapsed().as_secs_f64());
            println!("{}", path.display());
            Ok(())
        }
        ModelsCommand::Verify { name } => {
            let entry = pick(&name)?;
            if let Some(r) = &entry.remote {
                return verify_remote(&entry.name, r);
            }
            let started = Instant::now();
            let r = catalogue::verify_in(&entry, &cache)?;
            println!("model    {}", entry.name);
            println!("file     {}", r.path.display());
            let size_note = match r.size_ok() {
                Some(true) => " (as expected)".to_string(),
                Some(false) => {
                    format!(" (MISMATCH: expected {} bytes)", r.expected_size.unwrap_or_default())
                }
                None => String::new(),
            };
            println!("size     {} bytes, {:.1} MiB{size_note}", r.size, r.size as f64 / 1048576.0);
            let sha_note = match (r.sha256_ok(), r.checksum_origin) {
                (Some(true), ChecksumOrigin::Catalogue) => " (matches the catalogue)".to_string(),
                (Some(true), _) => " (matches the digest recorded at download)".to_string(),
                (Some(false), _) => {
                    format!(
                        " (MISMATCH: expected {})",
                        r.expected_sha256.as_deref().unwrap_or_default()
                    )
                }
                (None, _) => " (nothing to compare with)".to_string(),
            };
            println!("sha256   {}{sha_note}", r.sha256);
            match r.gguf_version {
                Some(v) => println!("gguf     version {v}"),
                None => println!("gguf     NOT a GGUF file"),
            }
            println!("checked in {:.1}s", started.elapsed().as_secs_f64());
            if !r.ok() {
                anyhow::bail!(
                    "`{}` failed verification: delete {} and run `upward models pull {}`",
                    entry.name,
                    r.path.display(),
                    entry.name
                );
            }
            println!("ok");
            Ok(())
        }
        ModelsCommand::Path { name } => {
            let entry = pick(&name)?;
            if let Some(r) = &entry.remote {
                anyhow::bail!(
                    "`{}` is a remote model served at {}; it has no file",
                    entry.name,
                    r.base_url
                );
            }
            let path = cache.cached(&entry).with_context(|| {
                format!(
                    "`{}` is not downloaded yet: run `upward models pull {}`",
                    entry.name, entry.name
                )
            })?;
            println!("{}", path.display());
            Ok(())
        }
    }
}

/// `models verify` of a remote model: the server answers `/v1/models` and lists the
/// model id.
fn verify_remote(name: &str, r: &upward::catalogue::Remote) -> anyhow::Result<()> {
    let started = Instant::now();
    println!("model    {name}");
    println!("server   {}", r.base_url);
    println!("id       {}", r.model);
    let models = upward::backend::openai::list_models(r)
        .with_context(|| format!("`{name}` failed verification"))?;
    println!(
        "reached  in {:.2}s; the server lists {} model(s)",
        started.elapsed().as_secs_f64(),
        models.len()
    );
    let Some(m) = models.iter().find(|m| m.id == r.model) else {
        let ids: Vec<&str> = models.iter().map(|m| m.id.as_str()).take(10).collect();
        anyhow::bail!(
            "`{name}` failed verification: the server at {} does not serve `{}` (it lists: {}); fix `model` in models.toml",
            r.base_url,
            r.model,
            if ids.is_empty() { "nothing".to_string() } else { ids.join(", ") }
        );
    };
    if let Some(o) = &m.owned_by {
        println!("owned_by {o}");
    }
    if let Some(c) = m.context {
        println!("context  {c} tokens");
    }
    println!("ok");
    Ok(())
}

fn list(cat: &Catalogue, cache: &ModelCache, json: bool) -> anyhow::Result<()> {
    if json {
        let mut items = Vec::new();
        for e in cat.entries() {
            let mut v = serde_json::to_value(e)?;
            let cached = cache.cached(e);
            if let Some(o) = v.as_object_mut() {
                o.insert("default".into(), (e.name == cat.default_name()).into());
                o.insert("fallback".into(), (Some(e.name.as_str()) == cat.fallback_name()).into());
                o.insert("cached".into(), cached.is_some().into());
                o.insert("path".into(), cached.map(|p| p.display().to_string()).into());
            }
            items.push(v);
        }
        return emit(&format!("{}\n", serde_json::to_string_pretty(&items)?));
    }
    let header = ["NAME", "ARCH", "QUANT", "CTX", "LANGUAGES", "LICENCE", "DOWNLOADED"];
    let rows: Vec<[String; 7]> = cat
        .entries()
        .iter()
        .map(|e| {
            let mark = if e.name == cat.default_name() { "*" } else { " " };
            [
                format!("{mark}{}", e.name),
                e.architecture.clone(),
                e.quantization.clone(),
                match e.context_length {
                    0 => "?".into(),
                    n => n.to_string(),
                },
                truncate_to_width(&e.languages.join(","), 18),
                truncate_to_width(&e.licence, 22),
                match &e.remote {
                    Some(r) => truncate_to_width(&format!("remote {}", r.base_url), 40),
                    None if cache.cached(e).is_some() => "yes".into(),
                    None => "no".into(),
                },
            ]
        })
        .collect();
    let mut widths = header.map(display_width);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(display_width(c));
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[String]| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            s.push_str(c);
            if i + 1 < cells.len() {
                s.push_str(&" ".repeat(widths[i] - display_width(c) + 2));
            }
        }
        out.push_str(s.trim_end());
        out.push('\n');
    };
    line(&header.map(String::from));
    for r in &rows {
        line(r);
    }
    let fallback = cat.fallback_name().map(|f| format!("; fallback: {f}")).unwrap_or_default();
    out.push_str(&format!(
        "\n* default{fallback}. Catalogue: {}. Cache: {}\n",
        cat.origin(),
        cache.root().display()
    ));
    emit(&out)
}

/// Writes to stdout; a closed pipe (`upward models list | head`) is not an error.
fn emit(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}
