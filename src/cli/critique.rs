//! `upward critique`: critique a help request or thank-you note.

use super::Global;
use anyhow::Context;
use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use upward::coach::save::save_critique;
use upward::critique::{self, render, CritiqueError, KindChoice};
use upward::kb::KnowledgeBase;
use upward::lang::Lang;
use upward::render::Painter;
use upward::store::Store;

/// Arguments of `upward critique`.
#[derive(Debug, clap::Args)]
pub struct CritiqueArgs {
    /// What the draft is: a help request, a thank-you note, or detect it.
    #[arg(long, value_enum, default_value_t = KindChoice::Auto)]
    pub kind: KindChoice,
    /// Print one JSON object instead of the report.
    #[arg(long)]
    pub json: bool,
    /// Critique with the rules only, without a model.
    #[arg(long)]
    pub no_model: bool,
    /// Do not save the critique (by default it is saved as a session, for `upward sessions`
    /// and `upward progress`).
    #[arg(long)]
    pub no_save: bool,
    /// The draft: a UTF-8 text file, or `-` for stdin (default: stdin; paste and press
    /// Ctrl-D when it is a terminal).
    pub file: Option<PathBuf>,
}

/// Runs `upward critique`.
pub fn run(args: CritiqueArgs, g: &Global) -> anyhow::Result<()> {
    let draft = read_draft(args.file.as_deref(), g)?;
    // Messages follow --lang, else the draft's language.
    let lang = g.lang.unwrap_or_else(|| Lang::detect(&draft));
    let kb = KnowledgeBase::load_default().context("loading the knowledge base")?;
    // With a model the critique adds constrained per-criterion judgements, a comment and a
    // rewrite. A model named with --model is fetched if needed; otherwise one is used only
    // when it is already on disk, so the rule-based critique stays instant and offline.
    let engine = if args.no_model {
        None
    } else {
        match super::load_engine_with(g, 4096, !args.json, g.model.is_some()) {
            Ok((engine, name)) => Some((engine, name)),
            Err(e) if g.model.is_some() => return Err(e),
            Err(_) => {
                eprintln!(
                    "{}",
                    lang.pick(
                        "提示：本机没有模型，以下为规则检查结果（`upward models pull` 后可获得点评与改写）。",
                        "note: no model on disk; showing the rule-based check (`upward models pull` adds a comment and a rewrite)."
                    )
                );
                None
            }
        }
    };
    let model_name = engine.as_ref().map(|(_, name)| name.clone());
    let result = match engine {
        Some((mut engine, _)) => {
            let mut model = critique::with_engine::EngineModel(&mut engine);
            critique::critique_with_model(&draft, args.kind, g.lang, &kb, &mut model)
        }
        None => critique::critique(&draft, args.kind, g.lang, &kb),
    };
    let c = result.map_err(|e: CritiqueError| anyhow::anyhow!(e.message(lang)))?;
    let saved = (!args.no_save).then(|| {
        Store::open(g.data_dir.as_deref())
            .and_then(|s| save_critique(&s, &draft, &c, model_name.as_deref()))
    });
    if let Some(Err(e)) = &saved {
        eprintln!("upward: {e} (this critique is not saved)");
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&c)?);
    } else {
        let width = terminal_width();
        // The draft's text (quoted as evidence) and the model's are shown, never obeyed.
        let shown = upward::term::visible_copy(&c);
        print!("{}", render::render(&shown, &Painter::for_stdout(), width));
        if c.comment.is_none() {
            let note = c.lang.pick(
                "（规则检查，未使用模型；改写建议需要模型。）",
                "(Rule-based check without a model; a rewrite needs a model.)",
            );
            println!("\n{}", Painter::for_stdout().paint(note, upward::render::Style::Dim));
        }
        if let Some(Ok(id)) = saved {
            let note = match c.lang {
                Lang::Zh => format!("已保存为会话 {id}（upward sessions show {id}）。"),
                Lang::En => format!("Saved as session {id} (upward sessions show {id})."),
            };
            println!("{}", Painter::for_stdout().paint(&note, upward::render::Style::Dim));
        }
    }
    Ok(())
}

/// Reads the draft from a file, `-`, or stdin (with a hint when stdin is a terminal).
fn read_draft(file: Option<&std::path::Path>, g: &Global) -> anyhow::Result<String> {
    match file {
        Some(p) => Ok(upward::text::read_user_text(p)?),
        None => {
            let stdin = std::io::stdin();
            if stdin.is_terminal() {
                let hint = g.lang().pick(
                    "粘贴你的草稿（求助或感谢），可以多行；结束后按 Ctrl-D：",
                    "Paste your draft (help request or thank-you note), several lines are fine; press Ctrl-D when done:",
                );
                eprintln!("{hint}");
            }
            let mut bytes = Vec::new();
            stdin.lock().read_to_end(&mut bytes).context("reading the draft from stdin")?;
            Ok(upward::text::decode_user_text(&bytes, "-")?)
        }
    }
}

fn terminal_width() -> usize {
    std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()).unwrap_or(80)
}
