// sw.js: the site's service worker. After one visit the page works with the
// server gone (an offline demo): it keeps the page, its scripts, the
// toolchain's wasm_exec.js and the WebAssembly module in a cache named after
// the module's content hash (the weights have their own cache, filled by the
// page after checking them). Files with a content hash in their name come
// from the cache first; everything else from the network first, the cache
// answering only when the network fails, so a rebuilt site shows at once.
"use strict";

const VERSION = new URL(self.location.href).searchParams.get("v") || "dev";
const CACHE = "nli-site-" + VERSION;
const SHELL = ["./", "index.html", "style.css", "app.js", "nli-client.js", "worker.js", "wasm_exec.js", "manifest.json"];
const HASHED = /\.[0-9a-f]{12}\./;

self.addEventListener("install", (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    const resp = await fetch("manifest.json", { cache: "no-cache" });
    const manifest = await resp.json();
    // Mostly answered by the HTTP cache: the page has just loaded these.
    await cache.addAll([...SHELL, manifest.wasm]);
    await self.skipWaiting();
  })());
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const key of await caches.keys()) {
      if (key.startsWith("nli-site-") && key !== CACHE) await caches.delete(key);
    }
    await self.clients.claim();
  })());
});

self.addEventListener("fetch", (event) => {
  const req = event.request;
  const url = new URL(req.url);
  if (req.method !== "GET" || url.origin !== self.location.origin) return;
  if (url.pathname.includes("/weights/")) return; // the page's own cache handles weights
  event.respondWith((async () => {
    const cache = await caches.open(CACHE);
    if (HASHED.test(url.pathname)) {
      const hit = await cache.match(req);
      if (hit) return hit;
    }
    try {
      const resp = await fetch(req);
      if (resp.ok && resp.type === "basic") await cache.put(req, resp.clone());
      return resp;
    } catch (err) {
      const hit = await cache.match(req, { ignoreSearch: true });
      if (hit) return hit;
      throw err;
    }
  })());
});
