// The measurement itself, the same module in a page, in a module Worker and
// in Node (bench.mjs imports it there after web/src/node.js): load a pack,
// then time prefill and greedy decode, as `trillium bench` does (token ids,
// a different first token each run so the KV-cache prefix reuse cannot skip
// the prefill, the first run a warm-up, medians of the rest).
//
// api 'binding': the chunks are fetched straight into the heap and the core
//   is called through Binding with the requested thread count: the calls
//   Model makes, whatever model.js and pack.js do.
// api 'model': Trillium.load(pack, {threads}) and model.generate(); reports
//   model.info.threads / build when model.js passes them.
import { Binding } from '../../web/src/binding.js';
import { Trillium } from '../../web/src/index.js';
import { sha256Hex } from '../../web/src/platform/index.js';

const now = () => performance.now();
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const round1 = (v) => Math.round(v * 10) / 10;

/**
 * @param {object} o
 * @param {string} o.pack pack URL (browser) or directory (Node)
 * @param {number} o.threads
 * @param {'binding'|'model'} [o.api]
 * @param {number} [o.promptTokens] [o.genTokens] [o.repeats]
 * @param {object} [o.wasm] {wasm, threadsGlue} locations, when not the package defaults
 * @param {'auto'|'pthreads'|'standalone'} [o.build] (api 'binding')
 */
export async function runBench(o) {
  const nPrompt = o.promptTokens ?? 64;
  const nGen = o.genTokens ?? 64;
  const repeats = o.repeats ?? 3;
  const nCtx = nPrompt + nGen + 1;
  const env = {
    where: typeof window !== 'undefined' ? 'page' : typeof WorkerGlobalScope !== 'undefined' ? 'worker' : 'node',
    crossOriginIsolated: globalThis.crossOriginIsolated ?? null,
    hardwareConcurrency: globalThis.navigator?.hardwareConcurrency ?? null,
  };
  const patched = o.api === 'model' ? await sharedHashWorkaround() : null;
  const run = o.api === 'model' ? modelApi : bindingApi;
  const r = await run(o, { nPrompt, nGen, repeats, nCtx });
  return {
    api: o.api ?? 'binding',
    ...env,
    ...(patched ? { workaround: patched } : {}),
    threads_requested: o.threads,
    build: r.build,
    simd: r.simd,
    threads: r.threads,
    threads_note: r.note || undefined,
    prompt_tokens: nPrompt,
    gen_tokens: nGen,
    repeats,
    load_ms: round1(r.loadMs),
    prefill_tokens_per_s: round1(median(r.runs.map((x) => x.prefill))),
    decode_tokens_per_s: round1(median(r.runs.map((x) => x.decode))),
    prefill_best: round1(Math.max(...r.runs.map((x) => x.prefill))),
    decode_best: round1(Math.max(...r.runs.map((x) => x.decode))),
    // a hash of the greedy tokens of the last run: equal across thread counts
    tokens_hash: hash(r.lastTokens),
  };
}

// crypto.subtle.digest refuses views of a SharedArrayBuffer (the pthreads
// heap). Until the package's browser sha256Hex copies such views itself, the
// bench copies them for it, and says so in its output.
async function sharedHashWorkaround() {
  if (typeof SharedArrayBuffer !== 'function' || !globalThis.crypto?.subtle) return null;
  try {
    await sha256Hex(new Uint8Array(new SharedArrayBuffer(8)));
    return null;
  } catch {
    const digest = crypto.subtle.digest.bind(crypto.subtle);
    crypto.subtle.digest = (alg, data) =>
      digest(alg, ArrayBuffer.isView(data) && data.buffer instanceof SharedArrayBuffer ? data.slice() : data);
    return 'platform/browser.js sha256Hex fails on a SharedArrayBuffer view: crypto.subtle.digest wrapped to copy it';
  }
}

function hash(arr) {
  let h = 2166136261;
  for (const v of arr) h = Math.imul(h ^ v, 16777619) >>> 0;
  return h.toString(16);
}

const promptFor = (r, nPrompt, vocab) => Array.from({ length: nPrompt }, (_, i) => (r * 131 + i * 7 + 3) % vocab);

async function modelApi(o, { nPrompt, nGen, repeats, nCtx }) {
  const t0 = now();
  const model = await Trillium.load(o.pack, { ...o.wasm, threads: o.threads, contextLength: nCtx });
  const loadMs = now() - t0;
  const runs = [];
  let lastTokens = [];
  try {
    const vocab = model.info.config.vocab_size;
    for (let r = 0; r < repeats + 1; r++) {
      const st = await model.complete(promptFor(r, nPrompt, vocab), { maxTokens: nGen, temperature: 0, ignoreEos: true });
      lastTokens = st.tokens;
      if (r > 0) runs.push({ prefill: nPrompt / (st.prefillMs / 1000), decode: st.generatedTokens / (st.decodeMs / 1000) });
    }
    return { loadMs, runs, lastTokens, build: model.info.build ?? null, threads: model.info.threads ?? null, note: model.info.threadsNote, simd: model.info.simd ?? null };
  } finally {
    model.dispose();
  }
}

