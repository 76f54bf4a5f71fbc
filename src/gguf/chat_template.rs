//! Chat templates: the Jinja template in a GGUF file's `tokenizer.chat_template`, rendered
//! with minijinja and the helpers Hugging Face templates call (`raise_exception`, `tojson`,
//! `strftime_now`, Python string methods), or a built-in template (`chatml`, `gemma`) for
//! models that carry none.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use candle_core::quantized::gguf_file::Content;
use minijinja::value::{Kwargs, Value, ValueKind};
use minijinja::{Environment, Error, ErrorKind};
use serde::{Deserialize, Serialize};

use super::metadata::{keys, Metadata};
use super::tokenizer::Tokenizer;

const TEMPLATE_NAME: &str = "chat_template";

/// A chat template comes from a downloaded file, so it is untrusted code: each render may
/// run at most this many template instructions. Real templates use about 100 plus 70 per
/// message (102 messages: Qwen3 7,413, Qwen2.5 3,235); three nested `range(10000)` loops
/// would need 10^12.
pub const RENDER_FUEL: u64 = 1_000_000;
/// Most bytes a render may write, and most bytes all its `{{ … }}` expressions may produce
/// together (including text captured by macros and `set` blocks).
pub const MAX_OUTPUT_BYTES: usize = 16 << 20;
/// Most nested template calls (macros, loops, ifs) a render may make.
pub const RECURSION_LIMIT: usize = 100;
/// Longest template source we compile (real ones are under 20 KB).
pub const MAX_SOURCE_BYTES: usize = 1 << 20;

/// Built-in templates, by name.
const BUILTINS: &[(&str, &str)] = &[
    ("chatml", include_str!("templates/chatml.jinja")),
    ("gemma", include_str!("templates/gemma.jinja")),
];

/// Strings that end a turn in common templates.
const TURN_TERMINATORS: &[&str] = &[
    "<|im_end|>",
    "<end_of_turn>",
    "<|eot_id|>",
    "<|end|>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "<|END_OF_TURN_TOKEN|>",
    "<｜end▁of▁sentence｜>",
];

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The text of the message.
    pub content: String,
}

impl ChatMessage {
    /// A message with any role.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        ChatMessage { role: role.into(), content: content.into() }
    }
    /// A system message.
    pub fn system(content: impl Into<String>) -> Self {
        Self::new("system", content)
    }
    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Self::new("user", content)
    }
    /// An assistant message.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new("assistant", content)
    }
}

/// Why a chat template could not be loaded or rendered.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// The template text does not parse.
    #[error("chat template `{name}` does not parse{}: {msg}", at_line(*.line, .source_line))]
    Parse {
        /// Template name (`gguf` for the one from metadata, or the built-in name).
        name: String,
        /// 1-based line of the error, when known.
        line: Option<usize>,
        /// The text of that line.
        source_line: String,
        /// What the parser said.
        msg: String,
    },
    /// Rendering failed (including `raise_exception` in the template).
    #[error("chat template `{name}` failed to render{}: {msg}", at_line(*.line, .source_line))]
    Render {
        /// Template name.
        name: String,
        /// 1-based line of the error, when known.
        line: Option<usize>,
        /// The text of that line.
        source_line: String,
        /// What went wrong.
        msg: String,
    },
    /// No built-in template has that name.
    #[error("no built-in chat template named `{0}`; available: chatml, gemma")]
    UnknownBuiltin(String),
    /// The model has no template and no fallback was named.
    #[error("the model has no chat template (tokenizer.chat_template) and no fallback was given; name one in models.toml (chatml or gemma)")]
    Missing,
    /// A render ran out of fuel (too many instructions) or produced too much text.
    #[error("chat template `{name}` {what}; the template is broken or hostile (a chat template is code from the model file)")]
    Limit {
        /// Template name.
        name: String,
        /// Which limit, in words.
        what: String,
    },
    /// `tokenizer.chat_template` is not a string.
    #[error("GGUF metadata `tokenizer.chat_template` is not a string")]
    BadMetadata,
}

fn at_line(line: Option<usize>, source_line: &str) -> String {
    match line {
        Some(l) if !source_line.is_empty() => format!(" at line {l} (`{source_line}`)"),
        Some(l) => format!(" at line {l}"),
        None => String::new(),
    }
}

