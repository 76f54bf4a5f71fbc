//! `upward roleplay` and the coach REPL (`upward` with no subcommand).

use super::{cancel_flag, load_engine, Global, SamplingArgs};
use anyhow::Context;
use std::path::PathBuf;
use upward::kb::KnowledgeBase;
use upward::lang::Lang;
use upward::repl::coach::Coach;
use upward::roleplay::{self, load_personas, Roleplay};
use upward::store::{NewSession, SessionKind, Store};

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
    #[command(flatten)]
    pub sampling: SamplingArgs,
}

fn knowledge() -> anyhow::Result<KnowledgeBase> {
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
    let mut coach = open_coach(g, &args.sampling, kb, personas)?;
    coach.start_roleplay(&scenario, args.persona.as_deref())?;
    coach.run()
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
    let (mut engine, model) = load_engine(g, args.sampling.ctx, !args.json)?;
    let mut rp = Roleplay::new(&kb, personas, scenario, args.persona.as_deref(), lang)?;
    let (store, warning) = Store::open_or_warn(g.data_dir.as_deref());
    if let Some(w) = warning {
        eprintln!("upward: {w}");
    }
    let session = store.as_ref().and_then(|s| {
        let mut n = NewSession::new(SessionKind::Roleplay, lang);
        n.scenario = Some(rp.scenario.id.clone());
        n.persona = Some(rp.persona.id.clone());
        n.model = Some(model.clone());
        n.title = Some(rp.scenario.title.get(lang).to_string());
        s.create_session(&n).ok()
    });
    let opts = args.sampling.options();
    let cancel = cancel_flag();
    let mut out_turns = Vec::new();
    for t in &turns {
        if !args.json {
            println!("> {t}");
            print!("{}: ", rp.persona.name.get(lang));
        }
        let (turn, reply) = rp
            .take_turn(&mut engine, t, &opts, cancel, &mut |piece| {
                if !args.json {
                    print!("{piece}");
                    let _ = std::io::Write::flush(&mut std::io::stdout());
                }
            })
            .map_err(super::ctx_advice)?;
        let turn = turn.clone();
        let trimmed = rp.context_trimmed();
        if trimmed && !args.json {
            println!(
                "\n{}",
                lang.pick(
                    "（对话超出了上下文：最早的几轮已不再发给领导。）",
                    "(The conversation outgrew the context: the oldest turns are no longer shown to the boss.)"
                )
            );
        }
        if !args.json {
            println!("\n[coach] {}/100 · trust {}", turn.score.score, turn.trust);
        }
        if let (Some(s), Some(id)) = (store.as_ref(), session) {
            if let Err(e) = roleplay::record::save_turn(s, id, &turn, &reply) {
                eprintln!("upward: could not save a turn: {e}");
            }
        }
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
            "stop": reply.stop,
            "dropped_messages": reply.dropped_messages,
            "context_trimmed": trimmed,
        }));
    }
    let debrief = roleplay::debrief(&rp, &kb, Some(&mut engine));
    if let (Some(s), Some(id)) = (store.as_ref(), session) {
        let _ = s.end_session(id, serde_json::to_value(&debrief).ok().as_ref());
    }
    if args.json {
        let v = serde_json::json!({
            "scenario": rp.scenario.id,
            "persona": rp.persona.id,
            "model": model,
            "session": session,
            "turns": out_turns,
            "debrief": debrief,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print!("{}", upward::repl::coach::render_debrief(&rp, &debrief));
    }
    Ok(())
}

/// Loads everything the coach REPL needs.
pub fn open_coach(
    g: &Global,
    sampling: &SamplingArgs,
    kb: KnowledgeBase,
    personas: Vec<roleplay::Persona>,
) -> anyhow::Result<Coach> {
    let (store, warning) = Store::open_or_warn(g.data_dir.as_deref());
    if let Some(w) = warning {
        eprintln!("upward: {w}");
    }
    let (engine, name) = load_engine(g, sampling.ctx, true)?;
    Ok(Coach::new(engine, name, kb, personas, g.lang(), sampling.options(), store, cancel_flag()))
}

/// Opens the coach REPL (`upward` with no subcommand).
pub fn run_repl(g: &Global) -> anyhow::Result<()> {
    let kb = knowledge()?;
    let personas = load_personas()?;
    let sampling = SamplingArgs::defaults();
    let mut coach = open_coach(g, &sampling, kb, personas)?;
    coach.run()
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
