//! The rubrics' content: per criterion its weight, names, definition, advice,
//! placeholder and the passages of the talk it rests on, in Chinese and English.
//!
//! A criterion with passages is the talk's; one without is general practice, not from the
//! talk, shown as such and weighted at most [`GENERAL_MAX_WEIGHT`].

use super::{Criterion, Status};
use crate::lang::Lang;

/// What one criterion of a rubric asks for and how it is scored and explained.
#[derive(Debug, Clone, Copy)]
pub struct CriterionDef {
    /// Which criterion.
    pub id: Criterion,
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
    /// Verbatim passages of the transcript (line 4) the criterion rests on; empty for
    /// general practice.
    pub passages: &'static [&'static str],
}

/// Most weight a general-practice criterion (no passage of the talk) may carry.
pub const GENERAL_MAX_WEIGHT: u8 = 10;

impl CriterionDef {
    /// Does it rest on the talk (has passages)? If not, it is general practice.
    pub fn from_talk(&self) -> bool {
        !self.passages.is_empty()
    }
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

/// The help-request rubric.
pub const HELP: [CriterionDef; 7] = [
    CriterionDef {
        id: Criterion::Situation,
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
        passages: &[
            "现在现状是什么样子的",
            "你领导也不了解你的境况的话，实际上公司的资源很难调动给你",
        ],
    },
    CriterionDef {
        id: Criterion::Effort,
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
        passages: &["我是做了什么努力啊", "无非就是求助，无非就是诉苦啊"],
    },
    CriterionDef {
        id: Criterion::Ask,
        weight: 20,
        name_zh: "明确请求",
        name_en: "Ask",
        def_zh: "开口找领导：提出具体请求（一个决定、一项资源、一次引荐），或认真地请教他的意见",
        def_en: "speaks up to the boss: a specific request (a decision, a resource, an introduction) or an earnest request for their advice",
        good_zh: "开口明确：领导知道你要他做什么，或想听他什么意见。",
        good_en: "You speak up clearly: your boss knows what you need from them or what advice you want.",
        fix_zh: "直接开口：说清要领导做哪个决定、给哪项资源、引荐谁，或者就认真请教一句“您看这件事怎么处理更好？”",
        fix_en: "Speak up: say which decision, resource or introduction you need, or simply ask for their advice: \"How would you handle this?\"",
        slot_zh: "你希望领导给的决定、支持或意见",
        slot_en: "the decision, support or advice you want from your boss",
        passages: &[
            "我建议大家有问题就勇敢地打电话跟领导讲",
            "所以最好的方法是有事情就认真地请教，大事情小事情",
        ],
    },
    CriterionDef {
        id: Criterion::Plan,
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
        passages: &["下一步要怎么做，如果做得不好的话，我们有什么 backup"],
    },
    CriterionDef {
        id: Criterion::Tone,
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
        passages: &["无非就是求助，无非就是诉苦啊，那你领导印象里你这人就是不行对不对啊？"],
    },
    CriterionDef {
        id: Criterion::Timing,
        weight: 10,
        name_zh: "不临时抱佛脚",
        name_en: "Timing",
        def_zh: "不是到了关键期才第一次找领导：提到之前跟领导同步过，或在还来得及的时候就提出",
        def_en: "not turning up only at the critical moment: refers to earlier updates to the boss, or raises it while there is still time",
        good_zh: "看得出领导平时就知道这件事，不是到关键期才第一次听说。",
        good_en: "Your boss has clearly heard about this before; it is not news sprung at the critical moment.",
        fix_zh: "之前跟领导提过就点出来（“上周跟您汇报过……”）；没提过的话，在还来得及时就说，别等到关键期才第一次找他。",
        fix_en: "If you told your boss about it before, say so (\"As I mentioned last week…\"); if not, raise it while there is still time, not for the first time at the crunch.",
        slot_zh: "之前跟领导同步过的情况，或离关键节点还有多久",
        slot_en: "when you last updated your boss on it, or how long until the crunch",
        passages: &[
            "领导也不知道你在干什么，然后项目到关键期了啊",
            "平时不不不打招呼，然后到关键期了就说领导上啊，公司资源上啊",
        ],
    },
    CriterionDef {
        id: Criterion::Politics,
        weight: 10,
        name_zh: "领导的处境",
        name_en: "Politics",
        def_zh: "考虑领导在公司里的处境：给他一个能向管理层交代的立场（价格、条款换来了什么，底线在哪），不和周边部门闹出乱子",
        def_en: "thinks of the boss's position in the company: gives them a position they can defend to management (what a price or terms buy, where the floor is) and causes no trouble with peer departments",
        good_zh: "替领导想好了怎么向上交代，也顾及了周边部门，领导不用替你收拾局面。",
        good_en: "You give your boss a position they can defend upstairs and you keep peer departments on side.",
        fix_zh: "替领导准备好向上交代的理由：这个价格或条款换来了什么、毛利或底线在哪；涉及周边部门的，说明你已经和他们打过招呼。",
        fix_en: "Give your boss the case they can take upstairs: what the price or terms buy and where the margin or floor is; if other departments are involved, say you have already briefed them.",
        slot_zh: "领导向上交代的理由（换来了什么、底线在哪），以及已打过招呼的部门",
        slot_en: "the case your boss can take upstairs (what it buys, the floor), and who you have briefed",
        passages: &[
            "你是不是偷懒了，导致咱们那个报价啊报的上不去",
            "但是你跟周边部门关系处得非常的不好",
            "甚至是资源求助的时候，没有考虑到政治的影响啊",
        ],
    },
];

/// The criterion that replaces `ask` when the listener is your boss's boss.
const CHAIN: CriterionDef = CriterionDef {
    id: Criterion::Chain,
    weight: 20,
    name_zh: "不越级",
    name_en: "Chain",
    def_zh: "向领导的领导汇报、请教，但不越过直属领导向他要决定、资源或特批",
    def_en: "reports to and seeks the advice of your boss's boss, without asking them over your own boss's head for decisions, resources or exceptions",
    good_zh: "只汇报和请教，没有越过直属领导伸手要东西。",
    good_en: "You report and ask for perspective; nothing is asked over your boss's head.",
    fix_zh: "别在领导的领导面前直接要资源或特批：这类请求先和直属领导谈；这里可以改成请教他的看法。",
    fix_en: "Don't ask your boss's boss for resources or exceptions directly: take that to your own boss first; here, ask for their perspective instead.",
    slot_zh: "想请教他的问题（而不是要资源）",
    slot_en: "a question for their perspective (not a request for resources)",
    passages: &[
        "甚至是资源求助的时候，没有考虑到政治的影响啊",
        "办事的时候不考虑场合",
        "加2领导啊，就是你领导的领导啊，是你最重要的客户",
    ],
};

/// The skip-level rubric (talking to your boss's boss): the help rubric with `CHAIN`
/// in place of `ask`.
pub const SKIP_LEVEL: [CriterionDef; 7] =
    [HELP[0], HELP[1], CHAIN, HELP[3], HELP[4], HELP[5], HELP[6]];

/// The thank-you-note rubric.
pub const THANKS: [CriterionDef; 6] = [
    CriterionDef {
        id: Criterion::Specific,
        weight: 10,
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
        passages: &[],
    },
    CriterionDef {
        id: Criterion::Attribution,
        weight: 30,
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
        passages: &[
            "前提是你要把你的成长归因给你的领导",
            "如果你学会把自己的成长归因给你的领导的话，你就是你领导的人生的一部分。",
        ],
    },
    CriterionDef {
        id: Criterion::Impact,
        weight: 15,
        name_zh: "让他看到成长",
        name_en: "Impact",
        def_zh: "让领导看到你的成长：现在会用的能力、坚持下来的结果",
        def_en: "lets the leader see the growth: a skill now used, a result, having kept going",
        good_zh: "写出了之后的变化和结果，领导能看到你的成长。",
        good_en: "You show what changed since, so your leader can see you have grown.",
        fix_zh: "补上后来的变化：现在你会怎么做、因此拿下了什么结果。",
        fix_en: "Add what changed since: what you now do differently and what it led to.",
        slot_zh: "之后你的变化或拿到的结果",
        slot_en: "what changed since, or the result it led to",
        passages: &["让你的领导 get 到你有成长啊", "我现在能坚持下来"],
    },
    CriterionDef {
        id: Criterion::Sincere,
        weight: 20,
        name_zh: "真诚",
        name_en: "Sincere",
        def_zh: "认认真真地感谢，不是空洞的吹捧或客套（不顺带提要求是我们的补充，非讲话内容）",
        def_en: "earnest thanks, not generic flattery or formula (no request tucked in: our addition, not the talk's)",
        good_zh: "真诚，不吹捧，也没有夹带请求。",
        good_en: "It is sincere: no flattery, no request tucked in.",
        fix_zh: "删掉空泛的夸奖和顺带的请求（调薪、推荐、资源），请求另找时间单独说。",
        fix_en: "Cut the generic praise and any tucked-in request (a raise, a referral, resources); ask for those separately.",
        slot_zh: "用具体的事代替夸奖",
        slot_en: "replace the praise with a specific episode",
        passages: &["有几个人认认真真地感谢过提醒你的前辈或者是领导"],
    },
    CriterionDef {
        id: Criterion::Occasion,
        weight: 20,
        name_zh: "时间节点",
        name_en: "Occasion",
        def_zh: "挂在一个关键节点上：年终、签单、周年、晋升",
        def_en: "tied to a milestone: year-end, a deal closed, an anniversary",
        good_zh: "挂在一个关键节点上，感谢来得自然。",
        good_en: "It is tied to a milestone, so the thanks feels natural.",
        fix_zh: "找一个节点开口：年终、签单、项目验收、入职周年或晋升。",
        fix_en: "Tie it to a milestone: year-end, a signed deal, a go-live, an anniversary or a promotion.",
        slot_zh: "这次感谢的节点（年终、签单、周年……）",
        slot_en: "the milestone (year-end, a signed deal, an anniversary…)",
        passages: &["在关键节点，年终碎尾的时候，要学会发感谢啊"],
    },
    CriterionDef {
        id: Criterion::Forward,
        weight: 5,
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
        passages: &[],
    },
];

/// The definition of `c`.
pub(super) fn def(c: Criterion) -> &'static CriterionDef {
    let found = HELP.iter().chain(THANKS.iter()).chain(std::iter::once(&CHAIN)).find(|d| d.id == c);
    found.expect("every criterion has a definition (checked by a test)")
}

