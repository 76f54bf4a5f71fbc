//! The detectors: Chinese and English lexicons and patterns, one judge per criterion.
//!
//! Every judge looks at the whole draft (or a single spoken turn) and returns a status
//! and, where it found one, the sentence that shows it. Both languages' patterns are
//! applied to every text, because Chinese drafts carry English words (`POC`, `backup`)
//! and the other way round; `lang` is kept for callers and future tuning.

use super::{Criterion, DraftKind, Evidence, Status};
use crate::lang::Lang;
use regex::Regex;
use std::sync::LazyLock;

macro_rules! re {
    ($vis:vis $name:ident, $pat:expr) => {
        $vis static $name: LazyLock<Regex> =
            LazyLock::new(|| Regex::new($pat).expect(concat!("pattern ", stringify!($name))));
    };
}

/// The draft split into sentences, with helpers to quote them.
pub(crate) struct Doc<'a> {
    pub(crate) text: &'a str,
    /// Byte ranges of sentences, trimmed, terminators included.
    pub(crate) sents: Vec<(usize, usize)>,
    /// Per sentence: is it a request? (computed on first use)
    requests: std::cell::OnceCell<Vec<bool>>,
}

impl<'a> Doc<'a> {
    pub(crate) fn new(text: &'a str) -> Doc<'a> {
        let mut sents = Vec::new();
        let mut start = 0;
        let mut it = text.char_indices().peekable();
        let mut prev: Option<char> = None;
        while let Some((i, c)) = it.next() {
            let next = it.peek().map(|&(_, n)| n);
            // A line break ends a sentence after Chinese text or punctuation, or before a
            // blank line; an English line wrapped mid-sentence ("…for Corvid\nby Friday?")
            // stays one sentence.
            let line_end = c == '\n'
                && (next == Some('\n')
                    || next.is_some_and(crate::lang::is_cjk)
                    || prev.is_none_or(|p| crate::lang::is_cjk(p) || ".!?;:…".contains(p)));
            let end_here = matches!(c, '。' | '！' | '？' | '!' | '?' | '；' | ';' | '…')
                || line_end
                || (c == '.' && next.is_none_or(|n| n.is_whitespace()));
            if !c.is_whitespace() {
                prev = Some(c);
            }
            // Keep runs of terminators ("？！", "...") together.
            let more_term =
                next.is_some_and(|n| matches!(n, '。' | '！' | '？' | '!' | '?' | '.' | '…'));
            if end_here && !more_term {
                push_trimmed(text, start, i + c.len_utf8(), &mut sents);
                start = i + c.len_utf8();
            }
        }
        push_trimmed(text, start, text.len(), &mut sents);
        Doc { text, sents, requests: std::cell::OnceCell::new() }
    }

    /// Index of the sentence holding byte `b`.
    pub(crate) fn sent_at(&self, b: usize) -> Option<usize> {
        // Sentences are sorted and disjoint: binary search.
        let i = self.sents.partition_point(|&(s, _)| s <= b).checked_sub(1)?;
        (b < self.sents[i].1).then_some(i)
    }

    fn sent_text(&self, i: usize) -> &'a str {
        let (s, e) = self.sents[i];
        &self.text[s..e]
    }

    /// The sentence around byte `b` as evidence (char offsets); in a long sentence, only
    /// the clause (between commas or colons) around `b`.
    pub(crate) fn evidence_at(&self, b: usize) -> Option<Evidence> {
        let i = self.sent_at(b)?;
        let (s, e) = self.sents[i];
        if self.text[s..e].chars().count() <= LONG_SENTENCE {
            return Some(self.evidence_span(s, e));
        }
        let is_break = |c: char| matches!(c, '，' | ',' | '：' | ':' | '、');
        let cs = self.text[s..b]
            .rfind(is_break)
            .map_or(s, |k| s + k + self.text[s + k..].chars().next().map_or(1, char::len_utf8));
        let ce = self.text[b..e].find(is_break).map_or(e, |k| b + k);
        let (cs, ce) = trim_span(self.text, cs, ce);
        Some(self.evidence_span(cs, ce))
    }

    pub(crate) fn evidence_span(&self, s: usize, e: usize) -> Evidence {
        let start = self.text[..s].chars().count();
        let text = self.text[s..e].to_string();
        let end = start + text.chars().count();
        Evidence { start, end, text }
    }

