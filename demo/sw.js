// The demo's service worker: the app opens and chats with the network off.
//
// - The app shell (pages, the trillium package's modules, both wasm builds) is
//   precached per version, cache-first. A new version installs beside the old
//   one and waits: an open chat keeps running on the shell it started with
//   until the page asks for the update ('skip-waiting'), then the old copies
//   are deleted.
// - Model packs are cached as they are loaded: manifest.json network-first (so
//   a pack update is seen when online), chunks cache-first. A chunk is stored
//   only after its sha256 matches the manifest, with the hash kept beside it;
//   a new manifest drops the cached chunks it no longer lists with that hash.
// - Every response gets Cross-Origin-Opener-Policy / -Embedder-Policy, so a
//   host that cannot set headers still gets cross-origin isolation
//   (SharedArrayBuffer, the threaded build) once this worker controls the page.

// build.mjs rewrites the next two lines.
const VERSION = 'dev';
const SHELL = ['./'];

const SHELL_PREFIX = 'trillium-shell-';
const SHELL_CACHE = SHELL_PREFIX + VERSION;
const PACK_CACHE = 'trillium-packs';
const SHA_HEADER = 'x-trillium-sha256';
const MANIFEST = 'manifest.json';

self.addEventListener('install', (event) => {
  event.waitUntil(
    caches.open(SHELL_CACHE).then((cache) =>
      // 'reload': the precache must not be filled from a stale HTTP cache.
      cache.addAll(SHELL.map((u) => new Request(u, { cache: 'reload' }))),
    ),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    (async () => {
      for (const key of await caches.keys()) {
        if (key.startsWith(SHELL_PREFIX) && key !== SHELL_CACHE) await caches.delete(key);
      }
      await self.clients.claim();
    })(),
  );
});

self.addEventListener('message', (event) => {
  const msg = event.data || {};
  const reply = (m) => event.ports[0]?.postMessage(m);
  if (msg.type === 'skip-waiting') self.skipWaiting();
  else if (msg.type === 'version') reply({ version: VERSION });
  else if (msg.type === 'cache-pack') {
    event.waitUntil(
      cachePack(msg.base, msg.files).then(
        (r) => reply({ ok: true, ...r }),
        (e) => reply({ ok: false, error: String(e?.message || e) }),
      ),
    );
  }
});

self.addEventListener('fetch', (event) => {
  const req = event.request;
  if (req.method !== 'GET') return;
  const url = new URL(req.url);
  if (url.origin === self.location.origin && url.pathname === new URL('sw.js', self.registration.scope).pathname) return;
  event.respondWith(route(event, req, url).then(isolate, () => Response.error()));
});

async function route(event, req, url) {
  const shell = await caches.open(SHELL_CACHE);
  if (req.mode === 'navigate') {
    // The app's pages, whatever the query (it picks packs and variants);
    // other documents from the network, and the app itself when that fails.
    const hit = await shell.match(req, { ignoreSearch: true });
    if (hit) return hit;
    try {
      return await fetch(req);
    } catch (e) {
      const app = await shell.match(self.registration.scope);
      if (app) return app;
      throw e;
    }
  }
  const hit = await shell.match(req, { ignoreSearch: true });
  if (hit) return hit;
  // A range request resumes a download elsewhere: not something a whole cached file answers.
  if (req.headers.has('range')) return fetch(req);
  if (url.pathname.endsWith('/' + MANIFEST)) return packManifest(event, req, url);
  const chunk = await packChunkEntry(url);
  if (chunk) return packChunk(event, req, url, chunk);
  // Anything else: the network, else whatever copy a cache has.
  try {
    return await fetch(req);
  } catch (e) {
    const any = await caches.match(req, { ignoreSearch: true });
    if (any) return any;
    throw e;
  }
}

// The headers cross-origin isolation needs, on every response this worker gives.
function isolate(res) {
  if (res.type === 'opaque' || res.type === 'opaqueredirect' || res.type === 'error' || res.status === 0) return res;
  if ([101, 204, 205, 304].includes(res.status)) return res;
  const headers = new Headers(res.headers);
  headers.set('Cross-Origin-Opener-Policy', 'same-origin');
  headers.set('Cross-Origin-Embedder-Policy', 'require-corp');
  if (!headers.has('Cross-Origin-Resource-Policy')) headers.set('Cross-Origin-Resource-Policy', 'cross-origin');
  return new Response(res.body, { status: res.status, statusText: res.statusText, headers });
}

// ---- packs ----------------------------------------------------------------

const packBase = (url) => new URL('./', url).href; // the directory of a pack file
const manifests = new Map(); // pack base URL -> parsed manifest (a cache of the cached copy)

async function cachedManifest(base) {
  if (manifests.has(base)) return manifests.get(base);
  const res = await (await caches.open(PACK_CACHE)).match(base + MANIFEST);
  if (!res) return null;
  try {
    const m = JSON.parse(await res.text());
    manifests.set(base, m);
    return m;
  } catch {
    return null;
  }
}

