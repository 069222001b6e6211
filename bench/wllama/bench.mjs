#!/usr/bin/env node
// Trillium vs wllama (llama.cpp in WebAssembly) on the same weights, in the
// same headless Chromium, in one run.
//
//   bench/make_gguf.py build/bench/wllama --size 100m --convert build/native/converter/trillium-convert
//   node bench/wllama/bench.mjs [--dir build/bench/wllama] [--sizes 100m] [--types tq2_0,tq1_0,q4_0,q8_0,f16]
//        [--variants bcq2,lowrank] [--threads 1,2] [--repeats 3] [--iters 1] [--gen 128] [--long 512]
//        [--plan 700m:tq2_0,q4_0:1] [--out docs/bench/wllama.json]
//
// For each (size, type, threads) and each repeat, each engine runs in a fresh
// headless Chromium (fresh profile: cold HTTP cache, empty Cache Storage and
// OPFS), engines interleaved and their order alternating per repeat, so drift
// and other load on the machine hit both. The GGUF goes to wllama as is; the
// pack converted from that GGUF (make_gguf.py) goes to Trillium. --variants
// adds Trillium-only rows (packs converted from the F16 GGUF). Per run:
//   load_ms      URL -> ready (the engine's own loader: download, cache, wasm
//                compile, model set-up; wllama also runs llama-server's warm-up)
//   prefill64 / prefill512 / decode   tokens/s as each engine times itself
//                (Trillium: model.complete stats; wllama: llama-server timings)
//   peak_pss_mb  peak of the summed PSS (/proc/PID/smaps_rollup) of every
//                Chromium process (this process's descendants), sampled every
//                200 ms; peak_rss_mb the same with RSS (counts shared pages twice)
//   model_bytes  the model's files (the GGUF; the pack's manifest + chunks);
//                served_bytes / served_model_bytes: response bodies the page
//                and its workers received (playwright), code included
// --plan SIZE:TYPES[:REPEATS[:THREADS]], ';'-separated, overrides sizes/types/
// repeats/threads per group, e.g. "100m:tq2_0,q4_0:3;700m:tq2_0,q4_0:1:1"
// (--variants go with the first group).
// Writes one JSON document (--out) with every run and the medians per row.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { launchChromium, serveStatic } from '../browser/serve.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '../..');
const WLLAMA = join(ROOT, 'bench/node_modules/@wllama/wllama');

