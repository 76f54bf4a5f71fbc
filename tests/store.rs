//! Session store: saving, listing, exporting and deleting sessions; durability when a
//! writer is killed; concurrent writers; refusing damaged or newer databases; progress.

mod common;

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use upward::coach::save::save_critique;
use upward::critique::{critique, Critique, KindChoice};
use upward::engine::{Engine, GenerateOptions, LoadOptions, SamplingParams};
use upward::kb::KnowledgeBase;
use upward::lang::Lang;
use upward::roleplay::{self, load_personas, record::save_turn, Debrief, Roleplay};
use upward::store::{
    status_value, NewSession, Role, SessionKind, Store, StoreError, Trend, TurnRecord,
    SCHEMA_VERSION,
};

fn upward(dir: &Path) -> assert_cmd::Command {
    common::upward(dir)
}

/// Critiques `draft` with the rules (as `upward critique --no-model` does) and saves it
/// through the same function the REPL and `upward critique` use. Returns the session id
/// and the critique.
fn save_real_critique(store: &Store, draft: &str) -> (i64, Critique) {
    let kb = KnowledgeBase::load_default().unwrap();
    let c = critique(draft, KindChoice::Help, None, &kb).unwrap();
    (save_critique(store, draft, &c, None).unwrap(), c)
}

/// A role-play as the REPL saves it: a session for the scenario and persona, two turns
/// played on SmolLM2 (greedy, short answers) each written by `record::save_turn`, then
/// the debrief. Returns the session id, the role-play and its debrief.
fn save_roleplay(store: &Store) -> (i64, Roleplay, Debrief) {
    let kb = KnowledgeBase::load_default().unwrap();
    let personas = load_personas().unwrap();
    let mut engine = Engine::load(&common::smol(), &LoadOptions::default()).unwrap();
    let opts = GenerateOptions { sampling: SamplingParams::greedy(), max_tokens: 12 };
    let stop = std::sync::atomic::AtomicBool::new(false);
    let mut rp =
        Roleplay::new(&kb, &personas, "weekly-report", Some("numbers-vp"), Lang::En).unwrap();
    let mut s = NewSession::new(SessionKind::Roleplay, Lang::En);
    s.scenario = Some(rp.scenario.id.clone());
    s.persona = Some(rp.persona.id.clone());
    s.model = Some("smollm2-135m".into());
    s.title = Some(rp.scenario.title.get(Lang::En).to_string());
    let id = store.create_session(&s).unwrap();
    for text in [
        "Boss, the East China deal hit resistance; could you help coordinate?",
        "We met the client twice already; we need you there before next Wednesday.",
    ] {
        let (turn, reply) = rp.take_turn(&mut engine, text, &opts, &stop, &mut |_| {}).unwrap();
        save_turn(store, id, turn, &reply).unwrap();
    }
    let d = roleplay::debrief(&rp, &kb, None);
    store.end_session(id, Some(&serde_json::to_value(&d).unwrap())).unwrap();
    (id, rp, d)
}

