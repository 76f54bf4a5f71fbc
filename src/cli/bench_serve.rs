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

/// Runs each load level in `levels` with `turns` turns per user, within `limit` each.
pub fn run(
    levels: &[usize],
    turns: usize,
    reply_tokens: usize,
    limit: Duration,
    json_out: bool,
    g: &Global,
) -> anyhow::Result<()> {
    if levels.iter().any(|&n| n == 0 || n > MAX_USERS) {
        anyhow::bail!("--serve takes 1 to {MAX_USERS} users per level");
    }
    let turns = turns.clamp(1, LINES.len());
    let mut results = Vec::new();
    for &n in levels {
        let r = level(n, turns, reply_tokens, limit, g)?;
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
    println!("| users | turns | p50 first token (s) | p95 first token (s) | turns/min | all saved | failed |");
    println!("|---:|---:|---:|---:|---:|---|---:|");
    for r in &results {
        println!(
            "| {} | {} | {:.2} | {:.2} | {:.1} | {} | {} |",
            r.users,
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

fn level(
    n: usize,
    turns: usize,
    reply_tokens: usize,
    limit: Duration,
    g: &Global,
) -> anyhow::Result<LoadResult> {
    let dir = tempfile::tempdir()?;
    let mut users = upward::server::Users::load(dir.path())?;
    let tokens: Vec<String> =
        (0..n).map(|i| users.add(&format!("user{i}"))).collect::<Result<_, _>>()?;
    let (child, base) = start_server(g, dir.path(), reply_tokens, n)?;
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
    for (h, token) in handles.into_iter().zip(users.list().iter().map(|u| u.name.clone())) {
        let p = h.join().map_err(|_| anyhow::anyhow!("a simulated user panicked ({token})"))?;
        firsts.extend(p.firsts);
        done += p.done;
        failed += p.failed;
        all_saved &= p.saved;
    }
    let seconds = started.elapsed().as_secs_f64();
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
    })
}

fn start_server(
    g: &Global,
    dir: &std::path::Path,
    reply_tokens: usize,
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
        .args(["--max-tokens", &reply_tokens.to_string()])
        .args(["--turns-per-minute", "1000", "--queue", &(n * 2).to_string()])
        .args(["--cached-conversations", &n.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
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
struct Played {
    firsts: Vec<f64>,
    done: usize,
    failed: usize,
    saved: bool,
}

fn play(base: &str, token: &str, turns: usize, deadline: Instant) -> Played {
    let mut p = Played { firsts: Vec::new(), done: 0, failed: 0, saved: false };
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
    for line in LINES.iter().take(turns) {
        if Instant::now() >= deadline {
            break;
        }
        let sent = Instant::now();
        let resp = agent
            .post(&format!("{base}/api/roleplay/{id}/turn"))
            .set("Authorization", &auth)
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
                if event == "done" {
                    ok = true;
                    let v: Value = serde_json::from_str(d.trim()).unwrap_or_default();
                    session = v["session"].as_i64();
                }
            }
        }
        if ok {
            p.done += 1;
            p.firsts.extend(first);
        } else {
            p.failed += 1;
        }
    }
    // Every completed turn is in the store: a user line and a boss line each.
    p.saved = match session {
        Some(s) => agent
            .get(&format!("{base}/api/sessions/{s}"))
            .set("Authorization", &auth)
            .call()
            .ok()
            .and_then(|r| r.into_json::<Value>().ok())
            .and_then(|v| v["turns"].as_array().map(|t| t.len()))
            .is_some_and(|n| n == 2 * p.done),
        None => p.done == 0,
    };
    p
}
