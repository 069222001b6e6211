// trillium: run small LLaMA-family / BitNet language models with WebAssembly SIMD.
//
//   import { Trillium } from 'trillium';
//   const model = await Trillium.load('https://example.com/packs/stories260K/');
//   for await (const piece of model.generate('Once upon a time', { maxTokens: 64 })) show(piece);
//   model.dispose();
import { Binding } from './binding.js';
import { chooseVariant, estimateBudget, formatBytes, parseBytes, probeWasmMemory, variantPeak } from './budget.js';
import { CacheApiStore, MemoryStore } from './cache.js';
import { formatChat, renderTemplate } from './chat.js';
import { TrilliumError } from './errors.js';
import { DEFAULT_CONTEXT_CAP, GENERATE_DEFAULTS, Model, ctxMemoryBytes, resolveCache, selectVariant, splitSeed } from './model.js';
import { packSource, parseManifest, pickVariant, readManifest } from './pack.js';
import { workerByDefault } from './platform/index.js';
import { RemoteModel } from './remote.js';
import { Utf8Stream } from './utf8.js';

/**
 * Describe a pack from its manifest alone (no chunk is downloaded): the config
 * as the core parses it, a tensor summary, chunks and variants with their
 * download, resident and peak sizes for a context length, and which variant
 * `variant: 'auto'` would load here and why.
 * @param {object} [opts] {wasm, contextLength, memoryBudget, device, cache, refresh, retries, timeoutMs, fetch}
 */
export async function inspectPack(source, opts = {}) {
  const src = packSource(source, { retries: opts.retries, retryDelayMs: opts.retryDelayMs, timeoutMs: opts.timeoutMs, fetch: opts.fetch });
  const cache = src.cacheable === true ? resolveCache(opts.cache) : null;
  const b = await Binding.create({ wasm: opts.wasm });
  try {
    return await inspectWith(b, src, cache, source, opts);
  } finally {
    b.dispose?.();
  }
}

async function inspectWith(b, src, cache, source, opts) {
  const { manifest, text, where, fromCache } = await readManifest(b, src, { cache, refresh: opts.refresh, signal: opts.signal });
  const mt = b.allocString(text);
  let cfg = 0;
  try {
    cfg = b.withError(`${where}: config`, (err) => b.x.trlw_config_from_json(mt.ptr, mt.len, err));
    const config = JSON.parse(b.callString((buf, cap) => b.x.trlw_config_json(cfg, buf, cap), 512));
    const nCtx = opts.contextLength ?? Math.min(config.max_seq_len, DEFAULT_CONTEXT_CAP);
    if (!Number.isSafeInteger(nCtx) || nCtx < 1) {
      throw new TrilliumError('BAD_ARGUMENT', `contextLength must be a positive integer, got ${opts.contextLength}`);
    }
    const compute = (n) => ctxMemoryBytes(b, cfg, n, opts.batchSize ?? 0);
    const byEncoding = {};
    for (const t of manifest.tensors) {
      const e = (byEncoding[t.encoding] ??= { tensors: 0, bytes: 0, weights: 0 });
      e.tensors++;
      e.bytes += t.bytes;
      e.weights += t.shape.reduce((a, d) => a * d, 1);
    }
    const variants = manifest.variants.map((v) => {
      const p = variantPeak(manifest, v, nCtx, compute);
      return {
        ...v,
        contextBytesComputed: Object.fromEntries(
          [...new Set([512, 2048, Math.min(config.max_seq_len, 4096), nCtx])].sort((a, c) => a - c).map((n) => [n, compute(n)]),
        ),
        peak: { contextLength: nCtx, weights: p.weights, context: p.context, margin: p.margin, bytes: p.peak },
      };
    });
    let auto;
    try {
      const sel = selectVariant(manifest, { variant: 'auto', memoryBudget: opts.memoryBudget, device: opts.device }, nCtx, compute, where, config.max_seq_len);
      auto = { id: sel.variant.id, reason: sel.reason, budgetBytes: sel.budget.bytes, budgetReason: sel.budget.reason };
    } catch (e) {
      if (!(e instanceof TrilliumError) || e.code !== 'NO_MEMORY') throw e;
      auto = { id: null, reason: e.message, suggestedVariant: e.suggestedVariant ?? null };
    }
    return {
      pack: src.label ?? String(source),
      name: manifest.name,
      source: manifest.source,
      formatVersion: manifest.version,
      manifestFromCache: fromCache,
      config,
      contextLength: nCtx,
      tokenizer: {
        kind: manifest.tokenizer.kind,
        bytes: manifest.tokenizer.bytes,
        bosId: manifest.tokenizer.bosId,
        eosId: manifest.tokenizer.eosId,
        chatTemplate: manifest.tokenizer.chatTemplate,
      },
      tensors: {
        count: manifest.tensors.length,
        bytes: manifest.tensors.reduce((s, t) => s + t.bytes, 0),
        byEncoding,
      },
      chunks: manifest.chunks,
      variants,
      auto,
    };
  } catch (e) {
    if (e instanceof TrilliumError && e.code === 'CORE') e.code = 'BAD_PACK';
    throw e;
  } finally {
    if (cfg) b.x.trlw_config_free(cfg);
    b.free(mt.ptr);
  }
}

/**
 * Load a pack. `worker: true` runs the engine in a worker (a module Worker in
 * browsers, worker_threads in Node) behind a proxy with the same API; the
 * default, 'auto', does so on a browser page's main thread only.
 * @returns {Promise<Model|RemoteModel>}
 */
function loadModel(source, opts = {}) {
  const w = opts?.worker ?? 'auto';
  if (w !== true && w !== false && w !== 'auto') {
    return Promise.reject(new TrilliumError('BAD_ARGUMENT', `worker must be true, false or 'auto', got ${JSON.stringify(w)}`));
  }
  if (w === true || (w === 'auto' && workerByDefault())) return RemoteModel.load(source, opts);
  return Model.load(source, opts);
}

/** Entry point: `Trillium.load(pack, opts)`. */
export class Trillium {
  /** @returns {Promise<Model|RemoteModel>} */
  static load(source, opts) {
    return loadModel(source, opts);
  }
  static inspect(source, opts) {
    return inspectPack(source, opts);
  }
}

export const load = loadModel;
export {
  Binding, Model, RemoteModel, TrilliumError, Utf8Stream, GENERATE_DEFAULTS, parseManifest, pickVariant, splitSeed,
  estimateBudget, chooseVariant, probeWasmMemory, formatBytes, parseBytes, formatChat, renderTemplate,
  CacheApiStore, MemoryStore,
};
export default Trillium;
