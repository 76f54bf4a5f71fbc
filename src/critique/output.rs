//! Checks on text a model wrote for the critique: it is rejected (and the rules' text
//! used instead) when it is broken (U+FFFD from a cut UTF-8 sequence), loops, or echoes
//! the prompt it was given.

/// Why model text was rejected.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Rejected {
    /// It holds U+FFFD (a broken character).
    Broken,
    /// It repeats itself ("订协订订协…").
    Loops,
    /// It copies a stretch of the prompt.
    Echo,
}

/// Checks model `text` against the `prompt` it answered (the system prompt and the parts
/// of the user prompt that are frame, not the draft). `draft` is the user's text: a
/// rewrite may repeat it, and a draft that is itself repetitive is no sign of a loop.
pub(crate) fn check(text: &str, prompt: &[&str], draft: &str) -> Result<(), Rejected> {
    if text.contains('\u{FFFD}') {
        return Err(Rejected::Broken);
    }
    if loops(text) && !loops(draft) {
        return Err(Rejected::Loops);
    }
    // Placeholders ("[补充：…]") are asked for by the prompt: copying them is fine.
    let outside: String = strip_placeholders(text);
    if prompt.iter().any(|p| echoes(&outside, p, draft)) {
        return Err(Rejected::Echo);
    }
    Ok(())
}

/// Whether `text` loops: one short unit repeated back to back, or far too few distinct
/// character trigrams for its length.
pub(crate) fn loops(text: &str) -> bool {
    let cs: Vec<char> = text.chars().filter(|c| !c.is_whitespace()).collect();
    // A unit of 1–12 characters repeated 4 times in a row (or 6 for single characters).
    for unit in 1..=12usize {
        let times = if unit == 1 { 6 } else { 4 };
        let span = unit * times;
        if cs.len() < span {
            break;
        }
        for start in 0..=cs.len() - span {
            let first = &cs[start..start + unit];
            if first.iter().all(|c| c.is_ascii_punctuation() || "。，、…！？".contains(*c)) {
                continue;
            }
            if (1..times).all(|k| &cs[start + k * unit..start + (k + 1) * unit] == first) {
                return true;
            }
        }
    }
    if cs.len() >= 60 {
        let tri: std::collections::HashSet<&[char]> = cs.windows(3).collect();
        if (tri.len() as f32) < 0.4 * (cs.len() - 2) as f32 {
            return true;
        }
    }
    false
}

/// `text` with each `[…]` replaced by a line break.
fn strip_placeholders(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut depth = 0usize;
    for c in text.chars() {
        match c {
            '[' => {
                depth += 1;
                out.push('\n');
            }
            ']' if depth > 0 => depth -= 1,
            _ if depth > 0 => {}
            _ => out.push(c),
        }
    }
    out
}

/// Whether `text` copies a stretch of `prompt` that is not also in `draft`: 24 characters
/// of Latin text or 10 of Chinese.
fn echoes(text: &str, prompt: &str, draft: &str) -> bool {
    let cs: Vec<char> = text.chars().collect();
    let cjk = cs.iter().filter(|c| crate::lang::is_cjk(**c)).count();
    let n = if cjk * 3 >= cs.len() { 10 } else { 24 };
    if cs.len() < n {
        return false;
    }
    cs.windows(n).any(|w| {
        if w.contains(&'\n') {
            return false;
        }
        let piece: String = w.iter().collect();
        !piece.trim().is_empty() && prompt.contains(&piece) && !draft.contains(&piece)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loops_and_broken_text() {
        assert!(loops("客户会让我强迳客户知道！订协订订协订订协订订协订订协订订协"));
        assert!(loops("ok ok ok ok ok ok ok"));
        assert!(loops("哈哈哈哈哈哈哈"));
        assert!(!loops("王总，华信银行压价15%，下周五前要答复。我已经和刘处长沟通过两次。"));
        assert!(!loops("……！！"));
        assert_eq!(check("好的\u{FFFD}方案", &[], ""), Err(Rejected::Broken));
        // A draft that repeats itself may be repeated.
        assert_eq!(check("急急急急急急急", &[], "急急急急急急急"), Ok(()));
    }

    #[test]
    fn echo_of_the_prompt() {
        let sys = "You are a senior sales coach: direct, specific and kind. Write two or three sentences in English.";
        assert_eq!(
            check("You are a senior sales coach: direct, specific and kind.", &[sys], ""),
            Err(Rejected::Echo)
        );
        assert_eq!(check("Name the customer and the deadline first.", &[sys], ""), Ok(()));
        let zh = "你是一位资深销售教练，帮销售把写给领导的求助改写得更好。";
        assert_eq!(check("你是一位资深销售教练，帮销售改写", &[zh], ""), Err(Rejected::Echo));
        // Text shared with the draft is not an echo of the prompt.
        let draft = "你是一位资深销售教练，帮我看看这份报价";
        assert_eq!(check("你是一位资深销售教练，帮我看看这份报价", &[zh], draft), Ok(()));
    }
}
