//! The thank-you-note detectors (`specific`, `attribution`, `impact`, `sincere`,
//! `occasion`, `forward`).

use super::super::{Evidence, Status};
use super::doc::*;
use super::lexicon::*;
use regex::Regex;
use std::sync::LazyLock;

re!(
    pub(super) REQUEST_SENT,
    r"(?i)[?？]|能不能|能否|可否|还请您|多多关照|\b(?:could you|would you|can you|put in a word)\b"
);
re!(
    pub(super) BOSS_ACT,
    r"(?i)[您你][^。！？，,]{0,6}?(?:陪|帮|教|提醒|指出|骂|批评|让我|带我|找我|改|协调|搞定|点醒|纠正|指点|拉着|示范|告诉我|替我|给我讲|手把手|带着我|解围)|\byou (?:reviewed|sat in|stopped me|shared|explained|stayed|helped|taught|reminded|pointed|called|brought|took|went|freed|came|showed|pushed|coached|corrected|walked|sat|stepped|handled|opened|told|gave me)\b|\bthanks? (?:you )?for (?:\w+ing)\b|\bhelp (?:with|on) (?:the )?[A-Z]"
);
re!(pub(super) GENERIC_FOR, r"(?i)\bfor giving me (?:the|this|a|an) (?:platform|opportunity|chance)\b");
re!(
    pub(super) EPISODE_TIME,
    r"(?i)上次|那次|那天|上周|上个月|上半年|去年|前年|[一二两三四五六七八九十\d]+年前|[一二三四五六七八九十\d]+月份?|刚来的时候|当时|第一次|那一次|周会上|那个项目|那个标|\b(?:last (?:week|month|year|quarter|spring|summer|autumn|fall|winter)|back in|in (?:january|february|march|april|may|june|july|august|september|october|november|december)|when (?:I|you|we)|that time|\w+day's meeting|the day)\b"
);

pub(super) fn is_request(doc: &Doc, i: usize) -> bool {
    let flags = doc.requests.get_or_init(|| {
        (0..doc.sents.len()).map(|k| REQUEST_SENT.is_match(doc.sent_text(k))).collect()
    });
    flags.get(i).copied().unwrap_or(false)
}

pub(super) fn specific(doc: &Doc) -> (Status, Option<Evidence>) {
    let skip = |i: usize| is_request(doc, i);
    let acts: Vec<_> = doc
        .matches(&BOSS_ACT, &skip)
        .into_iter()
        .filter(|&(b, _)| GENERIC_FOR.find_at(doc.text, b).is_none_or(|g| g.start() > b + 12))
        .collect();
    let Some(&(b, _)) = acts.first() else {
        return (Status::Missing, None);
    };
    let timed = doc.matches(&EPISODE_TIME, &skip);
    let named = !doc.matches(&ORG_ZH, &never).is_empty() || !latin_names(doc, false).is_empty();
    // Prefer the act that sits with a time reference.
    let with_time =
        acts.iter().find(|(a, _)| timed.iter().any(|(t, _)| doc.sent_at(*t) == doc.sent_at(*a)));
    match with_time {
        Some(&(a, _)) => (Status::Met, doc.evidence_at(a)),
        None if !timed.is_empty() || named => (Status::Met, doc.evidence_at(b)),
        None => (Status::Partial, doc.evidence_at(b)),
    }
}

re!(
    pub(super) ATTR_STRONG,
    r"(?i)是您|是你|多亏(?:了)?[您你]|[您你]教|教我|教会|[您你]带|带出来|栽培|[您你]说得对|[您你]提醒|[您你]指出|跟您学|向您学|让我明白|让我学会|没有您|要不是您|\b(?:you taught|taught me|because of you|thanks to you|down to you|you were right|you reminded me|you showed me|you pushed me|what you taught|your coaching|coaching me|you helped me (?:see|learn|understand|grow)|learned from you|you made me)\b"
);
re!(
    pub(super) ATTR_WEAK,
    r"(?i)学了|学习到|长进|收获|学到|学会|明白了|成长|指导|指点|点拨|受益|指出|\b(?:learn(?:ed|t)|growth|grew|guidance|lesson|taught|pointing out|pointed out|mentor(?:ing|ship)?)\b"
);

pub(super) fn attribution(doc: &Doc) -> (Status, Option<Evidence>) {
    let skip = |i: usize| is_request(doc, i);
    if let Some(&(b, _)) = doc.matches(&ATTR_STRONG, &skip).first() {
        return (Status::Met, doc.evidence_at(b));
    }
    if let Some(&(b, _)) = doc.matches(&ATTR_WEAK, &never).first() {
        return (Status::Partial, doc.evidence_at(b));
    }
    (Status::Missing, None)
}

re!(
    pub(super) IMPACT,
    r"(?i)现在|从那以后|那次以后|此后|后来|之后我|如今|不再|一次就|一次通过|都会|都是按|都是这个|用上了|效果很好|签下|签了|拿下|赢回|中了|认可|接受了|交付了|顺利|完成|松口|每个项目都|我每周|在带|提升|提高|很少|再也没|越来越|\b(?:now|since|since then|ever since|quota|win rate|I've since|no longer|don't freeze|went through|went live|accepted|won|closed|signed|changed|worked|I've used|used that|success|landed|first pass|first time|on schedule)\b"
);