    /// Byte offsets of matches of `re`, skipping sentences `skip` rejects.
    fn matches(&self, re: &Regex, skip: &dyn Fn(usize) -> bool) -> Vec<(usize, &'a str)> {
        re.find_iter(self.text)
            .filter(|m| self.sent_at(m.start()).is_none_or(|i| !skip(i)))
            .map(|m| (m.start(), m.as_str()))
            .collect()
    }

    fn first(&self, re: &Regex) -> Option<usize> {
        re.find(self.text).map(|m| m.start())
    }
}

/// Sentences longer than this (in characters) are quoted by clause.
const LONG_SENTENCE: usize = 40;

fn trim_span(text: &str, s: usize, e: usize) -> (usize, usize) {
    let piece = &text[s..e];
    let lead = piece.len() - piece.trim_start().len();
    let trail = piece.len() - piece.trim_end().len();
    if lead + trail >= piece.len() {
        (s, e)
    } else {
        (s + lead, e - trail)
    }
}

fn push_trimmed(text: &str, s: usize, e: usize, out: &mut Vec<(usize, usize)>) {
    let piece = &text[s..e];
    let lead = piece.len() - piece.trim_start().len();
    let trail = piece.len() - piece.trim_end().len();
    if lead + trail < piece.len() {
        out.push((s + lead, e - trail));
    }
}

fn never(_: usize) -> bool {
    false
}

/// Number of distinct matched strings (case-folded).
fn distinct(ms: &[(usize, &str)]) -> usize {
    let mut seen: Vec<String> = ms.iter().map(|(_, m)| m.to_lowercase()).collect();
    seen.sort();
    seen.dedup();
    seen.len()
}

// ---------------------------------------------------------------- shared lexicons

re!(pub(crate) ORG_ZH, r"\p{Han}{2}(?:银行|集团|科技|乳业|水务|重工|电信|移动|联通|石油|石化|矿业|纺织|航运|港口|酒店|地铁|物流|医疗|制药|电网|地产|航空|电子|医院|公司|能源|证券|保险|汽车|股份|控股|实业|电力|通信|软件|化工|钢铁|传媒|教育|零售|食品|机械|环保|建设|药业|电气|半导体|信息)");
re!(pub(crate) PERSON_ZH, r"[王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史顾侯邵孟龙段雷钱汤尹黎易常武乔贺赖龚](?:总监|总|经理|处长|主任|院长|局长|董事长|部长|科长|老师)|[小老][王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯]");
re!(LATIN_WORD, r"\b[A-Z][a-z]+(?:[A-Z][a-z]+)*(?:'s)?\b");
re!(NUMBER, r"[$¥￥€£]?\d+(?:[.,]\d+)*");
re!(NUMBER_ZH, r"[一二两三四五六七八九十百千]+(?:万|亿|个点|成|家|个需求|个仓库|年)");
re!(GREETING, r"(?i)\b(?:hi|hey|hello|dear|thanks|thank you)[,\s]+$");

const LATIN_STOP: &[&str] = &[
    "I",
    "I'm",
    "I've",
    "I'd",
    "I'll",
    "Hi",
    "Hey",
    "Hello",
    "Dear",
    "Boss",
    "Thanks",
    "Thank",
    "Quick",
    "Just",
    "Can",
    "Could",
    "Would",
    "Why",
    "We",
    "They",
    "Their",
    "The",
    "This",
    "It",
    "My",
    "Our",
    "Next",
    "Also",
    "Not",
    "Honestly",
    "Got",
    "Need",
    "Ignore",
    "Should",
    "If",
    "Before",
    "Given",
    "So",
    "Any",
    "One",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
    "Happy",
    "New",
    "Year",
    "Mr",
    "Ms",
    "Mrs",
    "Respect",
    "Another",
    "With",
    "When",
    "From",
    "During",
    "In",
    "Last",
    "Since",
    "Back",
    "Every",
    "You",
    "Your",
    "Are",
    "Is",
    "Please",
    "Wishing",
    "Merry",
    "Christmas",
];

/// Capitalised Latin words that look like names (customers, people, products):
/// not sentence-initial, not a stop word; names right after a greeting count only when
/// `greeting` is true.
pub(crate) fn latin_names(doc: &Doc, greeting: bool) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for m in LATIN_WORD.find_iter(doc.text) {
        let word = m.as_str().trim_end_matches("'s");
        if LATIN_STOP.contains(&word) || word.len() < 2 {
            continue;
        }
        let before = &doc.text[..m.start()];
        let sentence_initial = doc.sents.iter().any(|&(s, _)| s == m.start());
        let after_greeting = GREETING.is_match(before);
        let text_initial = before.trim().is_empty();
        if after_greeting || text_initial {
            if greeting {
                out.push((m.start(), word.to_string()));
            }
            continue;
        }
        if sentence_initial && !greeting {
            continue;
        }
        out.push((m.start(), word.to_string()));
    }
    out
}

