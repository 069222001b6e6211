// The public object API: Trillium.load(pack) -> Model, with tokenize,
// detokenize, generate (an async iterator of text pieces), logits, info and
// dispose. One Model owns one wasm instance: its heap holds the pack's chunks
// exactly as downloaded, the KV cache and scratch, and dispose() drops it all.
import { Binding } from './binding.js';
import { TrilliumError, packError } from './errors.js';
import { loadChunks, packSource, pickVariant, readManifest } from './pack.js';
import { Utf8Stream, utf8Length } from './utf8.js';
import { randomSeed, yieldToEventLoop } from './platform/index.js';

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

export class Model {
  #b;
  #x;
  #h; // handles and heap blocks owned by this model
  #cached = []; // tokens whose keys/values are in the KV cache, in order
  #busy = false;
  #disposed = false;
  #info;
  #eos;
  #bos;
  #spm;
  #vocab;
  #nCtx;

  /**
   * Load a model pack.
   * @param {string|URL|object} source a pack directory (Node), an http(s) URL, or a custom source
   * @param {object} [opts] see index.d.ts (LoadOptions)
   * @returns {Promise<Model>}
   */
  static async load(source, opts = {}) {
    const t0 = now();
    const src = packSource(source);
    const b = await Binding.create({ wasm: opts.wasm });
    const x = b.x;
    const h = { cfg: 0, chunks: new Map(), names: 0, tensors: 0, model: 0, tok: 0, ctx: 0 };
    const freeAll = () => {
      if (h.ctx) x.trl_ctx_free(h.ctx);
      if (h.tok) x.trl_tokenizer_free(h.tok);
      if (h.model) x.trl_model_free(h.model);
      if (h.tensors) x.trlw_tensors_free(h.tensors);
      if (h.cfg) x.trlw_config_free(h.cfg);
      b.free(h.names);
      for (const p of h.chunks.values()) b.free(p);
      h.ctx = h.tok = h.model = h.tensors = h.cfg = h.names = 0;
      h.chunks.clear();
    };
    try {
      const { text, manifest, where } = await readManifest(b, src);
      // The core parses the config itself (the manifest text is handed over
      // whole: it picks the "config" member), so JS and C cannot disagree.
      const mt = b.allocString(text);
      try {
        h.cfg = packCall(b, where, 'config', (err) => x.trlw_config_from_json(mt.ptr, mt.len, err));
      } finally {
        b.free(mt.ptr);
      }
      const config = JSON.parse(b.callString((buf, cap) => x.trlw_config_json(h.cfg, buf, cap), 512));

      const variant = pickVariant(manifest, opts.variant, where);
      const tkChunk = manifest.chunks[manifest.tokenizer.chunk];
      if (!variant.tiers.includes(tkChunk.tier)) {
        throw packError(where, 'tokenizer.chunk', `chunk ${manifest.tokenizer.chunk} is in tier ${tkChunk.tier}, which variant ${variant.id} does not load`);
      }

      // Size the context before downloading anything, so a pack that cannot
      // fit fails fast instead of after the download.
      const maxSeq = config.max_seq_len;
      const nCtx = opts.contextLength ?? Math.min(maxSeq, DEFAULT_CONTEXT_CAP);
      if (!Number.isSafeInteger(nCtx) || nCtx < 1) {
        throw new TrilliumError('BAD_ARGUMENT', `contextLength must be a positive integer, got ${opts.contextLength}`);
      }
      const nBatch = opts.batchSize ?? 0;
      const ctxBytes = x.trlw_ctx_memory_bytes(h.cfg, nCtx, nBatch);
      const download = variant.downloadBytes;
      if (download + ctxBytes > 4294967296) {
        throw new TrilliumError(
          'NO_MEMORY',
          `variant ${variant.id} needs ${mib(download)} MiB of weights plus ${mib(ctxBytes)} MiB for a ${nCtx}-token context: more than the 4096 MiB a wasm32 heap can hold (use a smaller contextLength or variant)`,
        );
      }

      h.chunks = await loadChunks(b, src, manifest, variant, { onProgress: opts.onProgress, signal: opts.signal, where });

      // Tensor descriptors: the names live in one heap block next to the
      // chunks (the core keeps pointers to them), the data points into the chunks.
      const bound = manifest.tensors.filter((t) => h.chunks.has(t.chunk));
      const enc = new TextEncoder();
      const nameBytes = bound.map((t) => enc.encode(t.name));
      h.names = b.malloc(nameBytes.reduce((s, n) => s + n.length + 1, 0), 'tensor names');
      h.tensors = x.trlw_tensors_new(bound.length) >>> 0;
      if (!h.tensors) throw new TrilliumError('NO_MEMORY', `out of WebAssembly memory for ${bound.length} tensor descriptors`);
      let np = h.names;
      bound.forEach((t, i) => {
        const u8 = b.u8;
        u8.set(nameBytes[i], np);
        u8[np + nameBytes[i].length] = 0;
        const two = t.shape.length === 2;
        const rc = x.trlw_tensor_set(h.tensors, i, np, t.encodingId, t.shape.length, t.shape[0], two ? t.shape[1] : 0,
          h.chunks.get(t.chunk) + t.offset, t.bytes);
        if (rc !== 0) throw packError(where, `tensors[${manifest.tensors.indexOf(t)}] (${t.name})`, `rejected by the core: ${b.statusStr(rc)}`);
        const p = t.params;
        if (p && Object.keys(p).length) {
          x.trlw_tensor_set_params(h.tensors, i, p.bits ?? 0, p.group ?? 0, p.pow2 ?? 0, p.scale_axis ?? 0, p.scale_blocks ?? 0);
        }
        np += nameBytes[i].length + 1;
      });
      h.model = packCall(b, where, 'tensors', (err) => x.trlw_model_create(h.cfg, h.tensors, bound.length, err));

      const tk = manifest.tokenizer;
      h.tok = packCall(b, where, 'tokenizer', (err) => x.trlw_tokenizer_create(h.chunks.get(tk.chunk) + tk.offset, tk.bytes, err));
      const tokVocab = x.trl_tokenizer_vocab_size(h.tok);
      if (tokVocab > config.vocab_size) {
        throw packError(where, 'tokenizer', `the tokenizer has ${tokVocab} tokens but config.vocab_size is ${config.vocab_size}`);
      }

      h.ctx = b.withError(`creating a ${nCtx}-token context`, (err) => x.trlw_ctx_create(h.model, nCtx, nBatch, err));
      // A low-rank variant activates a prefix of the rank slices it downloaded.
      if (variant.rankSlices !== null) x.trl_ctx_set_rank_slices(h.ctx, variant.rankSlices);

      const kinds = Object.fromEntries(Object.entries(b.constants.tokenizer_kinds).map(([k, v]) => [v, k]));
      const info = {
        name: manifest.name,
        source: manifest.source,
        pack: src.label ?? String(source),
        formatVersion: manifest.version,
        variant: variant.id,
        config,
        tokenizer: {
          kind: kinds[x.trl_tokenizer_get_kind(h.tok)] ?? String(x.trl_tokenizer_get_kind(h.tok)),
          vocabSize: tokVocab,
          bosId: x.trl_tokenizer_bos(h.tok),
          eosId: x.trl_tokenizer_eos(h.tok),
          chatTemplate: tk.chatTemplate,
        },
        contextLength: x.trl_ctx_n_ctx(h.ctx),
        tensors: bound.length,
        chunks: h.chunks.size,
        downloadBytes: download,
        weightBytes: x.trlw_model_weight_bytes(h.model),
        contextBytes: ctxBytes,
        heapBytes: b.heapBytes,
        loadMs: now() - t0,
        wasmVersion: b.constants.version,
      };
      return new Model(b, h, info);
    } catch (e) {
      freeAll();
      throw e;
    }
  }

