//! Where a reply ends besides its end-of-turn token and its token budget: after the N-th
//! sentence, at a blank line or at a turn marker ("User:"), and which words it must not
//! address the reader with. [`ReplyText`] applies the rules to the text as it streams,
//! holding back only what a later token could still cut.

/// Stop rules for one reply. The default only stops at chat-template turn markers
/// written out as text.
#[derive(Clone, Debug, Default)]
pub struct StopRules {
    /// End the reply after this many sentences.
    pub max_sentences: Option<usize>,
    /// End the reply at a blank line.
    pub blank_line: bool,
    /// End the reply before any of these (case-sensitive), e.g. `"User:"`, `"销售："`.
    pub stop_strings: Vec<String>,
    /// Labels left out when the reply starts with one (the speaker's own name).
    pub strip_prefixes: Vec<String>,
    /// Words the reply never uses to address the reader (e.g. `sir`): where one would be
    /// a form of address (at a sentence start, after a comma, after "yes"), tokens that
    /// spell it are never sampled.
    pub vocatives: Vec<String>,
}

/// Turn markers of common chat templates: a reply that writes one out as text is
/// starting the next turn.
pub const TEMPLATE_MARKERS: &[&str] = &[
    "<|im_start|>",
    "<|im_end|>",
    "<start_of_turn>",
    "<end_of_turn>",
    "<|start_header_id|>",
    "<|eot_id|>",
    "<|endoftext|>",
    "<|user|>",
    "<|assistant|>",
];

/// Why [`ReplyText`] ended a reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cut {
    /// The N-th sentence ended.
    Sentences,
    /// A blank line or a turn marker.
    Marker,
}

/// Words before which a following word is a form of address ("yes, sir").
const INTERJECTIONS: &[&str] = &[
    "yes",
    "no",
    "thanks",
    "thank you",
    "ok",
    "okay",
    "sure",
    "right",
    "well",
    "hi",
    "hello",
    "hey",
    "dear",
    "alright",
    "understood",
    "morning",
    "great",
    "good",
    "好的",
    "是的",
    "谢谢",
    "收到",
    "明白",
    "好",
];

/// Abbreviations whose full stop does not end a sentence.
const ABBREVIATIONS: &[&str] = &[
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "approx", "inc", "ltd", "co", "corp",
    "dept", "est", "fig", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct",
    "nov", "dec",
];

fn is_cjk_stop(c: char) -> bool {
    matches!(c, '。' | '！' | '？')
}

fn is_closer(c: char) -> bool {
    matches!(c, '"' | '\'' | ')' | ']' | '”' | '’' | '」' | '』' | '）' | '】' | '》')
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32, 0x3000..=0x9FFF | 0xF900..=0xFAFF | 0xFF00..=0xFFEF)
}

/// A sentence end found in `s` at or after byte `from`.
enum End {
    /// The sentence ends at this byte (after its punctuation and closing quotes).
    At(usize),
    /// Not decidable until more text comes; scanning resumes here.
    Undecided(usize),
}

/// Finds the next sentence end in `s` from byte `from`. `last` says that no more text
/// follows. Latin `.`, `!`, `?` end a sentence only before white space, a CJK character or
/// the end of the text, and a lone `.` not after an abbreviation or an initial (`e.g.`,
/// `Mr.`, `J.`); decimals (`3.5`) and ellipses (`...`, `…`) never do. A line break after
/// unpunctuated text ends it too (a list item is a sentence).
fn next_end(s: &str, from: usize, last: bool) -> Option<End> {
    let chars: Vec<(usize, char)> = s[from..].char_indices().map(|(i, c)| (i + from, c)).collect();
    let mut k = 0;
    while k < chars.len() {
        let (i, c) = chars[k];
        if c == '\n' {
            let before = s[..i].trim_end_matches([' ', '\t']);
            let text_before = before
                .chars()
                .last()
                .is_some_and(|p| p != '\n' && p != '.' && !is_stop_punct(p) && !is_closer(p));
            if text_before && !s[..i].trim().is_empty() {
                return Some(End::At(i + 1));
            }
            k += 1;
            continue;
        }
        if !(is_cjk_stop(c) || matches!(c, '.' | '!' | '?')) {
            k += 1;
            continue;
        }
        // The run of end punctuation and closing quotes.
        let mut j = k;
        let mut dots = 0;
        let mut others = 0;
        while j < chars.len() && (is_stop_punct(chars[j].1) || chars[j].1 == '.') {
            if chars[j].1 == '.' {
                dots += 1;
            } else {
                others += 1;
            }
            j += 1;
        }
        while j < chars.len() && is_closer(chars[j].1) {
            j += 1;
        }
        let end = chars.get(j).map_or(s.len(), |(p, _)| *p);
        let next = chars.get(j).map(|(_, c)| *c);
        if others == 0 && dots >= 2 {
            k = j; // an ellipsis
            continue;
        }
        let cjk = chars[k..j].iter().any(|(_, c)| is_cjk_stop(*c));
        match next {
            None if !last => return Some(End::Undecided(i)),
            None => return Some(End::At(end)),
            Some(n) if cjk || n.is_whitespace() || is_cjk(n) => {
                if others == 0 && dots == 1 && !cjk && abbreviation_before(&s[..i]) {
                    k = j;
                    continue;
                }
                return Some(End::At(end));
            }
            Some(_) => k = j,
        }
    }
    None
}

