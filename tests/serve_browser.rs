//! The web app in a real browser: `upward serve` on SmolLM2, headless Chromium driven
//! through chromedriver (WebDriver). It plays a role-play turn and a critique the way a user
//! does and checks what they see: the boss's streamed reply, the trust meter and the turn's
//! score, and the critique card listing what the draft misses.
//!
//! Needs `chromium` and `chromedriver` (Debian: `apt-get install chromium chromium-driver`);
//! without them the test says so and returns. With `UPWARD_SCREENSHOTS=1` it also saves a
//! screenshot of each page to `docs/screenshots/`.

mod common;

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// How long one page event (a reply from the model, a page load) may take before the test
/// gives up instead of hanging. A guard, not a speed assertion.
const PATIENCE: Duration = Duration::from_secs(300);

/// A child process killed when the test ends, however it ends.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn find(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in names {
        for dir in std::env::split_paths(&path).chain([PathBuf::from("/usr/bin")]) {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// A plain HTTP/1.0 GET on loopback: the status line's code and the body.
fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let code = buf.split_whitespace().nth(1)?.parse().ok()?;
    let body = buf.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Some((code, body))
}

/// Waits until `ready()` holds, or fails with `what` and the child's output.
fn wait_until(what: &str, child: &mut Reaped, mut ready: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + PATIENCE;
    while !ready() {
        if let Ok(Some(status)) = child.0.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = child.0.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            panic!("{what} exited ({status}) before it was ready:\n{err}");
        }
        assert!(std::time::Instant::now() < deadline, "{what} did not become ready");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn screenshots_dir() -> Option<PathBuf> {
    (std::env::var("UPWARD_SCREENSHOTS").as_deref() == Ok("1"))
        .then(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots"))
}

async fn shot(c: &Client, name: &str) {
    if let Some(dir) = screenshots_dir() {
        std::fs::create_dir_all(&dir).unwrap();
        // Let smooth scrolling and the meter's transition settle.
        tokio::time::sleep(Duration::from_millis(600)).await;
        let png = c.screenshot().await.expect("screenshot");
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }
}

async fn text_of(c: &Client, css: &str) -> String {
    c.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}")).text().await.unwrap()
}

async fn wait_for(c: &Client, css: &str) -> fantoccini::elements::Element {
    c.wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("the page never showed `{css}`: {e}"))
}

async fn set_size(c: &Client, w: u32, h: u32) {
    c.set_window_size(w, h).await.expect("window size");
}

/// Runs `script` (a function body) in the page and returns its JSON result.
async fn js(c: &Client, script: &str) -> Value {
    c.execute(script, vec![]).await.unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
}

#[test]
fn roleplay_and_critique_in_a_real_browser() {
    let (Some(driver), Some(browser)) = (
        find(&["chromedriver", "chromium.chromedriver"]),
        find(&["chromium", "chromium-browser", "google-chrome"]),
    ) else {
        eprintln!(
            "skipped: chromedriver and chromium are needed for the browser test \
             (apt-get install -y chromium chromium-driver)"
        );
        return;
    };
    let model = common::smol();
    let data = tempfile::tempdir().unwrap();

    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let listen = addr.to_string();
    let mut cmd = common::upward_std(data.path());
    cmd.args(["serve", "--listen", listen.as_str(), "--model"])
        .arg(&model)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut server = Reaped(cmd.spawn().expect("start upward serve"));
    wait_until(
        "upward serve",
        &mut server,
        || matches!(http_get(addr, "/healthz"), Some((200, body)) if body.contains("true")),
    );

    let wd_port = free_port();
    let mut chromedriver = Reaped(
        Command::new(&driver)
            .arg(format!("--port={wd_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chromedriver"),
    );
    let wd_addr: SocketAddr = format!("127.0.0.1:{wd_port}").parse().unwrap();
    // chromedriver keeps HTTP/1.0 connections open: accepting one is the sign it is up.
    wait_until("chromedriver", &mut chromedriver, || {
        TcpStream::connect_timeout(&wd_addr, Duration::from_secs(2)).is_ok()
    });

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": browser,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--lang=en-US", "--hide-scrollbars", "--force-device-scale-factor=1"],
                "prefs": {"intl.accept_languages": "en-US,en"}
            }),
        );
        let c = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://{wd_addr}"))
            .await
            .expect("connect to chromedriver");
        // Play in a task so that a failed assertion still closes the browser.
        let played = tokio::spawn(play(c.clone(), addr)).await;
        let _ = c.close().await;
        if let Err(e) = played {
            if e.is_panic() {
                std::panic::resume_unwind(e.into_panic());
            }
            panic!("the browser session failed: {e}");
        }
    });
}

