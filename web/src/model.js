// The public object API: Trillium.load(pack) -> Model, with tokenize,
// detokenize, generate (an async iterator of text pieces), chat, logits,
// perplexity, info, variant, stats and dispose. One Model owns one wasm
// instance: its heap holds the pack's chunks exactly as downloaded, the KV
// cache and scratch, and dispose() drops it all.
//
// Variants: `variant: 'auto'` (the default for a pack with several) loads the
// largest one whose peak memory fits the device's budget (budget.js).
// Progressive loading (`progressive: true`): the smallest variant that is a
// prefix of the chosen one (a subset of its tiers) is loaded first and the
// model is returned at once; the remaining tiers download in the background
// into the same heap. The core binds tensors when a model is created, so the
// upgrade creates a second trl_model + context over the now complete chunks
// (tier 0's bytes are shared, nothing is copied) and switches to it at the
// next call, or between two tokens of a running generation by re-running the
// tokens so far through the new context. After the switch the model computes
// exactly what a direct load of the big variant computes.
import { Binding } from './binding.js';
import {
  chooseVariant, environment, estimateBudget, formatBytes, nextSmaller, rankVariants, variantPeak,
} from './budget.js';
import { isStore } from './cache.js';
import { TemplateError, formatChat } from './chat.js';
import { TrilliumError, packError } from './errors.js';
import { loadChunks, packSource, pickVariant, readManifest, variantChunks } from './pack.js';
import { TOKF_NFC, readTokenizerBlob } from './tokblob.js';
import { Utf8Stream, utf8Length } from './utf8.js';
import { openCache, randomSeed, systemMemory, yieldToEventLoop } from './platform/index.js';

export const DEFAULT_CONTEXT_CAP = 4096;

export const GENERATE_DEFAULTS = Object.freeze({
  maxTokens: 256,
  temperature: 0.8,
  topK: 40,
  topP: 0.95,
  minP: 0,
  repeatPenalty: 1,
  repeatLastN: 64,
});

const now = () => performance.now();

// Errors a load may retry with a smaller variant ('auto' only).
const retryInfo = new WeakMap();

/** The cache a `cache` option asks for (see LoadOptions.cache), or null. */
export function resolveCache(option) {
  if (option === false || option === null) return null;
  if (option === undefined || option === true) return openCache(undefined);
  if (typeof option === 'string' && option !== '') return openCache(option);
  if (isStore(option)) return option;
  throw new TrilliumError('BAD_ARGUMENT', 'cache must be true, false, a directory (Node) or cache name (browsers), or a cache store object');
}

/**
 * Which variant to load and why.
 * @returns {{variant: object, reason: string, auto: boolean, budget: object|null, peak: object}}
 */
export function selectVariant(manifest, opts, nCtx, compute, where, maxCtx) {
  const want = opts.variant;
  if (want !== undefined && want !== null && want !== 'auto') {
    if (typeof want !== 'string') throw new TrilliumError('BAD_ARGUMENT', `variant must be a variant id or 'auto', got ${JSON.stringify(want)}`);
    const v = pickVariant(manifest, want, where);
    return { variant: v, reason: 'requested', auto: false, budget: null, peak: variantPeak(manifest, v, nCtx, compute) };
  }
  if (manifest.variants.length === 1 && want !== 'auto' && opts.memoryBudget === undefined) {
    const v = manifest.variants[0];
    return { variant: v, reason: 'the only variant in the pack', auto: false, budget: null, peak: variantPeak(manifest, v, nCtx, compute) };
  }
  const ranked = rankVariants(manifest, nCtx, compute);
  const env = environment({ systemMemory: systemMemory(), ...(opts.device ?? {}) });
  env.memoryBudget = opts.memoryBudget;
  const budget = estimateBudget(env, { probeLimit: ranked[ranked.length - 1].peak });
  const c = chooseVariant(manifest, { nCtx, budget, compute, maxCtx });
  return { variant: c.variant, reason: c.reason, auto: true, budget, peak: c.peak };
}

/** The smallest variant whose tiers are a subset of `target`'s (progressive loading starts with it). */
function smallestPrefix(manifest, target) {
  const t = new Set(target.tiers);
  const tkTier = manifest.chunks[manifest.tokenizer.chunk].tier;
  let best = target;
  for (const v of manifest.variants) {
    if (!v.tiers.every((x) => t.has(x)) || !v.tiers.includes(tkTier)) continue;
    if (v.downloadBytes < best.downloadBytes) best = v;
  }
  return best;
}

export class Model {
  #b;
  #x;
  #h; // shared by every variant: {cfg, chunks: Map(index -> ptr), tok}
  #m; // the bound variant: {variant, names, tensors, model, ctx}
  #cached = []; // tokens whose keys/values are in the KV cache, in order
  #busy = false;
  #disposed = false;
  #info;
  #eos;
  #bos;
  #spm;
  #nfc;
  #vocab;
  #nCtx;
  #nBatch;
  #pack; // {manifest, where, src, cache, opts}
  #variant; // {id, reason, ...} as reported by `variant`
  #up = null; // progressive upgrade state
  #stats;
  #bosText;
  #eosText;

  /**
   * Load a model pack.
   * @param {string|URL|object} source a pack directory (Node), an http(s) URL, or a custom source
   * @param {object} [opts] see index.d.ts (LoadOptions)
   * @returns {Promise<Model>}
   */
  static async load(source, opts = {}) {
    if (opts === null || typeof opts !== 'object') throw new TrilliumError('BAD_ARGUMENT', 'load options must be an object');
    const t0 = now();
    const notes = [];
    let forced = null;
    for (;;) {
      try {
        return await Model.#loadOnce(source, opts, t0, forced, notes);
      } catch (e) {
        const r = retryInfo.get(e);
        if (r?.auto && r.smaller) {
          // 'auto' guessed too high: the next smaller variant, with the chunks
          // already cached, in a fresh instance (a wasm heap cannot shrink).
          notes.push(`${r.id} ran out of memory`);
          forced = r.smaller;
          continue;
        }
        throw e;
      }
    }
  }

