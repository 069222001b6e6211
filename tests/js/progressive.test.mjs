// Progressive loading: with progressive: true the model is usable once the
// smallest nested variant (r0.25, tier 0) is in; the rest of the target's
// tiers download in the background and the model switches to the target
// (r0.75) at the next call or between two tokens. After the switch its logits
// equal a direct load of the target, and the tokens of a running greedy
// generation are the target's own greedy choices.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Trillium } from '../../web/src/node.js';
import { copyLowrankPack, needWasm, readManifestJson, sendBody, servePack } from './helpers.mjs';

let pack;
let direct; // id -> Model loaded directly
before(async () => {
  pack = await copyLowrankPack();
  direct = {};
  for (const id of ['r0.25', 'r0.75']) direct[id] = await Trillium.load(pack, { wasm: needWasm(), variant: id, cache: false });
});
after(() => {
  for (const m of Object.values(direct ?? {})) m.dispose();
});

const argmax = (a) => a.reduce((best, v, i) => (v > a[best] ? i : best), 0);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A server that holds back every chunk of a tier > 0 until release(). */
async function holdingServer(dir) {
  const man = readManifestJson(dir);
  const late = new Set(man.chunks.filter((c) => c.tier > 0).map((c) => c.file));
  const held = [];
  let open = false;
  const srv = await servePack(dir, ({ res, name, body, range }) => {
    if (!late.has(name) || open) return false;
    held.push(() => sendBody(res, body, range, name));
    return true;
  });
  srv.held = held;
  srv.late = late.size;
  srv.release = () => {
    open = true;
    for (const f of held.splice(0)) f();
  };
  return srv;
}

test('generation starts on the small variant; the upgrade arrives between two tokens of a running generation', async () => {
  const srv = await holdingServer(pack);
  const progress = [];
  let m;
  try {
    m = await Trillium.load(srv.url, {
      wasm: needWasm(), variant: 'auto', progressive: true, cache: false,
      onProgress: (p) => progress.push(p),
    });
    assert.equal(m.variant.id, 'r0.25');
    assert.equal(m.variant.target, 'r0.75');
    assert.equal(m.variant.upgrading, true);
    assert.match(m.variant.reason, /^progressive: r0\.25 first, r0\.75 as its tiers arrive \(fits: /);
    await sleep(50);
    // the later tiers' chunks are requested together (bounded concurrency) and held back
    assert.equal(srv.held.length, srv.late, 'the later tiers were asked for and are being held back');
    assert.ok(progress.some((p) => p.phase === 'load' && p.variant === 'r0.25'));

    // the small model works, and is the small variant
    const prompt = m.tokenize('Once upon a time');
    const small = await m.logits(prompt);
    assert.deepEqual(Array.from(small.logits), Array.from((await direct['r0.25'].logits(prompt)).logits));

    // a long greedy generation, paced by the consumer; the tiers arrive during it
    const it = m.generate(prompt, { temperature: 0, maxTokens: 120, ignoreEos: true });
    let n = 0;
    let r;
    while (!(r = await it.next()).done) {
      if (++n === 3) srv.release();
      await sleep(2);
    }
    const s = r.value;
    assert.ok(s.upgradedAt !== null && s.upgradedAt > 0 && s.upgradedAt < s.generatedTokens, `upgradedAt ${s.upgradedAt} of ${s.generatedTokens}`);
    assert.equal(s.variant, 'r0.75');
    assert.equal(m.variant.id, 'r0.75');
    assert.equal(m.variant.upgrading, false);
    assert.match(m.variant.reason, /^upgraded from r0\.25 when its tiers arrived/);
    assert.ok(progress.some((p) => p.phase === 'upgrade' && p.variant === 'r0.75'));
    assert.deepEqual(await m.upgraded, m.variant);

    // Before the switch the tokens are r0.25's greedy picks, after it r0.75's.
    const toks = [...prompt, ...s.tokens];
    const k0 = prompt.length;
    for (let k = 0; k < s.tokens.length; k++) {
      const who = k < s.upgradedAt ? 'r0.25' : 'r0.75';
      const l = (await direct[who].logits(toks.slice(0, k0 + k))).logits;
      assert.equal(argmax(l), s.tokens[k], `token ${k} is ${who}'s greedy choice`);
    }

    // after the upgrade: exactly the big variant
    for (const text of ['Once upon a time', 'Hello world', 'a']) {
      assert.deepEqual(Array.from((await m.logits(text)).logits), Array.from((await direct['r0.75'].logits(text)).logits), text);
    }
    assert.equal(m.info.variant, 'r0.75');
    assert.equal(m.info.tensors, direct['r0.75'].info.tensors);
  } finally {
    m?.dispose();
    await srv.close();
  }
});

test('an idle model switches as soon as the upgrade is in; explicit targets; a smallest target loads plainly', async () => {
  const srv = await servePack(pack);
  try {
    const m = await Trillium.load(srv.url, { wasm: needWasm(), progressive: true, cache: false });
    const v = await m.upgraded;
    assert.equal(v.id, 'r0.75');
    assert.equal(m.variant.id, 'r0.75');
    assert.deepEqual(Array.from((await m.logits('Hi')).logits), Array.from((await direct['r0.75'].logits('Hi')).logits));
    assert.ok(m.stats.upgradeMs >= 0);
    m.dispose();
    // an explicit target works too, and a target that is itself the smallest loads plainly
    const mid = await Trillium.load(srv.url, { wasm: needWasm(), progressive: true, variant: 'r0.5', cache: false });
    assert.equal(mid.variant.id, 'r0.25');
    assert.equal((await mid.upgraded).id, 'r0.5');
    mid.dispose();
    const smallest = await Trillium.load(srv.url, { wasm: needWasm(), progressive: true, variant: 'r0.25', cache: false });
    assert.equal(smallest.variant.upgrading, false);
    assert.equal((await smallest.upgraded).id, 'r0.25');
    smallest.dispose();
  } finally {
    await srv.close();
  }
});

test('a failed upgrade leaves the small variant working and says why', async () => {
  const man = readManifestJson(pack);
  const last = man.chunks.find((c) => c.tier === 2).file;
  const srv = await servePack(pack, ({ res, name }) => name === last && (res.writeHead(404).end(), true));
  try {
    const m = await Trillium.load(srv.url, { wasm: needWasm(), progressive: true, cache: false, retryDelayMs: 1 });
    await assert.rejects(m.upgraded, (e) => e.code === 'MISSING_FILE' && e.file === last);
    assert.equal(m.variant.id, 'r0.25');
    assert.match(m.variant.upgradeError, /not found \(HTTP 404\)/);
    assert.equal(m.variant.upgrading, false);
    assert.deepEqual(Array.from((await m.logits('Hi')).logits), Array.from((await direct['r0.25'].logits('Hi')).logits));
    m.dispose();
  } finally {
    await srv.close();
  }
});

test('dispose during the upgrade stops it', async () => {
  const srv = await holdingServer(pack);
  try {
    const m = await Trillium.load(srv.url, { wasm: needWasm(), progressive: true, cache: false });
    await sleep(20);
    m.dispose();
    srv.release();
    await assert.rejects(m.upgraded, (e) => e.code === 'DISPOSED' || e.name === 'AbortError' || e.code === 'IO');
  } finally {
    await srv.close();
  }
});
