// The download cache: a second load makes no request, an interrupted
// download resumes with a Range request from the cached partial chunk,
// nothing that fails its sha256 is stored, and a cache that fails (quota)
// never fails a load. Node's directory store on a local http server, the
// browser's Cache API store on a stand-in CacheStorage, and the memory store.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { CacheApiStore, MemoryStore } from '../../web/src/cache.js';
import { DirStore, defaultCacheDir } from '../../web/src/platform/cache-node.js';
import { Trillium } from '../../web/src/node.js';
import { assertCacheClean, copyLowrankPack, copyPack, needWasm, readManifestJson, servePack, tmpDir } from './helpers.mjs';

const load = (src, opts = {}) => Trillium.load(src, { wasm: needWasm(), retryDelayMs: 1, ...opts });

async function logitsOf(m, prompt = 'Once upon a time') {
  try {
    return Array.from((await m.logits(prompt)).logits);
  } finally {
    m.dispose();
  }
}

let clean = null;
async function cleanLogits() {
  clean ??= logitsOf(await load(await copyPack(), { cache: false }));
  return clean;
}

test('the default cache directory: $TRILLIUM_CACHE, else $XDG_CACHE_HOME/trillium, else ~/.cache/trillium', () => {
  assert.equal(defaultCacheDir({ TRILLIUM_CACHE: '/tmp/x' }), '/tmp/x');
  assert.equal(defaultCacheDir({ XDG_CACHE_HOME: '/tmp/xdg' }), '/tmp/xdg/trillium');
  assert.match(defaultCacheDir({}), /\.cache\/trillium$/);
  assert.equal(defaultCacheDir(), process.env.TRILLIUM_CACHE, 'the tests run on a private cache');
});

test('second load from the cache makes no network request and gives the same logits', async () => {
  const dir = await copyPack();
  const man = readManifestJson(dir);
  const cacheDir = tmpDir('trl-c1-');
  const srv = await servePack(dir);
  try {
    const m1 = await load(srv.url, { cache: cacheDir });
    assert.equal(m1.info.cache.manifestFromCache, false);
    assert.equal(m1.info.cache.fromNetworkBytes, man.chunks.reduce((s, c) => s + c.bytes, 0));
    assert.equal(m1.info.cache.store, cacheDir);
    const a = await logitsOf(m1);
    const first = srv.log.length;
    assert.equal(first, 1 + man.chunks.length, 'manifest + chunks');
    assert.equal(assertCacheClean(cacheDir), man.chunks.length);

    const m2 = await load(srv.url, { cache: cacheDir });
    assert.equal(srv.log.length, first, `no request on the second load: ${JSON.stringify(srv.log.slice(first))}`);
    assert.equal(m2.info.cache.manifestFromCache, true);
    assert.equal(m2.info.cache.fromNetworkBytes, 0);
    assert.equal(m2.stats.fromCacheBytes, man.chunks.reduce((s, c) => s + c.bytes, 0));
    assert.deepEqual(await logitsOf(m2), a);
    assert.deepEqual(a, await cleanLogits());

    // refresh: the manifest is asked for again, the chunks still come from the cache
    const m3 = await load(srv.url, { cache: cacheDir, refresh: true });
    m3.dispose();
    assert.deepEqual(srv.log.slice(first).map((e) => e.name), ['manifest.json']);

    // cache: false never reads or writes it
    const before = srv.log.length;
    (await load(srv.url, { cache: false })).dispose();
    assert.equal(srv.log.length, before + 1 + man.chunks.length);
  } finally {
    await srv.close();
  }
  // and with the server gone, the cached pack still loads (offline)
  const m4 = await load(srv.url, { cache: cacheDir });
  assert.deepEqual(await logitsOf(m4), await cleanLogits());
});

test('the default cache is $TRILLIUM_CACHE; local directories are never cached', async () => {
  const dir = await copyPack();
  const srv = await servePack(dir);
  try {
    (await load(srv.url)).dispose();
    const n = srv.log.length;
    (await load(srv.url)).dispose();
    assert.equal(srv.log.length, n);
    assert.ok(existsSync(join(process.env.TRILLIUM_CACHE, 'chunks')));
  } finally {
    await srv.close();
  }
  const m = await load(dir, { cache: tmpDir('trl-unused-') });
  assert.equal(m.info.cache.store, null);
  m.dispose();
});