  static async #loadOnce(source, opts, t0, forced, notes) {
    const src = packSource(source, { retries: opts.retries, retryDelayMs: opts.retryDelayMs, timeoutMs: opts.timeoutMs, fetch: opts.fetch });
    const cache = src.cacheable === true ? resolveCache(opts.cache) : null;
    const warnings = [];
    let manifest = null;
    let sel = null;
    let nCtx = 0;
    let compute = null;
    const warn = (w) => {
      if (w.quota && manifest && sel) {
        // Out of storage: the next load downloads again; a smaller variant needs less space.
        const s = nextSmaller(manifest, sel.variant.id, nCtx, compute);
        if (s) w = { ...w, message: `${w.message}; the smaller variant ${s.id} downloads ${formatBytes(s.variant.downloadBytes)} (variant: '${s.id}')` };
      }
      warnings.push(w.message);
      opts.onWarning?.(w);
    };
    const b = await Binding.create(bindingOptions(opts));
    const x = b.x;
    const h = { cfg: 0, chunks: new Map(), tok: 0 };
    let m = null;
    const freeAll = () => {
      if (m) freeBound(b, m);
      if (h.tok) x.trl_tokenizer_free(h.tok);
      if (h.cfg) x.trlw_config_free(h.cfg);
      for (const p of h.chunks.values()) b.free(p);
      h.tok = h.cfg = 0;
      h.chunks.clear();
      b.dispose?.(); // the pthreads build's workers
    };
    try {
      const rm = await readManifest(b, src, { cache, refresh: opts.refresh, signal: opts.signal, onWarning: warn });
      manifest = rm.manifest;
      const { text, where } = rm;
      // The core parses the config itself (the manifest text is handed over
      // whole: it picks the "config" member), so JS and C cannot disagree.
      const mt = b.allocString(text);
      try {
        h.cfg = packCall(b, where, 'config', (err) => x.trlw_config_from_json(mt.ptr, mt.len, err));
      } finally {
        b.free(mt.ptr);
      }
      const config = JSON.parse(b.callString((buf, cap) => x.trlw_config_json(h.cfg, buf, cap), 512));

      // Size the context before downloading anything, so a pack that cannot
      // fit fails fast instead of after the download.
      const maxSeq = config.max_seq_len;
      nCtx = opts.contextLength ?? Math.min(maxSeq, DEFAULT_CONTEXT_CAP);
      if (!Number.isSafeInteger(nCtx) || nCtx < 1) {
        throw new TrilliumError('BAD_ARGUMENT', `contextLength must be a positive integer, got ${opts.contextLength}`);
      }
      const nBatch = opts.batchSize ?? 0;
      compute = (n) => ctxMemoryBytes(b, h.cfg, n, nBatch);
      sel = forced
        ? { variant: forced, reason: `fell back: ${notes.join('; ')}`, auto: true, budget: null, peak: variantPeak(manifest, forced, nCtx, compute) }
        : selectVariant(manifest, opts, nCtx, compute, where, maxSeq);
      const target = sel.variant;
      const first = opts.progressive ? smallestPrefix(manifest, target) : target;
      const tkChunk = manifest.chunks[manifest.tokenizer.chunk];
      if (!first.tiers.includes(tkChunk.tier)) {
        throw packError(where, 'tokenizer.chunk', `chunk ${manifest.tokenizer.chunk} is in tier ${tkChunk.tier}, which variant ${first.id} does not load`);
      }
      const ctxBytes = compute(nCtx);
      if (target.downloadBytes + ctxBytes > 4294967296) {
        throw new TrilliumError(
          'NO_MEMORY',
          `variant ${target.id} needs ${mib(target.downloadBytes)} MiB of weights plus ${mib(ctxBytes)} MiB for a ${nCtx}-token context: more than the 4096 MiB a wasm32 heap can hold (use a smaller contextLength or variant)`,
        );
      }

      const lc = await loadChunks(b, src, manifest, variantChunks(manifest, first), {
        onProgress: opts.onProgress, onWarning: warn, signal: opts.signal, where, cache, variant: first.id,
        concurrency: opts.concurrency,
      });
      h.chunks = lc.ptrs;

      const tk = manifest.tokenizer;
      const tkPtr = h.chunks.get(tk.chunk) + tk.offset;
      h.tok = packCall(b, where, 'tokenizer', (err) => x.trlw_tokenizer_create(tkPtr, tk.bytes, err));
      const tokVocab = x.trl_tokenizer_vocab_size(h.tok);
      if (tokVocab > config.vocab_size) {
        throw packError(where, 'tokenizer', `the tokenizer has ${tokVocab} tokens but config.vocab_size is ${config.vocab_size}`);
      }
      const bosId = x.trl_tokenizer_bos(h.tok);
      const eosId = x.trl_tokenizer_eos(h.tok);
      // a copy: the pthreads heap is shared memory, which TextDecoder refuses in browsers
      const blob = readTokenizerBlob(b.bytes(tkPtr, tk.bytes), [bosId, eosId]);

      m = bindVariant(b, h, manifest, first, nCtx, nBatch, where);

      const kinds = Object.fromEntries(Object.entries(b.constants.tokenizer_kinds).map(([k, v]) => [v, k]));
      const loadMs = now() - t0;
      const info = {
        name: manifest.name,
        source: manifest.source,
        pack: src.label ?? String(source),
        formatVersion: manifest.version,
        variant: first.id,
        variants: manifest.variants.map((v) => v.id),
        config,
        tokenizer: {
          kind: kinds[x.trl_tokenizer_get_kind(h.tok)] ?? String(x.trl_tokenizer_get_kind(h.tok)),
          vocabSize: tokVocab,
          bosId,
          eosId,
          chatTemplate: tk.chatTemplate,
        },
        contextLength: x.trl_ctx_n_ctx(m.ctx),
        tensors: m.nTensors,
        chunks: h.chunks.size,
        downloadBytes: first.downloadBytes,
        weightBytes: x.trlw_model_weight_bytes(m.model),
        contextBytes: ctxBytes,
        heapBytes: b.heapBytes,
        loadMs,
        wasmVersion: b.constants.version,
        build: b.build ?? 'standalone',
        threads: b.threads ?? 1,
        threadsNote: b.threadsNote ?? '',
        simd: b.simd ?? 'simd128',
        simdNote: b.simdNote ?? '',
        cache: { store: cache ? (cache.label ?? 'custom') : null, manifestFromCache: rm.fromCache, fromCacheBytes: lc.fromCache, fromNetworkBytes: lc.fromNetwork },
        warnings,
      };
      const variantInfo = {
        id: first.id,
        reason: first === target ? sel.reason : `progressive: ${first.id} first, ${target.id} as its tiers arrive (${sel.reason})`,
        target: target.id,
        peakBytes: sel.peak.peak,
        budgetBytes: sel.budget?.bytes ?? null,
        budgetReason: sel.budget?.reason ?? null,
        upgrading: first !== target,
        upgradeError: null,
      };
      const model = new Model(b, h, m, info, {
        pack: { manifest, where, src, cache, opts, nCtx, compute },
        variant: variantInfo,
        blob,
        nBatch,
      });
      m = null; // owned by the model now
      if (first !== target) model.#startUpgrade(target, warn);
      else model.upgraded = Promise.resolve(model.variant);
      return model;
    } catch (e) {
      freeAll();
      if (e instanceof TrilliumError && e.code === 'NO_MEMORY' && manifest && sel) {
        const s = nextSmaller(manifest, sel.variant.id, nCtx, compute);
        if (s) {
          e.message += `; the smaller variant ${s.id} needs ${formatBytes(s.peak)}: load it with variant: '${s.id}'`;
          e.suggestedVariant = s.id;
          retryInfo.set(e, { auto: sel.auto, smaller: s.variant, id: sel.variant.id });
        }
      }
      throw e;
    }
  }

  /** @private use Model.load */
  constructor(binding, shared, bound, info, extra) {
    this.#b = binding;
    this.#x = binding.x;
    this.#h = shared;
    this.#m = bound;
    this.#info = Object.freeze(info);
    this.#bos = info.tokenizer.bosId;
    this.#eos = info.tokenizer.eosId;
    this.#spm = info.tokenizer.kind === 'spm';
    this.#vocab = info.config.vocab_size;
    this.#nCtx = info.contextLength;
    this.#nBatch = extra.nBatch;
    this.#pack = extra.pack;
    this.#variant = extra.variant;
    this.#nfc = (extra.blob.flags & TOKF_NFC) !== 0;
    this.#bosText = extra.blob.pieces.get(info.tokenizer.bosId) ?? '';
    this.#eosText = extra.blob.pieces.get(info.tokenizer.eosId) ?? '';
    this.#stats = {
      loadMs: info.loadMs,
      fromCacheBytes: info.cache.fromCacheBytes,
      fromNetworkBytes: info.cache.fromNetworkBytes,
      upgradeMs: null,
      timeToFirstTokenMs: null,
      prefillTokensPerSecond: null,
      decodeTokensPerSecond: null,
      promptTokens: 0,
      evaluatedPromptTokens: 0,
      generatedTokens: 0,
    };
    /** Statistics of the last finished or stopped generation. */
    this.lastStats = null;
    /** Resolves with `variant` once a progressive upgrade is in (at once without one); rejects if it failed. */
    this.upgraded = null;
  }

  /** Pack, config, tokenizer and memory facts (see index.d.ts ModelInfo). */
  get info() {
    return this.#info;
  }

  /** The variant in use and why it was chosen: {id, reason, target, peakBytes, budgetBytes, budgetReason, upgrading, upgradeError}. */
  get variant() {
    return { ...this.#variant };
  }

  /** Load and last-generation timings: loadMs, timeToFirstTokenMs, prefill/decode tokens per second, ... */
  get stats() {
    return { ...this.#stats };
  }

  // ------------------------------------------------------------ upgrade

  #startUpgrade(target, warn) {
    const t0 = now();
    const ac = new AbortController();
    const { opts, manifest, src, cache, where } = this.#pack;
    const outer = opts.signal;
    const onOuter = () => ac.abort(outer.reason);
    outer?.addEventListener?.('abort', onOuter, { once: true });
    const up = { target, ready: false, switched: false, ac };
    this.#up = up;
    const b = this.#b;
    const h = this.#h;
    this.upgraded = (async () => {
      try {
        const lc = await loadChunks(b, src, manifest, variantChunks(manifest, target), {
          ptrs: h.chunks, phase: 'upgrade', variant: target.id, signal: ac.signal, cache, where,
          onProgress: opts.onProgress, onWarning: warn, concurrency: opts.concurrency,
        });
        this.#stats.fromCacheBytes += lc.fromCache;
        this.#stats.fromNetworkBytes += lc.fromNetwork;
        if (this.#disposed) throw new TrilliumError('DISPOSED', 'the model was disposed during its upgrade');
        up.ready = true;
        this.#stats.upgradeMs = now() - t0;
        // Idle: switch now, so `variant` tells the truth at once. Busy: the
        // running generation switches between two tokens.
        if (!this.#busy) this.#switchVariant();
        else await new Promise((r) => (up.onSwitch = r));
        if (up.error) throw up.error;
        opts.onUpgrade?.(this.variant);
        return this.variant;
      } catch (e) {
        if (!this.#disposed) {
          this.#variant = { ...this.#variant, upgrading: false, upgradeError: e?.message || String(e) };
        }
        throw e;
      } finally {
        outer?.removeEventListener?.('abort', onOuter);
      }
    })();
    // Failure is reported through `variant.upgradeError` and this promise; an
    // application that never awaits it must not see an unhandled rejection.
    this.upgraded.catch(() => {});
  }

  #upgradePending() {
    return this.#up !== null && this.#up.ready && !this.#up.switched;
  }

  // Replace the bound variant with the upgrade target. The old context and
  // model go first, so the peak holds one context as the budget assumed; if
  // the new one cannot be created, the old one is rebuilt.
  #switchVariant() {
    const up = this.#up;
    if (!up || !up.ready || up.switched) return false;
    up.switched = true;
    const b = this.#b;
    const old = this.#m;
    const { manifest, where, nCtx } = this.#pack;
    freeBound(b, old);
    this.#m = null;
    this.#cached = [];
    try {
      this.#m = bindVariant(b, this.#h, manifest, up.target, nCtx, this.#nBatch, where);
    } catch (e) {
      this.#m = bindVariant(b, this.#h, manifest, old.variant, nCtx, this.#nBatch, where);
      up.error = e;
      this.#variant = { ...this.#variant, upgrading: false, upgradeError: e.message };
      up.onSwitch?.();
      return false;
    }
    const from = old.variant.id;
    this.#variant = {
      ...this.#variant,
      id: up.target.id,
      reason: `upgraded from ${from} when its tiers arrived (${formatBytes(up.target.downloadBytes - old.variant.downloadBytes)} more, ${Math.round(this.#stats.upgradeMs)} ms)`,
      upgrading: false,
    };
    this.#info = Object.freeze({
      ...this.#info,
      variant: up.target.id,
      tensors: this.#m.nTensors,
      chunks: this.#h.chunks.size,
      downloadBytes: up.target.downloadBytes,
      weightBytes: this.#x.trlw_model_weight_bytes(this.#m.model),
      heapBytes: b.heapBytes,
    });
    up.onSwitch?.();
    return true;
  }

  // At a call boundary: the KV cache is rebuilt lazily by #evaluate.
  #switchIfReady() {
    if (this.#upgradePending()) this.#switchVariant();
  }

  #alive() {
    if (this.#disposed) throw new TrilliumError('DISPOSED', 'this model was disposed');
  }

  #idle() {
    this.#alive();
    if (this.#busy) {
      throw new TrilliumError('BUSY', 'a generation is running on this model: finish or abort it first (one model, one context)');
    }
  }

  /**
   * Text to token ids.
   * @param {string} text
   * @param {{addBos?: boolean}} [opts] addBos defaults to true
   * @returns {number[]}
   */
  tokenize(text, { addBos = true } = {}) {
    this.#alive();
    if (typeof text !== 'string') throw new TrilliumError('BAD_ARGUMENT', 'tokenize: text must be a string');
    // The source tokenizer normalizes to NFC (blob flag); the core leaves that to callers.
    if (this.#nfc) text = text.normalize('NFC');
    const b = this.#b;
    const s = b.allocString(text);
    try {
      let cap = utf8Length(text) + 4;
      for (;;) {
        const ids = b.malloc(cap * 4, 'token ids');
        try {
          const n = this.#x.trl_tokenize(this.#h.tok, s.ptr, s.len, addBos ? 1 : 0, ids, cap);
          if (n < 0) throw new TrilliumError('CORE', 'tokenize: the tokenizer failed');
          if (n <= cap) return Array.from(b.i32.subarray(ids >>> 2, (ids >>> 2) + n));
          cap = n;
        } finally {
          b.free(ids);
        }
      }
    } finally {
      b.free(s.ptr);
    }
  }

  /** Token ids to text (SPM: the leading space after BOS removed). */
  detokenize(ids) {
    this.#alive();
    const arr = this.#checkIds(ids, 'detokenize');
    const b = this.#b;
    const p = b.malloc(Math.max(1, arr.length) * 4, 'token ids');
    try {
      b.i32.set(arr, p >>> 2);
      let cap = arr.length * 8 + 16;
      for (;;) {
        const buf = b.malloc(cap, 'text');
        try {
          const n = this.#x.trl_detokenize(this.#h.tok, p, arr.length, buf, cap);
          if (n < 0) throw new TrilliumError('CORE', 'detokenize: a token id is out of range');
          if (n <= cap) return typeof b.decode === 'function' ? b.decode(buf, n) : new TextDecoder().decode(b.u8.subarray(buf, buf + n));
          cap = n;
        } finally {
          b.free(buf);
        }
      }
    } finally {
      b.free(p);
    }
  }

  /** The raw bytes of one token (may be part of a UTF-8 character). */
  tokenBytes(id) {
    this.#alive();
    return this.#tokenBytes(this.#checkIds([id], 'tokenBytes')[0]);
  }

  #tokenBytes(id) {
    const b = this.#b;
    let cap = 64;
    for (;;) {
      const buf = b.malloc(cap, 'token bytes');
      try {
        const n = this.#x.trl_token_to_bytes(this.#h.tok, id, buf, cap);
        // Models often pad their vocabulary past the tokenizer's (TriLM: 50304 rows for ~50277
        // tokens): such an id is a valid model output with no text, as llama.cpp treats it.
        if (n < 0 && id >= 0 && id < this.#vocab) return new Uint8Array(0);
        if (n < 0) throw new TrilliumError('BAD_ARGUMENT', `token id ${id} is out of range`);
        if (n <= cap) return b.bytes(buf, n);
        cap = n;
      } finally {
        b.free(buf);
      }
    }
  }

  #checkIds(ids, what) {
    if (!Array.isArray(ids) && !(ids instanceof Int32Array) && !(ids instanceof Uint32Array)) {
      throw new TrilliumError('BAD_ARGUMENT', `${what}: expected an array of token ids`);
    }
    const arr = Int32Array.from(ids);
    for (let i = 0; i < arr.length; i++) {
      if (!Number.isInteger(ids[i]) || ids[i] < 0 || ids[i] >= this.#vocab) {
        throw new TrilliumError('BAD_ARGUMENT', `${what}: token id ${ids[i]} at index ${i} is out of range [0, ${this.#vocab})`);
      }
    }
    return arr;
  }

  #promptTokens(prompt, addBos, what) {
    let tokens;
    if (typeof prompt === 'string') tokens = this.tokenize(prompt, { addBos });
    else tokens = Array.from(this.#checkIds(prompt, what));
    if (tokens.length === 0) {
      throw new TrilliumError('BAD_ARGUMENT', `${what}: the prompt is empty (nothing to condition on; keep addBos on)`);
    }
    if (tokens.length > this.#nCtx) {
      throw new TrilliumError('BAD_ARGUMENT', `${what}: the prompt is ${tokens.length} tokens but the context holds ${this.#nCtx} (load with a larger contextLength)`);
    }
    return tokens;
  }

  // Run `tokens` so the context's logits are those after the last one,
  // reusing the longest prefix already in the KV cache (a chat that resends
  // its history only pays for the new turn).
  #evaluate(tokens) {
    const x = this.#x;
    const b = this.#b;
    const ctx = this.#m.ctx;
    let keep = 0;
    const c = this.#cached;
    while (keep < c.length && keep < tokens.length && c[keep] === tokens[keep]) keep++;
    if (keep === tokens.length) keep--; // the last token must run again to produce its logits
    if (keep !== c.length || x.trl_ctx_n_past(ctx) !== keep) {
      if (x.trl_ctx_truncate(ctx, keep) !== 0) {
        keep = 0;
        this.#cached = [];
        this.#check(x.trl_ctx_truncate(ctx, 0), 'clearing the context');
      }
    }
    this.#cached = tokens.slice(0, keep);
    const rest = tokens.slice(keep);
    const p = b.malloc(rest.length * 4, 'prompt tokens');
    try {
      b.i32.set(rest, p >>> 2);
      this.#check(x.trl_ctx_prefill(ctx, p, rest.length, 0), 'prefill');
    } finally {
      b.free(p);
    }
    this.#cached = tokens.slice();
    return rest.length;
  }

  #check(status, what) {
    if (status === 0) return;
    const msg = this.#b.cString(this.#x.trl_ctx_last_error(this.#m.ctx)) || this.#b.statusStr(status);
    this.#cached = []; // the cache state is unknown after a failure
    this.#x.trl_ctx_truncate(this.#m.ctx, 0);
    throw new TrilliumError('CORE', `${what}: ${msg}`, { status });
  }

  /**
   * Logits of the next token after `prompt` (the last position), full precision.
   * @param {string|number[]} prompt
   * @param {{addBos?: boolean}} [opts]
   * @returns {Promise<{tokens: number[], logits: Float32Array}>}
   */
  async logits(prompt, { addBos = true } = {}) {
    this.#idle();
    this.#switchIfReady();
    const tokens = this.#promptTokens(prompt, addBos, 'logits');
    this.#busy = true;
    try {
      this.#evaluate(tokens);
      const p = this.#x.trl_ctx_logits(this.#m.ctx) >>> 0;
      if (!p) throw new TrilliumError('CORE', 'logits: the context has no logits');
      return { tokens, logits: this.#b.floats(p, this.#vocab) };
    } finally {
      this.#busy = false;
      this.#switchIfReady();
    }
  }

  /**
   * Perplexity of a text under the model: exp of the mean negative
   * log-likelihood of each token given the ones before it. Texts longer than
   * the context are cut into consecutive windows of `contextLength` tokens,
   * each evaluated from an empty cache (no context carries across a window
   * boundary; the first token of a window is only context). Uses the core's
   * logits for every position (trl_ctx_prefill with all_logits), in batches.
   * @param {string|number[]} text
   * @param {{addBos?: boolean, contextLength?: number, signal?: AbortSignal}} [opts]
   */
  async perplexity(text, { addBos = true, contextLength, signal } = {}) {
    this.#idle();
    this.#switchIfReady();
    let tokens;
    if (typeof text === 'string') tokens = this.tokenize(text, { addBos });
    else tokens = Array.from(this.#checkIds(text, 'perplexity'));
    if (tokens.length < 2) throw new TrilliumError('BAD_ARGUMENT', 'perplexity: the text needs at least two tokens');
    const W = contextLength ?? this.#nCtx;
    if (!Number.isSafeInteger(W) || W < 2 || W > this.#nCtx) {
      throw new TrilliumError('BAD_ARGUMENT', `perplexity: contextLength must be an integer in [2, ${this.#nCtx}], got ${contextLength}`);
    }
    const x = this.#x;
    const b = this.#b;
    const V = this.#vocab;
    const B = Math.max(1, Math.min(64, W));
    this.#busy = true;
    const t0 = now();
    let buf = 0;
    let ids = 0;
    let nll = 0;
    let count = 0;
    let windows = 0;
    try {
      buf = b.malloc(B * V * 4, 'all-position logits');
      ids = b.malloc(B * 4, 'token ids');
      this.#cached = [];
      for (let s = 0; s + 1 < tokens.length; s += W) {
        const win = tokens.slice(s, Math.min(s + W, tokens.length));
        if (win.length < 2) break;
        windows++;
        this.#check(x.trl_ctx_truncate(this.#m.ctx, 0), 'clearing the context');
        for (let j = 0; j + 1 < win.length; j += B) {
          signal?.throwIfAborted?.();
          const k = Math.min(B, win.length - 1 - j);
          b.i32.set(win.slice(j, j + k), ids >>> 2);
          this.#check(x.trl_ctx_prefill(this.#m.ctx, ids, k, buf), 'prefill');
          const f32 = b.f32;
          for (let r = 0; r < k; r++) {
            const row = f32.subarray((buf >>> 2) + r * V, (buf >>> 2) + (r + 1) * V);
            nll -= logSoftmaxAt(row, win[j + r + 1]);
            count++;
          }
          await yieldToEventLoop();
        }
      }
    } finally {
      b.free(buf);
      b.free(ids);
      this.#x.trl_ctx_truncate(this.#m.ctx, 0);
      this.#cached = [];
      this.#busy = false;
      this.#switchIfReady();
    }
    const ms = now() - t0;
    return {
      tokens: tokens.length,
      predicted: count,
      nll,
      meanNll: nll / count,
      perplexity: Math.exp(nll / count),
      windows,
      contextLength: W,
      ms,
      tokensPerSecond: ms > 0 ? ((count + windows) / ms) * 1000 : 0,
      variant: this.#m.variant.id,
    };
  }

  /**
   * Generate a continuation of `prompt`, yielding text pieces as they are
   * produced (never half a UTF-8 character). Stops at EOS (or BOS, which
   * llama2.c-style models emit between stories), at a stop token or string,
   * after maxTokens, or when the context is full. An aborted signal rejects
   * with its reason. The iterator's return value, and `model.lastStats`,
   * hold the statistics.
   * @param {string|number[]} prompt
   * @param {object} [opts] see index.d.ts (GenerateOptions)
   */
  async *generate(prompt, opts = {}) {
    this.#idle();
    const tCall = now();
    const o = { ...GENERATE_DEFAULTS, ...stripUndefined(opts) };
    checkNumber(o.maxTokens, 'maxTokens', 0, Infinity, true);
    checkNumber(o.temperature, 'temperature', 0, Infinity);
    checkNumber(o.topK, 'topK', 0, Infinity, true);
    checkNumber(o.topP, 'topP', 0, 1);
    checkNumber(o.minP, 'minP', 0, 1);
    checkNumber(o.repeatPenalty, 'repeatPenalty', 0, Infinity);
    checkNumber(o.repeatLastN, 'repeatLastN', 0, Infinity, true);
    const stops = checkStrings(o.stop, 'stop');
    const stopTokens = new Set(o.stopTokens === undefined ? [] : this.#checkIds(o.stopTokens, 'stopTokens'));
    const [lo, hi] = o.seed === undefined || o.seed === null ? randomSeed() : splitSeed(o.seed);
    const signal = o.signal;
    signal?.throwIfAborted?.();
    this.#switchIfReady();
    const tokens = this.#promptTokens(prompt, o.addBos ?? true, 'generate');

    const x = this.#x;
    const b = this.#b;
    this.#busy = true;
    let sampler = 0;
    const generated = [];
    const stats = {
      promptTokens: tokens.length,
      evaluatedPromptTokens: 0,
      generatedTokens: 0,
      tokens: generated,
      text: '',
      finishReason: 'length',
      prefillMs: 0,
      decodeMs: 0,
      tokensPerSecond: 0,
      timeToFirstTokenMs: null,
      prefillTokensPerSecond: 0,
      seed: ((BigInt(hi) << 32n) | BigInt(lo)).toString(),
      variant: this.#m.variant.id,
      upgradedAt: null,
    };
    const pieces = [];
    try {
      sampler = b.withError('sampler', (err) =>
        x.trlw_sampler_create(this.#vocab, o.temperature, o.topK, o.topP, o.minP, o.repeatPenalty, o.repeatLastN, lo, hi, err));
      const tp = b.malloc(tokens.length * 4, 'prompt tokens');
      b.i32.set(tokens, tp >>> 2);
      x.trlw_sampler_accept_many(sampler, tp, tokens.length);
      b.free(tp);

      let t = now();
      stats.evaluatedPromptTokens = this.#evaluate(tokens);
      stats.prefillMs = now() - t;

      const utf8 = new Utf8Stream();
      const stopper = new StopStrings(stops);
      let prev = tokens[tokens.length - 1];
      let stopped = false;
      t = now();
      for (let i = 0; i < o.maxTokens; i++) {
        if (signal?.aborted) throw signal.reason ?? abortError();
        if (this.#upgradePending()) {
          // Between two tokens: the upgraded model re-reads what the KV cache held.
          const keep = this.#cached.slice();
          if (this.#switchVariant()) {
            this.#evaluate(keep);
            stats.upgradedAt = generated.length;
            stats.variant = this.#m.variant.id;
          } else {
            this.#evaluate(keep); // the rebuilt old variant starts empty too
          }
        }
        const tok = x.trlw_sample_next(sampler, this.#m.ctx);
        if (tok < 0) throw new TrilliumError('CORE', 'the sampler failed');
        if (stats.timeToFirstTokenMs === null) stats.timeToFirstTokenMs = now() - tCall;
        if (!o.ignoreEos && (tok === this.#eos || tok === this.#bos)) {
          stats.finishReason = 'eos';
          break;
        }
        if (stopTokens.has(tok)) {
          stats.finishReason = 'stop';
          stopped = true;
          break;
        }
        generated.push(tok);
        let bytes = this.#tokenBytes(tok);
        // SentencePiece drops the space that starts the first piece after BOS.
        if (this.#spm && prev === this.#bos && bytes[0] === 0x20) bytes = bytes.subarray(1);
        prev = tok;
        const piece = utf8.push(bytes);
        const last = i + 1 >= o.maxTokens;
        const full = x.trl_ctx_n_past(this.#m.ctx) >= this.#nCtx;
        if (!last && !full) {
          this.#check(x.trl_ctx_decode(this.#m.ctx, tok), 'decode');
          this.#cached.push(tok);
        }
        if (piece) {
          const r = stopper.push(piece);
          if (r.text) {
            pieces.push(r.text);
            stats.decodeMs += now() - t;
            yield r.text;
            t = now();
          }
          if (r.stopped) {
            stats.finishReason = 'stop';
            stopped = true;
            break;
          }
        }
        if (full && !last) {
          stats.finishReason = 'context';
          break;
        }
        await yieldToEventLoop();
      }
      if (!stopped) {
        const r = stopper.push(utf8.end());
        const tail = r.stopped ? r.text : r.text + stopper.end();
        if (r.stopped) stats.finishReason = 'stop';
        stats.decodeMs += now() - t;
        if (tail) {
          pieces.push(tail);
          yield tail;
        }
      } else stats.decodeMs += now() - t;
    } finally {
      if (sampler) x.trl_sampler_free(sampler);
      this.#busy = false;
      stats.generatedTokens = generated.length;
      stats.text = pieces.join('');
      stats.tokensPerSecond = stats.decodeMs > 0 ? (generated.length / stats.decodeMs) * 1000 : 0;
      stats.prefillTokensPerSecond = stats.prefillMs > 0 ? (stats.evaluatedPromptTokens / stats.prefillMs) * 1000 : 0;
      this.lastStats = stats;
      Object.assign(this.#stats, {
        timeToFirstTokenMs: stats.timeToFirstTokenMs,
        prefillTokensPerSecond: stats.prefillTokensPerSecond,
        decodeTokensPerSecond: stats.tokensPerSecond,
        promptTokens: stats.promptTokens,
        evaluatedPromptTokens: stats.evaluatedPromptTokens,
        generatedTokens: generated.length,
      });
      if (!this.#disposed) this.#switchIfReady();
    }
    return stats;
  }

  /**
   * The prompt a conversation turns into: the pack's chat_template rendered
   * (bos_token/eos_token are the tokenizer's own texts), or a plain
   * "role: content" prompt with a note when there is no template or it uses
   * syntax outside the supported subset.
   * @param {{role: string, content: string}[]} messages
   * @returns {{text: string, format: 'template'|'plain', note: string|null, stop: string[], stopTokens: number[], addBos: boolean}}
   */
  formatChat(messages, { addGenerationPrompt = true, vars } = {}) {
    this.#alive();
    let f;
    try {
      f = formatChat(this.#info.tokenizer.chatTemplate, messages, { bosToken: this.#bosText, eosToken: this.#eosText, addGenerationPrompt, vars });
    } catch (e) {
      if (e instanceof TemplateError) throw new TrilliumError('BAD_ARGUMENT', `chat template: ${e.message}`, { cause: e });
      if (e instanceof TypeError) throw new TrilliumError('BAD_ARGUMENT', `chat: ${e.message}`, { cause: e });
      throw e;
    }
    // End-of-turn markers that are one special token stop as that token
    // (special tokens decode to no text, so a text match would never see them).
    const stopTokens = [];
    for (const s of f.stop) {
      const ids = this.tokenize(s, { addBos: false });
      if (ids.length === 1 && this.#tokenBytes(ids[0]).length === 0) stopTokens.push(ids[0]);
    }
    // Hugging Face tokenizes a rendered template without adding special
    // tokens: the template writes bos_token itself where the model wants it.
    return { ...f, stopTokens, addBos: f.format === 'plain' };
  }

  /**
   * Chat: generate the assistant's reply to `messages` (see formatChat).
   * Pieces are yielded as in generate(); the statistics also say which
   * prompt format was used (`chat: {format, note}`). Resending the whole
   * history each turn is cheap: the KV cache keeps the common prefix.
   */
  async *chat(messages, opts = {}) {
    this.#idle();
    const f = this.formatChat(messages);
    const stats = yield* this.generate(f.text, {
      ...opts,
      addBos: opts.addBos ?? f.addBos,
      stop: [...(opts.stop ?? []), ...f.stop],
      stopTokens: [...(opts.stopTokens ?? []), ...f.stopTokens],
    });
    stats.chat = { format: f.format, note: f.note };
    return stats;
  }

  /**
   * Generate to the end and return the text with the statistics.
   * @returns {Promise<GenerateStats>}
   */
  async complete(prompt, opts = {}) {
    const it = this.generate(prompt, opts);
    for (;;) {
      const r = await it.next();
      if (r.done) return r.value;
      opts.onText?.(r.value);
    }
  }

  /** Free the wasm instance's handles. The model is unusable afterwards; calling it twice is harmless. */
  dispose() {
    if (this.#disposed) return;
    if (this.#busy) throw new TrilliumError('BUSY', 'dispose: a generation is running; abort it first');
    this.#disposed = true;
    this.#up?.ac.abort(new TrilliumError('DISPOSED', 'the model was disposed'));
    const x = this.#x;
    const h = this.#h;
    if (this.#m) freeBound(this.#b, this.#m);
    this.#m = null;
    x.trl_tokenizer_free(h.tok);
    x.trlw_config_free(h.cfg);
    for (const p of h.chunks.values()) this.#b.free(p);
    h.chunks.clear();
    this.#b.dispose?.(); // stops the pthreads build's workers (contexts are freed)
    // Dropping the binding releases the whole heap to the garbage collector.
    this.#b = null;
    this.#x = null;
  }
}

/** What Binding.create takes from the load options (the build and its threads). */
export function bindingOptions(opts) {
  const o = { wasm: opts.wasm };
  for (const k of ['threads', 'build', 'threadsGlue', 'threadsWasm', 'simd']) if (opts[k] !== undefined) o[k] = opts[k];
  return o;
}

/** Bytes a context allocates, for the binding's thread count when it has one. */
export function ctxMemoryBytes(b, cfg, n, nBatch) {
  return typeof b.ctxMemoryBytes === 'function' ? b.ctxMemoryBytes(cfg, n, nBatch) : b.x.trlw_ctx_memory_bytes(cfg, n, nBatch);
}

// Bind the tensors of a variant's tiers into a trl_model and create its
// context (with the variant's rank slices active).
function bindVariant(b, h, manifest, variant, nCtx, nBatch, where) {
  const x = b.x;
  const tiers = new Set(variant.tiers);
  const m = { variant, names: 0, tensors: 0, model: 0, ctx: 0, nTensors: 0 };
  try {
    const bound = manifest.tensors.filter((t) => tiers.has(manifest.chunks[t.chunk].tier) && h.chunks.has(t.chunk));
    // Tensor descriptors: the names live in one heap block next to the
    // chunks (the core keeps pointers to them), the data points into the chunks.
    const enc = new TextEncoder();
    const nameBytes = bound.map((t) => enc.encode(t.name));
    m.names = b.malloc(nameBytes.reduce((s, n) => s + n.length + 1, 0), 'tensor names');
    m.tensors = x.trlw_tensors_new(bound.length) >>> 0;
    if (!m.tensors) throw new TrilliumError('NO_MEMORY', `out of WebAssembly memory for ${bound.length} tensor descriptors`);
    let np = m.names;
    bound.forEach((t, i) => {
      const u8 = b.u8;
      u8.set(nameBytes[i], np);
      u8[np + nameBytes[i].length] = 0;
      const two = t.shape.length === 2;
      const rc = x.trlw_tensor_set(m.tensors, i, np, t.encodingId, t.shape.length, t.shape[0], two ? t.shape[1] : 0,
        h.chunks.get(t.chunk) + t.offset, t.bytes);
      if (rc !== 0) throw packError(where, `tensors[${manifest.tensors.indexOf(t)}] (${t.name})`, `rejected by the core: ${b.statusStr(rc)}`);
      const p = t.params;
      if (p && Object.keys(p).length) {
        x.trlw_tensor_set_params(m.tensors, i, p.bits ?? 0, p.group ?? 0, p.pow2 ?? 0, p.scale_axis ?? 0, p.scale_blocks ?? 0);
      }
      np += nameBytes[i].length + 1;
    });
    m.nTensors = bound.length;
    m.model = packCall(b, where, 'tensors', (err) => x.trlw_model_create(h.cfg, m.tensors, bound.length, err));
    m.ctx = typeof b.ctxCreate === 'function'
      ? b.ctxCreate(m.model, nCtx, nBatch) // runs the binding's thread count
      : b.withError(`creating a ${nCtx}-token context`, (err) => x.trlw_ctx_create(m.model, nCtx, nBatch, err));
    // A low-rank variant activates a prefix of the rank slices it downloaded.
    if (variant.rankSlices !== null && variant.rankSlices !== undefined) x.trl_ctx_set_rank_slices(m.ctx, variant.rankSlices);
    return m;
  } catch (e) {
    freeBound(b, m);
    throw e;
  }
}

function freeBound(b, m) {
  const x = b.x;
  if (m.ctx) x.trl_ctx_free(m.ctx);
  if (m.model) x.trl_model_free(m.model);
  if (m.tensors) x.trlw_tensors_free(m.tensors);
  b.free(m.names);
  m.ctx = m.model = m.tensors = m.names = 0;
}

// log p(target) from one row of logits, in double precision.
function logSoftmaxAt(row, target) {
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) if (row[i] > max) max = row[i];
  let sum = 0;
  for (let i = 0; i < row.length; i++) sum += Math.exp(row[i] - max);
  return row[target] - max - Math.log(sum);
}

// Stop strings: text is held back while it could still be the start of one,
// so a caller never sees a stop string or its beginning.
class StopStrings {
  constructor(stops) {
    this.stops = stops;
    this.held = '';
  }
  push(text) {
    if (!this.stops.length) return { text, stopped: false };
    const buf = this.held + text;
    let cut = -1;
    for (const s of this.stops) {
      const i = buf.indexOf(s);
      if (i >= 0 && (cut < 0 || i < cut)) cut = i;
    }
    if (cut >= 0) {
      this.held = '';
      return { text: buf.slice(0, cut), stopped: true };
    }
    let keep = 0;
    for (const s of this.stops) {
      for (let k = Math.min(s.length - 1, buf.length); k > keep; k--) {
        if (buf.endsWith(s.slice(0, k))) {
          keep = k;
          break;
        }
      }
    }
    this.held = buf.slice(buf.length - keep);
    return { text: buf.slice(0, buf.length - keep), stopped: false };
  }
  end() {
    const h = this.held;
    this.held = '';
    return h;
  }
}

function checkStrings(v, name) {
  if (v === undefined || v === null) return [];
  const a = typeof v === 'string' ? [v] : v;
  if (!Array.isArray(a) || !a.every((s) => typeof s === 'string')) {
    throw new TrilliumError('BAD_ARGUMENT', `${name} must be a string or an array of strings`);
  }
  return a.filter((s) => s.length > 0);
}

// A core call on pack contents: a refusal is a bad pack, named by file and field.
function packCall(b, where, field, fn) {
  try {
    return b.withError(`${where}: ${field}`, fn);
  } catch (e) {
    if (e instanceof TrilliumError) {
      e.file = where;
      e.field = field;
      if (e.code === 'CORE') e.code = 'BAD_PACK';
    }
    throw e;
  }
}

function stripUndefined(o) {
  const r = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) r[k] = v;
  return r;
}

function checkNumber(v, name, min, max, integer = false) {
  const ok = typeof v === 'number' && !Number.isNaN(v) && v >= min && v <= max && (!integer || Number.isInteger(v) || v === Infinity);
  if (!ok) {
    throw new TrilliumError('BAD_ARGUMENT', `${name} must be ${integer ? 'an integer' : 'a number'} in [${min}, ${max}], got ${v}`);
  }
}

/** A seed (number, bigint or decimal string, 0 <= seed < 2^64) as [lo, hi] 32-bit halves. */
export function splitSeed(seed) {
  let s;
  try {
    if (typeof seed === 'bigint') s = seed;
    else if (typeof seed === 'number' && Number.isSafeInteger(seed)) s = BigInt(seed);
    else if (typeof seed === 'string' && /^\d+$/.test(seed.trim())) s = BigInt(seed.trim());
  } catch {
    s = undefined;
  }
  if (s === undefined || s < 0n || s >= 1n << 64n) {
    throw new TrilliumError('BAD_ARGUMENT', `seed must be an integer in [0, 2^64), got ${seed}`);
  }
  return [Number(s & 0xffffffffn), Number(s >> 32n)];
}

function abortError() {
  if (typeof DOMException === 'function') return new DOMException('generation aborted', 'AbortError');
  const e = new Error('generation aborted');
  e.name = 'AbortError';
  return e;
}

function mib(n) {
  return (n / 1048576).toFixed(1);
}