// ---------------------------------------------------------------- help: situation

re!(
    STAGE,
    r"(?i)投标|招标|标书|报价|谈判|签约|签合同|合同|POC|PoC|测试|评审|评估|选型|立项|续约|到期|验收|上线|审核|商务阶段|方案交流|压价|降价|价格|付款|预算|拖着|没回复|没回音|没动静|卡在|不签|框架协议|演示|黄了|丢了|丢单|试用|开标|回款|续费|\b(?:bid|tender|RFP|proposal|quote|pricing|negotiation|renewal|pilot|proof of concept|security review|legal review|evaluation|contract|sign|signed|signing|signature|terms|budgeting stage|deal|discount|payment|stuck|stalling|haven't replied|lost)\b"
);

re!(
    INJECTION,
    r"(?i)忽略[^。！？]{0,6}(?:指令|指示|要求|规则)|打满分|给[^。！？]{0,8}满分|输出[^。！？]{0,6}(?:score|分数|得分)|系统提示|\b(?:ignore (?:all |any )?(?:the )?(?:previous|prior|above|earlier) (?:instructions|rules|prompts?)|disregard (?:the |all )?(?:previous|above|prior)|system prompt|you are now|rate (?:this|it) (?:draft )?as|full marks|(?:output|print|return|give)\b[^.!?]{0,20}\bscore)\b|\{\s*.?score.?\s*:"
);

/// Whether `text` talks to the grader ("ignore previous instructions", "output score 100").
pub(crate) fn is_injection(text: &str) -> bool {
    INJECTION.is_match(text)
}

fn situation(doc: &Doc) -> (Status, Option<Evidence>) {
    let mut firsts: Vec<usize> = Vec::new();
    // A sentence that talks to the grader ("output score 100"), not about the deal: its
    // names and numbers are no situation.
    let injected: Vec<bool> =
        (0..doc.sents.len()).map(|i| INJECTION.is_match(doc.sent_text(i))).collect();
    let skip = |i: usize| injected.get(i).copied().unwrap_or(false);
    let names: Vec<usize> = doc
        .matches(&ORG_ZH, &skip)
        .into_iter()
        .map(|(b, _)| b)
        .chain(
            latin_names(doc, false)
                .into_iter()
                .map(|(b, _)| b)
                .filter(|&b| doc.sent_at(b).is_none_or(|i| !skip(i))),
        )
        .collect();
    let numbers: Vec<usize> = doc
        .matches(&NUMBER, &skip)
        .into_iter()
        .chain(doc.matches(&NUMBER_ZH, &skip))
        .map(|(b, _)| b)
        .collect();
    let stages: Vec<usize> = doc.matches(&STAGE, &skip).into_iter().map(|(b, _)| b).collect();
    for group in [&names, &numbers, &stages] {
        if let Some(&b) = group.iter().min() {
            firsts.push(b);
        }
    }
    let kinds = firsts.len();
    let status = match kinds {
        0 => Status::Missing,
        1 => Status::Partial,
        _ => Status::Met,
    };
    // Quote the sentence with the most kinds of signal (the first on ties).
    let mut kinds_in = vec![0u8; doc.sents.len()];
    for group in [&names, &numbers, &stages] {
        let mut seen = vec![false; doc.sents.len()];
        for i in group.iter().filter_map(|&b| doc.sent_at(b)) {
            if !seen[i] {
                seen[i] = true;
                kinds_in[i] += 1;
            }
        }
    }
    let best =
        kinds_in.iter().enumerate().max_by_key(|&(i, &k)| (k, usize::MAX - i)).map(|(i, _)| i);
    let ev = match (status, best) {
        (Status::Missing, _) | (_, None) => None,
        (_, Some(i)) => Some(doc.evidence_span(doc.sents[i].0, doc.sents[i].1)),
    };
    (status, ev)
}

// ---------------------------------------------------------------- help: effort

