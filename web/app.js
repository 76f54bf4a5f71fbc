// upward's web app: one page, views picked by location.hash, talking to the JSON API
// (docs/api.md). No framework, no build step. Every piece of data reaches the DOM through
// textContent or createElement, never innerHTML.
"use strict";

const $ = (id) => document.getElementById(id);
const t = (key, vars) => I18N.t(key, vars);
const LANG_KEY = "upward.lang";
const state = { csrf: null, me: null, scenarios: null, personas: [], rp: null, busy: false };

// ---------- DOM helpers ----------

/** An element: `attrs` may hold `class`, `text`, `title`, `on<event>` or any attribute. */
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c == null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

const SVG_NS = "http://www.w3.org/2000/svg";
function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

function clear(node) {
  while (node.firstChild) node.firstChild.remove();
  return node;
}

let flashTimer = null;
function flash(message, kind) {
  const box = $("flash");
  box.textContent = message;
  box.className = "flash " + (kind || "error");
  box.hidden = false;
  clearTimeout(flashTimer);
  flashTimer = setTimeout(() => (box.hidden = true), 6000);
}

function statusMark(status) {
  const s = String(status || "").toLowerCase();
  const mark = { met: "✓", partial: "◐", missing: "✗" }[s] || "·";
  return el("span", { class: "mark " + s, title: t("status." + s), "aria-label": t("status." + s) }, mark);
}

function quote(text, cite) {
  return el("blockquote", { class: "quote" }, el("span", { class: "quote-tag", text: t("common.quote") }),
    el("p", { text: text }), cite ? el("cite", { text: cite }) : null);
}

function copyButton(getText) {
  const b = el("button", { type: "button", class: "copy", text: t("common.copy") });
  b.addEventListener("click", async () => {
    const text = getText();
    try {
      await navigator.clipboard.writeText(text);
    } catch (_) {
      const area = el("textarea", { class: "offscreen" });
      area.value = text;
      document.body.append(area);
      area.select();
      document.execCommand("copy");
      area.remove();
    }
    b.textContent = t("common.copied");
    setTimeout(() => (b.textContent = t("common.copy")), 1500);
  });
  return b;
}

