#!/usr/bin/env node
// Prefill and decode speed of the npm package in headless Chromium, with 1
// and 2 (or more) threads: the standalone trillium.wasm for 1 thread, the
// pthreads trillium-mt for more.
//
//   cd bench && npm install            # playwright-core only; the browser is Debian's /usr/bin/chromium
//   node bench/browser/bench.mjs [--pack DIR] [--threads 1,2] [--where worker,page] [--api binding|model]
//                                [--build auto|pthreads|standalone] [--wasm trillium.wasm]
//                                [--prompt-tokens 64] [--gen-tokens 64] [--repeats 3] [--node] [--no-isolation]
//
// Serves web/ (src + dist), this directory and the pack from 127.0.0.1 with
// COOP same-origin + COEP require-corp (cross-origin isolation: without it
// there is no SharedArrayBuffer and the binding falls back to one thread,
// which the output shows as build "standalone"). Each (where, threads) runs
// in a fresh page; 'worker' runs the core in a module Worker (the way an app
// should: a page's main thread may not block, so the pthreads build
// busy-waits there), 'page' on the page's main thread. --node adds the same
// runner under Node for comparison. --build pthreads runs every thread count
// (1 included) on the pthreads module, so 1 vs 2 threads compares one binary;
// --wasm serves another standalone trillium.wasm. Prints one JSON object.
// Env: CHROMIUM (default /usr/bin/chromium).
import { existsSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { launchChromium, serveStatic } from './serve.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '../..');

const { values: a } = parseArgs({
  options: {
    pack: { type: 'string', default: join(ROOT, 'build/packs/stories260K') },
    threads: { type: 'string', default: '1,2' },
    where: { type: 'string', default: 'worker,page' },
    api: { type: 'string', default: 'binding' },
    'prompt-tokens': { type: 'string', default: '64' },
    'gen-tokens': { type: 'string', default: '64' },
    repeats: { type: 'string', default: '3' },
    node: { type: 'boolean', default: false },
    'no-isolation': { type: 'boolean', default: false },
    build: { type: 'string', default: 'auto' },
    wasm: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (a.help) {
  process.stdout.write(readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').slice(1, 21).map((l) => l.replace(/^\/\/ ?/, '')).join('\n') + '\n');
  process.exit(0);
}
const fail = (msg) => {
  process.stderr.write(`bench: ${msg}\n`);
  process.exit(1);
};
const pack = resolve(a.pack);
if (!existsSync(join(pack, 'manifest.json'))) fail(`no manifest.json in ${pack} (make pack, or --pack DIR)`);
for (const f of ['trillium.wasm', 'trillium-mt.js', 'trillium-mt.wasm', 'trillium-mt.worker.js']) {
  if (!existsSync(join(ROOT, 'web/dist', f))) fail(`web/dist/${f} is missing (make wasm)`);
}
const threadsList = a.threads.split(',').map((s) => (s === 'auto' ? 'auto' : Number(s)));
const whereList = a.where.split(',');
for (const w of whereList) if (!['worker', 'page'].includes(w)) fail(`--where: worker or page, got ${w}`);
if (!['binding', 'model'].includes(a.api)) fail(`--api: binding or model, got ${a.api}`);
if (!['auto', 'pthreads', 'standalone'].includes(a.build)) fail(`--build: auto, pthreads or standalone, got ${a.build}`);
if (a.build !== 'auto' && a.api !== 'binding') fail('--build needs --api binding');
const wasmFile = a.wasm ? resolve(a.wasm) : null;
if (wasmFile && !existsSync(wasmFile)) fail(`--wasm: no file ${wasmFile}`);
const opts = {
  api: a.api,
  build: a.build,
  promptTokens: Number(a['prompt-tokens']),
  genTokens: Number(a['gen-tokens']),
  repeats: Number(a.repeats),
};

const PAGE = `<!doctype html><meta charset="utf-8"><title>trillium bench</title>
<script type="module">
let runBench;
try {
  ({ runBench } = await import('/bench/browser/runner.mjs'));
} catch (e) {
  window.benchReady = 'cannot import the runner: ' + (e?.stack || e);
}
window.runInPage = (o) => runBench(o).then((result) => ({ result }), (e) => ({ error: String(e?.stack || e) }));
window.runInWorker = (o) => new Promise((resolve) => {
  const w = new Worker('/bench/browser/runner.mjs', { type: 'module' });
  w.onmessage = (e) => { w.terminate(); resolve(e.data); };
  w.onerror = (e) => { w.terminate(); resolve({ error: 'worker error: ' + e.message }); };
  w.postMessage(o);
});
window.benchReady ??= true;
</script>`;

// Everything under web/ and bench/browser/ (the runner imports ../../web/src/),
// and the pack under /pack/. Never a path outside those roots.
const webDir = join(ROOT, 'web');
const roots = { '/web/': webDir, '/bench/browser/': HERE, '/pack/': pack };
if (wasmFile) roots['/wasm/'] = dirname(wasmFile);
const server = await serveStatic({ roots, pages: { '/': PAGE }, isolation: !a['no-isolation'] });
const { origin } = server;

const out = {
  pack,
  manifest: (() => {
    const m = JSON.parse(readFileSync(join(pack, 'manifest.json'), 'utf8'));
    const c = m.config;
    return { name: m.name, dim: c.dim, hidden_dim: c.hidden_dim, n_layers: c.n_layers, vocab_size: c.vocab_size,
      bytes: m.chunks.reduce((s, x) => s + x.bytes, 0) };
  })(),
  machine: { cpus: cpus().length, cpu: cpus()[0]?.model, node: process.version },
  chromium: null,
  runs: [],
};

const browser = await launchChromium().catch((e) => fail(e.message));
out.chromium = browser.version();
try {
  for (const where of whereList) {
    for (const threads of threadsList) {
      const page = await browser.newPage();
      const errors = [];
      page.on('pageerror', (e) => errors.push(e.message));
      page.on('console', (m) => {
        if (m.type() === 'error' || m.type() === 'warning') errors.push(`console.${m.type()}: ${m.text()}`);
      });
      await page.goto(origin + '/');
      await page.waitForFunction(() => window.benchReady !== undefined, null, { timeout: 60000 });
      const ready = await page.evaluate(() => window.benchReady);
      if (ready !== true) fail(`${ready}${errors.length ? `\n${errors.join('\n')}` : ''}`);
      const o = { ...opts, threads, pack: origin + '/pack/', ...(wasmFile ? { wasm: { wasm: `/wasm/${basename(wasmFile)}` } } : {}) };
      const r = await page.evaluate(([fn, o]) => window[fn](o), [where === 'worker' ? 'runInWorker' : 'runInPage', o]);
      await page.close();
      if (r.error) fail(`${where}, threads ${threads}: ${r.error}${errors.length ? `\n${errors.join('\n')}` : ''}`);
      out.runs.push({ ...r.result, ...(errors.length ? { console: errors } : {}) });
    }
  }
} finally {
  await browser.close();
}
try {
  if (a.node) {
    // The same runner in this process, fetching the pack from the same server.
    await import(pathToFileURL(join(webDir, 'src/node.js')).href);
    const { runBench } = await import(pathToFileURL(join(HERE, 'runner.mjs')).href);
    for (const threads of threadsList) {
      out.runs.push(await runBench({ ...opts, threads, pack: origin + '/pack/', ...(wasmFile ? { wasm: { wasm: wasmFile } } : {}) }));
    }
  }
} finally {
  server.close();
}

// Greedy decoding is deterministic and the core splits work by rows: every
// run must have produced the same tokens.
const hashes = new Set(out.runs.map((r) => r.tokens_hash));
out.same_tokens = hashes.size === 1;
// One run per line: readable, and still one JSON document.
const { runs, ...head } = out;
const headJson = JSON.stringify(head, null, 1);
process.stdout.write(`${headJson.slice(0, -2)},\n "runs": [\n${runs.map((r) => '  ' + JSON.stringify(r)).join(',\n')}\n ]\n}\n`);
if (!out.same_tokens) fail('the runs generated different tokens');
