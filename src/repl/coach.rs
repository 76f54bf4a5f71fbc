//! The coach REPL (`upward` with no subcommand): role-play with a boss, critique drafts,
//! search the knowledge base and ask the coach, with every turn saved as it completes.

use super::{LineEditor, ReadLine};
use crate::critique::{self, KindChoice};
use crate::engine::{Engine, GenerateOptions, PromptCache, StopReason};
use crate::gguf::chat_template::ChatMessage;
use crate::kb::KnowledgeBase;
use crate::lang::Lang;
use crate::render::Painter;
use crate::roleplay::authored::{self, BossChoice};
use crate::roleplay::record::{save_turn, turns_from_store};
use crate::roleplay::{self, Persona, Roleplay};
use crate::store::{NewSession, SessionKind, Store};
use crate::term::visible;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// The commands, for `/help` and tab completion.
pub const COMMANDS: &[&str] = &[
    "/roleplay",
    "/hint",
    "/feedback",
    "/restart",
    "/end",
    "/critique",
    "/kb",
    "/model",
    "/lang",
    "/sessions",
    "/resume",
    "/save",
    "/help",
    "/exit",
];

/// Everything the coach needs.
pub struct Coach {
    /// The loaded model.
    pub engine: Engine,
    /// Its display name.
    pub model_name: String,
    /// The knowledge base.
    pub kb: KnowledgeBase,
    /// Boss personas.
    pub personas: Vec<Persona>,
    /// Language of the coach.
    pub lang: Lang,
    /// Generation settings for the boss.
    pub gen: GenerateOptions,
    /// Where turns are saved (None: not saving, the user was told why).
    pub store: Option<Store>,
    /// Ctrl-C flag, set while a reply streams.
    pub cancel: &'static AtomicBool,
    /// Who plays the boss in new role-plays (`--boss`, `/roleplay --boss`).
    pub boss: BossChoice,
    /// Languages the model speaks (None: unknown, trusted).
    pub speaks: Option<Vec<String>>,
    /// Saved persona-prompt caches (None: no cache folder).
    prompts: Option<PromptCache>,
    active: Option<(Roleplay, Slot)>,
    /// The active role-play's boss is authored, not the model.
    authored: bool,
    /// The user was told why the boss is authored.
    told: bool,
}

/// Where the active role-play is saved.
enum Slot {
    /// Not yet: the session is created with the first turn, so a role-play left before
    /// any turn leaves no empty session behind.
    Pending(NewSession),
    /// In this session.
    Saved(i64),
    /// Not saved (no store, or it failed; the user was told).
    Off,
}

