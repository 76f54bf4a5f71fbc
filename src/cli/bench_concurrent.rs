//! `upward bench --concurrent N`: decode throughput of N sequences decoding together
//! (continuous batching: every weight streamed once per step for all of them) against the
//! same N sequences decoded one after another; optionally llama-cpp-python's server under
//! the same load (N concurrent `/v1/completions`).

use super::bench::BenchArgs;
use super::Global;
use anyhow::Context;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use upward::engine::{Engine, Sequence};

/// Our figures (medians over the runs; single and together alternate within each run).
#[derive(Debug, Clone, serde::Serialize)]
struct Ours {
    /// Decode tokens per second of one sequence alone (the N prompts in turn).
    single_decode_tok_s: f64,
    /// Decode tokens per second of the N sequences together (total tokens / wall time).
    aggregate_decode_tok_s: f64,
    /// `aggregate / single`.
    speedup: f64,
    /// Generated tokens per second including each prompt's prefill, alone in turn.
    single_end_to_end_tok_s: f64,
    /// The same with the N sequences decoding together (prefills one by one first).
    aggregate_end_to_end_tok_s: f64,
}

/// llama-cpp-python server figures.
#[derive(Debug, Clone, serde::Serialize)]
struct Server {
    /// Completion tokens per second of one request alone (prompt processing included).
    single_end_to_end_tok_s: f64,
    /// Completion tokens per second of N concurrent requests (total / wall time).
    aggregate_end_to_end_tok_s: f64,
    /// Completion tokens the server generated per request (it stops at end of text).
    completion_tokens: Vec<u64>,
}

