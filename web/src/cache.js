// The download cache: chunks are stored under their sha256 (so a chunk two
// packs share is stored once, and a changed chunk is a new entry), only after
// the bytes in the heap matched that hash; a download cut short leaves a
// partial entry that the next load resumes with a Range request. Manifests
// are stored by URL, so a second load makes no request at all.
//
// Stores (all with the same methods, see index.d.ts ChunkCache):
//   - CacheApiStore: the browser Cache API (pages and workers);
//   - DirStore (platform/cache-node.js): a directory, ~/.cache/trillium by default;
//   - MemoryStore: in memory (tests, or a custom policy).
// A store that fails (quota, disk full, private mode) never fails a load: the
// load goes on uncached and reports a warning.

const SHA_RE = /^[0-9a-f]{64}$/;

export function checkSha(sha) {
  if (!SHA_RE.test(sha)) throw new TypeError(`not a sha256: ${sha}`);
  return sha;
}

/** True for "out of space" failures: the Cache API's QuotaExceededError, ENOSPC / EDQUOT in Node. */
export function isQuotaError(e) {
  return e?.name === 'QuotaExceededError' || e?.code === 'ENOSPC' || e?.code === 'EDQUOT' || e?.code === 22;
}

/** Copy `n` bytes from `bytes()` (a fresh heap view each call) in pieces, for async sinks. */
export function* pieces(bytes, n, piece = 8 << 20) {
  for (let off = 0; off < n; off += piece) {
    const end = Math.min(n, off + piece);
    yield bytes().slice(off, end);
  }
}

async function streamInto(body, expected, view, onBytes) {
  const reader = body.getReader();
  let pos = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (pos + value.length > expected) return -1;
      view(pos, value.length).set(value);
      pos += value.length;
      onBytes?.(value.length);
    }
  } finally {
    reader.releaseLock?.();
  }
  return pos;
}

/**
 * The browser Cache API. Keys are synthetic URLs under trillium.invalid (the
 * Cache API only takes http(s) keys); a partial download is a series of
 * segments (<= 1 MiB each) named by their offset and length, since a cache
 * entry cannot be appended to.
 */
export class CacheApiStore {
  /** @param {string} [name] the cache name @param {CacheStorage} [storage] */
  constructor(name = 'trillium', storage = globalThis.caches) {
    if (!storage) throw new TypeError('the Cache API is unavailable here');
    this.name = name;
    this.label = `Cache API "${name}"`;
    this.storage = storage;
    this._cache = null;
    this.segmentBytes = 1 << 20;
  }

  async _c() {
    this._cache ??= await this.storage.open(this.name);
    return this._cache;
  }

  _key(kind, id) {
    return `https://trillium.invalid/v1/${kind}/${id}`;
  }

  async getManifest(key) {
    const r = await (await this._c()).match(this._key('manifest', encodeURIComponent(key)));
    return r ? await r.text() : null;
  }

  async putManifest(key, text) {
    await (await this._c()).put(this._key('manifest', encodeURIComponent(key)),
      new Response(text, { headers: { 'content-type': 'application/json' } }));
  }

  async readChunk(sha, expected, view, onBytes) {
    const c = await this._c();
    const r = await c.match(this._key('chunk', checkSha(sha)));
    if (!r) return false;
    if (!r.body) {
      const buf = new Uint8Array(await r.arrayBuffer());
      if (buf.length !== expected) return false;
      view(0, buf.length).set(buf);
      onBytes?.(buf.length);
      return true;
    }
    return (await streamInto(r.body, expected, view, onBytes)) === expected;
  }

  async _segments(sha) {
    const c = await this._c();
    const prefix = this._key('partial', checkSha(sha)) + '/';
    const segs = [];
    for (const req of await c.keys()) {
      if (!req.url.startsWith(prefix)) continue;
      const m = /^(\d+)-(\d+)$/.exec(req.url.slice(prefix.length));
      if (m) segs.push({ off: Number(m[1]), len: Number(m[2]), req });
    }
    return segs.sort((a, b) => a.off - b.off);
  }

  /** Bytes of the contiguous run of segments from offset 0. */
  async partialSize(sha) {
    let n = 0;
    for (const s of await this._segments(sha)) {
      if (s.off !== n) break;
      n += s.len;
    }
    return n;
  }

