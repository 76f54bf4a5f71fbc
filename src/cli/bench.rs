//! `upward bench`: load time, prefill and decode speed, peak memory; optionally side by
//! side with llama.cpp (llama-cpp-python) on the same file, thread count and token ids;
//! and how close decode comes to the machine's measured memory bandwidth.

mod bandwidth;
mod cpu;
mod traffic;

use super::Global;
use anyhow::Context;
use std::sync::atomic::AtomicBool;
use std::time::Instant;
use upward::engine::{Engine, GenerateOptions, SamplingParams};
use upward::kb::KnowledgeBase;
use upward::lang::Lang;
use upward::roleplay::{load_personas, Roleplay};

/// Arguments of `upward bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Prompt tokens for the prefill measurement.
    #[arg(long, default_value_t = 512, value_parser = at_least_one)]
    pub prompt_tokens: usize,
    /// Tokens decoded one at a time for the decode measurement.
    #[arg(long, default_value_t = 128)]
    pub gen_tokens: usize,
    /// Repetitions; medians are reported.
    #[arg(long, default_value_t = 3, value_parser = at_least_one)]
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
    /// MiB of the buffer read to measure memory bandwidth (default: 4x the largest CPU
    /// cache and at least 1 GiB, within a quarter of the available memory).
    #[arg(long, env = "UPWARD_BENCH_BANDWIDTH_MIB", value_name = "MIB", value_parser = at_least_one_u64)]
    pub bandwidth_mib: Option<u64>,
    /// Also play this many scripted role-play turns (weekly-report scenario, greedy) and
    /// report the time to the boss's first token at each.
    #[arg(long, default_value_t = 0)]
    pub roleplay_turns: usize,
    /// Most boss tokens per role-play turn.
    #[arg(long, default_value_t = 64)]
    pub reply_tokens: usize,
    /// Load-test `upward serve` instead: this many simulated users (a list such as
    /// `1,4,16` runs each level), each playing a scripted role-play on loopback.
    #[arg(long, value_delimiter = ',', value_name = "N")]
    pub serve: Vec<usize>,
    /// Turns each simulated user plays (with --serve; at most 4).
    #[arg(long, default_value_t = 3, value_parser = at_least_one)]
    pub serve_turns: usize,
    /// Replies the server decodes together (with --serve; default: serve's own).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub slots: Option<u16>,
    /// Most seconds per load level (with --serve): no turn starts after it.
    #[arg(long, default_value_t = 600, value_parser = at_least_one)]
    pub serve_secs: usize,
    /// Decode this many sequences together and compare with one at a time (with
    /// --compare, also llama.cpp's server under as many concurrent requests).
    #[arg(long, value_name = "N", value_parser = at_least_one)]
    pub concurrent: Option<usize>,
}

/// A count of at least 1.
fn at_least_one(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("{s:?} is not a whole number ({e})")),
    }
}

/// A count of at least 1, as a u64.
fn at_least_one_u64(s: &str) -> Result<u64, String> {
    at_least_one(s).map(|n| n as u64)
}

/// One role-play turn's timing.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TurnTiming {
    /// Seconds from sending the turn to the boss's first streamed text.
    pub first_token_s: f64,
    /// Tokens in the whole rendered conversation.
    pub prompt_tokens: usize,
    /// Of those, tokens run through the model (the rest came from the KV cache).
    pub prefilled_tokens: usize,
    /// Boss tokens generated.
    pub generated_tokens: usize,
}

/// The scripted role-play's timings.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RoleplayTimings {
    /// Seconds to prefill the persona prompt and opening before the first turn.
    pub warm_up_s: f64,
    /// Tokens that warm-up ran.
    pub warm_up_tokens: usize,
    /// Each turn in order.
    pub turns: Vec<TurnTiming>,
}

/// The salesperson's side of the scripted role-play, in both languages.
const ROLEPLAY_TURNS_ZH: [&str; 10] = [
    "王总，这周华东区签了两单，合计80万，回款60万，还有一单卡在法务审核。",
    "法务那边我已经约了周四开会，把合同条款逐条过一遍，争取下周一前盖章。",
    "如果周一还没结果，我的备选方案是先签框架协议，让客户先下首批订单。",
    "另外想请教您：客户采购总监下个月换人，您觉得我们该怎么提前建立关系？",
    "明白了，我这周先约新总监喝个咖啡，把我们过去三年的服务记录整理给他。",
    "还有一件事需要您支持：交付团队人手紧，下个月的上线可能要延期一周。",
    "我已经和交付经理谈过，他们可以加班，但需要您和交付总监打个招呼。",
    "好的，我今天下班前把上线计划和风险清单发给您和交付总监。",
    "这个季度我们团队完成了目标的92%，差的部分我计划在12月补上。",
    "谢谢王总，这一年您教我很多，特别是每周汇报的习惯，我会继续坚持。",
];
const ROLEPLAY_TURNS_EN: [&str; 10] = [
    "This week we closed two deals in the east region, $800k in total, and one is stuck in legal review.",
    "I have booked a meeting with legal on Thursday to go through the clauses, aiming to sign by Monday.",
    "If we have no answer by Monday, my fallback is a framework agreement so the first order can ship.",
    "I'd also like your advice: the client's head of purchasing changes next month. How should we prepare?",
    "Understood. I'll invite the new director for coffee this week and bring our three-year service record.",
    "One more thing I need your support on: delivery is short of people and the launch may slip a week.",
    "I've talked to the delivery manager; they can work extra hours if you give their director a call.",
    "Fine, I'll send you and the delivery director the launch plan and the risk list before I leave today.",
    "This quarter the team reached 92% of target; I plan to close the rest of the gap in December.",
    "Thank you for this year. You taught me a lot, especially the weekly report habit; I'll keep it up.",
];

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
    /// Whatever else the reference reports (llama.cpp: its build's `system_info`, and
    /// `extra_bufts`, whether it repacked the weights).
    #[serde(flatten, default)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// The bench's thread count (`--threads`, else every logical CPU), with the thread pools
