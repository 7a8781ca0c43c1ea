// tokenrun's wizard page. It knows no procedure: it lists those the server names and
// renders each run's protocol lines (docs/protocol.md) by their kind and hints. Every word
// it shows comes from the catalog (/api/catalog) or from the run's own lines.
"use strict";

const state = { lang: "en", words: {}, procedures: [], ws: null, ready: false, run: null, languages: [] };

const $ = (id) => document.getElementById(id);
const el = (tag, attrs = {}, ...children) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v === true) e.setAttribute(k, "");
    else if (v !== false && v !== undefined && v !== null) e.setAttribute(k, v);
  }
  for (const c of children) if (c) e.append(c);
  return e;
};

// w is one catalog word with {placeholders} filled in; a missing key shows the key, so a
// bank's incomplete catalog is visible rather than silently English.
function w(key, args = {}) {
  const text = state.words[key] ?? key;
  return text.replace(/\{([a-z_]+)\}/g, (m, name) => (name in args ? String(args[name]) : m));
}

function translatePage() {
  document.documentElement.lang = state.lang;
  document.title = w("wizard_title");
  for (const e of document.querySelectorAll("[data-w]")) e.textContent = w(e.dataset.w);
  for (const b of document.querySelectorAll("#langs button")) b.classList.toggle("active", b.dataset.lang === state.lang);
}

async function api(path, opts) {
  const r = await fetch(path, Object.assign({ credentials: "same-origin", cache: "no-store" }, opts));
  if (!r.ok) {
    let key = "wizard_error_internal";
    try { key = (await r.json()).key || key; } catch (e) { /* not JSON */ }
    throw new Error(w(key));
  }
  return r;
}

async function setLanguage(lang) {
  const r = await api("/api/catalog?lang=" + encodeURIComponent(lang));
  const c = await r.json();
  state.lang = c.lang;
  state.words = c.words;
  state.procedures = c.procedures || [];
  localStorage.setItem("tokenrun_lang", state.lang);
  translatePage();
  renderProcedures();
  // What was shown in the other language is shown again in this one, or cleared.
  $("sign-file-name").textContent = state.signChosen ? w("wizard_file_chosen", { name: state.signChosen.name }) : "";
  $("verify-result").hidden = true;
  $("verify-result").replaceChildren();
  if (!$("screen-tokens").hidden) loadTokens();
}

// Screens.
function show(name) {
  notice("");
  for (const s of document.querySelectorAll(".screen")) s.hidden = s.id !== "screen-" + name;
  for (const b of document.querySelectorAll("#nav button")) b.classList.toggle("active", b.dataset.screen === name);
  if (name === "tokens") loadTokens();
}

function notice(text) {
  const n = $("notice");
  n.textContent = text;
  n.hidden = !text;
}

function message(key) {
  $("message-text").textContent = w(key);
  $("nav").hidden = true;
  show("message");
}

function renderProcedures() {
  const list = $("procedures");
  list.replaceChildren();
  for (const p of state.procedures) {
    list.append(el("li", {}, el("button", { type: "button", "data-procedure": p.name, text: p.title, onclick: () => startProcedure(p) })));
  }
}

// The WebSocket to the server: one per page.
function connect() {
  const ws = new WebSocket("ws://" + location.host + "/ws");
  state.ws = ws;
  ws.onmessage = (ev) => onServer(JSON.parse(ev.data));
  ws.onclose = () => {
    if (state.busy) return;
    state.ready = false;
    message("wizard_disconnected");
  };
}

function send(m) {
  state.ws.send(JSON.stringify(m));
}

function onServer(m) {
  switch (m.op) {
    case "ready":
      state.ready = true;
      break;
    case "busy":
      state.busy = true;
      message(m.key);
      break;
    case "refused":
      if (state.run) logLine("error", w(m.key));
      else notice(w(m.key));
      break;
    case "consent":
      // A web page asks to sign (the signing agent): who asks, and what the procedure's
      // questions cannot show, the start of each text document.
      beginRun(w("wizard_consent_heading"), null);
      showConsent(m.consent);
      break;
    case "line":
      if (state.run) onLine(m.line);
      break;
    case "ended":
      endRun(m);
      break;
  }
}

