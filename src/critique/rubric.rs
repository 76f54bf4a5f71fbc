//! The two rubrics: criterion names, weights, definitions, advice and placeholders,
//! in Chinese and English.

use super::Status;
use crate::lang::Lang;

/// One criterion of a rubric.
#[derive(Debug, Clone, Copy)]
pub struct Criterion {
    /// Stable id.
    pub id: &'static str,
    /// Weight in the score (the weights of a rubric add up to 100).
    pub weight: u8,
    /// Short name, Chinese.
    pub name_zh: &'static str,
    /// Short name, English.
    pub name_en: &'static str,
    /// What it asks for, Chinese.
    pub def_zh: &'static str,
    /// What it asks for, English.
    pub def_en: &'static str,
    /// What is good when it is met, Chinese.
    pub good_zh: &'static str,
    /// What is good when it is met, English.
    pub good_en: &'static str,
    /// How to fix it when it is missing or thin, Chinese.
    pub fix_zh: &'static str,
    /// How to fix it when it is missing or thin, English.
    pub fix_en: &'static str,
    /// Placeholder for the fact to add, Chinese (`[补充：…]`).
    pub slot_zh: &'static str,
    /// Placeholder for the fact to add, English (`[add: …]`).
    pub slot_en: &'static str,
}

impl Criterion {
    /// The short name in `lang`.
    pub fn name(&self, lang: Lang) -> &'static str {
        lang.pick(self.name_zh, self.name_en)
    }
    /// The definition in `lang`.
    pub fn definition(&self, lang: Lang) -> &'static str {
        lang.pick(self.def_zh, self.def_en)
    }
    /// The placeholder in `lang`, e.g. `[补充：你已经尝试过的办法]`.
    pub fn placeholder(&self, lang: Lang) -> String {
        match lang {
            Lang::Zh => format!("[补充：{}]", self.slot_zh),
            Lang::En => format!("[add: {}]", self.slot_en),
        }
    }
}

/// The short name of criterion `id` in `lang` (the id itself when it is unknown).
pub fn label(id: &str, lang: Lang) -> &str {
    criterion(id).map_or(id, |c| c.name(lang))
}

/// The help-request rubric.
pub const HELP: [Criterion; 7] = [
    Criterion {
        id: "situation",
        weight: 20,
        name_zh: "现状",
        name_en: "Situation",
        def_zh: "讲清楚具体现状：哪个客户、哪个项目、到了哪个阶段、关键数字",
        def_en: "the concrete current state: customer, project, stage, numbers",
        good_zh: "现状讲得具体，领导不用追问就知道发生了什么。",
        good_en: "The situation is concrete: your boss knows what is going on without asking.",
        fix_zh: "先用一两句话讲清客户名称、项目阶段和关键数字（金额、折扣、截止时间），领导才能判断。",
        fix_en: "Open with one or two sentences naming the customer, the stage and the key numbers (value, discount, deadline) so your boss can judge.",
        slot_zh: "客户名称、项目阶段和关键数字",
        slot_en: "customer, stage and key numbers",
    },
    Criterion {
        id: "effort",
        weight: 15,
        name_zh: "已做努力",
        name_en: "Effort",
        def_zh: "说明自己已经做了什么、试过什么",
        def_en: "what the writer has already done or tried",
        good_zh: "写出了你已经做过的努力，说明你不是把问题直接丢给领导。",
        good_en: "You show what you have already done, so this is not a problem dumped on your boss.",
        fix_zh: "补一句你已经做了什么、试过什么（见过谁、发过什么、结果如何），避免给人“只会求助”的印象。",
        fix_en: "Add what you have already done or tried (who you met, what you sent, what happened) so it does not read as handing the problem up.",
        slot_zh: "你已经尝试过的办法",
        slot_en: "what you have already tried",
    },
    Criterion {
        id: "ask",
        weight: 20,
        name_zh: "明确请求",
        name_en: "Ask",
        def_zh: "向领导提出具体请求：要一个决定、一项资源、一次引荐或一个建议",
        def_en: "a specific request to the boss: a decision, a resource, an introduction or advice",
        good_zh: "请求明确，领导知道你要他做什么。",
        good_en: "The ask is clear: your boss knows what you need from them.",
        fix_zh: "把“怎么办”换成一个具体请求：要领导做哪个决定、给哪项资源、引荐谁，或在两个方案里帮你选。",
        fix_en: "Replace \"what should I do\" with a specific request: which decision, which resource, which introduction, or which of two options.",
        slot_zh: "你希望领导做的具体决定或支持",
        slot_en: "the specific decision or support you need",
    },
    Criterion {
        id: "plan",
        weight: 15,
        name_zh: "下一步与备选",
        name_en: "Plan",
        def_zh: "说出自己的下一步，最好再带一个备选方案（backup）",
        def_en: "the writer's own next step and/or a backup option",
        good_zh: "带着自己的下一步和备选方案来，领导只需拍板。",
        good_en: "You bring your own next step and a fallback: your boss only has to decide.",
        fix_zh: "写出你打算怎么做，以及做不成时的备选方案（backup），让领导做选择题而不是问答题。",
        fix_en: "Say what you will do next and what the fallback is if it fails, so your boss picks an option instead of solving it for you.",
        slot_zh: "你的下一步和备选方案",
        slot_en: "your next step and your fallback",
    },
    Criterion {
        id: "tone",
        weight: 10,
        name_zh: "语气",
        name_en: "Tone",
        def_zh: "以汇报和请教的口吻，而不是抱怨、诉苦或指责客户和同事",
        def_en: "framed as reporting and asking for advice, not complaining, venting or blaming customers or colleagues",
        good_zh: "口吻是汇报加请教，没有诉苦和甩锅。",
        good_en: "It reads as a report and a request for advice, with no venting or blame.",
        fix_zh: "删掉抱怨和指责，把情绪换成事实：客户提了什么要求、同事那边卡在哪一步。",
        fix_en: "Drop the venting and blame; turn feelings into facts: what the customer asked for, where the other team is stuck.",
        slot_zh: "把抱怨改成事实和请求",
        slot_en: "restate the complaint as facts and a request",
    },
    Criterion {
        id: "timing",
        weight: 10,
        name_zh: "时机",
        name_en: "Timing",
        def_zh: "提前提出，给领导留出行动时间，而不是最后一刻或事后才说",
        def_en: "raised with time to act, not at the last minute or after the fact",
        good_zh: "提前说了截止时间，领导还有时间出手。",
        good_en: "You raise it with a deadline that still leaves your boss time to act.",
        fix_zh: "写明截止时间，并尽量提前开口；明天就要结果或事情已经定了才说，领导很难帮上忙。",
        fix_en: "State the deadline and raise it early; asking the day before, or after the fact, leaves your boss nothing to work with.",
        slot_zh: "截止时间，以及领导还有多少时间可以出手",
        slot_en: "the deadline and how much time is left to act",
    },
    Criterion {
        id: "politics",
        weight: 10,
        name_zh: "内部协同",
        name_en: "Politics",
        def_zh: "考虑到周边部门、公司流程和领导的处境",
        def_en: "awareness of other departments, process and the boss's position",
        good_zh: "考虑到了周边部门、流程和领导的处境，不会让领导替你收拾局面。",
        good_en: "You account for other departments, process and your boss's position.",
        fix_zh: "说明涉及哪些部门（财务、法务、交付、研发）、要走什么流程，以及你如何避免让领导为难。",
        fix_en: "Say which teams are involved (finance, legal, delivery, R&D), which process applies, and how you avoid putting your boss in a difficult spot.",
        slot_zh: "涉及的部门和流程，以及你已经打过的招呼",
        slot_en: "the teams and process involved, and who you have already briefed",
    },
];