const { values: a } = parseArgs({
  options: {
    dir: { type: 'string', default: join(ROOT, 'build/bench/wllama') },
    sizes: { type: 'string', default: '100m' },
    types: { type: 'string', default: 'tq2_0,tq1_0,q4_0,q8_0,f16' },
    variants: { type: 'string', default: '' },
    threads: { type: 'string', default: '1,2' },
    repeats: { type: 'string', default: '3' },
    iters: { type: 'string', default: '1' },
    gen: { type: 'string', default: '128' },
    long: { type: 'string', default: '512' },
    plan: { type: 'string', default: '' },
    engines: { type: 'string', default: 'trillium,wllama' },
    out: { type: 'string', default: join(ROOT, 'build/bench/wllama/result.json') },
    'timeout-s': { type: 'string', default: '900' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (a.help) {
  process.stdout.write(readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').slice(1, 29).map((l) => l.replace(/^\/\/ ?/, '')).join('\n') + '\n');
  process.exit(0);
}
const fail = (msg) => {
  process.stderr.write(`bench-wllama: ${msg}\n`);
  process.exit(1);
};
const log = (msg) => process.stderr.write(`${msg}\n`);
if (!existsSync(join(WLLAMA, 'esm/index.js'))) fail('@wllama/wllama is not installed: cd bench && npm ci');
for (const f of ['trillium.wasm', 'trillium-mt.js', 'trillium-mt.wasm', 'trillium-mt.worker.js']) {
  if (!existsSync(join(ROOT, 'web/dist', f))) fail(`web/dist/${f} is missing (make wasm)`);
}
const dir = resolve(a.dir);
const threadsList = a.threads.split(',').map(Number);
const engines = a.engines.split(',');
const opts = { iters: Number(a.iters), gen: Number(a.gen), long: Number(a.long) };
const banFile = join(dir, 'non-ascii-tokens.json');
if (!existsSync(banFile)) fail(`no ${banFile} (bench/make_gguf.py writes it)`);
const ban = JSON.parse(readFileSync(banFile, 'utf8')).ids;
opts.nCtx = Math.max(64 + opts.gen, opts.long + 1) + 64;

// (size, type, repeats) groups
const groups = a.plan
  ? a.plan.split(';').filter(Boolean).map((g) => {
    const [size, types, reps, threads] = g.split(':');
    return { size, types: types.split(','), repeats: Number(reps || a.repeats), threads: threads ? threads.split(',').map(Number) : threadsList, variants: [] };
  })
  : a.sizes.split(',').map((size) => ({ size, types: a.types.split(','), repeats: Number(a.repeats), threads: threadsList }));
// --variants go with the first group
const variants = a.variants.split(',').filter(Boolean);
groups.forEach((g, i) => (g.variants = i === 0 ? variants : []));

// Rows: one per (size, type or variant, threads); each lists its engine runs.
const rows = [];
for (const g of groups) {
  for (const type of [...g.types, ...g.variants.map((v) => `trillium:${v}`)]) {
    const variant = type.startsWith('trillium:') ? type.slice(9) : null;
    const name = `synth-${g.size}-${variant ?? type}`;
    const pack = join(dir, name);
    const gguf = join(dir, `${name}.gguf`);
    const eng = variant ? engines.filter((e) => e === 'trillium') : engines;
    if (eng.includes('trillium') && !existsSync(join(pack, 'manifest.json'))) fail(`no pack ${pack} (bench/make_gguf.py ${dir} --size ${g.size} --convert ...)`);
    if (eng.includes('wllama') && !existsSync(gguf)) fail(`no GGUF ${gguf} (bench/make_gguf.py)`);
    const packBytes = eng.includes('trillium') ? statSync(join(pack, 'manifest.json')).size
      + JSON.parse(readFileSync(join(pack, 'manifest.json'), 'utf8')).chunks.reduce((t, c) => t + c.bytes, 0) : null;
    const ggufBytes = eng.includes('wllama') ? statSync(gguf).size : null;
    for (const threads of g.threads) {
      rows.push({ files: { trillium: packBytes, wllama: ggufBytes }, size: g.size, type: variant ?? type, trillium_only: !!variant, threads, repeats: g.repeats, engines: eng, pack: name, gguf: `${name}.gguf`, runs: [] });
    }
  }
}

const PAGE = `<!doctype html><meta charset="utf-8"><title>trillium vs wllama</title>
<script type="module">
try { await import('/bench/wllama/page.mjs'); } catch (e) { window.benchReady = 'cannot import the page module: ' + (e?.stack || e); }
</script>`;
const server = await serveStatic({
  pages: { '/': PAGE },
  roots: { '/web/': join(ROOT, 'web'), '/bench/wllama/': HERE, '/wllama/': join(WLLAMA, 'esm'), '/models/': dir },
});

// ---- memory of the browser: every descendant of this process
function descendants() {
  const kids = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const s = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[1]);
      if (!kids.has(ppid)) kids.set(ppid, []);
      kids.get(ppid).push(Number(d));
    } catch { /* gone */ }
  }
  const out = [];
  const stack = [process.pid];
  while (stack.length) for (const k of kids.get(stack.pop()) ?? []) out.push(k), stack.push(k);
  return out;
}
function memNow() {
  let pss = 0;
  let rss = 0;
  for (const pid of descendants()) {
    try {
      const t = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
      pss += Number(/^Pss:\s+(\d+)/m.exec(t)?.[1] ?? 0);
      rss += Number(/^Rss:\s+(\d+)/m.exec(t)?.[1] ?? 0);
    } catch { /* gone */ }
  }
  return { pss: pss / 1024, rss: rss / 1024 };
}

const loadavg = () => Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
let chromiumVersion = null;

async function runOnce(row, engine) {
  const browser = await launchChromium();
  chromiumVersion ??= browser.version();
  const peak = { pss: 0, rss: 0 };
  let idle = null;
  const timer = setInterval(() => {
    const m = memNow();
    peak.pss = Math.max(peak.pss, m.pss);
    peak.rss = Math.max(peak.rss, m.rss);
  }, 200);
  try {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(`console.error: ${m.text()}`);
    });
    page.on('requestfailed', (q) => errors.push(`request failed: ${q.url()} ${q.failure()?.errorText}`));
    await page.goto(server.origin + '/');
    await page.waitForFunction(() => window.benchReady !== undefined, null, { timeout: 60000 }).catch((e) => {
      throw new Error(`${e.message}\n${errors.join('\n')}`);
    });
    const ready = await page.evaluate(() => window.benchReady);
    if (ready !== true) throw new Error(String(ready));
    idle = memNow();
    // bytes downloaded: every response body of the run, the page's and its workers'
    const served = { bytes: 0, model: 0 };
    const pending = [];
    ctx.on('requestfinished', (q) => pending.push(q.sizes().then((z) => {
      served.bytes += z.responseBodySize;
      if (new URL(q.url()).pathname.startsWith('/models/')) served.model += z.responseBodySize;
    }, () => {})));
    const la = loadavg();
    const o = {
      ...opts,
      engine,
      threads: row.threads,
      ban: engine === 'wllama' ? ban : undefined,
      url: engine === 'wllama' ? `${server.origin}/models/${row.gguf}` : `${server.origin}/models/${row.pack}/`,
    };
    page.setDefaultTimeout(Number(a['timeout-s']) * 1000);
    const r = await page.evaluate((o) => window.runEngine(o), o);
    if (r.error) throw new Error(`${engine} ${row.pack} threads ${row.threads}: ${r.error}${errors.length ? `\n${errors.join('\n')}` : ''}`);
    if (!r.crossOriginIsolated) throw new Error('the page is not cross-origin isolated (no threads)');
    await Promise.all(pending);
    const m = memNow();
    peak.pss = Math.max(peak.pss, m.pss);
    peak.rss = Math.max(peak.rss, m.rss);
    return {
      engine, ...r.result, tokens: undefined, first_tokens: r.result.tokens?.slice?.(0, 8) ?? null,
      bytes: served.bytes, model_bytes: served.model,
      peak_pss_mb: Math.round(peak.pss), peak_rss_mb: Math.round(peak.rss), idle_pss_mb: Math.round(idle.pss),
      loadavg_start: la, loadavg_end: loadavg(),
    };
  } finally {
    clearInterval(timer);
    await browser.close();
  }
}

