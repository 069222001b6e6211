// The low-level binding: one wasm instance, its heap, and typed access to the
// trl_/trlw_ exports. Pointers cross the boundary as i32 and are read back with
// `>>> 0` (the heap may exceed 2 GiB); typed-array views are recreated after
// every memory growth.
//
// Two builds answer to the same exports: the standalone trillium.wasm (one
// thread, any environment) and the pthreads trillium-mt (contexts run
// `threads` threads; needs SharedArrayBuffer, i.e. cross-origin isolation in
// browsers). The pthreads heap is a SharedArrayBuffer, which browsers'
// TextDecoder, crypto.subtle, Blob and Response refuse: decode(), external()
// and the copies (bytes, floats) are safe to hand them, raw u8 views are not.
// A shared memory's buffer also changes when another thread grows it: the
// views are checked against memory.buffer on every access, never cached.
import { TrilliumError } from './errors.js';
import {
  compileWasm, instantiateThreaded, instantiateWasm, relaxedWasmLocation, resolveSimd, resolveThreads, threadsSupport,
} from './wasm.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: false });

const BUILDS = ['auto', 'standalone', 'pthreads'];

export class Binding {
  /**
   * @param {object} [opts]
   * @param {string|URL|ArrayBuffer|ArrayBufferView|WebAssembly.Module} [opts.wasm] the standalone
   *   trillium.wasm (default ../dist/trillium.wasm)
   * @param {number|'auto'} [opts.threads] threads per context (default 1). Above 1 the pthreads
   *   build is used where SharedArrayBuffer is allowed (Node; cross-origin isolated pages),
   *   else the standalone one with 1 thread (`threadsNote` says why). 'auto': the hardware's
   *   parallelism (navigator.hardwareConcurrency, os.availableParallelism) capped at 4.
   * @param {'auto'|'standalone'|'pthreads'} [opts.build] force a build ('pthreads' with
   *   threads 1 runs the pthreads module on one thread; it fails where threads are not allowed)
   * @param {number} [opts.contexts] contexts of `threads` threads alive at once (default 1): the
   *   pthreads build starts contexts * (threads - 1) workers, since a context cannot wait for a
   *   worker to start (e.g. 2 while a variant upgrade builds its context beside the running one)
   * @param {string|URL} [opts.threadsGlue] trillium-mt.js (default ../dist/trillium-mt.js)
   * @param {string|URL|ArrayBuffer|ArrayBufferView|WebAssembly.Module} [opts.threadsWasm]
   *   trillium-mt.wasm (default: beside the glue)
   * @param {'auto'|'simd128'|'relaxed'} [opts.simd] which default module: 'relaxed' runs
   *   trillium-relaxed.wasm / trillium-mt-relaxed.wasm (the ternary kernel on relaxed SIMD's
   *   int8 dot product), 'auto' (default) does so where the engine computes it correctly
   *   (Chrome 114+), falling back to the SIMD128 module if the relaxed file cannot be
   *   loaded. An explicit `wasm` / `threadsWasm` is used as given.
   * @returns {Promise<Binding>}
   */
  static async create(opts = {}) {
    const build = opts.build ?? 'auto';
    if (!BUILDS.includes(build)) {
      throw new TrilliumError('BAD_ARGUMENT', `build must be one of ${BUILDS.join(', ')}, got ${String(build)}`);
    }
    const wanted = await resolveThreads(opts.threads);
    const contexts = opts.contexts ?? 1;
    if (!Number.isInteger(contexts) || contexts < 1 || contexts > 16) {
      throw new TrilliumError('BAD_ARGUMENT', `contexts must be an integer in [1, 16], got ${String(opts.contexts)}`);
    }
    const support = threadsSupport();
    const pthreads = build === 'pthreads' || (build === 'auto' && wanted > 1 && support.ok);
    let note = '';
    if (build === 'pthreads' && !support.ok) {
      throw new TrilliumError('WASM', `the pthreads build cannot run here: ${support.reason}`);
    }
    if (build === 'standalone' && wanted > 1) note = 'the standalone build runs one thread';
    else if (build === 'auto' && wanted > 1 && !support.ok) note = support.reason;

    const b = new Binding();
    let simd = resolveSimd(opts.simd);
    /** Why the relaxed-SIMD module was wanted but not used ('' if not). */
    b.simdNote = '';
    // Compile the relaxed module if it is the one to run; in 'auto' mode one
    // that cannot be loaded falls back to the SIMD128 build.
    const relaxedOr = async (explicit, load) => {
      if (explicit !== undefined && explicit !== null) return { simd: 'custom', value: await load(explicit, false) };
      if (simd === 'relaxed') {
        try {
          return { simd, value: await load(undefined, true) };
        } catch (e) {
          if (opts.simd === 'relaxed') throw e;
          b.simdNote = `the relaxed-SIMD module did not load (${e.message}); running the SIMD128 one`;
        }
      }
      return { simd: 'simd128', value: await load(undefined, false) };
    };
    if (pthreads) {
      const r = await relaxedOr(opts.threadsWasm, (wasm, relaxed) =>
        instantiateThreaded({ glue: opts.threadsGlue, wasm, threads: wanted, contexts, relaxed }));
      const t = r.value;
      simd = r.simd;
      try {
        b._init(t.exports, t.memory);
      } catch (e) {
        t.terminate();
        throw e;
      }
      b._terminate = t.terminate;
      b._running = t.running;
      b._idle = t.idle;
      b.build = 'pthreads';
      b.threads = wanted;
    } else {
      const r = await relaxedOr(opts.wasm, (wasm, relaxed) => compileWasm(relaxed ? relaxedWasmLocation() : wasm));
      simd = r.simd;
      const instance = await instantiateWasm(r.value, () => b._refresh());
      b._init(instance.exports, instance.exports.memory);
      b.build = 'standalone';
      b.threads = 1;
    }
    /** The module's SIMD level: 'simd128', 'relaxed', or 'custom' (a `wasm`/`threadsWasm` given). */
    b.simd = simd;
    /** Threads asked for (after resolving 'auto'). */
    b.threadsRequested = wanted;
    /** Why fewer threads than requested run ('' if none). */
    b.threadsNote = note;
    return b;
  }

