//! The typed rubric core as users meet it: one mark and one label per status on the
//! critique screen and in an exported session, and stored sessions written by older
//! versions (or edited by hand) still read, show and count.

mod common;

use serde_json::Value;
use std::path::Path;
use upward::lang::Lang;
use upward::rubric::{Criterion, Status};
use upward::store::{NewSession, Role, SessionKind, Store, TurnRecord};

const HELP_ZH: &str =
    "王总，华信银行的项目到了报价阶段，客户压价15%。我已经和刘处长沟通过两次。您看能不能批到10%？";

fn run(dir: &Path, args: &[&str], stdin: Option<&str>) -> String {
    let mut c = common::upward(dir);
    c.args(args);
    if let Some(s) = stdin {
        c.write_stdin(s);
    }
    let out = c.output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The critique screen and the Markdown export of the saved critique show each criterion
/// with the same mark and the same Chinese label (no 达到/部分 in one place and 做到了/不够
/// in another).
#[test]
fn critique_screen_and_export_share_one_mark_and_label_per_status() {
    let dir = tempfile::tempdir().unwrap();
    let screen = run(dir.path(), &["critique", "--no-model", "-"], Some(HELP_ZH));
    let json: Value = serde_json::from_str(&run(
        dir.path(),
        &["critique", "--no-model", "--json", "-"],
        Some(HELP_ZH),
    ))
    .unwrap();
    let verdicts: Vec<(Criterion, Status)> = json["criteria"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let id = serde_json::from_value(c["id"].clone()).unwrap();
            (id, serde_json::from_value(c["status"].clone()).unwrap())
        })
        .collect();
    assert_eq!(verdicts.len(), 7, "{json}");
    let statuses: std::collections::HashSet<Status> = verdicts.iter().map(|v| v.1).collect();
    assert!(statuses.len() >= 2, "the draft should exercise more than one status: {json}");

    let list: Value =
        serde_json::from_str(&run(dir.path(), &["sessions", "list", "--json"], None)).unwrap();
    let id = list[0]["id"].as_i64().unwrap().to_string();
    let md = run(dir.path(), &["sessions", "export", &id, "--format", "md", "-o", "-"], None);

    for (c, s) in &verdicts {
        let (name, mark, label) = (c.name(Lang::Zh), s.mark(), s.label(Lang::Zh));
        let line = screen
            .lines()
            .find(|l| l.starts_with(mark) && l.contains(name))
            .unwrap_or_else(|| panic!("no `{mark} {name}` line on the screen:\n{screen}"));
        assert!(line.trim_end().ends_with(label), "{line}");
        assert!(md.contains(&format!("- **{name}** {mark} {label}")), "{name}:\n{md}");
    }
    for old in ["达到", "缺失", "✔", "✘"] {
        assert!(!screen.contains(old) && !md.contains(old), "{old}:\n{screen}\n{md}");
    }
}

/// Turn scores and a debrief stored by an older upward, or edited by hand (an unknown
/// criterion, a number, an odd case), still show, export and count: the known entries
/// are kept, the rest skipped.
#[test]
fn old_and_hand_edited_records_still_read() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(Some(dir.path())).unwrap();
    let mut s = NewSession::new(SessionKind::Roleplay, Lang::En);
    s.scenario = Some("weekly-report".into());
    let id = store.create_session(&s).unwrap();
    let mut t = TurnRecord::new(Role::User, "Could you join the call on Friday?");
    t.scores = Some([(Criterion::Ask, Status::Met)].into());
    store.append_turn(id, &t).unwrap();
    store.append_turn(id, &TurnRecord::new(Role::Boss, "Fine.")).unwrap();
    drop(store);
    // What an older or hand-edited database may hold.
    let conn = rusqlite::Connection::open(dir.path().join("upward.db")).unwrap();
    conn.execute(
        r#"UPDATE turns SET scores = '{"ask":"Met","charisma":"met","plan":70,"tone":{"status":"partial"}}' WHERE role = 'user'"#,
        [],
    )
    .unwrap();
    conn.execute(
        r#"UPDATE sessions SET ended_at = started_at, debrief = '{"score":61,"criteria":{"ask":"met","timing":"missing","vision":"met"},"strengths":["clear ask"],"practise":[{"principle":"structured-report","quote":"先说结论","why":"lead with it"}]}'"#,
        [],
    )
    .unwrap();
    drop(conn);

    let store = Store::open(Some(dir.path())).unwrap();
    let d = store.session(id).unwrap();
    let want: upward::store::Scores =
        [(Criterion::Ask, Status::Met), (Criterion::Tone, Status::Partial)].into();
    assert_eq!(d.turns[0].scores.as_ref(), Some(&want));

    let md = run(
        dir.path(),
        &["sessions", "export", &id.to_string(), "--format", "md", "-o", "-"],
        None,
    );
    assert!(md.contains("Ask ✓ met · Tone ◐ partial"), "{md}");
    assert!(md.contains("**Score**: 61") && md.contains("- **Timing** ✗ missing"), "{md}");
    assert!(md.contains("- clear ask") && md.contains("「先说结论」"), "{md}");
    assert!(!md.contains("charisma") && !md.contains("vision"), "{md}");

    let p: Value = serde_json::from_str(&run(dir.path(), &["progress", "--json"], None)).unwrap();
    assert_eq!(p["roleplays"], 1, "{p}");
    let ids: Vec<&str> =
        p["criteria"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["ask", "timing"], "{p}");
    let list: Value =
        serde_json::from_str(&run(dir.path(), &["sessions", "list", "--json"], None)).unwrap();
    assert_eq!(list[0]["score"].as_f64(), Some(61.0), "{list}");
}