const median = (v) => {
  const s = v.filter((x) => Number.isFinite(x)).sort((x, y) => x - y);
  if (!s.length) return null;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const r1 = (v) => (v === null ? null : Math.round(v * 10) / 10);

function summarize(row, engine) {
  const runs = row.runs.filter((x) => x.engine === engine && !x.error);
  if (!runs.length) return null;
  const s = runs.flatMap((x) => x.samples);
  return {
    runs: runs.length,
    samples: s.length,
    load_ms: Math.round(median(runs.map((x) => x.loadMs))),
    prefill64: r1(median(s.map((x) => x.prefill64))),
    prefill512: r1(median(s.map((x) => x.prefill512))),
    decode: r1(median(s.map((x) => x.decode))),
    decode_min: r1(Math.min(...s.map((x) => x.decode))),
    decode_max: r1(Math.max(...s.map((x) => x.decode))),
    peak_pss_mb: Math.round(median(runs.map((x) => x.peak_pss_mb))),
    peak_rss_mb: Math.round(median(runs.map((x) => x.peak_rss_mb))),
    idle_pss_mb: Math.round(median(runs.map((x) => x.idle_pss_mb))),
    model_bytes: row.files[engine],
    served_model_bytes: median(runs.map((x) => x.model_bytes)),
    served_bytes: median(runs.map((x) => x.bytes)),
    build: runs[0].build,
    threads: runs[0].threads,
    loadavg: r1(median(runs.map((x) => (x.loadavg_start + x.loadavg_end) / 2))),
  };
}

const version = (file) => JSON.parse(readFileSync(file, 'utf8')).version;
let libllama = null;
try {
  libllama = /LIBLLAMA_VERSION = "([^"]+)"/.exec(readFileSync(join(WLLAMA, 'esm/index.js'), 'utf8'))?.[1] ?? null;
} catch { /* unknown */ }
let gitRev = null;
try {
  gitRev = execFileSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
} catch { /* not a checkout */ }

const out = {
  date: new Date().toISOString(),
  command: `node bench/wllama/bench.mjs ${process.argv.slice(2).join(' ')}`,
  machine: { cpus: cpus().length, cpu: cpus()[0]?.model, mem_gb: Math.round(totalmem() / 2 ** 30), node: process.version },
  chromium: null,
  wllama: { version: version(join(WLLAMA, 'package.json')), libllama },
  trillium: { version: version(join(ROOT, 'web/package.json')), git: gitRev },
  options: { ...opts, threads: threadsList, engines },
  method: {
    load: 'URL -> ready in the page: Trillium.load(packUrl) / Wllama.loadModelFromUrl(ggufUrl), fresh browser profile (cold caches)',
    speed: 'token ids; Trillium model.complete() prefillMs/decodeMs, wllama llama-server timings prompt_ms/predicted_ms; decode = generated tokens / decode time (first token sampled from the prefill logits)',
    memory: 'peak of the summed PSS of all Chromium processes (/proc/PID/smaps_rollup), sampled every 200 ms, includes the browser itself (idle_pss_mb: the same just before loading)',
    activations: 'Trillium ternary packs: --act-quant int8 (per-token absmax); other Trillium packs float activations; llama.cpp quantizes activations to Q8_K (TQ*) / Q8_0 (Q4_0, Q8_0) blocks',
  },
  rows: [],
};