/// sized to it.
pub(super) fn use_threads(g: &Global) -> usize {
    let threads = g
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    upward::threads::set(threads);
    threads
}

/// Runs `upward bench`.
pub fn run(args: BenchArgs, g: &Global) -> anyhow::Result<()> {
    if let Some(n) = args.concurrent {
        return super::bench_concurrent::run(n, &args, g);
    }
    if !args.serve.is_empty() {
        let load = super::bench_serve::Load {
            turns: args.serve_turns,
            reply_tokens: args.reply_tokens,
            limit: std::time::Duration::from_secs(args.serve_secs as u64),
            slots: args.slots,
        };
        return super::bench_serve::run(&args.serve, load, args.json, g);
    }
    let threads = use_threads(g);
    let buffer = bandwidth::buffer_bytes(args.bandwidth_mib).map_err(anyhow::Error::msg)?;
    let mut ctx = args.prompt_tokens + args.gen_tokens + 16;
    if args.roleplay_turns > 0 {
        // The persona prompt plus every turn (user text, director's note, reply).
        ctx = ctx.max(1024 + args.roleplay_turns * (160 + args.reply_tokens));
    }
    let g = Global { threads: Some(threads), ..g.clone() };
    let (mut model, name) = super::load_model(&g, ctx, !args.json)?;
    let engine = model.engine().ok_or_else(|| {
        anyhow::anyhow!("bench measures our engine: not available for remote models")
    })?;
    // Before any prefill: the model's context may be smaller than asked for.
    let need = args.prompt_tokens + args.gen_tokens;
    if need > engine.context_size() {
        anyhow::bail!(
            "--prompt-tokens {} plus --gen-tokens {} need {need} tokens, but {name}'s context \
             holds {}; ask for fewer",
            args.prompt_tokens,
            args.gen_tokens,
            engine.context_size()
        );
    }
    let tokens = bench_tokens(engine, args.prompt_tokens + args.gen_tokens);
    let ours = measure(engine, &tokens, &args)?;
    let roleplay = match args.roleplay_turns {
        0 => None,
        _ => Some(roleplay_timings(engine, &args, g.lang())?),
    };
    let turns = roleplay.as_ref().map_or(&[][..], |r| &r.turns[..]);
    let first_token_ratio = match (turns.first(), turns.last()) {
        (Some(a), Some(b)) if a.first_token_s > 0.0 => Some(b.first_token_s / a.first_token_s),
        _ => None,
    };
    let path = engine.file().path().to_path_buf();
    let kv = engine.kv_cache_bytes();
    let file_bytes = engine.file().len();
    let traffic = traffic::per_token(engine.file(), engine.config())?;
    // Each decode step also reads the cache of every position before it (keys and values of
    // every layer): on average, the prompt and half the decoded tokens.
    let kv_read = kv as f64 / engine.context_size().max(1) as f64
        * (args.prompt_tokens as f64 + args.gen_tokens as f64 / 2.0);
    drop(model);
    let machine = cpu::describe();
    let kernels = upward::kernels::isa::current().name();
    // With the model's memory freed, before llama.cpp runs.
    let bw = bandwidth::measure(threads, buffer);
    let weight_gb_s = |tok_s: f64| traffic.bytes_per_token as f64 * tok_s / 1e9;
    let fraction = |tok_s: f64| weight_gb_s(tok_s) / bw.gb_s;
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
            "cpu": machine,
            "kernels": kernels,
            "decode_bytes_per_token": traffic.bytes_per_token,
            "decode_bytes": traffic,
            "kv_read_bytes_per_token": kv_read.round() as u64,
            "bandwidth": bw,
            "bandwidth_gb_s": bw.gb_s,
            "decode_weight_gb_s": weight_gb_s(ours.decode_tok_s),
            "bandwidth_fraction": fraction(ours.decode_tok_s),
        });
        if let Some(r) = &roleplay {
            v["roleplay"] = serde_json::to_value(r)?;
            v["roleplay"]["first_token_ratio_last_to_first"] = serde_json::json!(first_token_ratio);
        }
        if let Some(r) = &reference {
            v["llama_cpp"] = serde_json::to_value(r)?;
            v["llama_cpp"]["decode_weight_gb_s"] = serde_json::json!(weight_gb_s(r.decode_tok_s));
            v["llama_cpp"]["bandwidth_fraction"] = serde_json::json!(fraction(r.decode_tok_s));
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
    println!("cpu {} ({}) · kernels {kernels}", machine.model, machine.simd_flags.join(" "));
    println!(
        "memory read bandwidth {:.1} GB/s ({} threads, {} MiB buffer, median of {} passes)",
        bw.gb_s,
        bw.threads,
        bw.buffer_bytes >> 20,
        bw.passes
    );
    println!(
        "weights read per decoded token {:.1} MB (output matrix {:.1} MB; file {:.1} MB)",
        traffic.bytes_per_token as f64 / 1e6,
        traffic.output_matrix_bytes as f64 / 1e6,
        file_bytes as f64 / 1e6
    );
    let line = |n: &str, tok_s: f64| {
        println!(
            "{n:<10} decode streams {:.1} GB/s of weights = {:.2} of the bandwidth",
            weight_gb_s(tok_s),
            fraction(tok_s)
        )
    };
    line("upward", ours.decode_tok_s);
    if let Some(r) = &reference {
        line("llama.cpp", r.decode_tok_s);
    }
    if let Some(r) = &roleplay {
        println!(
            "role-play warm-up (persona prompt and opening, while the user reads): {} tokens \
             in {:.0} ms",
            r.warm_up_tokens,
            r.warm_up_s * 1e3
        );
        println!("role-play turn  prompt tokens  prefilled  first token ms");
        for (i, t) in turns.iter().enumerate() {
            println!(
                "{:>14} {:>14} {:>10} {:>15.0}",
                i + 1,
                t.prompt_tokens,
                t.prefilled_tokens,
                t.first_token_s * 1e3
            );
        }
        if let Some(r) = first_token_ratio {
            println!("first token at turn {} / turn 1: {r:.2}x", turns.len());
        }
    }
    Ok(())
}

