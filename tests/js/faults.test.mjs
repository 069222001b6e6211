// Fault injection on the http path: a local server on 127.0.0.1 drops
// connections mid-chunk, flips a byte, answers 404 or 503, stalls, sends no
// Content-Length, or serves a manifest that lies about sizes. Every load
// either succeeds with logits equal to a clean load's, or fails with a
// TrilliumError naming the code, the file and the manifest field; and the
// cache never holds a byte that failed its sha256.
import assert from 'node:assert/strict';
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Trillium } from '../../web/src/node.js';
import {
  assertCacheClean, copyLowrankPack, copyPack, needWasm, readManifestJson, sendBody, servePack, tmpDir, writeManifestJson,
} from './helpers.mjs';

const load = (src, opts = {}) => Trillium.load(src, { wasm: needWasm(), retryDelayMs: 1, ...opts });

async function logitsOf(m, prompt = 'Once upon a time') {
  try {
    return Array.from((await m.logits(prompt)).logits);
  } finally {
    m.dispose();
  }
}

const cleanCache = new Map();
async function clean(dir) {
  if (!cleanCache.has(dir)) cleanCache.set(dir, logitsOf(await load(dir, { cache: false })));
  return cleanCache.get(dir);
}

/** Load through a faulty server; returns {ok: logits} or {error}. Checks the cache after either. */
async function attempt(dir, fault, opts = {}) {
  const cacheDir = tmpDir('trl-fault-cache-');
  const srv = await servePack(dir, fault);
  try {
    let out;
    try {
      out = { ok: await logitsOf(await load(srv.url, { cache: cacheDir, ...opts })) };
    } catch (e) {
      out = { error: e };
    }
    out.cached = assertCacheClean(cacheDir);
    out.log = srv.log.slice();
    // whatever happened, a clean server and the same cache give a correct model
    const healthy = await servePack(dir);
    try {
      const again = await logitsOf(await load(healthy.url.replace(/\/pack\/$/, '/pack/'), { cache: cacheDir }));
      assert.deepEqual(again, await clean(dir), 'a later clean load from the same cache is correct');
    } finally {
      await healthy.close();
    }
    return out;
  } finally {
    await srv.close();
  }
}

function assertFails(out, code, file, field, re) {
  assert.ok(out.error, `expected ${code}, the load succeeded`);
  const e = out.error;
  assert.equal(e.name, 'TrilliumError', e.stack);
  assert.equal(e.code, code, e.message);
  assert.equal(e.file, file, e.message);
  assert.equal(e.field, field, e.message);
  if (re) assert.match(e.message, re);
}

const drop = (at) => ({ res, body }) => {
  res.writeHead(200, { 'content-length': body.length });
  res.write(body.subarray(0, at(body.length)), () => setTimeout(() => res.socket.destroy(), 10));
  return true;
};

test('connection dropped mid-chunk: transient drops are resumed; a server that always drops fails with IO naming the chunk', async () => {
  const dir = await copyPack();
  const man = readManifestJson(dir);
  const f = man.chunks[0].file;
  const twice = await attempt(dir, (r) => r.name === f && r.n < 2 && drop((n) => (n >> 2) * (r.n + 1))(r));
  assert.deepEqual(twice.ok, await clean(dir));
  const ranges = twice.log.filter((e) => e.name === f).map((e) => e.range);
  assert.equal(ranges.length, 3);
  assert.equal(ranges[0], null);
  assert.match(ranges[1], /^bytes=\d+-$/);

  const always = await attempt(dir, (r) => r.name === f && drop((n) => n >> 1)(r), { retries: 2 });
  assertFails(always, 'IO', f, 'chunks[0].file', /download failed after 3 attempts: connection lost after \d+ of \d+ bytes/);
});