/// A chat template ready to render conversations into a prompt.
#[derive(Debug)]
pub struct ChatTemplate {
    name: String,
    source: String,
    env: Environment<'static>,
    bos_token: String,
    eos_token: String,
    extra: BTreeMap<String, Value>,
}

impl ChatTemplate {
    /// The template in the GGUF metadata, else the built-in named `fallback_name`.
    pub fn from_gguf(
        content: &Content,
        fallback_name: Option<&str>,
    ) -> Result<ChatTemplate, TemplateError> {
        let md = Metadata::new(&content.metadata);
        let bos = md.token_text(keys::BOS_ID).unwrap_or_default();
        let eos = md.token_text(keys::EOS_ID).unwrap_or_default();
        match md.str(keys::CHAT_TEMPLATE).map_err(|_| TemplateError::BadMetadata)? {
            Some(src) => Self::from_source("gguf", src, bos, eos),
            None => match fallback_name {
                Some(name) => Ok(Self::builtin(name)?.with_tokens(bos, eos)),
                None => Err(TemplateError::Missing),
            },
        }
    }

    /// A built-in template (`chatml` or `gemma`).
    pub fn builtin(name: &str) -> Result<ChatTemplate, TemplateError> {
        let src = BUILTINS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, s)| *s)
            .ok_or_else(|| TemplateError::UnknownBuiltin(name.to_string()))?;
        Self::from_source(name, src, "", "")
    }

    /// Names of the built-in templates.
    pub fn builtin_names() -> Vec<&'static str> {
        BUILTINS.iter().map(|(n, _)| *n).collect()
    }

    /// Compile a template from its Jinja source; `bos_token`/`eos_token` are the texts the
    /// template sees under those names.
    pub fn from_source(
        name: &str,
        source: &str,
        bos_token: &str,
        eos_token: &str,
    ) -> Result<ChatTemplate, TemplateError> {
        if source.len() > MAX_SOURCE_BYTES {
            return Err(TemplateError::Limit {
                name: name.to_string(),
                what: format!(
                    "is {} bytes long, more than the {MAX_SOURCE_BYTES} allowed",
                    source.len()
                ),
            });
        }
        let mut env = Environment::new();
        env.set_fuel(Some(RENDER_FUEL));
        env.set_recursion_limit(RECURSION_LIMIT);
        env.set_formatter(count_output);
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", raise_exception);
        env.add_function("strftime_now", strftime_now);
        env.add_filter("tojson", tojson);
        env.add_template_owned(TEMPLATE_NAME, source.to_string())
            .map_err(|e| convert(&e, name, source, true))?;
        Ok(ChatTemplate {
            name: name.to_string(),
            source: source.to_string(),
            env,
            bos_token: bos_token.to_string(),
            eos_token: eos_token.to_string(),
            extra: BTreeMap::new(),
        })
    }

    /// Set the texts the template sees as `bos_token` and `eos_token`.
    pub fn with_tokens(mut self, bos_token: &str, eos_token: &str) -> Self {
        self.bos_token = bos_token.to_string();
        self.eos_token = eos_token.to_string();
        self
    }

    /// Pass an extra variable to the template (e.g. `enable_thinking = false` for Qwen3).
    pub fn with_var(mut self, name: &str, value: impl Serialize) -> Self {
        self.extra.insert(name.to_string(), Value::from_serialize(value));
        self
    }

    /// The template's name (`gguf` when it came from the model file).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The Jinja source.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Render a conversation into prompt text; `add_generation_prompt` opens the assistant's
    /// turn at the end.
    pub fn render(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String, TemplateError> {
        let mut ctx: BTreeMap<String, Value> = self.extra.clone();
        ctx.insert("messages".into(), Value::from_serialize(messages));
        ctx.insert("add_generation_prompt".into(), Value::from(add_generation_prompt));
        ctx.insert("bos_token".into(), Value::from(self.bos_token.as_str()));
        ctx.insert("eos_token".into(), Value::from(self.eos_token.as_str()));
        let tmpl = self
            .env
            .get_template(TEMPLATE_NAME)
            .map_err(|e| convert(&e, &self.name, &self.source, false))?;
        let mut out = CappedWriter { buf: Vec::new(), over: false };
        let result =
            tmpl.render_captured_to(Value::from(ctx), &mut out).map(|c| c.state().fuel_levels());
        match result {
            Ok(_) => String::from_utf8(out.buf).map_err(|_| TemplateError::Render {
                name: self.name.clone(),
                line: None,
                source_line: String::new(),
                msg: "output is not UTF-8".into(),
            }),
            Err(e) => Err(self
                .limit_error(&e, out.over)
                .unwrap_or_else(|| convert(&e, &self.name, &self.source, false))),
        }
    }

    /// Instructions a render of `messages` uses (for measurements and tests).
    pub fn render_fuel(&self, messages: &[ChatMessage]) -> Result<u64, TemplateError> {
        let mut ctx: BTreeMap<String, Value> = self.extra.clone();
        ctx.insert("messages".into(), Value::from_serialize(messages));
        ctx.insert("add_generation_prompt".into(), Value::from(true));
        let tmpl = self
            .env
            .get_template(TEMPLATE_NAME)
            .map_err(|e| convert(&e, &self.name, &self.source, false))?;
        let captured = tmpl
            .render_captured_to(Value::from(ctx), std::io::sink())
            .map_err(|e| convert(&e, &self.name, &self.source, false))?;
        Ok(captured.state().fuel_levels().map(|(used, _)| used).unwrap_or(0))
    }

    /// The error for a render stopped by one of our limits, if that is what stopped it.
    fn limit_error(&self, e: &Error, writer_over: bool) -> Option<TemplateError> {
        let what = if e.kind() == ErrorKind::OutOfFuel {
            format!("ran more than {RENDER_FUEL} instructions (a runaway loop?)")
        } else if writer_over || e.detail().is_some_and(|d| d.contains(OUTPUT_LIMIT_MSG)) {
            format!("produced more than {MAX_OUTPUT_BYTES} bytes")
        } else if e.detail().is_some_and(|d| d.contains("recursion limit")) {
            format!("nested calls deeper than {RECURSION_LIMIT}")
        } else {
            return None;
        };
        Some(TemplateError::Limit { name: self.name.clone(), what })
    }

    /// Turn terminators written in the template (e.g. `<|im_end|>`, `<end_of_turn>`), plus
    /// the eos text when the template writes `eos_token`.
    pub fn stop_strings(&self) -> Vec<String> {
        let mut out: Vec<String> = TURN_TERMINATORS
            .iter()
            .filter(|t| self.source.contains(*t))
            .map(|t| t.to_string())
            .collect();
        if !self.eos_token.is_empty()
            && self.source.contains("eos_token")
            && !out.contains(&self.eos_token)
        {
            out.push(self.eos_token.clone());
        }
        out
    }

    /// The ids of the stop strings that are single tokens of `tokenizer`, together with the
    /// tokenizer's own end-of-turn ids. Sorted, without duplicates.
    pub fn stop_token_ids(&self, tokenizer: &Tokenizer) -> Vec<u32> {
        let mut ids: Vec<u32> =
            self.stop_strings().iter().filter_map(|s| tokenizer.token_id(s)).collect();
        ids.extend_from_slice(tokenizer.eot_ids());
        ids.sort_unstable();
        ids.dedup();
        ids
    }
}

