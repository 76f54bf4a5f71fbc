//! The detectors: Chinese and English lexicons and patterns, one judge per criterion.
//!
//! Every judge looks at the whole draft (or a single spoken turn) and returns a status
//! and, where it found one, the sentence that shows it. Both languages' patterns are
//! applied to every text, because Chinese drafts carry English words (`POC`, `backup`)
//! and the other way round; `lang` is kept for callers and future tuning.
//!
//! Files: `doc` (sentences and quoting), `lexicon` (shared word lists), `help` and
//! `thanks` (one judge per criterion), `markers` (what kind detection weighs); this file
//! runs the judges of a rubric.

macro_rules! re {
    ($vis:vis $name:ident, $pat:expr) => {
        $vis static $name: LazyLock<Regex> =
            LazyLock::new(|| Regex::new($pat).expect(concat!("pattern ", stringify!($name))));
    };
}

mod doc;
mod help;
mod lexicon;
mod markers;
mod thanks;

pub(crate) use doc::Doc;
pub(crate) use help::is_injection;
pub(crate) use lexicon::{latin_names, ORG_ZH, PERSON_ZH};
pub(crate) use markers::kind_markers;

use super::{Criterion, DraftKind, Evidence, Status};
use crate::lang::Lang;
use help::*;
use thanks::*;

/// Runs the detectors of `rubric` over `text`: [`assess`] for its kind, with `chain` in
/// place of `ask` for the skip-level rubric.
pub fn assess_rubric(
    text: &str,
    rubric: super::Rubric,
    lang: Lang,
) -> Vec<(Criterion, Status, Option<Evidence>)> {
    let mut out = assess(text, rubric.kind(), lang);
    if rubric == super::Rubric::SkipLevel {
        let (st, ev) = chain(&Doc::new(text));
        for v in out.iter_mut().filter(|v| v.0 == Criterion::Ask) {
            *v = (Criterion::Chain, st, ev.clone());
        }
    }
    out
}