  _init(exports, memory) {
    /** Raw exports, for calls with plain number arguments. */
    this.x = exports;
    this.memory = memory;
    for (const name of ['malloc', 'free', 'trlw_constants_json', 'trlw_error_new', 'trlw_model_create']) {
      if (typeof this.x[name] !== 'function') {
        throw new TrilliumError('WASM', `trillium.wasm does not export ${name} (rebuild it from wasm_glue/)`);
      }
    }
    /** Which build runs: 'standalone' (trillium.wasm) or 'pthreads' (trillium-mt). */
    this.build = 'standalone';
    /** Threads each context of this binding runs (ctxCreate). */
    this.threads = 1;
    this.threadsRequested = 1;
    this.threadsNote = '';
    /** True when the heap is a SharedArrayBuffer (the pthreads build). */
    this.shared = typeof SharedArrayBuffer === 'function' && memory.buffer instanceof SharedArrayBuffer;
    this._terminate = null;
    this._running = null;
    this._idle = null;
    this._buffer = null;
    this._refresh();
    this.constants = JSON.parse(this.callString((buf, cap) => this.x.trlw_constants_json(buf, cap), 1024));
    this.encodingIds = this.constants.encodings;
    this.encodingNames = Object.fromEntries(Object.entries(this.encodingIds).map(([k, v]) => [v, k]));
    this.statusNames = Object.fromEntries(Object.entries(this.constants.status).map(([k, v]) => [v, k]));
  }

