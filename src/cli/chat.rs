//! `upward chat`: talk to the model directly, as a REPL or one-shot.

use super::{Global, SamplingArgs};
use std::io::{IsTerminal, Read, Write};
use std::sync::atomic::Ordering;
use upward::backend::{ChatBackend, ChatRequest};
use upward::coach::save;
use upward::engine::{GenerateOptions, Reply};
use upward::gguf::chat_template::ChatMessage;
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
    let (mut backend, name, _, load_s) =
        super::load_resolved(g, args.sampling.ctx, !args.json, true)?;
    let engine = backend.as_mut();
    let opts = args.sampling.options();
    let store = if args.no_save { None } else { open_store(g) };
    if let (true, Some(question)) = (args.coach, &one_shot) {
        let reply = coach_answer(engine, (&name, load_s), question, &opts, args.json, g)?;
        save_one_shot(store.as_ref(), g, &name, question, &reply);
        super::signals::check()?;
        return Ok(());
    }
    let system = args.system.as_deref().unwrap_or(upward::engine::DEFAULT_SYSTEM_PROMPT);
    let mut messages = vec![ChatMessage::new("system", system)];
    match one_shot {
        Some(prompt) => {
            messages.push(ChatMessage::new("user", &prompt));
            let reply = one_shot_answer(engine, (&name, load_s), &messages, &opts, args.json)?;
            save_one_shot(store.as_ref(), g, &name, &prompt, &reply);
            // Stopped by a signal: the partial answer is saved (marked), then exit 130/143.
            super::signals::check()?;
            incomplete(engine)
        }
        None => chat_repl(engine, &name, messages, &opts, g, store.as_ref()),
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

fn one_shot_answer(
    engine: &mut dyn ChatBackend,
    name: (&str, f64),
    messages: &[ChatMessage],
    opts: &GenerateOptions,
    json: bool,
) -> anyhow::Result<Reply> {
    // One-shot: SIGINT and SIGTERM stop the run (exit 130 or 143; see the caller).
    let cancel = super::signals::one_shot();
    super::signals::check()?;
    let mut out = std::io::stdout();
    let reply = engine
        .chat(&ChatRequest::new(messages, opts.clone()), cancel, &mut |t| {
            if !json {
                let _ = out.write_all(visible(t).as_bytes());
                let _ = out.flush();
            }
        })
        .map_err(super::ctx_advice)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&reply_json(name, engine, &reply))?);
    } else {
        println!();
    }
    Ok(reply)
}

/// Saves a one-shot question and its answer as a chat session; a failure is a notice.
fn save_one_shot(store: Option<&Store>, g: &Global, name: &str, prompt: &str, reply: &Reply) {
    if let Some(store) = store {
        let lang = g.lang.unwrap_or_else(|| upward::lang::Lang::detect(prompt));
        if let Err(e) = save::save_chat(store, lang, name, prompt, reply) {
            eprintln!("upward: {e} (this chat is not saved)");
        }
    }
}

/// `chat --coach`: one question answered by the coach, with its sources.
fn coach_answer(
    engine: &mut dyn ChatBackend,
    name: (&str, f64),
    question: &str,
    opts: &GenerateOptions,
    json: bool,
    g: &Global,
) -> anyhow::Result<Reply> {
    use anyhow::Context;
    let lang = g.lang.unwrap_or_else(|| upward::lang::Lang::detect(question));
    let kb = upward::kb::KnowledgeBase::load_default().context("loading the knowledge base")?;
    let prompt = upward::kb::cite::coach_prompt(&kb, question, lang, &|t| engine.count_tokens(t));
    let messages = [ChatMessage::new("system", &prompt.system), ChatMessage::new("user", question)];
    let cancel = super::signals::one_shot();
    let mut out = std::io::stdout();
    let reply = engine
        .chat(&ChatRequest::new(&messages, opts.clone()), cancel, &mut |t| {
            if !json {
                let _ = out.write_all(visible(t).as_bytes());
                let _ = out.flush();
            }
        })
        .map_err(super::ctx_advice)?;
    if json {
        let mut v = reply_json(name, engine, &reply);
        v["sources"] = serde_json::to_value(&prompt.sources)?;
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!();
        print!("{}", visible(&upward::kb::cite::render_sources(&prompt.sources, lang)));
    }
    Ok(reply)
}