  /** @private use Model.load */
  constructor(binding, handles, info) {
    this.#b = binding;
    this.#x = binding.x;
    this.#h = handles;
    this.#info = Object.freeze(info);
    this.#bos = info.tokenizer.bosId;
    this.#eos = info.tokenizer.eosId;
    this.#spm = info.tokenizer.kind === 'spm';
    this.#vocab = info.config.vocab_size;
    this.#nCtx = info.contextLength;
    /** Statistics of the last finished or stopped generation. */
    this.lastStats = null;
  }

  /** Pack, config, tokenizer and memory facts (see index.d.ts ModelInfo). */
  get info() {
    return this.#info;
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
          if (n <= cap) return new TextDecoder().decode(b.u8.subarray(buf, buf + n));
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
    const ctx = this.#h.ctx;
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
    const msg = this.#b.cString(this.#x.trl_ctx_last_error(this.#h.ctx)) || this.#b.statusStr(status);
    this.#cached = []; // the cache state is unknown after a failure
    this.#x.trl_ctx_truncate(this.#h.ctx, 0);
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
    const tokens = this.#promptTokens(prompt, addBos, 'logits');
    this.#busy = true;
    try {
      this.#evaluate(tokens);
      const p = this.#x.trl_ctx_logits(this.#h.ctx) >>> 0;
      if (!p) throw new TrilliumError('CORE', 'logits: the context has no logits');
      return { tokens, logits: this.#b.floats(p, this.#vocab) };
    } finally {
      this.#busy = false;
    }
  }

  /**
   * Generate a continuation of `prompt`, yielding text pieces as they are
   * produced (never half a UTF-8 character). Stops at EOS (or BOS, which
   * llama2.c-style models emit between stories), after maxTokens, or when the
   * context is full. An aborted signal rejects with its reason.
   * The iterator's return value, and `model.lastStats`, hold the statistics.
   * @param {string|number[]} prompt
   * @param {object} [opts] see index.d.ts (GenerateOptions)
   */
  async *generate(prompt, opts = {}) {
    this.#idle();
    const o = { ...GENERATE_DEFAULTS, ...stripUndefined(opts) };
    checkNumber(o.maxTokens, 'maxTokens', 0, Infinity, true);
    checkNumber(o.temperature, 'temperature', 0, Infinity);
    checkNumber(o.topK, 'topK', 0, Infinity, true);
    checkNumber(o.topP, 'topP', 0, 1);
    checkNumber(o.minP, 'minP', 0, 1);
    checkNumber(o.repeatPenalty, 'repeatPenalty', 0, Infinity);
    checkNumber(o.repeatLastN, 'repeatLastN', 0, Infinity, true);
    const [lo, hi] = o.seed === undefined || o.seed === null ? randomSeed() : splitSeed(o.seed);
    const signal = o.signal;
    signal?.throwIfAborted?.();
    const tokens = this.#promptTokens(prompt, o.addBos ?? true, 'generate');

    const x = this.#x;
    const b = this.#b;
    const ctx = this.#h.ctx;
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
      seed: ((BigInt(hi) << 32n) | BigInt(lo)).toString(),
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
      let prev = tokens[tokens.length - 1];
      t = now();
      for (let i = 0; i < o.maxTokens; i++) {
        if (signal?.aborted) throw signal.reason ?? abortError();
        const tok = x.trlw_sample_next(sampler, ctx);
        if (tok < 0) throw new TrilliumError('CORE', 'the sampler failed');
        if (!o.ignoreEos && (tok === this.#eos || tok === this.#bos)) {
          stats.finishReason = 'eos';
          break;
        }
        generated.push(tok);
        let bytes = this.#tokenBytes(tok);
        // SentencePiece drops the space that starts the first piece after BOS.
        if (this.#spm && prev === this.#bos && bytes[0] === 0x20) bytes = bytes.subarray(1);
        prev = tok;
        const piece = utf8.push(bytes);
        const last = i + 1 >= o.maxTokens;
        const full = x.trl_ctx_n_past(ctx) >= this.#nCtx;
        if (!last && !full) {
          this.#check(x.trl_ctx_decode(ctx, tok), 'decode');
          this.#cached.push(tok);
        }
        if (piece) {
          pieces.push(piece);
          stats.decodeMs += now() - t;
          yield piece;
          t = now();
        }
        if (full && !last) {
          stats.finishReason = 'context';
          break;
        }
        await yieldToEventLoop();
      }
      const tail = utf8.end();
      stats.decodeMs += now() - t;
      if (tail) {
        pieces.push(tail);
        yield tail;
      }
    } finally {
      if (sampler) x.trl_sampler_free(sampler);
      this.#busy = false;
      stats.generatedTokens = generated.length;
      stats.text = pieces.join('');
      stats.tokensPerSecond = stats.decodeMs > 0 ? (generated.length / stats.decodeMs) * 1000 : 0;
      this.lastStats = stats;
    }
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
    const x = this.#x;
    const h = this.#h;
    x.trl_ctx_free(h.ctx);
    x.trl_tokenizer_free(h.tok);
    x.trl_model_free(h.model);
    x.trlw_tensors_free(h.tensors);
    x.trlw_config_free(h.cfg);
    this.#b.free(h.names);
    for (const p of h.chunks.values()) this.#b.free(p);
    h.chunks.clear();
    // Dropping the binding releases the whole heap to the garbage collector.
    this.#b = null;
    this.#x = null;
  }
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