  /**
   * Create a context running this binding's thread count. Throws a
   * TrilliumError (NO_MEMORY or CORE) with the core's message.
   * @returns {number} the trl_ctx handle
   */
  ctxCreate(model, nCtx, nBatch = 0) {
    const x = this.x;
    const n = this.threads;
    const what = `creating a ${nCtx}-token context${n > 1 ? ` with ${n} threads` : ''}`;
    if (typeof x.trlw_ctx_create_mt !== 'function') {
      if (n > 1) throw new TrilliumError('WASM', 'this trillium.wasm predates threads (no trlw_ctx_create_mt): rebuild it');
      return this.withError(what, (err) => x.trlw_ctx_create(model, nCtx, nBatch, err));
    }
    // The core would fail too (pthread_create: EAGAIN), as "could not start
    // n threads"; this says why and what to do.
    if (n > 1 && this._idle && this._idle() < n - 1) {
      throw new TrilliumError('BUSY', `${what}: its ${n - 1} worker threads are taken by other contexts of this binding` +
        ` (${this._idle()} idle; free a context, or create the binding with a larger \`contexts\`)`);
    }
    return this.withError(what, (err) => x.trlw_ctx_create_mt(model, nCtx, nBatch, n, err));
  }

  /** Bytes a context of this binding's thread count allocates (what ctxCreate will ask for). */
  ctxMemoryBytes(cfg, nCtx, nBatch = 0) {
    const x = this.x;
    if (typeof x.trlw_ctx_memory_bytes_mt !== 'function') return x.trlw_ctx_memory_bytes(cfg, nCtx, nBatch);
    return x.trlw_ctx_memory_bytes_mt(cfg, nCtx, nBatch, this.threads);
  }

  /** Worker threads running for this binding's contexts now (0 on the standalone build). */
  get workersRunning() {
    return this._running ? this._running() : 0;
  }

  /**
   * Stop the pthreads build's workers (contexts must be freed first: their
   * threads are joined by trl_ctx_free). The binding is unusable afterwards.
   * Harmless on the standalone build and when called twice.
   */
  dispose() {
    const t = this._terminate;
    this._terminate = null;
    this._running = null;
    this._idle = null;
    if (t) t();
  }

  _refresh() {
    const buf = this.memory.buffer;
    if (buf === this._buffer) return;
    this._buffer = buf;
    this._u8 = new Uint8Array(buf);
    this._i32 = new Int32Array(buf);
    this._f32 = new Float32Array(buf);
  }

  /** Views over the whole heap, valid until the next call into wasm that may grow it. */
  get u8() {
    if (this.memory.buffer !== this._buffer) this._refresh();
    return this._u8;
  }
  get i32() {
    if (this.memory.buffer !== this._buffer) this._refresh();
    return this._i32;
  }
  get f32() {
    if (this.memory.buffer !== this._buffer) this._refresh();
    return this._f32;
  }

  /** Heap size in bytes. */
  get heapBytes() {
    return this.memory.buffer.byteLength;
  }

  /** malloc that throws instead of returning 0. */
  malloc(bytes, what = 'a buffer') {
    const p = this.x.malloc(bytes) >>> 0;
    if (!p && bytes) throw noMemory(bytes, what, this.heapBytes);
    return p;
  }

  /** 64-byte aligned allocation (for pack chunks); free with free(). */
  mallocAligned(bytes, what = 'a buffer') {
    if (bytes > 0xffffffc0) throw noMemory(bytes, what, this.heapBytes);
    const p = this.x.trlw_alloc_aligned(bytes) >>> 0;
    if (!p) throw noMemory(bytes, what, this.heapBytes);
    return p;
  }

  free(p) {
    if (p) this.x.free(p);
  }

  /** Copy a string into the heap as NUL-terminated UTF-8. @returns {{ptr: number, len: number}} */
  allocString(s) {
    const bytes = encoder.encode(s);
    const ptr = this.malloc(bytes.length + 1, 'a string');
    const u8 = this.u8;
    u8.set(bytes, ptr);
    u8[ptr + bytes.length] = 0;
    return { ptr, len: bytes.length };
  }