test('a corrupted byte: fetched once more, whole and uncached; corrupted every time: SHA_MISMATCH', async () => {
  const dir = await copyPack();
  const man = readManifestJson(dir);
  const f = man.chunks[0].file;
  const flip = ({ res, body }) => {
    const b = Buffer.from(body);
    b[b.length - 3] ^= 0x80;
    res.writeHead(200, { 'content-length': b.length }).end(b);
    return true;
  };
  const once = await attempt(dir, (r) => r.name === f && r.n === 0 && flip(r));
  assert.deepEqual(once.ok, await clean(dir));
  const always = await attempt(dir, (r) => r.name === f && flip(r));
  assertFails(always, 'SHA_MISMATCH', f, 'chunks[0].sha256', /sha256 is [0-9a-f]{64} but .*chunks\[0\]\.sha256 says/);
  assert.equal(always.cached, 0);
});

test('a 404 chunk fails at once with MISSING_FILE; a 503 is retried', async () => {
  const dir = await copyLowrankPack();
  const man = readManifestJson(dir);
  const f = man.chunks[1].file;
  const missing = await attempt(dir, ({ res, name }) => name === f && (res.writeHead(404).end(), true), { variant: 'r0.75' });
  assertFails(missing, 'MISSING_FILE', f, 'chunks[1].file', /not found \(HTTP 404\)/);
  assert.equal(missing.log.filter((e) => e.name === f).length, 1, 'a 404 is not retried');
  // chunks download concurrently: those that arrived intact before the failure are kept
  assert.ok(missing.cached >= 1 && missing.cached <= man.chunks.length - 1, 'the intact chunks are kept');

  const busy = await attempt(dir, ({ res, name, n }) => name === f && n < 2 && (res.writeHead(503).end(), true), { variant: 'r0.75' });
  assert.deepEqual(busy.ok, await clean(dir));
  const always = await attempt(dir, ({ res, name }) => name === f && (res.writeHead(500).end(), true), { variant: 'r0.75', retries: 1 });
  assertFails(always, 'IO', f, 'chunks[1].file', /failed after 2 attempts: HTTP 500/);
});

test('a slow server: a stall longer than timeoutMs is retried; one that never recovers fails; an AbortSignal stops at once', async () => {
  const dir = await copyPack();
  const man = readManifestJson(dir);
  const f = man.chunks[0].file;
  const stall = ({ res, body, range }) => {
    const start = range ? Number(/bytes=(\d+)-/.exec(range)[1]) : 0;
    const part = body.subarray(start);
    res.writeHead(range ? 206 : 200, {
      'content-length': part.length,
      ...(range ? { 'content-range': `bytes ${start}-${body.length - 1}/${body.length}` } : {}),
    });
    res.write(part.subarray(0, 2048)); // then nothing: the connection stays open
    return true;
  };
  const t0 = performance.now();
  const once = await attempt(dir, (r) => r.name === f && r.n === 0 && stall(r), { timeoutMs: 150 });
  assert.deepEqual(once.ok, await clean(dir));
  assert.match(once.log.filter((e) => e.name === f)[1].range ?? '', /^bytes=\d+-$/, 'resumed after the stall');
  assert.ok(performance.now() - t0 < 20000);

  const never = await attempt(dir, (r) => r.name === f && stall(r), { timeoutMs: 100, retries: 1 });
  assertFails(never, 'IO', f, 'chunks[0].file', /failed after 2 attempts: no data for 100 ms/);

  // a response that never starts
  const mute = await attempt(dir, (r) => r.name === f, { timeoutMs: 100, retries: 0 });
  assertFails(mute, 'IO', f, 'chunks[0].file', /no response within 100 ms/);

  // the caller's signal: rejects with its reason, without waiting for timeouts
  const srv = await servePack(dir, (r) => r.name === f && stall(r));
  try {
    const ac = new AbortController();
    const t1 = performance.now();
    const p = load(srv.url, { cache: false, timeoutMs: 60000, signal: ac.signal });
    setTimeout(() => ac.abort(new Error('user gave up')), 100);
    await assert.rejects(p, /user gave up/);
    assert.ok(performance.now() - t1 < 5000, 'aborted promptly');
  } finally {
    await srv.close();
  }
});