function fmtDate(s) {
  if (!s) return "";
  const d = new Date(s);
  if (isNaN(d)) return String(s);
  return d.toLocaleString(I18N.lang === "zh" ? "zh-CN" : "en-GB",
    { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
}

// ---------- the API ----------

class ApiError extends Error {
  constructor(status, message, code) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function headers(method, json) {
  const h = { Accept: "application/json" };
  if (json) h["Content-Type"] = "application/json";
  if (state.csrf && method !== "GET") h["X-CSRF-Token"] = state.csrf;
  return h;
}

async function failure(res) {
  let body = {};
  try { body = await res.json(); } catch (_) { /* not JSON */ }
  if (res.status === 401 && location.hash !== "#login") location.hash = "#login";
  return new ApiError(res.status, body.error || res.statusText || t("common.error"), body.code);
}

async function api(method, path, body) {
  const res = await fetch(path, {
    method,
    credentials: "same-origin",
    headers: headers(method, body !== undefined),
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok) throw await failure(res);
  if (res.status === 204) return null;
  return res.json();
}

/** POSTs `body` and reads the Server-Sent Events reply, calling `on[event](data)`. */
async function sse(path, body, on) {
  const res = await fetch(path, {
    method: "POST",
    credentials: "same-origin",
    headers: { ...headers("POST", true), Accept: "text/event-stream" },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw await failure(res);
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  const dispatch = (block) => {
    let event = "message";
    const data = [];
    for (const line of block.split(/\r?\n/)) {
      if (line.startsWith(":")) continue;
      const i = line.indexOf(":");
      const field = i < 0 ? line : line.slice(0, i);
      let value = i < 0 ? "" : line.slice(i + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") event = value;
      else if (field === "data") data.push(value);
    }
    if (!data.length) return;
    let parsed;
    try { parsed = JSON.parse(data.join("\n")); } catch (_) { parsed = { text: data.join("\n") }; }
    if (on[event]) on[event](parsed);
  };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += decoder.decode(value, { stream: true });
    let m;
    while ((m = /\r?\n\r?\n/.exec(buf))) {
      dispatch(buf.slice(0, m.index));
      buf = buf.slice(m.index + m[0].length);
    }
  }
  buf += decoder.decode();
  if (buf.trim()) dispatch(buf);
}

// ---------- language ----------

function setLang(lang, remember) {
  I18N.lang = lang === "zh" ? "zh" : "en";
  if (remember) localStorage.setItem(LANG_KEY, I18N.lang);
  I18N.apply(document);
  state.scenarios = null;
  route();
}

// ---------- routing ----------

const VIEWS = ["roleplay", "critique", "history", "progress", "kb", "login"];
const LOADERS = {
  roleplay: loadRoleplay,
  history: loadHistory,
  progress: loadProgress,
  kb: () => $("kb-q").focus(),
};

function route() {
  let view = location.hash.replace(/^#/, "") || "roleplay";
  if (!VIEWS.includes(view)) view = "roleplay";
  for (const v of VIEWS) $("view-" + v).hidden = v !== view;
  for (const a of document.querySelectorAll("#nav a")) {
    a.classList.toggle("active", a.dataset.view === view);
    if (a.dataset.view === view) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  const load = LOADERS[view];
  if (load) Promise.resolve(load()).catch((e) => flash(e.message));
}

// ---------- role-play ----------

async function loadRoleplay() {
  if (state.scenarios) return;
  const data = await api("GET", "/api/scenarios?lang=" + I18N.lang);
  state.scenarios = data.scenarios || [];
  state.personas = data.personas || [];
  const sel = clear($("rp-scenario"));
  for (const s of state.scenarios) sel.append(el("option", { value: s.id, text: s.title || s.id }));
  const ps = clear($("rp-persona"));
  ps.append(el("option", { value: "", text: t("rp.persona.default") }));
  for (const p of state.personas) ps.append(el("option", { value: p.id, text: p.name || p.title || p.id }));
  showSituation();
}

function showSituation() {
  const s = (state.scenarios || []).find((x) => x.id === $("rp-scenario").value);
  $("rp-situation").textContent = s ? s.situation || s.summary || "" : "";
}

function personaName(p) {
  if (!p) return "";
  if (typeof p === "string") {
    const found = state.personas.find((x) => x.id === p);
    return found ? found.name || found.title || p : p;
  }
  return p.name || p.title || p.id || "";
}

function beginRun(res) {
  const sc = res.scenario || {};
  state.rp = { id: res.id, trust: res.trust ?? 50, ended: false };
  $("rp-title").textContent = typeof sc === "string" ? sc : sc.title || sc.id || "";
  $("rp-boss").textContent = personaName(res.persona);
  clear($("rp-log"));
  if (res.notice) addMessage("coach", res.notice, "notice");
  if (res.opening) addMessage("boss", res.opening);
  for (const turn of res.turns || []) {
    if (turn.user != null) addMessage("user", turn.user).append(scoreRow({ score: turn.score, statuses: turn.scores }));
    if (turn.boss != null) addMessage("boss", turn.boss);
  }
  setTrust(res.trust ?? 50, null);
  $("rp-setup").hidden = true;
  $("rp-debrief").hidden = true;
  $("rp-play").hidden = false;
  $("rp-form").hidden = false;
  $("rp-input").focus();
}

function addMessage(who, text, cls) {
  const name = t(who === "user" ? "rp.you" : who === "boss" ? "rp.boss" : "rp.coach");
  const body = el("div", { class: "bubble", text: text || "" });
  const li = el("li", { class: "msg " + who + (cls ? " " + cls : "") }, el("span", { class: "who", text: name }), body);
  $("rp-log").append(li);
  li.scrollIntoView({ block: "end", behavior: "smooth" });
  return li;
}

function setTrust(value, delta) {
  const v = Math.max(0, Math.min(100, Math.round(Number(value) || 0)));
  state.rp && (state.rp.trust = v);
  const meter = $("trust-meter");
  meter.setAttribute("aria-valuenow", v);
  meter.dataset.level = v >= 65 ? "high" : v >= 35 ? "mid" : "low";
  $("trust-fill").style.width = v + "%";
  $("trust-value").textContent = String(v);
  const d = $("trust-delta");
  if (delta == null || delta === 0) {
    d.textContent = "";
  } else {
    d.textContent = (delta > 0 ? "+" : "−") + Math.abs(delta);
    d.className = "delta " + (delta > 0 ? "up" : "down");
  }
}

/** The score chips of one turn: `score` is a number or `{score, statuses|scores}`. */
function scoreRow(score) {
  const total = typeof score === "number" ? score : score && score.score;
  const statuses = (score && (score.statuses || score.scores || score.criteria)) || {};
  const entries = Array.isArray(statuses) ? statuses.map((c) => [c.id, c.status]) : Object.entries(statuses);
  return el("div", { class: "turn-score" },
    el("span", { class: "turn-total", title: t("rp.turn_score") }, t("rp.turn_score") + " ", el("strong", { text: total ?? "–" })),
    el("ul", { class: "chips" }, entries.map(([id, st]) =>
      el("li", { class: "chip " + st }, statusMark(st), I18N.criterion(id)))));
}

function setBusy(busy) {
  state.busy = busy;
  for (const id of ["rp-send", "rp-hint", "rp-feedback", "rp-restart", "rp-end"]) $(id).disabled = busy;
}

async function sendTurn(ev) {
  ev.preventDefault();
  const text = $("rp-input").value.trim();
  if (!text || !state.rp || state.busy) return;
  $("rp-input").value = "";
  setBusy(true);
  const userMsg = addMessage("user", text);
  const bossMsg = addMessage("boss", "", "streaming");
  const bubble = bossMsg.querySelector(".bubble");
  const queue = $("rp-queue");
  queue.hidden = false;
  queue.textContent = t("rp.running");
  try {
    await sse(`/api/roleplay/${encodeURIComponent(state.rp.id)}/turn`, { text }, {
      queue: (d) => {
        queue.hidden = false;
        queue.textContent = d.position > 0 ? t("rp.queue", { n: d.position }) : t("rp.running");
      },
      delta: (d) => {
        queue.hidden = true;
        bubble.textContent += d.text || "";
        bossMsg.dataset.deltas = String(Number(bossMsg.dataset.deltas || 0) + 1);
      },
      turn: (d) => {
        userMsg.append(scoreRow(d.score));
        setTrust(d.trust, d.trust_delta);
      },
      notice: (d) => addMessage("coach", d.text || "", "notice"),
      done: (d) => {
        if (d.interrupted) bossMsg.append(el("span", { class: "muted", text: t("rp.interrupted") }));
      },
      error: (d) => flash(d.error || t("common.error")),
    });
  } catch (e) {
    flash(e.message);
  } finally {
    bossMsg.classList.remove("streaming");
    if (!bubble.textContent) bossMsg.remove();
    queue.hidden = true;
    setBusy(false);
    $("rp-input").focus();
  }
}

async function coachNote(what) {
  if (!state.rp || state.busy) return;
  setBusy(true);
  try {
    const r = await api("POST", `/api/roleplay/${encodeURIComponent(state.rp.id)}/${what}`, {});
    addMessage("coach", r.text || "", what);
  } catch (e) {
    flash(e.message);
  } finally {
    setBusy(false);
  }
}

async function restartRun() {
  if (!state.rp || state.busy || !confirm(t("rp.confirm_restart"))) return;
  try {
    beginRun(await api("POST", `/api/roleplay/${encodeURIComponent(state.rp.id)}/restart`, {}));
  } catch (e) {
    flash(e.message);
  }
}

async function endRun() {
  if (!state.rp || state.busy) return;
  setBusy(true);
  try {
    const r = await api("POST", `/api/roleplay/${encodeURIComponent(state.rp.id)}/end`, {});
    $("rp-form").hidden = true;
    const box = $("rp-debrief");
    clear(box).append(debriefCard(r.debrief || r));
    box.append(el("button", { type: "button", class: "primary", text: t("rp.new"), onclick: newRun }));
    box.hidden = false;
    box.scrollIntoView({ behavior: "smooth" });
  } catch (e) {
    flash(e.message);
  } finally {
    setBusy(false);
  }
}

function newRun() {
  state.rp = null;
  $("rp-play").hidden = true;
  $("rp-debrief").hidden = true;
  $("rp-setup").hidden = false;
}

function debriefCard(d) {
  const frag = el("div", { class: "debrief-body" });
  frag.append(el("div", { class: "debrief-head" }, el("h2", { text: t("rp.debrief") }),
    el("div", { class: "big-score", title: t("rp.score") }, el("strong", { text: d.score ?? "–" }), el("span", { text: "/100" }))));
  const meta = [];
  if (d.best_turn) meta.push(t("rp.best_turn", { n: d.best_turn }));
  if (d.weakest_turn) meta.push(t("rp.weakest_turn", { n: d.weakest_turn }));
  if (meta.length) frag.append(el("p", { class: "muted", text: meta.join(" · ") }));
  if (d.criteria && typeof d.criteria === "object") {
    frag.append(el("ul", { class: "chips" }, Object.entries(d.criteria).map(([id, st]) =>
      el("li", { class: "chip " + st }, statusMark(st), I18N.criterion(id)))));
  }
  if ((d.strengths || []).length) {
    frag.append(el("h3", { text: t("rp.strengths") }), el("ul", { class: "plain" }, d.strengths.map((s) => el("li", { text: s }))));
  }
  if ((d.practise || []).length) {
    frag.append(el("h3", { text: t("rp.practise") }));
    for (const p of d.practise) {
      frag.append(el("div", { class: "practise" }, el("p", { text: p.why || "" }), p.quote ? quote(p.quote, p.principle) : null));
    }
  }
  if (d.better_version) {
    frag.append(el("h3", { text: t("rp.better") }), el("pre", { class: "rewrite", text: d.better_version }),
      copyButton(() => d.better_version));
  }
  return frag;
}

// ---------- critique ----------

async function submitCritique(ev) {
  ev.preventDefault();
  const text = $("cr-text").value;
  if (!text.trim()) return flash(t("cr.empty"), "info");
  const btn = $("cr-submit");
  btn.disabled = true;
  btn.textContent = t("common.loading");
  try {
    const r = await api("POST", "/api/critique", { text, kind: $("cr-kind").value, lang: I18N.lang });
    const box = clear($("cr-result"));
    box.append(critiqueCard(r, text));
    box.hidden = false;
    box.scrollIntoView({ behavior: "smooth" });
  } catch (e) {
    flash(e.message);
  } finally {
    btn.disabled = false;
    btn.textContent = t("cr.submit");
  }
}

/** The draft with each criterion's evidence span marked (offsets count characters). */
function highlightedDraft(draft, criteria) {
  const chars = Array.from(draft);
  const spans = [];
  for (const c of criteria) {
    const ev = c.evidence;
    if (!ev || ev.start == null || ev.end == null || ev.end <= ev.start) continue;
    spans.push({ start: Math.max(0, ev.start), end: Math.min(chars.length, ev.end), c });
  }
  const cuts = new Set([0, chars.length]);
  for (const s of spans) { cuts.add(s.start); cuts.add(s.end); }
  const points = [...cuts].sort((a, b) => a - b);
  const out = el("div", { class: "draft" });
  const rank = { met: 0, partial: 1 };
  for (let i = 0; i + 1 < points.length; i++) {
    const [a, b] = [points[i], points[i + 1]];
    const piece = chars.slice(a, b).join("");
    const over = spans.filter((s) => s.start <= a && s.end >= b);
    if (!over.length) { out.append(piece); continue; }
    over.sort((x, y) => (rank[x.c.status] ?? 2) - (rank[y.c.status] ?? 2));
    const names = over.map((s) => I18N.criterion(s.c.id) + " · " + t("status." + s.c.status)).join("\n");
    out.append(el("mark", { class: over[0].c.status, title: names, "data-criteria": over.map((s) => s.c.id).join(" ") }, piece));
  }
  return out;
}

function critiqueCard(r, draft) {
  const criteria = r.criteria || [];
  const card = el("div", { class: "critique" });
  const kindName = r.kind ? t("cr.kind." + r.kind) : "";
  card.append(el("div", { class: "card critique-head" },
    el("div", { class: "big-score" }, el("strong", { text: r.score ?? "–" }), el("span", { text: "/100" })),
    el("div", {}, el("p", { class: "muted", text: kindName ? t("cr.detected", { kind: kindName }) : "" }),
      r.note ? el("p", { class: "note", text: r.note }) : null)));
  card.append(el("div", { class: "card" }, el("h2", { text: t("cr.draft") }), highlightedDraft(draft, criteria),
    el("p", { class: "muted small", text: t("cr.legend") })));
  const list = el("ol", { class: "criteria" });
  for (const c of criteria) {
    // What the talk says: open for what still needs work, folded for what is met.
    const quotes = (c.principles || []).filter((p) => p.quote).map((p) => quote(p.quote, p.id));
    const talk = !quotes.length ? null : c.status === "met"
      ? el("details", { class: "talk" }, el("summary", { text: t("common.quote") + " (" + quotes.length + ")" }), quotes)
      : el("div", { class: "talk" }, quotes);
    list.append(el("li", { class: "criterion " + c.status, "data-id": c.id },
      el("div", { class: "crit-head" }, statusMark(c.status), el("span", { class: "crit-name", text: I18N.criterion(c.id) }),
        el("span", { class: "crit-status", text: t("status." + c.status) })),
      c.advice ? el("p", { class: "advice", text: c.advice }) : null,
      c.evidence && c.evidence.text ? el("p", { class: "evidence" }, el("mark", { class: c.status, text: c.evidence.text })) : null,
      talk));
  }
  card.append(el("div", { class: "card" }, el("h2", { text: t("cr.card") }), list));
  if (r.comment) card.append(el("div", { class: "card" }, el("h2", { text: t("cr.comment") }), el("p", { text: r.comment })));
  if (r.rewrite) {
    card.append(el("div", { class: "card" }, el("div", { class: "card-title" }, el("h2", { text: t("cr.rewrite") }),
      copyButton(() => r.rewrite)), el("pre", { class: "rewrite", text: r.rewrite })));
  }
  return card;
}

// ---------- history ----------

function sessionPath(id, tail) {
  return `/api/sessions/${encodeURIComponent(id)}${tail || ""}`;
}

async function loadHistory() {
  const data = await api("GET", "/api/sessions");
  const items = Array.isArray(data) ? data : data.sessions || [];
  const ul = clear($("hi-list"));
  $("hi-detail").hidden = true;
  if (!items.length) { ul.append(el("li", { class: "empty muted", text: t("hi.empty") })); return; }
  for (const s of items) {
    const facts = [fmtDate(s.started || s.started_at)];
    if (s.turns) facts.push(t("hi.turns", { n: s.turns }));
    if (s.score != null) facts.push(t("rp.score") + " " + Math.round(s.score));
    const actions = el("div", { class: "actions" },
      el("button", { type: "button", text: t("hi.open"), onclick: () => openSession(s.id).catch((e) => flash(e.message)) }),
      s.kind === "roleplay" ? el("button", { type: "button", text: t("hi.resume"), onclick: () => resumeSession(s.id) }) : null,
      el("a", { class: "button", href: sessionPath(s.id, "/export?format=md"), download: `upward-${s.id}.md`, text: t("hi.export_md") }),
      el("a", { class: "button", href: sessionPath(s.id, "/export?format=json"), download: `upward-${s.id}.json`, text: t("hi.export_json") }),
      el("button", { type: "button", class: "danger", text: t("hi.delete"), onclick: () => deleteSession(s.id) }));
    ul.append(el("li", { class: "session card", "data-id": s.id },
      el("div", { class: "session-main" },
        el("div", { class: "session-line" },
          el("span", { class: "badge " + s.kind, text: t("hi.kind." + s.kind) }),
          el("strong", { class: "session-title", text: s.title || "#" + s.id })),
        el("span", { class: "muted small", text: facts.join(" · ") })),
      actions));
  }
}

async function openSession(id) {
  const d = await api("GET", sessionPath(id));
  const box = clear($("hi-detail"));
  const s = d.session || {};
  box.append(el("div", { class: "card-title" }, el("h2", { text: s.title || "#" + id }),
    el("button", { type: "button", text: t("common.close"), onclick: () => (box.hidden = true) })));
  box.append(el("p", { class: "muted", text: [t("hi.kind." + s.kind), fmtDate(s.started_at)].join(" · ") }));
  if ((d.turns || []).length) {
    const log = el("ol", { class: "log" });
    for (const turn of d.turns) {
      const who = turn.role === "user" ? "user" : turn.role === "assistant" || turn.role === "boss" ? "boss" : "coach";
      const li = el("li", { class: "msg " + who }, el("span", { class: "who", text: t("rp." + (who === "user" ? "you" : who)) }),
        el("div", { class: "bubble", text: turn.text || "" }));
      if (turn.scores) li.append(scoreRow({ score: turn.score, statuses: turn.scores }));
      log.append(li);
    }
    box.append(log);
  }
  if (s.debrief) box.append(debriefCard(s.debrief));
  for (const c of d.critiques || []) box.append(critiqueCard(c.result || {}, c.draft || ""));
  box.hidden = false;
  box.scrollIntoView({ behavior: "smooth" });
}

async function resumeSession(id) {
  try {
    const res = await api("POST", sessionPath(id, "/resume"), {});
    location.hash = "#roleplay";
    await loadRoleplay();
    beginRun(res);
  } catch (e) {
    flash(e.message);
  }
}

async function deleteSession(id) {
  if (!confirm(t("hi.confirm_delete"))) return;
  try {
    await api("DELETE", sessionPath(id));
    await loadHistory();
  } catch (e) {
    flash(e.message);
  }
}

// ---------- progress ----------

const CW = 320, CH = 110, PAD = 12, LEFT = 30;

function chart(c) {
  const pts = c.points || [];
  const n = pts.length;
  const x = (i) => (n <= 1 ? (LEFT + CW - PAD) / 2 : LEFT + ((CW - LEFT - PAD) * i) / (n - 1));
  const y = (v) => PAD + (CH - 2 * PAD) * (1 - Math.max(0, Math.min(100, v)) / 100);
  const g = svg("svg", { viewBox: `0 0 ${CW} ${CH}`, class: "chart", role: "img", "aria-label": I18N.criterion(c.id) });
  for (const v of [0, 50, 100]) {
    g.append(svg("line", { x1: LEFT, x2: CW - PAD, y1: y(v), y2: y(v), class: "grid" }));
    g.append(svg("text", { x: LEFT - 6, y: y(v) + 3, class: "axis", "text-anchor": "end" }, v));
  }
  if (n > 1) g.append(svg("polyline", { points: pts.map((p, i) => `${x(i).toFixed(1)},${y(p.value).toFixed(1)}`).join(" "), class: "line" }));
  pts.forEach((p, i) => {
    g.append(svg("circle", { cx: x(i).toFixed(1), cy: y(p.value).toFixed(1), r: 4, class: "dot " + (p.source || "") },
      svg("title", {}, `${fmtDate(p.at)} · ${p.source || ""} · ${Math.round(p.value)}`)));
  });
  return g;
}

async function loadProgress() {
  const p = await api("GET", "/api/progress");
  $("pr-summary").textContent = t("pr.summary", { c: p.critiques ?? 0, r: p.roleplays ?? 0 });
  const box = clear($("pr-charts"));
  if (!(p.criteria || []).length) { box.append(el("p", { class: "muted", text: t("pr.empty") })); return; }
  for (const c of p.criteria) {
    box.append(el("figure", { class: "card chart-card", "data-id": c.id },
      el("figcaption", {}, el("strong", { text: I18N.criterion(c.id) }),
        el("span", { class: "trend " + c.trend, text: t("pr.trend." + c.trend) }),
        el("span", { class: "muted small", text: t("pr.latest", { v: Math.round(c.latest ?? 0) }) })),
      chart(c)));
  }
}

// ---------- knowledge ----------

async function searchKb(ev) {
  ev.preventDefault();
  const q = $("kb-q").value.trim();
  if (!q) return;
  const data = await api("GET", `/api/kb/search?q=${encodeURIComponent(q)}&lang=${I18N.lang}`).catch((e) => { flash(e.message); return null; });
  if (!data) return;
  const hits = Array.isArray(data) ? data : data.results || data.hits || [];
  const box = clear($("kb-results"));
  if (!hits.length) { box.append(el("p", { class: "muted", text: t("kb.none") })); return; }
  for (const h of hits) {
    const seen = new Set();
    const quotes = [];
    for (const claim of h.claims || []) {
      for (const p of claim.passages || []) {
        if (p.text && !seen.has(p.text)) { seen.add(p.text); quotes.push(quote(p.text)); }
      }
    }
    for (const qt of h.quotes || []) {
      const text = typeof qt === "string" ? qt : qt.text;
      if (text && !seen.has(text)) { seen.add(text); quotes.push(quote(text)); }
    }
    box.append(el("article", { class: "card kb-hit" },
      el("h2", { text: h.title || h.principle || h.id }),
      el("p", { class: "muted small", text: h.id || "" }),
      el("p", { text: h.summary || "" }), quotes));
  }
}

// ---------- sign-in ----------

async function login(ev) {
  ev.preventDefault();
  try {
    const r = await api("POST", "/api/login", { token: $("login-token").value.trim() });
    state.csrf = r.csrf || null;
    $("login-token").value = "";
    await loadMe();
    location.hash = "#roleplay";
  } catch (e) {
    flash(e.status === 401 ? t("login.bad") : e.message);
  }
}

async function logout() {
  try { await api("POST", "/api/logout", {}); } catch (_) { /* signed out anyway */ }
  state.csrf = null;
  state.scenarios = null;
  location.hash = "#login";
}

async function loadMe() {
  const me = await api("GET", "/api/me");
  state.me = me;
  if (me.csrf) state.csrf = me.csrf;
  $("user").textContent = me.auth ? me.user : me.model || "";
  $("logout").hidden = !me.auth;
  return me;
}

// ---------- start ----------

async function boot() {
  const saved = localStorage.getItem(LANG_KEY);
  I18N.lang = saved || ((navigator.language || "en").toLowerCase().startsWith("zh") ? "zh" : "en");
  I18N.apply(document);
  $("lang-switch").addEventListener("click", () => setLang(I18N.lang === "zh" ? "en" : "zh", true));
  $("logout").addEventListener("click", logout);
  $("rp-scenario").addEventListener("change", showSituation);
  $("rp-start").addEventListener("click", async () => {
    const persona = $("rp-persona").value;
    try {
      beginRun(await api("POST", "/api/roleplay", { scenario: $("rp-scenario").value, persona: persona || undefined, lang: I18N.lang }));
    } catch (e) {
      flash(e.message);
    }
  });
  $("rp-form").addEventListener("submit", sendTurn);
  $("rp-input").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) $("rp-form").requestSubmit();
  });
  $("rp-hint").addEventListener("click", () => coachNote("hint"));
  $("rp-feedback").addEventListener("click", () => coachNote("feedback"));
  $("rp-restart").addEventListener("click", restartRun);
  $("rp-end").addEventListener("click", endRun);
  $("cr-form").addEventListener("submit", submitCritique);
  $("kb-form").addEventListener("submit", searchKb);
  $("login-form").addEventListener("submit", login);
  window.addEventListener("hashchange", route);
  try {
    const me = await loadMe();
    if (!saved && me.lang) { I18N.lang = me.lang === "zh" ? "zh" : "en"; I18N.apply(document); }
  } catch (e) {
    if (e.status !== 401) flash(e.message);
  }
  document.body.classList.add("ready");
  route();
}

document.addEventListener("DOMContentLoaded", boot);
