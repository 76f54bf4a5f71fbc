//! The README's commands that run a model, through the `upward` binary on SmolLM2:
//! `chat` (one-shot, saved), `critique` with a model (saved), `roleplay --persona`, and
//! `bench`; and that what they print is the model's own output.

mod common;

use common::{json_of, sessions_json, stdout_of, upward_smol};
use std::sync::atomic::AtomicBool;
use upward::engine::{Engine, GenerateOptions, LoadOptions, SamplingParams};
use upward::gguf::chat_template::ChatMessage;

const QUESTION: &str = "What is the capital of France?";

/// Two `upward critique` runs and one `upward chat --prompt`, then `sessions list` lists
/// all three and `progress` counts the critiques.
#[test]
fn critiques_and_a_chat_are_listed_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let help = "Hi Maria, the Northwind deal (480k) is stuck: their CFO wants a 12% discount by Friday. Could you call him with me on Thursday? If not, I will propose two phases.";
    let c1 = json_of(
        &upward_smol(d).args(["critique", "--json", "-"]).write_stdin(help).output().unwrap(),
    );
    upward_smol(d)
        .args(["critique", "--no-model", "-"])
        .write_stdin("王总，项目卡住了，想请您帮忙。")
        .assert()
        .success();
    let answer = json_of(
        &upward_smol(d)
            .args(["chat", "--prompt", QUESTION, "--temperature", "0", "--max-tokens", "12"])
            .arg("--json")
            .output()
            .unwrap(),
    );
    let list = sessions_json(d);
    let kinds: Vec<&str> = list.iter().map(|s| s["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["critique", "critique", "chat"]);
    // The critique with a model names it, and its comment and rewrite were saved.
    assert_eq!(list[0]["model"], "smollm2-135m", "the catalogue's name for the file");
    let id = list[0]["id"].as_i64().unwrap().to_string();
    let saved =
        json_of(&common::upward(d).args(["sessions", "show", &id, "--json"]).output().unwrap());
    // The critique as printed, less what only the command adds (the model and its policy).
    let mut printed = c1.clone();
    for key in ["model", "judge"] {
        printed.as_object_mut().unwrap().remove(key);
    }
    assert_eq!(saved["critiques"][0]["result"], printed, "the saved critique is the one printed");
    assert!(list[1]["model"].is_null(), "--no-model: no model is named");
    // The chat: the question and the model's answer, in an ended session.
    let id = list[2]["id"].as_i64().unwrap().to_string();
    let chat =
        json_of(&common::upward(d).args(["sessions", "show", &id, "--json"]).output().unwrap());
    let turns = chat["turns"].as_array().unwrap();
    assert_eq!(turns.len(), 2);
    assert_eq!(
        (turns[0]["role"].as_str(), turns[0]["text"].as_str()),
        (Some("user"), Some(QUESTION))
    );
    assert_eq!(turns[1]["role"], "assistant");
    assert_eq!(turns[1]["text"], answer["answer"]);
    assert_eq!(turns[1]["generated_tokens"], answer["generated_tokens"]);
    assert_eq!(chat["session"]["title"], QUESTION);
    assert!(chat["session"]["ended_at"].is_string());
    let md = stdout_of(&common::upward(d).args(["sessions", "export", &id]).output().unwrap());
    assert!(md.contains(QUESTION) && md.contains("**Assistant** (2)"), "{md}");

    let p = json_of(&common::upward(d).args(["progress", "--json"]).output().unwrap());
    assert_eq!(p["critiques"], 2);

    // --no-save: answered, not saved.
    upward_smol(d)
        .args(["chat", "--no-save", "--prompt", QUESTION, "--max-tokens", "4"])
        .assert()
        .success();
    upward_smol(d)
        .args(["critique", "--no-save", "--no-model", "-"])
        .write_stdin(help)
        .assert()
        .success();
    assert_eq!(sessions_json(d).len(), 3);
}

/// `upward chat` prints what the model itself generates: at temperature 0, exactly the
/// engine's greedy answer to the same messages (the default system prompt and the
/// question), streamed as text or reported in the JSON.
#[test]
fn chat_prints_the_models_greedy_answer() {
    let dir = tempfile::tempdir().unwrap();
    // Greedy: temperature 0 and no repeat penalty, as `SamplingParams::greedy`.
    let args = ["chat", "--prompt", QUESTION, "--temperature", "0", "--repeat-penalty", "1"];
    let args = [&args[..], &["--max-tokens", "24"]].concat();
    let v = json_of(&upward_smol(dir.path()).args(&args).arg("--json").output().unwrap());
    let text = stdout_of(&upward_smol(dir.path()).args(&args).arg("--no-save").output().unwrap());

    let mut engine = Engine::load(&common::smol(), &LoadOptions::default()).unwrap();
    let messages = [
        ChatMessage::new("system", upward::prompts::DEFAULT_SYSTEM_PROMPT),
        ChatMessage::new("user", QUESTION),
    ];
    let opts = GenerateOptions { sampling: SamplingParams::greedy(), max_tokens: 24 };
    let own = engine.chat(&messages, &opts, &AtomicBool::new(false), &mut |_| {}).unwrap();
    assert!(!own.text.trim().is_empty());
    assert_eq!(v["answer"], own.text.as_str());
    assert_eq!(text, format!("{}\n", own.text));
    assert!(own.text.contains("Paris"), "SmolLM2 knows this one: {:?}", own.text);

    assert_eq!(v["model"], "smollm2-135m");
    assert_eq!(v["generated_tokens"], own.generated_tokens);
    assert_eq!(v["prompt_tokens"], own.prompt_tokens);
    assert_eq!(v["stop"], serde_json::to_value(own.stop).unwrap());
    let n = |k: &str| v[k].as_u64().unwrap();
    assert_eq!(n("prefilled_tokens") + n("reused_tokens"), n("prompt_tokens"));
    assert!(n("generated_tokens") >= 1 && n("generated_tokens") <= 24);
    for k in ["load_s", "prefill_s", "decode_s", "prefill_tok_s", "decode_tok_s"] {
        assert!(v[k].as_f64().is_some_and(|x| x >= 0.0), "{k}: {v}");
    }
}

/// Piped stdin is the prompt; an empty one is a clear error before any model loads.
#[test]
fn chat_reads_a_piped_prompt_and_refuses_an_empty_one() {
    let dir = tempfile::tempdir().unwrap();
    let v = json_of(
        &upward_smol(dir.path())
            .args(["chat", "--json", "--temperature", "0", "--max-tokens", "24"])
            .write_stdin(QUESTION)
            .output()
            .unwrap(),
    );
    assert!(v["answer"].as_str().unwrap().contains("Paris"), "{v}");
    common::upward(dir.path())
        .args(["chat"])
        .write_stdin("  \n")
        .assert()
        .failure()
        .stderr(predicates::str::contains("the prompt is empty"));
}

/// `roleplay --persona` plays that persona, saves it, and the boss's lines are the
/// model's greedy continuations (the same as the library's role-play on the same turns).
#[test]
fn roleplay_script_with_a_persona() {
    use upward::roleplay::{load_personas, Roleplay};
    let dir = tempfile::tempdir().unwrap();
    let turns = [
        "Boss, quick update: the Acme renewal is at risk, procurement wants 15% off.",
        "Could you join the CIO call on Tuesday? My backup is a phased contract.",
    ];
    let v = json_of(
        &upward_smol(dir.path())
            .args(["--lang", "en", "roleplay", "--scenario", "deal-slipping"])
            .args(["--persona", "numbers-vp", "--script", "-", "--json"])
            .args(["--temperature", "0", "--repeat-penalty", "1", "--max-tokens", "20"])
            .write_stdin(turns.join("\n"))
            .output()
            .unwrap(),
    );
    assert_eq!(
        (v["scenario"].as_str(), v["persona"].as_str()),
        (Some("deal-slipping"), Some("numbers-vp"))
    );
    let list = sessions_json(dir.path());
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["persona"], "numbers-vp");
    assert_eq!(list[0]["id"], v["session"]);

    let kb = upward::kb::KnowledgeBase::load_default().unwrap();
    let personas = load_personas().unwrap();
    let mut engine = Engine::load(&common::smol(), &LoadOptions::default()).unwrap();
    let mut rp =
        Roleplay::new(&kb, &personas, "deal-slipping", Some("numbers-vp"), upward::lang::Lang::En)
            .unwrap();
    let opts = GenerateOptions { sampling: SamplingParams::greedy(), max_tokens: 20 };
    for (i, text) in turns.iter().enumerate() {
        let (turn, _) =
            rp.take_turn(&mut engine, text, &opts, &AtomicBool::new(false), &mut |_| {}).unwrap();
        let got = &v["turns"][i];
        assert_eq!(got["user"], *text);
        assert_eq!(got["boss"], turn.boss.as_str(), "turn {i}");
        assert_eq!(got["trust"], turn.trust);
        assert_eq!(got["score"], turn.score.score);
    }
    let stored = upward::store::Store::open(Some(dir.path())).unwrap();
    let d = stored.session(v["session"].as_i64().unwrap()).unwrap();
    assert_eq!(d.turns.len(), 4);
    assert_eq!(d.turns[3].text, rp.turns()[1].boss);
    assert_eq!(d.session.debrief.as_ref().unwrap(), &v["debrief"]);
}

