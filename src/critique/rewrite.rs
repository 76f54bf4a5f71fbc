//! Facts of a draft (numbers and names) and the deterministic rewrite.
//!
//! A rewrite must keep every fact of the original and invent none: missing facts are
//! marked as placeholders (`[补充：…]` / `[add: …]`) for the user to fill in.

use super::detect::{latin_names, Doc};
use super::{rubric, DraftKind, Status};
use crate::lang::Lang;
use regex::Regex;
use std::sync::LazyLock;

static DIGITS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\d+(?:[.,]\d+)*").expect("digits pattern"));
static PLACEHOLDER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\[[^\[\]]*\]").expect("placeholder pattern"));

/// The facts a rewrite must keep: numbers, capitalised Latin names (greeting names
/// included) and the Chinese organisation and person names the detectors can find.
/// Each appears once, in order of first appearance.
pub fn extract_facts(text: &str) -> Vec<String> {
    let doc = Doc::new(text);
    let mut found: Vec<(usize, String)> = Vec::new();
    found.extend(DIGITS.find_iter(text).map(|m| (m.start(), m.as_str().to_string())));
    found.extend(latin_names(&doc, true));
    for re in [&*super::detect::ORG_ZH, &*super::detect::PERSON_ZH] {
        found.extend(re.find_iter(text).map(|m| (m.start(), m.as_str().to_string())));
    }
    found.sort();
    let mut out: Vec<String> = Vec::new();
    for (_, f) in found {
        if !out.contains(&f) {
            out.push(f);
        }
    }
    out
}

/// Facts of `original` that `rewrite` lost.
pub fn missing_facts(original: &str, rewrite: &str) -> Vec<String> {
    extract_facts(original).into_iter().filter(|f| !rewrite.contains(f.as_str())).collect()
}

/// Numbers in `rewrite` (outside placeholders) that the original does not have: facts the
/// model made up.
pub fn invented_numbers(original: &str, rewrite: &str) -> Vec<String> {
    let known: Vec<&str> = DIGITS.find_iter(original).map(|m| m.as_str()).collect();
    let outside = PLACEHOLDER.replace_all(rewrite, "");
    DIGITS
        .find_iter(&outside)
        .map(|m| m.as_str().to_string())
        .filter(|n| !known.iter().any(|k| k.contains(n.as_str())))
        .collect()
}

/// The rewrite used without a model, or when the model's rewrite loses or invents facts:
/// the draft as written, then one placeholder per criterion that is missing or thin, in
/// rubric order, so every fact is kept and nothing is made up.
pub fn deterministic_rewrite(
    draft: &str,
    kind: DraftKind,
    lang: Lang,
    verdicts: &[(&str, Status)],
) -> String {
    let mut out = draft.trim().to_string();
    let slots: Vec<String> = rubric::rubric(kind)
        .iter()
        .filter(|c| verdicts.iter().any(|(id, s)| *id == c.id && *s != Status::Met))
        .map(|c| c.placeholder(lang))
        .collect();
    if !slots.is_empty() {
        out.push_str("\n\n");
        out.push_str(&slots.join("\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_numbers_and_names() {
        let zh = "王总，华信银行压价15%，报价280万，刘处长下周五前要答复。";
        let f = extract_facts(zh);
        for want in ["王总", "华信银行", "15", "280", "刘处长"] {
            assert!(f.iter().any(|x| x == want), "{want} not in {f:?}");
        }
        let en = "Hi Sarah, Northwind wants 12% off the $420k deal.";
        let f = extract_facts(en);
        for want in ["Sarah", "Northwind", "12", "420"] {
            assert!(f.iter().any(|x| x == want), "{want} not in {f:?}");
        }
        assert_eq!(missing_facts(en, "Hi Sarah, Northwind wants a discount."), ["12", "420"]);
        assert_eq!(
            invented_numbers(en, "Northwind wants 12% off [add: 3 options], by 30 May"),
            ["30"]
        );
    }

    #[test]
    fn fallback_keeps_draft_and_marks_gaps() {
        let draft = "王总，华信银行压价15%，您看怎么办？";
        let verdicts =
            [("situation", Status::Met), ("effort", Status::Missing), ("ask", Status::Partial)];
        let r = deterministic_rewrite(draft, DraftKind::Help, Lang::Zh, &verdicts);
        assert!(r.starts_with(draft));
        assert!(r.contains("[补充：你已经尝试过的办法]"));
        assert!(!r.contains("客户名称"), "met criteria get no placeholder: {r}");
        assert!(missing_facts(draft, &r).is_empty());
    }
}
