//! The coach's side of a role-play: scoring each user turn against the rubric, moving
//! the trust meter, and writing the private director's note that steers the boss.

use crate::critique::{self, Criterion, Rubric, Status};
use crate::lang::Lang;
use std::collections::BTreeMap;

/// Scores of one user turn.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TurnScore {
    /// Status per criterion (serialised as `{ "ask": "met", … }`).
    pub statuses: BTreeMap<Criterion, Status>,
    /// Weighted score 0-100.
    pub score: u8,
}

/// Scores `text` (one thing the user said) with the critique detectors and the weights
/// of `rubric` (a [`Rubric`] or a draft kind).
pub fn score_turn(text: &str, rubric: impl Into<Rubric>, lang: Lang) -> TurnScore {
    let rubric = rubric.into();
    let statuses: BTreeMap<Criterion, Status> =
        critique::assess_rubric(text, rubric, lang).into_iter().map(|(id, s, _)| (id, s)).collect();
    TurnScore { score: score_of(rubric, &statuses), statuses }
}

/// The rubric-weighted 0-100 score of a set of statuses.
pub fn score_of(rubric: impl Into<Rubric>, statuses: &BTreeMap<Criterion, Status>) -> u8 {
    let pairs: Vec<(Criterion, Status)> = statuses.iter().map(|(k, v)| (*k, *v)).collect();
    critique::score_rubric(rubric.into(), &pairs)
}

/// How a turn moves the trust meter: `(score - 50) / 5`, clamped to ±10, and a further
/// −5 for a complaining tone or thanks with a request attached.
pub fn trust_delta(score: &TurnScore) -> i32 {
    let mut d = ((score.score as i32 - 50) as f32 / 5.0).round() as i32;
    d = d.clamp(-10, 10);
    for bad in ["tone", "sincere"] {
        if score.statuses.get(bad) == Some(&Status::Missing) {
            d -= 5;
        }
    }
    d
}

fn is(score: &TurnScore, id: &str, s: Status) -> bool {
    score.statuses.get(id) == Some(&s)
}

/// The private stage direction for the boss's next reply, from what the turn lacked or
/// did well. At most two directions, most important first.
pub fn director_note(score: &TurnScore, lang: Lang) -> String {
    use Status::*;
    let mut notes: Vec<&str> = Vec::new();
    let z = lang == Lang::Zh;
    if score.statuses.contains_key("tone") {
        if is(score, "chain", Missing) {
            notes.push(if z {
                "对方越过他的直属领导，直接向你要资源或特批。客气但明确地表示这件事应先和他的直属领导商量，再把话题拉回业务本身。"
            } else {
                "They are asking you for resources or an exception over their own boss's head. Say, politely but clearly, that this goes to their boss first, then steer back to the business."
            });
        }
        if score.score >= 70 && !is(score, "tone", Missing) {
            notes.push(if z {
                "汇报清楚、请求明确。正面回应他的请求：给出你的决定或条件，并说明你需要他下一步做什么。"
            } else {
                "A clear report with a clear ask. Engage with the ask: give your decision or your conditions, and what you need from them next."
            });
        }
        if is(score, "tone", Missing) {
            notes.push(if z {
                "对方在抱怨或把问题推给别人。表现出不耐烦，问他自己已经做了什么、打算怎么解决。"
            } else {
                "They are complaining or blaming others. Show impatience; ask what they have already done and how they plan to fix it."
            });
        }
        if is(score, "ask", Met) && is(score, "effort", Missing) {
            notes.push(if z {
                "对方直接伸手要资源，却没说自己已经做过什么。先问他已经试过哪些办法。"
            } else {
                "They ask for resources without saying what they already tried. Ask what they have tried first."
            });
        }
        if is(score, "situation", Missing) {
            notes.push(if z {
                "对方没讲清现状。追问具体客户、阶段、金额和时间点。"
            } else {
                "They have not stated the situation. Press for the customer, stage, amount and dates."
            });
        }
        if is(score, "plan", Missing) && !is(score, "tone", Missing) {
            notes.push(if z {
                "问他下一步打算怎么做，万一不顺有没有备选方案。"
            } else {
                "Ask what their next step is and what the backup is if it goes wrong."
            });
        }
        if is(score, "politics", Missing) && is(score, "ask", Met) {
            notes.push(if z {
                "提醒他考虑其他部门和流程，别让你替他收拾局面。"
            } else {
                "Remind them to consider other departments and process; you do not want to clean up after them."
            });
        }
    } else {
        if is(score, "sincere", Missing) {
            notes.push(if z {
                "对方在感谢里夹带了请求或只是客套。客气但冷淡地回应，点出先把事情分开说。"
            } else {
                "Their thanks is generic or carries a request. Reply politely but coolly, and suggest keeping the request separate."
            });
        }
        if is(score, "specific", Missing) {
            notes.push(if z {
                "感谢很空泛。淡淡地回应，问他具体指的是哪件事。"
            } else {
                "The thanks is vague. Reply mildly and ask which moment they mean."
            });
        }
        if notes.is_empty() && score.score >= 70 {
            notes.push(if z {
                "你被打动了。真诚回应，说一句你当时为什么那样帮他，并表达对他接下来的期待。"
            } else {
                "You are touched. Reply warmly, say why you helped back then, and what you expect of them next."
            });
        }
    }
    notes.truncate(2);
    notes.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score(pairs: &[(&str, Status)]) -> TurnScore {
        let statuses: BTreeMap<Criterion, Status> =
            pairs.iter().map(|(k, v)| (Criterion::parse(k).unwrap(), *v)).collect();
        TurnScore { score: score_of(Rubric::Help, &statuses), statuses }
    }

    #[test]
    fn complaints_lower_trust_and_get_pressed() {
        use Status::*;
        let bad = score(&[
            ("situation", Missing),
            ("effort", Missing),
            ("ask", Partial),
            ("plan", Missing),
            ("tone", Missing),
            ("timing", Missing),
            ("politics", Missing),
        ]);
        let good = score(&[
            ("situation", Met),
            ("effort", Met),
            ("ask", Met),
            ("plan", Met),
            ("tone", Met),
            ("timing", Partial),
            ("politics", Missing),
        ]);
        assert!(bad.score < 20 && good.score > 75, "{} {}", bad.score, good.score);
        assert!(trust_delta(&bad) < 0 && trust_delta(&good) > 0);
        assert!(director_note(&bad, Lang::En).contains("already done"));
        assert!(director_note(&good, Lang::Zh).contains("正面回应"));
    }
}
