//! Query and text normalisation for retrieval: stop words and chat fillers, question tags
//! that end a clause without naming its topic, and one-edit typos.

use super::is_ideograph;

/// Chinese function words and fillers that carry no topic.
pub(super) const ZH_STOP: &[&str] = &[
    "的",
    "了",
    "是",
    "我",
    "你",
    "他",
    "她",
    "它",
    "我们",
    "你们",
    "他们",
    "吗",
    "呢",
    "啊",
    "吧",
    "呀",
    "么",
    "嘛",
    "哦",
    "怎么",
    "怎么办",
    "怎样",
    "如何",
    "什么",
    "为什么",
    "要",
    "会",
    "在",
    "和",
    "跟",
    "与",
    "就",
    "也",
    "都",
    "还",
    "这",
    "那",
    "这个",
    "那个",
    "一个",
    "有",
    "没有",
    "不",
    "把",
    "被",
    "给",
    "对",
    "让",
    "才",
    "又",
    "很",
    "应该",
    "可以",
    "能",
    "该",
    "得",
    "地",
    "着",
    "过",
    "自己",
    "一下",
    "一些",
    "还是",
    "但是",
    "如果",
    "因为",
    "所以",
    "然后",
    "其实",
    "就是",
    "比较",
    "到底",
    "是不是",
    "时候",
    "的话",
    "之后",
    "以后",
    // Colloquial fillers and hedges.
    "咋",
    "啥",
    "为啥",
    "干嘛",
    "呗",
    "啦",
    "哈",
    "老是",
    "总是",
    "一直",
    "感觉",
    "觉得",
    "好像",
    "有点",
    "真的",
    "根本",
    "天天",
    "直接",
    "已经",
    "估计",
    "要不要",
    "这样",
    "这么",
    "那么",
    "现在",
    "一顿",
];

/// English stop words.
const EN_STOP: &[&str] = &[
    "a", "an", "the", "i", "me", "my", "myself", "we", "our", "us", "you", "your", "he", "him",
    "his", "she", "her", "it", "its", "they", "them", "their", "is", "are", "was", "were", "be",
    "been", "being", "am", "do", "does", "did", "doing", "have", "has", "had", "to", "of", "in",
    "on", "at", "for", "with", "about", "from", "by", "as", "or", "and", "but", "if", "then", "so",
    "that", "this", "these", "those", "what", "which", "who", "whom", "how", "when", "where",
    "why", "should", "would", "could", "can", "will", "just", "not", "no", "into", "than", "too",
    "very", "there", "here", "all", "any", "some", "s", "t", "don", "don't", "i'm", "it's", "get",
    "got", "go", "make", "also", "only", "up", "out", "now", "ok", "okay", "doesn't", "didn't",
    "isn't", "can't", "won't", "i've", "i'll", "i'd", "doesn", "didn", "isn", "wasn", "won", "ve",
    "ll", "d", "m",
];

/// Chat fillers and shorthand that carry no topic.
const EN_FILLERS: &[&str] = &[
    "like",
    "even",
    "actually",
    "literally",
    "really",
    "maybe",
    "lol",
    "af",
    "tbh",
    "sth",
    "smth",
    "shd",
    "wanna",
    "gonna",
    "kinda",
    "gotta",
    "stuff",
    "thing",
    "things",
    "tho",
    "pls",
    "u",
    "ur",
    "im",
    "dont",
    "cant",
    "w",
    "o",
    "one",
    "lot",
    "much",
    "every",
    "single",
    "whole",
    "etc",
    "yeah",
    "hey",
    "hi",
    "guy",
    "guys",
];

/// Whether an English word (lower case) is a stop word or a chat filler.
pub(super) fn is_en_stop(w: &str) -> bool {
    EN_STOP.contains(&w) || EN_FILLERS.contains(&w)
}

