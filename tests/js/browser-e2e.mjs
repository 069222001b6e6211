#!/usr/bin/env node
// Browser end-to-end check of the npm package's browser entry (web/src/index.js)
// in headless Chromium:
//   - a page loads a stories260K pack over http; by default the engine runs in
//     the package's module Worker (RemoteModel) and must reproduce llama2.c's
//     greedy text; a second load comes from the Cache API with no pack request;
//     chat and abort work through the worker;
//   - the budget uses navigator.deviceMemory and a progressive load of a
//     low-rank pack upgrades to the largest variant;
//   - a user's own module worker runs the engine in-process.
//
// Not part of `node --test tests/js/` (it needs Chromium and playwright-core):
//   npm install --no-save playwright-core        # at the repo root (node_modules/ is ignored)
//   TRL_WASM=build/wasm node tests/js/browser-e2e.mjs
// Env: TRL_WASM, TRL_CONVERT, TRL_PACK as for the other JS tests; CHROMIUM (default /usr/bin/chromium).
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { extname, join } from 'node:path';
import { LLAMA2C_GREEDY_200, ROOT, lowrankPack, needWasm, stories260K } from './helpers.mjs';

const require = createRequire(import.meta.url);
let chromium;
try {
  ({ chromium } = require('playwright-core'));
} catch {
  console.error('browser-e2e: playwright-core is not installed (npm install --no-save playwright-core)');
  process.exit(1);
}
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
assert.ok(existsSync(executablePath), `Chromium not found at ${executablePath} (apt-get install chromium, or set CHROMIUM)`);

const wasm = needWasm();
const pack = await stories260K();
const lr = await lowrankPack();
const TYPES = { '.js': 'text/javascript', '.json': 'application/json', '.wasm': 'application/wasm', '.html': 'text/html' };

const PAGE = `<!doctype html><meta charset="utf-8"><script type="module">
import { Trillium } from '/web/src/index.js';
const count = () => fetch('/count').then((r) => r.json());
window.pageResult = (async () => {
  const r = {};
  const m = await Trillium.load('/pack/', { wasm: '/trillium.wasm' });
  r.kind = m.constructor.name;
  let text = '';
  for await (const piece of m.generate('', { temperature: 0, maxTokens: 200 })) text += piece;
  r.text = text;
  r.vocab = (await m.logits('Once upon a time')).logits.length;
  r.tokens = await m.tokenize('Once');
  let chat = '';
  for await (const piece of m.chat([{ role: 'user', content: 'Tell me a story' }], { temperature: 0, maxTokens: 10 })) chat += piece;
  r.chatFormat = m.lastStats.chat.format;
  const ac = new AbortController();
  const pieces = [];
  try {
    for await (const p of m.generate('Once', { temperature: 0, maxTokens: 200, ignoreEos: true, signal: ac.signal })) {
      pieces.push(p);
      if (pieces.length === 3) ac.abort(new Error('stop'));
    }
  } catch (e) { r.abort = e.message; }
  r.abortPieces = pieces.length;
  r.ttft = m.stats.timeToFirstTokenMs;
  await m.dispose();
  // second load: from the Cache API, no request for the pack
  const before = await count();
  const m2 = await Trillium.load('/pack/', { wasm: '/trillium.wasm' });
  r.secondRequests = (await count()) - before;
  r.secondFromCache = m2.info.cache.fromCacheBytes;
  r.cacheStore = m2.info.cache.store;
  await m2.dispose();
  // variant picking with navigator.deviceMemory; progressive upgrade in the worker
  const m3 = await Trillium.load('/lr/', { wasm: '/trillium.wasm', progressive: true });
  r.deviceMemory = navigator.deviceMemory;
  r.firstVariant = m3.variant.id;
  r.reason = m3.variant.reason;
  r.upgraded = (await m3.upgraded).id;
  await m3.dispose();
  return r;
})().catch((e) => ({ error: String(e?.stack || e) }));
window.workerResult = new Promise((resolve) => {
  const w = new Worker('/worker.js', { type: 'module' });
  w.onmessage = (e) => resolve(e.data);
  w.onerror = (e) => resolve({ error: e.message });
});
</script>`;
const WORKER = `import { Trillium } from '/web/src/index.js';
try {
  const m = await Trillium.load('/pack/', { wasm: '/trillium.wasm' });
  const s = await m.complete('', { temperature: 0, maxTokens: 200 });
  postMessage({ text: s.text, kind: m.constructor.name });
} catch (e) { postMessage({ error: String(e?.stack || e) }); }`;

