//! The f16 KV cache as users meet it: its size, the prompt caches a role-play start saves
//! (a file from before the f16 cache is a miss, never misread), and a conversation moved
//! out of the cache and back (as `upward serve` does between users) answering the same.

mod common;

use common::smol as model_path;
use std::sync::atomic::AtomicBool;
use upward::engine::{Engine, GenerateOptions, LoadOptions, PromptCache, SamplingParams};
use upward::kb::KnowledgeBase;
use upward::lang::Lang;
use upward::roleplay::{load_personas, Roleplay};

const TURN: &str = "Quick update on the Acme renewal: the PoC passed and procurement wants a 15% discount. Could you join the CIO call on Tuesday?";

/// The cache holds two bytes per key and value: half of what f32 took.
#[test]
fn the_kv_cache_takes_two_bytes_per_value() {
    let opts = LoadOptions { ctx: 512, ..LoadOptions::default() };
    let engine = Engine::load(&model_path(), &opts).unwrap();
    let c = engine.config();
    let want = 2 * c.n_layers * c.n_kv_heads * c.head_dim * engine.context_size() * 2;
    assert_eq!(engine.context_size(), 512);
    assert_eq!(engine.kv_cache_bytes(), want);
}

/// A prompt cache saved by an older upward (format 1: f32 values) is a miss: the warm-up
/// runs, the boss answers exactly as with a fresh prompt, and the file is saved again in
/// the current format.
#[test]
fn an_f32_prompt_cache_from_an_older_upward_is_a_miss_and_saved_again() {
    let kb = KnowledgeBase::load_default().unwrap();
    let personas = load_personas().unwrap();
    let opts = GenerateOptions { sampling: SamplingParams::greedy(), max_tokens: 12 };
    let stop = AtomicBool::new(false);
    let dir = tempfile::tempdir().unwrap();
    let saved = PromptCache::new(dir.path().join("prompts"));
    let start = |saved: &PromptCache| {
        let mut engine = Engine::load(&model_path(), &LoadOptions::default()).unwrap();
        let mut rp = Roleplay::new(&kb, &personas, "weekly-report", None, Lang::En).unwrap();
        let ran = rp.warm_cache(&mut engine, opts.max_tokens, Some(saved)).unwrap();
        let (_, reply) = rp.take_turn(&mut engine, TURN, &opts, &stop, &mut |_| {}).unwrap();
        (ran, reply.text)
    };
    let (ran, first) = start(&saved);
    assert!(ran > 300, "ran {ran}");
    let file = std::fs::read_dir(saved.dir()).unwrap().next().unwrap().unwrap().path();
    let bytes = std::fs::read(&file).unwrap();
    assert_eq!(&bytes[..8], b"UPWKV02\n");
    // Rewrite it as format 1 would have held the same cache: each value as f32.
    let head = 16 + u64::from_le_bytes(bytes[8..16].try_into().unwrap()) as usize;
    let mut old = b"UPWKV01\n".to_vec();
    old.extend_from_slice(&bytes[8..head]);
    for h in bytes[head..].chunks_exact(2) {
        old.extend_from_slice(&half::f16::from_le_bytes([h[0], h[1]]).to_f32().to_le_bytes());
    }
    std::fs::write(&file, &old).unwrap();
    let (ran, again) = start(&saved);
    assert!(ran > 300, "the old file was read: ran {ran}");
    assert_eq!(again, first);
    assert_eq!(std::fs::read(&file).unwrap(), bytes, "not saved again as format 2");
    // And the format 2 file is used.
    let (ran, third) = start(&saved);
    assert_eq!((ran, third), (0, first));
}

/// A conversation exported from the cache and imported into another engine (what
/// `upward serve` does with each user's conversation) answers exactly as it did, without
/// running its prompt again.
#[test]
fn a_conversation_exported_and_imported_answers_the_same() {
    let opts = GenerateOptions { sampling: SamplingParams::greedy(), max_tokens: 16 };
    let stop = AtomicBool::new(false);
    let kb = KnowledgeBase::load_default().unwrap();
    let personas = load_personas().unwrap();
    let turn = |engine: &mut Engine| {
        let mut rp = Roleplay::new(&kb, &personas, "weekly-report", None, Lang::En).unwrap();
        let (_, reply) = rp.take_turn(engine, TURN, &opts, &stop, &mut |_| {}).unwrap();
        reply
    };
    let mut a = Engine::load(&model_path(), &LoadOptions::default()).unwrap();
    let ra = turn(&mut a);
    let (tokens, data) = a.export_cache().unwrap();
    let c = a.config();
    assert_eq!(data.len(), 2 * c.n_layers * c.n_kv_heads * c.head_dim * tokens.len());
    let mut b = Engine::load(&model_path(), &LoadOptions::default()).unwrap();
    b.import_cache(&tokens, &data).unwrap();
    let rb = turn(&mut b);
    assert_eq!(rb.text, ra.text);
    assert!(ra.prefilled_tokens > 300 && rb.prefilled_tokens < 8, "{ra:?} {rb:?}");
    // A cache of the wrong size is refused, not misread.
    assert!(b.import_cache(&tokens, &data[1..]).is_err());
}
