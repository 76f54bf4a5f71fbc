//! The role-play material and the authored boss, through the `upward` binary: the scenario
//! and persona list, `kb check` on the real knowledge files and on broken ones, a Chinese
//! role-play with no model at all, the SmolLM2 fallback (English only) handing a Chinese
//! role-play to the authored boss with one plain notice (CLI and REPL), and every
//! scenario × persona rendering its boss prompt and authored lines in both languages.

use std::path::{Path, PathBuf};
use std::process::Command;
use upward::kb::KnowledgeBase;
use upward::lang::Lang;
use upward::roleplay::{load_personas, Roleplay};

const SMOL: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

fn smol_path() -> PathBuf {
    let dir = std::env::var_os("UPWARD_TEST_MODEL_DIR").map(PathBuf::from).expect(
        "set UPWARD_TEST_MODEL_DIR to the folder with the test models (bash .ci/run fetches them)",
    );
    let p = dir.join(SMOL);
    assert!(p.exists(), "{} is missing: run scripts/fetch-test-models.sh", p.display());
    p
}

/// The binary with its own data and cache dirs, no colour, and `model` as UPWARD_MODEL.
fn upward(data: &Path, model: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_upward"));
    c.env("UPWARD_DATA_DIR", data)
        .env("UPWARD_CACHE_DIR", data.join("cache"))
        .env("NO_COLOR", "1")
        .env("UPWARD_MODEL", model)
        .env_remove("UPWARD_KNOWLEDGE_DIR")
        .env_remove("UPWARD_PROMPTS_DIR");
    c
}

fn knowledge_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("knowledge")
}

fn has_cjk(s: &str) -> bool {
    s.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
}

/// Sentences in a reply: runs of text ended by Chinese or Latin end punctuation.
fn sentences(s: &str) -> usize {
    s.split(['。', '？', '！', '?', '!', '.'])
        .filter(|p| p.chars().any(|c| c.is_alphanumeric()))
        .count()
}

/// Poor, mixed and good turns of a weekly report, in Chinese; two are the same complaint,
/// so the boss meets the same gap twice and must not repeat himself.
const ZH_SCRIPT: &str = "\
领导，这周客户都不配合，法务那边也一直拖，我也没办法。

领导，这周客户都不配合，法务那边也一直拖，我也没办法。

城商行那单还在法务。

城商行数据平台 120 万，上周五 POC 已经通过，现在卡在法务的责任上限条款。我周二已经约了对方法务负责人，给了两版修改意见，对方说下周三前回复。下一步我周三跟进；如果他们不接受，备选是把上限调到合同额的 1.5 倍，这个我已经跟财务确认过可以接受。想请您帮个忙：周一能不能跟对方科技部总经理通个电话，表个态？

物流续约那边，竞品报价低 20%。我已经约了对方采购下周二见面，准备用三年期合同换 5% 的折扣，毛利测算已经发给财务。如果对方坚持比价，备选是保价但增加一次免费巡检。需要您确认一下：5% 是不是我们的底线？
";

fn write_script(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("script.txt");
    std::fs::write(&p, text).unwrap();
    p
}

/// Checks a scripted role-play's JSON: Chinese authored boss lines that vary and stay
/// short, scores and trust on every turn, a debrief.
fn assert_authored_zh(v: &serde_json::Value, turns_expected: usize) {
    assert_eq!(v["boss"], "authored", "{v}");
    assert!(v["notice"].as_str().is_some_and(has_cjk), "no Chinese notice: {}", v["notice"]);
    let turns = v["turns"].as_array().unwrap();
    assert_eq!(turns.len(), turns_expected);
    let mut seen = std::collections::HashSet::new();
    for t in turns {
        let boss = t["boss"].as_str().unwrap();
        assert!(has_cjk(boss) && !boss.is_empty(), "not Chinese: {boss:?}");
        let latin = boss.chars().filter(|c| c.is_ascii_alphabetic()).count();
        let cjk = boss.chars().filter(|c| has_cjk(&c.to_string())).count();
        assert!(latin * 4 < cjk, "mostly not Chinese: {boss:?}");
        assert!((1..=3).contains(&sentences(boss)), "{} sentences: {boss}", sentences(boss));
        assert!(seen.insert(boss.to_string()), "the boss repeated himself: {boss}");
        let scores = t["scores"].as_object().unwrap();
        assert_eq!(scores.len(), 7, "{scores:?}");
        assert!(t["score"].as_u64().unwrap() <= 100 && t["trust"].as_u64().unwrap() <= 100);
    }
    // The structured turns earn more trust than the complaints.
    let trust: Vec<u64> = turns.iter().map(|t| t["trust"].as_u64().unwrap()).collect();
    assert!(trust[1] < trust[turns_expected - 1], "trust {trust:?}");
    let d = &v["debrief"];
    assert!(d["score"].as_u64().unwrap() <= 100);
    assert!(d["criteria"].as_object().is_some_and(|c| c.len() == 7));
    assert!(d["practise"].as_array().is_some_and(|p| !p.is_empty()));
}