async fn play(c: Client, addr: SocketAddr) {
    let c = &c;
    let base = format!("http://{addr}");
    set_size(c, 1280, 1000).await;

    // ---- Role-play: pick, start, say one thing, watch the boss answer.
    c.goto(&format!("{base}/#roleplay")).await.unwrap();
    wait_for(c, "#rp-scenario option").await;
    c.find(Locator::Css("#rp-scenario option[value='deal-slipping']"))
        .await
        .expect("the deal-slipping scenario is offered")
        .click()
        .await
        .unwrap();
    shot(c, "roleplay-setup").await;
    c.find(Locator::Id("rp-start")).await.unwrap().click().await.unwrap();
    wait_for(c, "#rp-play:not([hidden]) #rp-log .msg.boss").await;
    let opening = text_of(c, "#rp-log .msg.boss .bubble").await;
    assert!(!opening.trim().is_empty(), "the boss opens the conversation");
    let trust_before = text_of(c, "#trust-value").await;

    let said =
        "The Acme renewal is slipping: their CFO wants 12% more off. I met procurement twice \
                and sent our ROI case. Could you join a call with their CFO on Thursday? If that \
                fails, I will offer a two-year term instead of the discount.";
    c.find(Locator::Id("rp-input")).await.unwrap().send_keys(said).await.unwrap();
    c.find(Locator::Id("rp-send")).await.unwrap().click().await.unwrap();

    // The turn's score appears under what the user said once the turn is done.
    wait_for(c, "#rp-log .msg.user .turn-score .chip").await;
    c.wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css("#rp-send:not([disabled])"))
        .await
        .expect("the turn finishes");
    let reply = js(
        c,
        "const b = [...document.querySelectorAll('#rp-log .msg.boss')].pop();
         return {text: b.querySelector('.bubble').textContent, deltas: Number(b.dataset.deltas || 0)};",
    )
    .await;
    let reply_text = reply["text"].as_str().unwrap_or_default();
    assert!(!reply_text.trim().is_empty(), "the boss's reply appears in the page");
    assert_ne!(reply_text, opening, "a new boss reply, not the opening");
    assert!(
        reply["deltas"].as_u64().unwrap_or(0) >= 2,
        "the reply arrives in pieces (streamed), not all at once: {reply}"
    );
    let total = text_of(c, "#rp-log .msg.user .turn-total strong").await;
    let total: u32 =
        total.trim().parse().unwrap_or_else(|_| panic!("a numeric turn score: {total:?}"));
    assert!(total <= 100);
    let chips = c.find_all(Locator::Css("#rp-log .msg.user .turn-score .chip")).await.unwrap();
    assert!(chips.len() >= 5, "each criterion of the rubric is shown with its mark");
    let trust_after = text_of(c, "#trust-value").await;
    let delta = text_of(c, "#trust-delta").await;
    let width = js(c, "return document.getElementById('trust-fill').style.width;").await;
    assert_eq!(width, json!(format!("{}%", trust_after.trim())), "the bar shows the value");
    if delta.trim().is_empty() {
        assert_eq!(trust_before, trust_after, "no change shown, so the meter did not move");
    } else {
        assert_ne!(trust_before, trust_after, "the meter moves by {delta}");
    }
    shot(c, "roleplay").await;

    // Phone width: the same page must still fit.
    set_size(c, 390, 844).await;
    let overflow = js(
        c,
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
    )
    .await;
    assert!(overflow.as_i64().unwrap_or(1) <= 0, "no sideways scrolling at phone width");
    shot(c, "roleplay-phone").await;
    set_size(c, 1280, 1000).await;

    // ---- Critique: a weak help request lists what it misses.
    c.goto(&format!("{base}/#critique")).await.unwrap();
    let draft = "Hi boss, can you help me with the Acme deal? Thanks";
    wait_for(c, "#view-critique:not([hidden]) #cr-text").await.send_keys(draft).await.unwrap();
    c.find(Locator::Css("#cr-kind option[value='help']")).await.unwrap().click().await.unwrap();
    c.find(Locator::Id("cr-submit")).await.unwrap().click().await.unwrap();
    wait_for(c, "#cr-result:not([hidden]) .criterion").await;
    let shown = js(
        c,
        "return [...document.querySelectorAll('#cr-result .criterion.missing')]
                .map(li => [li.dataset.id, li.querySelector('.crit-name').textContent,
                            li.querySelector('.crit-status').textContent]);",
    )
    .await;
    let shown = shown.as_array().expect("a list").clone();
    assert!(!shown.is_empty(), "a two-line request lacks something, and the card says what");
    for row in &shown {
        assert_eq!(row[2], json!("Missing"), "{row}");
    }
    let shown_ids: Vec<&str> = shown.iter().filter_map(|r| r[0].as_str()).collect();
    assert!(shown_ids.contains(&"plan"), "no next step or fallback in the draft: {shown_ids:?}");
    let names: Vec<&str> = shown.iter().filter_map(|r| r[1].as_str()).collect();
    assert!(names.contains(&"Plan"), "criteria are shown by name: {names:?}");
    let marks = c.find_all(Locator::Css("#cr-result .draft mark")).await.unwrap();
    assert!(!marks.is_empty(), "the evidence is highlighted in the draft");
    let rewrite = text_of(c, "#cr-result .rewrite").await;
    assert!(!rewrite.trim().is_empty(), "the rewrite is shown");
    js(c, "const r = document.getElementById('cr-result'); \
           window.scrollTo({top: r.getBoundingClientRect().top + window.scrollY - 70, behavior: 'instant'});")
    .await;
    shot(c, "critique").await;

    // ---- The other pages, for the screenshots and a smoke check: they render our data.
    c.goto(&format!("{base}/#history")).await.unwrap();
    let sessions = c.wait().at_most(PATIENCE).for_element(Locator::Css("#hi-list .session")).await;
    assert!(sessions.is_ok(), "the role-play and critique are listed in History");
    shot(c, "history").await;
    c.goto(&format!("{base}/#progress")).await.unwrap();
    wait_for(c, "#pr-charts .chart-card svg").await;
    shot(c, "progress").await;
    c.goto(&format!("{base}/#kb")).await.unwrap();
    wait_for(c, "#view-kb:not([hidden]) #kb-q").await.send_keys("ask for advice\n").await.unwrap();
    wait_for(c, "#kb-results .kb-hit").await;
    shot(c, "kb").await;
}