// A run.
function beginRun(title, signing) {
  state.run = { pending: null, progress: {}, signing, result: null, runID: "" };
  $("run-title").textContent = title;
  $("run-banner").hidden = true;
  $("run-log").replaceChildren();
  $("run-progress").replaceChildren();
  $("run-ask").hidden = true;
  $("run-ask").replaceChildren();
  $("run-result").hidden = true;
  $("run-result").replaceChildren();
  delete $("run-result").dataset.outcome;
  delete $("run-result").dataset.code;
  document.body.dataset.runs = String(Number(document.body.dataset.runs || 0) + 1);
  $("run-cancel").hidden = false;
  $("run-home").hidden = true;
  $("nav").hidden = true;
  show("run");
}

function showConsent(c) {
  const banner = $("run-banner");
  banner.replaceChildren(el("strong", { text: c.title }));
  for (const d of c.documents || []) {
    const item = el("div", { class: "document", "data-document": d.index },
      el("div", { text: w("wizard_consent_document", { index: d.index, size: d.size, sha256: d.sha256 }) }));
    if (d.preview) item.append(el("pre", { class: "preview", text: d.preview + (d.truncated ? "…" : "") }));
    banner.append(item);
  }
  banner.hidden = false;
}

function startProcedure(p) {
  beginRun(p.title, null);
  send({ op: "start", procedure: p.name, lang: state.lang });
}

function logLine(level, text) {
  $("run-log").append(el("li", { class: level, text }));
}

// turn counts the asks and refusals the page has shown: a test (or an accessibility tool)
// waits for the next one by it.
function nextTurn() {
  document.body.dataset.turn = String(Number(document.body.dataset.turn || 0) + 1);
}

function onLine(line) {
  const run = state.run;
  switch (line.type) {
    case "hello":
      run.runID = line.run_id;
      break;
    case "say":
      logLine(line.level, line.text);
      break;
    case "progress":
      showProgress(line, false);
      break;
    case "progress_done":
      showProgress(line, true);
      break;
    case "ask":
      ask(line);
      nextTurn();
      break;
    case "invalid":
    case "error":
      invalid(line.message);
      nextTurn();
      break;
    case "signed":
      break;
    case "result":
      run.result = line;
      showResult(line);
      break;
  }
}

function fmtSeconds(s) {
  s = Math.max(0, Math.round(s));
  const m = Math.floor(s / 60);
  return m > 0 ? w("wizard_minutes_seconds", { minutes: m, seconds: String(s % 60).padStart(2, "0") }) : w("wizard_seconds", { seconds: s });
}

// Progress: a bar, the time gone (counted here between lines), a retry's countdown.
function showProgress(line, done) {
  const run = state.run;
  let p = run.progress[line.id];
  if (!p) {
    const bar = el("div", { class: "bar" }, el("span"));
    const meta = el("div", { class: "meta" });
    // In the log, where it happens: the person reads the run top to bottom.
    const box = el("li", { class: "progress", "data-progress": line.id }, el("div", { text: line.label }), bar, meta);
    $("run-log").append(box);
    p = run.progress[line.id] = { box, bar, meta, timer: null };
  }
  p.elapsed = line.elapsed || 0;
  p.at = Date.now();
  p.retryIn = line.retry_in;
  p.attempt = line.attempt;
  p.note = line.note || "";
  const fill = p.bar.firstChild;
  p.bar.classList.toggle("unknown", !done && (line.fraction === null || line.fraction === undefined));
  if (done) fill.style.width = "100%";
  else if (typeof line.fraction === "number") fill.style.width = Math.round(line.fraction * 100) + "%";
  else fill.style.width = "";
  const tick = () => {
    const gone = p.elapsed + (done ? 0 : (Date.now() - p.at) / 1000);
    let text = w("wizard_elapsed", { time: fmtSeconds(gone) });
    if (!done && p.attempt && typeof p.retryIn === "number") {
      const left = p.retryIn - (Date.now() - p.at) / 1000;
      text += " · " + w("wizard_retry_in", { attempt: p.attempt, time: fmtSeconds(left) });
    }
    p.meta.textContent = text;
  };
  clearInterval(p.timer);
  tick();
  if (done) {
    p.box.classList.add(line.ok ? "done" : "failed");
  } else {
    p.timer = setInterval(tick, 1000);
  }
}

// Live checks of what hints say, as the person types; the host has the last word.
function longestSequence(s) {
  const rs = Array.from(s.toLowerCase());
  let best = Math.min(rs.length, 1), up = 1, down = 1;
  for (let i = 1; i < rs.length; i++) {
    const d = rs[i].codePointAt(0) - rs[i - 1].codePointAt(0);
    if (d === 1) { up++; down = 1; } else if (d === -1) { down++; up = 1; } else { up = 1; down = 1; }
    best = Math.max(best, up, down);
  }
  return best;
}