test('an interrupted download resumes with a Range request from the cached partial chunk', async () => {
  const dir = await copyPack();
  const man = readManifestJson(dir);
  const big = man.chunks.reduce((a, c, i) => (c.bytes > man.chunks[a].bytes ? i : a), 0);
  const file = man.chunks[big].file;
  const size = man.chunks[big].bytes;
  const cut = Math.floor(size * 0.6);
  const cacheDir = tmpDir('trl-c2-');
  let drop = true;
  const srv = await servePack(dir, ({ res, name, range, body }) => {
    if (name !== file || !drop || range) return false;
    // headers for the whole file, 60 % of the body, then the connection dies
    res.writeHead(200, { 'content-length': body.length });
    res.write(body.subarray(0, cut), () => setTimeout(() => res.socket.destroy(), 20));
    return true;
  });
  try {
    // no retries: the load fails, the partial chunk stays in the cache
    await assert.rejects(load(srv.url, { cache: cacheDir, retries: 0 }), (e) => {
      assert.equal(e.code, 'IO', e.message);
      assert.equal(e.file, file);
      assert.equal(e.field, `chunks[${big}].file`);
      assert.match(e.message, /download failed after 1 attempts: connection lost after \d+ of \d+ bytes/);
      return true;
    });
    const partial = join(cacheDir, 'chunks', `${man.chunks[big].sha256}.partial`);
    assert.ok(existsSync(partial), 'the partial chunk is kept');
    const have = statSync(partial).size;
    assert.ok(have > 0 && have <= cut, `partial has ${have} bytes`);
    assert.ok(!existsSync(join(cacheDir, 'chunks', man.chunks[big].sha256)), 'not stored as a complete chunk');

    drop = false;
    srv.log.length = 0;
    const m = await load(srv.url, { cache: cacheDir });
    const reqs = srv.log.filter((e) => e.name === file);
    assert.deepEqual(reqs.map((e) => e.range), [`bytes=${have}-`], 'only the missing bytes were asked for');
    // chunks before the cut one were stored whole by the failed load, then the partial
    const before = man.chunks.slice(0, big).reduce((s, c) => s + c.bytes, 0);
    assert.equal(m.info.cache.fromCacheBytes, before + have);
    assert.equal(m.info.cache.fromNetworkBytes, size - have + man.chunks.slice(big + 1).reduce((s, c) => s + c.bytes, 0));
    assert.deepEqual(await logitsOf(m), await cleanLogits());
    assert.ok(!existsSync(partial), 'the partial file became the chunk');
    assert.equal(assertCacheClean(cacheDir), man.chunks.length);
  } finally {
    await srv.close();
  }
});

test('within one load, a dropped connection is retried from where it stopped', async () => {
  const dir = await copyPack();
  const man = readManifestJson(dir);
  const file = man.chunks[0].file;
  const srv = await servePack(dir, ({ res, name, range, body, n }) => {
    if (name !== file || n > 0) return false;
    res.writeHead(200, { 'content-length': body.length });
    res.write(body.subarray(0, 1000), () => setTimeout(() => res.socket.destroy(), 20));
    return true;
  });
  try {
    const m = await load(srv.url, { cache: false });
    const reqs = srv.log.filter((e) => e.name === file).map((e) => e.range);
    assert.equal(reqs.length, 2);
    assert.equal(reqs[0], null);
    assert.match(reqs[1], /^bytes=\d+-$/);
    assert.ok(Number(reqs[1].slice(6, -1)) > 0);
    assert.deepEqual(await logitsOf(m), await cleanLogits());
  } finally {
    await srv.close();
  }
});

