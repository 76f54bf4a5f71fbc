//! `upward sessions`: list, show, resume, export and delete saved coaching sessions.

use super::Global;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use upward::lang::Lang;
use upward::outfile::{write_output, Written};
use upward::store::{
    export_json, export_markdown, ExportFormat, SessionDetail, SessionKind, Store,
};
use upward::term::visible;
use upward::text::{display_width, truncate_to_width};

/// Subcommands of `upward sessions`.
#[derive(Debug, clap::Subcommand)]
pub enum SessionsCommand {
    /// List saved sessions, oldest first.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one session: its transcript, critiques and debrief.
    Show {
        /// Session id (from `upward sessions list`).
        id: i64,
        /// Print the full session as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Export one session as Markdown or JSON.
    Export {
        /// Session id.
        id: i64,
        /// Output format.
        #[arg(long, value_enum, default_value = "md")]
        format: ExportFormat,
        /// Write to this file instead of stdout (`-`: stdout). A regular file is replaced
        /// atomically; a link is followed; a device or FIFO is written in place.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Delete one session, or every session with --all.
    Delete {
        /// Session id.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<i64>,
        /// Delete every saved session.
        #[arg(long)]
        all: bool,
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Continue a role-play or chat session where it stopped.
    Resume {
        /// Session id.
        id: i64,
    },
}

/// Runs `upward sessions`.
pub fn run(cmd: SessionsCommand, g: &Global) -> anyhow::Result<()> {
    let store = Store::open(g.data_dir.as_deref())?;
    let lang = g.lang();
    let mut stdout = std::io::stdout().lock();
    match cmd {
        SessionsCommand::List { json } => {
            let list = store.list_sessions()?;
            if json {
                writeln!(stdout, "{}", serde_json::to_string_pretty(&list)?)?;
            } else if list.is_empty() {
                writeln!(stdout, "{}", lang.pick("还没有保存的会话。", "No saved sessions."))?;
            } else {
                stdout.write_all(visible(&list_table(&list, lang)).as_bytes())?;
            }
        }
        SessionsCommand::Show { id, json } => {
            let d = store.session(id)?;
            if json {
                writeln!(stdout, "{}", export_json(&d)?)?;
            } else {
                writeln!(stdout, "{}", visible(&export_markdown(&d)))?;
            }
        }
        SessionsCommand::Export { id, format, output } => {
            let d = store.session(id)?;
            let mut text = match format {
                ExportFormat::Md => export_markdown(&d),
                ExportFormat::Json => export_json(&d)?,
            };
            text.push('\n');
            match output {
                Some(path) => {
                    if store.is_store_file(&path) {
                        anyhow::bail!(
                            "refusing to overwrite the session database {}",
                            path.display()
                        );
                    }
                    drop(stdout);
                    if let Written::File(p) = write_output(&path, text.as_bytes())? {
                        eprintln!("{} {}", lang.pick("已导出到", "exported to"), p.display());
                    }
                }
                // Markdown is for reading: on a terminal, control characters are shown.
                None if format == ExportFormat::Md && stdout.is_terminal() => {
                    stdout.write_all(visible(&text).as_bytes())?
                }
                None => stdout.write_all(text.as_bytes())?,
            }
        }
        SessionsCommand::Delete { id: Some(id), .. } => {
            store.delete_session(id)?;
            writeln!(stdout, "{} {id}", lang.pick("已删除会话", "deleted session"))?;
        }
        SessionsCommand::Delete { id: None, yes, .. } => {
            let n = store.list_sessions()?.len();
            if !yes && !confirm_delete_all(n, lang)? {
                writeln!(stdout, "{}", lang.pick("未删除任何内容。", "Nothing deleted."))?;
                return Ok(());
            }
            let n = store.delete_all()?;
            writeln!(
                stdout,
                "{}",
                match lang {
                    Lang::Zh => format!("已删除 {n} 个会话"),
                    Lang::En => format!("deleted {n} sessions"),
                }
            )?;
        }
        SessionsCommand::Resume { id } => {
            let d = store.session(id)?;
            drop(stdout);
            resume(store, d, g)?;
        }
    }
    Ok(())
}

/// Asks on the terminal before deleting everything; off a terminal, refuses (use --yes).
fn confirm_delete_all(n: usize, lang: Lang) -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        anyhow::bail!(
            "{}",
            lang.pick(
                "删除全部会话需要确认：请加 --yes",
                "deleting every session needs confirmation: pass --yes"
            )
        );
    }
    eprint!(
        "{}",
        match lang {
            Lang::Zh => format!("确定删除全部 {n} 个会话？此操作无法撤销 [y/N] "),
            Lang::En => format!("Delete all {n} sessions? This cannot be undone [y/N] "),
        }
    );
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let a = line.trim().to_lowercase();
    Ok(a == "y" || a == "yes" || a == "是")
}

fn pad(s: &str, cols: usize) -> String {
    format!("{s}{}", " ".repeat(cols.saturating_sub(display_width(s))))
}

/// The session list as an aligned table (CJK-aware).
fn list_table(list: &[upward::store::SessionSummary], lang: Lang) -> String {
    let head = [
        lang.pick("编号", "ID"),
        lang.pick("开始时间", "Started"),
        lang.pick("类型", "Kind"),
        lang.pick("轮数", "Turns"),
        lang.pick("得分", "Score"),
        lang.pick("标题", "Title"),
    ];
    let rows: Vec<[String; 6]> = list
        .iter()
        .map(|s| {
            let x = &s.session;
            let started = chrono::DateTime::parse_from_rfc3339(&x.started_at)
                .map(|t| t.with_timezone(&chrono::Local).format("%Y-%m-%d %H:%M").to_string())
                .unwrap_or_else(|_| x.started_at.clone());
            let title = x.title.clone().or_else(|| x.scenario.clone()).unwrap_or_default();
            [
                x.id.to_string(),
                started,
                x.kind.label(lang).to_string(),
                s.turns.to_string(),
                s.score.map(|v| format!("{v:.0}")).unwrap_or_else(|| "-".into()),
                truncate_to_width(&title, 40),
            ]
        })
        .collect();
    let mut widths: Vec<usize> = head.iter().map(|h| display_width(h)).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r.iter()) {
            *w = (*w).max(display_width(c));
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<&str>, out: &mut String| {
        let n = cells.len();
        for (i, c) in cells.into_iter().enumerate() {
            if i + 1 == n {
                out.push_str(c);
            } else {
                out.push_str(&pad(c, widths[i]));
                out.push_str("  ");
            }
        }
        out.push('\n');
    };
    line(head.to_vec(), &mut out);
    for r in &rows {
        line(r.iter().map(String::as_str).collect(), &mut out);
    }
    out
}

/// Resumes a saved session: a role-play reopens in the coach REPL with its history and a
/// warm cache (on the session's model unless `--model` says otherwise); other sessions
/// are printed, since there is nothing to continue.
pub fn resume(store: Store, detail: SessionDetail, g: &Global) -> anyhow::Result<()> {
    let lang = detail.session.lang;
    if detail.session.kind != SessionKind::Roleplay {
        println!("{}", visible(&export_markdown(&detail)));
        println!(
            "{}",
            lang.pick(
                "（只有角色扮演可以继续；这是一条点评记录。）",
                "(Only role-plays can be resumed; this session is shown instead.)"
            )
        );
        return Ok(());
    }
    drop(store);
    let mut g = g.clone();
    if g.model.is_none() {
        g.model = detail.session.model.clone();
    }
    super::coach::run_resumed(&g, detail.session.id)
}
