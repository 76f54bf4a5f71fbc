//! Role-play end to end on SmolLM2: scripted JSON, scoring and trust, cache reuse across
//! turns, and the coach REPL under a real pseudo-terminal (with Ctrl-C mid-answer).

mod common;

use common::smol as model_path;
use std::sync::atomic::AtomicBool;
use upward::engine::{Engine, GenerateOptions, LoadOptions, PromptCache, SamplingParams};
use upward::kb::KnowledgeBase;
use upward::lang::Lang;
use upward::roleplay::{load_personas, score_turn, Roleplay};

const COMPLAINT: &str = "Boss, this customer is impossible and after-sales keeps messing up. I can't do anything, it's not my fault.";
const STRUCTURED: &str = "Quick update on the Acme renewal, 1.2M: the PoC passed last Friday and procurement wants a 15% discount. I already offered extended support instead of price, and finance agreed to a 5% cap. Next step: I meet their CIO on Tuesday. Could you join that call to show executive commitment? If it slips, my backup is a phased contract. I've also looped in delivery so the schedule is realistic.";

#[test]
fn complaint_scores_lower_and_costs_trust() {
    let c = score_turn(COMPLAINT, upward::critique::DraftKind::Help, Lang::En);
    let s = score_turn(STRUCTURED, upward::critique::DraftKind::Help, Lang::En);
    println!("complaint {} vs structured {}", c.score, s.score);
    assert!(c.score + 30 < s.score, "complaint {} vs structured {}", c.score, s.score);

    let kb = KnowledgeBase::load_default().unwrap();
    let personas = load_personas().unwrap();
    let mut engine = Engine::load(&model_path(), &LoadOptions::default()).unwrap();
    let opts = GenerateOptions { sampling: SamplingParams::greedy(), max_tokens: 24 };
    let stop = AtomicBool::new(false);
    let mut trust_after = Vec::new();
    for text in [COMPLAINT, STRUCTURED] {
        let mut rp = Roleplay::new(&kb, &personas, "resources-critical", None, Lang::En).unwrap();
        let start = rp.trust();
        let mut streamed = String::new();
        let (turn, reply) =
            rp.take_turn(&mut engine, text, &opts, &stop, &mut |t| streamed.push_str(t)).unwrap();
        let (turn, reply) = (turn.clone(), reply.clone());
        assert!(!turn.boss.trim().is_empty(), "the boss said nothing");
        // What the user saw streamed is the reply, and the reply is the model's own:
        // exactly its greedy continuation of the conversation the boss was given (a
        // possible cut by a stop rule keeps it a prefix).
        assert_eq!(streamed, reply.text);
        assert!(reply.generated_tokens > 0 && reply.generated_tokens <= opts.max_tokens);
        let mut sent = rp.messages("");
        sent.truncate(sent.len() - 2);
        assert_eq!(sent.last().unwrap().role, "user");
        assert!(sent.last().unwrap().content.starts_with(text));
        let own = engine.chat(&sent, &opts, &stop, &mut |_| {}).unwrap();
        assert!(
            own.text.trim().starts_with(turn.boss.trim()),
            "the boss's reply {:?} is not the model's greedy continuation {:?}",
            turn.boss,
            own.text
        );
        trust_after.push(turn.trust as i32 - start as i32);
    }
    println!("trust change: complaint {:+}, structured {:+}", trust_after[0], trust_after[1]);
    assert!(trust_after[0] < 0 && trust_after[1] > 0, "{trust_after:?}");
}