re!(
    EFFORT_ZH,
    r"开了[^。！？]{0,3}会|去了一趟|跑了[^。！？]{0,3}趟|见了|拆成了|写了|梳理了|对接了|了解了|聊过|聊了|谈过|谈了|打过招呼|通过气|报备了|尝试了?|沟通过|沟通了|交流过|做了(?:两次|一次|几次)|联系了|联系过|约了|约过|拜访了|拜访过|见了一面|见过|问了|问过|查了|查过|核对了|确认了|整理了|整理成|安排了|发了|发过|打过电话|打了[^。！？]{0,4}电话|通了[^。！？]{0,3}电话|催了|催过|做完了?|找了|找过|请\p{Han}{1,4}出了|摸到了?|准备了|提交了|跟进了|演示了|复盘了|跑了"
);
re!(
    EFFORT_EN,
    r"(?i)\b(?:I've|I have|I|we've|we have|we)\s+(?:already\s+|also\s+|just\s+|since\s+)?(?:tried|called|met|checked|asked|sent|run|ran|spoken|spoke|chased|walked|put|done|did|fixed|mapped|shared|finished|passed|reached out|followed up|briefed|looped|contacted|prepared|answered|emailed|visited|talked|had a call|set up|escalated|drafted|reviewed|aligned|built|organized|confirmed|negotiated|presented|demoed|pitched|interviewed|mapped)\b|\band (?:then |also )?(?:tried|called|met|checked|asked|sent|fixed|mapped|shared|answered|got her|got him|had a call|contacted|briefed|drafted|walked|confirmed|built|reviewed)\b|\bso far\b"
);

fn effort(doc: &Doc) -> (Status, Option<Evidence>) {
    let mut ms = doc.matches(&EFFORT_ZH, &never);
    ms.extend(doc.matches(&EFFORT_EN, &never));
    ms.sort();
    let status = match distinct(&ms) {
        0 => Status::Missing,
        1 => Status::Partial,
        _ => Status::Met,
    };
    (status, ms.first().and_then(|&(b, _)| doc.evidence_at(b)))
}

// ---------------------------------------------------------------- help: ask

re!(
    ASK_STRONG,
    r"(?i)想请您|请您|麻烦您|能否请您|您能否|您是否方便|您能不能|能不能请您|请教|想听听您|帮我(?:引荐|协调|判断|看看|申请|争取|推荐|约)|帮忙(?:协调|判断|看看|申请|引荐)|批一下|您看是|是您来|引荐|出面|拍板|您看这个|\b(?:could you|can you|would you|will you|could I get|can I get|I'd like to ask you|I'd value your|should we|please (?:approve|advise|help|introduce|join)|introduce me|your take|advise (?:whether|on|if)|help me (?:judge|decide|with)|would you prefer)\b"
);
// An open request for advice (请教) is a full ask: the talk tells salespeople to ask about
// things big and small.
re!(
    ADVICE,
    r"(?i)怎么办|怎么处理|该怎么|有什么(?:好)?办法|您看|您觉得|您怎么看|\b(?:what should I do|any ideas|what do you think|what would you suggest|how would you|your advice|any advice)\b"
);
re!(
    ASK_WEAK,
    r"(?i)能不能|可不可以|需要(?:您|更多|资源|支持)|给句话|管不管|\b(?:I need|need your|need more|do something about)\b"
);
re!(QUESTION_TO_BOSS, r"(?i)[您你]|\byou\b");

fn ask(doc: &Doc) -> (Status, Option<Evidence>) {
    if let Some(b) = doc.first(&ASK_STRONG) {
        return (Status::Met, doc.evidence_at(b));
    }
    // "您看着办" hands the problem over; "还能怎么办" is a complaint: neither asks.
    let hands_over = |b: usize, m: &str| m == "您看" && doc.text[b + m.len()..].starts_with('着');
    let complains = |b: usize| doc.text[..b].ends_with("还能");
    let advice =
        doc.matches(&ADVICE, &never).into_iter().find(|&(b, m)| !hands_over(b, m) && !complains(b));
    if let Some((b, _)) = advice {
        return (Status::Met, doc.evidence_at(b));
    }
    if let Some((b, _)) = doc.matches(&ASK_WEAK, &never).into_iter().next() {
        return (Status::Partial, doc.evidence_at(b));
    }
    // A question addressed to the boss is at least a vague ask.
    for (i, &(s, e)) in doc.sents.iter().enumerate() {
        let t = doc.sent_text(i);
        if (t.ends_with('?') || t.ends_with('？')) && QUESTION_TO_BOSS.is_match(t) {
            return (Status::Partial, Some(doc.evidence_span(s, e)));
        }
    }
    (Status::Missing, None)
}

// ---------------------------------------------------------------- help: plan

