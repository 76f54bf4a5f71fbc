//! What reaches the terminal: text from drafts, scripts, saved sessions and the model is
//! data, so control characters in it are shown, never obeyed. `ESC[2J` would otherwise
//! clear the screen, a carriage return could overwrite a line, and a bidi override could
//! reorder what the reader sees.
//!
//! [`visible`] is the one filter every text printer applies to such text: C0 controls
//! (except newline and tab) and DEL become caret notation (`^[`, `^G`, `^M`, `^?`); C1
//! controls and the bidi embedding, override and isolate characters become `<U+XXXX>`.
//! A CR directly before LF is dropped (Windows line ends). JSON output needs no filter:
//! serde escapes every control character.

use std::borrow::Cow;

/// Whether `c` must not reach a terminal as is.
pub fn is_control(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{8}' | '\u{b}'..='\u{1f}' | '\u{7f}'..='\u{9f}'
        // Arabic letter mark, LRM/RLM, embeddings and overrides, isolates.
        | '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `s` with every control character made visible (see the module docs); borrowed when
/// there is none.
pub fn visible(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_control) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\r' && chars.peek() == Some(&'\n') {
            continue;
        }
        if !is_control(c) {
            out.push(c);
        } else if (c as u32) < 0x20 {
            out.push('^');
            out.push(char::from(b'@' + c as u8));
        } else if c == '\u{7f}' {
            out.push_str("^?");
        } else {
            out.push_str(&format!("<U+{:04X}>", c as u32));
        }
    }
    Cow::Owned(out)
}

/// Applies [`visible`] to every string inside a JSON value (keys included), for printers
/// that render a structure field by field.
pub fn visible_json(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::String(s) => {
            if let Cow::Owned(o) = visible(s) {
                *s = o;
            }
        }
        Value::Array(a) => a.iter_mut().for_each(visible_json),
        Value::Object(m) => {
            let old = std::mem::take(m);
            for (k, mut x) in old {
                visible_json(&mut x);
                m.insert(visible(&k).into_owned(), x);
            }
        }
        _ => {}
    }
}

/// A copy of `t` whose strings are all [`visible`] (through its JSON form); `t` itself
/// when the round trip fails.
pub fn visible_copy<T>(t: &T) -> T
where
    T: serde::Serialize + serde::de::DeserializeOwned + Clone,
{
    let Ok(mut v) = serde_json::to_value(t) else { return t.clone() };
    visible_json(&mut v);
    serde_json::from_value(v).unwrap_or_else(|_| t.clone())
}

/// An error as one line for the terminal: its causes joined by `: ` (as anyhow's `{:#}`),
/// a cause already contained in the text before it left out (errors that repeat their
/// source), any captured backtrace a library appended dropped (candle does when
/// `RUST_BACKTRACE` is set), and control characters made visible.
pub fn error_text(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = String::new();
    let mut cause = Some(err);
    while let Some(e) = cause {
        let msg = without_backtrace(&e.to_string());
        let msg = msg.trim();
        if !msg.is_empty() && !out.contains(msg) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(msg);
        }
        cause = e.source();
    }
    visible(&out).into_owned()
}

/// The lines of `s` before a backtrace (`stack backtrace:` or a `0: ` frame line).
fn without_backtrace(s: &str) -> String {
    let mut keep = Vec::new();
    for line in s.lines() {
        let t = line.trim_start();
        if t.starts_with("stack backtrace:")
            || t.starts_with("Stack backtrace:")
            || t.starts_with("0: ")
        {
            break;
        }
        keep.push(line);
    }
    keep.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_become_visible_and_text_stays() {
        assert!(matches!(visible("王总，您好\n\tok"), Cow::Borrowed(_)));
        assert_eq!(visible("a\x1b[2Jb\x07c\rd"), "a^[[2Jb^Gc^Md");
        assert_eq!(visible("line\r\nnext\x7f"), "line\nnext^?");
        assert_eq!(visible("x\u{9b}31m\u{202e}cba"), "x<U+009B>31m<U+202E>cba");
        assert_eq!(visible("\u{0}"), "^@");
        let mut v = serde_json::json!({"a\u{7}": ["\x1b]0;t\x07", 3], "b": "ok"});
        visible_json(&mut v);
        assert_eq!(v, serde_json::json!({"a^G": ["^[]0;t^G", 3], "b": "ok"}));
    }

    #[derive(Debug)]
    struct E(&'static str, Option<Box<E>>);
    impl std::fmt::Display for E {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    impl std::error::Error for E {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|e| e as _)
        }
    }

    #[test]
    fn error_text_has_no_repeats_or_backtraces() {
        let inner = E("No such file or directory (os error 2)", None);
        let e =
            E("cannot read x.txt: No such file or directory (os error 2)", Some(Box::new(inner)));
        assert_eq!(error_text(&e), "cannot read x.txt: No such file or directory (os error 2)");
        let bt = E("bad shape\n   0: candle_core::error::Error::bt\n      at src/x.rs:1", None);
        let e = E("cannot load model m", Some(Box::new(bt)));
        assert_eq!(error_text(&e), "cannot load model m: bad shape");
    }
}
