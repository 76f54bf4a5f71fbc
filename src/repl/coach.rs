//! The coach REPL (`upward` with no subcommand): role-play with a boss, critique drafts,
//! search the knowledge base and ask the coach. A front end: it reads input, calls the
//! coaching service ([`crate::coach`]) and prints what it streams.

use super::commands::{self, Complete, Flow, COMMANDS};
use super::{LineEditor, ReadLine};
use crate::backend::ChatBackend;
use crate::coach::roleplay::{RoleplayRun, SaveState, Start};
use crate::coach::{self as service, Event, Notice};
use crate::critique::KindChoice;
use crate::engine::{GenerateOptions, PromptCache};
use crate::kb::KnowledgeBase;
use crate::lang::Lang;
use crate::render::Painter;
use crate::roleplay::authored::{self, BossChoice, Why};
use crate::roleplay::Persona;
use crate::store::Store;
use crate::term::visible;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// Everything the coach needs.
pub struct Coach {
    /// The model.
    pub model: Box<dyn ChatBackend>,
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
    active: Option<RoleplayRun>,
    /// The user was told why the boss is authored.
    told: bool,
}

/// Prints the service's events on stdout (notices about saving on stderr).
struct Printer {
    lang: Lang,
    /// Text was printed since the last line end.
    mid_line: bool,
    /// Tell why the boss is authored (once per choice).
    tell_boss: bool,
    /// The events belong to a role-play turn.
    roleplay: bool,
}

impl Printer {
    fn new(lang: Lang, tell_boss: bool, roleplay: bool) -> Printer {
        Printer { lang, mid_line: false, tell_boss, roleplay }
    }

    fn end_line(&mut self) {
        if std::mem::take(&mut self.mid_line) {
            println!();
        }
    }

    fn show(&mut self, e: Event) {
        let lang = self.lang;
        match e {
            Event::Text(t) => {
                let mut out = std::io::stdout();
                let _ = out.write_all(visible(&t).as_bytes());
                let _ = out.flush();
                self.mid_line = true;
            }
            Event::TurnScored { score, trust, .. } => {
                self.end_line();
                println!(
                    "{} {score}/100 · {} {}",
                    lang.pick("[教练] 本轮", "[coach] turn"),
                    lang.pick("信任", "trust"),
                    crate::render::roleplay::meter(trust)
                );
            }
            Event::Notice(Notice::Interrupted) if self.roleplay => {
                self.end_line();
                println!(
                    "{}",
                    lang.pick("（已中断，角色扮演继续）", "(interrupted; the role-play goes on)")
                );
            }
            Event::Notice(Notice::Interrupted) => {}
            Event::Notice(n @ Notice::BossAuthored(_)) => {
                if self.tell_boss {
                    self.end_line();
                    println!("{}", n.message(lang));
                }
            }
            Event::Notice(n @ (Notice::NotSaved { .. } | Notice::Warning(_))) => {
                self.end_line();
                eprintln!("upward: {}", visible(&n.message(lang)));
            }
            Event::Notice(n) => {
                self.end_line();
                println!("{}", n.message(lang));
            }
        }
    }
}