/// The thank-you-note rubric.
pub const THANKS: [Criterion; 6] = [
    Criterion {
        id: "specific",
        weight: 20,
        name_zh: "具体事件",
        name_en: "Specific",
        def_zh: "写出领导帮助或纠正你的一件具体的事",
        def_en: "a concrete episode where the leader helped or corrected them",
        good_zh: "写到了领导帮你的一件具体的事，对方能一下子想起来。",
        good_en: "You name a concrete episode your leader will remember.",
        fix_zh: "写一件具体的事：什么时候、哪个客户或项目、领导做了什么或说了什么。",
        fix_en: "Name one concrete episode: when, which customer or deal, what your leader did or said.",
        slot_zh: "领导帮助或纠正你的一件具体的事",
        slot_en: "one specific time your leader helped or corrected you",
    },
    Criterion {
        id: "attribution",
        weight: 25,
        name_zh: "成长归因",
        name_en: "Attribution",
        def_zh: "把自己的成长或学到的东西归因给领导",
        def_en: "credits their own growth or learning to the leader",
        good_zh: "把自己的成长归因给了领导，让他看到自己的投入有了结果。",
        good_en: "You credit your growth to your leader, so they see their investment paid off.",
        fix_zh: "明确说出你从领导那里学到了什么、哪方面因为他而成长，这是感谢里最打动人的部分。",
        fix_en: "Say what you learned from your leader and how you grew because of them: this is the part that moves people.",
        slot_zh: "你从领导那里学到的东西",
        slot_en: "what you learned from your leader",
    },
    Criterion {
        id: "impact",
        weight: 15,
        name_zh: "变化与结果",
        name_en: "Impact",
        def_zh: "说明之后发生的变化：现在会用的能力、拿到的结果",
        def_en: "what has changed since: a skill now used, a result",
        good_zh: "写出了之后的变化和结果，感谢有了分量。",
        good_en: "You show what changed since and what it led to.",
        fix_zh: "补上后来的变化：现在你会怎么做、因此拿下了什么结果。",
        fix_en: "Add what changed since: what you now do differently and what it led to.",
        slot_zh: "之后你的变化或拿到的结果",
        slot_en: "what changed since, or the result it led to",
    },
    Criterion {
        id: "sincere",
        weight: 15,
        name_zh: "真诚",
        name_en: "Sincere",
        def_zh: "不是空洞的吹捧，也不顺带提要求",
        def_en: "not generic flattery, not a request piggy-backed on the thanks",
        good_zh: "真诚，不吹捧，也没有夹带请求。",
        good_en: "It is sincere: no flattery, no request tucked in.",
        fix_zh: "删掉空泛的夸奖和顺带的请求（调薪、推荐、资源），请求另找时间单独说。",
        fix_en: "Cut the generic praise and any tucked-in request (a raise, a referral, resources); ask for those separately.",
        slot_zh: "用具体的事代替夸奖",
        slot_en: "replace the praise with a specific episode",
    },
    Criterion {
        id: "occasion",
        weight: 10,
        name_zh: "时间节点",
        name_en: "Occasion",
        def_zh: "挂在一个节点上：年终、签单、周年、晋升",
        def_en: "tied to a milestone: year-end, a deal closed, an anniversary",
        good_zh: "挂在一个关键节点上，感谢来得自然。",
        good_en: "It is tied to a milestone, so the thanks feels natural.",
        fix_zh: "找一个节点开口：年终、签单、项目验收、入职周年或晋升。",
        fix_en: "Tie it to a milestone: year-end, a signed deal, a go-live, an anniversary or a promotion.",
        slot_zh: "这次感谢的节点（年终、签单、周年……）",
        slot_en: "the milestone (year-end, a signed deal, an anniversary…)",
    },
    Criterion {
        id: "forward",
        weight: 15,
        name_zh: "展望",
        name_en: "Forward",
        def_zh: "给出面向未来的具体承诺",
        def_en: "a forward-looking commitment",
        good_zh: "有具体的下一步承诺，领导能看到你会继续成长。",
        good_en: "You commit to something concrete ahead, so your leader sees the growth continue.",
        fix_zh: "结尾写一个具体承诺：明年想挑战什么、会怎样把学到的用下去或传给新人。",
        fix_en: "Close with a concrete commitment: what you will take on next, how you will keep using or pass on what you learned.",
        slot_zh: "接下来你会怎么做",
        slot_en: "what you will do next",
    },
];