#[test]
fn list_shows_twelve_scenarios_and_five_personas() {
    let dir = tempfile::tempdir().unwrap();
    for lang in ["zh", "en"] {
        let out = upward(dir.path(), Path::new("no-model.gguf"))
            .args(["--lang", lang, "roleplay", "--list", "--json"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let scenarios = v["scenarios"].as_array().unwrap();
        let personas = v["personas"].as_array().unwrap();
        assert!(scenarios.len() >= 12, "{} scenarios", scenarios.len());
        assert!(personas.len() >= 5, "{} personas", personas.len());
        for id in [
            "ask-advice",
            "taking-criticism",
            "owning-a-mistake",
            "new-boss-first-1on1",
            "selling-yourself",
            "dinner-with-vp",
        ] {
            assert!(scenarios.iter().any(|s| s["id"] == id), "{id} missing");
        }
        let titles: Vec<&str> = scenarios.iter().map(|s| s["title"].as_str().unwrap()).collect();
        assert_eq!(titles.iter().all(|t| has_cjk(t)), lang == "zh", "{titles:?}");
    }
}

#[test]
fn kb_check_passes_on_the_real_knowledge_dir() {
    let dir = tempfile::tempdir().unwrap();
    let out = upward(dir.path(), Path::new("no-model.gguf"))
        .args(["kb", "check"])
        .arg(knowledge_dir())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.starts_with("OK"), "{stdout}");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

#[test]
fn kb_check_names_broken_boss_lines_and_a_missing_boss_private() {
    let dir = tempfile::tempdir().unwrap();
    let kb = dir.path().join("knowledge");
    copy_dir(&knowledge_dir(), &kb);
    // One scenario without its `boss_private`, another with a broken line.
    let deal = kb.join("scenarios/deal-slipping.toml");
    let text = std::fs::read_to_string(&deal).unwrap();
    let start = text.find("[boss_private]").unwrap();
    let end = start + text[start..].find("\n\n").unwrap();
    std::fs::write(&deal, format!("{}{}", &text[..start], &text[end..])).unwrap();
    let weekly = kb.join("scenarios/weekly-report.toml");
    let mut text = std::fs::read_to_string(&weekly).unwrap();
    text.push_str("\n[[line]]\nlacks = \"mood\"\ntrust = \"sky-high\"\nzh = \"好\"\n");
    std::fs::write(&weekly, text).unwrap();
    let shared = kb.join("boss_lines.toml");
    let mut text = std::fs::read_to_string(&shared).unwrap();
    text.push_str("\n[[reaction]]\nmood = \"grumpy\"\nzh = \"哼。\"\nen = \"Hmph.\"\n");
    std::fs::write(&shared, text).unwrap();

    let out = upward(dir.path(), Path::new("no-model.gguf"))
        .args(["kb", "check"])
        .arg(&kb)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    for want in [
        "deal-slipping.toml:",
        "boss_private",
        "weekly-report.toml:",
        "`lacks` must be a criterion id",
        "unknown trust band `sky-high`",
        "missing its `en` text",
        "boss_lines.toml:",
        "unknown mood `grumpy`",
    ] {
        assert!(stdout.contains(want), "no {want:?} in:\n{stdout}");
    }
}

/// No model anywhere: `--boss authored` plays a whole Chinese role-play.
#[test]
fn authored_boss_plays_a_chinese_roleplay_with_no_model() {
    let dir = tempfile::tempdir().unwrap();
    let script = write_script(dir.path(), ZH_SCRIPT);
    let missing = dir.path().join("nowhere/none.gguf");
    let out = upward(dir.path(), &missing)
        .args(["--lang", "zh", "roleplay", "--scenario", "weekly-report", "--boss", "authored"])
        .args(["--json", "--script"])
        .arg(&script)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["model"].is_null());
    assert_authored_zh(&v, 5);
    // The same role-play again says the same things: the authored boss is deterministic.
    let again = upward(dir.path(), &missing)
        .args(["--lang", "zh", "roleplay", "--scenario", "weekly-report", "--boss", "authored"])
        .args(["--json", "--script"])
        .arg(&script)
        .output()
        .unwrap();
    let w: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(v["turns"], w["turns"]);
    // The session was saved like any other role-play.
    let list = upward(dir.path(), &missing).args(["sessions", "list", "--json"]).output().unwrap();
    let sessions: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(sessions.as_array().unwrap().len(), 2);
}

/// No model can be fetched (the catalogue's default and fallback have no source that
/// works): a plain Chinese role-play still runs, with the authored boss and a notice.
#[test]
fn no_model_at_all_falls_back_to_the_authored_boss() {
    let dir = tempfile::tempdir().unwrap();
    let script = write_script(dir.path(), ZH_SCRIPT);
    let entry = |name: &str| {
        format!(
            "[[models]]\nname = \"{name}\"\narchitecture = \"qwen2\"\nquantization = \"Q4_K_M\"\n\
             context_length = 4096\nlanguages = [\"zh\", \"en\"]\nlicence = \"MIT\"\n\
             file = \"{name}.gguf\"\n[[models.sources]]\nkind = \"local\"\npath = \"missing/{name}.gguf\"\n"
        )
    };
    let catalogue = dir.path().join("models.toml");
    let text =
        format!("default = \"big\"\nfallback = \"small\"\n{}{}", entry("big"), entry("small"));
    std::fs::write(&catalogue, text).unwrap();
    let out = upward(dir.path(), Path::new("unused"))
        .env_remove("UPWARD_MODEL")
        .env("UPWARD_MODELS_FILE", &catalogue)
        .args(["--lang", "zh", "roleplay", "--scenario", "weekly-report", "--json", "--script"])
        .arg(&script)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["model"].is_null());
    assert!(v["notice"].as_str().unwrap().contains("没有可用的模型"), "{}", v["notice"]);
    assert_authored_zh(&v, 5);
    // A model the user names that cannot be loaded stays an error.
    let named = upward(dir.path(), &dir.path().join("none.gguf"))
        .args(["--lang", "zh", "roleplay", "--scenario", "weekly-report", "--script"])
        .arg(&script)
        .output()
        .unwrap();
    assert!(!named.status.success());
}