function ruleHolds(rule, hints, value) {
  const n = Array.from(value).length;
  switch (rule.id) {
    case "password_too_short": return hints.min_length ? n >= hints.min_length : null;
    case "password_too_long": return hints.max_length ? n <= hints.max_length : null;
    case "password_charset":
      if (hints.allowed) return new RegExp("^[" + hints.allowed + "]*$", "u").test(value);
      return hints.pattern ? new RegExp(hints.pattern, "u").test(value) : null;
    case "password_sequence": return rule.max ? longestSequence(value) <= rule.max : null;
    default: return null;
  }
}

function ask(line) {
  const run = state.run;
  run.pending = line;
  const form = $("run-ask");
  form.replaceChildren();
  form.hidden = false;
  form.dataset.prompt = line.id;
  const id = "answer-" + line.id;
  form.append(el("label", { class: "question", for: id, text: line.label }));
  if (line.help) form.append(el("p", { class: "help", text: line.help }));
  const hints = line.hints || {};
  let input = null, rules = null, getValue = null, fileData = null;
  const kind = ["text", "secret", "choice", "confirm", "file"].includes(line.kind) ? line.kind : "text";
  const submit = el("button", { type: "submit", id: "answer-submit", text: w("wizard_continue") });
  if (kind === "text" || kind === "secret") {
    input = el("input", {
      id, name: line.id, type: kind === "secret" ? "password" : "text",
      autocomplete: kind === "secret" ? "new-password" : "off", autocapitalize: "off", spellcheck: "false",
      placeholder: hints.example || "", maxlength: hints.max_length || false,
    });
    form.append(input);
    if (hints.rules && hints.rules.length) {
      rules = el("ul", { class: "rules" });
      for (const r of hints.rules) rules.append(el("li", { "data-rule": r.id, text: r.text }));
      form.append(rules);
    }
    const check = () => {
      if (!rules) return;
      for (const li of rules.children) {
        const r = hints.rules.find((x) => x.id === li.dataset.rule);
        const holds = input.value === "" ? null : ruleHolds(r, hints, input.value);
        li.classList.toggle("ok", holds === true);
        li.classList.toggle("bad", holds === false);
      }
    };
    input.addEventListener("input", () => { check(); clearInvalid(); });
    getValue = () => input.value;
  } else if (kind === "choice") {
    const box = el("div", { class: "choices", role: "radiogroup" });
    for (const c of line.choices || []) {
      const radio = el("input", { type: "radio", name: line.id, value: c.value, checked: c.value === line.default });
      box.append(el("label", {}, radio, " ", c.label));
    }
    form.append(box);
    getValue = () => (form.querySelector("input:checked") || {}).value || "";
  } else if (kind === "confirm") {
    submit.remove();
    const yes = el("button", { type: "button", id: "answer-yes", text: w("wizard_yes"), onclick: () => answer(line, "yes") });
    const no = el("button", { type: "button", id: "answer-no", class: "secondary", text: w("wizard_no"), onclick: () => answer(line, "no") });
    form.append(el("div", { class: "actions" }, yes, no));
  } else if (kind === "file") {
    // The browser knows no path: the file itself goes with the answer, held in memory for
    // the run (docs/protocol.md, kind file).
    const name = el("strong", { class: "file-name" });
    input = el("input", { id, type: "file" });
    const drop = el("label", { class: "drop" }, input, el("span", { text: w("wizard_drop_file") }), " ", name);
    const take = (f) => {
      if (!f) return;
      const reader = new FileReader();
      reader.onload = () => {
        fileData = { name: f.name, data: reader.result.split(",")[1] || "" };
        name.textContent = w("wizard_file_chosen", { name: f.name });
        clearInvalid();
      };
      reader.readAsDataURL(f);
    };
    input.addEventListener("change", () => take(input.files[0]));
    drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
    drop.addEventListener("dragleave", () => drop.classList.remove("over"));
    drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); take(e.dataTransfer.files[0]); });
    form.append(drop);
    getValue = () => fileData;
  }
  form.append(el("p", { class: "invalid", id: "answer-invalid", hidden: true }));
  if (submit.isConnected || kind !== "confirm") form.append(el("div", { class: "actions" }, submit));
  form.onsubmit = (e) => {
    e.preventDefault();
    if (kind === "confirm") return;
    const v = getValue();
    if (kind === "file") {
      if (!v) return invalid(w("wizard_choose_file"));
      answer(line, v.name, v.data);
    } else {
      answer(line, v);
    }
  };
  (input || form.querySelector("input, button")).focus();
}