/// The advice for a verdict on `c`, in `lang`: what works when met, what to fix otherwise.
pub(super) fn advice(c: Criterion, status: Status, lang: Lang) -> String {
    let d = def(c);
    match (c, status, lang) {
        // For these two, "partial" means "nothing wrong, nothing that shows it yet".
        (Criterion::Tone, Status::Partial, Lang::Zh) => {
            return "语气没有问题，但还可以更像汇报加请教：先讲事实，再说想请领导帮什么。".into()
        }
        (Criterion::Tone, Status::Partial, Lang::En) => {
            return "Nothing wrong with the tone; make it read as a report plus a request for advice: facts first, then what you need.".into()
        }
        (Criterion::Sincere, Status::Partial, Lang::Zh) => {
            return "没有吹捧或夹带请求，很好；再写一件具体的事，感谢才显得真诚。".into()
        }
        (Criterion::Sincere, Status::Partial, Lang::En) => {
            return "No flattery and no tucked-in request, good; add one specific episode so it reads as sincere.".into()
        }
        _ => {}
    }
    match (status, lang) {
        (Status::Met, Lang::Zh) => d.good_zh.to_string(),
        (Status::Met, Lang::En) => d.good_en.to_string(),
        (Status::Partial, Lang::Zh) => format!("有一点，但还不够。{}", d.fix_zh),
        (Status::Partial, Lang::En) => format!("There, but thin. {}", d.fix_en),
        (Status::Missing, Lang::Zh) => d.fix_zh.to_string(),
        (Status::Missing, Lang::En) => d.fix_en.to_string(),
    }
}
