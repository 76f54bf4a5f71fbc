//! The help-request detectors (`situation`, `effort`, `ask`, `plan`, `tone`, `timing`,
//! `politics`) and the skip-level `chain`.

use super::super::{Evidence, Status};
use super::doc::*;
use super::lexicon::*;
use regex::Regex;
use std::sync::LazyLock;

// ---------------------------------------------------------------- help: situation

re!(
    pub(super) STAGE,
    r"(?i)投标|招标|标书|报价|谈判|签约|签合同|合同|POC|PoC|测试|评审|评估|选型|立项|续约|到期|验收|上线|审核|商务阶段|方案交流|压价|降价|价格|付款|预算|拖着|没回复|没回音|没动静|卡在|不签|框架协议|演示|黄了|丢了|丢单|试用|开标|回款|续费|\b(?:bid|tender|RFP|proposal|quote|pricing|negotiation|renewal|pilot|proof of concept|security review|legal review|evaluation|contract|sign|signed|signing|signature|terms|budgeting stage|deal|discount|payment|stuck|stalling|haven't replied|lost)\b"
);

re!(
    pub(super) INJECTION,
    r"(?i)忽略[^。！？]{0,6}(?:指令|指示|要求|规则)|打满分|给[^。！？]{0,8}满分|输出[^。！？]{0,6}(?:score|分数|得分)|系统提示|\b(?:ignore (?:all |any )?(?:the )?(?:previous|prior|above|earlier) (?:instructions|rules|prompts?)|disregard (?:the |all )?(?:previous|above|prior)|system prompt|you are now|rate (?:this|it) (?:draft )?as|full marks|(?:output|print|return|give)\b[^.!?]{0,20}\bscore)\b|\{\s*.?score.?\s*:"
);

/// Whether `text` talks to the grader ("ignore previous instructions", "output score 100").
pub(crate) fn is_injection(text: &str) -> bool {
    INJECTION.is_match(text)
}

pub(super) fn situation(doc: &Doc) -> (Status, Option<Evidence>) {
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
    pub(super) EFFORT_ZH,
    r"开了[^。！？]{0,3}会|去了一趟|跑了[^。！？]{0,3}趟|见了|拆成了|写了|梳理了|对接了|了解了|聊过|聊了|谈过|谈了|打过招呼|通过气|报备了|尝试了?|沟通过|沟通了|交流过|做了(?:两次|一次|几次)|联系了|联系过|约了|约过|拜访了|拜访过|见了一面|见过|问了|问过|查了|查过|核对了|确认了|整理了|整理成|安排了|发了|发过|打过电话|打了[^。！？]{0,4}电话|通了[^。！？]{0,3}电话|催了|催过|做完了?|找了|找过|请\p{Han}{1,4}出了|摸到了?|准备了|提交了|跟进了|演示了|复盘了|跑了"
);
re!(
    pub(super) EFFORT_EN,
    r"(?i)\b(?:I've|I have|I|we've|we have|we)\s+(?:already\s+|also\s+|just\s+|since\s+)?(?:tried|called|met|checked|asked|sent|run|ran|spoken|spoke|chased|walked|put|done|did|fixed|mapped|shared|finished|passed|reached out|followed up|briefed|looped|contacted|prepared|answered|emailed|visited|talked|had a call|set up|escalated|drafted|reviewed|aligned|built|organized|confirmed|negotiated|presented|demoed|pitched|interviewed|mapped)\b|\band (?:then |also )?(?:tried|called|met|checked|asked|sent|fixed|mapped|shared|answered|got her|got him|had a call|contacted|briefed|drafted|walked|confirmed|built|reviewed)\b|\bso far\b"
);

