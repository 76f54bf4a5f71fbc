//! The markers [`super::super::kind::detect_kind`] weighs: gratitude, asks, praise, deal
//! talk and what the leader did.

use super::doc::*;
use super::help::{STAGE, TONE_NEG};
use super::thanks::*;
use regex::Regex;
use std::sync::LazyLock;

re!(pub(super) THANKS_MARK, r"(?i)谢谢|感谢|多谢|感恩|致谢|\bthank|\bgrateful\b|\bappreciate");
re!(
    pub(super) HELP_MARK,
    r"(?i)汇报|请教|求助|想问|问一下|同步一下|帮忙|帮我|怎么办|需要|请您|能不能|能否|您看|\b(?:quick question|got a minute|need to talk|heads up|FYI|update on|advice|advise|could you|can you|would you|should we|should I|what should|I need|approve|any ideas|sign off)\b"
);

/// What [`super::super::kind::detect_kind`] weighs.
pub(crate) struct KindMarkers {
    /// Words of gratitude (谢谢, thanks…).
    pub thanks: usize,
    /// Gratitude appears only in the last sentence (a sign-off).
    pub sign_off_only: bool,
    /// Asking and reporting words (请教, could you…).
    pub asks: usize,
    /// Praise and credit to the leader without a word of thanks (榜样, you taught me…).
    pub praise: usize,
    /// Deal talk and complaints (报价, bid, 难搞…).
    pub deal_talk: usize,
    /// The leader doing something for the writer (您陪我, you showed me…).
    pub boss_acts: usize,
}

/// Counts the markers of each kind in `text`.
pub(crate) fn kind_markers(text: &str) -> KindMarkers {
    let doc = Doc::new(text);
    let thanks: Vec<_> = doc.matches(&THANKS_MARK, &never);
    let last = doc.sents.len().saturating_sub(1);
    let sign_off_only = !thanks.is_empty()
        && doc.sents.len() > 1
        && thanks.iter().all(|(b, _)| doc.sent_at(*b) == Some(last));
    let mut praise = doc.matches(&FLATTERY, &never);
    praise.extend(doc.matches(&ATTR_STRONG, &never));
    let mut deal = doc.matches(&STAGE, &never);
    deal.extend(doc.matches(&TONE_NEG, &never));
    KindMarkers {
        thanks: thanks.len(),
        sign_off_only,
        asks: distinct(&doc.matches(&HELP_MARK, &never)),
        praise: distinct(&praise),
        deal_talk: distinct(&deal),
        boss_acts: distinct(&doc.matches(&BOSS_ACT, &|i| is_request(&doc, i))),
    }
}