/// The rubric of a kind.
pub fn rubric(kind: super::DraftKind) -> &'static [Criterion] {
    match kind {
        super::DraftKind::Help => &HELP,
        super::DraftKind::Thanks => &THANKS,
    }
}

/// Looks a criterion up by id in either rubric.
pub fn criterion(id: &str) -> Option<&'static Criterion> {
    HELP.iter().chain(THANKS.iter()).find(|c| c.id == id)
}

/// The advice for a verdict, in `lang`: what works when met, what to fix otherwise.
pub fn advice(id: &str, status: Status, lang: Lang) -> String {
    let Some(c) = criterion(id) else {
        return String::new();
    };
    match (id, status, lang) {
        // For these two, "partial" means "nothing wrong, nothing that shows it yet".
        ("tone", Status::Partial, Lang::Zh) => {
            return "语气没有问题，但还可以更像汇报加请教：先讲事实，再说想请领导帮什么。".into()
        }
        ("tone", Status::Partial, Lang::En) => {
            return "Nothing wrong with the tone; make it read as a report plus a request for advice: facts first, then what you need.".into()
        }
        ("sincere", Status::Partial, Lang::Zh) => {
            return "没有吹捧或夹带请求，很好；再写一件具体的事，感谢才显得真诚。".into()
        }
        ("sincere", Status::Partial, Lang::En) => {
            return "No flattery and no tucked-in request, good; add one specific episode so it reads as sincere.".into()
        }
        _ => {}
    }
    match (status, lang) {
        (Status::Met, Lang::Zh) => c.good_zh.to_string(),
        (Status::Met, Lang::En) => c.good_en.to_string(),
        (Status::Partial, Lang::Zh) => format!("有一点，但还不够。{}", c.fix_zh),
        (Status::Partial, Lang::En) => format!("There, but thin. {}", c.fix_en),
        (Status::Missing, Lang::Zh) => c.fix_zh.to_string(),
        (Status::Missing, Lang::En) => c.fix_en.to_string(),
    }
}

/// The heading for a verdict in `lang`.
pub fn status_label(status: Status, lang: Lang) -> &'static str {
    match status {
        Status::Met => lang.pick("做到了", "met"),
        Status::Partial => lang.pick("不够", "partial"),
        Status::Missing => lang.pick("缺少", "missing"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_add_up_and_ids_match_kb() {
        assert_eq!(HELP.iter().map(|c| c.weight as u32).sum::<u32>(), 100);
        assert_eq!(THANKS.iter().map(|c| c.weight as u32).sum::<u32>(), 100);
        let help: Vec<_> = HELP.iter().map(|c| c.id).collect();
        let thanks: Vec<_> = THANKS.iter().map(|c| c.id).collect();
        assert_eq!(help, crate::kb::HELP_CRITERIA);
        assert_eq!(thanks, crate::kb::THANKS_CRITERIA);
    }

    #[test]
    fn placeholders_are_bracketed_in_both_languages() {
        let effort = criterion("effort").unwrap();
        assert_eq!(effort.placeholder(Lang::Zh), "[补充：你已经尝试过的办法]");
        assert_eq!(effort.placeholder(Lang::En), "[add: what you have already tried]");
    }
}
