// The low-level binding: one wasm instance, its heap, and typed access to the
// trl_/trlw_ exports. Pointers cross the boundary as i32 and are read back with
// `>>> 0` (the heap may exceed 2 GiB); typed-array views are recreated after
// every memory growth.
import { TrilliumError } from './errors.js';
import { compileWasm, instantiateWasm } from './wasm.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: false });

export class Binding {
  /**
   * @param {{wasm?: string|URL|ArrayBuffer|ArrayBufferView|WebAssembly.Module}} [opts]
   * @returns {Promise<Binding>}
   */
  static async create(opts = {}) {
    const module = await compileWasm(opts.wasm);
    const b = new Binding();
    const instance = await instantiateWasm(module, () => b._refresh());
    b._init(instance);
    return b;
  }

  _init(instance) {
    /** Raw exports, for calls with plain number arguments. */
    this.x = instance.exports;
    this.memory = instance.exports.memory;
    for (const name of ['malloc', 'free', 'trlw_constants_json', 'trlw_error_new', 'trlw_model_create']) {
      if (typeof this.x[name] !== 'function') {
        throw new TrilliumError('WASM', `trillium.wasm does not export ${name} (rebuild it from wasm_glue/)`);
      }
    }
    this._buffer = null;
    this._refresh();
    this.constants = JSON.parse(this.callString((buf, cap) => this.x.trlw_constants_json(buf, cap), 1024));
    this.encodingIds = this.constants.encodings;
    this.encodingNames = Object.fromEntries(Object.entries(this.encodingIds).map(([k, v]) => [v, k]));
    this.statusNames = Object.fromEntries(Object.entries(this.constants.status).map(([k, v]) => [v, k]));
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
    return decoder.decode(u8.subarray(ptr, end));
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
        if (n <= cap) return decoder.decode(this.u8.subarray(buf, buf + n));
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
