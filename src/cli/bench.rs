//! `upward bench`: load time, prefill and decode speed, peak memory; optionally side by
//! side with llama.cpp (llama-cpp-python) on the same file and thread count.

use super::Global;
use anyhow::Context;
use std::time::Instant;
use upward::engine::Engine;

/// Arguments of `upward bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Prompt tokens for the prefill measurement.
    #[arg(long, default_value_t = 512)]
    pub prompt_tokens: usize,
    /// Tokens decoded one at a time for the decode measurement.
    #[arg(long, default_value_t = 128)]
    pub gen_tokens: usize,
    /// Repetitions; medians are reported.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Also run llama.cpp on the same file and threads and print the ratios.
    #[arg(long, value_parser = ["llama.cpp"])]
    pub compare: Option<String>,
    /// Python interpreter with llama-cpp-python installed (for --compare).
    #[arg(long, env = "UPWARD_LLAMA_PYTHON", default_value = "python3")]
    pub python: String,
}

/// One engine's figures.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Figures {
    /// Seconds to load the model.
    pub load_s: f64,
    /// Prompt tokens per second.
    pub prefill_tok_s: f64,
    /// Generated tokens per second.
    pub decode_tok_s: f64,
    /// Peak resident memory of the process.
    pub peak_rss_bytes: u64,
}

/// Runs `upward bench`.
pub fn run(args: BenchArgs, g: &Global) -> anyhow::Result<()> {
    let threads = g
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    upward::engine::set_threads(threads);
    let ctx = args.prompt_tokens + args.gen_tokens + 16;
    let g = Global { threads: Some(threads), ..g.clone() };
    let (mut engine, name) = super::load_engine(&g, ctx, !args.json)?;
    let tokens = bench_tokens(&engine, args.prompt_tokens + args.gen_tokens);
    let ours = measure(&mut engine, &tokens, &args)?;
    let path = engine.file().path().to_path_buf();
    let kv = engine.kv_cache_bytes();
    let file_bytes = engine.file().len();
    drop(engine);
    let reference = match &args.compare {
        Some(_) => Some(llama_cpp(&args, &path, threads, &tokens)?),
        None => None,
    };
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
    if args.json {
        let mut v = serde_json::json!({
            "model": name,
            "file": path,
            "threads": threads,
            "prompt_tokens": args.prompt_tokens,
            "gen_tokens": args.gen_tokens,
            "load_s": ours.load_s,
            "prefill_tok_s": ours.prefill_tok_s,
            "decode_tok_s": ours.decode_tok_s,
            "peak_rss_bytes": ours.peak_rss_bytes,
            "model_file_bytes": file_bytes,
            "kv_cache_bytes": kv,
        });
        if let Some(r) = &reference {
            v["llama_cpp"] = serde_json::to_value(r)?;
            v["ratio"] = serde_json::json!({
                "prefill": ratio(ours.prefill_tok_s, r.prefill_tok_s),
                "decode": ratio(ours.decode_tok_s, r.decode_tok_s),
                "load": ratio(ours.load_s, r.load_s),
            });
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!(
        "model {name} · {threads} threads · {} prompt + {} generated tokens · median of {}",
        args.prompt_tokens, args.gen_tokens, args.runs
    );
    println!(
        "{:<10} {:>9} {:>14} {:>13} {:>11}",
        "engine", "load s", "prefill tok/s", "decode tok/s", "peak RSS"
    );
    let row = |n: &str, f: &Figures| {
        println!(
            "{:<10} {:>9.3} {:>14.1} {:>13.1} {:>8.0} MB",
            n,
            f.load_s,
            f.prefill_tok_s,
            f.decode_tok_s,
            f.peak_rss_bytes as f64 / 1e6
        )
    };
    row("upward", &ours);
    if let Some(r) = &reference {
        row("llama.cpp", r);
        println!(
            "ratio      load {:.2}x (lower is better) · prefill {:.2}x · decode {:.2}x",
            ratio(ours.load_s, r.load_s),
            ratio(ours.prefill_tok_s, r.prefill_tok_s),
            ratio(ours.decode_tok_s, r.decode_tok_s)
        );
    }
    Ok(())
}

/// Deterministic benchmark tokens: the source talk, repeated as needed.
fn bench_tokens(engine: &Engine, n: usize) -> Vec<u32> {
    let text = include_str!("../../knowledge/source/transcript-zh.txt");
    let one = engine.tokenizer().encode(text, false, false);
    one.iter().copied().cycle().take(n).collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn measure(engine: &mut Engine, tokens: &[u32], args: &BenchArgs) -> anyhow::Result<Figures> {
    let (p, n) = (args.prompt_tokens, args.gen_tokens);
    let mut prefill = Vec::new();
    let mut decode = Vec::new();
    for _ in 0..args.runs.max(1) {
        engine.reset();
        let t = Instant::now();
        engine.eval(&tokens[..p])?;
        prefill.push(p as f64 / t.elapsed().as_secs_f64());
        // Decode: feed the next tokens one at a time (the same work as sampling them).
        let t = Instant::now();
        for i in 0..n {
            engine.eval(&tokens[..p + i + 1])?;
        }
        decode.push(n as f64 / t.elapsed().as_secs_f64());
    }
    Ok(Figures {
        load_s: engine.load_time().as_secs_f64(),
        prefill_tok_s: median(prefill),
        decode_tok_s: median(decode),
        peak_rss_bytes: peak_rss_bytes(),
    })
}

/// Peak resident set size of this process (Linux `VmHWM`; 0 elsewhere).
pub fn peak_rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

fn llama_cpp(
    args: &BenchArgs,
    model: &std::path::Path,
    threads: usize,
    tokens: &[u32],
) -> anyhow::Result<Figures> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/bench/llama_cpp_bench.py");
    let dir = tempfile::tempdir()?;
    let tok_file = dir.path().join("tokens.json");
    std::fs::write(&tok_file, serde_json::to_vec(tokens)?)?;
    let out = std::process::Command::new(&args.python)
        .arg(script)
        .arg(model)
        .args(["--threads", &threads.to_string()])
        .args(["--prompt-tokens", &args.prompt_tokens.to_string()])
        .args(["--gen-tokens", &args.gen_tokens.to_string()])
        .args(["--runs", &args.runs.to_string()])
        .arg("--tokens")
        .arg(&tok_file)
        .output()
        .with_context(|| {
            format!(
                "cannot run {} (set --python to an interpreter with llama-cpp-python)",
                args.python
            )
        })?;
    if !out.status.success() {
        anyhow::bail!(
            "llama.cpp benchmark failed: {}",
            String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or("no output")
        );
    }
    serde_json::from_slice(&out.stdout).context("llama.cpp benchmark printed no JSON")
}
