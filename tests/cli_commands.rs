//! The README's commands that need no model, run through the `upward` binary as a user
//! runs them: `roleplay --list`, `critique` (and that it is saved), `sessions
//! list|show|resume|export|delete`, `progress --since`, `models list|verify|path`, and the
//! hints every error message gives. (`kb search` and `kb check` are in tests/kb.rs.)

mod common;

use common::{json_of, sessions_json, stdout_of, upward};
use predicates::prelude::*;
use serde_json::Value;
use std::path::Path;
use upward::kb::KnowledgeBase;
use upward::roleplay::load_personas;

const HELP_ZH: &str = "王总，华信银行的项目到了报价阶段，客户压价15%，下周五前要答复。我已经和刘处长沟通过两次。您看能不能批到10%？如果批不下来，我就建议拆成两期。";
const THANKS_EN: &str = "Thanks for walking me through the Meridian pricing last week. I now check every quote that way, and the Acme renewal closed at full price.";

#[test]
fn roleplay_list_shows_every_scenario_and_persona_in_both_languages() {
    let dir = tempfile::tempdir().unwrap();
    let kb = KnowledgeBase::load_default().unwrap();
    let personas = load_personas().unwrap();
    let text = stdout_of(&upward(dir.path()).args(["roleplay", "--list"]).output().unwrap());
    assert!(text.starts_with("Scenarios:"), "{text}");
    for s in kb.scenarios() {
        assert!(
            text.contains(&s.id) && text.contains(s.title.get(upward::lang::Lang::En)),
            "{text}"
        );
    }
    for p in &personas {
        assert!(text.contains(&p.id), "{text}");
    }
    let zh = stdout_of(
        &upward(dir.path()).args(["--lang", "zh", "roleplay", "--list"]).output().unwrap(),
    );
    assert!(zh.starts_with("场景：") && zh.contains("领导角色："), "{zh}");
    for s in kb.scenarios() {
        assert!(zh.contains(s.title.get(upward::lang::Lang::Zh)), "{zh}");
    }
    let v = json_of(&upward(dir.path()).args(["roleplay", "--list", "--json"]).output().unwrap());
    let ids = |key: &str| -> Vec<String> {
        v[key].as_array().unwrap().iter().map(|x| x["id"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(ids("scenarios"), kb.scenarios().iter().map(|s| s.id.clone()).collect::<Vec<_>>());
    assert_eq!(ids("personas"), personas.iter().map(|p| p.id.clone()).collect::<Vec<_>>());
    // Listing needs no model and saves nothing.
    assert!(sessions_json(dir.path()).is_empty());
}

/// A listing piped into a reader that has already gone (`| head -1`) ends quietly, as
/// `ls` does: no panic on the closed pipe. A run that saves as it goes keeps its error.
#[cfg(unix)]
#[test]
fn a_closed_output_pipe_ends_a_listing_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let dir = tempfile::tempdir().unwrap();
    for args in [&["roleplay", "--list"][..], &["sessions", "list"], &["kb", "search", "汇报"]] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = common::upward_std(dir.path())
            .args(args)
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "{args:?}: {:?} {stderr}", out.status);
    }
}

