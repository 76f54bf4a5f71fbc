//! Knowledge-base timings: loading (checks included), building the search index, and
//! searching the whole base with the evaluation queries (median over many runs).
//!
//! Run with `cargo bench --bench kb_search`. Targets: load < 10 ms, search < 5 ms.

use std::time::{Duration, Instant};
use upward::kb::KnowledgeBase;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

fn pct(v: &[Duration], p: f64) -> Duration {
    let mut v = v.to_vec();
    v.sort_unstable();
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    // Loading: parse + validate every file, no index.
    let mut loads = Vec::new();
    for _ in 0..50 {
        let t = Instant::now();
        let kb = KnowledgeBase::builtin().expect("built-in knowledge base is valid");
        loads.push(t.elapsed());
        std::hint::black_box(kb);
    }
    println!("load (builtin, checked): median {:?}", median(loads));

    let kb = KnowledgeBase::builtin().expect("built-in knowledge base is valid");
    let t = Instant::now();
    kb.warm_up();
    println!("index build (first search, jieba dictionary included): {:?}", t.elapsed());

    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/knowledge/eval/queries.toml"
    ))
    .expect("knowledge/eval/queries.toml");
    let table: toml::Table = toml::from_str(&text).expect("queries.toml parses");
    let queries: Vec<String> = table["query"]
        .as_array()
        .expect("[[query]] tables")
        .iter()
        .filter_map(|q| q.get("q").and_then(|v| v.as_str()).map(str::to_string))
        .collect();

    let rounds = 50;
    let mut times = Vec::with_capacity(queries.len() * rounds);
    for _ in 0..rounds {
        for q in &queries {
            let t = Instant::now();
            let hits = kb.search(q, None, 3);
            times.push(t.elapsed());
            std::hint::black_box(hits);
        }
    }
    println!(
        "search ({} principles, {} queries x {rounds}): median {:?}, p95 {:?}, max {:?}",
        kb.principles().len(),
        queries.len(),
        median(times.clone()),
        pct(&times, 0.95),
        times.iter().max().unwrap()
    );
}
