//! `upward roleplay` and the coach REPL (`upward` with no subcommand).

use super::coach::model_speaks;
use super::{load_model, Global, SamplingArgs};
use anyhow::Context;
use std::path::PathBuf;
use upward::backend::ChatBackend;
use upward::coach::roleplay::{RoleplayRun, Start};
use upward::coach::{Event, Notice};
use upward::kb::KnowledgeBase;
use upward::lang::Lang;
use upward::roleplay::authored::{self, BossChoice, Why};
use upward::roleplay::{self, load_personas, Roleplay};
use upward::store::Store;
use upward::term::visible;

/// Arguments of `upward roleplay`.
#[derive(Debug, clap::Args)]
pub struct RoleplayArgs {
    /// Scenario id (see --list).
    #[arg(long)]
    pub scenario: Option<String>,
    /// Boss persona id (default: the scenario's).
    #[arg(long)]
    pub persona: Option<String>,
    /// List scenarios and personas.
    #[arg(long)]
    pub list: bool,
    /// Machine-readable output (with --list or --script).
    #[arg(long)]
    pub json: bool,
    /// Play non-interactively: one user turn per line (or blocks separated by blank
    /// lines) from FILE (`-` for stdin); prints the turns and the debrief.
    #[arg(long, value_name = "FILE")]
    pub script: Option<PathBuf>,
    /// Who plays the boss: the model unless it cannot speak the language (auto), the
    /// model always, or authored lines from the knowledge files (no model needed).
    #[arg(long, value_enum, default_value_t = BossChoice::Auto)]
    pub boss: BossChoice,
    #[command(flatten)]
    pub sampling: SamplingArgs,
}

/// The built-in knowledge base, or an error that says how to check it.
pub fn knowledge() -> anyhow::Result<KnowledgeBase> {
    KnowledgeBase::load_default().context("the knowledge base is broken (run `upward kb check`)")
}

/// Runs `upward roleplay`.
pub fn run(args: RoleplayArgs, g: &Global) -> anyhow::Result<()> {
    let lang = g.lang();
    let kb = knowledge()?;
    let personas = load_personas()?;
    if args.list {
        return list(&kb, &personas, lang, args.json);
    }
    let scenario = args
        .scenario
        .clone()
        .ok_or_else(|| anyhow::anyhow!("pass --scenario ID (see `upward roleplay --list`)"))?;
    // Fail on a bad scenario or persona before loading a model.
    Roleplay::new(&kb, &personas, &scenario, args.persona.as_deref(), lang)?;
    if let Some(script) = &args.script {
        return run_script(&args, g, kb, &personas, &scenario, script);
    }
    super::coach::run_roleplay(
        g,
        &args.sampling,
        (kb, personas),
        args.boss,
        &scenario,
        args.persona.as_deref(),
    )
}

