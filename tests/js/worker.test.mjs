// The worker proxy (RemoteModel over worker_threads, the same protocol as
// the browser's module Worker): same results as the in-process Model,
// streamed pieces, abort within one token, errors with their codes,
// progress and upgrade events, dispose.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, test } from 'node:test';
import { RemoteModel, Trillium, TrilliumError } from '../../web/src/node.js';
import { LLAMA2C_GREEDY_200, ROOT, lowrankPack, needWasm, servePack, stories260K } from './helpers.mjs';

let local;
let remote;
before(async () => {
  const pack = await stories260K();
  local = await Trillium.load(pack, { wasm: needWasm(), contextLength: 512 });
  remote = await Trillium.load(pack, { wasm: needWasm(), contextLength: 512, worker: true });
});
after(async () => {
  local?.dispose();
  await remote?.dispose();
});

test('a worker model has the same API and gives the same results', async () => {
  assert.ok(remote instanceof RemoteModel);
  assert.equal(remote.info.config.dim, 64);
  assert.equal(remote.info.contextLength, 512);
  assert.equal(remote.variant.id, 'base');
  assert.deepEqual(await remote.tokenize('Once upon a time'), local.tokenize('Once upon a time'));
  assert.equal(await remote.detokenize([1, 403, 407]), local.detokenize([1, 403, 407]));
  assert.deepEqual(await remote.tokenBytes(300), local.tokenBytes(300));
  const a = await remote.logits('Once upon a time');
  assert.ok(a.logits instanceof Float32Array);
  assert.deepEqual(Array.from(a.logits), Array.from((await local.logits('Once upon a time')).logits));
  const pieces = [];
  for await (const p of remote.generate('', { temperature: 0, maxTokens: 200 })) pieces.push(p);
  assert.equal(pieces.join(''), LLAMA2C_GREEDY_200);
  assert.ok(pieces.length > 50, 'streamed piece by piece');
  assert.equal(remote.lastStats.generatedTokens, 200);
  assert.ok(remote.stats.decodeTokensPerSecond > 0);
  const s = await remote.complete('Once', { temperature: 0, maxTokens: 10 });
  assert.equal(s.text, (await local.complete('Once', { temperature: 0, maxTokens: 10 })).text);
  const ppl = await remote.perplexity('Once upon a time, there was a little girl.');
  assert.equal(ppl.perplexity, (await local.perplexity('Once upon a time, there was a little girl.')).perplexity);
  const chat = [];
  for await (const p of remote.chat([{ role: 'user', content: 'Tell me a story' }], { temperature: 0, maxTokens: 12 })) chat.push(p);
  assert.equal(remote.lastStats.chat.format, 'plain');
});

test('abort reaches the worker within one token; breaking out frees the model for the next call', async () => {
  const ac = new AbortController();
  const pieces = [];
  await assert.rejects(async () => {
    for await (const p of remote.generate('Once', { temperature: 0, maxTokens: 200, ignoreEos: true, signal: ac.signal })) {
      pieces.push(p);
      if (pieces.length === 3) ac.abort(new Error('stop now'));
    }
  }, /stop now/);
  assert.equal(pieces.length, 3);
  // the worker runs at most 4 pieces ahead of the consumer and stops at the next token
  assert.ok(remote.lastStats.generatedTokens <= 12, `worker generated ${remote.lastStats.generatedTokens} tokens`);

  for await (const p of remote.generate('Once', { temperature: 0, maxTokens: 200 })) {
    assert.equal(typeof p, 'string');
    break;
  }
  assert.equal((await remote.logits('Once')).logits.length, 512);
  const s = await remote.complete('Once', { temperature: 0, maxTokens: 3 });
  assert.equal(s.generatedTokens, 3);
});

test('errors cross with their code, file and field', async () => {
  await assert.rejects(remote.complete('x', { temperature: -1 }), (e) => e instanceof TrilliumError && e.code === 'BAD_ARGUMENT' && /temperature/.test(e.message));
  await assert.rejects(Trillium.load('/nonexistent/pack', { wasm: needWasm(), worker: true }),
    (e) => e instanceof TrilliumError && e.code === 'MISSING_FILE' && e.file === 'manifest.json');
  await assert.rejects(Trillium.load({ readText() {}, readInto() {}, describe() {} }, { worker: true }), (e) => e.code === 'BAD_ARGUMENT');
  await assert.rejects(Trillium.load('/x', { worker: 'sometimes' }), (e) => e.code === 'BAD_ARGUMENT');
});

test('progress, warnings and the progressive upgrade arrive through the proxy', async () => {
  const srv = await servePack(await lowrankPack());
  try {
    const progress = [];
    const upgrades = [];
    const m = await Trillium.load(srv.url, {
      wasm: needWasm(), worker: true, progressive: true, cache: false,
      onProgress: (p) => progress.push(p), onUpgrade: (v) => upgrades.push(v.id),
    });
    assert.ok(progress.length > 0 && progress.every((p) => typeof p.loaded === 'number'));
    const v = await m.upgraded;
    assert.equal(v.id, 'r0.75');
    assert.deepEqual(upgrades, ['r0.75']);
    // state pushed with the upgrade
    assert.equal(m.variant.id, 'r0.75');
    const direct = await Trillium.load(srv.url, { wasm: needWasm(), variant: 'r0.75', cache: false });
    assert.deepEqual(Array.from((await m.logits('Hi')).logits), Array.from((await direct.logits('Hi')).logits));
    direct.dispose();
    await m.dispose();
    await assert.rejects(m.logits('Hi'), (e) => e.code === 'DISPOSED');
  } finally {
    await srv.close();
  }
});

test('a load can be aborted; a process that forgets dispose() still exits', async () => {
  const ac = new AbortController();
  ac.abort(new Error('never mind'));
  await assert.rejects(Trillium.load(await stories260K(), { wasm: needWasm(), worker: true, signal: ac.signal }), /never mind/);
  const script = `import { Trillium } from ${JSON.stringify(ROOT + '/web/src/node.js')};
    const m = await Trillium.load(${JSON.stringify(await stories260K())}, { wasm: ${JSON.stringify(needWasm())}, worker: true });
    console.log((await m.complete('Once', { temperature: 0, maxTokens: 5 })).generatedTokens);`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30000 });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), '5');
});