re!(
    NEXT_STEP,
    r"(?i)我(?:的)?计划|计划是|下一步|我会|我打算|我准备|我倾向|倾向于|我的建议|建议是|我这边会|我这边的建议|我先|我想先|再跟您汇报|\b(?:my plan|next step|I'll|I will|I'm going to|I am going to|I plan to|I intend to|I lean|I'm leaning|my suggestion|I suggest|I propose|I'm setting up|I'd suggest|planning to|plan to|we're going to)\b"
);
re!(
    BACKUP,
    r"(?i)备选|备用|backup|plan b|折中|如果[^。！？]{0,30}(?:就|那就|则|再)|否则|退一步|兜底|\b(?:fallback|fall back|back-up|alternatively|otherwise)\b|\bif (?:that|they|he|she|legal|it|R&D|we|not)\b[^.?!]{0,60}(?:I'll|we can|we could|I will|my backup|the fallback)"
);

fn plan(doc: &Doc) -> (Status, Option<Evidence>) {
    let next = doc.first(&NEXT_STEP);
    let backup = doc.first(&BACKUP);
    match (next, backup) {
        (Some(b), Some(_)) => (Status::Met, doc.evidence_at(b)),
        (Some(b), None) | (None, Some(b)) => (Status::Partial, doc.evidence_at(b)),
        (None, None) => (Status::Missing, None),
    }
}

// ---------------------------------------------------------------- help: tone

re!(
    TONE_NEG,
    r"(?i)服了|白干|没人管|不给支持|太慢了?|我也没办法|还能怎么办|受够了|心累|难搞|抠门|没办法了|看着办|一塌糊涂|不是我的问题|别怪我|早就说过|不当回事|贪得无厌|又抢|凭什么|受不了|烦死|坑人|甩锅|根本看不上|完全是[^。！？]{0,8}的问题|管不管|给句话|到底能不能|八百遍|太过分|无语|气死|不靠谱|垃圾|离谱|奇葩|忍不了|没法干|不干了|搞不定了|\b(?:I'm done with|nobody (?:internally )?helps|wasting my time|impossible|ridiculous|not my fault|it's on them|greed\w*|I warned|sick of|fed up|useless|incompetent|what you expect me|or not\?|keep getting|squeezing|blame|their fault|nightmare|clueless|lazy|unacceptable|can't believe|stupid|waste of time)\b"
);
re!(TONE_SHOUT, r"\b[A-Z]{4,}\b");
re!(
    TONE_POS,
    r"(?i)汇报|请教|想听听|请您|想请|同步一下|向您|\b(?:update|advice|advise|your take|could you|would you|could I|quick question|heads up|FYI|I'd value)\b"
);
const SHOUT_OK: &[&str] =
    &["SYSTEM", "ACME", "NASA", "IBM", "FYI", "CEO", "CFO", "CIO", "ROI", "SLA"];

fn tone(doc: &Doc) -> (Status, Option<Evidence>) {
    let shout = TONE_SHOUT.find_iter(doc.text).find(|m| !SHOUT_OK.contains(&m.as_str()));
    if let Some(b) = doc.first(&TONE_NEG).or(shout.map(|m| m.start())) {
        return (Status::Missing, doc.evidence_at(b));
    }
    match doc.first(&TONE_POS) {
        Some(b) => (Status::Met, doc.evidence_at(b)),
        None => (Status::Partial, None),
    }
}

// ---------------------------------------------------------------- help: timing

re!(
    LATE,
    r"(?i)明天|明早|今天|今晚|下午就|马上就|立刻|来不及|已经签了|已经定了|已经答应|昨天我|就要(?:签|投标|截止|结果|开标|交)|\b(?:tomorrow|tonight|today|this afternoon|right now|too late|already signed|it's signed|signed now|yesterday I|in an hour|last minute)\b"
);
re!(
    EARLY,
    r"(?i)下周|下个月|月底|周[一二三四五六日天]前|还有[^。！？]{0,4}(?:天|周|个月|时间)|提前|季度末|\d+号|\d+日前|[一二两三四五六七八九十]+(?:天|周|个月)(?:后|内)|前答复|前给到|截止是|\b(?:next (?:week|month|quarter|monday|tuesday|wednesday|thursday|friday)|by (?:monday|tuesday|wednesday|thursday|friday|the \d+\w*|end of|next)|in the next|within|ends? in|there's (?:still )?time|we have (?:about )?\w+ (?:days|weeks)|ahead of|in advance|the \d+(?:st|nd|rd|th)|on the \d+\w*)\b"
);

