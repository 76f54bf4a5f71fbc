//! `upward progress`: first, best and latest result per criterion, as a terminal chart,
//! JSON or a self-contained HTML page.

use super::Global;
use chrono::NaiveDate;
use std::path::PathBuf;
use upward::outfile::{write_output, Written};
use upward::store::{progress_chart, progress_html, Store};

/// Arguments of `upward progress`.
#[derive(Debug, clap::Args)]
pub struct ProgressArgs {
    /// Print JSON instead of the chart.
    #[arg(long)]
    pub json: bool,
    /// Count only results on or after this date (YYYY-MM-DD, local time).
    #[arg(long, value_parser = parse_date)]
    pub since: Option<NaiveDate>,
    /// Also write a self-contained HTML page with charts to FILE (`-`: stdout). A regular
    /// file is replaced atomically; a link is followed; a device or FIFO is written in place.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

fn parse_date(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .map_err(|e| format!("{s:?} is not a date like 2026-11-01 ({e})"))
}

/// Runs `upward progress`.
pub fn run(args: ProgressArgs, g: &Global) -> anyhow::Result<()> {
    let store = Store::open(g.data_dir.as_deref())?;
    let lang = g.lang();
    let p = store.progress(args.since)?;
    if let Some(path) = &args.html {
        if store.is_store_file(path) {
            anyhow::bail!("refusing to overwrite the session database {}", path.display());
        }
        if let Written::File(f) = write_output(path, progress_html(&p, lang).as_bytes())? {
            eprintln!("{} {}", lang.pick("已写入", "wrote"), f.display());
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&p)?);
    } else if args.html.is_none() {
        print!("{}", progress_chart(&p, lang));
    }
    Ok(())
}
