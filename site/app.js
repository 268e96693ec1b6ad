// app.js: the NLI page. It loads the manifest written by ./build.sh site,
// starts the worker pool (nli-client.js), loads the chosen model's weights
// (cached by the browser), and drives the gallery, the example editor, the
// Induce / Search panels and the learned-language view. Every failure ends
// as a message on the page.

import { Engine, fetchWeights, sha256Hex, forgetWeights, pruneWeights } from "./nli-client.js";

const L = 20; // sequence length of the task suite
const V = 10; // values 0..9
const SPLITS = ["shift-l", "shift-p", "comp-i"];
const GALLERY = { n: 8, seed: 1234 }; // the same tasks as `native gen --n 8 --seed 1234`
const STARTS_PER_WORKER = 4; // default search starts = this × workers

const $ = (id) => document.getElementById(id);
const state = {
  manifest: null, engine: null, model: null, busy: false, search: null,
  task: null, // the gallery task in the editor (null once edited)
  shown: null, // the last result shown (for the language view)
};
// For tests, benchmarks and the curious (the browser console): the engine
// and the page's state.
window.nliApp = { state, engine: () => state.engine };

// ---------------------------------------------------------------------------
// Heartbeat: a timer that keeps ticking while the page is responsive. The
// browser test reads window.nliHeartbeat to check that search never blocks
// the page's thread.
const heartbeat = (window.nliHeartbeat = {
  ticks: 0, last: performance.now(), maxGapMs: 0,
  reset() { this.ticks = 0; this.maxGapMs = 0; this.last = performance.now(); },
});
const t0 = performance.now();
setInterval(() => {
  const now = performance.now();
  heartbeat.maxGapMs = Math.max(heartbeat.maxGapMs, now - heartbeat.last);
  heartbeat.last = now;
  heartbeat.ticks++;
  $("clock").textContent = ((now - t0) / 1000).toFixed(1);
  $("heartbeat").style.opacity = heartbeat.ticks % 2 ? "1" : "0.35";
}, 100);

// ---------------------------------------------------------------------------
// Errors: shown on the page, never a dead page.
function showError(err) {
  const msg = err && err.message ? err.message : String(err);
  $("error-text").textContent = msg;
  $("error").hidden = false;
}
function clearError() {
  $("error").hidden = true;
  $("error-text").textContent = "";
}
$("error-close").onclick = clearError;
window.addEventListener("unhandledrejection", (e) => {
  e.preventDefault();
  showError(e.reason);
});
window.addEventListener("error", (e) => showError(e.error || e.message));

function setState(s) {
  document.body.dataset.state = s;
}

// ---------------------------------------------------------------------------
// Sequences: parsing, cells.

/** Parses "3 1 4 …", "3,1,4,…" or "314…" into values; throws a readable error. */
export function parseSeq(text, what) {
  const t = text.trim();
  if (t === "") throw new Error(`${what}: empty (need ${L} digits 0–9)`);
  const parts = /[\s,;]/.test(t) ? t.split(/[\s,;]+/).filter((p) => p !== "") : t.split("");
  const vals = [];
  for (const [i, p] of parts.entries()) {
    if (!/^\d$/.test(p)) {
      throw new Error(`${what}: "${p}" at position ${i + 1} is not a digit 0–9`);
    }
    vals.push(Number(p));
  }
  if (vals.length !== L) throw new Error(`${what}: ${vals.length} values, need exactly ${L}`);
  return vals;
}

const fmt = (vals) => vals.join("");

function cells(vals, { onClick, expect } = {}) {
  const box = document.createElement("div");
  box.className = "cells";
  vals.forEach((v, i) => {
    const c = document.createElement("span");
    c.className = `cell v${v}`;
    c.textContent = v;
    if (expect && expect[i] !== v) {
      c.classList.add("miss");
      c.title = `expected ${expect[i]}`;
    }
    if (onClick) c.onclick = (e) => onClick(i, e.shiftKey ? -1 : 1);
    box.appendChild(c);
  });
  return box;
}