fn is_stop_punct(c: char) -> bool {
    is_cjk_stop(c) || matches!(c, '!' | '?')
}

/// True when `s` ends with an abbreviation or a single-letter initial.
fn abbreviation_before(s: &str) -> bool {
    let word: String = s
        .chars()
        .rev()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect::<Vec<_>>()
        .iter()
        .rev()
        .collect();
    if word.len() == 1 {
        return true;
    }
    let w = word.to_ascii_lowercase();
    ABBREVIATIONS.contains(&w.as_str())
}

/// Counts the complete sentences of a finished text (the rule of [`StopRules::max_sentences`]).
pub fn count_sentences(text: &str) -> usize {
    let mut n = 0;
    let mut from = 0;
    while let Some(End::At(e)) = next_end(text, from, true) {
        n += 1;
        from = if e > from { e } else { from + 1 };
        while from < text.len() && !text.is_char_boundary(from) {
            from += 1;
        }
        if from >= text.len() {
            break;
        }
    }
    // An unfinished last sentence counts as one.
    if text[from.min(text.len())..].chars().any(char::is_alphanumeric) {
        n += 1;
    }
    n
}

/// True when the next word of `text` would be a form of address: at the start, after a
/// sentence end or a comma, or after an interjection such as "yes" or "好的".
pub fn vocative_position(text: &str) -> bool {
    let t = text.trim_end();
    let Some(last) = t.chars().last() else { return true };
    if matches!(
        last,
        '.' | '!' | '?' | ',' | ';' | ':' | '。' | '！' | '？' | '，' | '；' | '：' | '、'
    ) {
        return true;
    }
    let lower = t.to_lowercase();
    INTERJECTIONS.iter().any(|w| {
        lower.ends_with(w)
            && lower[..lower.len() - w.len()]
                .chars()
                .last()
                .is_none_or(|c| !c.is_alphanumeric() || (is_cjk(c) && !w.is_ascii()))
    })
}

/// A reply being generated: its text, where it may be cut and how much of it was passed
/// on. Everything passed on is final: cuts only remove text still held back.
#[derive(Debug)]
pub struct ReplyText {
    rules: StopRules,
    markers: Vec<String>,
    raw: String,
    /// Where the reply starts in `raw` (after leading white space and a stripped label).
    start: Option<usize>,
    emitted: usize,
    sentences: usize,
    scan: usize,
    last_end: usize,
    /// The cut, once decided.
    cut: Option<usize>,
}

impl ReplyText {
    /// An empty reply under `rules`; `markers` are extra turn markers (the template's).
    pub fn new(rules: &StopRules, markers: &[String]) -> ReplyText {
        let mut m: Vec<String> = rules.stop_strings.clone();
        m.extend(markers.iter().cloned());
        m.extend(TEMPLATE_MARKERS.iter().map(|s| s.to_string()));
        m.retain(|s| !s.is_empty());
        ReplyText {
            rules: rules.clone(),
            markers: m,
            raw: String::new(),
            start: None,
            emitted: 0,
            sentences: 0,
            scan: 0,
            last_end: 0,
            cut: None,
        }
    }

    /// The reply so far, as the next token would follow it (for [`vocative_position`]).
    pub fn so_far(&self) -> &str {
        &self.raw[self.start.unwrap_or(self.raw.len())..]
    }