/// Runs `upward bench --concurrent n`.
pub fn run(n: usize, args: &BenchArgs, g: &Global) -> anyhow::Result<()> {
    if n == 0 {
        anyhow::bail!("--concurrent needs at least 1 sequence");
    }
    let threads = super::bench::use_threads(g);
    let g = Global { threads: Some(threads), ..g.clone() };
    let (p, gen) = (args.prompt_tokens, args.gen_tokens);
    let (mut model, name) = super::load_model(&g, p + gen + 16, !args.json)?;
    let engine = model.engine().ok_or_else(|| {
        anyhow::anyhow!("bench measures our engine: not available for remote models")
    })?;
    if p + gen > engine.context_size() {
        anyhow::bail!(
            "--prompt-tokens {p} plus --gen-tokens {gen} need {} tokens, but {name}'s context \
             holds {}; ask for fewer",
            p + gen,
            engine.context_size()
        );
    }
    let streams = token_streams(engine, n, p + gen);
    let ours = measure(engine, &streams, args)?;
    let path = engine.file().path().to_path_buf();
    let texts: Vec<String> =
        streams.iter().map(|s| engine.tokenizer().decode_with(&s[..p], false)).collect();
    drop(model);
    let server = match &args.compare {
        Some(_) => Some(llama_server(&args.python, &path, threads, &texts, p + gen, gen)?),
        None => None,
    };
    if args.json {
        let mut v = serde_json::json!({
            "model": name,
            "file": path,
            "threads": threads,
            "concurrent": n,
            "prompt_tokens": p,
            "gen_tokens": gen,
            "runs": args.runs,
        });
        for (k, val) in serde_json::to_value(&ours)?.as_object().into_iter().flatten() {
            v[k] = val.clone();
        }
        if let Some(s) = &server {
            v["llama_cpp_server"] = serde_json::to_value(s)?;
            v["ratio_end_to_end_vs_llama_cpp_server"] = serde_json::json!(
                ours.aggregate_end_to_end_tok_s / s.aggregate_end_to_end_tok_s.max(1e-9)
            );
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!(
        "model {name} · {threads} threads · {n} sequences of {p} prompt + {gen} generated tokens \
         · median of {}",
        args.runs
    );
    println!("{:<28} {:>12} {:>12}", "", "decode tok/s", "end-to-end");
    println!(
        "{:<28} {:>12.1} {:>12.1}",
        "upward, one at a time", ours.single_decode_tok_s, ours.single_end_to_end_tok_s
    );
    println!(
        "{:<28} {:>12.1} {:>12.1}",
        format!("upward, {n} together"),
        ours.aggregate_decode_tok_s,
        ours.aggregate_end_to_end_tok_s
    );
    println!("together / one at a time: {:.2}x", ours.speedup);
    if let Some(s) = &server {
        println!(
            "{:<28} {:>12} {:>12.1}",
            "llama.cpp server, 1 request", "", s.single_end_to_end_tok_s
        );
        println!(
            "{:<28} {:>12} {:>12.1}",
            format!("llama.cpp server, {n} at once"),
            "",
            s.aggregate_end_to_end_tok_s
        );
    }
    Ok(())
}

/// `n` different deterministic token streams of `len` tokens: the source talk from
/// different starting points, repeated as needed.
fn token_streams(engine: &Engine, n: usize, len: usize) -> Vec<Vec<u32>> {
    let text = include_str!("../../knowledge/source/transcript-zh.txt");
    let all = engine.tokenizer().encode(text, false, false);
    let step = (all.len() / n.max(1)).max(1);
    (0..n).map(|i| all.iter().copied().cycle().skip(i * step).take(len).collect()).collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// Prefills each stream's prompt into a new sequence; returns them and the seconds taken.
fn prefill_all(
    engine: &mut Engine,
    streams: &[Vec<u32>],
    p: usize,
    cap: usize,
) -> anyhow::Result<(Vec<Sequence>, f64)> {
    let t = Instant::now();
    let mut seqs = Vec::with_capacity(streams.len());
    for s in streams {
        let mut seq = engine.new_sequence(cap)?;
        engine.prefill_sequence(&mut seq, &s[..p])?;
        seqs.push(seq);
    }
    Ok((seqs, t.elapsed().as_secs_f64()))
}

/// Decodes `gen` tokens of every sequence together (feeding each stream's next tokens,
/// the same work as sampling them); returns the seconds taken.
fn decode_together(
    engine: &mut Engine,
    seqs: &mut [Sequence],
    streams: &[Vec<u32>],
    p: usize,
    gen: usize,
) -> anyhow::Result<f64> {
    let t = Instant::now();
    for i in 0..gen {
        let tokens: Vec<u32> = streams.iter().map(|s| s[p + i]).collect();
        let mut refs: Vec<&mut Sequence> = seqs.iter_mut().collect();
        engine.decode_sequences(&mut refs, &tokens)?;
    }
    Ok(t.elapsed().as_secs_f64())
}

fn measure(engine: &mut Engine, streams: &[Vec<u32>], args: &BenchArgs) -> anyhow::Result<Ours> {
    let (p, gen, n) = (args.prompt_tokens, args.gen_tokens, streams.len());
    let total = (n * gen) as f64;
    let cap = p + gen;
    let (mut single, mut together, mut single_e2e, mut together_e2e) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..args.runs {
        // One at a time: each sequence prefilled and decoded alone.
        let (mut pre, mut dec) = (0.0, 0.0);
        for s in streams {
            let (mut seqs, t) = prefill_all(engine, std::slice::from_ref(s), p, cap)?;
            pre += t;
            dec += decode_together(engine, &mut seqs, std::slice::from_ref(s), p, gen)?;
        }
        single.push(total / dec);
        single_e2e.push(total / (pre + dec));
        // Together: every prompt prefilled, then one decode step for all per token.
        let (mut seqs, pre) = prefill_all(engine, streams, p, cap)?;
        let dec = decode_together(engine, &mut seqs, streams, p, gen)?;
        together.push(total / dec);
        together_e2e.push(total / (pre + dec));
    }
    let (s, a) = (median(single), median(together));
    Ok(Ours {
        single_decode_tok_s: s,
        aggregate_decode_tok_s: a,
        speedup: if s > 0.0 { a / s } else { 0.0 },
        single_end_to_end_tok_s: median(single_e2e),
        aggregate_end_to_end_tok_s: median(together_e2e),
    })
}

/// Starts `llama_cpp.server` with weight repacking off (see the script).
const LAUNCHER: &str = include_str!("../../bench/llama_server.py");

/// The server process, killed when dropped.
struct ServerProcess(Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// llama-cpp-python's server on `model` with `threads` threads: one request alone, then
/// all of `prompts` at once (`max_tokens` each, temperature 0).
fn llama_server(
    python: &str,
    model: &Path,
    threads: usize,
    prompts: &[String],
    ctx: usize,
    max_tokens: usize,
) -> anyhow::Result<Server> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    // Its log goes to a file: a pipe nobody reads would fill and stall it.
    let mut log = tempfile::tempfile()?;
    let child = Command::new(python)
        .arg("-c")
        .arg(LAUNCHER)
        .arg("--model")
        .arg(model)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--n_threads", &threads.to_string(), "--n_ctx", &(ctx + 64).to_string()])
        .stdout(Stdio::null())
        .stderr(log.try_clone()?)
        .spawn()
        .with_context(|| format!("cannot run {python} (set --python to llama-cpp-python's)"))?;
    let mut server = ServerProcess(child);
    let base = format!("http://127.0.0.1:{port}");
    let start = Instant::now();
    while ureq::get(&format!("{base}/v1/models")).call().is_err() {
        if let Ok(Some(status)) = server.0.try_wait() {
            let mut err = String::new();
            let _ = log.seek(SeekFrom::Start(0)).and_then(|_| log.read_to_string(&mut err));
            anyhow::bail!(
                "llama_cpp.server exited ({status}): {}",
                err.lines().last().unwrap_or("no output")
            );
        }
        if start.elapsed() > Duration::from_secs(120) {
            anyhow::bail!("llama_cpp.server did not answer within two minutes");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let complete = |prompt: &str| -> anyhow::Result<u64> {
        let body = serde_json::json!({
            "prompt": prompt, "max_tokens": max_tokens, "temperature": 0.0,
        });
        let reply: serde_json::Value = ureq::post(&format!("{base}/v1/completions"))
            .timeout(Duration::from_secs(1800))
            .send_json(body)?
            .into_json()?;
        reply["usage"]["completion_tokens"]
            .as_u64()
            .ok_or_else(|| anyhow::anyhow!("the server's answer has no usage: {reply}"))
    };
    complete(&prompts[0]).context("warming up llama_cpp.server")?;
    let t = Instant::now();
    let one = complete(&prompts[0])?;
    let single = one as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    let counts: Vec<anyhow::Result<u64>> = std::thread::scope(|s| {
        let handles: Vec<_> = prompts.iter().map(|p| s.spawn(|| complete(p))).collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(anyhow::anyhow!("a request panicked"))))
            .collect()
    });
    let wall = t.elapsed().as_secs_f64();
    let counts = counts.into_iter().collect::<anyhow::Result<Vec<u64>>>()?;
    Ok(Server {
        single_end_to_end_tok_s: single,
        aggregate_end_to_end_tok_s: counts.iter().sum::<u64>() as f64 / wall,
        completion_tokens: counts,
    })
}
