//! `upward chat`: talk to the model directly, as a REPL or one-shot.

use super::{load_model, Global, SamplingArgs};
use std::io::{IsTerminal, Read, Write};
use std::sync::atomic::Ordering;
use upward::backend::ChatBackend;
use upward::coach::ask::{self, Chat};
use upward::coach::{Event, Notice};
use upward::engine::{GenerateOptions, Reply};
use upward::lang::Lang;
use upward::repl::{LineEditor, ReadLine};
use upward::store::Store;
use upward::term::visible;

/// Arguments of `upward chat`.
#[derive(Debug, clap::Args)]
pub struct ChatArgs {
    /// Ask one question and exit (otherwise a REPL opens, or stdin is read when piped).
    #[arg(long, short)]
    pub prompt: Option<String>,
    /// A system prompt (default: a neutral "concise, helpful assistant").
    #[arg(long)]
    pub system: Option<String>,
    /// Print one JSON object with the answer, token counts and timings.
    #[arg(long)]
    pub json: bool,
    /// Do not save the conversation (by default it is saved as a session, for
    /// `upward sessions`).
    #[arg(long)]
    pub no_save: bool,
    /// Answer as the coach: grounded in the talk's principles, which are cited after the
    /// answer (`sources` in JSON: id, title, verbatim quote). One question only.
    #[arg(long, conflicts_with = "system")]
    pub coach: bool,
    #[command(flatten)]
    pub sampling: SamplingArgs,
}

/// Runs `upward chat`.
pub fn run(args: ChatArgs, g: &Global) -> anyhow::Result<()> {
    let one_shot = match &args.prompt {
        Some(p) => Some(p.clone()),
        None if !std::io::stdin().is_terminal() => {
            let mut buf = Vec::new();
            std::io::stdin().read_to_end(&mut buf)?;
            Some(upward::text::decode_user_text(&buf, "stdin")?)
        }
        None => None,
    };
    if let Some(p) = &one_shot {
        if p.trim().is_empty() {
            anyhow::bail!("the prompt is empty: pass --prompt TEXT or pipe text on stdin");
        }
    }
    if args.coach && one_shot.is_none() {
        anyhow::bail!(
            "--coach answers one question: pass --prompt TEXT or pipe it on stdin (run `upward` to talk with the coach)"
        );
    }
    let (mut model, name) = load_model(g, args.sampling.ctx, !args.json)?;
    let opts = args.sampling.options();
    let store = if args.no_save { None } else { open_store(g) };
    if let (true, Some(question)) = (args.coach, &one_shot) {
        coach_answer(model.as_mut(), &name, question, &opts, args.json, g, store.as_ref())?;
        super::signals::check()?;
        return Ok(());
    }
    let system = args.system.as_deref().unwrap_or(upward::prompts::DEFAULT_SYSTEM_PROMPT);
    match one_shot {
        Some(prompt) => {
            let lang = g.lang.unwrap_or_else(|| Lang::detect(&prompt));
            let mut chat = Chat::new(system, lang, &name);
            // One-shot: SIGINT and SIGTERM stop the run (exit 130 or 143; see below).
            let cancel = super::signals::one_shot();
            super::signals::check()?;
            let json = args.json;
            let mut show = |e: Event| print_event(e, lang, json);
            let reply = chat
                .send(model.as_mut(), store.as_ref(), &prompt, &opts, cancel, &mut show)
                .map_err(super::ctx_advice)?;
            chat.finish(store.as_ref(), &mut show);
            if json {
                let v = reply_json(&name, model.as_mut(), &reply);
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!();
            }
            // Stopped by a signal: the partial answer is saved (marked), then exit 130/143.
            super::signals::check()?;
            incomplete(model.as_ref())
        }
        None => chat_repl(model.as_mut(), &name, system, &opts, g, store.as_ref()),
    }
}

/// The session store, or `None` with a notice on stderr when it cannot be opened.
fn open_store(g: &Global) -> Option<Store> {
    let (store, warning) = Store::open_or_warn(g.data_dir.as_deref());
    if let Some(w) = warning {
        eprintln!("upward: {w}");
    }
    store
}

/// A reply the backend cut short (a server that closed mid-stream) is an error after it
/// was shown and saved (marked as interrupted).
fn incomplete(backend: &dyn ChatBackend) -> anyhow::Result<()> {
    match backend.incomplete() {
        Some(why) => anyhow::bail!("{why}: the reply above is incomplete"),
        None => Ok(()),
    }
}

/// Prints what the service streams: the answer (unless `json`) and notices about saving
/// on stderr. The chat REPL prints the other notices itself.
fn print_event(e: Event, lang: Lang, json: bool) {
    match e {
        Event::Text(t) if !json => {
            let mut out = std::io::stdout();
            let _ = out.write_all(visible(&t).as_bytes());
            let _ = out.flush();
        }
        Event::Notice(n @ Notice::NotSaved { .. }) => {
            eprintln!("upward: {}", visible(&n.message(lang)))
        }
        _ => {}
    }
}

