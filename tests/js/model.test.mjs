// The Model API on the real stories260K model, run by trillium.wasm.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Trillium } from '../../web/src/node.js';
import { LLAMA2C_GREEDY_200, convertPack, needWasm, stories260K } from './helpers.mjs';

let model;
before(async () => {
  model = await Trillium.load(await stories260K(), { wasm: needWasm(), contextLength: 512 });
});
after(() => model?.dispose());

async function collect(it) {
  const pieces = [];
  for await (const p of it) pieces.push(p);
  return pieces;
}

test('info describes the model', () => {
  const i = model.info;
  assert.equal(i.formatVersion, 1);
  assert.equal(i.variant, 'base');
  assert.equal(i.config.dim, 64);
  assert.equal(i.config.n_layers, 5);
  assert.equal(i.config.vocab_size, 512);
  assert.equal(i.tokenizer.kind, 'spm');
  assert.equal(i.tokenizer.vocabSize, 512);
  assert.equal(i.tokenizer.bosId, 1);
  assert.equal(i.tokenizer.eosId, 2);
  assert.equal(i.contextLength, 512);
  assert.ok(i.weightBytes > 200000);
  assert.ok(i.contextBytes > 0);
});

test('tokenize / detokenize round-trip, BOS optional', () => {
  const text = 'Once upon a time, there was a little girl named Lily.';
  const ids = model.tokenize(text);
  assert.equal(ids[0], 1);
  assert.deepEqual(model.tokenize(text, { addBos: false }), ids.slice(1));
  assert.equal(model.detokenize(ids), text);
  assert.deepEqual(model.tokenize('', { addBos: false }), []);
  assert.deepEqual(model.tokenize(''), [1]);
  // bytes outside the 512-piece vocabulary go through byte fallback and come back intact
  const odd = 'naïve 日本 😀';
  assert.equal(model.detokenize(model.tokenize(odd)), odd);
  assert.throws(() => model.detokenize([1, 99999]), (e) => e.code === 'BAD_ARGUMENT');
});

test('logits: vocab-size, finite, same with and without the KV-cache prefix reuse', async () => {
  const a = await model.logits('Once upon a time');
  assert.equal(a.logits.length, 512);
  assert.ok(a.logits.every(Number.isFinite));
  assert.deepEqual(a.tokens, model.tokenize('Once upon a time'));
  // a longer prompt sharing the prefix reuses the cache; compare with a cold run of the same tokens
  const b = await model.logits('Once upon a time there');
  await model.logits('Zebra'); // evict the prefix
  const c = await model.logits('Once upon a time there');
  assert.deepEqual(Array.from(b.logits), Array.from(c.logits));
  // same prompt twice: the last token is re-run, the result is identical
  const d = await model.logits('Once upon a time there');
  assert.deepEqual(Array.from(d.logits), Array.from(c.logits));
});

test('greedy generation reproduces llama2.c byte for byte (stories260K, 200 steps)', async () => {
  const pieces = await collect(model.generate('', { temperature: 0, maxTokens: 200 }));
  assert.equal(pieces.join(''), LLAMA2C_GREEDY_200);
  assert.equal(model.lastStats.generatedTokens, 200);
  assert.equal(model.lastStats.finishReason, 'length');
});

test('generate yields pieces; stats match; greedy is deterministic', async () => {
  const it = model.generate('Once upon a time', { temperature: 0, maxTokens: 20 });
  const pieces = [];
  let r;
  while (!(r = await it.next()).done) pieces.push(r.value);
  const stats = r.value;
  assert.ok(pieces.length >= 5);
  assert.equal(stats.text, pieces.join(''));
  assert.equal(stats.generatedTokens, 20);
  assert.equal(stats.promptTokens, model.tokenize('Once upon a time').length);
  assert.ok(stats.decodeMs >= 0 && stats.prefillMs >= 0);
  const again = await model.complete('Once upon a time', { temperature: 0, maxTokens: 20 });
  assert.equal(again.text, stats.text);
  assert.deepEqual(again.tokens, stats.tokens);
  // the text continues the prompt the way the tokens say it does
  assert.equal(model.detokenize([...model.tokenize('Once upon a time'), ...stats.tokens]), 'Once upon a time' + stats.text);
});

test('byte-fallback tokens stream into whole characters', async () => {
  const text = 'über 日本 😀';
  const ids = model.tokenize(text, { addBos: false });
  const byteIds = ids.filter((id) => model.tokenBytes(id).length === 1 && model.tokenBytes(id)[0] >= 0x80);
  assert.ok(byteIds.length >= 9, 'non-ASCII text goes through byte tokens');
  const { Utf8Stream } = await import('../../web/src/utf8.js');
  const u = new Utf8Stream();
  const pieces = ids.map((id) => u.push(model.tokenBytes(id)));
  pieces.push(u.end());
  for (const p of pieces) assert.ok(!p.includes('\uFFFD'), `no half character in ${JSON.stringify(pieces)}`);
  assert.equal(pieces.join(''), ' ' + text); // SPM's dummy prefix
});