/** An editable sequence: a text field plus clickable cells. */
function seqEditor(host, what, { optional = false } = {}) {
  host.innerHTML = "";
  const input = document.createElement("input");
  input.type = "text";
  input.spellcheck = false;
  input.setAttribute("aria-label", what);
  input.placeholder = optional ? "unknown (optional)" : `${L} digits`;
  const strip = document.createElement("div");
  host.append(input, strip);
  const ed = {
    what, optional, input,
    get() {
      if (optional && input.value.trim() === "") return null;
      return parseSeq(input.value, what);
    },
    set(vals) {
      input.value = vals ? fmt(vals) : "";
      ed.render();
    },
    render() {
      strip.innerHTML = "";
      input.classList.remove("bad");
      input.title = "";
      try {
        const v = ed.get();
        if (v) strip.appendChild(cells(v, { onClick: (i, d) => { v[i] = (v[i] + d + V) % V; ed.set(v); edited(); } }));
      } catch (err) {
        input.classList.add("bad");
        input.title = err.message;
      }
    },
  };
  input.addEventListener("input", () => { ed.render(); edited(); });
  return ed;
}

// ---------------------------------------------------------------------------
// The editor.
const editor = { pairs: [], qin: null, qout: null };

function addPair(pair) {
  const idx = editor.pairs.length;
  const row = document.createElement("div");
  row.className = "pair";
  const body = document.createElement("div");
  const mk = (label) => {
    const r = document.createElement("div");
    r.className = "seqrow";
    const l = document.createElement("span");
    l.className = "lbl";
    l.textContent = label;
    const s = document.createElement("div");
    s.className = "seq";
    r.append(l, s);
    body.appendChild(r);
    return s;
  };
  const p = {
    row,
    in: seqEditor(mk(`example ${idx + 1} in`), `example ${idx + 1} input`),
    out: seqEditor(mk("out"), `example ${idx + 1} output`),
  };
  const del = document.createElement("button");
  del.className = "del";
  del.type = "button";
  del.textContent = "×";
  del.title = "remove this example";
  del.onclick = () => {
    if (editor.pairs.length <= 1) return showError("A task needs at least one example.");
    editor.pairs.splice(editor.pairs.indexOf(p), 1);
    row.remove();
    relabel();
    edited();
  };
  row.append(body, del);
  $("pairs").appendChild(row);
  editor.pairs.push(p);
  p.in.set(pair ? pair.input : randomSeq());
  p.out.set(pair ? pair.output : null);
  if (!pair) p.out.input.value = "";
  p.out.render();
}

function relabel() {
  editor.pairs.forEach((p, i) => {
    p.in.what = `example ${i + 1} input`;
    p.out.what = `example ${i + 1} output`;
    p.row.querySelector(".lbl").textContent = `example ${i + 1} in`;
  });
}

function randomSeq() {
  return Array.from({ length: L }, () => Math.floor(Math.random() * V));
}

function setTask(task) {
  $("pairs").innerHTML = "";
  editor.pairs = [];
  task.train.forEach((p) => addPair(p));
  editor.qin.set(task.test[0].input);
  editor.qout.set(task.test[0].output || null);
  state.task = task;
  $("task-name").textContent = task.id ? `— ${task.id}` : "";
  document.querySelectorAll(".card").forEach((c) => c.classList.toggle("selected", c.dataset.taskId === task.id));
}

/** Called on any edit: the task is now the user's own. */
function edited() {
  if (state.task) {
    state.task = null;
    $("task-name").textContent = "— your own";
    document.querySelectorAll(".card.selected").forEach((c) => c.classList.remove("selected"));
  }
}