#[test]
fn roleplay_and_critiques_saved_listed_shown_exported_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(Some(dir.path())).unwrap();
    let (rp_id, rp, debrief) = save_roleplay(&store);
    let (c1, _) = save_real_critique(&store, "王总，项目卡住了。");
    let (c2, crit2) = save_real_critique(&store, "王总，想请您周三前帮忙约客户高层。");
    let rp = (rp_id, rp);
    assert!(rp.0 != c1 && c1 != c2);

    // Listed, through the library and the CLI.
    let list = store.list_sessions().unwrap();
    assert_eq!(list.iter().map(|s| s.session.id).collect::<Vec<_>>(), [rp.0, c1, c2]);
    assert_eq!(list[0].turns, 4);
    assert_eq!(list[0].score, Some(debrief.score as f64));
    assert_eq!(list[1].session.kind, SessionKind::Critique);
    assert_eq!(list[2].score, Some(crit2.score as f64));
    let out = upward(dir.path()).args(["sessions", "list", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 3);
    assert_eq!(listed[0]["scenario"], "weekly-report");
    let out = upward(dir.path()).args(["sessions", "list"]).output().unwrap();
    let table = String::from_utf8(out.stdout).unwrap();
    let title = rp.1.scenario.title.get(Lang::En);
    assert!(table.contains(title) && table.contains("role-play"), "{table}");

    // Shown: everything needed to rebuild the conversation, as the writers wrote it.
    let d = store.session(rp.0).unwrap();
    assert_eq!(d.turns.len(), 4);
    assert_eq!(d.turns.iter().map(|t| t.seq).collect::<Vec<_>>(), [1, 2, 3, 4]);
    let played = rp.1.turns();
    assert_eq!(d.turns[0].role, Role::User);
    assert_eq!(d.turns[0].scores, Some(played[0].score.statuses.clone()));
    assert_eq!(d.turns[1].role, Role::Boss);
    assert_eq!(d.turns[1].text, played[0].boss);
    assert!(d.turns[1].generated_tokens > 0 && !d.turns[1].interrupted);
    assert_eq!(d.turns[2].trust, Some(played[1].trust as f64));
    assert_eq!(d.session.persona.as_deref(), Some("numbers-vp"));
    assert_eq!(d.session.debrief.as_ref().unwrap()["score"], debrief.score);
    assert!(d.session.ended_at.is_some());
    let dc = store.session(c2).unwrap();
    assert_eq!(dc.critiques.len(), 1);
    assert_eq!(dc.critiques[0].result["criteria"][0]["status"], crit2.criteria[0].status.code());
    assert_eq!(dc.critiques[0].lang, Lang::Zh);
    let rp_id = rp.0;
    let trust = played[1].trust;

    // Exported as Markdown to a file, and as JSON to stdout: only this session.
    let md_path = dir.path().join("out/rp.md");
    std::fs::create_dir(dir.path().join("out")).unwrap();
    let out = upward(dir.path())
        .args(["sessions", "export", &rp_id.to_string(), "--format", "md", "-o"])
        .arg(&md_path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let md = std::fs::read_to_string(&md_path).unwrap();
    assert!(md.contains("> Boss, the East China deal hit resistance"), "{md}");
    assert!(md.contains(&format!("Trust: {trust}")), "{md}");
    assert!(md.contains("## Debrief"), "{md}");
    for p in &debrief.practise {
        assert!(md.contains(&p.quote), "the debrief's quote {:?} is missing:\n{md}", p.quote);
    }
    assert!(!md.contains("项目卡住了"), "another session leaked into the export:\n{md}");
    let db = dir.path().join("upward.db");
    let out = upward(dir.path())
        .args(["sessions", "export", &rp_id.to_string(), "-o"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(!out.status.success(), "an export overwrote the database");
    assert_eq!(store.session(rp_id).unwrap().turns.len(), 4);
    let out = upward(dir.path())
        .args(["sessions", "export", &c2.to_string(), "--format", "json"])
        .output()
        .unwrap();
    let exported: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(exported["session"]["id"], c2);
    assert_eq!(exported["critiques"].as_array().unwrap().len(), 1);
    assert_eq!(exported["critiques"][0]["draft"], "王总，想请您周三前帮忙约客户高层。");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("项目卡住了"));

    // Deleted: one, then (non-interactive) all only with --yes.
    let out = upward(dir.path()).args(["sessions", "delete", &c1.to_string()]).output().unwrap();
    assert!(out.status.success());
    assert!(matches!(store.session(c1), Err(StoreError::NoSuchSession { .. })));
    let out = upward(dir.path()).args(["sessions", "show", &c1.to_string()]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no session"));
    let out = upward(dir.path()).args(["sessions", "delete", "--all"]).output().unwrap();
    assert!(!out.status.success(), "delete --all off a terminal must need --yes");
    assert_eq!(store.list_sessions().unwrap().len(), 2);
    let out = upward(dir.path()).args(["sessions", "delete", "--all", "--yes"]).output().unwrap();
    assert!(out.status.success());
    assert!(store.list_sessions().unwrap().is_empty());
}

const WRITER_ENV: &str = "UPWARD_TEST_WRITER_DIR";

/// Helper run as a child process by `killed_writer_keeps_every_completed_turn`: appends
/// turns forever, printing after each commit.
#[test]
#[ignore = "child process of killed_writer_keeps_every_completed_turn"]
fn writer_child() {
    let dir = std::env::var(WRITER_ENV).expect("run by killed_writer_keeps_every_completed_turn");
    let store = Store::open(Some(Path::new(&dir))).unwrap();
    let id = store.create_session(&NewSession::new(SessionKind::Chat, Lang::En)).unwrap();
    for i in 1.. {
        let seq = store.append_turn(id, &TurnRecord::new(Role::User, format!("turn {i}"))).unwrap();
        println!("committed {id} {seq}");
    }
}

#[test]
fn killed_writer_keeps_every_completed_turn() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "writer_child", "--nocapture", "--test-threads=1"])
        .env(WRITER_ENV, dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let reader = BufReader::new(child.stdout.take().unwrap());
    let mut reported = Vec::new();
    let mut session = 0;
    for line in reader.lines() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("committed ") {
            let mut it = rest.split(' ').map(|x| x.parse::<i64>().unwrap());
            session = it.next().unwrap();
            reported.push(it.next().unwrap());
            if reported.len() == 40 {
                child.kill().unwrap(); // SIGKILL
                break;
            }
        }
    }
    child.wait().unwrap();
    assert_eq!(reported.len(), 40, "the writer stopped early");
    let store = Store::open(Some(dir.path())).unwrap();
    let d = store.session(session).unwrap();
    // Every reported turn is there (the writer may have committed a few more).
    assert!(d.turns.len() >= 40, "{} turns", d.turns.len());
    for seq in reported {
        let t = &d.turns[seq as usize - 1];
        assert_eq!((t.seq, t.text.as_str()), (seq, format!("turn {seq}").as_str()));
    }
}