fn convert(e: &Error, name: &str, source: &str, parse: bool) -> TemplateError {
    let line = e.line();
    let source_line = line
        .and_then(|l| source.lines().nth(l.saturating_sub(1)))
        .map(|s| s.trim().chars().take(120).collect())
        .unwrap_or_default();
    let mut msg = match e.detail() {
        Some(d) => format!("{}: {d}", e.kind()),
        None => e.kind().to_string(),
    };
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let _ = write!(msg, ": {c}");
        cause = c.source();
    }
    let name = name.to_string();
    if parse {
        TemplateError::Parse { name, line, source_line, msg }
    } else {
        TemplateError::Render { name, line, source_line, msg }
    }
}

const OUTPUT_LIMIT_MSG: &str = "template output limit reached";

/// Bytes the `{{ … }}` expressions of one render have produced so far.
#[derive(Debug, Default)]
struct OutputCount(std::sync::atomic::AtomicUsize);

impl minijinja::value::Object for OutputCount {}

/// The formatter of every `{{ … }}`: counts the bytes of all rendered values, captured
/// ones included, and stops the render past [`MAX_OUTPUT_BYTES`].
fn count_output(
    out: &mut minijinja::Output,
    state: &minijinja::State,
    value: &Value,
) -> Result<(), Error> {
    let len = match value.as_str() {
        Some(s) => s.len(),
        None => value.to_string().len(),
    };
    let count = state.get_or_set_temp_object("upward_output_count", OutputCount::default);
    let total = count.0.fetch_add(len, std::sync::atomic::Ordering::Relaxed).saturating_add(len);
    if total > MAX_OUTPUT_BYTES {
        return Err(Error::new(ErrorKind::InvalidOperation, OUTPUT_LIMIT_MSG));
    }
    minijinja::escape_formatter(out, state, value)
}

