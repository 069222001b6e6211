// Memory budget and variant picking (web/src/budget.js) on simulated devices,
// then variant: 'auto' end to end on a real pack with three low-rank variants
// (r0.25 < r0.5 < r0.75), including running out of memory while loading.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  GiB, MiB, chooseVariant, contextBytesFor, estimateBudget, formatBytes, parseBytes, probeWasmMemory, variantPeak,
} from '../../web/src/budget.js';
import { Binding, Trillium, TrilliumError } from '../../web/src/node.js';
import { lowrankPack, needWasm, readManifestJson } from './helpers.mjs';

// A parsed manifest with four variants over four tiers; sizes in MiB.
function fakePack() {
  const tiers = [300, 400, 700, 1400];
  const chunks = tiers.map((mb, i) => ({ file: `c${i}`, bytes: mb * MiB, sha256: '0'.repeat(64), tier: i }));
  const ctx = { 512: 64 * MiB, 2048: 256 * MiB };
  const v = (id, n) => {
    const t = [...Array(n).keys()];
    const bytes = t.reduce((s, i) => s + chunks[i].bytes, 0);
    return { id, tiers: t, downloadBytes: bytes, residentBytes: bytes, contextBytes: ctx, rankSlices: n };
  };
  return {
    chunks,
    tensors: chunks.map((c, i) => ({ name: `t${i}`, chunk: i, offset: 0, bytes: c.bytes })),
    tokenizer: { chunk: 0, offset: 0, bytes: 0 },
    variants: [v('small', 1), v('mid', 2), v('large', 3), v('xl', 4)],
  };
}
// peaks at 2048 tokens: (weights + 256 MiB) x 1.1 = 611.6, 1051.6, 1821.6, 3361.6 MiB
const pick = (env, nCtx = 2048) => {
  const budget = estimateBudget(env);
  return { budget, ...chooseVariant(fakePack(), { nCtx, budget, maxCtx: 8192 }) };
};
const noProbe = () => ({ bytes: 4 * GiB, error: null });

test('formatBytes / parseBytes', () => {
  assert.equal(formatBytes(412 * MiB), '412 MiB');
  assert.equal(formatBytes(1.5 * GiB), '1.5 GiB');
  assert.equal(formatBytes(2 * GiB), '2 GiB');
  assert.equal(formatBytes(1536), '1.5 KiB');
  assert.equal(formatBytes(12), '12 B');
  assert.equal(parseBytes('1.5GiB'), 1.5 * GiB);
  assert.equal(parseBytes('512 MB'), 512 * MiB);
  assert.equal(parseBytes('2g'), 2 * GiB);
  assert.equal(parseBytes(1000), 1000);
  assert.equal(parseBytes('1e6'), 1e6);
  for (const bad of ['', 'lots', -1, 0, '1.5 PB', null, NaN]) {
    assert.throws(() => parseBytes(bad), (e) => e instanceof TrilliumError && e.code === 'BAD_ARGUMENT', String(bad));
  }
});

test('context bytes: listed, from the core, interpolated, extrapolated, scaled', () => {
  const v = { contextBytes: { 512: 64 * MiB, 2048: 256 * MiB } };
  assert.deepEqual(contextBytesFor(v, 512), { bytes: 64 * MiB, source: 'manifest' });
  assert.deepEqual(contextBytesFor(v, 1024), { bytes: 128 * MiB, source: 'interpolated' });
  assert.deepEqual(contextBytesFor(v, 4096), { bytes: 512 * MiB, source: 'interpolated' });
  assert.deepEqual(contextBytesFor(v, 256), { bytes: 32 * MiB, source: 'interpolated' });
  assert.deepEqual(contextBytesFor(v, 1024, (n) => n * 1000), { bytes: 1024000, source: 'core' });
  assert.deepEqual(contextBytesFor({ contextBytes: { 256: 1000 } }, 512), { bytes: 2000, source: 'scaled' });
  assert.equal(contextBytesFor({ contextBytes: {} }, 512), null);
  const p = variantPeak(fakePack(), fakePack().variants[0], 2048);
  assert.equal(p.weights, 300 * MiB);
  assert.equal(p.context, 256 * MiB);
  assert.equal(p.margin, Math.round(556 * MiB * 0.1));
});

test('expansion on top of the download (t1 -> t2) counts towards the peak', () => {
  const m = fakePack();
  const v = { ...m.variants[0], residentBytes: m.variants[0].downloadBytes + 50 * MiB };
  assert.equal(variantPeak(m, v, 512).weights, 350 * MiB);
});