impl Coach {
    /// A coach with no role-play running.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        engine: Engine,
        model_name: String,
        kb: KnowledgeBase,
        personas: Vec<Persona>,
        lang: Lang,
        gen: GenerateOptions,
        store: Option<Store>,
        cancel: &'static AtomicBool,
    ) -> Coach {
        let prompts = PromptCache::from_env();
        Coach {
            engine,
            model_name,
            kb,
            personas,
            lang,
            gen,
            store,
            cancel,
            boss: BossChoice::Auto,
            speaks: None,
            prompts,
            active: None,
            authored: false,
            told: false,
        }
    }

    /// Decides who plays the boss of a role-play in `lang`, telling the user once why the
    /// boss is authored.
    fn choose_boss(&mut self, lang: Lang) {
        let why = authored::decide(self.boss, &self.model_name, self.speaks.as_deref(), lang);
        self.authored = why.is_some();
        if let Some(why) = why.filter(|_| !self.told) {
            println!("{}", authored::notice(&why, lang));
            self.told = true;
        }
    }

    fn say(&self, zh: &str, en: &str) {
        println!("{}", self.lang.pick(zh, en));
    }

    /// Starts a role-play (saving it as a new session).
    pub fn start_roleplay(&mut self, scenario: &str, persona: Option<&str>) -> anyhow::Result<()> {
        let rp = Roleplay::new(&self.kb, &self.personas, scenario, persona, self.lang)?;
        let session = match &self.store {
            Some(_) => {
                let mut n = NewSession::new(SessionKind::Roleplay, self.lang);
                n.scenario = Some(rp.scenario.id.clone());
                n.persona = Some(rp.persona.id.clone());
                n.model = Some(self.model_name.clone());
                n.title = Some(rp.scenario.title.get(self.lang).to_string());
                Slot::Pending(n)
            }
            None => Slot::Off,
        };
        self.print_opening(&rp);
        self.choose_boss(rp.lang);
        if self.authored {
            self.active = Some((rp, session));
            return Ok(());
        }
        // The cache keeps whatever prefix the new conversation shares with the last one.
        // Prefill the persona prompt while the user reads the opening: the first reply
        // then starts as fast as later ones. On a terminal, a note shows meanwhile.
        let tty = std::io::stdout().is_terminal();
        if tty {
            let p = Painter::for_stdout();
            let note = self.lang.pick("（正在准备……）", "(getting ready…)");
            print!("{}", p.paint(note, crate::render::Style::Dim));
            let _ = std::io::stdout().flush();
        }
        let warmed = rp.warm_cache(&mut self.engine, self.gen.max_tokens, self.prompts.as_ref());
        if tty {
            // Carriage return and erase the line: the note goes away.
            print!("\r\x1b[2K");
            let _ = std::io::stdout().flush();
        }
        if let Err(e) = warmed {
            eprintln!("upward: {e}");
        }
        self.active = Some((rp, session));
        Ok(())
    }

    fn print_opening(&self, rp: &Roleplay) {
        let p = Painter::for_stdout();
        println!(
            "\n{} · {} · {} {}",
            p.paint(rp.scenario.title.get(self.lang), crate::render::Style::Bold),
            rp.persona.name.get(self.lang),
            self.lang.pick("信任", "trust"),
            rp.trust()
        );
        println!("{}\n", rp.scenario.situation.get(self.lang));
        println!("{}: {}", rp.persona.name.get(self.lang), rp.opening());
    }

    /// Resumes stored role-play `id`: its turns come back and the next reply reuses a
    /// warm cache (the conversation is prefilled once, here).
    pub fn resume(&mut self, id: i64) -> anyhow::Result<()> {
        let store = self
            .store
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("sessions are not available (no data dir)"))?;
        let detail = store.session(id)?;
        let s = &detail.session;
        let scenario =
            s.scenario.clone().ok_or_else(|| anyhow::anyhow!("session {id} is not a role-play"))?;
        let mut rp =
            Roleplay::new(&self.kb, &self.personas, &scenario, s.persona.as_deref(), s.lang)?;
        let turns = turns_from_store(&rp, &detail.turns);
        rp.restore(turns);
        self.lang = s.lang;
        self.choose_boss(s.lang);
        // Warm the cache with the conversation so far (reusing any prefix it holds).
        if !self.authored {
            if let Err(e) = rp.warm_cache(&mut self.engine, self.gen.max_tokens, None) {
                eprintln!("upward: {e}");
            }
        }
        self.print_opening(&rp);
        for t in rp.turns() {
            println!(
                "> {}\n{}: {}",
                visible(&t.user),
                rp.persona.name.get(self.lang),
                visible(&t.boss)
            );
        }
        self.active = Some((rp, Slot::Saved(id)));
        Ok(())
    }

    /// Plays one user turn of the active role-play.
    pub fn roleplay_turn(&mut self, text: &str) -> anyhow::Result<()> {
        let Some((rp, session)) = self.active.as_mut() else { return Ok(()) };
        let lang = rp.lang;
        self.cancel.store(false, Ordering::SeqCst);
        print!("{}: ", rp.persona.name.get(rp.lang));
        let _ = std::io::stdout().flush();
        let mut out = std::io::stdout();
        let (turn, reply) = if self.authored {
            let turn = rp.take_authored_turn(self.kb.boss_lines(), text)?;
            print!("{}", turn.boss);
            let reply = authored::no_model_reply(&turn.boss);
            (turn, reply)
        } else {
            rp.take_turn(&mut self.engine, text, &self.gen, self.cancel, &mut |t| {
                let _ = out.write_all(visible(t).as_bytes());
                let _ = out.flush();
            })?
        };
        let turn = turn.clone();
        println!();
        if reply.stop == StopReason::Cancelled {
            println!(
                "{}",
                lang.pick("（已中断，角色扮演继续）", "(interrupted; the role-play goes on)")
            );
        }
        if rp.context_trimmed() {
            let ctx = self.engine.context_size();
            match lang {
                Lang::Zh => println!(
                    "（对话超出了模型的上下文（{ctx} 个 token）：最早的几轮已不再发给领导，他记不得了。）"
                ),
                Lang::En => println!(
                    "(The conversation outgrew the model's context ({ctx} tokens): the oldest turns are no longer shown to the boss.)"
                ),
            }
        }
        println!(
            "{} {}/100 · {} {}",
            lang.pick("[教练] 本轮", "[coach] turn"),
            turn.score.score,
            lang.pick("信任", "trust"),
            meter(turn.trust)
        );
        if let Some(store) = self.store.as_ref() {
            if let Slot::Pending(n) = session {
                *session = match store.create_session(n) {
                    Ok(id) => Slot::Saved(id),
                    Err(e) => {
                        eprintln!("upward: {e} (this role-play is not saved)");
                        Slot::Off
                    }
                };
            }
            if let Slot::Saved(id) = *session {
                if let Err(e) = save_turn(store, id, &turn, &reply) {
                    eprintln!("upward: could not save this turn: {e}");
                }
            }
        }
        Ok(())
    }

    /// Ends the active role-play with a debrief.
    pub fn end(&mut self) -> anyhow::Result<()> {
        let Some((rp, session)) = self.active.take() else {
            self.say("没有进行中的角色扮演。", "No role-play is running.");
            return Ok(());
        };
        let engine = if self.authored { None } else { Some(&mut self.engine) };
        let d = roleplay::debrief(&rp, &self.kb, engine);
        print!("{}", visible(&render_debrief(&rp, &d)));
        if let (Some(store), Slot::Saved(id)) = (self.store.as_ref(), session) {
            let saved = serde_json::to_value(&d)
                .map_err(|e| e.to_string())
                .and_then(|v| store.end_session(id, Some(&v)).map_err(|e| e.to_string()));
            if let Err(e) = saved {
                eprintln!("upward: could not save the debrief: {e}");
            }
        }
        Ok(())
    }

    fn critique(&mut self, draft: &str) {
        let judge = crate::critique::judge::policy_for_loaded(self.engine.file().path()).judge;
        let mut model = crate::critique::with_engine::EngineModel(&mut self.engine);
        let result = critique::critique_with_model(
            draft,
            KindChoice::Auto,
            Some(self.lang),
            &self.kb,
            &mut model,
            judge,
        );
        match result {
            Ok(c) => {
                let shown = crate::term::visible_copy(&c);
                print!(
                    "{}",
                    critique::render::render(&shown, &Painter::for_stdout(), terminal_width())
                );
                if let Some(store) = &self.store {
                    let saved =
                        crate::coach::save::save_critique(store, draft, &c, Some(&self.model_name));
                    if let Err(e) = saved {
                        eprintln!("upward: could not save the critique: {e}");
                    }
                }
            }
            Err(e) => println!("{}", e.message(self.lang)),
        }
    }

    fn ask_coach(&mut self, question: &str) -> anyhow::Result<()> {
        let engine = &self.engine;
        let prompt = crate::kb::cite::coach_prompt(&self.kb, question, self.lang, &|t| {
            engine.count_tokens(t)
        });
        let msgs = [ChatMessage::new("system", &prompt.system), ChatMessage::new("user", question)];
        self.cancel.store(false, Ordering::SeqCst);
        let mut out = std::io::stdout();
        self.engine.chat(&msgs, &self.gen, self.cancel, &mut |t| {
            let _ = out.write_all(visible(t).as_bytes());
            let _ = out.flush();
        })?;
        println!();
        print!("{}", crate::kb::cite::render_sources(&prompt.sources, self.lang));
        Ok(())
    }

    fn help(&self) {
        let rows: [(&str, &str, &str); 14] = [
            (
                "/roleplay [ID] [--persona P] [--boss authored]",
                "开始角色扮演（不带 ID 会列出场景）",
                "start a role-play (lists scenarios without an id)",
            ),
            ("/hint", "下一句该覆盖什么", "what a strong next line would cover"),
            ("/feedback", "上一轮的评分", "scores of your last turn"),
            ("/restart", "重新开始当前角色扮演", "restart the current role-play"),
            ("/end", "结束并复盘", "end with a debrief"),
            (
                "/critique",
                "点评一段草稿（求助/感谢），粘贴后单独一行 \"\"\" 结束",
                "critique a draft (help/thanks); end the paste with a line \"\"\"",
            ),
            ("/kb QUERY", "检索知识库", "search the knowledge base"),
            ("/model", "当前模型", "the model in use"),
            ("/lang zh|en", "切换语言", "switch language"),
            ("/sessions", "已保存的会话", "saved sessions"),
            ("/resume ID", "继续一个角色扮演", "resume a role-play"),
            ("/save", "保存状态", "saving status"),
            ("/help", "帮助", "this help"),
            ("/exit", "退出（Ctrl-D）", "quit (Ctrl-D)"),
        ];
        for (c, zh, en) in rows {
            println!("  {}  {}", crate::render::pad(c, 30), self.lang.pick(zh, en));
        }
        self.say(
            "在角色扮演中直接输入你要对领导说的话；不在角色扮演时，输入问题可以请教教练。Ctrl-C 打断回答。",
            "In a role-play, type what you would say to your boss; outside one, type a question for the coach. Ctrl-C interrupts an answer.",
        );
    }

    fn list_scenarios(&self) {
        for (i, s) in self.kb.scenarios().iter().enumerate() {
            println!("  {}. {:<18} {}", i + 1, s.id, s.title.get(self.lang));
        }
    }

    /// Handles one input line; returns false to quit.
    pub fn handle(&mut self, input: &str, editor: &mut LineEditor) -> anyhow::Result<bool> {
        let (cmd, rest) = match input.split_once(char::is_whitespace) {
            Some((c, r)) => (c, r.trim()),
            None => (input, ""),
        };
        if !cmd.starts_with('/') {
            if self.active.is_some() {
                self.roleplay_turn(input)?;
            } else {
                self.ask_coach(input)?;
            }
            return Ok(true);
        }
        match cmd {
            "/exit" | "/quit" => return Ok(false),
            "/help" => self.help(),
            "/roleplay" => {
                let mut words = rest.split_whitespace();
                let mut scenario = None;
                let mut persona = None;
                while let Some(w) = words.next() {
                    if w == "--persona" {
                        persona = words.next().map(str::to_string);
                    } else if w == "--boss" {
                        match words.next() {
                            Some("auto") => self.boss = BossChoice::Auto,
                            Some("model") => self.boss = BossChoice::Model,
                            Some("authored") => self.boss = BossChoice::Authored,
                            _ => {
                                self.say(
                                    "用法：/roleplay [场景] --boss auto|model|authored",
                                    "Usage: /roleplay [ID] --boss auto|model|authored",
                                );
                                return Ok(true);
                            }
                        }
                        // A forced choice is news worth telling again.
                        self.told = false;
                    } else {
                        scenario = Some(w.to_string());
                    }
                }
                let scenario = match scenario {
                    // A number from the list, as at the prompt below, or an id.
                    Some(s) => match s.parse::<usize>() {
                        Ok(n) if n >= 1 && n <= self.kb.scenarios().len() => {
                            self.kb.scenarios()[n - 1].id.clone()
                        }
                        _ => s,
                    },
                    None => {
                        self.list_scenarios();
                        let ReadLine::Line(pick) =
                            editor.read(self.lang.pick(
                                "选择场景（编号或 ID）：",
                                "Pick a scenario (number or id): ",
                            ))?
                        else {
                            return Ok(true);
                        };
                        let pick = pick.trim().to_string();
                        match pick.parse::<usize>() {
                            Ok(n) if n >= 1 && n <= self.kb.scenarios().len() => {
                                self.kb.scenarios()[n - 1].id.clone()
                            }
                            _ => pick,
                        }
                    }
                };
                if let Err(e) = self.start_roleplay(&scenario, persona.as_deref()) {
                    println!("{}", crate::term::error_text(e.as_ref()));
                }
            }
            "/hint" => match &self.active {
                Some((rp, _)) => print!("{}", roleplay::hint(rp, &self.kb)),
                None => self.say(
                    "先用 /roleplay 开始一个角色扮演。",
                    "Start a role-play with /roleplay first.",
                ),
            },
            "/feedback" => match self.active.as_ref().and_then(|(rp, _)| roleplay::feedback(rp)) {
                Some(f) => print!("{f}"),
                None => self.say("还没有可以评分的发言。", "No turn to score yet."),
            },
            "/restart" => match self.active.take() {
                Some((rp, _)) => {
                    let (s, p) = (rp.scenario.id.clone(), rp.persona.id.clone());
                    self.start_roleplay(&s, Some(&p))?;
                }
                None => self.say("没有进行中的角色扮演。", "No role-play is running."),
            },
            "/end" => self.end()?,
            "/critique" => {
                let draft = if rest.is_empty() {
                    self.say(
                        "粘贴草稿，单独一行 \"\"\" 结束：",
                        "Paste the draft; end with a line \"\"\":",
                    );
                    match editor.read_block()? {
                        Some(d) => d,
                        None => return Ok(true),
                    }
                } else {
                    rest.to_string()
                };
                self.critique(&draft);
            }
            "/kb" => {
                if rest.is_empty() {
                    self.say("用法：/kb 查询内容", "Usage: /kb QUERY");
                } else {
                    let lang = Lang::detect(rest);
                    print!("{}", crate::kb::render_hits(&self.kb.search(rest, None, 3), lang));
                }
            }
            "/model" => {
                let c = self.engine.config();
                println!(
                    "{} · {} · {} layers · context {} · cached {}",
                    self.model_name,
                    c.arch.name(),
                    c.n_layers,
                    self.engine.context_size(),
                    self.engine.cached_tokens()
                );
            }
            "/lang" => match Lang::parse(rest) {
                Some(l) => {
                    self.lang = l;
                    self.say(
                        "已切换为中文（新的角色扮演生效）。",
                        "Switched to English (applies to new role-plays).",
                    );
                }
                None => self.say("用法：/lang zh 或 /lang en", "Usage: /lang zh or /lang en"),
            },
            "/sessions" => match &self.store {
                Some(store) => {
                    for s in store.list_sessions()? {
                        let line = format!(
                            "  {:>4}  {:<9} {:<18} {}",
                            s.session.id,
                            s.session.kind.as_str(),
                            s.session.scenario.clone().unwrap_or_default(),
                            s.session.started_at
                        );
                        println!("{}", visible(&line));
                    }
                }
                None => self.say(
                    "会话未保存（数据目录不可用）。",
                    "Sessions are not being saved (no usable data dir).",
                ),
            },
            "/resume" => match rest.parse::<i64>() {
                Ok(id) => {
                    if let Err(e) = self.resume(id) {
                        println!("{}", crate::term::error_text(e.as_ref()));
                    }
                }
                Err(_) => self.say("用法：/resume 会话编号", "Usage: /resume ID"),
            },
            "/save" => match (&self.store, &self.active) {
                (Some(_), Some((_, Slot::Off))) => self.say(
                    "这次角色扮演没有保存（见上面的错误）。",
                    "This role-play is not being saved (see the error above).",
                ),
                (Some(s), Some((_, Slot::Saved(id)))) => println!(
                    "{} {id} · {}",
                    self.lang.pick(
                        "每一轮都已自动保存到会话",
                        "Every turn is saved automatically, session"
                    ),
                    s.path().display()
                ),
                (Some(s), _) => println!(
                    "{} {}",
                    self.lang.pick("自动保存到", "Saving automatically to"),
                    s.path().display()
                ),
                (None, _) => self.say(
                    "会话未保存（数据目录不可用）。",
                    "Sessions are not being saved (no usable data dir).",
                ),
            },
            _ => self.say("未知命令；输入 /help。", "Unknown command; try /help."),
        }
        Ok(true)
    }

    /// Runs the REPL until /exit or Ctrl-D.
    pub fn run(&mut self) -> anyhow::Result<()> {
        let data_dir = self.store.as_ref().and_then(|s| s.path().parent().map(|d| d.to_owned()));
        let commands = COMMANDS.iter().map(|s| s.to_string()).collect();
        let mut editor = LineEditor::new_in("coach", commands, data_dir.as_deref())?;
        editor
            .set_arguments("/roleplay", self.kb.scenarios().iter().map(|s| s.id.clone()).collect());
        editor.set_arguments("/lang", vec!["zh".into(), "en".into()]);
        self.say(
            &format!("欢迎使用 upward —— 向上管理教练。模型：{}。", self.model_name),
            &format!("Welcome to upward, your managing-up coach. Model: {}.", self.model_name),
        );
        if self.active.is_none() {
            self.say(
                "输入 /roleplay 和领导练习对话，/critique 点评草稿，/kb 检索原则，/help 查看全部命令。",
                "Type /roleplay to practise with your boss, /critique to review a draft, /kb to search the principles, /help for everything.",
            );
        }
        loop {
            let prompt = if self.active.is_some() { "你> " } else { "> " };
            let prompt =
                if self.lang == Lang::En && self.active.is_some() { "you> " } else { prompt };
            let line = match editor.read(prompt)? {
                ReadLine::Line(l) => l,
                ReadLine::Interrupted => continue,
                ReadLine::Eof => break,
            };
            let input = line.trim();
            if input.is_empty() {
                continue;
            }
            match self.handle(input, &mut editor) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => eprintln!("upward: {}", crate::term::error_text(e.as_ref())),
            }
        }
        Ok(())
    }
}

