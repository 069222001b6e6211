// Shared setup for the JS tests: where the wasm build and the converter are,
// and packs converted from the real stories260K model.
//
//   TRL_WASM     trillium.wasm, or a directory holding it (a wasm build dir
//                or web/dist); default build/wasm/wasm_glue/trillium.wasm
//   TRL_CONVERT  the native trillium-convert; default build/native/converter/trillium-convert
//   TRL_PACK     optional: an already converted stories260K pack (skips conversion)
//
// Missing prerequisites FAIL the tests that need them (never skip): a green
// run must mean the wasm build was exercised.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const CLI = join(ROOT, 'web/bin/trillium.js');
// The repo's copy of the default model (models/stories260K, with its attribution).
export const MODEL_DIR = fileURLToPath(new URL('../../models/stories260K', import.meta.url));
export const MODEL_BIN = process.env.TRL_MODEL_BIN || join(MODEL_DIR, 'stories260K.bin');
export const MODEL_TOK = process.env.TRL_MODEL_TOK || join(MODEL_DIR, 'tok512.bin');

function resolveWasm(p) {
  if (existsSync(p) && statSync(p).isDirectory()) {
    for (const c of ['trillium.wasm', 'wasm_glue/trillium.wasm', 'dist/trillium.wasm']) {
      if (existsSync(join(p, c))) return join(p, c);
    }
    return join(p, 'trillium.wasm');
  }
  return p;
}

export const WASM = resolveWasm(resolve(ROOT, process.env.TRL_WASM || 'build/wasm/wasm_glue/trillium.wasm'));
export const CONVERT = resolve(ROOT, process.env.TRL_CONVERT || 'build/native/converter/trillium-convert');

export function needWasm() {
  assert.ok(existsSync(WASM), `trillium.wasm not found at ${WASM}: build it (emcmake cmake -S . -B build/wasm && cmake --build build/wasm) or set TRL_WASM`);
  return WASM;
}

export function needConverter() {
  assert.ok(existsSync(CONVERT), `trillium-convert not found at ${CONVERT}: build it (cmake -S . -B build/native && cmake --build build/native) or set TRL_CONVERT`);
  assert.ok(existsSync(MODEL_BIN), `model checkpoint not found at ${MODEL_BIN}`);
  assert.ok(existsSync(MODEL_TOK), `tokenizer not found at ${MODEL_TOK}`);
  return CONVERT;
}

const tmpRoots = [];
export function tmpDir(prefix = 'trl-js-') {
  const d = mkdtempSync(join(tmpdir(), prefix));
  tmpRoots.push(d);
  return d;
}
process.on('exit', () => {
  for (const d of tmpRoots) rmSync(d, { recursive: true, force: true });
});

// Tests (and the CLIs they spawn) never touch the user's download cache.
export const CACHE_DIR = tmpDir('trl-cache-');
process.env.TRILLIUM_CACHE = CACHE_DIR;

let packPromise = null;
/** A pristine stories260K pack (converted once per test process). Do not modify it: use copyPack. */
export function stories260K() {
  if (!packPromise) {
    packPromise = (async () => {
      if (process.env.TRL_PACK) {
        const p = resolve(ROOT, process.env.TRL_PACK);
        assert.ok(existsSync(join(p, 'manifest.json')), `TRL_PACK=${p} holds no manifest.json`);
        return p;
      }
      needConverter();
      const out = join(tmpDir('trl-pack-'), 'stories260K');
      execFileSync(CONVERT, [MODEL_BIN, '--tokenizer', MODEL_TOK, '-o', out], { stdio: ['ignore', 'pipe', 'pipe'] });
      assert.ok(existsSync(join(out, 'manifest.json')), `${CONVERT} wrote no manifest.json in ${out}`);
      return out;
    })();
  }
  return packPromise;
}