/// The English-only fallback model in a Chinese role-play: a plain notice, once, then the
/// authored boss. In English the same model plays the boss itself.
#[test]
fn smollm2_hands_a_chinese_roleplay_to_the_authored_boss() {
    let dir = tempfile::tempdir().unwrap();
    let script = write_script(dir.path(), ZH_SCRIPT);
    let out = upward(dir.path(), &smol_path())
        .args(["--lang", "zh", "roleplay", "--scenario", "weekly-report", "--json", "--script"])
        .arg(&script)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["model"], "smollm2-135m");
    assert_authored_zh(&v, 5);
    let notice = v["notice"].as_str().unwrap();
    assert!(notice.contains("smollm2-135m") && notice.contains("不会说中文"), "{notice}");
    assert_eq!(stderr.matches("不会说中文").count(), 1, "{stderr}");
    // The model still plays in a language it speaks.
    let en = write_script(dir.path(), "Quick update: the bank deal passed its POC.\n");
    let out = upward(dir.path(), &smol_path())
        .args(["--lang", "en", "roleplay", "--scenario", "weekly-report", "--json"])
        .args(["--max-tokens", "8", "--temperature", "0", "--script"])
        .arg(&en)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((v["boss"].as_str(), v["notice"].is_null()), (Some("model"), true), "{v}");
    assert!(v["turns"][0]["generated_tokens"].as_u64().unwrap() > 0);
}

