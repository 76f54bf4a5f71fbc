//! Is a draft a help request or a thank-you note?

use super::DraftKind;

/// Guesses the kind of a draft; `None` when it reads as neither (then `--kind auto` asks
/// the user to say which).
///
/// With words of gratitude it is a thank-you note, unless the gratitude is only a sign-off
/// in the last sentence of a draft that also asks for something ("…能不能批一下？谢谢！").
/// Without them, praise of the leader (a flattering note) is weighed against asking words,
/// deal talk and complaints (a help request).
pub fn detect_kind(text: &str) -> Option<DraftKind> {
    let m = super::detect::kind_markers(text);
    if m.thanks > 0 {
        return Some(if m.sign_off_only && m.asks > 0 {
            DraftKind::Help
        } else {
            DraftKind::Thanks
        });
    }
    let help = m.asks + m.deal_talk;
    match (m.praise, help) {
        (0, 0) => None,
        (p, h) if p > h => Some(DraftKind::Thanks),
        _ => Some(DraftKind::Help),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        assert_eq!(
            detect_kind("王总，华信银行压价15%，您看能不能批一下？谢谢！"),
            Some(DraftKind::Help)
        );
        assert_eq!(detect_kind("谢谢您去年带我跑中石化的项目。"), Some(DraftKind::Thanks));
        assert_eq!(
            detect_kind(
                "Thanks for your guidance this year. Could you recommend me for the East region?"
            ),
            Some(DraftKind::Thanks)
        );
        assert_eq!(
            detect_kind("Could you approve a 5% discount for Corvid?"),
            Some(DraftKind::Help)
        );
        assert_eq!(detect_kind("今天天气不错，我们去吃火锅吧。"), None);
        assert_eq!(detect_kind("The quarterly report is attached."), None);
    }
}
