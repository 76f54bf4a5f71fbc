//! The boss's replies through the `upward` binary, on SmolLM2 and on Gemma: brief (a few
//! sentences), in role (never the salesperson's lines, never "sir" or "boss" for the
//! salesperson), free of U+FFFD and loops; a long role-play in a small context trims its
//! oldest turns in large steps, says so, and goes on; the debrief's numbers agree.
//!
//! Models are found in `$UPWARD_TEST_MODEL_DIR` (`.ci/run` fetches them).

use std::path::{Path, PathBuf};
use std::process::Command;
use upward::engine::stop::count_sentences;

const SMOL: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
const GEMMA: &str = "gemma-3-270m-q4_k_m.gguf";

fn model(file: &str) -> PathBuf {
    let dir = std::env::var_os("UPWARD_TEST_MODEL_DIR").map(PathBuf::from).expect(
        "set UPWARD_TEST_MODEL_DIR to the folder with the test models (bash .ci/run fetches them)",
    );
    let p = dir.join(file);
    assert!(p.exists(), "{} is missing: run scripts/fetch-test-models.sh", p.display());
    p
}

fn upward(data: &Path, model_file: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_upward"));
    c.env("UPWARD_DATA_DIR", data).env("NO_COLOR", "1").env("UPWARD_CACHE_DIR", data.join("c"));
    c.arg("--model").arg(model(model_file));
    c
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/roleplay").join(name)
}

/// Plays `script` with `roleplay --script --json` and returns the JSON.
fn play(
    model_file: &str,
    lang: &str,
    scenario: &str,
    script: &Path,
    extra: &[&str],
) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let out = upward(dir.path(), model_file)
        .args(["--lang", lang, "roleplay", "--scenario", scenario, "--json", "--script"])
        .arg(script)
        .args(extra)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Labels and markers that mean the boss began someone else's turn.
const NOT_THE_BOSS: &[&str] = &[
    "User:",
    "Salesperson:",
    "You:",
    "Me:",
    "Assistant:",
    "用户：",
    "销售：",
    "我：",
    "助手：",
    "<|im_start|>",
    "<start_of_turn>",
    "<end_of_turn>",
    "[Director",
    "【导演",
    "Director Zhang:",
    "张总：",
];

/// Asserts one boss reply is brief and in role; returns its sentences and characters.
fn check_reply(boss: &str, user: &str, max_sentences: usize) -> (usize, usize) {
    let chars = boss.chars().count();
    let sentences = count_sentences(boss);
    assert!(!boss.trim().is_empty(), "the boss said nothing");
    assert!(sentences <= max_sentences, "{sentences} sentences: {boss}");
    assert!(chars <= 600, "{chars} characters: {boss}");
    assert!(!boss.contains('\u{fffd}'), "U+FFFD in the reply: {boss}");
    assert!(!boss.contains("\n\n"), "a blank line in the reply: {boss}");
    for m in NOT_THE_BOSS {
        assert!(!boss.contains(m), "the boss wrote {m:?}: {boss}");
    }
    // "Yes sir", "Boss, …", "…, boss." and 领导/老板 as a form of address.
    let vocative = regex::Regex::new(
        r"(?i)(^|[.!?,;:]\s*|\b(yes|no|thanks|thank you|ok|okay|sure|well)\s+)(sir|boss|ma'am)\b|(^|[。！？，])\s*(领导|老板)[，！。,!]",
    )
    .unwrap();
    assert!(!vocative.is_match(boss), "the boss addressed the salesperson as a superior: {boss}");
    // The boss does not speak the salesperson's lines: no long stretch of them.
    let u: Vec<char> = user.chars().collect();
    for w in u.windows(40).step_by(10) {
        let s: String = w.iter().collect();
        assert!(!boss.contains(&s), "the boss repeated the salesperson's words: {boss}");
    }
    (sentences, chars)
}

/// Checks every turn of a scripted run; prints the lengths for the record.
fn check_run(v: &serde_json::Value, label: &str, max_sentences: usize) {
    let turns = v["turns"].as_array().unwrap();
    assert!(!turns.is_empty());
    for (i, t) in turns.iter().enumerate() {
        let boss = t["boss"].as_str().unwrap();
        let (s, c) = check_reply(boss, t["user"].as_str().unwrap(), max_sentences);
        println!(
            "{label} turn {}: {s} sentences, {c} characters, {} tokens, stop {}",
            i + 1,
            t["generated_tokens"],
            t["stop"]
        );
        assert!(t["generated_tokens"].as_u64().unwrap() <= 160);
    }
    // The debrief counts turns from 1 and never recommends a criterion "0 turns" lacked.
    let d = &v["debrief"];
    for key in ["best_turn", "weakest_turn"] {
        let n = d[key].as_u64().unwrap() as usize;
        assert!((1..=turns.len()).contains(&n), "{key} = {n} of {} turns", turns.len());
    }
    for p in d["practise"].as_array().unwrap() {
        let why = p["why"].as_str().unwrap();
        assert!(!why.contains("(0 ") && !why.contains("（0/"), "{why}");
    }
}

#[test]
fn smollm2_boss_is_brief_and_in_role() {
    // The demanding director answers in at most three sentences (prompts/personas.toml).
    let v = play(SMOL, "en", "resources-critical", &script("resources.en.txt"), &[]);
    check_run(&v, "SmolLM2 en resources-critical", 3);
    let v = play(SMOL, "en", "weekly-report", &script("weekly.en.txt"), &["--temperature", "0"]);
    check_run(&v, "SmolLM2 en weekly-report (greedy)", 3);
}

