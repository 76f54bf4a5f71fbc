//! Lexicons shared by several detectors and by the rewrite: organisations, people,
//! Latin names, numbers, greetings.

use super::doc::Doc;
use regex::Regex;
use std::sync::LazyLock;

re!(pub(crate) ORG_ZH, r"\p{Han}{2}(?:银行|集团|科技|乳业|水务|重工|电信|移动|联通|石油|石化|矿业|纺织|航运|港口|酒店|地铁|物流|医疗|制药|电网|地产|航空|电子|医院|公司|能源|证券|保险|汽车|股份|控股|实业|电力|通信|软件|化工|钢铁|传媒|教育|零售|食品|机械|环保|建设|药业|电气|半导体|信息)");
re!(pub(crate) PERSON_ZH, r"[王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史顾侯邵孟龙段雷钱汤尹黎易常武乔贺赖龚](?:总监|总|经理|处长|主任|院长|局长|董事长|部长|科长|老师)|[小老][王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯]");
re!(pub(super) LATIN_WORD, r"\b[A-Z][a-z]+(?:[A-Z][a-z]+)*(?:'s)?\b");
re!(pub(super) NUMBER, r"[$¥￥€£]?\d+(?:[.,]\d+)*");
re!(pub(super) NUMBER_ZH, r"[一二两三四五六七八九十百千]+(?:万|亿|个点|成|家|个需求|个仓库|年)");
re!(pub(super) GREETING, r"(?i)\b(?:hi|hey|hello|dear|thanks|thank you)[,\s]+$");

pub(super) const LATIN_STOP: &[&str] = &[
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
