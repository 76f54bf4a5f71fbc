//! Is a draft a help request or a thank-you note? Always an answer, with how sure it is.

use super::DraftKind;

/// The likelier kind of a draft and how sure the guess is.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KindGuess {
    /// The likelier kind.
    pub kind: DraftKind,
    /// 0.5 (a coin toss: the draft says next to nothing either way) to 1.0 (only one
    /// kind's markers).
    pub confidence: f64,
}

/// Guesses the kind of a draft; never refuses.
///
/// Thank-you evidence: words of gratitude (much less when they are only a sign-off in the
/// last sentence: "…能不能批一下？谢谢！"), praise and credit to the leader, and, counted
/// twice, the leader doing something for the writer (help requests rarely tell the boss
/// what the boss once did). Help evidence: asking and reporting words, deal
/// talk and complaints. The side with more evidence wins; a tie, or a draft with none
/// ("好的收到"), reads as a help request, the more common draft, at confidence 0.5. A
/// thank-you note that ends with a favour stays a thank-you note when its gratitude and
/// episode outweigh the favour (the `sincere` criterion then flags the favour).
pub fn detect_kind(text: &str) -> KindGuess {
    let m = super::detect::kind_markers(text);
    let gratitude = match (m.thanks, m.sign_off_only) {
        (0, _) => 0,
        (_, true) => 1,
        (_, false) => 3,
    };
    let thanks = (gratitude + m.praise + 2 * m.boss_acts) as f64;
    let help = (m.asks + m.deal_talk) as f64;
    let kind = if thanks > help { DraftKind::Thanks } else { DraftKind::Help };
    let confidence = 0.5 + 0.5 * (thanks - help).abs() / (thanks + help + 1.0);
    KindGuess { kind, confidence: (confidence * 100.0).round() / 100.0 }
}

/// Characters and words that carry content: CJK characters, Latin words and numbers.
pub(crate) fn content_units(text: &str) -> usize {
    let cjk = text.chars().filter(|c| crate::lang::is_cjk(*c)).count();
    let words = text
        .split(|c: char| !c.is_alphanumeric() || crate::lang::is_cjk(c))
        .filter(|w| !w.is_empty() && (w.chars().count() > 1 || w.chars().all(|c| c.is_numeric())))
        .count();
    cjk + words
}

/// Drafts with fewer content units than this ("好的收到", "Thanks!") get a note saying
/// what a useful draft would hold.
pub(crate) const THIN_DRAFT_UNITS: usize = 12;

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(t: &str) -> DraftKind {
        detect_kind(t).kind
    }

    #[test]
    fn kinds() {
        assert_eq!(kind("王总，华信银行压价15%，您看能不能批一下？谢谢！"), DraftKind::Help);
        assert_eq!(kind("谢谢您去年带我跑中石化的项目。"), DraftKind::Thanks);
        assert_eq!(
            kind("Thanks for your guidance this year. Could you recommend me for the East region?"),
            DraftKind::Thanks
        );
        assert_eq!(kind("Could you approve a 5% discount for Corvid?"), DraftKind::Help);
    }

    #[test]
    fn never_refuses_and_says_how_sure() {
        for t in ["今天天气不错，我们去吃火锅吧。", "The quarterly report is attached.", "好的收到"]
        {
            let g = detect_kind(t);
            assert_eq!(g.kind, DraftKind::Help, "{t}");
            assert_eq!(g.confidence, 0.5, "{t}");
        }
        let clear = detect_kind("谢谢您去年带我跑中石化的项目，是您教我先问预算。");
        assert!(clear.confidence >= 0.8, "{clear:?}");
    }

    #[test]
    fn thanks_ending_with_a_favour_stays_thanks() {
        let t = "王总，去年您带我跑中石化，是您教我先问清预算。现在每个项目我都先做预算摸底，今年签了三单。想请您推荐我去华东区，谢谢！";
        assert_eq!(kind(t), DraftKind::Thanks);
        let t = "Hi Tom, last spring you sat in on my Redwood call and showed me how to handle the CFO. I've used that on every deal since. Could you put in a word for me with the promotion committee? Thanks!";
        assert_eq!(kind(t), DraftKind::Thanks);
    }

    #[test]
    fn content_units_count_cjk_and_words() {
        assert_eq!(content_units("好的收到"), 4);
        assert_eq!(content_units("Thanks!"), 1);
        assert_eq!(content_units("Got it, 5 deals."), 4);
    }
}