#[test]
fn two_writers_at_once_both_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let id = {
        let s = Store::open(Some(dir.path())).unwrap();
        s.create_session(&NewSession::new(SessionKind::Chat, Lang::En)).unwrap()
    };
    let handles: Vec<_> = (0..2)
        .map(|w| {
            let dir = dir.path().to_path_buf();
            std::thread::spawn(move || {
                let s = Store::open(Some(&dir)).unwrap();
                let own = s.create_session(&NewSession::new(SessionKind::Chat, Lang::En)).unwrap();
                for i in 0..150 {
                    s.append_turn(id, &TurnRecord::new(Role::User, format!("w{w} {i}"))).unwrap();
                    s.append_turn(own, &TurnRecord::new(Role::User, format!("own {i}"))).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("a writer failed");
    }
    let s = Store::open(Some(dir.path())).unwrap();
    let d = s.session(id).unwrap();
    assert_eq!(d.turns.len(), 300);
    assert_eq!(d.turns.iter().map(|t| t.seq).collect::<Vec<_>>(), (1..=300).collect::<Vec<_>>());
    assert_eq!(s.list_sessions().unwrap().len(), 3);
}

#[test]
fn corrupt_foreign_and_newer_databases_are_refused_untouched() {
    // Not SQLite at all.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("upward.db");
    let garbage: Vec<u8> = (0..8192u32).map(|i| (i * 7 + 3) as u8).collect();
    std::fs::write(&db, &garbage).unwrap();
    let e = Store::open(Some(dir.path())).unwrap_err();
    assert!(matches!(e, StoreError::Corrupt { .. }), "{e:?}");
    assert!(e.to_string().contains("left untouched"), "{e}");
    assert_eq!(std::fs::read(&db).unwrap(), garbage);
    let (store, warning) = Store::open_or_warn(Some(dir.path()));
    assert!(store.is_none());
    assert!(warning.unwrap().contains("will not be saved"));
    let out = upward(dir.path()).args(["sessions", "list"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a readable upward database"));
    assert_eq!(std::fs::read(&db).unwrap(), garbage);

    // Another program's SQLite database.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("upward.db");
    {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute_batch("CREATE TABLE notes (x TEXT); INSERT INTO notes VALUES ('mine');").unwrap();
    }
    let before = std::fs::read(&db).unwrap();
    let e = Store::open(Some(dir.path())).unwrap_err();
    assert!(matches!(e, StoreError::Foreign { .. }), "{e:?}");
    assert_eq!(std::fs::read(&db).unwrap(), before);

    // Written by a newer upward.
    let dir = tempfile::tempdir().unwrap();
    let id = {
        let s = Store::open(Some(dir.path())).unwrap();
        save_roleplay(&s).0
    };
    let db = dir.path().join("upward.db");
    {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.pragma_update(None, "user_version", SCHEMA_VERSION + 1).unwrap();
        c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);").unwrap();
    }
    let before = std::fs::read(&db).unwrap();
    let e = Store::open(Some(dir.path())).unwrap_err();
    assert!(matches!(e, StoreError::TooNew { .. }), "{e:?}");
    assert!(e.to_string().contains("newer than this upward"), "{e}");
    assert_eq!(std::fs::read(&db).unwrap(), before);
    {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.pragma_update(None, "user_version", SCHEMA_VERSION).unwrap();
    }
    assert_eq!(Store::open(Some(dir.path())).unwrap().session(id).unwrap().turns.len(), 4);
}

#[test]
fn progress_over_three_improving_critiques() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(Some(dir.path())).unwrap();
    // Drafts that get better: no ask at all, then a vague one, then a clear one with a
    // deadline, what was tried and a plan.
    let drafts = [
        "王总，项目卡住了。",
        "王总，华东项目卡在采购，想请您帮忙。",
        "王总，华东项目卡在采购，我们已经和采购经理谈过两次，想请您周三前约对方副总见一面。如果周三谈不下来，我的备选方案是先签一期。",
    ];
    let crits: Vec<Critique> = drafts.iter().map(|d| save_real_critique(&store, d).1).collect();
    let out = upward(dir.path()).args(["progress", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let p: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(p["critiques"], 3);
    let crit = |id: &str| {
        p["criteria"].as_array().unwrap().iter().find(|c| c["id"] == id).unwrap().clone()
    };
    // First, best and latest per criterion are those of the saved critiques.
    for c in &crits[0].criteria {
        let values: Vec<f64> =
            crits.iter().map(|k| status_value(k.criterion(c.id).unwrap().status)).collect();
        let got = crit(c.id.as_str());
        let best = values.iter().cloned().fold(0.0, f64::max);
        assert_eq!(
            (got["first"].as_f64(), got["best"].as_f64(), got["latest"].as_f64()),
            (Some(values[0]), Some(best), Some(values[2])),
            "{}",
            c.id
        );
        assert_eq!(got["count"], 3);
        assert_eq!(got["trend"], serde_json::to_value(Trend::of(&values)).unwrap(), "{}", c.id);
    }
    // The clearest change: asking for nothing, then for something specific.
    let ask = crit("ask");
    assert_eq!((ask["first"].as_f64(), ask["latest"].as_f64()), (Some(0.0), Some(100.0)));
    assert_eq!(ask["trend"], "improving");
    // Rubric order.
    let ids: Vec<&str> =
        p["criteria"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
    let rubric: Vec<&str> = crits[0].criteria.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, rubric);
    let lib = store.progress(None).unwrap();
    assert_eq!(lib.criteria.iter().find(|c| c.id == "ask").unwrap().trend, Trend::Improving);
    // A future --since leaves nothing.
    let later = store.progress(chrono::NaiveDate::from_ymd_opt(2999, 1, 1)).unwrap();
    assert!(later.criteria.is_empty());

    // The terminal chart, in Chinese.
    let out = upward(dir.path()).args(["--lang", "zh", "progress"]).output().unwrap();
    let chart = String::from_utf8(out.stdout).unwrap();
    assert!(chart.contains("明确请求") && chart.contains("↑ 进步"), "{chart}");

    // The HTML page: written, self-contained.
    let html = dir.path().join("report/progress.html");
    std::fs::create_dir(dir.path().join("report")).unwrap();
    let out = upward(dir.path()).args(["progress", "--html"]).arg(&html).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>") && page.trim_end().ends_with("</html>"));
    assert!(page.contains("<svg") && page.contains("<polyline"), "no chart");
    for external in ["src=", "href=", "<link", "<script", "url(", "@import"] {
        assert!(!page.contains(external), "external asset {external:?} in the page");
    }
    let leftovers: Vec<_> = std::fs::read_dir(html.parent().unwrap()).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "temporary files left beside the page");
}