/** Reads the editor into a task, or throws an error naming the bad field. */
function readTask() {
  const train = editor.pairs.map((p) => ({ input: p.in.get(), output: p.out.get() }));
  if (train.length === 0) throw new Error("Add at least one example.");
  const test = { input: editor.qin.get() };
  const ans = editor.qout.get();
  if (ans) test.output = ans;
  const t = { id: state.task ? state.task.id : "custom", train, test: [test] };
  return t;
}

// A program on the JS side, for "outputs from": rotl k and the named
// primitives of the task suite, applied left to right.
const PRIMS = {
  rotl1: (x) => x.map((_, i) => x[(i + 1) % L]),
  rotr1: (x) => x.map((_, i) => x[(i + L - 1) % L]),
  inc: (x) => x.map((v) => (v + 1) % V),
  dec: (x) => x.map((v) => (v + V - 1) % V),
  rev: (x) => x.map((_, i) => x[L - 1 - i]),
  swap: (x) => x.map((_, i) => x[i ^ 1]),
  neg: (x) => x.map((v) => V - 1 - v),
  addpos: (x) => x.map((v, i) => (v + i) % V),
};
function parseProgram(text) {
  const steps = text.split(";").map((s) => s.trim()).filter((s) => s !== "");
  if (steps.length === 0) throw new Error("outputs from: type a program such as “rotl 7” or “rev; inc”");
  return steps.map((s) => {
    const m = /^rotl\s+(\d+)$/.exec(s);
    if (m) {
      const k = Number(m[1]);
      if (k >= L) throw new Error(`outputs from: rotl ${k}: k must be 0..${L - 1}`);
      return (x) => x.map((_, i) => x[(i + k) % L]);
    }
    if (PRIMS[s]) return PRIMS[s];
    throw new Error(`outputs from: unknown step “${s}” (valid: rotl K, ${Object.keys(PRIMS).join(", ")})`);
  });
}

// ---------------------------------------------------------------------------
// Results.
function symbolColor(k) {
  return `hsl(${(k * 137.508) % 360} 55% 42%)`;
}

function renderProgram(host, program, lang) {
  host.innerHTML = "";
  (program || []).forEach((k) => {
    const c = document.createElement("span");
    c.className = "chip" + (k === 0 ? " skip" : "");
    c.textContent = k === 0 ? "·" : String(k);
    c.style.background = symbolColor(k);
    c.title = k === 0 ? "SKIP (does nothing)" : `symbol ${k}` + (lang && lang[k] ? ` ≈ ${lang[k]}` : "");
    host.appendChild(c);
  });
}

function renderPrediction(host, markEl, pred, expect) {
  host.innerHTML = "";
  if (pred) host.appendChild(cells(pred, { expect }));
  if (!markEl) return;
  if (!pred) {
    markEl.textContent = "";
    markEl.dataset.mark = "";
  } else if (!expect) {
    markEl.textContent = "(answer unknown)";
    markEl.dataset.mark = "unknown";
  } else {
    const right = pred.every((v, i) => v === expect[i]);
    markEl.textContent = right ? "✓ right" : "✗ wrong";
    markEl.dataset.mark = right ? "right" : "wrong";
  }
}

const langCache = {}; // symbol → "acts as" text, for chip titles

async function showLanguage(task, program, all) {
  const syms = all
    ? Array.from({ length: state.model.config.K - 1 }, (_, i) => i + 1)
    : [...new Set((program || []).filter((k) => k !== 0))];
  const host = $("language");
  host.innerHTML = "";
  if (syms.length === 0) {
    host.textContent = "The program is all SKIPs.";
    return;
  }
  const inputs = [task.test[0].input, ...task.train.map((p) => p.input)];
  const rows = await state.engine.language(inputs, syms);
  for (const r of rows) {
    langCache[r.symbol] = r.acts;
    const row = document.createElement("div");
    row.className = "sym";
    const chip = document.createElement("span");
    chip.className = "chip";
    chip.style.background = symbolColor(r.symbol);
    chip.textContent = r.symbol;
    const acts = document.createElement("span");
    acts.className = "acts";
    acts.textContent = r.acts ? `≈ ${r.acts}` : "no single primitive";
    row.append(chip, cells(r.outputs[0]), acts);
    host.appendChild(row);
  }
}