function clearInvalid() {
  const p = $("answer-invalid");
  if (p) p.hidden = true;
}

function invalid(text) {
  const p = $("answer-invalid");
  if (!p) return logLine("error", text);
  if (state.run && state.run.sent) {
    state.run.pending = state.run.sent;
    $("run-ask").hidden = false;
  }
  p.textContent = text;
  p.hidden = false;
  const input = $("run-ask").querySelector("input[type=password], input[type=text]");
  if (input) { input.value = ""; input.dispatchEvent(new Event("input")); input.focus(); }
}

// answer sends the pending prompt's answer. The page never keeps it: the field is emptied
// (a secret is gone from the page once sent), and a person typed it.
function answer(line, value, data) {
  const a = { id: line.id, value, person: true };
  if (data !== undefined) a.data = data;
  send({ op: "line", line: a });
  for (const i of $("run-ask").querySelectorAll("input")) if (i.type !== "radio") i.value = "";
  if (line.kind === "secret") logLine("info", line.label + " ✓");
  else if (line.kind === "file") logLine("info", line.label + ": " + value);
  else {
    const choice = (line.choices || []).find((c) => c.value === value);
    const shown = line.kind === "confirm" ? w(value === "yes" ? "wizard_yes" : "wizard_no") : (choice ? choice.label : value);
    logLine("info", line.label + ": " + shown);
  }
  // Hidden, not removed: a refused answer ("invalid") shows the same question again.
  state.run.pending = null;
  state.run.sent = line;
  $("run-ask").hidden = true;
}

function fmtValue(k, v) {
  if (typeof v === "string" && /^\d{4}-\d\d-\d\dT/.test(v)) {
    const d = new Date(v);
    // Numeric: browsers' Kazakh month names are patchy ("M12"), and 04.12.2027 is how dates
    // are written in Kazakhstan in either language.
    if (!isNaN(d)) return d.toLocaleDateString(state.lang === "en" ? "en-GB" : "ru-RU", { year: "numeric", month: "2-digit", day: "2-digit" });
  }
  return String(v);
}

function showResult(line) {
  const box = $("run-result");
  box.replaceChildren();
  box.className = "result " + line.outcome;
  box.dataset.outcome = line.outcome;
  if (line.code) box.dataset.code = line.code;
  box.hidden = false;
  box.append(el("h3", { text: w("wizard_result_" + line.outcome) }));
  if (line.message) box.append(el("p", { text: line.message }));
  if (line.result) {
    const dl = el("dl");
    for (const [k, v] of Object.entries(line.result)) {
      const key = "wizard_result_" + k;
      if (!(key in state.words) || v === null || v === "") continue;
      dl.append(el("dt", { text: w(key) }), el("dd", { "data-field": k, text: fmtValue(k, v) }));
    }
    if (dl.children.length) box.append(dl);
  }
  if (state.run.runID) box.append(el("p", { class: "help", text: w("wizard_run_id", { run_id: state.run.runID }) }));
  $("run-ask").hidden = true;
}

function endRun(m) {
  const run = state.run;
  if (!run) return;
  for (const p of Object.values(run.progress)) clearInterval(p.timer);
  if (!run.result) showResult({ outcome: m.exit === 0 ? "ok" : "error", message: m.key ? w(m.key) : "" });
  if (m.document && m.signed) {
    const a = el("a", { class: "button", id: "signature-download", href: "/api/documents/" + m.document + "/signature", download: true, text: w("wizard_sign_download") });
    $("run-result").append(el("div", { class: "actions" }, a));
  }
  $("run-cancel").hidden = true;
  $("run-home").hidden = false;
  $("nav").hidden = false;
  state.run = null;
}

// Tokens.
function pinText(p) {
  if (!p.set) return w("wizard_token_pin_not_set");
  if (p.locked) return w("wizard_token_locked");
  if (p.final_try) return w("wizard_token_final_try");
  if (p.retries_left >= 0) return w("wizard_token_tries_left", { count: p.retries_left });
  return w("wizard_token_pin_ok");
}