/// Plays `args.roleplay_turns` scripted turns of the weekly-report scenario from an empty
/// cache, as the REPL does (greedy, so runs are comparable), timing each.
fn roleplay_timings(
    engine: &mut Engine,
    args: &BenchArgs,
    lang: Lang,
) -> anyhow::Result<RoleplayTimings> {
    let kb = KnowledgeBase::load_default().context("loading the knowledge base")?;
    let personas = load_personas()?;
    let mut rp = Roleplay::new(&kb, &personas, "weekly-report", None, lang)?;
    let script = match lang {
        Lang::Zh => ROLEPLAY_TURNS_ZH,
        Lang::En => ROLEPLAY_TURNS_EN,
    };
    let opts =
        GenerateOptions { sampling: SamplingParams::greedy(), max_tokens: args.reply_tokens };
    let cancel = AtomicBool::new(false);
    engine.reset();
    // As the REPL does while the user reads the opening (not timed as a turn).
    let warm = Instant::now();
    let warmed = rp.warm_cache(engine, opts.max_tokens, None)?;
    let warm_s = warm.elapsed().as_secs_f64();
    let mut out = Vec::new();
    for text in script.iter().cycle().take(args.roleplay_turns) {
        let start = Instant::now();
        let mut first = None;
        let (_, reply) = rp.take_turn(engine, text, &opts, &cancel, &mut |_| {
            first.get_or_insert_with(|| start.elapsed());
        })?;
        out.push(TurnTiming {
            first_token_s: first.unwrap_or_else(|| start.elapsed()).as_secs_f64(),
            prompt_tokens: reply.prompt_tokens,
            prefilled_tokens: reply.prefilled_tokens,
            generated_tokens: reply.generated_tokens,
        });
    }
    Ok(RoleplayTimings { warm_up_s: warm_s, warm_up_tokens: warmed, turns: out })
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
    for _ in 0..args.runs {
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
        extra: Default::default(),
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
    /// The script's answer: the figures and the token ids llama.cpp evaluated.
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(flatten)]
        figures: Figures,
        evaluated_ids: Vec<u32>,
    }
    let answer: Answer =
        serde_json::from_slice(&out.stdout).context("llama.cpp benchmark printed no JSON")?;
    // Both engines must have run the very same tokens, or the comparison means nothing.
    let fed = &tokens[..args.prompt_tokens + args.gen_tokens];
    if answer.evaluated_ids != fed {
        let same = answer.evaluated_ids.iter().zip(fed).take_while(|(a, b)| a == b).count();
        anyhow::bail!(
            "llama.cpp evaluated {} tokens that differ from ours ({} tokens) from position {same}",
            answer.evaluated_ids.len(),
            fed.len()
        );
    }
    Ok(answer.figures)
}