/// The render's output, refused past [`MAX_OUTPUT_BYTES`].
struct CappedWriter {
    buf: Vec<u8>,
    over: bool,
}

impl std::io::Write for CappedWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.buf.len() + data.len() > MAX_OUTPUT_BYTES {
            self.over = true;
            return Err(std::io::Error::other(OUTPUT_LIMIT_MSG));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `raise_exception(message)`: templates call it to reject a conversation.
fn raise_exception(msg: String) -> Result<Value, Error> {
    Err(Error::new(ErrorKind::InvalidOperation, format!("template raised: {msg}")))
}

/// `strftime_now(format)`: the local time, formatted like Python's `strftime`.
fn strftime_now(fmt: String) -> Result<Value, Error> {
    let mut s = String::new();
    write!(s, "{}", chrono::Local::now().format(&fmt)).map_err(|_| {
        Error::new(ErrorKind::InvalidOperation, format!("bad strftime format {fmt:?}"))
    })?;
    Ok(Value::from(s))
}

/// `tojson(indent=None)`: JSON like Python's `json.dumps(ensure_ascii=False)`, without HTML
/// escaping, keys in their original order.
fn tojson(value: &Value, indent: Option<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    let indent_kw: Option<Value> = kwargs.get("indent")?;
    let _: Option<bool> = kwargs.get("ensure_ascii")?;
    let sort_keys: Option<bool> = kwargs.get("sort_keys")?;
    kwargs.assert_all_used()?;
    let indent = match indent.or(indent_kw) {
        None => None,
        Some(v) if v.is_none() || v.is_undefined() => None,
        Some(v) => match v.as_usize() {
            Some(n) => Some(" ".repeat(n)),
            None => Some(v.as_str().map(str::to_string).ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidOperation,
                    "tojson: indent must be a number or a string",
                )
            })?),
        },
    };
    let mut out = String::new();
    write_json(&mut out, value, indent.as_deref(), 0, sort_keys.unwrap_or(false))?;
    Ok(Value::from_safe_string(out))
}

fn newline(out: &mut String, indent: &str, depth: usize) {
    out.push('\n');
    for _ in 0..depth {
        out.push_str(indent);
    }
}