test('a manifest that lies about sizes: SIZE_MISMATCH naming chunks[i].bytes, with and without Content-Length', async () => {
  for (const longer of [false, true]) {
    for (const chunked of [false, true]) {
      const dir = await copyPack();
      const man = readManifestJson(dir);
      const f = man.chunks[0].file;
      if (longer) {
        // the file is 64 bytes longer than the manifest says
        appendFileSync(join(dir, f), Buffer.alloc(64));
      } else {
        // the manifest claims 64 bytes more than the file has
        man.chunks[0].bytes += 64;
        for (const v of man.variants ?? []) if (v.tiers.includes(man.chunks[0].tier ?? 0)) v.download_bytes += 64;
        writeManifestJson(dir, man);
      }
      const out = await attemptNoHealthCheck(dir, chunked ? ({ res, name, body, range }) => {
        if (name !== f) return false;
        if (range) {
          const start = Number(/bytes=(\d+)-/.exec(range)[1]);
          if (start >= body.length) return res.writeHead(416, { 'content-range': `bytes */${body.length}` }).end(), true;
        }
        res.writeHead(200, { 'transfer-encoding': 'chunked' }); // no Content-Length
        res.end(range ? body.subarray(Number(/bytes=(\d+)-/.exec(range)[1])) : body);
        return true;
      } : undefined);
      const what = `${longer ? 'longer' : 'shorter'} file, ${chunked ? 'no Content-Length' : 'Content-Length'}`;
      assert.ok(out.error, what);
      assertFails(out, 'SIZE_MISMATCH', f, 'chunks[0].bytes', /size is .* bytes but manifest\.json chunks\[0\]\.bytes says/);
      assert.equal(out.cached, 0, what);
    }
  }
});

// For packs that are broken on purpose: no clean reload afterwards.
async function attemptNoHealthCheck(dir, fault, opts = {}) {
  const cacheDir = tmpDir('trl-fault-cache-');
  const srv = await servePack(dir, fault);
  try {
    let out;
    try {
      out = { ok: await logitsOf(await load(srv.url, { cache: cacheDir, ...opts })) };
    } catch (e) {
      out = { error: e };
    }
    out.cached = assertCacheClean(cacheDir);
    out.log = srv.log.slice();
    return out;
  } finally {
    await srv.close();
  }
}

test('a server that ignores Range requests: the chunk starts over and still loads correctly', async () => {
  const dir = await copyPack();
  const man = readManifestJson(dir);
  const f = man.chunks[0].file;
  const out = await attempt(dir, (r) => {
    if (r.name !== f) return false;
    if (r.n === 0) return drop((n) => n >> 1)(r);
    sendBody(r.res, r.body, null, r.name); // 200 with the whole file, whatever the Range
    return true;
  });
  assert.deepEqual(out.ok, await clean(dir));
  assert.equal(out.log.filter((e) => e.name === f).length, 2);
});

test('manifest faults: unreachable, 404, not JSON', async () => {
  const dir = await copyPack();
  const gone = await attemptNoHealthCheck(dir, ({ res, name }) => name === 'manifest.json' && (res.writeHead(404).end(), true));
  assert.equal(gone.error.code, 'MISSING_FILE');
  assert.equal(gone.error.file, 'manifest.json');
  const junk = await attemptNoHealthCheck(dir, ({ res, name }) => name === 'manifest.json' && (res.writeHead(200).end('{"format":'), true));
  assert.equal(junk.error.code, 'BAD_PACK');
  assert.match(junk.error.message, /manifest\.json: not valid JSON/);
  await assert.rejects(load('http://127.0.0.1:9/pack/', { cache: false, retries: 1 }), (e) => e.code === 'IO' && e.file === 'manifest.json' && /failed after 2 attempts: fetch failed/.test(e.message));
});