async function packChunkEntry(url) {
  const m = await cachedManifest(packBase(url));
  const file = url.pathname.slice(url.pathname.lastIndexOf('/') + 1);
  return m?.chunks?.find?.((c) => c && c.file === file) ?? null;
}

async function packManifest(event, req, url) {
  const cache = await caches.open(PACK_CACHE);
  let res;
  try {
    res = await fetch(req);
  } catch (e) {
    const hit = await cache.match(url.href, { ignoreSearch: true });
    if (hit) return hit;
    throw e;
  }
  if (!res.ok) return res;
  const text = await res.clone().text();
  let m;
  try {
    m = JSON.parse(text);
  } catch {
    return res; // not a pack manifest: nothing to cache
  }
  if (m?.format !== 'trillium-pack' || !Array.isArray(m.chunks)) return res;
  // Known before the response goes back, so the chunk requests that follow are recognised.
  manifests.set(packBase(url), m);
  event.waitUntil(storeManifest(cache, packBase(url), text, m));
  return res;
}

async function storeManifest(cache, base, text, m) {
  const old = await cache.match(base + MANIFEST);
  const changed = old ? (await old.text()) !== text : false;
  // Drop the cached chunks this manifest no longer lists with the same hash.
  const want = new Map(m.chunks.map((c) => [c.file, c.sha256]));
  for (const key of await cache.keys()) {
    if (!key.url.startsWith(base) || key.url === base + MANIFEST) continue;
    const file = key.url.slice(base.length);
    if (file.includes('/')) continue; // another pack nested below this one
    const hit = await cache.match(key);
    if (want.get(file) !== hit?.headers.get(SHA_HEADER)) await cache.delete(key);
  }
  await cache.put(base + MANIFEST, new Response(text, { headers: { 'Content-Type': 'application/json' } }));
  if (changed) {
    for (const c of await self.clients.matchAll({ type: 'window' })) c.postMessage({ type: 'pack-updated', base });
  }
}

async function packChunk(event, req, url, entry) {
  const cache = await caches.open(PACK_CACHE);
  // 'reload' is the package fetching again after a hash mismatch: skip the cache.
  if (req.cache !== 'reload') {
    const hit = await cache.match(url.href, { ignoreSearch: true });
    if (hit && hit.headers.get(SHA_HEADER) === entry.sha256) return hit;
  }
  const res = await fetch(req);
  if (res.status !== 200 || !res.body) return res;
  // The page streams one copy into its heap while the other is hashed and stored.
  const [page, store] = res.body.tee();
  event.waitUntil(verifyAndStore(cache, url.href, new Response(store, { headers: res.headers }), entry.sha256).catch(() => {}));
  return new Response(page, { status: res.status, statusText: res.statusText, headers: res.headers });
}

async function sha256Hex(buf) {
  const d = new Uint8Array(await crypto.subtle.digest('SHA-256', buf));
  return Array.from(d, (b) => b.toString(16).padStart(2, '0')).join('');
}

async function verifyAndStore(cache, href, res, sha) {
  const buf = await res.arrayBuffer();
  if ((await sha256Hex(buf)) !== sha) return false; // never cache bytes the manifest disowns
  const headers = new Headers({ 'Content-Type': res.headers.get('Content-Type') || 'application/octet-stream' });
  headers.set('Content-Length', String(buf.byteLength));
  headers.set(SHA_HEADER, sha);
  await cache.put(href, new Response(buf, { headers }));
  return true;
}

// The page names the files of a pack it loaded (its first load may have run
// before this worker controlled it): fetch and store whatever is not cached yet.
async function cachePack(base, files) {
  const cache = await caches.open(PACK_CACHE);
  base = new URL(base, self.registration.scope).href;
  if (!base.endsWith('/')) base += '/';
  let m = null;
  try {
    const res = await fetch(base + MANIFEST);
    if (res.ok) {
      const text = await res.text();
      m = JSON.parse(text);
      manifests.set(base, m);
      await storeManifest(cache, base, text, m);
    }
  } catch {
    // offline: the cached manifest is all there is
  }
  m ??= await cachedManifest(base);
  if (!m) throw new Error(`${base}${MANIFEST}: not reachable and not cached`);
  let stored = 0;
  let bytes = 0;
  const missing = [];
  for (const file of files) {
    if (file === MANIFEST) continue;
    const entry = m.chunks.find((c) => c.file === file);
    if (!entry) throw new Error(`${base}${MANIFEST} does not list ${file}`);
    const hit = await cache.match(base + file);
    if (hit && hit.headers.get(SHA_HEADER) === entry.sha256) {
      bytes += entry.bytes;
      continue;
    }
    let ok = false;
    try {
      const res = await fetch(base + file);
      ok = res.ok && (await verifyAndStore(cache, base + file, res, entry.sha256));
    } catch {
      ok = false;
    }
    if (ok) {
      stored++;
      bytes += entry.bytes;
    } else missing.push(file);
  }
  if (missing.length) throw new Error(`could not cache ${missing.join(', ')}`);
  return { stored, bytes, version: VERSION };
}