/// `upward bench` (tiny sizes): the JSON report has every field, sensibly typed; no
/// timing is asserted.
#[test]
fn bench_reports_json() {
    let dir = tempfile::tempdir().unwrap();
    let v = json_of(
        &common::upward(dir.path())
            .arg("--model")
            .arg(common::smol())
            .args(["bench", "--json", "--gen-tokens", "4", "--prompt-tokens", "8", "--runs", "1"])
            .output()
            .unwrap(),
    );
    assert_eq!(v["model"], "smollm2-135m");
    assert_eq!(v["file"], common::smol().display().to_string());
    assert_eq!((v["prompt_tokens"].as_u64(), v["gen_tokens"].as_u64()), (Some(8), Some(4)));
    assert!(v["threads"].as_u64().unwrap() >= 1);
    for k in ["load_s", "prefill_tok_s", "decode_tok_s"] {
        assert!(v[k].as_f64().is_some_and(|x| x > 0.0), "{k}: {v}");
    }
    let size = std::fs::metadata(common::smol()).unwrap().len();
    assert_eq!(v["model_file_bytes"].as_u64(), Some(size));
    assert!(v["peak_rss_bytes"].as_u64().unwrap() > 0);
    assert!(v["kv_cache_bytes"].as_u64().unwrap() > 0);
    assert!(v.get("llama_cpp").is_none() && v.get("roleplay").is_none());
    assert!(sessions_json(dir.path()).is_empty(), "bench saves nothing");
}