let packRequests = 0;
const server = createServer((req, res) => {
  const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
  let body;
  let file;
  if (path === '/') [body, file] = [PAGE, 'index.html'];
  else if (path === '/count') [body, file] = [JSON.stringify(packRequests), 'count.json'];
  else if (path === '/worker.js') [body, file] = [WORKER, 'worker.js'];
  else if (path === '/trillium.wasm') file = wasm;
  else if (path.startsWith('/pack/')) {
    packRequests++;
    file = join(pack, path.slice(6));
  } else if (path.startsWith('/lr/')) file = join(lr, path.slice(4));
  else if (path.startsWith('/web/') && !path.includes('..')) file = join(ROOT, path);
  if (body === undefined) {
    if (!file || !existsSync(file) || statSync(file).isDirectory()) return res.writeHead(404).end();
    body = readFileSync(file);
  }
  res.writeHead(200, { 'content-type': TYPES[extname(file)] || 'application/octet-stream' }).end(body);
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));

const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update'],
});
let failed = false;
const check = (what, fn) => {
  try {
    fn();
    console.log(`ok - ${what}`);
  } catch (e) {
    failed = true;
    console.error(`not ok - ${what}: ${e.message}`);
  }
};
try {
  const page = await browser.newPage();
  page.on('pageerror', (e) => console.error('pageerror:', e.message));
  await page.goto(`http://127.0.0.1:${server.address().port}/`);
  const p = await page.evaluate(() => window.pageResult);
  const w = await page.evaluate(() => window.workerResult);
  check('page loads without error', () => assert.equal(p.error, undefined, p.error));
  if (!p.error) {
    check('page: the engine runs in the package worker by default', () => assert.equal(p.kind, 'RemoteModel'));
    check('page: greedy text equals llama2.c', () => assert.equal(p.text, LLAMA2C_GREEDY_200));
    check('page: logits, tokenize through the worker', () => {
      assert.equal(p.vocab, 512);
      assert.equal(p.tokens[0], 1);
    });
    check('page: chat (plain fallback)', () => assert.equal(p.chatFormat, 'plain'));
    check('page: abort within a few tokens', () => {
      assert.equal(p.abort, 'stop');
      assert.equal(p.abortPieces, 3);
    });
    check('page: stats', () => assert.ok(p.ttft > 0));
    check('page: second load from the Cache API without a pack request', () => {
      assert.equal(p.secondRequests, 0);
      assert.ok(p.secondFromCache > 0);
      assert.match(p.cacheStore, /Cache API/);
    });
    check('page: auto variant from navigator.deviceMemory, progressive upgrade', () => {
      assert.ok(p.deviceMemory > 0);
      assert.equal(p.firstVariant, 'r0.25');
      assert.match(p.reason, /deviceMemory \d+ GiB x 0\.75|jsHeapSizeLimit|wasm32/);
      assert.equal(p.upgraded, 'r0.75');
    });
  }
  check('own module worker: in-process engine, greedy text equals llama2.c', () => {
    assert.equal(w.error, undefined, w.error);
    assert.equal(w.kind, 'Model');
    assert.equal(w.text, LLAMA2C_GREEDY_200);
  });
} finally {
  await browser.close();
  server.close();
}
process.exit(failed ? 1 : 0);
