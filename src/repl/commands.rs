//! The coach REPL's commands, defined once: name, arguments, help in both languages,
//! what completes after it, and the handler. `/help`, tab completion and dispatch all
//! read [`COMMANDS`].

use super::coach::Coach;
use super::LineEditor;
use crate::lang::Lang;

/// What tab completion offers after a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Complete {
    /// Nothing.
    Nothing,
    /// Scenario ids.
    Scenarios,
    /// Language codes.
    Langs,
}

/// What a handler says about the REPL: go on, or quit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Read the next input.
    Continue,
    /// Quit.
    Quit,
}

/// A handler: the coach, the text after the command, the editor (for follow-up input).
pub type Handler = fn(&mut Coach, &str, &mut LineEditor) -> anyhow::Result<Flow>;

/// One REPL command.
pub struct Command {
    /// The command, with its slash.
    pub name: &'static str,
    /// Other names it answers to.
    pub aliases: &'static [&'static str],
    /// Its arguments, as `/help` shows them (empty: none).
    pub args: &'static str,
    /// Help text in Chinese.
    pub zh: &'static str,
    /// Help text in English.
    pub en: &'static str,
    /// What completes after it.
    pub complete: Complete,
    /// What it does.
    pub run: Handler,
}

impl Command {
    /// The command with its arguments, as `/help` shows it.
    pub fn usage(&self) -> String {
        if self.args.is_empty() {
            self.name.to_string()
        } else {
            format!("{} {}", self.name, self.args)
        }
    }

    /// The help text in `lang`.
    pub fn help(&self, lang: Lang) -> &'static str {
        lang.pick(self.zh, self.en)
    }
}

/// Every command of the coach REPL, in `/help` order.
pub static COMMANDS: &[Command] = &[
    Command {
        name: "/roleplay",
        aliases: &[],
        args: "[ID] [--persona P] [--boss authored]",
        zh: "开始角色扮演（不带 ID 会列出场景）",
        en: "start a role-play (lists scenarios without an id)",
        complete: Complete::Scenarios,
        run: Coach::cmd_roleplay,
    },
    Command {
        name: "/hint",
        aliases: &[],
        args: "",
        zh: "下一句该覆盖什么",
        en: "what a strong next line would cover",
        complete: Complete::Nothing,
        run: Coach::cmd_hint,
    },
    Command {
        name: "/feedback",
        aliases: &[],
        args: "",
        zh: "上一轮的评分",
        en: "scores of your last turn",
        complete: Complete::Nothing,
        run: Coach::cmd_feedback,
    },
    Command {
        name: "/restart",
        aliases: &[],
        args: "",
        zh: "重新开始当前角色扮演",
        en: "restart the current role-play",
        complete: Complete::Nothing,
        run: Coach::cmd_restart,
    },
    Command {
        name: "/end",
        aliases: &[],
        args: "",
        zh: "结束并复盘",
        en: "end with a debrief",
        complete: Complete::Nothing,
        run: Coach::cmd_end,
    },
    Command {
        name: "/critique",
        aliases: &[],
        args: "",
        zh: "点评一段草稿（求助/感谢），粘贴后单独一行 \"\"\" 结束",
        en: "critique a draft (help/thanks); end the paste with a line \"\"\"",
        complete: Complete::Nothing,
        run: Coach::cmd_critique,
    },
    Command {
        name: "/kb",
        aliases: &[],
        args: "QUERY",
        zh: "检索知识库",
        en: "search the knowledge base",
        complete: Complete::Nothing,
        run: Coach::cmd_kb,
    },
    Command {
        name: "/model",
        aliases: &[],
        args: "",
        zh: "当前模型",
        en: "the model in use",
        complete: Complete::Nothing,
        run: Coach::cmd_model,
    },
    Command {
        name: "/lang",
        aliases: &[],
        args: "zh|en",
        zh: "切换语言",
        en: "switch language",
        complete: Complete::Langs,
        run: Coach::cmd_lang,
    },
    Command {
        name: "/sessions",
        aliases: &[],
        args: "",
        zh: "已保存的会话",
        en: "saved sessions",
        complete: Complete::Nothing,
        run: Coach::cmd_sessions,
    },
    Command {
        name: "/resume",
        aliases: &[],
        args: "ID",
        zh: "继续一个角色扮演",
        en: "resume a role-play",
        complete: Complete::Nothing,
        run: Coach::cmd_resume,
    },
    Command {
        name: "/save",
        aliases: &[],
        args: "",
        zh: "保存状态",
        en: "saving status",
        complete: Complete::Nothing,
        run: Coach::cmd_save,
    },
    Command {
        name: "/help",
        aliases: &[],
        args: "",
        zh: "帮助",
        en: "this help",
        complete: Complete::Nothing,
        run: Coach::cmd_help,
    },
    Command {
        name: "/exit",
        aliases: &["/quit"],
        args: "",
        zh: "退出（Ctrl-D）",
        en: "quit (Ctrl-D)",
        complete: Complete::Nothing,
        run: |_, _, _| Ok(Flow::Quit),
    },
];

/// The command named `name` (or one of its aliases).
pub fn find(name: &str) -> Option<&'static Command> {
    COMMANDS.iter().find(|c| c.name == name || c.aliases.contains(&name))
}

/// The `/help` text in `lang`: one line per command, then how plain input works.
pub fn help(lang: Lang) -> String {
    let mut out = String::new();
    for c in COMMANDS {
        out.push_str(&format!("  {}  {}\n", crate::render::pad(&c.usage(), 30), c.help(lang)));
    }
    out.push_str(lang.pick(
        "在角色扮演中直接输入你要对领导说的话；不在角色扮演时，输入问题可以请教教练。Ctrl-C 打断回答。",
        "In a role-play, type what you would say to your boss; outside one, type a question for the coach. Ctrl-C interrupts an answer.",
    ));
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_table_drives_help_and_dispatch() {
        let help = help(Lang::En);
        for c in COMMANDS {
            assert!(help.contains(c.name), "{} is missing from /help", c.name);
            assert!(std::ptr::eq(find(c.name).unwrap(), c));
        }
        assert_eq!(find("/quit").map(|c| c.name), Some("/exit"));
        assert!(find("/nonsense").is_none());
        let mut names: Vec<_> = COMMANDS.iter().map(|c| c.name).collect();
        names.dedup();
        assert_eq!(names.len(), COMMANDS.len());
    }
}
