//! Several sequences decoding together (continuous batching) on real models: each
//! sequence's greedy tokens and logits are bit for bit those of decoding it alone through
//! the engine's ordinary path, while sequences leave and join between steps. And
//! `upward bench --concurrent` reports both throughputs.

mod common;

use common::model_path;
use std::sync::atomic::{AtomicBool, Ordering};
use upward::backend::shared::{CacheLimits, SharedModel};
use upward::backend::{ChatBackend, ChatRequest};
use upward::engine::{
    argmax, Engine, EngineError, GenerateOptions, LoadOptions, SamplingParams, Sequence, StopReason,
};
use upward::gguf::chat_template::ChatMessage;

/// Prompts of different lengths, English and Chinese.
const PROMPTS: [&str; 4] = [
    "My manager asked me for a weekly report. What should the first line say?",
    "王总，这周华东区签了两单，合计80万，",
    "Write one sentence to ask my boss for more budget.",
    "The quarterly review is tomorrow and the numbers are",
];

fn engine(file: &str) -> Engine {
    let opts = LoadOptions { ctx: 256, template_fallback: Some("gemma".into()) };
    Engine::load(&model_path(file), &opts).expect("load")
}

fn prompts(e: &Engine) -> Vec<Vec<u32>> {
    PROMPTS.iter().map(|p| e.tokenizer().encode(p, true, false)).collect()
}

/// Greedy decoding of `prompt` alone through `Engine::eval` (the path chat uses): the
/// tokens and the logits each was picked from.
fn alone(e: &mut Engine, prompt: &[u32], max: usize) -> (Vec<u32>, Vec<Vec<f32>>) {
    e.reset();
    let mut seq = prompt.to_vec();
    let (mut logits, _) = e.eval(&seq).unwrap();
    let (mut tokens, mut all) = (Vec::new(), Vec::new());
    loop {
        let next = argmax(&logits);
        all.push(logits.clone());
        if e.is_end_token(next) || tokens.len() == max {
            return (tokens, all);
        }
        tokens.push(next);
        seq.push(next);
        logits = e.eval(&seq).unwrap().0;
    }
}