// The boss has heard about it before: the talk's "平时不打招呼，然后到关键期了" is the opposite.
re!(
    PRIOR,
    r"(?i)(?:上次|上周|之前|前几天|前两天|早先|月初|周会上|一直)[^。！？]{0,12}(?:跟|向|和|给)[您你][^。！？]{0,8}(?:汇报|提|说|同步|聊|报备|讲)|(?:跟|向|和)[您你](?:汇报|提|说|同步|报备)过|如您所知|接着上次|继续跟您同步|\b(?:as I mentioned|as we discussed|as I flagged|following up on|follow-up on|since (?:our|my) last|I (?:told|updated|briefed|flagged to|warned) you|(?:we|you and I) (?:discussed|talked about)|in my last update|per our)\b"
);

re!(
    ROUTINE,
    r"(?i)同步一下|同步下|汇报一下|汇报下|例行|本周进展|本月情况|\b(?:FYI|quick update|status update|weekly update|monthly update)\b"
);

fn timing(doc: &Doc) -> (Status, Option<Evidence>) {
    if let Some(b) = doc.first(&PRIOR) {
        return (Status::Met, doc.evidence_at(b));
    }
    let late = doc.first(&LATE);
    let early = doc.first(&EARLY);
    match (early, late) {
        (Some(b), None) => (Status::Met, doc.evidence_at(b)),
        (Some(_), Some(l)) => (Status::Partial, doc.evidence_at(l)),
        (None, Some(l)) => (Status::Missing, doc.evidence_at(l)),
        // A routine update with nothing urgent is the talk's 平时打招呼.
        (None, None) => match doc.first(&ROUTINE) {
            Some(b) => (Status::Met, doc.evidence_at(b)),
            None => (Status::Missing, None),
        },
    }
}

// ---------------------------------------------------------------- help: politics

re!(
    DEPT,
    r"(?i)财务|法务|交付|研发|售前|服务部|售后|商务部|合规|风控|跨部门|周边部门|\b(?:finance|legal|R&D|engineering|delivery team|presales|pre-sales|solutions team|customer success|support|deal desk|service council|compliance)\b"
);
re!(
    CARE,
    r"(?i)打过招呼|为难|夹在中间|不太合适|不想让|考虑到|盯得|理解|风控考虑|听听您的意见|沟通过|通过气|对齐|越级|\b(?:looped in|briefed|heads-up|awkward (?:spot|position)|put you in|go around you|managing risk|I understand|don't want to|wouldn't be right|watches|aligned with|checked with|needs? (?:his|her|their) sign-off)\b"
);
// A position the boss can defend to management: what a price or terms buy, the margin or
// floor, the case to take upstairs ("你是不是偷懒了，导致咱们那个报价啊报的上不去").
re!(
    DEFEND,
    r"(?i)毛利|利润|底线|换来|换取|作为交换|交换条件|预付|首付|[两三四五]年(?:的)?(?:合同|框架|协议|独家)|向上(?:汇报|交代|解释)|跟上面|好交代|交代得过去|测算|\b(?:margins?|profit|floor|in exchange|in return|trade (?:for|off)|prepay\w*|multi-year|three-year|defend|justify|upstairs|your management|to leadership|the model)\b"
);

fn politics(doc: &Doc, tone: Status) -> (Status, Option<Evidence>) {
    if tone == Status::Missing {
        // Naming other teams only to blame them is the opposite of political awareness.
        return (Status::Missing, None);
    }
    if let Some(b) = doc.first(&DEFEND) {
        return (Status::Met, doc.evidence_at(b));
    }
    match (doc.first(&DEPT), doc.first(&CARE)) {
        (Some(_), Some(c)) => (Status::Met, doc.evidence_at(c)),
        (Some(d), None) => (Status::Partial, doc.evidence_at(d)),
        (None, Some(c)) => (Status::Partial, doc.evidence_at(c)),
        (None, None) => (Status::Missing, None),
    }
}

// ---------------------------------------------------------------- skip-level: chain

