// nli-client.js: the page's side of the NLI engine. It starts a pool of Web
// Workers (worker.js), each hosting one copy of the WebAssembly module,
// downloads and caches weights, and spreads a gradient search's starts over
// the workers (one search per worker with its own seed; the first worker to
// reproduce the specification wins and the others are stopped).
//
// Everything here is asynchronous: the page's thread only passes messages.

/** A worker hosting the module, with promise-based calls. */
class ModuleWorker {
  constructor(index, onFatal) {
    this.index = index;
    this.nextId = 1;
    this.pending = new Map(); // id → {resolve, reject, onProgress, onStep}
    this.worker = new Worker("worker.js");
    this.onFatal = onFatal;
    this.worker.onmessage = (e) => this.receive(e.data);
    this.worker.onerror = (e) => {
      e.preventDefault();
      this.fail(`worker ${index}: ${e.message || "failed to start"}`);
    };
  }

  /** Loads the module; resolves with nli.info(). */
  start(wasmURL) {
    return new Promise((resolve, reject) => {
      this.readyWait = { resolve, reject };
      this.worker.postMessage({ type: "init", wasm: wasmURL });
    });
  }

  receive(msg) {
    if (msg.type === "ready") {
      this.readyWait.resolve(msg.info);
      return;
    }
    if (msg.type === "fatal") {
      this.fail(`worker ${this.index}: ${msg.message}`);
      return;
    }
    const p = this.pending.get(msg.id);
    if (!p) return;
    switch (msg.type) {
      case "progress":
        if (p.onProgress) p.onProgress(msg.progress);
        break;
      case "step":
        if (p.onStep) p.onStep(msg.step);
        break;
      case "result":
        this.pending.delete(msg.id);
        p.resolve(msg.value);
        break;
      case "error":
        this.pending.delete(msg.id);
        p.reject(new Error(msg.message));
        break;
    }
  }

  fail(message) {
    const err = new Error(message);
    if (this.readyWait) this.readyWait.reject(err);
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    this.dead = err;
    if (this.onFatal) this.onFatal(err);
  }

  /**
   * Calls nli[fn](...args) in the worker. handlers: {onProgress, onStep,
   * signal, transfer}. Returns a Promise of the result.
   */
  call(fn, args, opts, handlers = {}) {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, onProgress: handlers.onProgress, onStep: handlers.onStep });
      if (handlers.signal) {
        const abort = () => this.worker.postMessage({ type: "abort", id });
        if (handlers.signal.aborted) queueMicrotask(abort);
        else handlers.signal.addEventListener("abort", abort, { once: true });
      }
      this.worker.postMessage({ type: "call", id, fn, args, opts }, handlers.transfer || []);
    });
  }

  terminate() {
    this.worker.terminate();
    this.fail(`worker ${this.index}: stopped`);
  }
}

/** Download with progress, from the Cache API when the file is there. */
export async function fetchWeights(url, expectedBytes, onProgress) {
  const cacheName = "nli-weights-v1";
  let cache = null;
  try {
    if (self.caches) cache = await caches.open(cacheName);
  } catch (_) {
    cache = null; // e.g. an insecure origin: the HTTP cache still helps
  }
  if (cache) {
    const hit = await cache.match(url);
    if (hit) {
      const buf = await hit.arrayBuffer();
      onProgress({ phase: "download", done: buf.byteLength, total: buf.byteLength, cached: true });
      return { bytes: buf, cached: true };
    }
  }
  let resp;
  try {
    resp = await fetch(url);
  } catch (err) {
    throw new Error(`download ${url} failed: ${err.message} (is the server running?)`);
  }
  if (!resp.ok) throw new Error(`download ${url} failed: HTTP ${resp.status} ${resp.statusText}`);
  const total = Number(resp.headers.get("Content-Length")) || expectedBytes || 0;
  const chunks = [];
  let done = 0;
  if (resp.body && resp.body.getReader) {
    const reader = resp.body.getReader();
    for (;;) {
      const { done: end, value } = await reader.read();
      if (end) break;
      chunks.push(value);
      done += value.byteLength;
      onProgress({ phase: "download", done, total: Math.max(total, done) });
    }
  } else {
    const b = new Uint8Array(await resp.arrayBuffer());
    chunks.push(b);
    done = b.byteLength;
  }
  const bytes = new Uint8Array(done);
  let off = 0;
  for (const c of chunks) {
    bytes.set(c, off);
    off += c.byteLength;
  }
  onProgress({ phase: "download", done, total: done });
  return { bytes: bytes.buffer, cached: false, store: cache ? () => cache.put(url, new Response(bytes.slice(0))) : null };
}

