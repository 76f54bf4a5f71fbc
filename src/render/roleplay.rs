//! Role-play output for a terminal: the trust meter and the debrief.

use crate::critique::{self, Status};
use crate::roleplay::{Debrief, Roleplay};

/// A ten-step bar for the trust meter.
pub fn meter(trust: u8) -> String {
    let filled = (trust as usize + 5) / 10;
    format!("{}{} {trust}", "█".repeat(filled), "░".repeat(10 - filled.min(10)))
}

/// The debrief as terminal text (not yet filtered for control characters).
pub fn debrief(rp: &Roleplay, d: &Debrief) -> String {
    let lang = rp.lang;
    let mut out = String::new();
    out.push_str(&format!("\n== {} ==\n", lang.pick("复盘", "Debrief")));
    out.push_str(&format!(
        "{} {}/100 · {} {}\n",
        lang.pick("总分", "Score"),
        d.score,
        lang.pick("信任", "trust"),
        meter(rp.trust())
    ));
    for (id, s) in &d.criteria {
        out.push_str(&format!("  {} {}\n", status_mark(*s), critique::rubric::label(id, lang)));
    }
    if !d.strengths.is_empty() {
        out.push_str(&format!(
            "{} {}\n",
            lang.pick("做得好：", "Strengths:"),
            d.strengths.join(lang.pick("、", ", "))
        ));
    }
    // Turn numbers count from 1, in the JSON too.
    let turn = |n: Option<usize>| n.and_then(|n| Some((n, rp.turns().get(n.checked_sub(1)?)?)));
    if let (Some((b, best)), Some((w, weakest))) = (turn(d.best_turn), turn(d.weakest_turn)) {
        out.push_str(&format!("{} #{b}: {}\n", lang.pick("最好的一轮", "Best turn"), best.user));
        out.push_str(&format!(
            "{} #{w}: {}\n",
            lang.pick("最弱的一轮", "Weakest turn"),
            weakest.user
        ));
    }
    if let Some(better) = &d.better_version {
        out.push_str(&format!(
            "{}\n  {}\n",
            lang.pick("更好的说法：", "A better version:"),
            better
        ));
    }
    if !d.practise.is_empty() {
        out.push_str(lang.pick("接下来练习：\n", "Practise next:\n"));
        for p in &d.practise {
            out.push_str(&format!("  • {}\n    「{}」\n", p.why, p.quote));
        }
    }
    out
}

fn status_mark(s: Status) -> &'static str {
    s.mark()
}

#[cfg(test)]
mod tests {
    #[test]
    fn meter_has_ten_steps() {
        assert_eq!(super::meter(50), "█████░░░░░ 50");
        assert_eq!(super::meter(100), "██████████ 100");
        assert_eq!(super::meter(0), "░░░░░░░░░░ 0");
    }
}