// Asking your boss's boss for something only your own boss should grant (越级).
re!(
    OVERREACH,
    r"(?i)资源|特批|批一下|批个|批到|审批|折扣|特价|预算|名额|人手|加人|调人|出面|拍板|协调|给我(?:配|加|批|调)|帮我(?:争取|申请|说句话|推荐)|\b(?:approve|approval|resources?|headcount|budget|discount|exception|sign off|step in|assign|extra (?:people|engineers?|support)|put in a word|recommend me)\b"
);
// Going through your own boss: the request is theirs to make, or already made.
re!(
    VIA_BOSS,
    r"(?i)(?:跟|和|向)(?:我们|我的)?(?:直属)?(?:领导|经理|[张李刘陈周]总)[^。！？]{0,6}(?:商量|对齐|汇报|申请|沟通)|我(?:们)?领导(?:已经|会|那边)|\b(?:with my (?:boss|manager)|through my (?:boss|manager)|my (?:boss|manager) (?:is|has|will|and I))\b"
);

/// `chain`: asks of your boss's boss stay on advice; a request for resources, approvals or
/// exceptions over your own boss's head is missing.
fn chain(doc: &Doc) -> (Status, Option<Evidence>) {
    let asks = |i: usize| {
        let t = doc.sent_text(i);
        ASK_STRONG.is_match(t) || ASK_WEAK.is_match(t) || ADVICE.is_match(t)
    };
    for i in 0..doc.sents.len() {
        let t = doc.sent_text(i);
        if asks(i) && OVERREACH.is_match(t) && !VIA_BOSS.is_match(t) {
            let (s, e) = doc.sents[i];
            return (Status::Missing, Some(doc.evidence_span(s, e)));
        }
    }
    match (0..doc.sents.len()).find(|&i| asks(i)) {
        Some(i) => (Status::Met, Some(doc.evidence_span(doc.sents[i].0, doc.sents[i].1))),
        None => (Status::Met, None),
    }
}

// ---------------------------------------------------------------- thanks

re!(
    REQUEST_SENT,
    r"(?i)[?？]|能不能|能否|可否|还请您|多多关照|\b(?:could you|would you|can you|put in a word)\b"
);
re!(
    BOSS_ACT,
    r"(?i)[您你][^。！？，,]{0,6}?(?:陪|帮|教|提醒|指出|骂|批评|让我|带我|找我|改|协调|搞定|点醒|纠正|指点|拉着|示范|告诉我|替我|给我讲|手把手|带着我|解围)|\byou (?:reviewed|sat in|stopped me|shared|explained|stayed|helped|taught|reminded|pointed|called|brought|took|went|freed|came|showed|pushed|coached|corrected|walked|sat|stepped|handled|opened|told|gave me)\b|\bthanks? (?:you )?for (?:\w+ing)\b|\bhelp (?:with|on) (?:the )?[A-Z]"
);
re!(GENERIC_FOR, r"(?i)\bfor giving me (?:the|this|a|an) (?:platform|opportunity|chance)\b");
re!(
    EPISODE_TIME,
    r"(?i)上次|那次|那天|上周|上个月|上半年|去年|前年|[一二两三四五六七八九十\d]+年前|[一二三四五六七八九十\d]+月份?|刚来的时候|当时|第一次|那一次|周会上|那个项目|那个标|\b(?:last (?:week|month|year|quarter|spring|summer|autumn|fall|winter)|back in|in (?:january|february|march|april|may|june|july|august|september|october|november|december)|when (?:I|you|we)|that time|\w+day's meeting|the day)\b"
);

fn is_request(doc: &Doc, i: usize) -> bool {
    let flags = doc.requests.get_or_init(|| {
        (0..doc.sents.len()).map(|k| REQUEST_SENT.is_match(doc.sent_text(k))).collect()
    });
    flags.get(i).copied().unwrap_or(false)
}

fn specific(doc: &Doc) -> (Status, Option<Evidence>) {
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
    ATTR_STRONG,
    r"(?i)是您|是你|多亏(?:了)?[您你]|[您你]教|教我|教会|[您你]带|带出来|栽培|[您你]说得对|[您你]提醒|[您你]指出|跟您学|向您学|让我明白|让我学会|没有您|要不是您|\b(?:you taught|taught me|because of you|thanks to you|down to you|you were right|you reminded me|you showed me|you pushed me|what you taught|your coaching|coaching me|you helped me (?:see|learn|understand|grow)|learned from you|you made me)\b"
);
re!(
    ATTR_WEAK,
    r"(?i)学了|学习到|长进|收获|学到|学会|明白了|成长|指导|指点|点拨|受益|指出|\b(?:learn(?:ed|t)|growth|grew|guidance|lesson|taught|pointing out|pointed out|mentor(?:ing|ship)?)\b"
);

