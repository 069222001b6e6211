#!/usr/bin/env node
// Browser end-to-end check of the npm package's browser entry (web/src/index.js)
// in headless Chromium: a page and a module worker load a stories260K pack over
// http, generate greedily, and must reproduce llama2.c's published text.
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
import { LLAMA2C_GREEDY_200, ROOT, needWasm, stories260K } from './helpers.mjs';

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
const TYPES = { '.js': 'text/javascript', '.json': 'application/json', '.wasm': 'application/wasm', '.html': 'text/html' };

const PAGE = `<!doctype html><meta charset="utf-8"><script type="module">
import { Trillium } from '/web/src/index.js';
window.pageResult = (async () => {
  const m = await Trillium.load('/pack/', { wasm: '/trillium.wasm' });
  let text = '';
  for await (const piece of m.generate('', { temperature: 0, maxTokens: 200 })) text += piece;
  const { logits } = await m.logits('Once upon a time');
  m.dispose();
  return { text, vocab: logits.length };
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
  postMessage({ text: s.text });
} catch (e) { postMessage({ error: String(e?.stack || e) }); }`;

const server = createServer((req, res) => {
  const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
  let body;
  let file;
  if (path === '/') [body, file] = [PAGE, 'index.html'];
  else if (path === '/worker.js') [body, file] = [WORKER, 'worker.js'];
  else if (path === '/trillium.wasm') file = wasm;
  else if (path.startsWith('/pack/')) file = join(pack, path.slice(6));
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
try {
  const page = await browser.newPage();
  page.on('pageerror', (e) => console.error('pageerror:', e.message));
  await page.goto(`http://127.0.0.1:${server.address().port}/`);
  const onPage = await page.evaluate(() => window.pageResult);
  const inWorker = await page.evaluate(() => window.workerResult);
  for (const [where, r] of [['page', onPage], ['module worker', inWorker]]) {
    try {
      assert.equal(r.error, undefined, r.error);
      assert.equal(r.text, LLAMA2C_GREEDY_200);
      console.log(`ok - ${where}: greedy text equals llama2.c`);
    } catch (e) {
      failed = true;
      console.error(`not ok - ${where}: ${e.message}`);
    }
  }
  if (onPage.vocab !== 512) {
    failed = true;
    console.error(`not ok - page: logits length ${onPage.vocab}`);
  }
} finally {
  await browser.close();
  server.close();
}
process.exit(failed ? 1 : 0);
