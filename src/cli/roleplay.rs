//! `upward roleplay` and the coach REPL (`upward` with no subcommand).

use super::{cancel_flag, load_engine, Global, SamplingArgs};
use anyhow::Context;
use std::path::PathBuf;
use upward::kb::KnowledgeBase;
use upward::lang::Lang;
use upward::repl::coach::Coach;
use upward::roleplay::authored::{self, BossChoice, Why};
use upward::roleplay::{self, load_personas, Roleplay};
use upward::store::{NewSession, SessionKind, Store};
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
    coach.boss = args.boss;
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
    // One-shot: SIGINT and SIGTERM stop the run (see `signals`).
    let cancel = super::signals::one_shot();
    // The model, unless the authored boss plays (asked for, the model cannot speak the
    // language, or no model can be had).
    let (mut engine, model, why) = match args.boss {
        BossChoice::Authored => (None, None, Some(Why::Forced)),
        choice => match super::load_resolved(g, args.sampling.ctx, !args.json, true) {
            Ok((mut engine, name, _, _)) => {
                let file = engine.engine().map(|e| e.file().clone());
                let speaks = model_speaks(g, &name, file.as_ref());
                let why = authored::decide(choice, &name, speaks.as_deref(), lang);
                (Some(engine), Some(name), why)
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
    if let Some(n) = &notice {
        eprintln!("upward: {n}");
    }
    let mut model_boss = if why.is_none() { engine.as_mut() } else { None };
    let mut rp = Roleplay::new(&kb, personas, scenario, args.persona.as_deref(), lang)?;
    let mut n = NewSession::new(SessionKind::Roleplay, lang);
    n.scenario = Some(rp.scenario.id.clone());
    n.persona = Some(rp.persona.id.clone());
    n.model = model.clone();
    n.title = Some(rp.scenario.title.get(lang).to_string());
    let mut saver = ScriptSaver::open(g, n);
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
            print!("{}: ", rp.persona.name.get(lang));
        }
        let (turn, reply) = match model_boss {
            Some(ref mut engine) => rp
                .take_turn(engine.as_mut(), t, &opts, cancel, &mut |piece| {
                    if !args.json {
                        print!("{}", visible(piece));
                        let _ = std::io::Write::flush(&mut std::io::stdout());
                    }
                })
                .map_err(super::ctx_advice)?,
            None => {
                let turn = rp.take_authored_turn(kb.boss_lines(), t)?;
                if !args.json {
                    print!("{}", visible(&turn.boss));
                }
                let reply = authored::no_model_reply(&turn.boss);
                (turn, reply)
            }
        };
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
            if turn.interrupted {
                println!("\n{}", lang.pick("（已中断）", "(interrupted)"));
            } else {
                println!("\n[coach] {}/100 · trust {}", turn.score.score, turn.trust);
            }
        }
        saver.save_turn(&turn, &reply);
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
            "context_trimmed": trimmed,
        }));
        if turn.interrupted {
            stopped = super::signals::caught();
            break;
        }
    }
    // Stopped by a signal: no debrief, and the session stays open (resumable). A model that
    // cannot speak the language would spoil the better version too.
    let debrief = match stopped {
        None => {
            // The debrief's model rewrite needs our engine (until the service layer).
            let d = roleplay::debrief(&rp, &kb, model_boss.and_then(|b| b.engine()));
            saver.end(&d);
            Some(d)
        }
        Some(_) => None,
    };
    if args.json {
        let v = serde_json::json!({
            "scenario": rp.scenario.id,
            "persona": rp.persona.id,
            "model": model,
            "boss": if why.is_none() { "model" } else { "authored" },
            "notice": notice,
            "session": saver.id,
            "saved": saver.saved(),
            "save_error": saver.error,
            "interrupted": stopped.is_some(),
            "turns": out_turns,
            "debrief": debrief,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        if let Some(d) = &debrief {
            print!("{}", visible(&upward::repl::coach::render_debrief(&rp, d)));
        }
        println!("{}", saver.summary(lang));
    }
    // A signal during the debrief still ends the run as interrupted.
    match stopped.or_else(super::signals::caught) {
        Some(i) => Err(i.into()),
        None => Ok(()),
    }
}

/// Saves a scripted role-play. The session is created with its first turn, so a run that
/// fails before any turn leaves nothing behind; the first failure is kept (and told at
/// once on stderr) so the output can say the session was not saved.
struct ScriptSaver {
    store: Option<Store>,
    new: NewSession,
    id: Option<i64>,
    error: Option<String>,
}

impl ScriptSaver {
    fn open(g: &Global, new: NewSession) -> ScriptSaver {
        let (store, warning) = Store::open_or_warn(g.data_dir.as_deref());
        if let Some(w) = &warning {
            eprintln!("upward: {w}");
        }
        ScriptSaver { store, new, id: None, error: warning }
    }

    fn fail(&mut self, e: impl std::fmt::Display) {
        let msg = e.to_string();
        eprintln!("upward: this role-play is not fully saved: {msg}");
        self.error.get_or_insert(msg);
    }

    fn save_turn(&mut self, turn: &roleplay::Turn, reply: &upward::engine::Reply) {
        let Some(store) = self.store.as_ref() else { return };
        if self.error.is_some() {
            return;
        }
        let id = match self.id {
            Some(id) => id,
            None => match store.create_session(&self.new) {
                Ok(id) => *self.id.insert(id),
                Err(e) => return self.fail(e),
            },
        };
        if let Err(e) = roleplay::record::save_turn(store, id, turn, reply) {
            self.fail(e);
        }
    }

    fn end(&mut self, debrief: &roleplay::Debrief) {
        let (Some(store), Some(id)) = (self.store.as_ref(), self.id) else { return };
        let value = match serde_json::to_value(debrief) {
            Ok(v) => v,
            Err(e) => return self.fail(e),
        };
        if let Err(e) = store.end_session(id, Some(&value)) {
            self.fail(e);
        }
    }

    /// Everything was saved.
    fn saved(&self) -> bool {
        self.id.is_some() && self.error.is_none()
    }

    /// One line for the end of the text output.
    fn summary(&self, lang: Lang) -> String {
        match (&self.error, self.id) {
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
    let speaks = model_speaks(g, &name, Some(engine.file()));
    let mut coach =
        Coach::new(engine, name, kb, personas, g.lang(), sampling.options(), store, cancel_flag());
    coach.speaks = speaks;
    Ok(coach)
}

/// The languages the loaded model speaks: its catalogue entry's, else its GGUF file's,
/// else unknown (then the user is trusted to have picked a model for their language).
fn model_speaks(
    g: &Global,
    name: &str,
    file: Option<&upward::gguf::GgufFile>,
) -> Option<Vec<String>> {
    let cat = upward::catalogue::Catalogue::load_default(g.models_file.as_deref()).ok();
    let listed = cat.as_ref().and_then(|c| c.entry(name)).map(|e| e.languages.clone());
    // A remote entry that lists no languages leaves the choice to the user.
    let listed = listed.filter(|l| !l.is_empty());
    authored::model_languages(listed.as_deref(), file)
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
