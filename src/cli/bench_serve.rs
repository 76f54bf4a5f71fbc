//! `upward bench --serve N[,N...]`: N simulated users, each playing a scripted role-play
//! against a real `upward serve` on loopback (its own temporary data dir, one user and
//! token each, so the fair queue is exercised), reporting p50/p95 time to the boss's
//! first token, turns per minute, and whether every completed turn is in the store.

use super::Global;
use anyhow::Context;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// Most simulated users.
pub const MAX_USERS: usize = 64;

/// The salesperson's lines, in order (English: every test model speaks it).
const LINES: [&str; 4] = [
    "This week we closed two deals worth 80k; a third is stuck in legal review.",
    "I booked a call with their legal team on Thursday to go through the clauses.",
    "If it is not signed by Monday, my fallback is a framework agreement first.",
    "Could you call their VP on Friday if legal still blocks it? Ten minutes would do.",
];

/// One load level's result.
#[derive(Debug, serde::Serialize)]
pub struct LoadResult {
    /// Simulated users.
    pub users: usize,
    /// Turns that completed.
    pub turns: usize,
    /// Seconds the level took.
    pub seconds: f64,
    /// Median seconds from sending a turn to the boss's first token (queue wait included).
    pub first_token_p50_s: f64,
    /// 95th percentile of the same.
    pub first_token_p95_s: f64,
    /// Completed turns per minute, all users together.
    pub turns_per_minute: f64,
    /// Every completed turn (user line and boss line) is in the user's stored session.
    pub all_saved: bool,
    /// Turns that failed (HTTP errors, streams without `done`).
    pub failed: usize,
    /// Prompt tokens the server ran (not served from a cache), over the completed turns.
    pub prefilled_tokens: u64,
    /// Boss tokens it generated, over the completed turns.
    pub generated_tokens: u64,
    /// Replies the server decodes together (its `--slots`; 1 for a remote model).
    pub slots: usize,
    /// The most replies one of its decode steps ran together.
    pub largest_batch: usize,
}

/// A `upward serve` child on loopback; killed (SIGTERM) when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        #[cfg(unix)]
        // SAFETY: signalling the child this process started.
        unsafe {
            libc::kill(self.0.id() as i32, libc::SIGTERM);
        }
        #[cfg(not(unix))]
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// How each load level runs.
#[derive(Clone, Copy, Debug)]
pub struct Load {
    /// Turns per simulated user (at most 4).
    pub turns: usize,
    /// Most boss tokens per turn.
    pub reply_tokens: usize,
    /// Most time per level: no turn starts after it.
    pub limit: Duration,
    /// The server's `--slots` (its own default when `None`).
    pub slots: Option<u16>,
}

/// Runs each load level in `levels` under `load` (a turn not done within its limit is
/// dropped and counted as failed).
pub fn run(levels: &[usize], load: Load, json_out: bool, g: &Global) -> anyhow::Result<()> {
    if levels.iter().any(|&n| n == 0 || n > MAX_USERS) {
        anyhow::bail!("--serve takes 1 to {MAX_USERS} users per level");
    }
    let load = Load { turns: load.turns.clamp(1, LINES.len()), ..load };
    let mut results = Vec::new();
    for &n in levels {
        let r = level(n, load, g)?;
        if !json_out {
            eprintln!(
                "upward: {n} users: {} turns in {:.1}s, first token p50 {:.2}s p95 {:.2}s",
                r.turns, r.seconds, r.first_token_p50_s, r.first_token_p95_s
            );
        }
        results.push(r);
    }
    if json_out {
        println!("{}", serde_json::to_string_pretty(&results)?);
        return Ok(());
    }
    println!("| users | slots | largest batch | turns | p50 first token (s) | p95 first token (s) | turns/min | all saved | failed |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---|---:|");
    for r in &results {
        println!(
            "| {} | {} | {} | {} | {:.2} | {:.2} | {:.1} | {} | {} |",
            r.users,
            r.slots,
            r.largest_batch,
            r.turns,
            r.first_token_p50_s,
            r.first_token_p95_s,
            r.turns_per_minute,
            if r.all_saved { "yes" } else { "NO" },
            r.failed
        );
    }
    Ok(())
}

fn level(n: usize, load: Load, g: &Global) -> anyhow::Result<LoadResult> {
    let Load { turns, limit, .. } = load;
    let dir = tempfile::tempdir()?;
    let mut users = upward::server::Users::load(dir.path())?;
    let tokens: Vec<String> =
        (0..n).map(|i| users.add(&format!("user{i}"))).collect::<Result<_, _>>()?;
    let (child, base) = start_server(g, dir.path(), load, n)?;
    let status_token = tokens[0].clone();
    let started = Instant::now();
    let deadline = started + limit;
    let handles: Vec<_> = tokens
        .into_iter()
        .map(|token| {
            let base = base.clone();
            std::thread::spawn(move || play(&base, &token, turns, deadline))
        })
        .collect();
    let mut firsts = Vec::new();
    let (mut done, mut failed, mut all_saved) = (0, 0, true);
    let (mut prefilled, mut generated) = (0, 0);
    for (h, token) in handles.into_iter().zip(users.list().iter().map(|u| u.name.clone())) {
        let p = h.join().map_err(|_| anyhow::anyhow!("a simulated user panicked ({token})"))?;
        firsts.extend(p.firsts);
        done += p.done;
        failed += p.failed;
        all_saved &= p.saved;
        prefilled += p.prefilled;
        generated += p.generated;
    }
    let seconds = started.elapsed().as_secs_f64();
    let status = model_status(&base, &status_token);
    drop(child);
    firsts.sort_by(f64::total_cmp);
    let pct = |q: f64| {
        if firsts.is_empty() {
            f64::NAN
        } else {
            firsts[((firsts.len() - 1) as f64 * q).round() as usize]
        }
    };
    Ok(LoadResult {
        users: n,
        turns: done,
        seconds,
        first_token_p50_s: pct(0.5),
        first_token_p95_s: pct(0.95),
        turns_per_minute: done as f64 / seconds * 60.0,
        all_saved: all_saved && done > 0,
        failed,
        prefilled_tokens: prefilled,
        generated_tokens: generated,
        slots: status["slots"].as_u64().unwrap_or(0) as usize,
        largest_batch: status["largest_batch"].as_u64().unwrap_or(0) as usize,
    })
}