#[test]
fn roleplay_with_an_unknown_scenario_or_persona_fails_before_loading_a_model() {
    let dir = tempfile::tempdir().unwrap();
    upward(dir.path())
        .args(["roleplay", "--scenario", "no-such"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("unknown scenario \"no-such\""));
    upward(dir.path())
        .args(["roleplay", "--scenario", "weekly-report", "--persona", "nobody"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("unknown persona \"nobody\""));
    upward(dir.path())
        .args(["roleplay"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("pass --scenario ID"));
}

/// Two `upward critique` runs are two saved sessions that `sessions list` and `progress`
/// count; `--no-save` adds nothing; `--help` says so.
#[test]
fn critiques_are_saved_unless_no_save() {
    let dir = tempfile::tempdir().unwrap();
    let out = upward(dir.path())
        .args(["critique", "--no-model", "-"])
        .write_stdin(HELP_ZH)
        .output()
        .unwrap();
    let text = stdout_of(&out);
    let list = sessions_json(dir.path());
    assert_eq!(list.len(), 1);
    let id = list[0]["id"].as_i64().unwrap();
    assert!(text.contains(&format!("已保存为会话 {id}")), "{text}");
    let v = json_of(
        &upward(dir.path())
            .args(["critique", "--no-model", "--json", "-"])
            .write_stdin(THANKS_EN)
            .output()
            .unwrap(),
    );
    assert_eq!(v["kind"], "thanks", "stdout stays one JSON object");
    let list = sessions_json(dir.path());
    assert_eq!(list.len(), 2);
    for s in &list {
        assert_eq!(s["kind"], "critique");
        assert_eq!(s["critiques"], 1);
    }
    assert_eq!(list[1]["lang"], "en");
    assert_eq!(list[1]["score"].as_f64(), v["score"].as_f64());
    assert!(list[0]["title"].as_str().unwrap().starts_with("王总"), "{:?}", list[0]);

    // --no-save: the report, and nothing written.
    upward(dir.path())
        .args(["critique", "--no-model", "--no-save", "-"])
        .write_stdin(HELP_ZH)
        .assert()
        .success()
        .stdout(predicate::str::contains("得分").and(predicate::str::contains("已保存").not()));
    assert_eq!(sessions_json(dir.path()).len(), 2);
    let p = json_of(&upward(dir.path()).args(["progress", "--json"]).output().unwrap());
    assert_eq!(p["critiques"], 2);

    upward(dir.path())
        .args(["critique", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains("--no-save").and(predicate::str::contains("saved")));
    upward(dir.path())
        .args(["chat", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains("--no-save").and(predicate::str::contains("saved")));
}

/// A store that cannot be opened does not cost the user the critique: the report comes,
/// with a notice that it was not saved.
#[test]
fn critique_with_an_unusable_store_still_answers() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("upward.db"), b"not a database at all, just text").unwrap();
    upward(dir.path())
        .args(["critique", "--no-model", "-"])
        .write_stdin(HELP_ZH)
        .assert()
        .success()
        .stdout(predicate::str::contains("得分"))
        .stderr(predicate::str::contains("not saved"));
}

/// The bug the hand-written fixtures hid: a real critique stores its evidence as
/// `{start, end, text}`, and the export dropped it. Saved by `upward critique`, exported
/// by `upward sessions export`, every piece of evidence is in the Markdown.
#[test]
fn a_real_critique_exports_with_its_evidence() {
    let dir = tempfile::tempdir().unwrap();
    upward(dir.path())
        .args(["critique", "--no-model", "-"])
        .write_stdin(HELP_ZH)
        .assert()
        .success();
    let id = sessions_json(dir.path())[0]["id"].as_i64().unwrap().to_string();
    let full = json_of(
        &upward(dir.path()).args(["sessions", "export", &id, "--format", "json"]).output().unwrap(),
    );
    let criteria = full["critiques"][0]["result"]["criteria"].as_array().unwrap().clone();
    let evidence: Vec<&str> =
        criteria.iter().filter_map(|c| c["evidence"]["text"].as_str()).collect();
    assert!(evidence.len() >= 3, "a real critique quotes the draft: {criteria:?}");
    // Markdown to stdout (the default format).
    let md = stdout_of(&upward(dir.path()).args(["sessions", "export", &id]).output().unwrap());
    assert!(md.starts_with(&format!("# 会话 #{id}")), "{md}");
    assert!(md.contains("## 点评 (help)"), "{md}");
    for e in &evidence {
        assert!(md.contains(&format!("依据: {e}")), "evidence {e:?} is missing:\n{md}");
    }
    for c in &criteria {
        assert!(md.contains(c["advice"].as_str().unwrap()), "advice missing:\n{md}");
    }
    // `sessions show` prints the same transcript.
    let shown = stdout_of(&upward(dir.path()).args(["sessions", "show", &id]).output().unwrap());
    assert_eq!(shown.trim_end(), md.trim_end());
    let shown =
        json_of(&upward(dir.path()).args(["sessions", "show", &id, "--json"]).output().unwrap());
    assert_eq!(shown, full);
}

#[test]
fn sessions_resume_of_a_critique_shows_it_and_delete_removes_it() {
    let dir = tempfile::tempdir().unwrap();
    upward(dir.path())
        .args(["critique", "--no-model", "-"])
        .write_stdin(THANKS_EN)
        .assert()
        .success();
    let id = sessions_json(dir.path())[0]["id"].as_i64().unwrap().to_string();
    let out = stdout_of(&upward(dir.path()).args(["sessions", "resume", &id]).output().unwrap());
    assert!(out.contains("Meridian pricing"), "{out}");
    assert!(out.contains("Only role-plays can be resumed"), "{out}");
    upward(dir.path())
        .args(["sessions", "resume", "999"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("no session 999"));
    upward(dir.path())
        .args(["sessions", "delete", &id])
        .assert()
        .success()
        .stdout(predicate::str::contains(format!("deleted session {id}")));
    assert!(sessions_json(dir.path()).is_empty());
    upward(dir.path()).args(["sessions", "list"]).assert().success().stdout("No saved sessions.\n");
}

#[test]
fn progress_since_counts_only_results_from_that_day_on() {
    let dir = tempfile::tempdir().unwrap();
    for draft in [HELP_ZH, "王总，项目卡住了，想请您帮忙。"] {
        upward(dir.path())
            .args(["critique", "--no-model", "--kind", "help", "-"])
            .write_stdin(draft)
            .assert()
            .success();
    }
    let today = chrono::Local::now().date_naive();
    let day = |d: chrono::NaiveDate| d.format("%Y-%m-%d").to_string();
    let p = json_of(
        &upward(dir.path()).args(["progress", "--json", "--since", &day(today)]).output().unwrap(),
    );
    assert_eq!(p["critiques"], 2);
    assert_eq!(p["since"], day(today));
    let ask = p["criteria"].as_array().unwrap().iter().find(|c| c["id"] == "ask").unwrap();
    assert_eq!(ask["count"], 2);
    let tomorrow = today.succ_opt().unwrap();
    let p = json_of(
        &upward(dir.path())
            .args(["progress", "--json", "--since", &day(tomorrow)])
            .output()
            .unwrap(),
    );
    assert_eq!(p["critiques"], 0);
    assert!(p["criteria"].as_array().unwrap().is_empty());
    upward(dir.path())
        .args(["progress", "--since", "last week"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("is not a date like"));
}

/// `models list | verify | path` on the built-in catalogue, with SmolLM2 placed in the
/// cache where `models pull smollm2-135m` puts it.
#[test]
fn models_list_verify_and_path_on_the_builtin_catalogue() {
    let dir = tempfile::tempdir().unwrap();
    upward(dir.path())
        .args(["models", "path", "smollm2-135m"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("run `upward models pull smollm2-135m`"));
    let list = json_of(&upward(dir.path()).args(["models", "list", "--json"]).output().unwrap());
    let entry = |name: &str| -> Value {
        list.as_array().unwrap().iter().find(|e| e["name"] == name).unwrap().clone()
    };
    assert_eq!(entry("qwen2.5-1.5b")["default"], true);
    assert_eq!(entry("smollm2-135m")["fallback"], true);
    assert_eq!(entry("smollm2-135m")["cached"], false);

    let cached = dir.path().join("cache/models/smollm2-135m").join(common::SMOL);
    std::fs::create_dir_all(cached.parent().unwrap()).unwrap();
    if std::fs::hard_link(common::smol(), &cached).is_err() {
        std::fs::copy(common::smol(), &cached).unwrap();
    }
    upward(dir.path())
        .args(["models", "path", "smollm2-135m"])
        .assert()
        .success()
        .stdout(format!("{}\n", cached.display()));
    upward(dir.path()).args(["models", "verify", "smollm2-135m"]).assert().success().stdout(
        predicate::str::contains("matches the catalogue")
            .and(predicate::str::contains("(as expected)"))
            .and(predicate::str::ends_with("ok\n")),
    );
    let list = json_of(&upward(dir.path()).args(["models", "list", "--json"]).output().unwrap());
    let smol = list.as_array().unwrap().iter().find(|e| e["name"] == "smollm2-135m").unwrap();
    assert_eq!(smol["cached"], true);
    assert_eq!(smol["path"], cached.display().to_string());
    let table = stdout_of(&upward(dir.path()).args(["models", "list"]).output().unwrap());
    let row = table.lines().find(|l| l.trim_start().starts_with("smollm2-135m")).unwrap();
    assert!(row.trim_end().ends_with("yes"), "{table}");
    assert!(table.contains("*qwen2.5-1.5b") && table.contains("fallback: smollm2-135m"), "{table}");
}

/// Every `upward …` command quoted in a message of the program (errors, notes, hints)
/// exists: `upward <that command> --help` succeeds. A hint that names a command which
/// does not exist (`upward models fetch` did) fails here.
#[test]
fn every_command_named_in_a_message_exists() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut commands = std::collections::BTreeSet::new();
    let mut files = vec![src];
    while let Some(p) = files.pop() {
        if p.is_dir() {
            files.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        if p.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        for line in std::fs::read_to_string(&p).unwrap().lines() {
            // Messages, not doc comments.
            if line.trim_start().starts_with("//") {
                continue;
            }
            for quoted in line.split('`').skip(1).step_by(2) {
                let Some(rest) = quoted.strip_prefix("upward ") else { continue };
                let words: Vec<&str> = rest
                    .split_whitespace()
                    .take_while(|w| w.chars().all(|c| c.is_ascii_lowercase() || c == '-'))
                    .filter(|w| !w.starts_with('-'))
                    .take(2)
                    .collect();
                if !words.is_empty() {
                    commands.insert((words.join(" "), p.display().to_string()));
                }
            }
        }
    }
    assert!(commands.len() >= 5, "found too few: {commands:?}");
    let dir = tempfile::tempdir().unwrap();
    for (cmd, file) in &commands {
        let mut words: Vec<&str> = cmd.split(' ').collect();
        // Second words that are arguments, not subcommands (`upward kb search QUERY`).
        let with_sub = ["models", "kb", "sessions"];
        if !with_sub.contains(&words[0]) {
            words.truncate(1);
        }
        let out = upward(dir.path()).args(&words).arg("--help").output().unwrap();
        assert!(
            out.status.success(),
            "`upward {cmd}` (quoted in {file}) is not a command: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The tests' own "model missing" hint names a script that exists.
    let script = common::FETCH_HINT.strip_prefix("bash ").unwrap();
    assert!(Path::new(env!("CARGO_MANIFEST_DIR")).join(script).is_file());
}

/// With no model on disk, `upward critique` says how to get one, and that command works
/// on the catalogue (here: a local catalogue whose default is already on this machine).
#[test]
fn the_no_model_hint_names_a_pull_that_works() {
    let dir = tempfile::tempdir().unwrap();
    let out = upward(dir.path()).args(["critique", "-"]).write_stdin(HELP_ZH).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    let hint = stderr.split('`').nth(1).expect("a quoted command");
    assert_eq!(hint, "upward models pull");
    let catalogue = dir.path().join("models.toml");
    std::fs::write(
        &catalogue,
        format!(
            "default = \"smol\"\n[[models]]\nname = \"smol\"\narchitecture = \"llama\"\n\
             quantization = \"Q4_1\"\ncontext_length = 2048\nlanguages = [\"en\"]\n\
             licence = \"Apache-2.0\"\nfile = \"{}\"\n[[models.sources]]\nkind = \"local\"\n\
             path = {:?}\n",
            common::SMOL,
            common::smol().display().to_string()
        ),
    )
    .unwrap();
    let words: Vec<&str> = hint.split(' ').skip(1).collect();
    upward(dir.path())
        .arg("--models-file")
        .arg(&catalogue)
        .args(&words)
        .assert()
        .success()
        .stdout(predicate::str::ends_with(format!("{}\n", common::SMOL)));
}