/// A ten-step bar for the trust meter.
pub fn meter(trust: u8) -> String {
    let filled = (trust as usize + 5) / 10;
    format!("{}{} {trust}", "█".repeat(filled), "░".repeat(10 - filled.min(10)))
}

fn terminal_width() -> usize {
    std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()).unwrap_or(80)
}

/// The debrief as terminal text.
pub fn render_debrief(rp: &Roleplay, d: &roleplay::Debrief) -> String {
    let lang = rp.lang;
    let mut out = String::new();
    out.push_str(&format!("\n== {} ==\n", lang.pick("复盘", "Debrief")));
    out.push_str(&format!(
        "{} {}/100 · {} {}\n",
        lang.pick("总分", "Score"),
        d.score,
        lang.pick("信任", "trust"),
        meter(rp.trust())
    ));
    for (id, s) in &d.criteria {
        out.push_str(&format!("  {} {}\n", status_mark(*s), critique::rubric::label(id, lang)));
    }
    if !d.strengths.is_empty() {
        out.push_str(&format!(
            "{} {}\n",
            lang.pick("做得好：", "Strengths:"),
            d.strengths.join(lang.pick("、", ", "))
        ));
    }
    // Turn numbers count from 1, in the JSON too.
    let turn = |n: Option<usize>| n.and_then(|n| Some((n, rp.turns().get(n.checked_sub(1)?)?)));
    if let (Some((b, best)), Some((w, weakest))) = (turn(d.best_turn), turn(d.weakest_turn)) {
        out.push_str(&format!("{} #{b}: {}\n", lang.pick("最好的一轮", "Best turn"), best.user));
        out.push_str(&format!(
            "{} #{w}: {}\n",
            lang.pick("最弱的一轮", "Weakest turn"),
            weakest.user
        ));
    }
    if let Some(better) = &d.better_version {
        out.push_str(&format!(
            "{}\n  {}\n",
            lang.pick("更好的说法：", "A better version:"),
            better
        ));
    }
    if !d.practise.is_empty() {
        out.push_str(lang.pick("接下来练习：\n", "Practise next:\n"));
        for p in &d.practise {
            out.push_str(&format!("  • {}\n    「{}」\n", p.why, p.quote));
        }
    }
    out
}

fn status_mark(s: critique::Status) -> &'static str {
    s.mark()
}