/** stories260K converted with extra trillium-convert arguments (e.g. ['--dtype', 'q8_0']). */
export function convertPack(args) {
  needConverter();
  const out = join(tmpDir('trl-pack-'), 'pack');
  execFileSync(CONVERT, [MODEL_BIN, '--tokenizer', MODEL_TOK, '-o', out, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  return out;
}

/**
 * Split a pack's chunk 0 in two at a tensor boundary (the converter only
 * writes one chunk for a model this small), rewriting offsets, sizes and
 * hashes: a multi-chunk pack of the same weights.
 */
export function splitFirstChunk(dir) {
  const m = readManifestJson(dir);
  const c0 = m.chunks[0];
  const data = readFileSync(join(dir, c0.file));
  const inC0 = m.tensors.filter((t) => t.chunk === 0).sort((a, b) => a.offset - b.offset);
  const cut = inC0[inC0.length >> 1].offset;
  const second = { file: 'chunk-0000b.bin', bytes: data.length - cut, sha256: '', tier: c0.tier ?? 0 };
  writeFileSync(join(dir, c0.file), data.subarray(0, cut));
  writeFileSync(join(dir, second.file), data.subarray(cut));
  c0.bytes = cut;
  c0.sha256 = createHash('sha256').update(data.subarray(0, cut)).digest('hex');
  second.sha256 = createHash('sha256').update(data.subarray(cut)).digest('hex');
  m.chunks.push(second);
  const idx = m.chunks.length - 1;
  for (const t of [...m.tensors, m.tokenizer]) {
    if (t.chunk === 0 && t.offset >= cut) {
      t.chunk = idx;
      t.offset -= cut;
    }
  }
  writeManifestJson(dir, m);
  return { cut, chunks: m.chunks.length };
}

/** A private copy of a pack, for fault injection. */
export async function copyPack() {
  const src = await stories260K();
  const dst = join(tmpDir('trl-fault-'), 'pack');
  cpSync(src, dst, { recursive: true });
  return dst;
}

export function readManifestJson(dir) {
  return JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
}
export function writeManifestJson(dir, m) {
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(m, null, 2));
}

/** Serve a directory over http on 127.0.0.1; `hook(req, res)` may answer first (return true). */
export async function serveDir(dir, hook) {
  const requests = [];
  const server = createServer((req, res) => {
    requests.push(req.url);
    if (hook && hook(req, res)) return;
    const name = decodeURIComponent(new URL(req.url, 'http://x').pathname).split('/').pop();
    const p = join(dir, name);
    if (!name || !existsSync(p)) {
      res.writeHead(404).end('not found');
      return;
    }
    const body = readFileSync(p);
    res.writeHead(200, {
      'content-type': name.endsWith('.json') ? 'application/json' : 'application/octet-stream',
      'content-length': body.length,
    });
    res.end(body);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${server.address().port}/pack/`;
  return { url, requests, close: () => new Promise((r) => server.close(r)) };
}

export const PYTHON = process.env.TRL_PYTHON || '/usr/bin/python3';

let lowrankPromise = null;
/**
 * A v2 pack with several variants: the reference generator's llama-tied
 * model (ChatML chat template, byte-level BPE) converted with
 * --lowrank 0.75,0.5,0.25 --slice 4 (variants r0.25 < r0.5 < r0.75, tiers 0..2,
 * nested rank slices). Converted once per test process; do not modify it.
 */
export function lowrankPack() {
  if (!lowrankPromise) {
    lowrankPromise = (async () => {
      assert.ok(existsSync(CONVERT), `trillium-convert not found at ${CONVERT}: build it or set TRL_CONVERT`);
      const root = tmpDir('trl-lr-');
      const hf = join(root, 'hf');
      execFileSync(PYTHON, [join(ROOT, 'tests/reference/gen_model.py'), hf, '--preset', 'llama-tied'], { stdio: ['ignore', 'pipe', 'pipe'] });
      const out = join(root, 'pack');
      execFileSync(CONVERT, [hf, '--lowrank', '0.75,0.5,0.25', '--slice', '4', '-o', out], { stdio: ['ignore', 'pipe', 'pipe'] });
      const m = readManifestJson(out);
      assert.deepEqual(m.variants.map((v) => v.id), ['r0.25', 'r0.5', 'r0.75']);
      return out;
    })();
  }
  return lowrankPromise;
}

/** A private copy of the low-rank pack. */
export async function copyLowrankPack() {
  const dst = join(tmpDir('trl-lrc-'), 'pack');
  cpSync(await lowrankPack(), dst, { recursive: true });
  return dst;
}

/**
 * Serve a pack directory on 127.0.0.1 with Range support (206, 416) and a
 * fault hook: `fault({req, res, name, range, body, n})` may answer the request
 * itself (return true); `n` counts earlier requests for the same file.
 * `log` records {name, range} per request. close() also cuts stalled connections.
 */
export async function servePack(dir, fault) {
  const log = [];
  const sockets = new Set();
  const server = createServer((req, res) => {
    const name = decodeURIComponent(new URL(req.url, 'http://x').pathname).split('/').pop();
    const range = req.headers.range ?? null;
    const n = log.filter((e) => e.name === name).length;
    log.push({ name, range });
    const p = join(dir, name);
    const body = name && existsSync(p) ? readFileSync(p) : null;
    if (fault && fault({ req, res, name, range, body, n }) === true) return;
    sendBody(res, body, range, name);
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${server.address().port}/pack/`;
  const count = (pred = () => true) => log.filter(pred).length;
  return {
    url,
    log,
    count,
    chunkRequests: () => log.filter((e) => e.name.endsWith('.bin')).length,
    close: () => new Promise((r) => {
      for (const s of sockets) s.destroy();
      server.close(r);
    }),
  };
}

/** Answer with `body` (a Buffer, or null for 404), honouring a "bytes=N-" Range header. */
export function sendBody(res, body, range, name = '') {
  if (!body) {
    res.writeHead(404).end('not found');
    return;
  }
  const type = name.endsWith('.json') ? 'application/json' : 'application/octet-stream';
  const m = range && /^bytes=(\d+)-(\d*)$/.exec(range);
  if (m) {
    const start = Number(m[1]);
    const end = m[2] ? Math.min(Number(m[2]), body.length - 1) : body.length - 1;
    if (start >= body.length) {
      res.writeHead(416, { 'content-range': `bytes */${body.length}` }).end();
      return;
    }
    const part = body.subarray(start, end + 1);
    res.writeHead(206, { 'content-type': type, 'content-length': part.length, 'content-range': `bytes ${start}-${end}/${body.length}` });
    res.end(part);
    return;
  }
  res.writeHead(200, { 'content-type': type, 'content-length': body.length });
  res.end(body);
}

/** Every file in a cache directory's chunks/ that is not a partial has the sha256 it is named by. */
export function assertCacheClean(dir) {
  const chunks = join(dir, 'chunks');
  if (!existsSync(chunks)) return 0;
  let n = 0;
  for (const f of readdirSync(chunks)) {
    if (f.endsWith('.partial') || f.includes('.tmp-')) continue;
    const got = createHash('sha256').update(readFileSync(join(chunks, f))).digest('hex');
    assert.equal(got, f, `cached chunk ${f} has sha256 ${got}`);
    n++;
  }
  return n;
}

/** Run the CLI; resolves {code, stdout, stderr}. */
export function runCli(args, { env = {}, timeout = 60000, input } = {}) {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { ...process.env, TRILLIUM_WASM: WASM, ...env },
      stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    if (input !== undefined) child.stdin.end(input);
    const out = [];
    const err = [];
    child.stdout.on('data', (d) => out.push(d));
    child.stderr.on('data', (d) => err.push(d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`CLI timed out: ${args.join(' ')}`));
    }, timeout);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolvePromise({ code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
  });
}

/** llama2.c's published greedy output of stories260K (test_all.py: run -t 0.0 -n 200, empty prompt: BOS + 200 sampled tokens). */
export const LLAMA2C_GREEDY_200 =
  'Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high.\n' +
  "Lily's mom said, \"Lily, let's go to the park.\" Lily was sad and didn't know what to do. She said, \"I want to play with your ball, but I can't find it.\"\n" +
  "Lily was sad and didn't know what to do. She said, \"I'm sorry, Lily. I didn't know what to do.\"\n" +
  "Lily didn't want to help her mom, so she";