fn same_bits(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

/// Three slots for four prompts with different budgets: prompt 1 leaves early, prompt 3
/// joins in its place mid-way, and the others keep decoding with it.
fn together_equals_alone(file: &str) {
    let mut e = engine(file);
    let prompts = prompts(&e);
    let budgets = [10, 3, 8, 6];
    let reference: Vec<_> =
        prompts.iter().zip(budgets).map(|(p, max)| alone(&mut e, p, max)).collect();
    assert!(reference.iter().any(|(t, _)| t.len() >= 3), "{file}: the model stopped at once");

    struct Slot {
        index: usize,
        seq: Sequence,
        tokens: Vec<u32>,
        logits: Vec<Vec<f32>>,
    }
    let mut waiting = prompts.iter().enumerate();
    let mut active: Vec<Slot> = Vec::new();
    let mut done: Vec<(usize, Vec<u32>, Vec<Vec<f32>>)> = Vec::new();
    let mut max_together = 0;
    loop {
        while active.len() < 3 {
            let Some((index, p)) = waiting.next() else { break };
            let mut seq = e.new_sequence(p.len() + 16).unwrap();
            let logits = e.prefill_sequence(&mut seq, p).unwrap();
            active.push(Slot { index, seq, tokens: Vec::new(), logits: vec![logits] });
        }
        // Pick each sequence's next token; finished ones leave.
        let mut next = Vec::new();
        let mut i = 0;
        while i < active.len() {
            let s = &mut active[i];
            let t = argmax(s.logits.last().unwrap());
            if e.is_end_token(t) || s.tokens.len() == budgets[s.index] {
                let s = active.remove(i);
                done.push((s.index, s.tokens, s.logits));
                continue;
            }
            s.tokens.push(t);
            next.push(t);
            i += 1;
        }
        if active.is_empty() && waiting.len() == 0 {
            break;
        }
        if active.is_empty() {
            continue;
        }
        max_together = max_together.max(active.len());
        let mut seqs: Vec<&mut Sequence> = active.iter_mut().map(|s| &mut s.seq).collect();
        let logits = e.decode_sequences(&mut seqs, &next).unwrap();
        for (s, l) in active.iter_mut().zip(logits) {
            s.logits.push(l);
        }
    }
    assert_eq!(max_together, 3, "{file}: three sequences never decoded together");
    assert_eq!(done.len(), prompts.len());
    for (index, tokens, logits) in done {
        let (want_tokens, want_logits) = &reference[index];
        assert_eq!(&tokens, want_tokens, "{file}: prompt {index}'s tokens differ from alone");
        assert_eq!(logits.len(), want_logits.len(), "{file}: prompt {index}");
        for (step, (a, b)) in logits.iter().zip(want_logits).enumerate() {
            assert!(same_bits(a, b), "{file}: prompt {index}'s logits differ at step {step}");
        }
    }
    // The scheduler the bench and server use gives the same tokens.
    let batched = e.generate_greedy_batch(&prompts, 8, 2).unwrap();
    for (i, p) in prompts.iter().enumerate() {
        assert_eq!(batched[i], alone(&mut e, p, 8).0, "{file}: prompt {i} in the scheduler");
    }
}

#[test]
fn smollm2_sequences_together_equal_alone() {
    together_equals_alone(common::SMOL);
}

#[test]
fn gemma3_sequences_together_equal_alone() {
    together_equals_alone(common::GEMMA);
}

/// The shared model `upward serve` runs: five callers on threads and three slots. Each
/// reply (text, streamed text, tokens, stop reason) is what `Engine::chat` gives alone; a
/// conversation's next turn reuses its cache; a cancelled caller gets an empty reply.
#[test]
fn shared_model_replies_equal_engine_chat_alone() {
    let mut e = engine(common::SMOL);
    let sampling = SamplingParams { temperature: 0.0, ..SamplingParams::default() };
    let opts = GenerateOptions { sampling, max_tokens: 24 };
    // A prompt of several prefill chunks, too: it is read a chunk per round while the
    // others decode.
    let long = "Our quarterly numbers are in and the pipeline looks thin. ".repeat(12);
    let prompts = PROMPTS.iter().copied().chain([long.as_str()]);
    let turns: Vec<Vec<ChatMessage>> = prompts.map(|p| vec![ChatMessage::user(p)]).collect();
    let never = AtomicBool::new(false);
    let alone: Vec<_> = turns
        .iter()
        .map(|m| {
            e.reset();
            e.chat(m, &opts, &never, &mut |_| {}).unwrap()
        })
        .collect();
    assert!(alone.iter().all(|r| r.generated_tokens > 2), "{alone:?}");
    let limits = CacheLimits { count: 8, bytes: 1 << 30 };
    let shared = SharedModel::start(Box::new(e), 3, limits);
    let together: Vec<_> = std::thread::scope(|s| {
        let callers: Vec<_> = turns
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let (mut model, opts) = (shared.handle(), opts.clone());
                s.spawn(move || {
                    model.enter(Some(&format!("conversation {i}")));
                    let mut streamed = String::new();
                    let req = ChatRequest::new(m, opts);
                    let r = model.chat(&req, &AtomicBool::new(false), &mut |t| {
                        streamed.push_str(t);
                    });
                    (r.unwrap(), streamed)
                })
            })
            .collect();
        callers.into_iter().map(|c| c.join().unwrap()).collect()
    });
    for (a, (t, streamed)) in alone.iter().zip(&together) {
        assert_eq!((&t.text, t.generated_tokens, t.stop), (&a.text, a.generated_tokens, a.stop));
        assert_eq!(streamed, &t.text, "the streamed pieces are the reply");
        assert_eq!(t.prompt_tokens, a.prompt_tokens);
    }
    let stats = shared.stats();
    assert!(stats.largest_batch.load(Ordering::Relaxed) >= 2, "the replies decoded together");
    assert_eq!(stats.replies.load(Ordering::Relaxed), turns.len());
    // Conversation 0's next turn runs on its kept cache (it may have left its slot).
    let mut model = shared.handle();
    model.enter(Some("conversation 0"));
    let mut next = turns[0].clone();
    next.push(ChatMessage::assistant(together[0].0.text.clone()));
    next.push(ChatMessage::user("And the second line?"));
    let r = model.chat(&ChatRequest::new(&next, opts.clone()), &never, &mut |_| {}).unwrap();
    assert!(r.reused_tokens >= alone[0].prompt_tokens, "{r:?}");
    // A caller that has gone away gets nothing generated.
    let gone = AtomicBool::new(true);
    let r = model.chat(&ChatRequest::new(&turns[1], opts), &gone, &mut |_| {}).unwrap();
    assert_eq!((r.stop, r.generated_tokens), (StopReason::Cancelled, 0));
    drop(model);
    shared.join();
}

#[test]
fn bad_batches_are_errors() {
    let mut e = engine(common::SMOL);
    let p = prompts(&e);
    let mut a = e.new_sequence(p[0].len() + 1).unwrap();
    let mut b = e.new_sequence(p[1].len() + 4).unwrap();
    e.prefill_sequence(&mut a, &p[0]).unwrap();
    e.prefill_sequence(&mut b, &p[1]).unwrap();
    let err = e.decode_sequences(&mut [&mut a, &mut b], &[1]).err().unwrap();
    assert!(err.to_string().contains("1 tokens for 2 sequences"), "{err}");
    e.decode_sequences(&mut [&mut a, &mut b], &[1, 2]).unwrap();
    assert!(a.is_full());
    let err = e.decode_sequences(&mut [&mut a, &mut b], &[1, 2]).err().unwrap();
    assert!(matches!(err, EngineError::PromptTooLong { .. }), "{err}");
    // Nothing changed: b still continues.
    assert_eq!(b.tokens().len(), p[1].len() + 1);
    e.decode_sequences(&mut [&mut b], &[3]).unwrap();
    let err = e.prefill_sequence(&mut a, &[0; 300]).err().unwrap();
    assert!(matches!(err, EngineError::PromptTooLong { .. }), "{err}");
    assert!(e.new_sequence(10_000).unwrap().capacity() <= e.context_size());
}

#[test]
fn bench_concurrent_reports_single_and_aggregate_decode() {
    let dir = tempfile::tempdir().unwrap();
    let out = common::upward_smol(dir.path())
        .args(["bench", "--concurrent", "3", "--prompt-tokens", "24", "--gen-tokens", "6"])
        .args(["--runs", "1", "--threads", "2", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["concurrent"], 3);
    for k in ["single_decode_tok_s", "aggregate_decode_tok_s", "speedup"] {
        assert!(v[k].as_f64().is_some_and(|x| x > 0.0), "{k}: {v}");
    }
    let out =
        common::upward_smol(dir.path()).args(["bench", "--concurrent", "0"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 1"));
}
