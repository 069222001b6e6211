// The pthreads build (web/dist/trillium-mt.{js,wasm,worker.js}) under Node's
// worker threads: it loads, its contexts split work by rows so any thread
// count gives the same bits as the standalone trillium.wasm, and a process
// that used it exits on its own (idle pool workers never hold the event loop).
//
//   TRL_WASM_MT  trillium-mt.js, or a directory holding it; default web/dist/trillium-mt.js
//
// Most tests drive the packs through Binding directly, so they test the
// binding and both builds whatever model.js and pack.js do; the Model test
// needs Trillium.load to pass `threads` to the binding.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'node:test';
import { Trillium } from '../../web/src/node.js';
import { Binding } from '../../web/src/binding.js';
import { resolveThreads, AUTO_THREADS_CAP } from '../../web/src/wasm.js';
import { ROOT, needWasm, stories260K, tmpDir } from './helpers.mjs';

function resolveGlue(p) {
  if (existsSync(p) && statSync(p).isDirectory()) return join(p, 'trillium-mt.js');
  return p;
}
const GLUE = resolveGlue(resolve(ROOT, process.env.TRL_WASM_MT || 'web/dist/trillium-mt.js'));

function needGlue() {
  assert.ok(existsSync(GLUE), `trillium-mt.js not found at ${GLUE}: build it (cmake --build build/wasm --target trillium_wasm_mt) or set TRL_WASM_MT`);
  for (const f of ['trillium-mt.wasm', 'trillium-mt.worker.js']) {
    assert.ok(existsSync(join(GLUE, '..', f)), `${f} must sit beside ${GLUE}`);
  }
  return GLUE;
}

/** A Binding of the requested build, for `threads` threads. */
function binding(threads, build = 'auto') {
  return Binding.create({ wasm: needWasm(), threadsGlue: needGlue(), threads, build });
}

// What Model.load does, reduced to what these tests need and independent of
// pack.js: config, chunks read straight into the heap (the converter wrote
// them; pack.test.mjs covers checking them), tensor descriptors, model,
// tokenizer and one context.
async function loadPack(b, dir, { nCtx = 256, nBatch = 0 } = {}) {
  const x = b.x;
  const text = readFileSync(join(dir, 'manifest.json'), 'utf8');
  const manifest = JSON.parse(text);
  const h = { b, cfg: 0, chunks: new Map(), names: 0, tensors: 0, model: 0, tok: 0, ctx: 0 };
  const mt = b.allocString(text);
  h.cfg = b.withError('config', (err) => x.trlw_config_from_json(mt.ptr, mt.len, err));
  b.free(mt.ptr);
  const variant = manifest.variants.find((v) => v.id === 'base') ?? manifest.variants[0];
  manifest.chunks.forEach((c, i) => {
    if (!variant.tiers.includes(c.tier ?? 0)) return;
    const data = readFileSync(join(dir, c.file));
    assert.equal(data.length, c.bytes, c.file);
    const ptr = b.mallocAligned(c.bytes, c.file);
    b.u8.set(data, ptr);
    h.chunks.set(i, ptr);
  });
  const bound = manifest.tensors.filter((t) => h.chunks.has(t.chunk));
  const names = bound.map((t) => new TextEncoder().encode(t.name));
  h.names = b.malloc(names.reduce((s, n) => s + n.length + 1, 0));
  h.tensors = x.trlw_tensors_new(bound.length) >>> 0;
  let np = h.names;
  bound.forEach((t, i) => {
    b.u8.set(names[i], np);
    b.u8[np + names[i].length] = 0;
    const two = t.shape.length === 2;
    const enc = b.encodingIds[t.encoding];
    assert.ok(enc !== undefined, `encoding ${t.encoding}`);
    assert.equal(x.trlw_tensor_set(h.tensors, i, np, enc, t.shape.length, t.shape[0], two ? t.shape[1] : 0,
      h.chunks.get(t.chunk) + t.offset, t.bytes), 0);
    const p = t.params;
    if (p && Object.keys(p).length) {
      x.trlw_tensor_set_params(h.tensors, i, p.bits ?? 0, p.group ?? 0, p.pow2 ?? 0, p.scale_axis ?? 0, p.scale_blocks ?? 0);
    }
    np += names[i].length + 1;
  });
  h.model = b.withError('model', (err) => x.trlw_model_create(h.cfg, h.tensors, bound.length, err));
  const tk = manifest.tokenizer;
  h.tok = b.withError('tokenizer', (err) => x.trlw_tokenizer_create(h.chunks.get(tk.chunk) + tk.offset, tk.bytes, err));
  h.ctxBytes = b.ctxMemoryBytes(h.cfg, nCtx, nBatch);
  h.ctx = b.ctxCreate(h.model, nCtx, nBatch);
  h.vocab = x.trlw_config_vocab_size(h.cfg);
  return h;
}