/// The server's `/api/status` model object (`null` when it cannot be read).
fn model_status(base: &str, token: &str) -> Value {
    let got = ureq::get(&format!("{base}/api/status"))
        .set("Authorization", &format!("Bearer {token}"))
        .timeout(Duration::from_secs(30))
        .call();
    got.ok().and_then(|r| r.into_json::<Value>().ok()).map_or(Value::Null, |v| v["model"].clone())
}

fn start_server(
    g: &Global,
    dir: &std::path::Path,
    load: Load,
    n: usize,
) -> anyhow::Result<(Server, String)> {
    let exe = std::env::current_exe().context("finding the upward binary")?;
    let mut c = std::process::Command::new(exe);
    c.arg("--data-dir").arg(dir);
    if let Some(m) = &g.model {
        c.arg("--model").arg(m);
    }
    if let Some(f) = &g.models_file {
        c.arg("--models-file").arg(f);
    }
    if let Some(t) = g.threads {
        c.arg("--threads").arg(t.to_string());
    }
    c.args(["serve", "--listen", "127.0.0.1:0", "--temperature", "0", "--ctx", "2048"])
        .args(["--max-tokens", &load.reply_tokens.to_string()])
        .args(["--turns-per-minute", "1000", "--queue", &(n * 2).to_string()])
        .args(["--cached-conversations", &n.to_string()]);
    if let Some(slots) = load.slots {
        c.args(["--slots", &slots.to_string()]);
    }
    c.stdout(Stdio::piped()).stderr(Stdio::null());
    let mut child = Server(c.spawn().context("starting upward serve")?);
    let stdout = child.0.stdout.take().context("the server's stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let base = loop {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(at) = line.find("http://") {
                    break line[at..].trim_end_matches('/').to_string();
                }
            }
            _ => anyhow::bail!("upward serve stopped before listening"),
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Ok((child, base))
}

/// One simulated user's outcome.
#[derive(Default)]
struct Played {
    firsts: Vec<f64>,
    done: usize,
    failed: usize,
    saved: bool,
    /// Prompt tokens the server ran and reply tokens it generated, over the done turns.
    prefilled: u64,
    generated: u64,
}

fn play(base: &str, token: &str, turns: usize, deadline: Instant) -> Played {
    let mut p = Played::default();
    let auth = format!("Bearer {token}");
    let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(600)).build();
    let start = agent
        .post(&format!("{base}/api/roleplay"))
        .set("Authorization", &auth)
        .send_json(json!({ "scenario": "weekly-report", "lang": "en" }))
        .ok()
        .and_then(|r| r.into_json::<Value>().ok());
    let Some(id) = start.as_ref().and_then(|v| v["id"].as_str()).map(str::to_string) else {
        p.failed = turns;
        return p;
    };
    let mut session = None;
    let mut completed = Vec::new();
    for line in LINES.iter().take(turns) {
        if Instant::now() >= deadline {
            break;
        }
        let sent = Instant::now();
        // A turn still waiting at the deadline is dropped (the server cancels it).
        let resp = agent
            .post(&format!("{base}/api/roleplay/{id}/turn"))
            .set("Authorization", &auth)
            .timeout(deadline.saturating_duration_since(sent).max(Duration::from_secs(1)))
            .send_json(json!({ "text": line }));
        let Ok(resp) = resp else {
            p.failed += 1;
            continue;
        };
        let (mut first, mut ok) = (None, false);
        let mut event = String::new();
        for l in BufReader::new(resp.into_reader()).lines() {
            let Ok(l) = l else { break };
            if let Some(e) = l.strip_prefix("event:") {
                event = e.trim().to_string();
            } else if let Some(d) = l.strip_prefix("data:") {
                if event == "delta" && first.is_none() {
                    first = Some(sent.elapsed().as_secs_f64());
                }
                if event == "turn" {
                    let v: Value = serde_json::from_str(d.trim()).unwrap_or_default();
                    p.prefilled += v["prefilled_tokens"].as_u64().unwrap_or(0);
                    p.generated += v["generated_tokens"].as_u64().unwrap_or(0);
                }
                if event == "done" {
                    ok = true;
                    let v: Value = serde_json::from_str(d.trim()).unwrap_or_default();
                    session = v["session"].as_i64();
                }
            }
        }
        if ok {
            completed.push(*line);
            p.done += 1;
            p.firsts.extend(first);
        } else {
            p.failed += 1;
        }
    }
    // Every completed turn is in the store: its user line, followed by a boss line.
    p.saved = match session {
        Some(s) => agent
            .get(&format!("{base}/api/sessions/{s}"))
            .set("Authorization", &auth)
            .call()
            .ok()
            .and_then(|r| r.into_json::<Value>().ok())
            .and_then(|v| v["turns"].as_array().cloned())
            .is_some_and(|stored| {
                completed.iter().all(|line| {
                    stored.windows(2).any(|w| {
                        w[0]["role"] == "user" && w[0]["text"] == *line && w[1]["role"] != "user"
                    })
                })
            }),
        None => p.done == 0,
    };
    p
}