test('a damaged partial chunk is not trusted: the resumed chunk fails its hash and is fetched whole', async () => {
  const dir = await copyPack();
  const man = readManifestJson(dir);
  const c = man.chunks[0];
  const cacheDir = tmpDir('trl-c3-');
  const store = new DirStore(cacheDir);
  await store._mk();
  const bogus = readFileSync(join(dir, c.file)).subarray(0, 4096);
  bogus[100] ^= 0xff;
  writeFileSync(store.partialPath(c.sha256), bogus);
  const srv = await servePack(dir);
  try {
    const m = await load(srv.url, { cache: cacheDir });
    assert.deepEqual(srv.log.filter((e) => e.name === c.file).map((e) => e.range), ['bytes=4096-', null]);
    assert.deepEqual(await logitsOf(m), await cleanLogits());
    assert.equal(assertCacheClean(cacheDir), man.chunks.length);
  } finally {
    await srv.close();
  }
});

test('a damaged cached chunk is dropped, downloaded again and never used', async () => {
  const dir = await copyPack();
  const man = readManifestJson(dir);
  const cacheDir = tmpDir('trl-c4-');
  const srv = await servePack(dir);
  try {
    (await load(srv.url, { cache: cacheDir })).dispose();
    const p = join(cacheDir, 'chunks', man.chunks[0].sha256);
    const buf = readFileSync(p);
    buf[buf.length >> 1] ^= 0x40;
    writeFileSync(p, buf);
    srv.log.length = 0;
    const m = await load(srv.url, { cache: cacheDir });
    assert.deepEqual(srv.log.map((e) => e.name), [man.chunks[0].file]);
    assert.deepEqual(await logitsOf(m), await cleanLogits());
    assert.equal(assertCacheClean(cacheDir), man.chunks.length);
  } finally {
    await srv.close();
  }
});

test('a corrupted download is never stored; a server that keeps sending it fails with SHA_MISMATCH', async () => {
  const dir = await copyPack();
  const man = readManifestJson(dir);
  const cacheDir = tmpDir('trl-c5-');
  const srv = await servePack(dir, ({ res, name, body }) => {
    if (name !== man.chunks[0].file) return false;
    const b = Buffer.from(body);
    b[7] ^= 1;
    res.writeHead(200, { 'content-length': b.length }).end(b);
    return true;
  });
  try {
    await assert.rejects(load(srv.url, { cache: cacheDir }), (e) => e.code === 'SHA_MISMATCH' && e.field === 'chunks[0].sha256' && e.file === man.chunks[0].file);
    assert.equal(srv.log.filter((e) => e.name === man.chunks[0].file).length, 2, 'fetched once more before giving up');
    const files = existsSync(join(cacheDir, 'chunks')) ? readdirSync(join(cacheDir, 'chunks')) : [];
    assert.ok(!files.some((f) => f.startsWith(man.chunks[0].sha256)), `nothing of the bad chunk is kept: ${files}`);
    assertCacheClean(cacheDir);
  } finally {
    await srv.close();
  }
});

test('a cache that runs out of space warns (offering a smaller variant) and the load goes on uncached', async () => {
  const dir = await copyLowrankPack();
  const srv = await servePack(dir);
  class FullStore extends MemoryStore {
    async commit() {
      const e = new Error('quota');
      e.name = 'QuotaExceededError';
      throw e;
    }
  }
  const warnings = [];
  try {
    const store = new FullStore();
    const m = await load(srv.url, { cache: store, variant: 'r0.75', onWarning: (w) => warnings.push(w) });
    assert.equal(warnings.length, 1);
    assert.equal(warnings[0].quota, true);
    assert.match(warnings[0].message, /out of storage space while storing chunk-.*goes on without caching .*; the smaller variant r0\.5 downloads [\d.]+ KiB \(variant: 'r0\.5'\)$/);
    assert.deepEqual(m.info.warnings, [warnings[0].message]);
    const direct = await load(dir, { variant: 'r0.75' });
    assert.deepEqual(await logitsOf(m), await logitsOf(direct));
    assert.equal(store.chunks.size, 0);
  } finally {
    await srv.close();
  }
});