  /** Copy bytes into the heap. @returns {number} the pointer */
  allocBytes(bytes, what) {
    const ptr = this.malloc(bytes.length || 1, what);
    this.u8.set(bytes, ptr);
    return ptr;
  }

  /** A NUL-terminated UTF-8 string at ptr. */
  cString(ptr) {
    ptr >>>= 0;
    if (!ptr) return '';
    const u8 = this.u8;
    let end = ptr;
    const limit = u8.length;
    while (end < limit && u8[end] !== 0) end++;
    return this.decode(ptr, end - ptr);
  }

  /** `len` heap bytes at ptr as UTF-8 text (safe on a shared heap). */
  decode(ptr, len) {
    return decoder.decode(this.external(ptr, len));
  }

  /**
   * `len` heap bytes at ptr for an API that refuses shared memory (browsers'
   * TextDecoder, crypto.subtle, Blob, Response, Cache): a view of the heap on
   * the standalone build, a copy on the pthreads build. Read it before the
   * next call into wasm (a view goes stale if the heap grows).
   */
  external(ptr, len) {
    ptr >>>= 0;
    const view = this.u8.subarray(ptr, ptr + len);
    return this.shared ? view.slice() : view;
  }

  /** A copy of `len` heap bytes. */
  bytes(ptr, len) {
    ptr >>>= 0;
    return this.u8.slice(ptr, ptr + len);
  }

  /** A copy of `n` f32 values (ptr must be 4-aligned). */
  floats(ptr, n) {
    ptr >>>= 0;
    return this.f32.slice(ptr >>> 2, (ptr >>> 2) + n);
  }

  /**
   * Call an snprintf-style function fn(buf, cap) -> full length, growing the
   * buffer until the result fits, and return the UTF-8 text.
   */
  callString(fn, cap = 256) {
    for (;;) {
      const buf = this.malloc(cap + 1);
      try {
        const n = fn(buf, cap + 1) >>> 0;
        if (n <= cap) return this.decode(buf, n);
        cap = n;
      } finally {
        this.free(buf);
      }
    }
  }

  /**
   * Run fn(errPtr) with a fresh trl_error; if it returns 0 (a NULL handle),
   * throw a TrilliumError with the core's message, prefixed by `context`.
   * @returns {number} the handle
   */
  withError(context, fn) {
    const err = this.x.trlw_error_new() >>> 0;
    if (!err) throw noMemory(256, 'a trl_error', this.heapBytes);
    try {
      const h = fn(err) >>> 0;
      if (!h) {
        const status = this.x.trlw_error_status(err);
        const msg = this.cString(this.x.trlw_error_msg(err)) || this.statusStr(status);
        const code = this.statusNames[status] === 'ERR_NO_MEMORY' ? 'NO_MEMORY' : 'CORE';
        throw new TrilliumError(code, context ? `${context}: ${msg}` : msg, { status });
      }
      return h;
    } finally {
      this.x.free(err);
    }
  }

  statusStr(status) {
    return this.cString(this.x.trl_status_str(status));
  }

  /** Bytes a (rows, cols) matrix takes in an encoding; 0 on overflow or bad arguments. */
  encodingBytes(encId, rows, cols) {
    return this.x.trlw_encoding_bytes(encId, rows, cols);
  }

  /** Bytes of a (rows, cols) tensor with its encoding parameters (format v2); 0 if they do not fit. */
  tensorBytes(encId, rows, cols, p = {}) {
    return this.x.trlw_tensor_bytes(encId, rows, cols, p.bits ?? 0, p.group ?? 0, p.pow2 ?? 0,
      p.scale_axis ?? 0, p.scale_blocks ?? 0);
  }
}

function noMemory(bytes, what, heap) {
  const mib = (n) => (n / 1048576).toFixed(1);
  return new TrilliumError(
    'NO_MEMORY',
    `out of WebAssembly memory allocating ${bytes} bytes for ${what} (heap is ${mib(heap)} MiB; the wasm32 limit is 4096 MiB)`,
  );
}