/// Question tags that end a clause without naming its topic ("有问题吗", "is that bad"):
/// dropped from the end of each clause of a query so that, say, the "问题" of "有问题吗"
/// does not pull in the principle about problems.
const ZH_TAILS: &[&str] = &[
    "有问题吗",
    "有问题么",
    "有没有问题",
    "是不是不太好",
    "是不是不好",
    "会不会不妥",
    "合适吗",
    "合适么",
    "合适不",
    "合不合适",
    "正常吗",
    "正常么",
    "好不好",
    "行不行",
    "对不对",
    "可以吗",
    "行吗",
    "好吗",
    "该咋办",
    "该怎么办",
    "怎么办",
    "咋办",
    "是什么意思",
    "是啥意思",
];
const EN_TAILS: &[&str] = &[
    "is that bad",
    "is this bad",
    "is that a problem",
    "is that ok",
    "is that okay",
    "is that normal",
    "is it normal",
    "what now",
    "what do i do",
    "what should i do",
    "any tips",
    "any advice",
    "any thoughts",
    "or not",
];

/// Drops trailing question tags from each clause of `query` (clauses end at punctuation).
pub(super) fn strip_question_tails(query: &str) -> String {
    let mut out = String::with_capacity(query.len());
    let mut clause = String::new();
    let finish = |clause: &mut String, out: &mut String| {
        let mut c = clause.trim_end().to_string();
        loop {
            let cut = ZH_TAILS.iter().chain(EN_TAILS).map(|t| t.len()).find(|&n| {
                let at = c.len().wrapping_sub(n);
                n <= c.len()
                    && c.is_char_boundary(at)
                    && ZH_TAILS.iter().chain(EN_TAILS).any(|t| c[at..].to_lowercase() == *t)
                    && !(c[at..].starts_with(|ch: char| ch.is_ascii_alphabetic())
                        && c[..at].ends_with(char::is_alphanumeric))
            });
            match cut {
                Some(n) => {
                    c.truncate(c.len() - n);
                    c = c.trim_end().to_string();
                }
                None => break,
            }
        }
        out.push_str(&c);
        clause.clear();
    };
    for ch in query.chars() {
        if ch.is_alphanumeric() || is_ideograph(ch) || ch.is_whitespace() || ch == '\'' || ch == '-'
        {
            clause.push(ch);
        } else {
            finish(&mut clause, &mut out);
            out.push(ch);
        }
    }
    finish(&mut clause, &mut out);
    out
}

/// Whether `a` and `b` are one edit apart: a letter inserted, dropped, changed, or two
/// neighbours swapped ("thnak", "mangaer", "pipline").
pub(super) fn one_edit_apart(a: &str, b: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let (la, lb) = (a.len(), b.len());
    if la.abs_diff(lb) > 1 || a == b {
        return false;
    }
    let pre = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    if la == lb {
        let rest = |i: usize| a[i..] == b[i..];
        (pre + 1 < la && a[pre] == b[pre + 1] && a[pre + 1] == b[pre] && rest(pre + 2))
            || rest(pre + 1)
    } else {
        let (long, short) = if la > lb { (&a, &b) } else { (&b, &a) };
        long[pre + 1..] == short[pre..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn question_tails_are_dropped_per_clause() {
        assert_eq!(strip_question_tails("只管跑客户，有问题吗"), "只管跑客户，");
        assert_eq!(strip_question_tails("跟老板一个月不说话正常吗？"), "跟老板一个月不说话？");
        assert_eq!(strip_question_tails("I only ping my boss for help, is that bad?"), {
            "I only ping my boss for help,?"
        });
        // Only whole words at the end of a clause.
        assert_eq!(strip_question_tails("this bad"), "this bad");
        assert_eq!(strip_question_tails("有问题就说"), "有问题就说");
        // Odd input never panics.
        for s in ["", "吗", "İİİ is that bad", "?!", "is that bad"] {
            let _ = strip_question_tails(s);
        }
    }

    #[test]
    fn typos_are_one_edit_apart() {
        assert!(one_edit_apart("thnak", "thank"));
        assert!(one_edit_apart("mangaer", "manager"));
        assert!(one_edit_apart("piplin", "pipelin"));
        assert!(one_edit_apart("bos", "boss"));
        assert!(!one_edit_apart("boss", "boss"));
        assert!(!one_edit_apart("report", "resort_x"));
        assert!(!one_edit_apart("thank", "think about"));
    }
}