/// The machine-readable form of a reply; `model` is the name and the seconds it took
/// to load. A reply the backend cut short says why in `incomplete`.
pub fn reply_json(
    (model, load_s): (&str, f64),
    engine: &dyn ChatBackend,
    r: &Reply,
) -> serde_json::Value {
    let tok_s = |n: usize, s: f64| if s > 0.0 { n as f64 / s } else { 0.0 };
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
    if let Some(why) = engine.incomplete() {
        v["incomplete"] = why.into();
    }
    v
}

const CHAT_COMMANDS: &[&str] = &["/help", "/model", "/clear", "/exit"];

fn chat_repl(
    engine: &mut dyn ChatBackend,
    name: &str,
    base: Vec<ChatMessage>,
    opts: &GenerateOptions,
    g: &Global,
    store: Option<&Store>,
) -> anyhow::Result<()> {
    let lang = g.lang();
    // Started at the first answer; a new one after /clear.
    let mut session: Option<i64> = None;
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
    let mut messages = base.clone();
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
                match engine.engine() {
                    Some(e) => {
                        let c = e.config();
                        println!(
                            "{name}: {} · {} layers · context {} · {} cached tokens",
                            c.arch.name(),
                            c.n_layers,
                            e.context_size(),
                            e.cached_tokens()
                        );
                    }
                    None => {
                        let i = engine.info();
                        println!(
                            "{name}: {} model {} · context {}",
                            i.kind, i.model, i.context_size
                        );
                    }
                }
                continue;
            }
            "/clear" => {
                messages = base.clone();
                session = None;
                engine.reset();
                println!("{}", lang.pick("对话已清空。", "Conversation cleared."));
                continue;
            }
            _ if input.starts_with('/') => {
                println!("{}", lang.pick("未知命令；输入 /help。", "Unknown command; try /help."));
                continue;
            }
            _ => {}
        }
        messages.push(ChatMessage::new("user", input));
        let cancel = super::cancel_flag();
        cancel.store(false, Ordering::SeqCst);
        let mut out = std::io::stdout();
        match engine.chat(&ChatRequest::new(&messages, opts.clone()), cancel, &mut |t| {
            let _ = out.write_all(visible(t).as_bytes());
            let _ = out.flush();
        }) {
            Ok(reply) => {
                println!();
                if reply.dropped_messages > 0 {
                    println!(
                        "{}",
                        lang.pick(
                            &format!(
                                "（上下文已满：最早的 {} 条消息不再计入。）",
                                reply.dropped_messages
                            ),
                            &format!(
                                "(Context full: the oldest {} messages were left out.)",
                                reply.dropped_messages
                            ),
                        )
                    );
                }
                if let Some(why) = engine.incomplete() {
                    println!(
                        "{}",
                        lang.pick(&format!("（不完整：{why}）"), &format!("(incomplete: {why})"))
                    );
                } else if reply.stop == upward::engine::StopReason::Cancelled {
                    println!("{}", lang.pick("（已中断）", "(interrupted)"));
                }
                messages.push(ChatMessage::new("assistant", &reply.text));
                if let Some(store) = store {
                    let saved = match session {
                        Some(id) => save::save_exchange(store, id, input, &reply),
                        None => save::start_chat(store, lang, name, input).and_then(|id| {
                            session = Some(id);
                            save::save_exchange(store, id, input, &reply)
                        }),
                    };
                    if let Err(e) = saved {
                        eprintln!("upward: could not save this answer: {e}");
                    }
                }
            }
            Err(e) => {
                messages.pop();
                let e = super::ctx_advice(e);
                eprintln!("upward: {}", upward::term::error_text(e.as_ref()));
            }
        }
    }
    Ok(())
}