function freePack(h) {
  const { b } = h;
  const x = b.x;
  x.trl_ctx_free(h.ctx);
  x.trl_tokenizer_free(h.tok);
  x.trl_model_free(h.model);
  x.trlw_tensors_free(h.tensors);
  x.trlw_config_free(h.cfg);
  b.free(h.names);
  for (const p of h.chunks.values()) b.free(p);
  b.dispose();
}

function tokenize(h, text) {
  const { b } = h;
  const s = b.allocString(text);
  const ids = b.malloc(4 * (text.length + 4));
  const n = h.b.x.trl_tokenize(h.tok, s.ptr, s.len, 1, ids, text.length + 4);
  const out = Array.from(b.i32.subarray(ids >>> 2, (ids >>> 2) + n));
  b.free(s.ptr);
  b.free(ids);
  return out;
}

/** Logits after prefilling `tokens` from an empty cache: every row of the prefill, as raw bits. */
function prefillBits(h, tokens) {
  const { b } = h;
  const x = b.x;
  assert.equal(x.trl_ctx_truncate(h.ctx, 0), 0);
  const p = b.malloc(tokens.length * 4);
  const all = b.malloc(tokens.length * h.vocab * 4);
  b.i32.set(tokens, p >>> 2);
  const rc = x.trl_ctx_prefill(h.ctx, p, tokens.length, all);
  assert.equal(rc, 0, `prefill: ${b.cString(x.trl_ctx_last_error(h.ctx))}`);
  const bits = new Uint32Array(b.floats(all, tokens.length * h.vocab).buffer);
  b.free(p);
  b.free(all);
  return bits;
}

/** Greedy continuation: prefill, then argmax + decode, one token at a time. */
function greedy(h, tokens, n) {
  const { b } = h;
  const x = b.x;
  assert.equal(x.trl_ctx_truncate(h.ctx, 0), 0);
  const p = b.malloc(tokens.length * 4);
  b.i32.set(tokens, p >>> 2);
  assert.equal(x.trl_ctx_prefill(h.ctx, p, tokens.length, 0), 0);
  b.free(p);
  const out = [];
  const decodeBits = [];
  for (let i = 0; i < n; i++) {
    const logits = b.floats(x.trl_ctx_logits(h.ctx), h.vocab);
    decodeBits.push(...new Uint32Array(logits.buffer));
    let best = 0;
    for (let j = 1; j < logits.length; j++) if (logits[j] > logits[best]) best = j;
    out.push(best);
    assert.equal(x.trl_ctx_decode(h.ctx, best), 0);
  }
  return { tokens: out, bits: Uint32Array.from(decodeBits) };
}

function sameBits(a, b, what) {
  assert.equal(a.length, b.length, `${what}: lengths differ`);
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) assert.fail(`${what}: value ${i} differs (0x${a[i].toString(16)} vs 0x${b[i].toString(16)})`);
  }
}

// A pool that never finishes loading must fail the test, not hang the run.
// (A wait inside the core blocks JS, so no timeout could end it: the pool's
// strict size and Binding's BUSY check keep the core from waiting on a
// worker that is not there; test 4 checks both.)
const T = { timeout: 120000 };

const PROMPT = 'Once upon a time, there was a little girl named Lily. She loved to play outside in the park.';