async function loadTokens() {
  const list = $("tokens");
  list.replaceChildren(el("li", { text: w("wizard_tokens_looking") }));
  try {
    const toks = await (await api("/api/tokens")).json();
    list.replaceChildren();
    if (!toks.length) list.append(el("li", { text: w("wizard_tokens_none") }));
    for (const t of toks) {
      const li = el("li", { class: "token", "data-serial": t.serial },
        el("strong", { text: t.label || w("wizard_token_no_label") }), " ",
        t.blank ? el("span", { class: "badge", text: w("wizard_token_blank") }) : null,
        el("div", { class: "state", text: w("wizard_token_serial", { serial: t.serial }) }),
        el("div", { class: "state" + (t.user_pin.locked ? " locked" : ""), "data-pin": "user", text: pinText(t.user_pin) }));
      for (const p of t.profiles || []) {
        li.append(el("div", { class: "state profile", text: w(p.expired ? "wizard_token_profile_expired" : "wizard_token_profile",
          { holder: p.holder, date: fmtValue("not_after", p.not_after) }) }));
      }
      list.append(li);
    }
  } catch (e) {
    list.replaceChildren(el("li", { class: "error", text: e.message }));
  }
}

// Signing and checking documents.
function setupSign() {
  const file = $("sign-file");
  const drop = $("sign-drop");
  const take = (f) => { state.signChosen = f; $("sign-file-name").textContent = f ? w("wizard_file_chosen", { name: f.name }) : ""; };
  file.addEventListener("change", () => take(file.files[0]));
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); take(e.dataTransfer.files[0]); });
  $("sign-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    $("sign-error").hidden = true;
    const chosen = state.signChosen;
    if (!chosen) { $("sign-error").textContent = w("wizard_choose_file"); $("sign-error").hidden = false; return; }
    try {
      const r = await api("/api/documents?name=" + encodeURIComponent(chosen.name), { method: "POST", body: chosen });
      const { id } = await r.json();
      beginRun(w("wizard_sign_title") + ": " + chosen.name, id);
      send({ op: "sign", document: id, detached: $("sign-detached").checked, lang: state.lang });
    } catch (err) {
      $("sign-error").textContent = err.message;
      $("sign-error").hidden = false;
    }
  });
  $("verify-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const box = $("verify-result");
    box.replaceChildren();
    box.hidden = false;
    const sig = $("verify-signature").files[0];
    if (!sig) { box.className = "result error"; box.append(el("p", { text: w("wizard_choose_file") })); return; }
    const body = new FormData();
    body.append("signature", sig);
    const doc = $("verify-document").files[0];
    if (doc) body.append("document", doc);
    try {
      const v = await (await api("/api/verify", { method: "POST", body })).json();
      box.className = "result " + (v.ok ? "ok" : "error");
      box.append(el("h3", { id: "verify-verdict", text: w(v.ok ? "wizard_verify_ok" : "wizard_verify_bad") }));
      const dl = el("dl");
      if (v.subject) dl.append(el("dt", { text: w("wizard_verify_signer") }), el("dd", { text: v.subject }));
      if (v.signing_time) dl.append(el("dt", { text: w("wizard_verify_time") }), el("dd", { text: fmtValue("t", v.signing_time) }));
      box.append(dl);
      for (const p of v.problem_keys || []) box.append(el("p", { class: "error", text: w(p) }));
    } catch (err) {
      box.className = "result error";
      box.append(el("p", { text: err.message }));
    }
  });
}

async function main() {
  const st = await (await api("/api/state")).json();
  state.languages = st.languages;
  $("version").textContent = "tokenrun " + st.version;
  const saved = localStorage.getItem("tokenrun_lang");
  await setLanguage(st.languages.includes(saved) ? saved : st.lang);
  for (const b of document.querySelectorAll("#nav button")) b.addEventListener("click", () => show(b.dataset.screen));
  for (const b of document.querySelectorAll("#langs button")) b.addEventListener("click", () => setLanguage(b.dataset.lang));
  $("run-cancel").addEventListener("click", () => { if (state.run) send({ op: "cancel" }); });
  $("run-home").addEventListener("click", () => show("home"));
  $("tokens-refresh").addEventListener("click", loadTokens);
  setupSign();
  connect();
  show("home");
}

main().catch((e) => { $("message-text").textContent = e.message; show("message"); });