async function bindingApi(o, { nPrompt, nGen, repeats, nCtx }) {
  const t0 = now();
  const b = await Binding.create({ ...o.wasm, threads: o.threads, build: o.build ?? 'auto' });
  const x = b.x;
  const h = { cfg: 0, chunks: new Map(), names: 0, tensors: 0, model: 0, ctx: 0, sampler: 0 };
  try {
    // The pack straight into the heap over fetch (no pack.js: the core's
    // speed, not the loader's, and independent of its API).
    const base = o.pack.endsWith('/') ? o.pack : o.pack + '/';
    const text = await fetchOk(base + 'manifest.json').then((r) => r.text());
    const manifest = JSON.parse(text);
    const mt = b.allocString(text);
    h.cfg = b.withError('config', (err) => x.trlw_config_from_json(mt.ptr, mt.len, err));
    b.free(mt.ptr);
    const vocab = x.trlw_config_vocab_size(h.cfg);
    const variant = manifest.variants.find((v) => v.id === 'base') ?? manifest.variants[0];
    for (const [i, c] of manifest.chunks.entries()) {
      if (!variant.tiers.includes(c.tier ?? 0)) continue;
      const data = new Uint8Array(await fetchOk(base + c.file).then((r) => r.arrayBuffer()));
      if (data.length !== c.bytes) throw new Error(`${c.file}: ${data.length} bytes, manifest says ${c.bytes}`);
      const ptr = b.mallocAligned(c.bytes, c.file);
      h.chunks.set(i, ptr);
      b.u8.set(data, ptr);
    }
    const bound = manifest.tensors.filter((t) => h.chunks.has(t.chunk));
    const enc = new TextEncoder();
    const names = bound.map((t) => enc.encode(t.name));
    h.names = b.malloc(names.reduce((s, n) => s + n.length + 1, 0));
    h.tensors = x.trlw_tensors_new(bound.length) >>> 0;
    let np = h.names;
    bound.forEach((t, i) => {
      b.u8.set(names[i], np);
      b.u8[np + names[i].length] = 0;
      const two = t.shape.length === 2;
      const rc = x.trlw_tensor_set(h.tensors, i, np, b.encodingIds[t.encoding] ?? -1, t.shape.length, t.shape[0],
        two ? t.shape[1] : 0, h.chunks.get(t.chunk) + t.offset, t.bytes);
      if (rc !== 0) throw new Error(`tensor ${t.name} refused: ${b.statusStr(rc)}`);
      const p = t.params;
      if (p && Object.keys(p).length) {
        x.trlw_tensor_set_params(h.tensors, i, p.bits ?? 0, p.group ?? 0, p.pow2 ?? 0, p.scale_axis ?? 0, p.scale_blocks ?? 0);
      }
      np += names[i].length + 1;
    });
    h.model = b.withError('model', (err) => x.trlw_model_create(h.cfg, h.tensors, bound.length, err));
    h.ctx = b.ctxCreate(h.model, nCtx);
    const rankSlices = variant.rank_slices ?? null;
    if (rankSlices !== null) x.trl_ctx_set_rank_slices(h.ctx, rankSlices);
    h.sampler = b.withError('sampler', (err) => x.trlw_sampler_create(vocab, 0, 0, 1, 0, 1, 0, 1, 0, err));
    const loadMs = now() - t0;

    const runs = [];
    let lastTokens = [];
    const p = b.malloc(nPrompt * 4);
    try {
      for (let r = 0; r < repeats + 1; r++) {
        b.i32.set(promptFor(r, nPrompt, vocab), p >>> 2);
        check(b, h.ctx, x.trl_ctx_truncate(h.ctx, 0), 'truncate');
        let t = now();
        check(b, h.ctx, x.trl_ctx_prefill(h.ctx, p, nPrompt, 0), 'prefill');
        const prefillMs = now() - t;
        const toks = [];
        t = now();
        for (let i = 0; i < nGen; i++) {
          const tok = x.trlw_sample_next(h.sampler, h.ctx);
          toks.push(tok);
          if (i + 1 < nGen) check(b, h.ctx, x.trl_ctx_decode(h.ctx, tok), 'decode');
        }
        const decodeMs = now() - t;
        lastTokens = toks;
        // nGen samples take nGen - 1 decodes, as model.generate counts them
        if (r > 0) runs.push({ prefill: nPrompt / (prefillMs / 1000), decode: nGen / (decodeMs / 1000) });
      }
    } finally {
      b.free(p);
    }
    return { loadMs, runs, lastTokens, build: b.build, threads: b.threads, note: b.threadsNote, simd: b.simd ?? null };
  } finally {
    if (h.sampler) x.trl_sampler_free(h.sampler);
    if (h.ctx) x.trl_ctx_free(h.ctx);
    if (h.model) x.trl_model_free(h.model);
    if (h.tensors) x.trlw_tensors_free(h.tensors);
    if (h.cfg) x.trlw_config_free(h.cfg);
    b.free(h.names);
    for (const ptr of h.chunks.values()) b.free(ptr);
    b.dispose();
  }
}

async function fetchOk(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return r;
}

function check(b, ctx, rc, what) {
  if (rc !== 0) throw new Error(`${what}: ${b.cString(b.x.trl_ctx_last_error(ctx)) || b.statusStr(rc)}`);
}

// In a module Worker: one message in ({...options}), one out ({result} or {error}).
if (typeof WorkerGlobalScope !== 'undefined' && globalThis instanceof WorkerGlobalScope) {
  globalThis.onmessage = async (e) => {
    try {
      globalThis.postMessage({ result: await runBench(e.data) });
    } catch (err) {
      globalThis.postMessage({ error: String(err?.stack || err) });
    }
  };
}