#[test]
fn gemma_boss_is_brief_and_in_role_in_both_languages() {
    let v = play(GEMMA, "en", "resources-critical", &script("resources.en.txt"), &[]);
    check_run(&v, "Gemma en resources-critical", 3);
    let v = play(GEMMA, "zh", "resources-critical", &script("resources.zh.txt"), &[]);
    check_run(&v, "Gemma zh resources-critical", 3);
    // The VP answers in at most two.
    let v =
        play(GEMMA, "zh", "weekly-report", &script("weekly.zh.txt"), &["--persona", "numbers-vp"]);
    check_run(&v, "Gemma zh weekly-report (VP)", 2);
}

/// Fourteen turns through a 2,048-token context: the oldest turns are dropped, the turn
/// that drops them says so (`context_trimmed`), drops happen in large steps, the turns
/// between them reuse the cached prompt, and every turn gets an answer.
#[test]
fn a_long_roleplay_in_a_small_context_trims_in_steps_and_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let lines: Vec<String> = (1..=14)
        .map(|i| {
            format!(
                "Update {i}: the grid deal is still at 8M; I called their chief engineer again today and booked a demo slot for day {i}."
            )
        })
        .collect();
    let path = dir.path().join("long.txt");
    std::fs::write(&path, lines.join("\n")).unwrap();
    let v = play(SMOL, "en", "resources-critical", &path, &["--ctx", "2048", "--temperature", "0"]);
    let turns = v["turns"].as_array().unwrap();
    assert_eq!(turns.len(), 14);
    let trimmed: Vec<usize> =
        (0..turns.len()).filter(|&i| turns[i]["context_trimmed"] == true).collect();
    println!("trimmed at turns {:?}", trimmed.iter().map(|i| i + 1).collect::<Vec<_>>());
    for (i, t) in turns.iter().enumerate() {
        println!(
            "turn {}: prompt {} reused {} dropped {} trimmed {}",
            i + 1,
            t["prompt_tokens"],
            t["reused_tokens"],
            t["dropped_messages"],
            t["context_trimmed"]
        );
        assert!(!t["boss"].as_str().unwrap().trim().is_empty(), "turn {} got no answer", i + 1);
        assert!(t["prompt_tokens"].as_u64().unwrap() <= 2048);
    }
    assert!(!trimmed.is_empty(), "14 turns fit 2,048 tokens?");
    assert!(trimmed.len() <= 4, "trimmed {} times: not in large steps", trimmed.len());
    // Between trims, a turn reuses most of its prompt from the cache.
    let steady: Vec<&serde_json::Value> = turns
        .iter()
        .enumerate()
        .skip(trimmed[0] + 1)
        .filter(|(i, _)| !trimmed.contains(i))
        .map(|(_, t)| t)
        .collect();
    assert!(!steady.is_empty());
    for t in steady {
        let (p, r) = (t["prompt_tokens"].as_u64().unwrap(), t["reused_tokens"].as_u64().unwrap());
        assert!(r * 4 >= p * 3, "after a trim a turn re-read its prompt: reused {r} of {p}");
    }
}

/// A text role-play tells the user when the context was trimmed.
#[test]
fn a_trimmed_turn_is_announced_in_text() {
    let dir = tempfile::tempdir().unwrap();
    let lines: Vec<String> = (1..=8)
        .map(|i| format!("Point {i}: the customer asked again about the demo and the CTO's time; I answered with our plan for week {i}."))
        .collect();
    let path = dir.path().join("s.txt");
    std::fs::write(&path, lines.join("\n")).unwrap();
    let out = upward(dir.path(), SMOL)
        .args(["--lang", "en", "roleplay", "--scenario", "resources-critical", "--script"])
        .arg(&path)
        .args(["--ctx", "1536", "--temperature", "0"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("outgrew the context"), "{text}");
    assert!(text.contains("Debrief"));
}

/// Streamed Chinese from an English-only model: whole characters only, in the stream and
/// in the final text, and no loop even with the repeat penalty off.
#[test]
fn chat_streams_whole_characters_and_does_not_loop() {
    let dir = tempfile::tempdir().unwrap();
    let prompt = "请用中文详细介绍一下你们公司的产品和价格，越长越好。";
    let run = |json: bool| {
        let mut c = upward(dir.path(), SMOL);
        c.args(["chat", "--prompt", prompt, "--temperature", "0", "--repeat-penalty", "1"]);
        c.args(["--max-tokens", "200"]);
        if json {
            c.arg("--json");
        }
        let out = c.output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).expect("the output is UTF-8")
    };
    let streamed = run(false);
    assert!(!streamed.contains('\u{fffd}'), "U+FFFD in the stream: {streamed}");
    let v: serde_json::Value = serde_json::from_str(&run(true)).unwrap();
    let text = v["answer"].as_str().unwrap();
    println!("{text}");
    assert!(!text.contains('\u{fffd}'), "U+FFFD in the text: {text}");
    assert_eq!(streamed.trim_end(), text.trim_end(), "the stream differs from the text");
    // No stretch of 4-30 characters written three times in a row.
    let c: Vec<char> = text.chars().collect();
    for p in 4..=30 {
        for i in 0..c.len().saturating_sub(3 * p) {
            let a = &c[i..i + p];
            assert!(
                !(a == &c[i + p..i + 2 * p] && a == &c[i + 2 * p..i + 3 * p]),
                "a loop: {:?}",
                a.iter().collect::<String>()
            );
        }
    }
}
