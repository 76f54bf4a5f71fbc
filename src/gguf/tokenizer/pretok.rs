//! Pre-tokenizers for byte-level BPE vocabularies, chosen by `tokenizer.ggml.pre` exactly as
//! llama.cpp chooses them: a list of regexes applied in sequence, each one splitting every
//! piece left by the previous one (text between matches is kept as its own piece).

use fancy_regex::Regex;

use super::TokenizerError;

/// The GPT-2 pattern (llama.cpp implements it by hand with a trailing `|\s+`, which only
/// matters for text that no alternative matches; unmatched text is kept as a piece anyway).
const GPT2: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";
const LLAMA3: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN2: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// The regex list for one `tokenizer.ggml.pre` value, or `None` when we do not support it.
pub(crate) fn patterns_for(pre: &str) -> Option<(Vec<&'static str>, bool)> {
    // (patterns, ignore_merges)
    let p = match pre {
        "default" => (vec![r"[\p{P}\$\+<=>\^~\|]+", GPT2, r"\p{N}+", r"[0-9][0-9][0-9]"], false),
        "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "pixtral" => (vec![LLAMA3], true),
        "qwen2" | "deepseek-r1-qwen" => (vec![QWEN2], false),
        "smollm" | "starcoder" | "refact" | "command-r" | "codeshell" | "exaone" | "minerva-7b" => {
            (vec![r"\p{N}", GPT2], false)
        }
        "gpt-2" | "gpt2" | "phi-2" | "jina-es" | "jina-de" | "mpt" | "olmo" => (vec![GPT2], false),
        _ => return None,
    };
    Some(p)
}

/// A compiled pre-tokenizer: split text into the pieces BPE merges inside.
#[derive(Debug)]
pub(crate) struct PreTokenizer {
    regexes: Vec<Regex>,
}

impl PreTokenizer {
    /// Compile the pre-tokenizer for `pre`; an unknown name is an error naming it.
    pub(crate) fn new(pre: &str) -> Result<(Self, bool), TokenizerError> {
        let (pats, ignore_merges) =
            patterns_for(pre).ok_or_else(|| TokenizerError::UnsupportedPre(pre.to_string()))?;
        let regexes = pats
            .iter()
            .map(|p| {
                Regex::new(p)
                    .map_err(|e| TokenizerError::Invalid(format!("pre-tokenizer regex {p:?}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok((PreTokenizer { regexes }, ignore_merges))
    }

    /// Split `text` into pieces, returned as byte ranges into `text`.
    pub(crate) fn split(&self, text: &str) -> Vec<(usize, usize)> {
        let mut pieces = vec![(0usize, text.len())];
        let mut next = Vec::new();
        for re in &self.regexes {
            next.clear();
            for &(start, end) in &pieces {
                let piece = &text[start..end];
                let mut last = 0;
                for m in re.find_iter(piece) {
                    let Ok(m) = m else {
                        // Backtrack limit: keep the rest of the piece whole rather than fail.
                        break;
                    };
                    if m.start() == m.end() {
                        continue;
                    }
                    if m.start() > last {
                        next.push((start + last, start + m.start()));
                    }
                    next.push((start + m.start(), start + m.end()));
                    last = m.end();
                }
                if last < piece.len() {
                    next.push((start + last, end));
                }
            }
            std::mem::swap(&mut pieces, &mut next);
        }
        pieces
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split<'a>(pre: &str, text: &'a str) -> Vec<&'a str> {
        let (p, _) = PreTokenizer::new(pre).unwrap();
        p.split(text).into_iter().map(|(s, e)| &text[s..e]).collect()
    }

    #[test]
    fn smollm_splits_every_digit() {
        assert_eq!(split("smollm", "in 2026 ok"), ["in", " ", "2", "0", "2", "6", " ok"]);
    }

    #[test]
    fn gpt2_keeps_digit_runs_and_trailing_spaces() {
        assert_eq!(split("gpt2", "I'm  at 12345   "), ["I", "'m", " ", " at", " 12345", "   "]);
    }

    #[test]
    fn llama3_groups_three_digits_and_newlines() {
        assert_eq!(split("llama-bpe", "x 12345\n\nHi"), ["x", " ", "123", "45", "\n\n", "Hi"]);
    }

    #[test]
    fn qwen2_single_digits_and_cjk() {
        assert_eq!(split("qwen2", "2026年11月"), ["2", "0", "2", "6", "年", "1", "1", "月"]);
    }

    #[test]
    fn unknown_pre_is_an_error_naming_it() {
        let err = PreTokenizer::new("mystery-pre").unwrap_err();
        assert!(err.to_string().contains("mystery-pre"), "{err}");
    }
}
