//! Constrained choice on a server: the request that makes the server answer with one of
//! the candidates (its guided decoding), and reading the answer back.

use crate::catalogue::Guided;
use crate::gguf::chat_template::ChatMessage;
use serde_json::{json, Value};

/// What the server is: detected from `/v1/models` (`owned_by`), for `guided = "auto"`.
pub(crate) fn detect(owned_by: Option<&str>) -> Guided {
    match owned_by.map(str::to_ascii_lowercase).as_deref() {
        Some("vllm") => Guided::Vllm,
        // llama.cpp's server says `llamacpp`; llama-cpp-python's says `me`.
        Some("llamacpp") | Some("me") => Guided::LlamaCpp,
        Some("library") | Some("ollama") => Guided::Ollama,
        _ => Guided::JsonSchema,
    }
}

/// The JSON the JSON-schema modes ask for: `{"answer": <one of choices>}`.
fn schema(choices: &[&str]) -> Value {
    json!({
        "type": "object",
        "properties": {"answer": {"type": "string", "enum": choices}},
        "required": ["answer"],
        "additionalProperties": false,
    })
}

/// A GBNF grammar whose only sentences are `choices`.
pub(crate) fn grammar(choices: &[&str]) -> String {
    let alts: Vec<String> = choices
        .iter()
        .map(|c| {
            let mut s = String::from("\"");
            for ch in c.chars() {
                match ch {
                    '"' => s.push_str("\\\""),
                    '\\' => s.push_str("\\\\"),
                    '\n' => s.push_str("\\n"),
                    c => s.push(c),
                }
            }
            s.push('"');
            s
        })
        .collect();
    format!("root ::= {}", alts.join(" | "))
}

/// The messages for a choice: the conversation, and for the JSON modes an instruction
/// to answer in that form.
pub(crate) fn messages(mode: Guided, messages: &[ChatMessage], choices: &[&str]) -> Vec<Value> {
    let mut out: Vec<Value> =
        messages.iter().map(|m| json!({"role": m.role, "content": m.content})).collect();
    if matches!(mode, Guided::Ollama | Guided::JsonSchema | Guided::None) {
        let list = choices.iter().map(|c| format!("\"{c}\"")).collect::<Vec<_>>().join(", ");
        let ask =
            format!("Answer with JSON only, exactly {{\"answer\": X}} where X is one of {list}.");
        match out.last_mut() {
            Some(last) if last["role"] == "user" => {
                let text = format!("{}\n\n{ask}", last["content"].as_str().unwrap_or(""));
                last["content"] = Value::String(text);
            }
            _ => out.push(json!({"role": "user", "content": ask})),
        }
    }
    out
}

/// The fields that constrain the answer in `mode`.
pub(crate) fn constraint(mode: Guided, choices: &[&str]) -> Option<(&'static str, Value)> {
    match mode {
        Guided::Vllm => Some(("guided_choice", json!(choices))),
        Guided::LlamaCpp => Some(("grammar", Value::String(grammar(choices)))),
        Guided::Ollama | Guided::JsonSchema => Some((
            "response_format",
            json!({
                "type": "json_schema",
                "json_schema": {"name": "choice", "strict": true, "schema": schema(choices)},
            }),
        )),
        Guided::None | Guided::Auto => None,
    }
}

/// The index of the choice `text` names exactly: the text itself, or a JSON object's
/// `answer`.
pub(crate) fn exact(text: &str, choices: &[&str]) -> Option<usize> {
    let t = text.trim();
    if let Some(i) = choices.iter().position(|c| *c == t) {
        return Some(i);
    }
    let v: Value = serde_json::from_str(t).ok()?;
    let a = v.get("answer")?.as_str()?.trim();
    choices.iter().position(|c| *c == a)
}

/// A lenient reading for a server without guided decoding: a JSON object anywhere in
/// the text, quotes and case ignored, or the one choice the text mentions as a word.
pub(crate) fn lenient(text: &str, choices: &[&str]) -> Option<usize> {
    if let Some(i) = exact(text, choices) {
        return Some(i);
    }
    if let (Some(a), Some(b)) = (text.find('{'), text.rfind('}')) {
        if a < b {
            if let Some(i) = exact(&text[a..=b], choices) {
                return Some(i);
            }
        }
    }
    let norm = |s: &str| s.trim().trim_matches(|c: char| !c.is_alphanumeric()).to_lowercase();
    let t = norm(text);
    if let Some(i) = choices.iter().position(|c| norm(c) == t) {
        return Some(i);
    }
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric() && c != '_' && c != '-')
        .map(str::to_lowercase)
        .collect();
    let named: Vec<usize> =
        (0..choices.len()).filter(|&i| words.iter().any(|w| *w == norm(choices[i]))).collect();
    match named[..] {
        [one] => Some(one),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const C: [&str; 3] = ["met", "partial", "missing"];

    #[test]
    fn answers_are_read_strictly_then_leniently() {
        assert_eq!(exact(" partial\n", &C), Some(1));
        assert_eq!(exact("{\"answer\": \"missing\"}", &C), Some(2));
        assert_eq!(exact("Partial", &C), None);
        assert_eq!(lenient("Partial.", &C), Some(1));
        assert_eq!(lenient("Sure! {\"answer\": \"met\"} hope that helps", &C), Some(0));
        assert_eq!(lenient("I think it is missing here", &C), Some(2));
        assert_eq!(lenient("met or missing", &C), None);
        assert_eq!(lenient("no idea", &C), None);
    }

    #[test]
    fn grammar_and_detection() {
        assert_eq!(grammar(&["a\"b", "c"]), "root ::= \"a\\\"b\" | \"c\"");
        assert_eq!(detect(Some("vllm")), Guided::Vllm);
        assert_eq!(detect(Some("llamacpp")), Guided::LlamaCpp);
        assert_eq!(detect(None), Guided::JsonSchema);
        let m = messages(Guided::None, &[ChatMessage::new("user", "Judge.")], &C);
        assert!(m[0]["content"].as_str().unwrap().contains("\"partial\""));
        let m = messages(Guided::Vllm, &[ChatMessage::new("user", "Judge.")], &C);
        assert_eq!(m[0]["content"], "Judge.");
    }
}