/// Runs the detectors of `kind`'s rubric over `text` (a whole draft or one spoken turn):
/// one `(criterion id, status, evidence)` per criterion, in rubric order. No model.
pub fn assess(
    text: &str,
    kind: DraftKind,
    lang: Lang,
) -> Vec<(Criterion, Status, Option<Evidence>)> {
    let _ = lang; // both lexicons always apply (see the module docs)
    let doc = Doc::new(text);
    let out: Vec<(Criterion, (Status, Option<Evidence>))> = match kind {
        DraftKind::Help => {
            let t = tone(&doc);
            let p = politics(&doc, t.0);
            vec![
                (Criterion::Situation, situation(&doc)),
                (Criterion::Effort, effort(&doc)),
                (Criterion::Ask, ask(&doc)),
                (Criterion::Plan, plan(&doc)),
                (Criterion::Tone, t),
                (Criterion::Timing, timing(&doc)),
                (Criterion::Politics, p),
            ]
        }
        DraftKind::Thanks => {
            let s = specific(&doc);
            let sin = sincere(&doc, &s);
            vec![
                (Criterion::Specific, s),
                (Criterion::Attribution, attribution(&doc)),
                (Criterion::Impact, impact(&doc)),
                (Criterion::Sincere, sin),
                (Criterion::Occasion, occasion(&doc)),
                (Criterion::Forward, forward(&doc)),
            ]
        }
    };
    out.into_iter().map(|(id, (st, ev))| (id, st, ev)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(text: &str, kind: DraftKind, id: &str) -> Status {
        assess(text, kind, Lang::detect(text)).into_iter().find(|(i, _, _)| i == id).unwrap().1
    }

    #[test]
    fn sentences_and_char_offsets() {
        let text = "王总，客户ACME压价15%。我已经约了采购。Price is $1.5M. Next?";
        let doc = Doc::new(text);
        let quoted: Vec<_> = (0..doc.sents.len()).map(|i| doc.sent_text(i)).collect();
        assert_eq!(
            quoted,
            ["王总，客户ACME压价15%。", "我已经约了采购。", "Price is $1.5M.", "Next?"]
        );
        let ev = doc.evidence_at(text.find("约了").unwrap()).unwrap();
        let by_chars: String = text.chars().skip(ev.start).take(ev.end - ev.start).collect();
        assert_eq!(by_chars, ev.text);
        assert_eq!(ev.text, "我已经约了采购。");
    }

    #[test]
    fn wrapped_english_lines_stay_one_sentence() {
        let doc = Doc::new("Could you approve 5% for Corvid\nby next Friday?\n\nThanks,\nAmy");
        let quoted: Vec<_> = (0..doc.sents.len()).map(|i| doc.sent_text(i)).collect();
        assert_eq!(quoted, ["Could you approve 5% for Corvid\nby next Friday?", "Thanks,\nAmy"]);
        let doc = Doc::new("王总：\n华信银行压价15%\n您看怎么办");
        assert_eq!(doc.sents.len(), 3);
    }

    #[test]
    fn odd_and_adversarial_text_does_not_panic_or_crawl() {
        let many_sentences = "1. Acme 2. ".repeat(1800);
        let one_long_sentence = "您陪我现在签下明年以后学到，".repeat(1400);
        let odd = [
            "👍🏻👍🏻\u{200d}？！",
            "e\u{301}\u{301}，，，。。",
            "\n\n\n。",
            "王总：\r\n谢谢！\r\n",
            many_sentences.as_str(),
            one_long_sentence.as_str(),
        ];
        for text in odd {
            for kind in [DraftKind::Help, DraftKind::Thanks] {
                for (_, _, ev) in assess(text, kind, Lang::detect(text)) {
                    if let Some(ev) = ev {
                        let by_chars: String =
                            text.chars().skip(ev.start).take(ev.end - ev.start).collect();
                        assert_eq!(by_chars, ev.text);
                    }
                }
            }
        }
    }

    #[test]
    fn short_spoken_turns() {
        let k = DraftKind::Help;
        assert_eq!(status("您看这个折扣我们是给还是不给？", k, "ask"), Status::Met);
        assert_eq!(
            status("我已经跟客户的财务总监聊过两次了，也发了报价。", k, "effort"),
            Status::Met
        );
        assert_eq!(status("这客户太抠门了，我真受不了。", k, "tone"), Status::Missing);
        assert_eq!(
            status(
                "I'll send the revised offer Friday; if they balk, the fallback is a pilot.",
                k,
                "plan"
            ),
            Status::Met
        );
        assert_eq!(status("They need an answer by next Wednesday.", k, "timing"), Status::Met);
        assert_eq!(status("They need an answer tomorrow.", k, "timing"), Status::Missing);
    }

    #[test]
    fn greeting_names_are_not_customers() {
        let doc = Doc::new("Hi Sarah, the deal with Northwind Logistics is close.");
        let names: Vec<_> = latin_names(&doc, false).into_iter().map(|(_, n)| n).collect();
        assert_eq!(names, ["Northwind", "Logistics"]);
        let all: Vec<_> = latin_names(&doc, true).into_iter().map(|(_, n)| n).collect();
        assert_eq!(all, ["Sarah", "Northwind", "Logistics"]);
    }

    #[test]
    fn blame_voids_politics_and_requests_void_sincerity() {
        let help = "明天投标，研发到现在还没给方案，完全是他们的问题。";
        assert_eq!(status(help, DraftKind::Help, "politics"), Status::Missing);
        let thanks = "谢谢您去年带我跑中石化的项目。对了，能不能帮我争取一下调薪？";
        assert_eq!(status(thanks, DraftKind::Thanks, "sincere"), Status::Missing);
        assert_eq!(status(thanks, DraftKind::Thanks, "specific"), Status::Met);
    }
}