impl Coach {
    /// A coach with no role-play running.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        model: Box<dyn ChatBackend>,
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
            model,
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
            told: false,
        }
    }

    /// Why the boss of a role-play in `lang` is authored (None: the model plays it).
    fn boss_for(&self, lang: Lang) -> Option<Why> {
        authored::decide(self.boss, &self.model_name, self.speaks.as_deref(), lang)
    }

    fn say(&self, zh: &str, en: &str) {
        println!("{}", self.lang.pick(zh, en));
    }

    /// Starts a role-play (saved as a new session from its first turn).
    pub fn start_roleplay(&mut self, scenario: &str, persona: Option<&str>) -> anyhow::Result<()> {
        let lang = self.lang;
        let start = Start { scenario, persona, lang, model: Some(&self.model_name) };
        let boss = self.boss_for(lang);
        let mut printer = Printer::new(lang, !self.told, true);
        let mut notices = Vec::new();
        let run = RoleplayRun::start(
            &self.kb,
            &self.personas,
            &start,
            self.store.as_ref(),
            boss,
            &mut |e| notices.push(e),
        )?;
        self.print_opening(&run);
        self.told |= run.authored().is_some();
        for e in notices {
            printer.show(e);
        }
        if run.authored().is_none() {
            // Prefill the persona prompt while the user reads the opening: the first reply
            // then starts as fast as later ones. On a terminal, a note shows meanwhile.
            let tty = std::io::stdout().is_terminal();
            if tty {
                let p = Painter::for_stdout();
                let note = self.lang.pick("（正在准备……）", "(getting ready…)");
                print!("{}", p.paint(note, crate::render::Style::Dim));
                let _ = std::io::stdout().flush();
            }
            let warmed = run.warm(self.model.as_mut(), self.gen.max_tokens, self.prompts.as_ref());
            if tty {
                // Carriage return and erase the line: the note goes away.
                print!("\r\x1b[2K");
                let _ = std::io::stdout().flush();
            }
            if let Err(e) = warmed {
                eprintln!("upward: {e}");
            }
        }
        self.active = Some(run);
        Ok(())
    }

    fn print_opening(&self, run: &RoleplayRun) {
        let rp = run.roleplay();
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
        let mut notices = Vec::new();
        let boss =
            |lang| authored::decide(self.boss, &self.model_name, self.speaks.as_deref(), lang);
        let run = RoleplayRun::resume(&self.kb, &self.personas, store, id, boss, &mut |e| {
            notices.push(e)
        })?;
        self.lang = run.lang();
        let mut printer = Printer::new(self.lang, !self.told, true);
        self.told |= run.authored().is_some();
        for e in notices {
            printer.show(e);
        }
        // Warm the cache with the conversation so far (reusing any prefix it holds).
        if let Err(e) = run.warm(self.model.as_mut(), self.gen.max_tokens, None) {
            eprintln!("upward: {e}");
        }
        self.print_opening(&run);
        let rp = run.roleplay();
        for t in rp.turns() {
            println!(
                "> {}\n{}: {}",
                visible(&t.user),
                rp.persona.name.get(self.lang),
                visible(&t.boss)
            );
        }
        self.active = Some(run);
        Ok(())
    }

    /// Plays one user turn of the active role-play.
    pub fn roleplay_turn(&mut self, text: &str) -> anyhow::Result<()> {
        let Some(run) = self.active.as_mut() else { return Ok(()) };
        let lang = run.lang();
        self.cancel.store(false, Ordering::SeqCst);
        print!("{}: ", run.roleplay().persona.name.get(lang));
        let _ = std::io::stdout().flush();
        let mut printer = Printer::new(lang, false, true);
        printer.mid_line = true;
        let model: Option<&mut dyn ChatBackend> = Some(self.model.as_mut());
        let store = self.store.as_ref();
        run.turn(&self.kb, model, store, text, &self.gen, self.cancel, &mut |e| printer.show(e))?;
        Ok(())
    }

    /// Ends the active role-play with a debrief.
    pub fn end(&mut self) -> anyhow::Result<()> {
        let Some(mut run) = self.active.take() else {
            self.say("没有进行中的角色扮演。", "No role-play is running.");
            return Ok(());
        };
        let mut printer = Printer::new(run.lang(), false, true);
        let store = self.store.as_ref();
        let d = run.end(&self.kb, Some(self.model.as_mut()), store, &mut |e| printer.show(e));
        print!("{}", visible(&crate::render::roleplay::debrief(run.roleplay(), &d)));
        Ok(())
    }

    fn critique(&mut self, draft: &str) {
        let policy = service::critique::policy(&self.model.info());
        let helper = service::critique::Helper {
            model: self.model.as_mut(),
            name: &self.model_name,
            judge: policy.judge,
        };
        let mut printer = Printer::new(self.lang, false, false);
        let result = service::critique::critique(
            draft,
            KindChoice::Auto,
            Some(self.lang),
            &self.kb,
            Some(helper),
            self.store.as_ref(),
            &mut |e| printer.show(e),
        );
        match result {
            Ok(done) => {
                let shown = crate::term::visible_copy(&done.critique);
                print!(
                    "{}",
                    crate::critique::render::render(
                        &shown,
                        &Painter::for_stdout(),
                        terminal_width()
                    )
                );
            }
            Err(e) => println!("{}", e.message(self.lang)),
        }
    }

    fn ask_coach(&mut self, question: &str) -> anyhow::Result<()> {
        self.cancel.store(false, Ordering::SeqCst);
        let mut printer = Printer::new(self.lang, false, false);
        let answer = service::ask::ask_coach(
            self.model.as_mut(),
            &self.kb,
            question,
            self.lang,
            &self.gen,
            self.cancel,
            &mut |e| printer.show(e),
        )?;
        println!();
        print!("{}", crate::kb::cite::render_sources(&answer.sources, self.lang));
        Ok(())
    }

    fn list_scenarios(&self) {
        for (i, s) in self.kb.scenarios().iter().enumerate() {
            println!("  {}. {:<18} {}", i + 1, s.id, s.title.get(self.lang));
        }
    }

    /// A scenario by its number in the list, else the id as given.
    fn scenario_id(&self, s: String) -> String {
        match s.parse::<usize>() {
            Ok(n) if n >= 1 && n <= self.kb.scenarios().len() => {
                self.kb.scenarios()[n - 1].id.clone()
            }
            _ => s,
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
        match commands::find(cmd) {
            Some(c) => Ok((c.run)(self, rest, editor)? == Flow::Continue),
            None => {
                self.say("未知命令；输入 /help。", "Unknown command; try /help.");
                Ok(true)
            }
        }
    }

    /// `/help`.
    pub(super) fn cmd_help(&mut self, _: &str, _: &mut LineEditor) -> anyhow::Result<Flow> {
        print!("{}", commands::help(self.lang));
        Ok(Flow::Continue)
    }

    /// `/roleplay [ID] [--persona P] [--boss auto|model|authored]`.
    pub(super) fn cmd_roleplay(
        &mut self,
        rest: &str,
        editor: &mut LineEditor,
    ) -> anyhow::Result<Flow> {
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
                        return Ok(Flow::Continue);
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
            Some(s) => self.scenario_id(s),
            None => {
                self.list_scenarios();
                let ReadLine::Line(pick) = editor.read(
                    self.lang.pick("选择场景（编号或 ID）：", "Pick a scenario (number or id): "),
                )?
                else {
                    return Ok(Flow::Continue);
                };
                self.scenario_id(pick.trim().to_string())
            }
        };
        if let Err(e) = self.start_roleplay(&scenario, persona.as_deref()) {
            println!("{}", crate::term::error_text(e.as_ref()));
        }
        Ok(Flow::Continue)
    }

    /// `/hint`.
    pub(super) fn cmd_hint(&mut self, _: &str, _: &mut LineEditor) -> anyhow::Result<Flow> {
        match &self.active {
            Some(run) => print!("{}", run.hint(&self.kb)),
            None => self.say(
                "先用 /roleplay 开始一个角色扮演。",
                "Start a role-play with /roleplay first.",
            ),
        }
        Ok(Flow::Continue)
    }

    /// `/feedback`.
    pub(super) fn cmd_feedback(&mut self, _: &str, _: &mut LineEditor) -> anyhow::Result<Flow> {
        match self.active.as_ref().and_then(RoleplayRun::feedback) {
            Some(f) => print!("{f}"),
            None => self.say("还没有可以评分的发言。", "No turn to score yet."),
        }
        Ok(Flow::Continue)
    }

    /// `/restart`: the same scenario and boss, from the start, as a new session.
    pub(super) fn cmd_restart(&mut self, _: &str, _: &mut LineEditor) -> anyhow::Result<Flow> {
        match self.active.take() {
            Some(run) => {
                let rp = run.roleplay();
                let (s, p) = (rp.scenario.id.clone(), rp.persona.id.clone());
                self.start_roleplay(&s, Some(&p))?;
            }
            None => self.say("没有进行中的角色扮演。", "No role-play is running."),
        }
        Ok(Flow::Continue)
    }

    /// `/end`.
    pub(super) fn cmd_end(&mut self, _: &str, _: &mut LineEditor) -> anyhow::Result<Flow> {
        self.end()?;
        Ok(Flow::Continue)
    }

    /// `/critique [DRAFT]`: the draft on the line, or pasted up to a `"""` line.
    pub(super) fn cmd_critique(
        &mut self,
        rest: &str,
        editor: &mut LineEditor,
    ) -> anyhow::Result<Flow> {
        let draft = if rest.is_empty() {
            self.say(
                "粘贴草稿，单独一行 \"\"\" 结束：",
                "Paste the draft; end with a line \"\"\":",
            );
            match editor.read_block()? {
                Some(d) => d,
                None => return Ok(Flow::Continue),
            }
        } else {
            rest.to_string()
        };
        self.critique(&draft);
        Ok(Flow::Continue)
    }

    /// `/kb QUERY`.
    pub(super) fn cmd_kb(&mut self, rest: &str, _: &mut LineEditor) -> anyhow::Result<Flow> {
        if rest.is_empty() {
            self.say("用法：/kb 查询内容", "Usage: /kb QUERY");
        } else {
            let lang = Lang::detect(rest);
            print!("{}", crate::kb::render_hits(&self.kb.search(rest, None, 3), lang));
        }
        Ok(Flow::Continue)
    }

    /// `/model`: the model, its shape where it is ours, its context and cache.
    pub(super) fn cmd_model(&mut self, _: &str, _: &mut LineEditor) -> anyhow::Result<Flow> {
        let (ctx, cached) = (self.model.context_size(), self.model.cached_tokens());
        match self.model.engine() {
            Some(engine) => {
                let c = engine.config();
                println!(
                    "{} · {} · {} layers · context {ctx} · cached {cached}",
                    self.model_name,
                    c.arch.name(),
                    c.n_layers,
                );
            }
            None => {
                let info = self.model.info();
                println!("{} · {} ({}) · context {ctx}", self.model_name, info.kind, info.model);
            }
        }
        Ok(Flow::Continue)
    }

    /// `/lang zh|en`.
    pub(super) fn cmd_lang(&mut self, rest: &str, _: &mut LineEditor) -> anyhow::Result<Flow> {
        match Lang::parse(rest) {
            Some(l) => {
                self.lang = l;
                self.say(
                    "已切换为中文（新的角色扮演生效）。",
                    "Switched to English (applies to new role-plays).",
                );
            }
            None => self.say("用法：/lang zh 或 /lang en", "Usage: /lang zh or /lang en"),
        }
        Ok(Flow::Continue)
    }

    /// `/sessions`.
    pub(super) fn cmd_sessions(&mut self, _: &str, _: &mut LineEditor) -> anyhow::Result<Flow> {
        match &self.store {
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
        }
        Ok(Flow::Continue)
    }

    /// `/resume ID`.
    pub(super) fn cmd_resume(&mut self, rest: &str, _: &mut LineEditor) -> anyhow::Result<Flow> {
        match rest.parse::<i64>() {
            Ok(id) => {
                if let Err(e) = self.resume(id) {
                    println!("{}", crate::term::error_text(e.as_ref()));
                }
            }
            Err(_) => self.say("用法：/resume 会话编号", "Usage: /resume ID"),
        }
        Ok(Flow::Continue)
    }

    /// `/save`: where (and whether) the session is being saved.
    pub(super) fn cmd_save(&mut self, _: &str, _: &mut LineEditor) -> anyhow::Result<Flow> {
        match (&self.store, self.active.as_ref().map(RoleplayRun::save_state)) {
            (Some(_), Some(SaveState::Off)) => self.say(
                "这次角色扮演没有保存（见上面的错误）。",
                "This role-play is not being saved (see the error above).",
            ),
            (Some(s), Some(SaveState::Saved(id))) => println!(
                "{} {id} · {}",
                self.lang
                    .pick("每一轮都已自动保存到会话", "Every turn is saved automatically, session"),
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
        }
        Ok(Flow::Continue)
    }

    /// Runs the REPL until /exit or Ctrl-D.
    pub fn run(&mut self) -> anyhow::Result<()> {
        let data_dir = self.store.as_ref().and_then(|s| s.path().parent().map(|d| d.to_owned()));
        let names = COMMANDS.iter().map(|c| c.name.to_string()).collect();
        let mut editor = LineEditor::new_in("coach", names, data_dir.as_deref())?;
        for c in COMMANDS {
            let words = match c.complete {
                Complete::Nothing => continue,
                Complete::Scenarios => self.kb.scenarios().iter().map(|s| s.id.clone()).collect(),
                Complete::Langs => vec!["zh".into(), "en".into()],
            };
            editor.set_arguments(c.name, words);
        }
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
            let prompt = match (self.active.is_some(), self.lang) {
                (true, Lang::En) => "you> ",
                (true, Lang::Zh) => "你> ",
                (false, _) => "> ",
            };
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

fn terminal_width() -> usize {
    std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()).unwrap_or(80)
}