    /// Adds decoded text. Returns the text that may be shown now and, when the reply must
    /// end, why. With `hold_partial` (the budget is nearly spent) an unfinished sentence
    /// is held back so that the reply can end at the last complete one.
    pub fn push(&mut self, piece: &str, hold_partial: bool) -> (String, Option<Cut>) {
        self.raw.push_str(piece);
        let Some(start) = self.find_start() else { return (String::new(), None) };
        if let Some(cut) = self.cut {
            return (self.emit_to(cut), None);
        }
        if let Some((cut, why)) = self.find_cut(start, false) {
            self.cut = Some(cut);
            return (self.emit_to(cut), Some(why));
        }
        let mut hold = self.raw.trim_end().len().max(start);
        for m in &self.markers {
            for (i, _) in self.raw[start..].char_indices().rev().take(m.chars().count()) {
                let tail = &self.raw[start + i..];
                if m.starts_with(tail) {
                    hold = hold.min(start + i);
                }
            }
        }
        if hold_partial {
            hold = hold.min(self.last_end.max(start));
        }
        (self.emit_to(hold), None)
    }

    /// Ends the reply: returns what remains to be shown and the whole reply. With
    /// `budget_spent` and at least one complete sentence, an unfinished last sentence
    /// still held back is left out.
    pub fn finish(&mut self, budget_spent: bool) -> (String, String) {
        if self.start.is_none() {
            // Only white space or the beginning of a label came: it is the reply.
            let lead = self.raw.len() - self.raw.trim_start().len();
            (self.start, self.emitted, self.scan, self.last_end) = (Some(lead), lead, lead, lead);
        }
        let start = self.start.unwrap_or(self.raw.len());
        let mut cut = self.raw.len();
        if let Some(c) = self.cut {
            cut = c;
        } else if let Some((c, _)) = self.find_cut(start, true) {
            cut = c;
        } else if budget_spent && self.last_end > start && self.last_end >= self.emitted {
            cut = self.last_end;
        }
        self.cut = Some(cut);
        let rest = self.emit_to(cut);
        let text = self.raw[start.min(self.emitted)..self.emitted].to_string();
        (rest, text)
    }

    /// Passes on `raw[emitted..to]` (trailing white space stays held back).
    fn emit_to(&mut self, to: usize) -> String {
        let start = self.start.unwrap_or(self.raw.len());
        let to = start.max(start + self.raw[start..to.max(start)].trim_end().len());
        if to <= self.emitted {
            return String::new();
        }
        let out = self.raw[self.emitted..to].to_string();
        self.emitted = to;
        out
    }

    /// Where the reply proper starts, once known: leading white space and a speaker label
    /// are skipped; `None` while the text could still be a label.
    fn find_start(&mut self) -> Option<usize> {
        if let Some(s) = self.start {
            return Some(s);
        }
        let lead = self.raw.len() - self.raw.trim_start().len();
        let t = &self.raw[lead..];
        if t.is_empty() {
            return None;
        }
        let mut start = lead;
        for p in &self.rules.strip_prefixes {
            if p.is_empty() {
                continue;
            }
            if t.starts_with(p.as_str()) {
                let after = &t[p.len()..];
                if after.trim_start().is_empty() {
                    return None;
                }
                start = lead + p.len() + (after.len() - after.trim_start().len());
                break;
            }
            if p.starts_with(t) {
                return None;
            }
        }
        self.start = Some(start);
        self.emitted = start;
        self.scan = start;
        self.last_end = start;
        Some(start)
    }