fn attribution(doc: &Doc) -> (Status, Option<Evidence>) {
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
    IMPACT,
    r"(?i)现在|从那以后|那次以后|此后|后来|之后我|如今|不再|一次就|一次通过|都会|都是按|都是这个|用上了|效果很好|签下|签了|拿下|赢回|中了|认可|接受了|交付了|顺利|完成|松口|每个项目都|我每周|在带|提升|提高|很少|再也没|越来越|\b(?:now|since|since then|ever since|quota|win rate|I've since|no longer|don't freeze|went through|went live|accepted|won|closed|signed|changed|worked|I've used|used that|success|landed|first pass|first time|on schedule)\b"
);

fn impact(doc: &Doc) -> (Status, Option<Evidence>) {
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
    FLATTERY,
    r"(?i)魅力|金句|荣幸|天花板|无人能及|最强|最好的领导|英明|神武|榜样|永远是对的|最有格局|太厉害了|佩服|跟着您干|见过最|感谢公司|全靠大家|伟大|崇拜|偶像|最优秀|\b(?:best (?:manager|boss|leader)|genius|smartest|incredible|so lucky|respect!|always right|role model|legend|the greatest|amazing leader|thank you to the company|to leadership)"
);
re!(
    PIGGYBACK,
    r"(?i)另外想问|另外想请|顺带|能不能让我|想申请|对了[，,]|顺便|正好想|能不能帮我|能否帮我|多多关照|调薪|加薪|奖金|推荐一下|帮我推荐|还请您|帮我争取|帮我说句话|\b(?:quick one|one more thing|by the way|btw|also, (?:I'd|could|can|would)|could you|would you|can you|put in a word|promotion committee|a raise|bonus|recommend me)\b"
);

re!(
    PIGGYBACK_ASK,
    r"(?i)想请您|麻烦您|希望您能|能否请您|请您(?:帮|推荐|批|给我|考虑|支持|安排|引荐)|推荐我|\b(?:could I|can I|may I|I'd like to ask (?:you|for))\b"
);

fn sincere(doc: &Doc, specific: &(Status, Option<Evidence>)) -> (Status, Option<Evidence>) {
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
    OCCASION_STRONG,
    r"(?i)年底|年终|岁末|年末|新年|春节|元旦|过年|周年|入职|签了|签下|正式签|中标|中了|验收|上线|交付|升任|晋升|升职|年会|结项|回款|\b(?:year-end|end of the year|the year wraps|as the year|new year|holidays?|christmas|anniversary|since I joined|signed|closed|won|went live|acceptance|my promotion|promoted|annual)\b"
);
re!(OCCASION_WEAK, r"(?i)这一年|一年|今年|\b(?:this year|another year|year done)\b");

fn occasion(doc: &Doc) -> (Status, Option<Evidence>) {
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
    FORWARD_STRONG,
    r"(?i)新的一年|下个季度|我打算|我计划|我准备|明年|接下来|后面[^。！？]{0,6}(?:我会|推进)|今后|以后|新岗位上|第[二三四五]年|我希望|我想试着|传下去|我会(?:按|把|带|先|继续向|主动|定期|这样|像)|\b(?:next year|going forward|from now on|in the new role|in year \w+|next (?:quarter|month)|I'm going to|I plan to|I'm aiming|I'd like to (?:try|take|lead)|I'll (?:plan|prepare|mentor|make|run|keep coming|check|share|pass|walk|lead|use|apply|bring)|I will (?:plan|prepare|mentor|make|run|use|apply))\b"
);
re!(
    FORWARD_WEAK,
    r"(?i)继续努力|更加努力|继续加油|再接再厉|\b(?:I'll|I will) (?:keep|work|continue|do my best)|keep at it|keep working|work even harder\b"
);

re!(FORWARD_WILL, r"(?i)\b(?:I'll|I will) \w+");

fn forward(doc: &Doc) -> (Status, Option<Evidence>) {
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

// ---------------------------------------------------------------- entry point

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

// ---------------------------------------------------------------- kind markers

re!(THANKS_MARK, r"(?i)谢谢|感谢|多谢|感恩|致谢|\bthank|\bgrateful\b|\bappreciate");
re!(
    HELP_MARK,
    r"(?i)汇报|请教|求助|想问|问一下|同步一下|帮忙|帮我|怎么办|需要|请您|能不能|能否|您看|\b(?:quick question|got a minute|need to talk|heads up|FYI|update on|advice|advise|could you|can you|would you|should we|should I|what should|I need|approve|any ideas|sign off)\b"
);

/// What [`super::kind::detect_kind`] weighs.
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
