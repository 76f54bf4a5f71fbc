//! The interactive line editor shared by `upward` (the coach) and `upward chat`:
//! history, tab completion of `/commands` and their arguments, multi-line input.

pub mod coach;
pub mod commands;

use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;
use rustyline::{Context, Editor, Helper, Highlighter, Hinter, Validator};
use std::path::{Path, PathBuf};

/// What one read returned.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadLine {
    /// A (possibly multi-line) input.
    Line(String),
    /// Ctrl-C at the prompt.
    Interrupted,
    /// Ctrl-D or end of input.
    Eof,
}

/// Completes `/commands` at the start of the line, and the words registered for a
/// command after it (e.g. scenario ids after `/roleplay`).
#[derive(Helper, Hinter, Highlighter, Validator, Default)]
pub struct CommandCompleter {
    commands: Vec<String>,
    arguments: Vec<(String, Vec<String>)>,
}

impl CommandCompleter {
    /// Candidates for the text before the cursor: `(start, candidates)`.
    pub fn candidates(&self, line: &str) -> (usize, Vec<String>) {
        if let Some((cmd, rest)) = line.split_once(' ') {
            let start = line.len() - rest.len();
            let words = self
                .arguments
                .iter()
                .find(|(c, _)| c == cmd)
                .map(|(_, w)| w.as_slice())
                .unwrap_or(&[]);
            let found = words.iter().filter(|w| w.starts_with(rest)).cloned().collect();
            (start, found)
        } else if line.starts_with('/') {
            (0, self.commands.iter().filter(|c| c.starts_with(line)).cloned().collect())
        } else {
            (0, Vec::new())
        }
    }
}

impl Completer for CommandCompleter {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let (start, found) = self.candidates(&line[..pos]);
        let pairs =
            found.into_iter().map(|c| Pair { display: c.clone(), replacement: c }).collect();
        Ok((start, pairs))
    }
}

/// A rustyline editor with our completer and a history file.
pub struct LineEditor {
    editor: Editor<CommandCompleter, DefaultHistory>,
    history: Option<PathBuf>,
}

/// Where the history of REPL `name` is kept: the data dir (`--data-dir`, else
/// `$UPWARD_DATA_DIR`, else the XDG data dir).
pub fn history_path(name: &str, data_dir: Option<&Path>) -> Option<PathBuf> {
    let dir = crate::store::data_dir(data_dir).ok()?;
    Some(dir.join(format!("history-{name}.txt")))
}

impl LineEditor {
    /// An editor completing `commands`, with history saved under the name `name` in the
    /// default data dir.
    pub fn new(name: &str, commands: Vec<String>) -> rustyline::Result<LineEditor> {
        LineEditor::new_in(name, commands, None)
    }

    /// [`LineEditor::new`], with the history in `data_dir` when given.
    pub fn new_in(
        name: &str,
        commands: Vec<String>,
        data_dir: Option<&Path>,
    ) -> rustyline::Result<LineEditor> {
        let mut editor = Editor::<CommandCompleter, DefaultHistory>::new()?;
        editor.set_helper(Some(CommandCompleter { commands, arguments: Vec::new() }));
        let history = history_path(name, data_dir);
        if let Some(h) = &history {
            let _ = editor.load_history(h);
        }
        Ok(LineEditor { editor, history })
    }

    /// Registers the words completed after `command`.
    pub fn set_arguments(&mut self, command: &str, words: Vec<String>) {
        if let Some(h) = self.editor.helper_mut() {
            h.arguments.retain(|(c, _)| c != command);
            h.arguments.push((command.to_string(), words));
        }
    }

    /// Reads a pasted block until a line that is exactly `"""` (or EOF); None on Ctrl-C.
    pub fn read_block(&mut self) -> rustyline::Result<Option<String>> {
        let mut text = String::new();
        loop {
            match self.editor.readline("… ") {
                Ok(line) if line.trim() == "\"\"\"" => break,
                Ok(line) => {
                    text.push_str(&line);
                    text.push('\n');
                }
                Err(ReadlineError::Interrupted) => return Ok(None),
                Err(ReadlineError::Eof) => break,
                Err(e) => return Err(e),
            }
        }
        Ok(Some(text.trim_end().to_string()))
    }

    /// Reads one input. A line ending in `\` continues on the next line; a line that is
    /// exactly `"""` starts a block that ends at the next `"""` line (for pasting).
    pub fn read(&mut self, prompt: &str) -> rustyline::Result<ReadLine> {
        let mut text = String::new();
        let mut block = false;
        let mut first = true;
        loop {
            let p = if first { prompt } else { "… " };
            first = false;
            match self.editor.readline(p) {
                Ok(line) => {
                    if line.trim() == "\"\"\"" {
                        if block {
                            break;
                        }
                        block = true;
                        continue;
                    }
                    if block {
                        text.push_str(&line);
                        text.push('\n');
                        continue;
                    }
                    if let Some(stripped) = line.strip_suffix('\\') {
                        text.push_str(stripped);
                        text.push('\n');
                        continue;
                    }
                    text.push_str(&line);
                    break;
                }
                Err(ReadlineError::Interrupted) => return Ok(ReadLine::Interrupted),
                Err(ReadlineError::Eof) => {
                    if text.trim().is_empty() {
                        return Ok(ReadLine::Eof);
                    }
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        let text = text.trim_end_matches('\n').to_string();
        if !text.trim().is_empty() {
            let _ = self.editor.add_history_entry(text.as_str());
            if let Some(h) = &self.history {
                if let Some(dir) = h.parent() {
                    let _ = crate::private::create_dir(dir, false);
                }
                let _ = self.editor.save_history(h);
            }
        }
        Ok(ReadLine::Line(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completes_commands_and_arguments() {
        let c = CommandCompleter {
            commands: vec!["/roleplay".into(), "/restart".into(), "/help".into()],
            arguments: vec![(
                "/roleplay".into(),
                vec!["weekly-report".into(), "year-end-thanks".into()],
            )],
        };
        assert_eq!(c.candidates("/re").1, vec!["/restart".to_string()]);
        assert_eq!(c.candidates("/r").1.len(), 2);
        let (start, found) = c.candidates("/roleplay we");
        assert_eq!((start, found), (10, vec!["weekly-report".to_string()]));
        assert!(c.candidates("hello").1.is_empty());
    }
}
