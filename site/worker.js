// worker.js: the Web Worker that hosts the NLI WebAssembly module.
//
// Go's wasm is single-threaded: a search running on the page's thread would
// freeze the page, so the module lives here and the page talks to it by
// messages (see nli-client.js for the other end):
//
//   page → worker  {type: "init", wasm: URL}
//                  {type: "call", id, fn, args, opts}   opts: JSON-shaped options
//                  {type: "abort", id}                   aborts call id's search
//   worker → page  {type: "ready", info}
//                  {type: "progress", id, progress}     loadWeights' onProgress
//                  {type: "step", id, step}             search's onStep
//                  {type: "result", id, value} | {type: "error", id, message}
//                  {type: "fatal", message}             the module failed or exited
//
// Every nli.* call returns a Promise; the module yields to this worker's
// event loop between search steps, which is when "abort" messages arrive.
"use strict";

importScripts("wasm_exec.js");

const aborts = new Map(); // call id → AbortController

function post(msg, transfer) {
  self.postMessage(msg, transfer || []);
}

function message(err) {
  if (err && typeof err.message === "string") return err.message;
  return String(err);
}

async function instantiate(url, importObject) {
  // instantiateStreaming compiles while the bytes arrive; it needs the
  // server to send Content-Type: application/wasm. Anything else (a static
  // server with an old MIME table) falls back to a plain download.
  const resp = await fetch(url);
  if (!resp.ok) throw new Error(`download ${url}: HTTP ${resp.status}`);
  const type = (resp.headers.get("Content-Type") || "").split(";")[0].trim();
  if (WebAssembly.instantiateStreaming && type === "application/wasm") {
    return WebAssembly.instantiateStreaming(resp, importObject);
  }
  return WebAssembly.instantiate(await resp.arrayBuffer(), importObject);
}

async function init(url) {
  const go = new Go();
  let ready;
  const installed = new Promise((resolve) => { ready = resolve; });
  self.nliReady = ready; // called by the module's main once self.nli exists
  const { instance } = await instantiate(url, go.importObject);
  go.run(instance).then(
    () => post({ type: "fatal", message: "the WebAssembly module exited" }),
    (err) => post({ type: "fatal", message: "the WebAssembly module failed: " + message(err) }),
  );
  await installed;
  return self.nli.info();
}

async function call(msg) {
  const nli = self.nli;
  if (!nli) throw new Error("the module is not loaded yet");
  const fn = nli[msg.fn];
  if (typeof fn !== "function") throw new Error(`no such function nli.${msg.fn}`);
  const args = (msg.args || []).slice();
  if (msg.fn === "loadWeights") {
    args[1] = Object.assign({}, msg.opts || {}, {
      onProgress: (p) => post({ type: "progress", id: msg.id, progress: p }),
    });
  } else if (msg.fn === "search") {
    const ctl = new AbortController();
    aborts.set(msg.id, ctl);
    args[1] = Object.assign({}, msg.opts || {}, {
      onStep: (s) => post({ type: "step", id: msg.id, step: s }),
      signal: ctl.signal,
    });
  }
  try {
    return await fn(...args);
  } finally {
    aborts.delete(msg.id);
  }
}

self.onmessage = (e) => {
  const msg = e.data || {};
  switch (msg.type) {
    case "init":
      init(msg.wasm).then(
        (info) => post({ type: "ready", info }),
        (err) => post({ type: "fatal", message: message(err) }),
      );
      break;
    case "call":
      call(msg).then(
        (value) => post({ type: "result", id: msg.id, value }),
        (err) => post({ type: "error", id: msg.id, message: message(err) }),
      );
      break;
    case "abort": {
      const ctl = aborts.get(msg.id);
      if (ctl) ctl.abort();
      break;
    }
    default:
      post({ type: "fatal", message: `worker: unknown message type ${msg.type}` });
  }
};

self.onerror = (e) => {
  post({ type: "fatal", message: "worker error: " + (e && e.message ? e.message : String(e)) });
};