    /// The earliest cut the rules call for in the text so far.
    fn find_cut(&mut self, start: usize, last: bool) -> Option<(usize, Cut)> {
        let body = &self.raw[start..];
        let mut best: Option<(usize, Cut)> = None;
        let mut consider = |at: usize, why: Cut| {
            if best.is_none_or(|(b, _)| at < b) {
                best = Some((at, why));
            }
        };
        for m in &self.markers {
            if let Some(i) = body.find(m) {
                consider(start + i, Cut::Marker);
            }
        }
        if self.rules.blank_line {
            let mut from = 0;
            while let Some(i) = body[from..].find('\n') {
                let at = from + i;
                let rest = body[at + 1..].trim_start_matches([' ', '\t', '\r']);
                if rest.starts_with('\n') && !body[..at].trim().is_empty() {
                    consider(start + at, Cut::Marker);
                    break;
                }
                from = at + 1;
            }
        }
        // Sentences: scan on from where the last call stopped.
        while let Some(end) = next_end(&self.raw, self.scan, last) {
            match end {
                End::At(e) => {
                    self.sentences += 1;
                    self.last_end = e;
                    self.scan = if e > self.scan { e } else { self.scan + 1 };
                    while self.scan < self.raw.len() && !self.raw.is_char_boundary(self.scan) {
                        self.scan += 1;
                    }
                    if self.rules.max_sentences.is_some_and(|n| self.sentences >= n) {
                        consider(e, Cut::Sentences);
                        break;
                    }
                    if self.scan >= self.raw.len() {
                        break;
                    }
                }
                End::Undecided(at) => {
                    self.scan = at;
                    break;
                }
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Streams `text` in pieces of `step` characters; returns what was shown, the reply
    /// and the cut.
    fn stream(rules: &StopRules, text: &str, step: usize) -> (String, String, Option<Cut>) {
        let mut r = ReplyText::new(rules, &[]);
        let mut shown = String::new();
        let chars: Vec<char> = text.chars().collect();
        for piece in chars.chunks(step) {
            let piece: String = piece.iter().collect();
            let (out, cut) = r.push(&piece, false);
            shown.push_str(&out);
            if cut.is_some() {
                let (rest, all) = r.finish(false);
                shown.push_str(&rest);
                return (shown, all, cut);
            }
        }
        let (rest, all) = r.finish(false);
        shown.push_str(&rest);
        (shown, all, None)
    }

    fn sentences(n: usize) -> StopRules {
        StopRules { max_sentences: Some(n), blank_line: true, ..Default::default() }
    }

    #[test]
    fn stops_after_the_nth_sentence_in_both_languages() {
        for step in [1, 3, 7] {
            let (shown, all, cut) = stream(
                &sentences(2),
                "Revenue grew 3.5% vs. last year, e.g. in Q3. Mr. Li agrees! Next we talk.",
                step,
            );
            assert_eq!(all, "Revenue grew 3.5% vs. last year, e.g. in Q3. Mr. Li agrees!");
            assert_eq!(shown, all);
            assert_eq!(cut, Some(Cut::Sentences));
            let (shown, all, _) =
                stream(&sentences(2), "预算是3.5万。“好的！”他说……然后呢？还有一句。", step);
            assert_eq!(all, "预算是3.5万。“好的！”");
            assert_eq!(shown, all);
        }
        // An ellipsis does not end a sentence; an unfinished one is kept at the end.
        let (_, all, cut) = stream(&sentences(1), "Well... I see", 2);
        assert_eq!((all.as_str(), cut), ("Well... I see", None));
        assert_eq!(count_sentences("Well... I see. No. 3.5 is fine"), 3);
        assert_eq!(count_sentences("好。好！好"), 3);
        assert_eq!(count_sentences("You know? Not that. It is cut off."), 3);
    }

    #[test]
    fn blank_lines_markers_and_labels() {
        let rules = StopRules {
            blank_line: true,
            stop_strings: vec!["User:".into(), "销售：".into()],
            strip_prefixes: vec!["Director Zhang:".into()],
            ..Default::default()
        };
        for step in [1, 2, 5] {
            let (shown, all, cut) =
                stream(&rules, "\n Director Zhang: Fine. Go on.\n\nMore text", step);
            assert_eq!((shown.as_str(), all.as_str()), ("Fine. Go on.", "Fine. Go on."));
            assert_eq!(cut, Some(Cut::Marker));
            let (shown, all, _) = stream(&rules, "What is the plan? User: I think", step);
            assert_eq!((shown.as_str(), all.as_str()), ("What is the plan?", "What is the plan?"));
            let (_, all, _) = stream(&rules, "说说方案。\n销售：我觉得", step);
            assert_eq!(all, "说说方案。");
            let (_, all, _) = stream(&rules, "Use the <|im_start|>user", step);
            assert_eq!(all, "Use the");
            // A partial marker is held back, then shown when it turns out not to be one.
            let (shown, all, _) = stream(&rules, "Users: many", step);
            assert_eq!((shown.as_str(), all.as_str()), ("Users: many", "Users: many"));
        }
    }

    #[test]
    fn a_spent_budget_ends_at_the_last_whole_sentence() {
        let rules = sentences(4);
        let mut r = ReplyText::new(&rules, &[]);
        let (a, _) = r.push("First point. Second", true);
        let (b, _) = r.push(" point is", true);
        let (rest, all) = r.finish(true);
        assert_eq!((a.as_str(), b.as_str(), rest.as_str()), ("First point.", "", ""));
        assert_eq!(all, "First point.");
        // What was already shown stays: the reply is never shorter than the screen.
        let mut r = ReplyText::new(&rules, &[]);
        let (a, _) = r.push("First point. Second", false);
        let (b, _) = r.push(" point is", true);
        let (rest, all) = r.finish(true);
        assert_eq!(format!("{a}{b}{rest}"), all);
        assert_eq!(all, "First point. Second point is");
    }

    #[test]
    fn forms_of_address() {
        for t in ["", "Yes", "Okay,", "Good work.", "好的", "好的，"] {
            assert!(vocative_position(t), "{t:?}");
        }
        for t in ["Talk to your", "I know", "你的"] {
            assert!(!vocative_position(t), "{t:?}");
        }
    }
}