/// `chat --coach`: one question answered by the coach, with its sources, saved as a chat.
fn coach_answer(
    model: &mut dyn ChatBackend,
    name: &str,
    question: &str,
    opts: &GenerateOptions,
    json: bool,
    g: &Global,
    store: Option<&Store>,
) -> anyhow::Result<()> {
    use anyhow::Context;
    let lang = g.lang.unwrap_or_else(|| Lang::detect(question));
    let kb = upward::kb::KnowledgeBase::load_default().context("loading the knowledge base")?;
    let cancel = super::signals::one_shot();
    let mut show = |e: Event| print_event(e, lang, json);
    let answer = ask::ask_coach(model, &kb, question, lang, opts, cancel, &mut show)
        .map_err(super::ctx_advice)?;
    if json {
        let mut v = reply_json(name, model, &answer.reply);
        v["sources"] = serde_json::to_value(&answer.sources)?;
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!();
        print!("{}", visible(&upward::kb::cite::render_sources(&answer.sources, lang)));
    }
    if let Some(store) = store {
        ask::save_one_shot(store, lang, name, question, &answer.reply, &mut show);
    }
    Ok(())
}

/// The machine-readable form of a reply.
pub fn reply_json(model: &str, backend: &mut dyn ChatBackend, r: &Reply) -> serde_json::Value {
    let tok_s = |n: usize, s: f64| if s > 0.0 { n as f64 / s } else { 0.0 };
    let load_s = backend.engine().map_or(0.0, |e| e.load_time().as_secs_f64());
    let mut v = serde_json::json!({
        "model": model,
        "answer": r.text,
        "stop": r.stop,
        "prompt_tokens": r.prompt_tokens,
        "reused_tokens": r.reused_tokens,
        "prefilled_tokens": r.prefilled_tokens,
        "generated_tokens": r.generated_tokens,
        "dropped_messages": r.dropped_messages,
        "load_s": load_s,
        "prefill_s": r.prefill_secs,
        "decode_s": r.decode_secs,
        "prefill_tok_s": tok_s(r.prefilled_tokens, r.prefill_secs),
        "decode_tok_s": tok_s(r.generated_tokens, r.decode_secs),
    });
    if let Some(why) = backend.incomplete() {
        v["incomplete"] = why.into();
    }
    v
}

const CHAT_COMMANDS: &[&str] = &["/help", "/model", "/clear", "/exit"];

fn chat_repl(
    model: &mut dyn ChatBackend,
    name: &str,
    system: &str,
    opts: &GenerateOptions,
    g: &Global,
    store: Option<&Store>,
) -> anyhow::Result<()> {
    let lang = g.lang();
    let mut chat = Chat::new(system, lang, name);
    let mut editor = LineEditor::new_in(
        "chat",
        CHAT_COMMANDS.iter().map(|s| s.to_string()).collect(),
        g.data_dir.as_deref(),
    )?;
    println!(
        "{}",
        lang.pick(
            &format!("模型 {name} 已就绪。输入消息回车发送；以 \\ 结尾续行；/help 查看命令。"),
            &format!("Model {name} ready. Type a message and press Enter; end a line with \\ to continue; /help for commands."),
        )
    );
    loop {
        let line = match editor.read("> ")? {
            ReadLine::Line(l) => l,
            ReadLine::Interrupted => continue,
            ReadLine::Eof => break,
        };
        let input = line.trim();
        if input.is_empty() {
            continue;
        }
        match input {
            "/exit" | "/quit" => break,
            "/help" => {
                println!("/model  /clear  /exit  (Ctrl-C stops an answer, Ctrl-D exits)");
                continue;
            }
            "/model" => {
                let (ctx, cached) = (model.context_size(), model.cached_tokens());
                match model.engine() {
                    Some(engine) => {
                        let c = engine.config();
                        println!(
                            "{name}: {} · {} layers · context {ctx} · {cached} cached tokens",
                            c.arch.name(),
                            c.n_layers,
                        );
                    }
                    None => println!("{name}: {} · context {ctx}", model.info().kind),
                }
                continue;
            }
            "/clear" => {
                chat.clear(model);
                println!("{}", lang.pick("对话已清空。", "Conversation cleared."));
                continue;
            }
            _ if input.starts_with('/') => {
                println!("{}", lang.pick("未知命令；输入 /help。", "Unknown command; try /help."));
                continue;
            }
            _ => {}
        }
        let cancel = super::cancel_flag();
        cancel.store(false, Ordering::SeqCst);
        let mut notices = Vec::new();
        let sent = chat.send(model, store, input, opts, cancel, &mut |e| match e {
            Event::Notice(n) => notices.push(n),
            e => print_event(e, lang, false),
        });
        match sent {
            Ok(_) => {
                println!();
                for n in notices {
                    match n {
                        Notice::ContextTrimmed { dropped, .. } => println!(
                            "{}",
                            lang.pick(
                                &format!("（上下文已满：最早的 {dropped} 条消息不再计入。）"),
                                &format!(
                                    "(Context full: the oldest {dropped} messages were left out.)"
                                ),
                            )
                        ),
                        Notice::Interrupted => {
                            println!("{}", lang.pick("（已中断）", "(interrupted)"))
                        }
                        n => eprintln!("upward: {}", visible(&n.message(lang))),
                    }
                }
            }
            Err(e) => {
                let e = super::ctx_advice(e);
                eprintln!("upward: {}", upward::term::error_text(e.as_ref()));
            }
        }
    }
    Ok(())
}