test('threads option: resolution and build choice', T, async () => {
  assert.equal(await resolveThreads(undefined), 1);
  assert.equal(await resolveThreads(3), 3);
  const auto = await resolveThreads('auto');
  assert.ok(auto >= 1 && auto <= AUTO_THREADS_CAP, `auto gave ${auto}`);
  for (const bad of [0, -1, 1.5, 65, '2', NaN]) {
    await assert.rejects(resolveThreads(bad), (e) => e.code === 'BAD_ARGUMENT', String(bad));
  }
  const one = await binding(1);
  assert.equal(one.build, 'standalone');
  assert.equal(one.threads, 1);
  assert.equal(one.x.trlw_max_threads(), 1);
  const two = await binding(2);
  try {
    assert.equal(two.build, 'pthreads');
    assert.equal(two.threads, 2);
    assert.equal(two.threadsNote, '');
    assert.ok(two.shared, 'the pthreads heap is a SharedArrayBuffer');
    assert.ok(two.x.trlw_max_threads() > 1);
    assert.equal(two.constants.version, one.constants.version);
    // heap bytes handed to APIs that refuse shared memory are copies
    const s = two.allocString('naïve 日本');
    assert.equal(two.decode(s.ptr, s.len), 'naïve 日本');
    assert.ok(!(two.external(s.ptr, s.len).buffer instanceof SharedArrayBuffer));
    assert.equal(one.external(s.ptr, 1).buffer, one.memory.buffer, 'the standalone build hands out views');
    two.free(s.ptr);
  } finally {
    two.dispose();
    two.dispose(); // idempotent
  }
  const forced = await Binding.create({ wasm: needWasm(), threads: 4, build: 'standalone' });
  assert.equal(forced.build, 'standalone');
  assert.equal(forced.threads, 1);
  assert.match(forced.threadsNote, /one thread/);
  await assert.rejects(Binding.create({ wasm: needWasm(), build: 'nope' }), (e) => e.code === 'BAD_ARGUMENT');
  await assert.rejects(Binding.create({ threads: 2, threadsGlue: join(tmpDir(), 'trillium-mt.js') }),
    (e) => e.code === 'WASM' && /trillium-mt/.test(e.message));
});

test('standalone build refuses more than one thread with the core message', T, async () => {
  const b = await binding(1);
  const h = await loadPack(b, await stories260K());
  try {
    assert.throws(() => b.withError('ctx', (err) => b.x.trlw_ctx_create_mt(h.model, 64, 0, 2, err)),
      (e) => e.code === 'CORE' && /pthreads build/.test(e.message));
  } finally {
    freePack(h);
  }
});

test('pthreads build: bit-identical logits with 1, 2 and 3 threads, and to the standalone build', T, async () => {
  const pack = await stories260K();
  const runs = [];
  for (const [threads, build] of [[1, 'standalone'], [1, 'pthreads'], [2, 'auto'], [3, 'auto']]) {
    const b = await binding(threads, build);
    const h = await loadPack(b, pack);
    try {
      assert.equal(b.threads, threads);
      assert.equal(b.build, threads > 1 ? 'pthreads' : build);
      assert.equal(b.workersRunning, threads - 1, 'the context runs threads - 1 pool workers beside the caller');
      const tokens = tokenize(h, PROMPT);
      assert.ok(tokens.length > 20, 'a prompt long enough to spread prefill rows over threads');
      const prefill = prefillBits(h, tokens);
      const gen = greedy(h, tokens, 40);
      runs.push({ label: `${build}/${threads}`, tokens, prefill, gen, ctxBytes: h.ctxBytes });
    } finally {
      freePack(h);
    }
  }
  const [ref, ...rest] = runs;
  assert.ok(ref.prefill.length > 0);
  for (const r of rest) {
    assert.deepEqual(r.tokens, ref.tokens, `${r.label}: prompt tokens`);
    sameBits(r.prefill, ref.prefill, `${r.label}: prefill logits (all rows)`);
    assert.deepEqual(r.gen.tokens, ref.gen.tokens, `${r.label}: greedy tokens`);
    sameBits(r.gen.bits, ref.gen.bits, `${r.label}: decode logits`);
  }
  // a context of n threads may need more scratch; the estimate follows it
  assert.ok(runs[3].ctxBytes >= runs[1].ctxBytes);
});

test('pthreads build: contexts can be recreated (workers return to the pool); the pool size is enforced; contexts: 2', T, async () => {
  const b = await binding(2);
  const h = await loadPack(b, await stories260K(), { nCtx: 64 });
  try {
    const tokens = tokenize(h, PROMPT).slice(0, 16);
    const first = prefillBits(h, tokens);
    for (let i = 0; i < 3; i++) {
      b.x.trl_ctx_free(h.ctx);
      h.ctx = 0;
      assert.equal(b.workersRunning, 0, 'trl_ctx_free joins the threads and their workers go back to the pool');
      h.ctx = b.ctxCreate(h.model, 64);
      sameBits(prefillBits(h, tokens), first, `context #${i + 2}`);
    }
    // two 2-thread contexts at once need 2 workers; the pool holds 1: refused, not deadlocked
    assert.throws(() => b.ctxCreate(h.model, 64), (e) => e.code === 'BUSY' && /contexts/.test(e.message));
    // the core refuses it too when asked directly (pthread_create fails: PTHREAD_POOL_SIZE_STRICT=2)
    assert.throws(() => b.withError('ctx', (err) => b.x.trlw_ctx_create_mt(h.model, 64, 0, 2, err)),
      (e) => /could not start 2 threads/.test(e.message));
    assert.equal(b.workersRunning, 1);
  } finally {
    freePack(h);
  }
  // contexts: 2 holds two 2-thread contexts at once (a variant upgrade beside the running context)
  const b2 = await Binding.create({ wasm: needWasm(), threadsGlue: needGlue(), threads: 2, contexts: 2 });
  const h2 = await loadPack(b2, await stories260K(), { nCtx: 64 });
  try {
    const second = b2.ctxCreate(h2.model, 64);
    assert.equal(b2.workersRunning, 2);
    b2.x.trl_ctx_free(second);
    assert.equal(b2.workersRunning, 1);
  } finally {
    freePack(h2);
  }
  await assert.rejects(Binding.create({ threads: 2, contexts: 0 }), (e) => e.code === 'BAD_ARGUMENT');
});