fn list(
    kb: &KnowledgeBase,
    personas: &[roleplay::Persona],
    lang: Lang,
    json: bool,
) -> anyhow::Result<()> {
    if json {
        let v = serde_json::json!({
            "scenarios": kb.scenarios().iter().map(|s| serde_json::json!({
                "id": s.id, "title": s.title.get(lang), "summary": s.situation.get(lang), "rubric": s.rubric,
            })).collect::<Vec<_>>(),
            "personas": personas.iter().map(|p| serde_json::json!({
                "id": p.id, "title": format!("{} · {}", p.name.get(lang), p.title.get(lang)), "summary": p.voice.get(lang),
            })).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!("{}", lang.pick("场景：", "Scenarios:"));
    for s in kb.scenarios() {
        println!("  {:<20} {}", s.id, s.title.get(lang));
    }
    println!("{}", lang.pick("领导角色：", "Personas:"));
    for p in personas {
        println!("  {:<20} {} · {}", p.id, p.name.get(lang), p.title.get(lang));
    }
    Ok(())
}

/// Splits a script into user turns: blocks separated by blank lines when the file has
/// any, otherwise one turn per non-empty line.
pub fn script_turns(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    let first = lines.iter().position(|l| !l.trim().is_empty());
    let last = lines.iter().rposition(|l| !l.trim().is_empty());
    let body = match (first, last) {
        (Some(a), Some(b)) => &lines[a..=b],
        _ => return Vec::new(),
    };
    if body.iter().any(|l| l.trim().is_empty()) {
        body.split(|l| l.trim().is_empty())
            .filter(|b| !b.is_empty())
            .map(|b| b.iter().map(|l| l.trim()).collect::<Vec<_>>().join("\n"))
            .collect()
    } else {
        body.iter().map(|l| l.trim().to_string()).collect()
    }
}

fn run_script(
    args: &RoleplayArgs,
    g: &Global,
    kb: KnowledgeBase,
    personas: &[roleplay::Persona],
    scenario: &str,
    script: &std::path::Path,
) -> anyhow::Result<()> {
    let lang = g.lang();
    let text = upward::text::read_user_text(script)?;
    let turns = script_turns(&text);
    if turns.is_empty() {
        anyhow::bail!("{} has no turns", script.display());
    }
    // One-shot: SIGINT and SIGTERM stop the run (see `signals`).
    let cancel = super::signals::one_shot();
    // The model, unless the authored boss plays (asked for, the model cannot speak the
    // language, or no model can be had).
    let (mut model, name, why) = match args.boss {
        BossChoice::Authored => (None, None, Some(Why::Forced)),
        choice => match load_model(g, args.sampling.ctx, !args.json) {
            Ok((mut model, name)) => {
                let speaks = model_speaks(g, &name, model.as_mut());
                let why = authored::decide(choice, &name, speaks.as_deref(), lang);
                (Some(model), Some(name), why)
            }
            // Only the default model (and its fallbacks) failing means "no model at all";
            // a model the user named that fails to load is an error.
            Err(e) if choice == BossChoice::Auto && g.model.is_none() => {
                (None, None, Some(Why::NoModel { reason: format!("{e:#}") }))
            }
            Err(e) => return Err(e),
        },
    };
    super::signals::check()?;
    let notice = why.as_ref().map(|w| authored::notice(w, lang));
    let (store, warning) = Store::open_or_warn(g.data_dir.as_deref());
    let json = args.json;
    // What the service streams, as the script's text output (stderr for notices).
    let mut show = |e: Event| {
        match e {
        Event::Text(piece) if !json => {
            print!("{}", visible(&piece));
            let _ = std::io::Write::flush(&mut std::io::stdout());
        }
        Event::Notice(Notice::ContextTrimmed { .. }) if !json => println!(
            "\n{}",
            lang.pick(
                "（对话超出了上下文：最早的几轮已不再发给领导。）",
                "(The conversation outgrew the context: the oldest turns are no longer shown to the boss.)"
            )
        ),
        Event::TurnScored { interrupted: true, .. } if !json => {
            println!("\n{}", lang.pick("（已中断）", "(interrupted)"))
        }
        Event::TurnScored { score, trust, .. } if !json => {
            println!("\n[coach] {score}/100 · trust {trust}")
        }
        Event::Notice(n @ (Notice::BossAuthored(_) | Notice::NotSaved { .. })) => {
            eprintln!("upward: {}", visible(&n.message(lang)))
        }
        _ => {}
    }
    };
    let start = Start { scenario, persona: args.persona.as_deref(), lang, model: name.as_deref() };
    let mut run =
        RoleplayRun::start(&kb, personas, &start, store.as_ref(), why.clone(), &mut show)?;
    if let Some(w) = warning {
        eprintln!("upward: {w}");
        run.not_saving(w);
    }
    let opts = args.sampling.options();
    let mut out_turns = Vec::new();
    let mut stopped = None;
    for t in &turns {
        if let Some(i) = super::signals::caught() {
            stopped = Some(i);
            break;
        }
        if !args.json {
            println!("> {}", visible(t));
            print!("{}: ", run.roleplay().persona.name.get(lang));
        }
        let done = run
            .turn(&kb, boss_model(&mut model), store.as_ref(), t, &opts, cancel, &mut show)
            .map_err(super::ctx_advice)?;
        let (turn, reply) = (&done.turn, &done.reply);
        out_turns.push(serde_json::json!({
            "user": turn.user,
            "boss": turn.boss,
            "scores": turn.score.statuses,
            "score": turn.score.score,
            "trust": turn.trust,
            "prompt_tokens": reply.prompt_tokens,
            "prefilled_tokens": reply.prefilled_tokens,
            "reused_tokens": reply.reused_tokens,
            "generated_tokens": reply.generated_tokens,
            "interrupted": turn.interrupted,
            "stop": reply.stop,
            "dropped_messages": reply.dropped_messages,
            "context_trimmed": done.context_trimmed,
        }));
        if turn.interrupted {
            stopped = super::signals::caught();
            break;
        }
    }
    // Stopped by a signal: no debrief, and the session stays open (resumable). A model that
    // cannot speak the language would spoil the better version too.
    let debrief = match stopped {
        None => Some(run.end(&kb, boss_model(&mut model), store.as_ref(), &mut show)),
        Some(_) => None,
    };
    if args.json {
        let v = serde_json::json!({
            "scenario": run.roleplay().scenario.id,
            "persona": run.roleplay().persona.id,
            "model": name,
            "boss": if why.is_none() { "model" } else { "authored" },
            "notice": notice,
            "session": run.session(),
            "saved": run.saved(),
            "save_error": run.save_error(),
            "interrupted": stopped.is_some(),
            "turns": out_turns,
            "debrief": debrief,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        if let Some(d) = &debrief {
            print!("{}", visible(&upward::render::roleplay::debrief(run.roleplay(), d)));
        }
        println!("{}", save_summary(&run, lang));
    }
    // A signal during the debrief still ends the run as interrupted.
    match stopped.or_else(super::signals::caught) {
        Some(i) => Err(i.into()),
        None => Ok(()),
    }
}

/// The loaded model, if any, borrowed for one call.
fn boss_model(model: &mut Option<super::Model>) -> Option<&mut dyn ChatBackend> {
    match model {
        Some(m) => Some(m.as_mut()),
        None => None,
    }
}

/// One line for the end of a scripted role-play's text output: where it was saved.
fn save_summary(run: &RoleplayRun, lang: Lang) -> String {
    match (run.save_error(), run.session()) {
        (None, Some(id)) => match lang {
            Lang::Zh => format!("已保存为会话 {id}（upward sessions show {id}）"),
            Lang::En => format!("Saved as session {id} (upward sessions show {id})"),
        },
        (None, None) => lang.pick("没有可保存的内容。", "Nothing to save.").to_string(),
        (Some(e), _) => match lang {
            Lang::Zh => format!("注意：本次角色扮演没有完整保存：{}", visible(e)),
            Lang::En => format!("Note: this role-play was not fully saved: {}", visible(e)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::script_turns;

    #[test]
    fn script_lines_and_blocks() {
        assert_eq!(script_turns("a\nb\n\n"), vec!["a", "b"]);
        assert_eq!(
            script_turns("line one\nline two\n\nsecond turn\n"),
            vec!["line one\nline two", "second turn"]
        );
        assert_eq!(script_turns("a\n\nb\n"), vec!["a", "b"]);
    }
}