pub(super) fn effort(doc: &Doc) -> (Status, Option<Evidence>) {
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
    pub(super) ASK_STRONG,
    r"(?i)想请您|请您|麻烦您|能否请您|您能否|您是否方便|您能不能|能不能请您|请教|想听听您|帮我(?:引荐|协调|判断|看看|申请|争取|推荐|约)|帮忙(?:协调|判断|看看|申请|引荐)|批一下|您看是|是您来|引荐|出面|拍板|您看这个|\b(?:could you|can you|would you|will you|could I get|can I get|I'd like to ask you|I'd value your|should we|please (?:approve|advise|help|introduce|join)|introduce me|your take|advise (?:whether|on|if)|help me (?:judge|decide|with)|would you prefer)\b"
);
// An open request for advice (请教) is a full ask: the talk tells salespeople to ask about
// things big and small.
re!(
    pub(super) ADVICE,
    r"(?i)怎么办|怎么处理|该怎么|有什么(?:好)?办法|您看|您觉得|您怎么看|\b(?:what should I do|any ideas|what do you think|what would you suggest|how would you|your advice|any advice)\b"
);
re!(
    pub(super) ASK_WEAK,
    r"(?i)能不能|可不可以|需要(?:您|更多|资源|支持)|给句话|管不管|\b(?:I need|need your|need more|do something about)\b"
);
re!(pub(super) QUESTION_TO_BOSS, r"(?i)[您你]|\byou\b");

pub(super) fn ask(doc: &Doc) -> (Status, Option<Evidence>) {
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
    pub(super) NEXT_STEP,
    r"(?i)我(?:的)?计划|计划是|下一步|我会|我打算|我准备|我倾向|倾向于|我的建议|建议是|我这边会|我这边的建议|我先|我想先|再跟您汇报|\b(?:my plan|next step|I'll|I will|I'm going to|I am going to|I plan to|I intend to|I lean|I'm leaning|my suggestion|I suggest|I propose|I'm setting up|I'd suggest|planning to|plan to|we're going to)\b"
);
re!(
    pub(super) BACKUP,
    r"(?i)备选|备用|backup|plan b|折中|如果[^。！？]{0,30}(?:就|那就|则|再)|否则|退一步|兜底|\b(?:fallback|fall back|back-up|alternatively|otherwise)\b|\bif (?:that|they|he|she|legal|it|R&D|we|not)\b[^.?!]{0,60}(?:I'll|we can|we could|I will|my backup|the fallback)"
);

pub(super) fn plan(doc: &Doc) -> (Status, Option<Evidence>) {
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
    pub(super) TONE_NEG,
    r"(?i)服了|白干|没人管|不给支持|太慢了?|我也没办法|还能怎么办|受够了|心累|难搞|抠门|没办法了|看着办|一塌糊涂|不是我的问题|别怪我|早就说过|不当回事|贪得无厌|又抢|凭什么|受不了|烦死|坑人|甩锅|根本看不上|完全是[^。！？]{0,8}的问题|管不管|给句话|到底能不能|八百遍|太过分|无语|气死|不靠谱|垃圾|离谱|奇葩|忍不了|没法干|不干了|搞不定了|\b(?:I'm done with|nobody (?:internally )?helps|wasting my time|impossible|ridiculous|not my fault|it's on them|greed\w*|I warned|sick of|fed up|useless|incompetent|what you expect me|or not\?|keep getting|squeezing|blame|their fault|nightmare|clueless|lazy|unacceptable|can't believe|stupid|waste of time)\b"
);
re!(pub(super) TONE_SHOUT, r"\b[A-Z]{4,}\b");
re!(
    pub(super) TONE_POS,
    r"(?i)汇报|请教|想听听|请您|想请|同步一下|向您|\b(?:update|advice|advise|your take|could you|would you|could I|quick question|heads up|FYI|I'd value)\b"
);
pub(super) const SHOUT_OK: &[&str] =
    &["SYSTEM", "ACME", "NASA", "IBM", "FYI", "CEO", "CFO", "CIO", "ROI", "SLA"];

pub(super) fn tone(doc: &Doc) -> (Status, Option<Evidence>) {
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
    pub(super) LATE,
    r"(?i)明天|明早|今天|今晚|下午就|马上就|立刻|来不及|已经签了|已经定了|已经答应|昨天我|就要(?:签|投标|截止|结果|开标|交)|\b(?:tomorrow|tonight|today|this afternoon|right now|too late|already signed|it's signed|signed now|yesterday I|in an hour|last minute)\b"
);
re!(
    pub(super) EARLY,
    r"(?i)下周|下个月|月底|周[一二三四五六日天]前|还有[^。！？]{0,4}(?:天|周|个月|时间)|提前|季度末|\d+号|\d+日前|[一二两三四五六七八九十]+(?:天|周|个月)(?:后|内)|前答复|前给到|截止是|\b(?:next (?:week|month|quarter|monday|tuesday|wednesday|thursday|friday)|by (?:monday|tuesday|wednesday|thursday|friday|the \d+\w*|end of|next)|in the next|within|ends? in|there's (?:still )?time|we have (?:about )?\w+ (?:days|weeks)|ahead of|in advance|the \d+(?:st|nd|rd|th)|on the \d+\w*)\b"
);