/// Each boss reply processes only the new turn's tokens: the conversation so far comes
/// from the KV cache.
#[test]
fn each_turn_prefills_only_its_new_tokens() {
    let kb = KnowledgeBase::load_default().unwrap();
    let personas = load_personas().unwrap();
    let mut engine = Engine::load(&model_path(), &LoadOptions::default()).unwrap();
    let opts = GenerateOptions { sampling: SamplingParams::greedy(), max_tokens: 24 };
    let stop = AtomicBool::new(false);
    let mut rp = Roleplay::new(&kb, &personas, "weekly-report", None, Lang::En).unwrap();
    let turns = [
        STRUCTURED,
        "The main risk is the discount request; I will bring two options to Tuesday's call.",
        "Thanks, I will send you the summary tonight.",
    ];
    // As the REPL does while the user reads the opening: the persona prompt is run once.
    let warmed = rp.warm_cache(&mut engine, opts.max_tokens, None).unwrap();
    assert!(warmed > 300, "the warm-up ran only {warmed} tokens");
    // Again: all cached (the engine re-runs only the last token, for its logits).
    assert!(rp.warm_cache(&mut engine, opts.max_tokens, None).unwrap() <= 1, "warmed twice");
    let mut previous_total = 0;
    for (i, text) in turns.iter().enumerate() {
        let (_, reply) = rp.take_turn(&mut engine, text, &opts, &stop, &mut |_| {}).unwrap();
        println!(
            "turn {}: prompt {} reused {} prefilled {} generated {}",
            i + 1,
            reply.prompt_tokens,
            reply.reused_tokens,
            reply.prefilled_tokens,
            reply.generated_tokens
        );
        // Not even the first turn re-reads the persona prompt.
        assert!(reply.prefilled_tokens * 4 < reply.prompt_tokens, "turn {} re-read it", i + 1);
        if i > 0 {
            // Everything up to the end of the previous answer is reused; what is new is
            // this turn's message (with its note) and the end-of-turn glue.
            assert!(
                reply.reused_tokens + 2 >= previous_total,
                "turn {} re-read the conversation",
                i + 1
            );
            assert_eq!(reply.prefilled_tokens, reply.prompt_tokens - reply.reused_tokens);
        }
        previous_total = reply.prompt_tokens + reply.generated_tokens;
    }
}

#[test]
fn a_saved_persona_prompt_replaces_its_prefill() {
    let kb = KnowledgeBase::load_default().unwrap();
    let personas = load_personas().unwrap();
    let opts = GenerateOptions { sampling: SamplingParams::greedy(), max_tokens: 16 };
    let stop = AtomicBool::new(false);
    let dir = tempfile::tempdir().unwrap();
    let saved = PromptCache::new(dir.path().join("prompts"));
    let start = |saved: &PromptCache| {
        let mut engine = Engine::load(&model_path(), &LoadOptions::default()).unwrap();
        let mut rp = Roleplay::new(&kb, &personas, "weekly-report", None, Lang::En).unwrap();
        let t = std::time::Instant::now();
        let ran = rp.warm_cache(&mut engine, opts.max_tokens, Some(saved)).unwrap();
        println!("warm-up ran {ran} tokens in {:.0} ms", t.elapsed().as_secs_f64() * 1e3);
        let (_, reply) = rp.take_turn(&mut engine, STRUCTURED, &opts, &stop, &mut |_| {}).unwrap();
        (ran, reply)
    };
    let files = || std::fs::read_dir(saved.dir()).unwrap().count();
    // First start: the persona prompt runs and is saved.
    let (ran, first) = start(&saved);
    assert!(ran > 300, "ran {ran}");
    assert_eq!(files(), 1);
    // A later start (a new engine, as in a new session) loads it: nothing runs, and the
    // boss answers exactly as before.
    let (ran, again) = start(&saved);
    assert_eq!(ran, 0);
    assert_eq!(
        (again.text.as_str(), again.prefilled_tokens),
        (first.text.as_str(), first.prefilled_tokens)
    );
    // A damaged file is a miss: it is removed, the prompt runs and is saved again.
    let file = std::fs::read_dir(saved.dir()).unwrap().next().unwrap().unwrap().path();
    let full = std::fs::metadata(&file).unwrap().len();
    std::fs::write(&file, b"UPWKV01\n garbage").unwrap();
    let (ran, third) = start(&saved);
    assert!(ran > 300, "ran {ran}");
    assert_eq!(third.text, first.text);
    assert_eq!(std::fs::metadata(&file).unwrap().len(), full);
}

fn upward_cmd(data: &std::path::Path) -> std::process::Command {
    let mut c = common::upward_std(data);
    c.env("UPWARD_MODEL", model_path());
    c
}