let failures = 0;
const maxRepeats = Math.max(...rows.map((r) => r.repeats));
const t0 = Date.now();
try {
  for (let rep = 0; rep < maxRepeats; rep++) {
    for (const row of rows) {
      if (rep >= row.repeats) continue;
      const order = rep % 2 ? [...row.engines].reverse() : row.engines;
      for (const engine of order) {
        const t = Date.now();
        try {
          const r = await runOnce(row, engine);
          row.runs.push(r);
          const s = r.samples;
          log(`[${((Date.now() - t0) / 1000).toFixed(0)}s] ${row.pack} t${row.threads} ${engine} rep ${rep}: load ${r.loadMs.toFixed(0)} ms, `
            + `prefill64 ${median(s.map((x) => x.prefill64)).toFixed(1)}, prefill512 ${median(s.map((x) => x.prefill512)).toFixed(1)}, `
            + `decode ${median(s.map((x) => x.decode)).toFixed(1)} tok/s, peak ${r.peak_pss_mb} MB, ${(r.model_bytes / 1e6).toFixed(1)} MB, la ${r.loadavg_start} (${((Date.now() - t) / 1000).toFixed(0)} s)`);
        } catch (e) {
          failures++;
          row.runs.push({ engine, error: String(e?.message || e).slice(0, 2000) });
          log(`${row.pack} t${row.threads} ${engine} rep ${rep}: FAILED ${String(e?.message || e).slice(0, 500)}`);
        }
      }
    }
  }
} finally {
  server.close();
}

out.chromium = chromiumVersion;
out.wall_s = Math.round((Date.now() - t0) / 1000);
for (const row of rows) {
  const t = summarize(row, 'trillium');
  const w = summarize(row, 'wllama');
  const ratio = (k, inv = false) => (t && w && t[k] && w[k] ? Math.round((inv ? w[k] / t[k] : t[k] / w[k]) * 100) / 100 : null);
  out.rows.push({
    size: row.size, type: row.type, trillium_only: row.trillium_only, threads: row.threads, pack: row.pack, gguf: row.gguf,
    trillium: t, wllama: w,
    ratio: w ? {
      prefill64: ratio('prefill64'), prefill512: ratio('prefill512'), decode: ratio('decode'),
      load_speedup: ratio('load_ms', true), peak_pss: ratio('peak_pss_mb'), model_bytes: ratio('model_bytes'),
    } : null,
    errors: row.runs.filter((x) => x.error).map((x) => `${x.engine}: ${x.error.split('\n')[0]}`),
    runs: row.runs.map(({ samples, ...x }) => ({ ...x, samples: samples?.map((s) => Object.fromEntries(Object.entries(s).map(([k, v]) => [k, r1(v)]))) })),
  });
}
// Trillium ternary vs wllama Q4_0 decode on the same model and threads (the issue's 1.5x target)
out.cross = [];
for (const row of out.rows.filter((r) => r.type === 'tq2_0' && r.trillium)) {
  const q4 = out.rows.find((r) => r.type === 'q4_0' && r.size === row.size && r.threads === row.threads && r.wllama);
  if (q4) {
    out.cross.push({
      size: row.size, threads: row.threads, trillium_tq2_0_decode: row.trillium.decode, wllama_q4_0_decode: q4.wllama.decode,
      ratio: Math.round((row.trillium.decode / q4.wllama.decode) * 100) / 100,
      trillium_bytes: row.trillium.model_bytes, wllama_q4_0_bytes: q4.wllama.model_bytes,
    });
  }
}
mkdirSync(dirname(resolve(a.out)), { recursive: true });
writeFileSync(resolve(a.out), JSON.stringify(out, null, 1) + '\n');
log(`wrote ${resolve(a.out)} (${out.wall_s} s${failures ? `, ${failures} failed runs` : ''})`);
if (failures) process.exitCode = 1;