pub(super) fn impact(doc: &Doc) -> (Status, Option<Evidence>) {
    let skip = |i: usize| is_request(doc, i);
    let ms = doc.matches(&IMPACT, &skip);
    let status = match distinct(&ms) {
        0 => Status::Missing,
        1 => Status::Partial,
        _ => Status::Met,
    };
    (status, ms.first().and_then(|&(b, _)| doc.evidence_at(b)))
}

re!(
    pub(super) FLATTERY,
    r"(?i)魅力|金句|荣幸|天花板|无人能及|最强|最好的领导|英明|神武|榜样|永远是对的|最有格局|太厉害了|佩服|跟着您干|见过最|感谢公司|全靠大家|伟大|崇拜|偶像|最优秀|\b(?:best (?:manager|boss|leader)|genius|smartest|incredible|so lucky|respect!|always right|role model|legend|the greatest|amazing leader|thank you to the company|to leadership)"
);
re!(
    pub(super) PIGGYBACK,
    r"(?i)另外想问|另外想请|顺带|能不能让我|想申请|对了[，,]|顺便|正好想|能不能帮我|能否帮我|多多关照|调薪|加薪|奖金|推荐一下|帮我推荐|还请您|帮我争取|帮我说句话|\b(?:quick one|one more thing|by the way|btw|also, (?:I'd|could|can|would)|could you|would you|can you|put in a word|promotion committee|a raise|bonus|recommend me)\b"
);

re!(
    pub(super) PIGGYBACK_ASK,
    r"(?i)想请您|麻烦您|希望您能|能否请您|请您(?:帮|推荐|批|给我|考虑|支持|安排|引荐)|推荐我|\b(?:could I|can I|may I|I'd like to ask (?:you|for))\b"
);

pub(super) fn sincere(
    doc: &Doc,
    specific: &(Status, Option<Evidence>),
) -> (Status, Option<Evidence>) {
    // A request tucked into the thanks ("…想请您推荐我去华东区，谢谢！") is piggy-backing.
    let ask = doc.first(&PIGGYBACK_ASK);
    if let Some(b) = doc.first(&FLATTERY).or(doc.first(&PIGGYBACK)).or(ask) {
        return (Status::Missing, doc.evidence_at(b));
    }
    match specific {
        (Status::Missing, _) => (Status::Partial, None),
        (_, ev) => (Status::Met, ev.clone()),
    }
}

re!(
    pub(super) OCCASION_STRONG,
    r"(?i)年底|年终|岁末|年末|新年|春节|元旦|过年|周年|入职|签了|签下|正式签|中标|中了|验收|上线|交付|升任|晋升|升职|年会|结项|回款|\b(?:year-end|end of the year|the year wraps|as the year|new year|holidays?|christmas|anniversary|since I joined|signed|closed|won|went live|acceptance|my promotion|promoted|annual)\b"
);
re!(pub(super) OCCASION_WEAK, r"(?i)这一年|一年|今年|\b(?:this year|another year|year done)\b");

pub(super) fn occasion(doc: &Doc) -> (Status, Option<Evidence>) {
    let skip = |i: usize| is_request(doc, i);
    if let Some(&(b, _)) = doc.matches(&OCCASION_STRONG, &skip).first() {
        return (Status::Met, doc.evidence_at(b));
    }
    if let Some(&(b, _)) = doc.matches(&OCCASION_WEAK, &skip).first() {
        return (Status::Partial, doc.evidence_at(b));
    }
    (Status::Missing, None)
}

re!(
    pub(super) FORWARD_STRONG,
    r"(?i)新的一年|下个季度|我打算|我计划|我准备|明年|接下来|后面[^。！？]{0,6}(?:我会|推进)|今后|以后|新岗位上|第[二三四五]年|我希望|我想试着|传下去|我会(?:按|把|带|先|继续向|主动|定期|这样|像)|\b(?:next year|going forward|from now on|in the new role|in year \w+|next (?:quarter|month)|I'm going to|I plan to|I'm aiming|I'd like to (?:try|take|lead)|I'll (?:plan|prepare|mentor|make|run|keep coming|check|share|pass|walk|lead|use|apply|bring)|I will (?:plan|prepare|mentor|make|run|use|apply))\b"
);
re!(
    pub(super) FORWARD_WEAK,
    r"(?i)继续努力|更加努力|继续加油|再接再厉|\b(?:I'll|I will) (?:keep|work|continue|do my best)|keep at it|keep working|work even harder\b"
);

re!(pub(super) FORWARD_WILL, r"(?i)\b(?:I'll|I will) \w+");

pub(super) fn forward(doc: &Doc) -> (Status, Option<Evidence>) {
    let skip = |i: usize| is_request(doc, i);
    if let Some(&(b, _)) = doc.matches(&FORWARD_STRONG, &skip).first() {
        return (Status::Met, doc.evidence_at(b));
    }
    // "I'll <verb>" is a commitment unless the verb is a generic one ("I'll keep working").
    let generic: Vec<usize> =
        doc.matches(&FORWARD_WEAK, &skip).into_iter().map(|(b, _)| b).collect();
    if let Some(&(b, _)) =
        doc.matches(&FORWARD_WILL, &skip).iter().find(|(b, _)| !generic.contains(b))
    {
        return (Status::Met, doc.evidence_at(b));
    }
    if let Some(&(b, _)) = doc.matches(&FORWARD_WEAK, &skip).first() {
        return (Status::Partial, doc.evidence_at(b));
    }
    (Status::Missing, None)
}