#[test]
fn scripted_roleplay_prints_turns_and_debrief_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("script.txt");
    std::fs::write(&script, format!("{COMPLAINT}\n{STRUCTURED}\n")).unwrap();
    let out = upward_cmd(dir.path())
        .args([
            "roleplay",
            "--scenario",
            "resources-critical",
            "--lang",
            "en",
            "--json",
            "--temperature",
            "0",
            "--max-tokens",
            "32",
            "--script",
        ])
        .arg(&script)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["scenario"], "resources-critical");
    assert!(v["persona"].is_string() && v["model"].is_string());
    let turns = v["turns"].as_array().unwrap();
    assert_eq!(turns.len(), 2);
    for t in turns {
        assert!(!t["boss"].as_str().unwrap().is_empty());
        let scores = t["scores"].as_object().unwrap();
        for id in ["situation", "effort", "ask", "plan", "tone", "timing", "politics"] {
            assert!(
                matches!(scores[id].as_str(), Some("met" | "partial" | "missing")),
                "{id}: {:?}",
                scores.get(id)
            );
        }
        assert!(t["trust"].as_u64().unwrap() <= 100);
    }
    assert!(turns[0]["trust"].as_u64() < turns[1]["trust"].as_u64());
    let d = &v["debrief"];
    assert!(d["score"].as_u64().unwrap() <= 100);
    assert!(d["criteria"].is_object() && d["strengths"].is_array());
    let practise = d["practise"].as_array().unwrap();
    assert!(!practise.is_empty() && practise.len() <= 3);
    for p in practise {
        assert!(
            p["principle"].is_string()
                && !p["quote"].as_str().unwrap().is_empty()
                && p["why"].is_string()
        );
    }
    // The session was saved and can be listed.
    let list = upward_cmd(dir.path()).args(["sessions", "list", "--json"]).output().unwrap();
    let sessions: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(sessions.as_array().unwrap().len(), 1);
}

/// The REPL under a pseudo-terminal: start, pick a scenario, two turns, Ctrl-C once the
/// boss's reply has started streaming (it stops, says so, and the role-play survives),
/// /end with a debrief, /exit.
#[test]
fn coach_repl_under_a_pty() {
    use rexpect::session::spawn_command;
    let dir = tempfile::tempdir().unwrap();
    let boss = load_personas().unwrap().into_iter().find(|p| p.id == "demanding-director").unwrap();
    let boss = boss.name.get(Lang::En).to_string();
    let mut cmd = upward_cmd(dir.path());
    cmd.args([
        "--lang",
        "en",
        "roleplay",
        "--scenario",
        "weekly-report",
        "--max-tokens",
        "120",
        "--temperature",
        "0",
    ]);
    let mut p = spawn_command(cmd, Some(300_000)).unwrap();
    p.exp_string("Welcome to upward").unwrap();
    p.exp_string("you> ").unwrap();
    p.send_line(STRUCTURED).unwrap();
    p.exp_string("[coach] turn").unwrap();
    p.exp_string("you> ").unwrap();
    // Ctrl-C while the boss is answering: the answer stops, the role-play goes on.
    p.send_line(LONG_STORY).unwrap();
    p.exp_string(&format!("{boss}: ")).unwrap();
    p.exp_regex(r"[[:alpha:]]{2}").unwrap();
    p.send_control('c').unwrap();
    p.exp_string("(interrupted; the role-play goes on)").unwrap();
    p.exp_string("[coach] turn").unwrap();
    p.exp_string("you> ").unwrap();
    p.send_line("/feedback").unwrap();
    p.exp_string("Turn score").unwrap();
    p.send_line("/end").unwrap();
    p.exp_string("Debrief").unwrap();
    p.exp_string("Practise next").unwrap();
    p.send_line("/exit").unwrap();
    p.exp_eof().unwrap();
    // Both turns were saved; the interrupted answer is kept but marked as not complete.
    let store = upward::store::Store::open(Some(dir.path())).unwrap();
    let s = &store.list_sessions().unwrap()[0];
    let detail = store.session(s.session.id).unwrap();
    let turns: Vec<_> = detail.turns.iter().map(|t| (t.text.as_str(), t.interrupted)).collect();
    assert_eq!(turns.len(), 4, "{turns:?}");
    assert!(!turns[1].1, "the first answer was complete: {turns:?}");
    assert_eq!(detail.turns[2].text, LONG_STORY);
    assert!(turns[3].1, "the interrupted answer is saved as complete: {turns:?}");
    assert!(!turns[3].0.is_empty() && detail.turns[3].generated_tokens < 120);
    // The transcript says so too.
    let md = upward::store::export_markdown(&detail);
    assert!(md.contains("interrupted, incomplete"), "{md}");
}

const LONG_STORY: &str =
    "Tell me a very long story about every deal you ever closed, in detail, one by one.";