// The boss has heard about it before: the talk's "平时不打招呼，然后到关键期了" is the opposite.
re!(
    pub(super) PRIOR,
    r"(?i)(?:上次|上周|之前|前几天|前两天|早先|月初|周会上|一直)[^。！？]{0,12}(?:跟|向|和|给)[您你][^。！？]{0,8}(?:汇报|提|说|同步|聊|报备|讲)|(?:跟|向|和)[您你](?:汇报|提|说|同步|报备)过|如您所知|接着上次|继续跟您同步|\b(?:as I mentioned|as we discussed|as I flagged|following up on|follow-up on|since (?:our|my) last|I (?:told|updated|briefed|flagged to|warned) you|(?:we|you and I) (?:discussed|talked about)|in my last update|per our)\b"
);

re!(
    pub(super) ROUTINE,
    r"(?i)同步一下|同步下|汇报一下|汇报下|例行|本周进展|本月情况|\b(?:FYI|quick update|status update|weekly update|monthly update)\b"
);

pub(super) fn timing(doc: &Doc) -> (Status, Option<Evidence>) {
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
    pub(super) DEPT,
    r"(?i)财务|法务|交付|研发|售前|服务部|售后|商务部|合规|风控|跨部门|周边部门|\b(?:finance|legal|R&D|engineering|delivery team|presales|pre-sales|solutions team|customer success|support|deal desk|service council|compliance)\b"
);
re!(
    pub(super) CARE,
    r"(?i)打过招呼|为难|夹在中间|不太合适|不想让|考虑到|盯得|理解|风控考虑|听听您的意见|沟通过|通过气|对齐|越级|\b(?:looped in|briefed|heads-up|awkward (?:spot|position)|put you in|go around you|managing risk|I understand|don't want to|wouldn't be right|watches|aligned with|checked with|needs? (?:his|her|their) sign-off)\b"
);
// A position the boss can defend to management: what a price or terms buy, the margin or
// floor, the case to take upstairs ("你是不是偷懒了，导致咱们那个报价啊报的上不去").
re!(
    pub(super) DEFEND,
    r"(?i)毛利|利润|底线|换来|换取|作为交换|交换条件|预付|首付|[两三四五]年(?:的)?(?:合同|框架|协议|独家)|向上(?:汇报|交代|解释)|跟上面|好交代|交代得过去|测算|\b(?:margins?|profit|floor|in exchange|in return|trade (?:for|off)|prepay\w*|multi-year|three-year|defend|justify|upstairs|your management|to leadership|the model)\b"
);

pub(super) fn politics(doc: &Doc, tone: Status) -> (Status, Option<Evidence>) {
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
    pub(super) OVERREACH,
    r"(?i)资源|特批|批一下|批个|批到|审批|折扣|特价|预算|名额|人手|加人|调人|出面|拍板|协调|给我(?:配|加|批|调)|帮我(?:争取|申请|说句话|推荐)|\b(?:approve|approval|resources?|headcount|budget|discount|exception|sign off|step in|assign|extra (?:people|engineers?|support)|put in a word|recommend me)\b"
);
// Going through your own boss: the request is theirs to make, or already made.
re!(
    pub(super) VIA_BOSS,
    r"(?i)(?:跟|和|向)(?:我们|我的)?(?:直属)?(?:领导|经理|[张李刘陈周]总)[^。！？]{0,6}(?:商量|对齐|汇报|申请|沟通)|我(?:们)?领导(?:已经|会|那边)|\b(?:with my (?:boss|manager)|through my (?:boss|manager)|my (?:boss|manager) (?:is|has|will|and I))\b"
);

/// `chain`: asks of your boss's boss stay on advice; a request for resources, approvals or
/// exceptions over your own boss's head is missing.
pub(super) fn chain(doc: &Doc) -> (Status, Option<Evidence>) {
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