fn write_json(
    out: &mut String,
    v: &Value,
    indent: Option<&str>,
    depth: usize,
    sort: bool,
) -> Result<(), Error> {
    let item_sep = if indent.is_some() { "," } else { ", " };
    match v.kind() {
        ValueKind::Undefined | ValueKind::None => out.push_str("null"),
        ValueKind::Bool => out.push_str(if v.is_true() { "true" } else { "false" }),
        ValueKind::Number => {
            if let Some(i) = v.as_i64().filter(|_| v.is_integer()) {
                let _ = write!(out, "{i}");
            } else {
                let f = f64::try_from(v.clone()).unwrap_or(f64::NAN);
                if !f.is_finite() {
                    out.push_str(if f.is_nan() {
                        "NaN"
                    } else if f > 0.0 {
                        "Infinity"
                    } else {
                        "-Infinity"
                    });
                } else if f.fract() == 0.0 && f.abs() < 1e16 {
                    let _ = write!(out, "{f:.1}");
                } else {
                    let _ = write!(out, "{f}");
                }
            }
        }
        ValueKind::String => {
            out.push_str(
                &serde_json::to_string(v.as_str().unwrap_or_default()).unwrap_or_default(),
            );
        }
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<Value> = v.try_iter()?.collect();
            if items.is_empty() {
                out.push_str("[]");
                return Ok(());
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                if let Some(ind) = indent {
                    newline(out, ind, depth + 1);
                }
                write_json(out, item, indent, depth + 1, sort)?;
            }
            if let Some(ind) = indent {
                newline(out, ind, depth);
            }
            out.push(']');
        }
        ValueKind::Map => {
            let mut keys: Vec<Value> = v.try_iter()?.collect();
            if sort {
                keys.sort();
            }
            if keys.is_empty() {
                out.push_str("{}");
                return Ok(());
            }
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                if let Some(ind) = indent {
                    newline(out, ind, depth + 1);
                }
                let key = match k.as_str() {
                    Some(s) => s.to_string(),
                    None => k.to_string(),
                };
                out.push_str(&serde_json::to_string(&key).unwrap_or_default());
                out.push_str(": ");
                write_json(out, &v.get_item(k)?, indent, depth + 1, sort)?;
            }
            if let Some(ind) = indent {
                newline(out, ind, depth);
            }
            out.push('}');
        }
        _ => out.push_str(&serde_json::to_string(&v.to_string()).unwrap_or_default()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! Expected strings were rendered with Python jinja2 3.1 configured as transformers does
    //! (trim_blocks, lstrip_blocks, json.dumps-style tojson).
    use super::*;

    const QWEN3: &str = include_str!("../../tests/data/tokenizer/templates/qwen3.jinja");
    const QWEN25: &str = include_str!("../../tests/data/tokenizer/templates/qwen2.5.jinja");

    fn convo() -> Vec<ChatMessage> {
        vec![
            ChatMessage::system("S"),
            ChatMessage::user("Q1"),
            ChatMessage::assistant("<think>\nR1\n</think>\n\nA1"),
            ChatMessage::user("Q2"),
        ]
    }

    #[test]
    fn qwen3_strips_past_thinking_and_honours_enable_thinking() {
        let t = ChatTemplate::from_source("qwen3", QWEN3, "", "<|im_end|>").unwrap();
        let base = "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ1<|im_end|>\n<|im_start|>assistant\nA1<|im_end|>\n<|im_start|>user\nQ2<|im_end|>\n<|im_start|>assistant\n";
        assert_eq!(t.render(&convo(), true).unwrap(), base);
        let t = t.with_var("enable_thinking", false);
        assert_eq!(t.render(&convo(), true).unwrap(), format!("{base}<think>\n\n</think>\n\n"));
        let last = [ChatMessage::user("Q1"), ChatMessage::assistant("<think>R</think>A")];
        assert_eq!(
            t.render(&last, false).unwrap(),
            "<|im_start|>user\nQ1<|im_end|>\n<|im_start|>assistant\n<think>\nR\n</think>\n\nA<|im_end|>\n"
        );
        assert_eq!(t.stop_strings(), vec!["<|im_end|>".to_string()]);
    }

    #[test]
    fn qwen25_adds_its_default_system_prompt() {
        let t = ChatTemplate::from_source("qwen2.5", QWEN25, "", "<|im_end|>").unwrap();
        assert_eq!(
            t.render(&convo()[1..], true).unwrap(),
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n<|im_start|>user\nQ1<|im_end|>\n<|im_start|>assistant\n<think>\nR1\n</think>\n\nA1<|im_end|>\n<|im_start|>user\nQ2<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn builtins_render_chatml_and_gemma() {
        let t = ChatTemplate::builtin("chatml").unwrap();
        assert_eq!(
            t.render(&convo()[..2], true).unwrap(),
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ1<|im_end|>\n<|im_start|>assistant\n"
        );
        let g = ChatTemplate::builtin("gemma").unwrap();
        let msgs =
            [ChatMessage::system("Sys"), ChatMessage::user(" Hi "), ChatMessage::assistant("Yes?")];
        assert_eq!(
            g.render(&msgs, true).unwrap(),
            "<start_of_turn>user\nSys\n\nHi<end_of_turn>\n<start_of_turn>model\nYes?<end_of_turn>\n<start_of_turn>model\n"
        );
        assert_eq!(g.stop_strings(), vec!["<end_of_turn>".to_string()]);
        assert!(matches!(ChatTemplate::builtin("vicuna"), Err(TemplateError::UnknownBuiltin(_))));
    }

    #[test]
    fn raise_exception_is_a_render_error_with_its_line() {
        let g = ChatTemplate::builtin("gemma").unwrap();
        let err = g.render(&[ChatMessage::assistant("first")], false).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, TemplateError::Render { line: Some(11), .. }), "{text}");
        assert!(text.contains("roles must alternate") && text.contains("line 11"), "{text}");
    }

    #[test]
    fn parse_errors_name_the_line() {
        let err = ChatTemplate::from_source("broken", "ok\n{% if %}\n", "", "").unwrap_err();
        assert!(matches!(err, TemplateError::Parse { line: Some(2), .. }), "{err}");
        assert!(err.to_string().contains("`{% if %}`"), "{err}");
    }

    #[test]
    fn tojson_matches_python_json_dumps_without_html_escaping() {
        let src = r#"{{ {"b": 1, "a": [1, "x<y", none, true, 2.0]} | tojson }}|{{ {"k": [1, {}], "e": []} | tojson(indent=2) }}"#;
        let t = ChatTemplate::from_source("json", src, "", "").unwrap();
        assert_eq!(
            t.render(&[], false).unwrap(),
            "{\"b\": 1, \"a\": [1, \"x<y\", null, true, 2.0]}|{\n  \"k\": [\n    1,\n    {}\n  ],\n  \"e\": []\n}"
        );
    }

    #[test]
    fn loop_controls_work_as_in_transformers() {
        let src = "{% for m in messages %}{% if loop.index > 2 %}{% break %}{% endif %}{% if m.role == 'system' %}{% continue %}{% endif %}{{ m.content }};{% endfor %}";
        let t = ChatTemplate::from_source("loops", src, "", "").unwrap();
        assert_eq!(t.render(&convo(), false).unwrap(), "Q1;");
    }

    #[test]
    fn helpers_and_variables_are_available() {
        let src = "{{ bos_token }}{{ strftime_now('%Y') | length }}{{ 'a,b'.split(',') | join('+') }}{{ '  x '.strip() }}{{ eos_token }}";
        let t = ChatTemplate::from_source("h", src, "<s>", "</s>").unwrap();
        assert_eq!(t.render(&[], false).unwrap(), "<s>4a+bx</s>");
    }

    fn limit(src: &str) -> String {
        let t = ChatTemplate::from_source("hostile", src, "", "").unwrap();
        match t.render(&convo(), true) {
            Err(e @ TemplateError::Limit { .. }) => e.to_string(),
            other => panic!("expected a limit error, got {other:?}"),
        }
    }

    #[test]
    fn runaway_loops_run_out_of_fuel() {
        let src = "{% for a in range(10000) %}{% for b in range(10000) %}{% for c in range(10000) %}{% endfor %}{% endfor %}{% endfor %}";
        assert!(limit(src).contains("instructions"));
    }

    #[test]
    fn huge_output_is_cut_off_at_the_limit() {
        // About 1 GB of expression output, and about 1 GB of literal text.
        let expr = "{% for i in range(100000) %}{{ 'x' * 10000 }}{% endfor %}";
        assert!(limit(expr).contains("bytes"), "{}", limit(expr));
        let literal = format!("{{% for i in range(100000) %}}{}{{% endfor %}}", "y".repeat(10000));
        assert!(limit(&literal).contains("bytes"));
        // Text captured by a macro counts too, before it reaches the output.
        let captured = "{% macro m() %}{% for i in range(100000) %}{{ 'z' * 10000 }}{% endfor %}{% endmacro %}{% set x = m() %}";
        assert!(limit(captured).contains("bytes"));
    }

    #[test]
    fn unbounded_recursion_is_a_limit_error() {
        let src = "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}";
        assert!(limit(src).contains("nested"), "{}", limit(src));
    }

    #[test]
    fn real_templates_stay_far_below_the_fuel() {
        let mut msgs = vec![ChatMessage::system("S")];
        for i in 0..50 {
            msgs.push(ChatMessage::user(format!("question {i}")));
            msgs.push(ChatMessage::assistant(format!("<think>r</think>answer {i}")));
        }
        msgs.push(ChatMessage::user("last"));
        for (name, src) in [("qwen3", QWEN3), ("qwen2.5", QWEN25)] {
            let t = ChatTemplate::from_source(name, src, "", "<|im_end|>").unwrap();
            let used = t.render_fuel(&msgs).unwrap();
            assert!(used > 0 && used * 100 < RENDER_FUEL, "{name}: {used} instructions");
            t.render(&msgs, true).unwrap();
        }
    }

    #[test]
    fn an_oversized_template_is_refused() {
        let src = "a".repeat(MAX_SOURCE_BYTES + 1);
        let err = ChatTemplate::from_source("big", &src, "", "").unwrap_err();
        assert!(matches!(err, TemplateError::Limit { .. }), "{err}");
    }
}