test('a prompt may be token ids', async () => {
  const ids = model.tokenize('Once upon a time');
  const a = await model.complete(ids, { temperature: 0, maxTokens: 8 });
  const b = await model.complete('Once upon a time', { temperature: 0, maxTokens: 8 });
  assert.equal(a.text, b.text);
  assert.equal(a.promptTokens, ids.length);
});

test('sampling: same seed same text, different seed (usually) different text', async () => {
  const opts = { temperature: 1, topK: 0, topP: 1, maxTokens: 40 };
  const a = await model.complete('Once', { ...opts, seed: 42 });
  const b = await model.complete('Once', { ...opts, seed: 42 });
  assert.equal(a.text, b.text);
  assert.equal(a.seed, '42');
  const texts = new Set();
  for (const seed of [1, 2, 3, 4]) texts.add((await model.complete('Once', { ...opts, seed })).text);
  assert.ok(texts.size > 1, 'different seeds gave different text');
  const big = await model.complete('Once', { ...opts, seed: 2n ** 64n - 1n, maxTokens: 5 });
  assert.equal(big.seed, '18446744073709551615');
  const s = await model.complete('Once', { temperature: 0.8, topK: 40, topP: 0.95, minP: 0.05, repeatPenalty: 1.1, seed: 7, maxTokens: 10 });
  assert.ok(s.generatedTokens > 0);
});

test('stops at the context length', async () => {
  const small = await Trillium.load(await stories260K(), { wasm: needWasm(), contextLength: 16 });
  try {
    const s = await small.complete('Once upon a time', { temperature: 0, maxTokens: 100 });
    assert.equal(s.finishReason, 'context');
    assert.equal(s.promptTokens + s.generatedTokens, 17); // 16 in the cache + the last one sampled
    await assert.rejects(small.complete('word '.repeat(40)), (e) => e.code === 'BAD_ARGUMENT' && /context holds 16/.test(e.message));
  } finally {
    small.dispose();
  }
});

test('an aborted signal stops generation with its reason', async () => {
  const ac = new AbortController();
  const pieces = [];
  await assert.rejects(async () => {
    for await (const p of model.generate('Once', { temperature: 0, maxTokens: 150, signal: ac.signal })) {
      pieces.push(p);
      if (pieces.length === 3) ac.abort();
    }
  }, (e) => e.name === 'AbortError');
  assert.equal(pieces.length, 3);
  // the model is usable afterwards
  assert.equal((await model.complete('Once', { temperature: 0, maxTokens: 3 })).generatedTokens, 3);
});

test('breaking out of the loop frees the model for the next call; concurrent use is refused', async () => {
  for await (const p of model.generate('Once', { temperature: 0 })) {
    assert.ok(typeof p === 'string');
    await assert.rejects(model.logits('x'), (e) => e.code === 'BUSY');
    break;
  }
  assert.equal((await model.logits('Once')).logits.length, 512);
});

test('bad arguments are refused', async () => {
  await assert.rejects(model.complete('x', { temperature: -1 }), (e) => e.code === 'BAD_ARGUMENT' && /temperature/.test(e.message));
  await assert.rejects(model.complete('x', { topP: 2 }), /topP/);
  await assert.rejects(model.complete('x', { seed: -1 }), /seed/);
  await assert.rejects(model.complete('x', { maxTokens: 1.5 }), /maxTokens/);
  await assert.rejects(model.complete('', { addBos: false }), /prompt is empty/);
  assert.throws(() => model.tokenize(42), (e) => e.code === 'BAD_ARGUMENT');
});

test('f16 and q8_0 packs run and stay close to f32', async () => {
  const ref = (await model.logits('Once upon a time, there was')).logits;
  for (const [dtype, tol] of [['f16', 0.05], ['q8_0', 0.5]]) {
    const m = await Trillium.load(convertPack(['--dtype', dtype]), { wasm: needWasm(), contextLength: 64 });
    try {
      const l = (await m.logits('Once upon a time, there was')).logits;
      let maxDiff = 0;
      for (let i = 0; i < l.length; i++) maxDiff = Math.max(maxDiff, Math.abs(l[i] - ref[i]));
      assert.ok(maxDiff < tol, `${dtype}: max |logit - f32 logit| = ${maxDiff}`);
      assert.ok(maxDiff > 0, `${dtype}: the weights really are ${dtype}`);
      const s = await m.complete('Once upon a time', { temperature: 0, maxTokens: 10 });
      assert.equal(s.generatedTokens, 10);
    } finally {
      m.dispose();
    }
  }
});

test('dispose makes the model unusable and is idempotent', async () => {
  const m = await Trillium.load(await stories260K(), { wasm: needWasm(), contextLength: 32 });
  m.dispose();
  m.dispose();
  assert.throws(() => m.tokenize('x'), (e) => e.code === 'DISPOSED');
  await assert.rejects(m.logits('x'), (e) => e.code === 'DISPOSED');
});
