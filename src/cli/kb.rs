//! `upward kb`: check and search the knowledge base.

use super::Global;
use std::path::PathBuf;
use upward::kb::{self, KnowledgeBase};
use upward::lang::Lang;

/// Subcommands of `upward kb`.
#[derive(Debug, clap::Subcommand)]
pub enum KbCommand {
    /// Check a knowledge directory (default: $UPWARD_KNOWLEDGE_DIR, else the built-in base):
    /// prints each problem as `file:line: reason` and fails if there is any.
    Check {
        /// The knowledge directory (with principles/, scenarios/, source/).
        dir: Option<PathBuf>,
    },
    /// List the principles (with the criteria they support) and the role-play scenarios.
    List,
    /// Search the principles (language from --lang, else detected from the query).
    Search {
        /// What you want to know, in Chinese or English.
        query: String,
        /// Print JSON: [{ "id", "score", "title", "summary", "claims", "quotes", "note",
        /// "beyond_talk" }]; `summary` and `claims` (each sentence with its transcript
        /// passages) say what the talk says, `beyond_talk` is our advice.
        #[arg(long)]
        json: bool,
        /// How many principles to show.
        #[arg(short = 'k', long = "top", default_value_t = 3)]
        k: usize,
    },
}

/// Runs `upward kb`.
pub fn run(cmd: KbCommand, g: &Global) -> anyhow::Result<()> {
    match cmd {
        KbCommand::Check { dir } => check(dir),
        KbCommand::Search { query, json, k } => search(&query, json, k, g),
        KbCommand::List => list(g),
    }
}

fn check(dir: Option<PathBuf>) -> anyhow::Result<()> {
    let dir = dir.or_else(|| std::env::var_os(kb::KNOWLEDGE_DIR_ENV).map(PathBuf::from));
    let (shown, problems) = match &dir {
        Some(d) => (d.display().to_string(), kb::check_dir(d)),
        None => ("built-in knowledge base".to_string(), kb::check_builtin()),
    };
    if !problems.is_empty() {
        for p in &problems {
            println!("{p}");
        }
        anyhow::bail!("{} problem(s) in {shown}", problems.len());
    }
    let base = match &dir {
        Some(d) => KnowledgeBase::load_dir(d)?,
        None => KnowledgeBase::builtin()?,
    };
    let quotes: usize = base.principles().iter().map(|p| p.quotes.len()).sum();
    let claims: usize = base.principles().iter().map(|p| p.claims.len()).sum();
    println!(
        "OK: {shown}: {} principles, {} scenarios, {quotes} verbatim quotes, {claims} summary \
         sentences each resting on transcript passages, every criterion of the talk covered",
        base.principles().len(),
        base.scenarios().len(),
    );
    Ok(())
}

fn list(g: &Global) -> anyhow::Result<()> {
    let base = KnowledgeBase::load_default()?;
    let lang = g.lang();
    let mut out = String::new();
    out.push_str(lang.pick("原则：\n", "Principles:\n"));
    for p in base.principles() {
        out.push_str(&format!(
            "  {:<24} {}  ({})\n",
            p.id,
            p.title.get(lang),
            p.criteria.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(" ")
        ));
    }
    out.push_str(lang.pick("\n场景：\n", "\nScenarios:\n"));
    for s in base.scenarios() {
        out.push_str(&format!("  {:<24} {}  [{}]\n", s.id, s.title.get(lang), s.rubric));
    }
    write_out(&out)
}

/// Writes to stdout; a closed pipe (`| head`) is not an error worth a panic.
fn write_out(s: &str) -> anyhow::Result<()> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(s.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

fn search(query: &str, json: bool, k: usize, g: &Global) -> anyhow::Result<()> {
    if query.trim().is_empty() {
        anyhow::bail!("the query is empty: say what you want to know, e.g. `upward kb search \"年终怎么感谢领导\"`");
    }
    let base = KnowledgeBase::load_default()?;
    // The language of the answer: --lang if given, else the query's own.
    let lang = g.lang.unwrap_or_else(|| Lang::detect(query));
    let hits = base.search(query, Some(Lang::detect(query)), k);
    let out = if json {
        #[derive(serde::Serialize)]
        struct JsonHit<'a> {
            id: &'a str,
            score: f64,
            title: &'a str,
            summary: &'a str,
            claims: Vec<JsonClaim<'a>>,
            quotes: &'a [String],
            note: Option<&'a str>,
            beyond_talk: Option<&'a str>,
        }
        #[derive(serde::Serialize)]
        struct JsonClaim<'a> {
            text: &'a str,
            passages: &'a [kb::Passage],
        }
        let arr: Vec<JsonHit<'_>> = hits
            .iter()
            .map(|h| JsonHit {
                id: &h.principle.id,
                score: (f64::from(h.score) * 1000.0).round() / 1000.0,
                title: h.principle.title.get(lang),
                summary: h.principle.summary.get(lang),
                claims: h
                    .principle
                    .claims
                    .iter()
                    .map(|c| JsonClaim { text: c.text.get(lang), passages: &c.passages })
                    .collect(),
                quotes: &h.principle.quotes,
                note: h.principle.note.as_ref().map(|n| n.get(lang)),
                beyond_talk: h.principle.beyond_talk.as_ref().map(|b| b.get(lang)),
            })
            .collect();
        serde_json::to_string_pretty(&arr)? + "\n"
    } else {
        let mut s = kb::render_hits(&hits, lang);
        if !s.ends_with('\n') {
            s.push('\n');
        }
        s
    };
    write_out(&out)
}