test('MemoryStore: resume and reuse through the generic store interface', async () => {
  const dir = await copyPack();
  const man = readManifestJson(dir);
  const file = man.chunks[0].file;
  let drop = true;
  const srv = await servePack(dir, ({ res, name, range, body }) => {
    if (name !== file || !drop) return false;
    res.writeHead(200, { 'content-length': body.length });
    res.write(body.subarray(0, 5000), () => setTimeout(() => res.socket.destroy(), 20));
    return true;
  });
  try {
    const store = new MemoryStore();
    await assert.rejects(load(srv.url, { cache: store, retries: 0 }), (e) => e.code === 'IO');
    assert.ok(store.partials.get(man.chunks[0].sha256)?.length > 0);
    drop = false;
    srv.log.length = 0;
    const m = await load(srv.url, { cache: store });
    assert.match(srv.log.find((e) => e.name === file).range, /^bytes=\d+-$/);
    assert.deepEqual(await logitsOf(m), await cleanLogits());
    assert.equal(store.chunks.size, man.chunks.length);
    srv.log.length = 0;
    (await load(srv.url, { cache: store })).dispose();
    assert.equal(srv.log.length, 0);
  } finally {
    await srv.close();
  }
});

// A CacheStorage stand-in with the Cache API's semantics that matter here
// (string/Request keys, put/match/delete/keys, Response bodies).
class FakeCacheStorage {
  constructor() {
    this.caches = new Map();
  }
  async open(name) {
    if (!this.caches.has(name)) {
      const entries = new Map();
      this.caches.set(name, {
        entries,
        async match(req) {
          const k = typeof req === 'string' ? req : req.url;
          const e = entries.get(k);
          return e ? new Response(e.body, { headers: e.headers }) : undefined;
        },
        async put(req, res) {
          const k = typeof req === 'string' ? req : req.url;
          entries.set(k, { body: new Uint8Array(await res.arrayBuffer()), headers: Object.fromEntries(res.headers) });
        },
        async delete(req) {
          return entries.delete(typeof req === 'string' ? req : req.url);
        },
        async keys() {
          return [...entries.keys()].map((url) => new Request(url));
        },
      });
    }
    return this.caches.get(name);
  }
  async delete(name) {
    return this.caches.delete(name);
  }
}

test('CacheApiStore (browsers): chunks by sha256, partial downloads as segments, resume, no request the second time', async () => {
  const dir = await copyPack();
  const man = readManifestJson(dir);
  const big = man.chunks.reduce((a, c, i) => (c.bytes > man.chunks[a].bytes ? i : a), 0);
  const file = man.chunks[big].file;
  const storage = new FakeCacheStorage();
  const store = new CacheApiStore('trillium-test', storage);
  store.segmentBytes = 64 * 1024; // several segments for a small chunk
  let drop = true;
  const cut = Math.floor(man.chunks[big].bytes * 0.7);
  const srv = await servePack(dir, ({ res, name, range, body }) => {
    if (name !== file || !drop) return false;
    res.writeHead(200, { 'content-length': body.length });
    res.write(body.subarray(0, cut), () => setTimeout(() => res.socket.destroy(), 20));
    return true;
  });
  try {
    await assert.rejects(load(srv.url, { cache: store, retries: 0 }), (e) => e.code === 'IO');
    const have = await store.partialSize(man.chunks[big].sha256);
    assert.ok(have > 0 && have <= cut, `${have} bytes in segments`);
    const segs = [...(await storage.open('trillium-test')).entries.keys()].filter((k) => k.includes('/partial/'));
    assert.ok(segs.length >= 1);
    drop = false;
    srv.log.length = 0;
    const m = await load(srv.url, { cache: store });
    assert.deepEqual(srv.log.filter((e) => e.name === file).map((e) => e.range), [`bytes=${have}-`]);
    assert.deepEqual(await logitsOf(m), await cleanLogits());
    const keys = [...(await storage.open('trillium-test')).entries.keys()];
    assert.ok(!keys.some((k) => k.includes('/partial/')), 'segments are dropped once the chunk is stored');
    assert.equal(keys.filter((k) => k.includes('/chunk/')).length, man.chunks.length);
    srv.log.length = 0;
    (await load(srv.url, { cache: store })).dispose();
    assert.equal(srv.log.length, 0);
    await store.clear();
    assert.equal(storage.caches.size, 0);
  } finally {
    await srv.close();
  }
});

test('bad cache options are refused', async () => {
  await assert.rejects(load('http://127.0.0.1:9/pack/', { cache: 42 }), (e) => e.code === 'BAD_ARGUMENT' && /cache must be/.test(e.message));
});