// ---------------------------------------------------------------------------
// Loss chart (one line per worker).
const chart = { series: [], steps: 200 };
function chartReset(workers, steps) {
  chart.series = Array.from({ length: workers }, () => []);
  chart.steps = steps;
  drawChart();
}
let chartQueued = false;
function drawChartSoon() {
  if (chartQueued) return;
  chartQueued = true;
  requestAnimationFrame(() => { chartQueued = false; drawChart(); });
}
function drawChart() {
  const svg = $("loss-chart");
  const W = 400, H = 120;
  const all = chart.series.flat().map((p) => p[1]).filter((v) => v != null);
  const hi = all.length ? Math.max(...all) : 1;
  const lo = all.length ? Math.min(0, Math.min(...all)) : 0;
  const y = (v) => H - 12 - ((v - lo) / (hi - lo || 1)) * (H - 24);
  const x = (s) => 4 + (s / Math.max(1, chart.steps)) * (W - 8);
  let out = "";
  chart.series.forEach((pts, w) => {
    const d = pts.filter((p) => p[1] != null).map((p) => `${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(" ");
    out += `<polyline points="${d}" stroke="hsl(${220 + w * 50} 70% 45%)"/>`;
  });
  out += `<text x="4" y="10">loss ${hi.toFixed(2)}</text><text x="4" y="${H - 2}">${lo.toFixed(2)}</text>`;
  out += `<text x="${W - 60}" y="${H - 2}">step ${chart.steps}</text>`;
  svg.innerHTML = out;
}

// ---------------------------------------------------------------------------
// Actions.
function setBusy(busy, searching = false) {
  state.busy = busy;
  const ready = !!state.model && !busy;
  $("btn-induce").disabled = !ready;
  $("btn-search").disabled = !ready;
  $("btn-all-symbols").disabled = !ready || !state.shown;
  $("btn-stop").disabled = !searching;
  $("model-select").disabled = busy;
  $("gallery-split").disabled = busy;
  $("workers-select").disabled = busy;
}

async function induce() {
  clearError();
  let task;
  try {
    task = readTask();
  } catch (err) {
    return showError(err);
  }
  setBusy(true);
  setState("inducing");
  try {
    const r = await state.engine.induce(task);
    const expect = task.test[0].output;
    renderProgram($("induce-program"), r.program, langCache);
    renderPrediction($("induce-pred"), $("induce-mark"), r.prediction, expect);
    $("induce-info").textContent = `reproduces ${r.specPairs}/${r.pairs} examples` +
      (r.acts ? ` · acts as ${r.acts}` : "") + ` · ${r.ms.toFixed(0)} ms`;
    state.shown = { task, program: r.program };
    await showLanguage(task, r.program, false);
    setState("induced");
  } catch (err) {
    showError(err);
    setState("ready");
  } finally {
    setBusy(false);
  }
}

function readInt(id, lo, hi, name) {
  const v = Number($(id).value);
  if (!Number.isInteger(v) || v < lo || v > hi) throw new Error(`${name}: ${$(id).value || "(empty)"} — want a whole number ${lo}..${hi}`);
  return v;
}

async function search() {
  clearError();
  let task, starts, steps, seed;
  try {
    task = readTask();
    starts = readInt("opt-starts", 1, 1024, "starts");
    steps = readInt("opt-steps", 1, 5000, "steps");
    seed = readInt("opt-seed", 0, 2 ** 31, "seed");
  } catch (err) {
    return showError(err);
  }
  const ctl = new AbortController();
  state.search = ctl;
  setBusy(true, true);
  setState("searching");
  const expect = task.test[0].output;
  const workers = Math.min(state.engine.n, starts);
  chartReset(workers, steps);
  const latest = []; // per worker: last step info
  const started = performance.now();
  $("search-sub").textContent = `(${starts} starts on ${workers} worker${workers > 1 ? "s" : ""})`;
  renderPrediction($("search-pred"), $("search-mark"), null, null);
  let shownProgram = "";
  const onStep = (w, s) => {
    latest[w] = s;
    chart.series[w].push([s.step, s.loss]);
    drawChartSoon();
    // The best over workers: most examples reproduced, then lowest loss.
    let best = null;
    for (const b of latest) {
      if (b && b.program && (!best || b.specPairs > best.specPairs || (b.specPairs === best.specPairs && b.loss < best.loss))) best = b;
    }
    const el = (performance.now() - started) / 1000;
    const stepsDone = latest.reduce((a, b) => a + (b ? b.step : 0), 0);
    $("s-step").textContent = `${Math.max(...latest.filter(Boolean).map((b) => b.step))}/${steps}`;
    $("s-loss").textContent = s.loss == null ? "–" : s.loss.toFixed(3);
    $("s-time").textContent = `${el.toFixed(1)} s`;
    $("s-rate").textContent = ((stepsDone * starts) / workers / el).toFixed(0);
    if (best) {
      $("s-pairs").textContent = `${best.specPairs}/${best.pairs}`;
      const key = best.program.join(",");
      if (key !== shownProgram) {
        shownProgram = key;
        renderProgram($("search-program"), best.program, langCache);
        renderPrediction($("search-pred"), null, best.prediction, expect);
      }
    }
  };
  try {
    const r = await state.engine.search(task, { starts, steps, seed }, onStep, ctl.signal);
    renderProgram($("search-program"), r.program, langCache);
    renderPrediction($("search-pred"), $("search-mark"), r.prediction, expect);
    $("s-pairs").textContent = `${r.specPairs}/${r.pairs}`;
    $("s-time").textContent = `${(r.wallMs / 1000).toFixed(2)} s`;
    const how = r.solvedAt >= 0 ? `reproduced every example at step ${r.solvedAt} (worker ${r.worker})`
      : r.aborted ? "stopped" : `best reproduces ${r.specPairs}/${r.pairs} examples`;
    $("search-sub").textContent = `(${starts} starts on ${workers} worker${workers > 1 ? "s" : ""}: ${how}` +
      (r.acts ? `; acts as ${r.acts}` : "") + ")";
    state.shown = { task, program: r.program };
    window.nliLastSearch = { ...r, wallMs: r.wallMs, starts, steps, workers };
    await showLanguage(task, r.program, false);
    setState("searched");
  } catch (err) {
    showError(err);
    setState("ready");
  } finally {
    state.search = null;
    setBusy(false);
  }
}

// ---------------------------------------------------------------------------
// Models and the gallery.
async function loadModel(id) {
  const m = state.manifest.models.find((x) => x.id === id);
  if (!m) return showError(`No weights for ${id} ship with this site yet.`);
  clearError();
  setBusy(true);
  state.model = null;
  setState("loading");
  const bar = $("load-progress");
  const status = $("load-status");
  const n = state.engine.n;
  try {
    const got = await fetchWeights(m.file, m.bytes, (p) => {
      bar.max = p.total || 1;
      bar.value = p.done;
      status.textContent = p.cached ? `${m.id}: weights from the browser cache`
        : `${m.id}: downloading weights ${(p.done / 1e6).toFixed(1)} / ${(p.total / 1e6).toFixed(1)} MB`;
    });
    const digest = await sha256Hex(got.bytes);
    if (digest && m.sha256 && digest !== m.sha256) {
      await forgetWeights(m.file);
      throw new Error(`${m.file}: SHA-256 ${digest.slice(0, 12)}… does not match the manifest's ${m.sha256.slice(0, 12)}… (corrupt or stale download; reload to retry)`);
    }
    const done = new Array(n).fill(0);
    const info = await state.engine.loadWeights(got.bytes, m.id, (w, p) => {
      done[w] = p.phase === "decode" ? (0.9 * p.done) / (p.total || 1) : 0.9 + 0.1 * p.done;
      bar.max = 1;
      bar.value = done.reduce((a, b) => a + b, 0) / n;
      status.textContent = `${m.id}: ${p.phase === "decode" ? "decoding and checking" : "building"} weights in ${n} worker${n > 1 ? "s" : ""}`;
    });
    if (got.store) {
      await got.store().catch(() => {}); // cache only verified weights
      await pruneWeights(m.id, m.file);
    }
    state.model = info;
    bar.value = bar.max;
    status.textContent = `${m.id}: ${(info.params / 1e6).toFixed(2)}M parameters, T=${info.config.T}, K=${info.config.K}` +
      (got.cached ? " (cached)" : "");
    $("engine-info").textContent = `${state.engine.n} worker${state.engine.n > 1 ? "s" : ""} · ${state.engine.info.go} · weights sha256 ${info.sha256.slice(0, 12)}`;
    $("btn-all-symbols").disabled = true;
    $("gallery-split").value = m.split;
    await fillGallery(m.split);
    setState("ready");
  } catch (err) {
    status.textContent = `${m.id}: not loaded`;
    showError(err);
    setState("error");
  } finally {
    setBusy(false);
  }
}

async function fillGallery(split) {
  for (const part of ["ood", "id"]) {
    const tasks = await state.engine.tasks({ split, part, n: GALLERY.n, seed: GALLERY.seed, pairs: 4 });
    const host = $(`gallery-${part}`);
    host.innerHTML = "";
    for (const t of tasks) {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "card";
      b.dataset.taskId = t.id;
      const name = document.createElement("span");
      name.textContent = t.id.split("/").slice(1).join(" ");
      const prog = document.createElement("span");
      prog.className = "prog";
      prog.textContent = t.program;
      prog.title = "the hidden program (the model does not see it)";
      b.append(name, prog);
      b.onclick = () => { clearError(); setTask(t); };
      host.appendChild(b);
    }
    if (part === "ood" && tasks.length) setTask(tasks[0]);
  }
}

async function startEngine(n) {
  if (state.engine) state.engine.terminate();
  state.model = null;
  const eng = new Engine(n, (err) => {
    if (state.engine === eng && !String(err.message).endsWith("stopped")) showError(err);
  });
  state.engine = eng;
  $("load-status").textContent = `starting ${n} worker${n > 1 ? "s" : ""} (WebAssembly module ${(state.manifest.wasmBytes / 1e6).toFixed(1)} MB)…`;
  eng.info = await eng.start(state.manifest.wasm);
  // The default search: 4 starts per worker. Fewer starts per worker make
  // each step cheaper, and on shift-l OOD tasks 4 per worker solve about as
  // often as 8 in little more than half the time (docs/BROWSER.md).
  const st = $("opt-starts");
  if (st.dataset.auto) st.value = String(STARTS_PER_WORKER * n);
}

async function main() {
  editor.qin = seqEditor(document.querySelector("[data-role=query-in]"), "query input");
  editor.qout = seqEditor(document.querySelector("[data-role=query-out]"), "answer", { optional: true });
  $("btn-add-pair").onclick = () => { addPair(null); edited(); };
  $("btn-random").onclick = () => {
    editor.pairs.forEach((p) => p.in.set(randomSeq()));
    editor.qin.set(randomSeq());
    edited();
    if ($("fill-program").value.trim()) fill();
  };
  const fill = () => {
    clearError();
    try {
      const steps = parseProgram($("fill-program").value);
      const apply = (x) => steps.reduce((acc, f) => f(acc), x);
      for (const p of editor.pairs) p.out.set(apply(p.in.get()));
      editor.qout.set(apply(editor.qin.get()));
      edited();
    } catch (err) {
      showError(err);
    }
  };
  $("btn-fill").onclick = fill;
  for (const split of SPLITS) {
    const o = document.createElement("option");
    o.value = o.textContent = split;
    $("gallery-split").appendChild(o);
  }
  $("gallery-split").onchange = async () => {
    if (!state.model) return;
    setBusy(true);
    try { await fillGallery($("gallery-split").value); } catch (err) { showError(err); } finally { setBusy(false); }
  };
  $("opt-starts").addEventListener("input", () => delete $("opt-starts").dataset.auto);
  $("btn-induce").onclick = induce;
  $("btn-search").onclick = search;
  $("btn-stop").onclick = () => state.search && state.search.abort();
  $("btn-all-symbols").onclick = async () => {
    if (!state.shown) return;
    setBusy(true);
    try { await showLanguage(state.shown.task, state.shown.program, true); } catch (err) { showError(err); } finally { setBusy(false); }
  };
  setBusy(true);

  let resp;
  try {
    resp = await fetch("manifest.json", { cache: "no-cache" });
    if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
    state.manifest = await resp.json();
  } catch (err) {
    setState("error");
    $("load-status").textContent = "not started";
    return showError(`Cannot read manifest.json (${err.message}): build the site with ./build.sh site and serve that folder.`);
  }
  const sel = $("model-select");
  for (const split of SPLITS) {
    const ms = state.manifest.models.filter((x) => x.split === split);
    if (ms.length === 0) {
      const o = document.createElement("option");
      o.value = "";
      o.textContent = `${split} (not trained yet)`;
      o.disabled = true;
      sel.appendChild(o);
    }
    for (const m of ms) {
      const o = document.createElement("option");
      o.value = m.id;
      o.textContent = `${m.id} (${(m.bytes / 1e6).toFixed(1)} MB)`;
      sel.appendChild(o);
    }
  }
  const params = new URLSearchParams(location.search);
  const models = state.manifest.models;
  const first = models.find((x) => x.id === params.get("model")) ||
    models.find((x) => x.id === state.manifest.default) || models[0];
  if (!first) {
    setState("error");
    return showError("This build ships no weights (weights/*.nliw.sz): nothing to run.");
  }
  if (params.get("model") && first.id !== params.get("model")) {
    showError(`No model “${params.get("model")}” in this build; loading ${first.id}.`);
  }
  sel.value = first.id;
  const hw = navigator.hardwareConcurrency || 2;
  const wsel = $("workers-select");
  for (let i = 1; i <= Math.min(8, Math.max(hw, 1)); i++) {
    const o = document.createElement("option");
    o.value = i;
    o.textContent = i;
    wsel.appendChild(o);
  }
  const nWorkers = Math.max(1, Math.min(Number(params.get("workers")) || Math.min(hw, 4), 8));
  wsel.value = String(Math.min(nWorkers, wsel.options.length));
  try {
    await startEngine(Number(wsel.value));
  } catch (err) {
    setState("error");
    $("load-status").textContent = "the WebAssembly module did not start";
    return showError(err);
  }
  sel.onchange = () => loadModel(sel.value);
  wsel.onchange = async () => {
    setBusy(true);
    try {
      await startEngine(Number(wsel.value));
      await loadModel(sel.value);
    } catch (err) {
      showError(err);
      setState("error");
    }
  };
  await loadModel(first.id);
  registerServiceWorker();
}

/** Keeps the site usable offline after this visit (sw.js); secure contexts only. */
function registerServiceWorker() {
  if (!("serviceWorker" in navigator) || !window.isSecureContext) return;
  const v = encodeURIComponent(state.manifest.wasm);
  navigator.serviceWorker.register(`sw.js?v=${v}`).then(
    () => { state.offline = true; },
    (err) => { console.warn("nli: no offline support:", err.message); },
  );
}

main().catch((err) => { showError(err); setState("error"); });