/// The REPL on SmolLM2 in Chinese: the notice once, authored lines, the debrief; then
/// `/roleplay … --boss authored` in English forces the authored boss for a model that
/// speaks English.
#[test]
fn repl_uses_the_authored_boss_when_the_model_lacks_the_language() {
    use rexpect::session::spawn_command;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = upward(dir.path(), &smol_path());
    cmd.args(["--lang", "zh", "roleplay", "--scenario", "weekly-report"]);
    let mut p = spawn_command(cmd, Some(60_000)).unwrap();
    // rexpect reads the terminal byte by byte as Latin-1: Chinese is matched as its bytes.
    let raw = |s: &str| -> String { s.bytes().map(char::from).collect() };
    let text = |s: String| -> String {
        String::from_utf8_lossy(&s.chars().map(|c| c as u32 as u8).collect::<Vec<u8>>())
            .into_owned()
    };
    let before = text(p.exp_string("--model qwen2.5-1.5b").unwrap());
    assert!(before.contains("不会说中文"), "{before}");
    p.exp_string(&raw("你> ")).unwrap();
    p.send_line("领导，这周客户都不配合，我也没办法。").unwrap();
    let first = text(p.exp_string(&raw("[教练] 本轮")).unwrap());
    p.exp_string(&raw("你> ")).unwrap();
    p.send_line("城商行那单还在法务。").unwrap();
    let second = text(p.exp_string(&raw("[教练] 本轮")).unwrap());
    p.exp_string(&raw("你> ")).unwrap();
    p.send_line("/end").unwrap();
    let debrief = text(p.exp_string(&raw("接下来练习")).unwrap());
    assert!(debrief.contains("复盘"), "{debrief}");
    p.send_line("/lang en").unwrap();
    p.exp_string("Switched to English").unwrap();
    p.send_line("/roleplay ask-advice --boss authored").unwrap();
    p.exp_string("authored lines").unwrap();
    p.exp_string("you> ").unwrap();
    p.send_line("Could I ask you something small about a first bank meeting?").unwrap();
    let third = text(p.exp_string("[coach] turn").unwrap());
    p.send_line("/exit").unwrap();
    let rest = text(p.exp_eof().unwrap());
    let line = |s: &str| s.lines().find(|l| l.contains("张总:")).map(str::to_string);
    let (a, b) = (line(&first).expect(&first), line(&second).expect(&second));
    assert!(has_cjk(&a) && has_cjk(&b) && a != b, "{a} / {b}");
    assert!(third.contains("Manager Li:") && !has_cjk(&third), "{third}");
    for later in [&first, &second, &debrief, &third, &rest] {
        assert!(!later.contains("不会说中文"), "told twice: {later}");
    }
}

#[test]
fn every_scenario_and_persona_renders_in_both_languages() {
    let kb = KnowledgeBase::load_dir(&knowledge_dir()).unwrap();
    let personas = load_personas().unwrap();
    let mut rendered = 0;
    for s in kb.scenarios() {
        // The scenario's own persona exists.
        Roleplay::new(&kb, &personas, &s.id, None, Lang::Zh).unwrap();
        for line in &s.lines {
            if let Some(p) = &line.persona {
                assert!(personas.iter().any(|x| &x.id == p), "{}: unknown persona {p}", s.id);
            }
        }
        for p in &personas {
            for lang in [Lang::Zh, Lang::En] {
                let mut rp = Roleplay::new(&kb, &personas, &s.id, Some(&p.id), lang)
                    .unwrap_or_else(|e| panic!("{} × {} ({lang:?}): {e}", s.id, p.id));
                let system = &rp.messages("")[0].content;
                assert!(system.contains(p.name.get(lang)), "{} × {}", s.id, p.id);
                assert!(system.contains(s.boss_private.get(lang)), "{} × {}", s.id, p.id);
                let turn = rp.take_authored_turn(kb.boss_lines(), "好的收到 OK").unwrap();
                assert!(!turn.boss.is_empty());
                assert_eq!(has_cjk(&turn.boss), lang == Lang::Zh, "{}: {}", s.id, turn.boss);
                rendered += 1;
            }
        }
    }
    assert!(rendered >= 12 * 5 * 2, "{rendered}");
    for l in &kb.boss_lines().lines {
        if let Some(p) = &l.persona {
            assert!(personas.iter().any(|x| &x.id == p), "boss_lines.toml: unknown persona {p}");
        }
    }
    for r in &kb.boss_lines().reactions {
        if let Some(p) = &r.persona {
            assert!(personas.iter().any(|x| &x.id == p), "boss_lines.toml: unknown persona {p}");
        }
    }
}

/// A manager answers in a sentence or two: every authored line is at most two sentences
/// and every reaction one, in both languages; shared lines cover every criterion.
#[test]
fn authored_lines_are_short_and_cover_every_criterion() {
    let kb = KnowledgeBase::load_dir(&knowledge_dir()).unwrap();
    let shared = kb.boss_lines();
    let all = kb.scenarios().iter().flat_map(|s| s.lines.iter()).chain(shared.lines.iter());
    for l in all {
        for lang in [Lang::Zh, Lang::En] {
            let t = l.text.get(lang);
            assert!(sentences(t) <= 2, "too long: {t}");
        }
    }
    for r in &shared.reactions {
        assert!(sentences(&r.text.zh) <= 1 && sentences(&r.text.en) <= 1, "{:?}", r.text);
    }
    let criteria =
        upward::rubric::Rubric::Help.ids().iter().chain(upward::rubric::Rubric::Thanks.ids());
    for c in criteria.chain(["none"].iter()) {
        assert!(
            shared.lines.iter().any(|l| l.lacks == *c && l.persona.is_none() && l.trust.is_none()),
            "boss_lines.toml has no line for any persona when a turn lacks `{c}`"
        );
    }
}