test('pthreads build: the heap grows past its initial size while workers run', T, async () => {
  const b = await binding(2);
  const h = await loadPack(b, await stories260K(), { nCtx: 64 });
  try {
    const before = b.heapBytes;
    const tokens = tokenize(h, PROMPT).slice(0, 16);
    const first = prefillBits(h, tokens);
    const big = b.malloc(64 << 20, 'a growth probe');
    assert.ok(b.heapBytes > before, 'heap grew');
    b.u8[big + (64 << 20) - 1] = 7; // fresh views see the new size
    assert.equal(b.u8[big + (64 << 20) - 1], 7);
    sameBits(prefillBits(h, tokens), first, 'after growth');
    b.free(big);
  } finally {
    freePack(h);
  }
});

// A child process that loads a 2-thread binding, runs a prefill and returns
// without dispose: it must exit by itself, promptly.
test('a process that used the pthreads build exits on its own', { timeout: 60000 }, async () => {
  needGlue();
  const dir = tmpDir('trl-mt-exit-');
  const script = join(dir, 'child.mjs');
  const u = (p) => JSON.stringify(pathToFileURL(p).href);
  writeFileSync(script, `
import ${u(join(ROOT, 'web/src/node.js'))};
import { Binding } from ${u(join(ROOT, 'web/src/binding.js'))};
const b = await Binding.create({ threads: 2, threadsGlue: ${JSON.stringify(GLUE)}, wasm: ${JSON.stringify(needWasm())} });
console.log(JSON.stringify({ build: b.build, threads: b.threads }));
`);
  const t0 = Date.now();
  const { code, stdout, stderr } = await new Promise((res, rej) => {
    const c = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    c.stdout.on('data', (d) => (out += d));
    c.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => {
      c.kill('SIGKILL');
      rej(new Error(`the child did not exit within 20 s (pool workers keep it alive?); stderr: ${err}`));
    }, 20000);
    c.on('close', (code) => {
      clearTimeout(timer);
      res({ code, stdout: out, stderr: err });
    });
  });
  assert.equal(code, 0, stderr);
  assert.deepEqual(JSON.parse(stdout.trim()), { build: 'pthreads', threads: 2 });
  assert.equal(stderr, '', 'no warnings');
  assert.ok(Date.now() - t0 < 20000);
});

test('Model: Trillium.load(pack, {threads: 2}) generates what the standalone build does', T, async (t) => {
  const pack = await stories260K();
  const one = await Trillium.load(pack, { wasm: needWasm(), contextLength: 256 });
  const two = await Trillium.load(pack, { wasm: needWasm(), threadsGlue: needGlue(), threads: 2, contextLength: 256 });
  try {
    if (two.info.threads === undefined) {
      t.todo('model.js does not pass `threads` to Binding.create yet (see the threads report)');
      return;
    }
    assert.equal(one.info.build, 'standalone');
    assert.equal(one.info.threads, 1);
    assert.equal(two.info.build, 'pthreads');
    assert.equal(two.info.threads, 2);
    const opts = { temperature: 0, maxTokens: 80, ignoreEos: true };
    const a = await one.complete('Once upon a time', opts);
    const b = await two.complete('Once upon a time', opts);
    assert.deepEqual(b.tokens, a.tokens);
    assert.equal(b.text, a.text);
    const la = await one.logits('Lily and Ben went to the park');
    const lb = await two.logits('Lily and Ben went to the park');
    sameBits(new Uint32Array(lb.logits.buffer), new Uint32Array(la.logits.buffer), 'logits');
    assert.equal(two.detokenize(two.tokenize('naïve 日本')), 'naïve 日本');
  } finally {
    one.dispose();
    two.dispose();
  }
});