/** Hex SHA-256 of bytes, or null where crypto.subtle is missing (insecure origins). */
export async function sha256Hex(buf) {
  if (!self.crypto || !crypto.subtle) return null;
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", buf));
  return Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Drops cached weights of model id other than the file keep (older builds'
 * hashed names), so the cache holds one version per model.
 */
export async function pruneWeights(id, keep) {
  try {
    if (!self.caches) return;
    const cache = await caches.open("nli-weights-v1");
    const keepURL = new URL(keep, location.href).href;
    for (const req of await cache.keys()) {
      const name = new URL(req.url).pathname.split("/").pop();
      if (req.url !== keepURL && name.startsWith(id + ".") && name.endsWith(".nliw.sz")) await cache.delete(req);
    }
  } catch (_) {
    /* best effort */
  }
}

/** Drops url from the weights cache (after a failed check). */
export async function forgetWeights(url) {
  try {
    if (self.caches) await (await caches.open("nli-weights-v1")).delete(url);
  } catch (_) {
    /* nothing cached */
  }
}

/** A pool of module workers behind one API. */
export class Engine {
  /** n: number of workers (≥ 1). onFatal(err): a worker died. */
  constructor(n, onFatal) {
    this.n = Math.max(1, n | 0);
    this.onFatal = onFatal;
    this.workers = [];
  }

  /** Starts the workers: the first one alone (it fills the HTTP cache with the module), then the rest. */
  async start(wasmURL) {
    const first = new ModuleWorker(0, this.onFatal);
    this.workers.push(first);
    const info = await first.start(wasmURL);
    const rest = [];
    for (let i = 1; i < this.n; i++) {
      const w = new ModuleWorker(i, this.onFatal);
      this.workers.push(w);
      rest.push(w.start(wasmURL));
    }
    await Promise.all(rest);
    return info;
  }

  /** Loads weights (an ArrayBuffer) into every worker; onProgress(workerIndex, p). */
  async loadWeights(buf, name, onProgress) {
    const infos = await Promise.all(
      this.workers.map((w, i) => {
        const copy = buf.slice(0);
        return w.call("loadWeights", [copy], { name }, { onProgress: (p) => onProgress(i, p), transfer: [copy] });
      }),
    );
    return infos[0];
  }

  tasks(opts) {
    return this.workers[0].call("tasks", [opts]);
  }

  induce(task) {
    return this.workers[0].call("induce", [task]);
  }

  run(programs, inputs) {
    return this.workers[0].call("run", [programs, inputs]);
  }

  language(inputs, symbols) {
    return this.workers[0].call("language", [{ inputs, symbols }]);
  }

  /**
   * Gradient search with opts.starts spread over the workers (worker w runs
   * its share with seed opts.seed + w). onStep(w, step) reports each
   * worker's steps. Resolves with the first result that reproduces the
   * specification (the other workers are aborted), else, once all are
   * done, with the best one (most pairs reproduced, then log-likelihood).
   * signal aborts everything; the best result so far is returned.
   */
  search(task, opts, onStep, signal) {
    const S = Math.max(1, opts.starts | 0);
    const active = this.workers.slice(0, Math.min(this.n, S));
    const inner = active.map(() => new AbortController());
    if (signal) signal.addEventListener("abort", () => inner.forEach((c) => c.abort()), { once: true });
    const t0 = performance.now();
    return new Promise((resolve, reject) => {
      let left = active.length;
      let best = null;
      let settled = false;
      const better = (a, b) =>
        !b || a.specPairs > b.specPairs || (a.specPairs === b.specPairs && (a.logLik ?? -Infinity) > (b.logLik ?? -Infinity));
      active.forEach((w, i) => {
        const share = Math.floor(S / active.length) + (i < S % active.length ? 1 : 0);
        const o = Object.assign({}, opts, { starts: share, seed: (opts.seed || 0) + i });
        w.call("search", [task], o, { onStep: (s) => onStep(i, s), signal: inner[i].signal }).then(
          (r) => {
            r.worker = i;
            left--;
            if (settled) return;
            if (better(r, best)) best = r;
            if (r.specPairs === r.pairs && r.solvedAt >= 0) {
              settled = true;
              inner.forEach((c, j) => j !== i && c.abort());
              resolve(Object.assign({}, r, { starts: S, workers: active.length, wallMs: performance.now() - t0 }));
            } else if (left === 0) {
              settled = true;
              resolve(Object.assign({}, best, { starts: S, workers: active.length, wallMs: performance.now() - t0 }));
            }
          },
          (err) => {
            if (settled) return;
            settled = true;
            inner.forEach((c) => c.abort());
            reject(err);
          },
        );
      });
    });
  }

  terminate() {
    this.workers.forEach((w) => w.terminate());
    this.workers = [];
  }
}