  async readPartial(sha, n, view, onBytes) {
    const c = await this._c();
    let pos = 0;
    for (const s of await this._segments(sha)) {
      if (s.off !== pos || pos + s.len > n) break;
      const r = await c.match(s.req);
      if (!r) break;
      const buf = new Uint8Array(await r.arrayBuffer());
      if (buf.length !== s.len) break;
      view(pos, buf.length).set(buf);
      pos += buf.length;
      onBytes?.(buf.length);
    }
    return pos;
  }

  async openWriter(sha, offset) {
    const store = this;
    const c = await this._c();
    checkSha(sha);
    let pending = [];
    let pendingBytes = 0;
    let segStart = offset;
    let chain = Promise.resolve();
    const w = {
      failed: null,
      write(piece) {
        if (w.failed) return;
        pending.push(piece);
        pendingBytes += piece.length;
        if (pendingBytes >= store.segmentBytes) w._flush();
      },
      _flush() {
        if (!pendingBytes || w.failed) return chain;
        const blob = new Blob(pending);
        const key = `${store._key('partial', sha)}/${segStart}-${pendingBytes}`;
        segStart += pendingBytes;
        pending = [];
        pendingBytes = 0;
        chain = chain.then(() => c.put(key, new Response(blob))).catch((e) => {
          w.failed ??= e;
        });
        return chain;
      },
      async restart() {
        await chain;
        pending = [];
        pendingBytes = 0;
        segStart = 0;
        await store._dropPartial(sha).catch(() => {});
      },
      async close() {
        await w._flush();
        await chain;
      },
    };
    return w;
  }

  async _dropPartial(sha) {
    const c = await this._c();
    for (const s of await this._segments(sha)) await c.delete(s.req);
  }

  async commit(sha, expected, bytes) {
    const c = await this._c();
    const blob = new Blob([...pieces(bytes, expected)]);
    await c.put(this._key('chunk', checkSha(sha)), new Response(blob, { headers: { 'content-length': String(expected) } }));
    await this._dropPartial(sha).catch(() => {});
  }

  async discard(sha) {
    const c = await this._c();
    await c.delete(this._key('chunk', checkSha(sha)));
    await this._dropPartial(sha);
  }

  async clear() {
    await this.storage.delete(this.name);
    this._cache = null;
  }
}

/** A store in memory: for tests and for callers that want their own policy. */
export class MemoryStore {
  constructor() {
    this.label = 'memory';
    this.manifests = new Map();
    this.chunks = new Map();
    this.partials = new Map();
  }
  async getManifest(key) {
    return this.manifests.get(key) ?? null;
  }
  async putManifest(key, text) {
    this.manifests.set(key, text);
  }
  async readChunk(sha, expected, view, onBytes) {
    const b = this.chunks.get(sha);
    if (!b || b.length !== expected) return false;
    view(0, b.length).set(b);
    onBytes?.(b.length);
    return true;
  }
  async partialSize(sha) {
    return this.partials.get(sha)?.length ?? 0;
  }
  async readPartial(sha, n, view, onBytes) {
    const b = (this.partials.get(sha) ?? new Uint8Array(0)).subarray(0, n);
    view(0, b.length).set(b);
    onBytes?.(b.length);
    return b.length;
  }
  async openWriter(sha, offset) {
    const store = this;
    let parts = [(store.partials.get(sha) ?? new Uint8Array(0)).slice(0, offset)];
    const save = () => {
      const n = parts.reduce((s, p) => s + p.length, 0);
      const all = new Uint8Array(n);
      let o = 0;
      for (const p of parts) {
        all.set(p, o);
        o += p.length;
      }
      store.partials.set(sha, all);
      parts = [all];
    };
    return {
      failed: null,
      write(piece) {
        parts.push(piece.slice());
      },
      async restart() {
        parts = [];
        store.partials.delete(sha);
      },
      async close() {
        save();
      },
    };
  }
  async commit(sha, expected, bytes) {
    this.chunks.set(sha, bytes().slice(0, expected));
    this.partials.delete(sha);
  }
  async discard(sha) {
    this.chunks.delete(sha);
    this.partials.delete(sha);
  }
  async clear() {
    this.manifests.clear();
    this.chunks.clear();
    this.partials.clear();
  }
}

const STORE_METHODS = ['getManifest', 'putManifest', 'readChunk', 'partialSize', 'readPartial', 'openWriter', 'commit', 'discard'];

export function isStore(x) {
  return !!x && typeof x === 'object' && STORE_METHODS.every((m) => typeof x[m] === 'function');
}
