#!/usr/bin/env node
// The kernel benchmark (bench-kernels.c) in headless Chromium: the browser
// builds bench-kernels-web.js (single thread) and bench-kernels-web-mt.js
// (pthreads), served from 127.0.0.1 cross-origin isolated, run in a module
// Worker (where an app runs the core; default) or on the page's main thread.
//
//   cd bench && npm install            # playwright-core only; the browser is Debian's /usr/bin/chromium
//   node bench/kernels/browser.mjs [--build-dir build/bench-wasm] [--threads 1,2] [--where worker|page]
//                                  [--out-dir build/bench] [--name chromium] [--chromium-arg ARG ...]
//                                  [-- bench-kernels options]
//
// Threads 1 runs bench-kernels-web.js, N > 1 bench-kernels-web-mt.js with
// --threads N. Options after `--` go to bench-kernels (--quick, --shapes,
// --ntok, --filter). Each thread count runs in a fresh page. The JSON lines
// bench-kernels prints, with "runtime": "chromium", "where", "build" and the
// Chromium version added, go to OUT_DIR/NAME.json (threads 1) and
// OUT_DIR/NAME-mt.json (threads > 1), replaced on each run; bench-kernels'
// readable table goes to stderr as it comes. Env: CHROMIUM (default
// /usr/bin/chromium).
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { launchChromium, serveStatic } from '../browser/serve.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '../..');

const { values: a, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    'build-dir': { type: 'string', default: join(ROOT, 'build/bench-wasm') },
    threads: { type: 'string', default: '1,2' },
    where: { type: 'string', default: 'worker' },
    'out-dir': { type: 'string', default: join(ROOT, 'build/bench') },
    name: { type: 'string', default: 'chromium' },
    'chromium-arg': { type: 'string', multiple: true, default: [] },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (a.help) {
  process.stdout.write(readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').slice(1, 20).map((l) => l.replace(/^\/\/ ?/, '')).join('\n') + '\n');
  process.exit(0);
}
const fail = (msg) => {
  process.stderr.write(`bench-kernels (chromium): ${msg}\n`);
  process.exit(1);
};
const binDir = join(resolve(a['build-dir']), 'bench/kernels');
const threadsList = a.threads.split(',').map(Number);
for (const t of threadsList) if (!Number.isInteger(t) || t < 1 || t > 4) fail(`--threads: 1..4 each (the pool has 4 workers), got ${a.threads}`);
if (!['worker', 'page'].includes(a.where)) fail(`--where: worker or page, got ${a.where}`);
const files = (t) => (t > 1 ? ['bench-kernels-web-mt.js', 'bench-kernels-web-mt.wasm', 'bench-kernels-web-mt.worker.js']
  : ['bench-kernels-web.js', 'bench-kernels-web.wasm']);
for (const t of threadsList) {
  for (const f of files(t)) {
    if (!existsSync(join(binDir, f))) {
      fail(`${join(binDir, f)} is missing (cmake --build ${a['build-dir']} --target bench-kernels-web bench-kernels-web-mt)`);
    }
  }
}

const PAGE = `<!doctype html><meta charset="utf-8"><title>bench-kernels</title>
<script type="module">
import { runKernels } from '/bench/kernels/browser-runner.mjs';
const show = (m) => console.log(m.stream === 'stderr' ? m.line : '');
window.runInPage = (o) => runKernels(o, (stream, line) => show({ stream, line }))
  .then((result) => ({ result }), (e) => ({ error: String(e?.stack || e) }));
window.runInWorker = (o) => new Promise((resolve) => {
  const w = new Worker('/bench/kernels/browser-runner.mjs', { type: 'module' });
  w.onmessage = (e) => {
    if (e.data.line) return show(e.data.line);
    w.terminate();
    resolve(e.data);
  };
  w.onerror = (e) => { w.terminate(); resolve({ error: 'worker error: ' + e.message }); };
  w.postMessage(o);
});
window.benchReady = true;
</script>`;

const server = await serveStatic({ roots: { '/bench/kernels/': HERE, '/bin/': binDir }, pages: { '/': PAGE } });
const browser = await launchChromium(a['chromium-arg']).catch((e) => fail(e.message));
const version = browser.version();
process.stderr.write(`Chromium ${version}, ${a.where}, threads ${threadsList.join(',')}, bench-kernels ${positionals.join(' ')}\n`);
const outDir = resolve(a['out-dir']);
mkdirSync(outDir, { recursive: true });
const written = new Map(); // file -> lines
try {
  for (const threads of threadsList) {
    const build = threads > 1 ? 'web-mt' : 'web';
    const page = await browser.newPage();
    const problems = [];
    page.on('pageerror', (e) => problems.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'log' && m.text()) process.stderr.write(`  ${m.text()}\n`);
      else if (m.type() === 'error' || m.type() === 'warning') problems.push(`console.${m.type()}: ${m.text()}`);
    });
    await page.goto(server.origin + '/');
    await page.waitForFunction(() => window.benchReady === true, null, { timeout: 60000 });
    const args = [...positionals, ...(threads > 1 ? ['--threads', String(threads)] : [])];
    const o = { glue: `/bin/bench-kernels-${build}.js`, args };
    const r = await page.evaluate(([fn, o]) => window[fn](o), [a.where === 'worker' ? 'runInWorker' : 'runInPage', o]);
    await page.close();
    const detail = problems.length ? `\n${problems.join('\n')}` : '';
    if (r.error) fail(`threads ${threads}: ${r.error}${detail}`);
    if (r.result.rc !== 0) fail(`threads ${threads}: bench-kernels exited with ${r.result.rc}\n${r.result.stderr.join('\n')}${detail}`);
    if (!r.result.env.crossOriginIsolated) fail('the page is not cross-origin isolated');
    const extra = { runtime: 'chromium', where: r.result.env.where, build, chromium: version };
    const lines = r.result.stdout.filter((l) => l.startsWith('{')).map((l) => JSON.stringify({ ...JSON.parse(l), ...extra }));
    const file = join(outDir, `${a.name}${threads > 1 ? '-mt' : ''}.json`);
    written.set(file, [...(written.get(file) ?? []), ...lines]);
  }
} finally {
  await browser.close();
  server.close();
}
for (const [file, lines] of written) {
  writeFileSync(file, lines.join('\n') + '\n');
  process.stderr.write(`${file}: ${lines.length} results\n`);
}