test('simulated devices: 1, 2, 4, 8 GiB of deviceMemory', () => {
  const cases = [
    [1, 'small', 768 * MiB],
    [2, 'mid', 1536 * MiB],
    [4, 'large', 3 * GiB],
    [8, 'xl', 4 * GiB], // 6 GiB, capped by wasm32
  ];
  for (const [gib, id, budget] of cases) {
    const r = pick({ deviceMemory: gib, probe: noProbe });
    assert.equal(r.variant.id, id, `${gib} GiB`);
    assert.equal(r.budget.bytes, budget, `${gib} GiB budget`);
    assert.match(r.reason, /^fits: [\d.]+ (MiB|GiB) of [\d.]+ (MiB|GiB) budget \(/);
  }
  assert.equal(pick({ deviceMemory: 2, probe: noProbe }).reason,
    'fits: 1 GiB of 1.5 GiB budget (deviceMemory 2 GiB x 0.75); large would need 1.8 GiB');
  assert.match(pick({ deviceMemory: 8, probe: noProbe }).reason, /budget \(the wasm32 limit of 4 GiB\)$/);
});

test('a shorter context lets a bigger variant fit', () => {
  assert.equal(pick({ deviceMemory: 2, probe: noProbe }, 2048).variant.id, 'mid');
  // 512 tokens: peaks 400.4, 840.4, 1610.4, 3150.4 MiB
  assert.equal(pick({ deviceMemory: 1, probe: noProbe }, 512).variant.id, 'small');
  assert.equal(pick({ deviceMemory: 4, probe: noProbe }, 512).variant.id, 'large');
});

test('no deviceMemory API (Safari, Firefox): 1 GiB is assumed; Node uses the system memory', () => {
  const r = pick({ probe: noProbe });
  assert.equal(r.budget.bytes, 1 * GiB);
  assert.equal(r.variant.id, 'small');
  assert.match(r.reason, /no deviceMemory API, assuming 1 GiB/);
  const n = pick({ systemMemory: 16 * GiB, probe: noProbe });
  assert.equal(n.variant.id, 'xl');
  assert.equal(estimateBudget({ systemMemory: 2 * GiB }).reason, 'system memory 2 GiB x 0.75');
});

test('jsHeapSizeLimit and a WebAssembly.Memory that stops growing cap the budget', () => {
  const r = pick({ deviceMemory: 8, jsHeapSizeLimit: 1 * GiB, probe: noProbe });
  assert.equal(r.variant.id, 'small');
  assert.match(r.reason, /jsHeapSizeLimit 1 GiB/);
  const p = pick({ deviceMemory: 8, probe: () => ({ bytes: 1.2 * GiB, error: null }) });
  assert.equal(p.variant.id, 'mid');
  assert.match(p.reason, /a WebAssembly\.Memory grew only to 1\.2 GiB/);
});

test('probe failures are noted and ignored', () => {
  for (const probe of [() => { throw new Error('no wasm'); }, () => ({ bytes: 0, error: 'cannot create a WebAssembly.Memory' })]) {
    const r = pick({ deviceMemory: 4, probe });
    assert.equal(r.variant.id, 'large');
    assert.match(r.budget.reason, /deviceMemory 4 GiB x 0\.75; memory probe failed/);
  }
});

test('memoryBudget overrides the estimate (number or string), capped at 4 GiB', () => {
  assert.equal(pick({ memoryBudget: '2GiB', deviceMemory: 1 }).variant.id, 'large');
  assert.equal(pick({ memoryBudget: 700 * MiB }).variant.id, 'small');
  assert.equal(pick({ memoryBudget: '16GiB' }).budget.bytes, 4 * GiB);
  assert.equal(pick({ memoryBudget: '2GiB' }).reason, 'fits: 1.8 GiB of 2 GiB budget (memoryBudget 2 GiB); xl would need 3.3 GiB');
});

test('nothing fits: NO_MEMORY naming the smallest variant, its need, and the context that would fit', () => {
  assert.throws(() => pick({ memoryBudget: '600MiB' }), (e) => {
    assert.equal(e.code, 'NO_MEMORY');
    assert.match(e.message, /no variant fits the 600 MiB memory budget \(memoryBudget 600 MiB\): the smallest, small, needs 612 MiB \(weights 300 MiB \+ context 256 MiB \+ margin 55\.6 MiB\) for a 2048-token context/);
    assert.equal(e.suggestedVariant, 'small');
    // (300 + c) * 1.1 <= 600, c = 64 MiB + (n - 512) * 128 KiB
    assert.equal(e.suggestedContextLength, 1963);
    assert.match(e.message, /a contextLength of at most 1963 tokens/);
    return true;
  });
  assert.throws(() => pick({ memoryBudget: '100MiB' }), (e) => e.code === 'NO_MEMORY' && /a smaller pack/.test(e.message) && e.suggestedContextLength === undefined);
});

test('probeWasmMemory: grows in steps to the limit, stops at RangeError, survives a refusing constructor', () => {
  const real = probeWasmMemory({ limit: 64 * MiB, step: 16 * MiB });
  assert.equal(real.bytes, 64 * MiB);
  let grown = 0;
  class Fake {
    constructor({ maximum }) {
      if (maximum > 32768) throw new RangeError('too big to reserve');
      this.buffer = { byteLength: 0 };
    }
    grow(n) {
      if (grown + n > 20000) throw new RangeError('out of memory');
      grown += n;
      this.buffer = { byteLength: grown * 65536 };
    }
  }
  const r = probeWasmMemory({ limit: 4 * GiB, step: 256 * MiB, Memory: Fake });
  assert.ok(r.bytes > 1 * GiB && r.bytes <= 20000 * 65536, `${r.bytes}`);
  assert.equal(r.error, null);
  assert.deepEqual(probeWasmMemory({ Memory: null }), { bytes: 0, error: 'WebAssembly.Memory is unavailable' });
});

// ---------------------------------------------------------------- real pack

async function peaks(pack) {
  const info = await Trillium.inspect(pack, { wasm: needWasm() });
  return Object.fromEntries(info.variants.map((v) => [v.id, v.peak.bytes]));
}

test("variant 'auto' on a real pack: picks by budget, reports {id, reason}, logits equal the explicit variant", async () => {
  const pack = await lowrankPack();
  const p = await peaks(pack);
  assert.ok(p['r0.25'] < p['r0.5'] && p['r0.5'] < p['r0.75']);
  const wasm = needWasm();
  const between = Math.floor((p['r0.5'] + p['r0.75']) / 2);
  const m = await Trillium.load(pack, { wasm, memoryBudget: between });
  const e = await Trillium.load(pack, { wasm, variant: 'r0.5' });
  try {
    assert.equal(m.variant.id, 'r0.5');
    assert.equal(m.info.variant, 'r0.5');
    assert.match(m.variant.reason, /^fits: [\d.]+ MiB of [\d.]+ MiB budget \(memoryBudget [\d.]+ MiB\); r0\.75 would need/);
    assert.equal(m.variant.budgetBytes, between);
    assert.equal(m.variant.peakBytes, p['r0.5']);
    assert.deepEqual(Array.from((await m.logits('Hello')).logits), Array.from((await e.logits('Hello')).logits));
    assert.equal(e.variant.reason, 'requested');
  } finally {
    m.dispose();
    e.dispose();
  }
  // the default for a multi-variant pack is 'auto'; simulated devices
  for (const [device, id] of [
    [{ deviceMemory: 1 / 64, systemMemory: undefined, probe: () => 4 * GiB }, null], // 12 MiB: nothing fits
    [{ deviceMemory: 8, probe: () => p['r0.25'] + 1 }, 'r0.25'], // the heap cannot grow further
    [{ deviceMemory: 8, probe: () => ({ bytes: 0, error: 'x' }) }, 'r0.75'],
  ]) {
    if (id === null) {
      await assert.rejects(Trillium.load(pack, { wasm, device }), (err) => err.code === 'NO_MEMORY' && err.suggestedVariant === 'r0.25');
      continue;
    }
    const d = await Trillium.load(pack, { wasm, device });
    assert.equal(d.variant.id, id, JSON.stringify(device));
    d.dispose();
  }
  // a pack with one variant loads it without a budget, unless asked
  const info = await Trillium.inspect(pack, { wasm, memoryBudget: between });
  assert.equal(info.auto.id, 'r0.5');
  assert.match(info.auto.reason, /^fits:/);
});

// Simulate a heap that holds only `limit` bytes of chunks, by failing the
// allocation the way the binding does when the wasm heap cannot grow.
async function withHeapLimit(limit, fn) {
  const orig = Binding.prototype.mallocAligned;
  const used = new WeakMap();
  Binding.prototype.mallocAligned = function (bytes, what) {
    const u = (used.get(this) ?? 0) + bytes;
    if (u > limit) {
      throw new TrilliumError('NO_MEMORY', `out of WebAssembly memory allocating ${bytes} bytes for ${what} (simulated heap limit)`);
    }
    used.set(this, u);
    return orig.call(this, bytes, what);
  };
  try {
    return await fn();
  } finally {
    Binding.prototype.mallocAligned = orig;
  }
}

test('out of memory while loading: the error offers the next smaller variant; auto falls back to it', async () => {
  const pack = await lowrankPack();
  const man = readManifestJson(pack);
  const dl = Object.fromEntries(man.variants.map((v) => [v.id, v.download_bytes]));
  const wasm = needWasm();
  await withHeapLimit(dl['r0.5'] + 1000, async () => {
    await assert.rejects(Trillium.load(pack, { wasm, variant: 'r0.75' }), (e) => {
      assert.equal(e.code, 'NO_MEMORY');
      assert.equal(e.suggestedVariant, 'r0.5');
      assert.match(e.message, /simulated heap limit\); the smaller variant r0\.5 needs [\d.]+ MiB: load it with variant: 'r0\.5'$/);
      return true;
    });
    const m = await Trillium.load(pack, { wasm, variant: 'auto' });
    try {
      assert.equal(m.variant.id, 'r0.5');
      assert.match(m.variant.reason, /^fell back: r0\.75 ran out of memory$/);
      assert.equal((await m.logits('Hi')).logits.length, man.config.vocab_size);
    } finally {
      m.dispose();
    }
  });
  await withHeapLimit(10, async () => {
    await assert.rejects(Trillium.load(pack, { wasm, variant: 'auto' }), (e) => e.code === 'NO_MEMORY' && e.suggestedVariant === undefined);
  });
});
