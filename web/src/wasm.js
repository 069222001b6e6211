// Loading the two WebAssembly builds.
//
// trillium.wasm: a standalone reactor module (emcc --no-entry
// -sSTANDALONE_WASM) with no emscripten JS. It imports exactly one function,
// env.emscripten_notify_memory_growth; anything else it asks for is a build
// mistake and is reported as such rather than stubbed.
//
// trillium-mt.{js,wasm,worker.js}: the same exports over the -pthread core,
// whose contexts run n threads. Pthreads need Emscripten's JS glue (an ES
// module built for web and worker only, see wasm_glue/CMakeLists.txt); this
// file feeds it the compiled module and, in Node, a Worker class over
// worker_threads, so the one glue file runs in pages, workers and Node.
import { TrilliumError } from './errors.js';
import { defaultWasmLocation, isNode, readWasm } from './platform/index.js';

/** 'auto' threads: the hardware's parallelism, at most this (memory-bound decode gains little beyond). */
export const AUTO_THREADS_CAP = 4;
/** The core's per-context limit (trl_ctx_params.n_threads). */
export const MAX_THREADS = 64;
/** How long the pthreads build's workers may take to load before the load fails. */
const START_TIMEOUT_MS = 60000;

// Hidden from bundlers: only reached in Node.
const NODE_OS = 'node:os';
const NODE_WORKER_THREADS = 'node:worker_threads';
const NODE_URL = 'node:url';

const moduleCache = new Map();

/**
 * Compile the module (cached per location).
 * @param {string|URL|ArrayBuffer|ArrayBufferView|WebAssembly.Module} [wasm]
 *   a path (Node), a URL, the bytes, or a compiled module; default
 *   `../dist/trillium.wasm` next to this package's src/.
 * @returns {Promise<WebAssembly.Module>}
 */
export async function compileWasm(wasm) {
  if (wasm instanceof WebAssembly.Module) return wasm;
  if (wasm instanceof ArrayBuffer || ArrayBuffer.isView(wasm)) return compileBytes(wasm, 'the given bytes');
  const location = wasm === undefined || wasm === null ? defaultWasmLocation() : wasm;
  const key = location instanceof URL ? location.href : String(location);
  let p = moduleCache.get(key);
  if (!p) {
    p = compileFrom(location);
    moduleCache.set(key, p);
    p.catch(() => moduleCache.delete(key));
  }
  return p;
}

async function compileBytes(bytes, label) {
  try {
    return await WebAssembly.compile(bytes);
  } catch (e) {
    throw new TrilliumError('WASM', `cannot compile the WebAssembly module (${label}): ${e.message}`, { cause: e });
  }
}

async function compileFrom(location) {
  const bytes = await readWasm(location);
  if (bytes) return compileBytes(bytes, String(location));
  const url = location instanceof URL ? location : new URL(String(location), globalThis.location?.href);
  let res;
  try {
    res = await fetch(url);
  } catch (e) {
    throw new TrilliumError('WASM', `cannot fetch ${url.href}: ${e.message}`, { cause: e });
  }
  if (!res.ok) throw new TrilliumError('WASM', `cannot fetch ${url.href}: HTTP ${res.status}`);
  // compileStreaming needs Content-Type application/wasm; servers that send
  // anything else still work through the buffered path.
  if (!isNode() && typeof WebAssembly.compileStreaming === 'function' &&
      (res.headers.get('content-type') || '').startsWith('application/wasm')) {
    try {
      return await WebAssembly.compileStreaming(res);
    } catch (e) {
      throw new TrilliumError('WASM', `cannot compile ${url.href}: ${e.message}`, { cause: e });
    }
  }
  return compileBytes(await res.arrayBuffer(), url.href);
}

/**
 * Instantiate a fresh instance (its own heap). `onGrowth` is called after the
 * heap grows, when every typed-array view on the old buffer is stale.
 */
export async function instantiateWasm(module, onGrowth) {
  const env = { emscripten_notify_memory_growth: () => onGrowth() };
  const imports = {};
  for (const imp of WebAssembly.Module.imports(module)) {
    if (imp.module === 'env' && imp.name === 'emscripten_notify_memory_growth') continue;
    throw new TrilliumError(
      'WASM',
      `trillium.wasm imports ${imp.module}.${imp.name}, which this loader does not provide` +
        ' (the core must not use libc I/O; rebuild trillium.wasm from the matching sources)',
    );
  }
  imports.env = env;
  const instance = await WebAssembly.instantiate(module, imports);
  if (typeof instance.exports._initialize === 'function') instance.exports._initialize();
  return instance;
}

/**
 * Whether this environment can run the pthreads build: SharedArrayBuffer and,
 * in browsers, cross-origin isolation (COOP same-origin + COEP require-corp).
 * @returns {{ok: boolean, reason: string}} reason says why not ('' when ok)
 */
export function threadsSupport() {
  if (typeof SharedArrayBuffer !== 'function') {
    return { ok: false, reason: 'SharedArrayBuffer is unavailable' + (isNode() ? '' : ' (the page needs COOP/COEP headers)') };
  }
  if (isNode()) return { ok: true, reason: '' };
  if (globalThis.crossOriginIsolated !== true) {
    return { ok: false, reason: 'the page is not cross-origin isolated (serve it with Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp)' };
  }
  if (typeof Worker !== 'function') return { ok: false, reason: 'Worker is unavailable here' };
  return { ok: true, reason: '' };
}

/**
 * A `threads` option as a count: undefined/null -> 1, 'auto' -> the
 * hardware's parallelism capped at AUTO_THREADS_CAP, else an integer in
 * [1, MAX_THREADS].
 * @param {number|'auto'|undefined|null} threads
 * @returns {Promise<number>}
 */
export async function resolveThreads(threads) {
  if (threads === undefined || threads === null) return 1;
  if (threads === 'auto') return Math.max(1, Math.min(AUTO_THREADS_CAP, await hardwareThreads()));
  if (!Number.isInteger(threads) || threads < 1 || threads > MAX_THREADS) {
    throw new TrilliumError('BAD_ARGUMENT', `threads must be 'auto' or an integer in [1, ${MAX_THREADS}], got ${String(threads)}`);
  }
  return threads;
}

async function hardwareThreads() {
  if (isNode()) {
    try {
      const os = await import(/* webpackIgnore: true */ NODE_OS);
      return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
    } catch {
      return 1;
    }
  }
  const n = globalThis.navigator?.hardwareConcurrency;
  return Number.isInteger(n) && n > 0 ? n : 1;
}

/** The SIMD levels a build is chosen by: 'auto' picks 'relaxed' where relaxedSimdWorks(). */
export const SIMD_LEVELS = ['auto', 'simd128', 'relaxed'];

// A module whose probe() returns 1 when i32x4.relaxed_dot_i8x16_i7x16_add_s
// gives the exact dot product the relaxed kernels rely on (int8 x [0, 127],
// plus the accumulator): validating is not enough, since Node 20's V8 (11.3)
// accepts the opcode behind --experimental-wasm-relaxed-simd but computes
// something else. Source: (i32x4.all_true (i32x4.eq (dot_add a b c) expected)).
const RELAXED_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 127, 3, 2, 1, 0, 7, 9, 1, 5, 112, 114, 111, 98, 101, 0, 0, 10, 84, 1,
  82, 0, 253, 12, 129, 166, 203, 240, 21, 58, 95, 133, 170, 207, 244, 25, 62, 99, 137, 174, 253, 12, 0, 1, 2, 3, 0, 1,
  2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 253, 12, 232, 3, 0, 0, 208, 7, 0, 0, 184, 11, 0, 0, 160, 15, 0, 0, 253, 147, 2, 253,
  12, 244, 2, 0, 0, 87, 7, 0, 0, 186, 11, 0, 0, 31, 14, 0, 0, 253, 55, 253, 163, 1, 11]);
let relaxedOk;

/** Whether this engine runs the relaxed-SIMD builds correctly (Chrome/Edge 114+; not Node 20, Firefox, Safari). */
export function relaxedSimdWorks() {
  if (relaxedOk === undefined) {
    try {
      relaxedOk = WebAssembly.validate(RELAXED_PROBE) &&
        new WebAssembly.Instance(new WebAssembly.Module(RELAXED_PROBE)).exports.probe() === 1;
    } catch {
      relaxedOk = false;
    }
  }
  return relaxedOk;
}

/**
 * Resolve a `simd` option: 'relaxed' where asked for and available (asking for
 * it where it is not is an error), 'auto' -> relaxed where it works.
 * @returns {'simd128'|'relaxed'}
 */
export function resolveSimd(simd = 'auto') {
  if (!SIMD_LEVELS.includes(simd)) {
    throw new TrilliumError('BAD_ARGUMENT', `simd must be one of ${SIMD_LEVELS.join(', ')}, got ${String(simd)}`);
  }
  if (simd === 'simd128') return 'simd128';
  const ok = relaxedSimdWorks();
  if (simd === 'relaxed' && !ok) {
    throw new TrilliumError('WASM', 'relaxed SIMD is not available here (it needs e.g. Chrome 114+; use simd: \'auto\')');
  }
  return ok ? 'relaxed' : 'simd128';
}

/** The relaxed-SIMD standalone module by default: ../dist/trillium-relaxed.wasm. */
export const relaxedWasmLocation = () => new URL('trillium-relaxed.wasm', defaultWasmLocation());

/** Where the pthreads glue is by default: ../dist/trillium-mt.js next to this package's src/. */
export const defaultThreadsGlue = () => new URL('../dist/trillium-mt.js', import.meta.url);

async function toUrl(location) {
  if (location instanceof URL) return location;
  const s = String(location);
  const windowsPath = /^[a-z]:[\\/]/i.test(s);
  if (/^[a-z][a-z0-9+.-]*:/i.test(s) && !windowsPath) return new URL(s);
  if (isNode()) {
    const { pathToFileURL } = await import(/* webpackIgnore: true */ NODE_URL);
    return pathToFileURL(s);
  }
  return new URL(s, globalThis.location?.href);
}

/**
 * Start one instance of the pthreads build with `contexts * (threads - 1)`
 * workers ready (the calling thread is each context's thread 0), resolving
 * when every worker has loaded the module.
 * @param {object} [opts]
 * @param {string|URL} [opts.glue] trillium-mt.js (default ../dist/trillium-mt.js); its
 *   trillium-mt.worker.js must sit beside it
 * @param {string|URL|ArrayBuffer|ArrayBufferView|WebAssembly.Module} [opts.wasm] default:
 *   trillium-mt.wasm beside the glue (trillium-mt-relaxed.wasm with `relaxed`)
 * @param {boolean} [opts.relaxed] the relaxed-SIMD default module
 * @param {number} [opts.threads] 1..MAX_THREADS
 * @param {number} [opts.contexts] contexts alive at once (each holds threads - 1 workers)
 * @returns {Promise<{exports: object, memory: WebAssembly.Memory, workers: number, running: () => number,
 *   idle: () => number, terminate: () => void}>}
 */
export async function instantiateThreaded({ glue, wasm, threads = 1, contexts = 1, relaxed = false } = {}) {
  const poolSize = Math.max(1, contexts * (threads - 1));
  const glueUrl = glue === undefined || glue === null ? defaultThreadsGlue() : await toUrl(glue);
  if (isNode() && glueUrl.protocol !== 'file:') {
    throw new TrilliumError('WASM', `the pthreads glue must be a local file in Node, got ${glueUrl.href}`);
  }
  const wasmLocation = wasm ?? new URL(relaxed ? 'trillium-mt-relaxed.wasm' : 'trillium-mt.wasm', glueUrl);
  const module = await compileWasm(wasmLocation);
  let factory;
  try {
    factory = (await import(/* webpackIgnore: true */ glueUrl.href)).default;
  } catch (e) {
    throw new TrilliumError('WASM', `cannot load the pthreads glue ${glueUrl.href}: ${e.message}` +
      ' (build it with `cmake --build build/wasm --target trillium_wasm_mt`, which writes web/dist/trillium-mt.*)', { cause: e });
  }
  if (typeof factory !== 'function') throw new TrilliumError('WASM', `${glueUrl.href} is not the trillium-mt glue (no default export)`);

  // A worker that fails to load would leave the factory pending forever: its
  // error rejects the load instead (and is only logged once loaded).
  let fail;
  const failed = new Promise((_, reject) => {
    fail = reject;
  });
  let loaded = false;
  const onWorkerError = (e) => {
    const msg = e?.message ?? String(e);
    if (!loaded) fail(new TrilliumError('WASM', `a pthread worker of ${glueUrl.href} failed to start: ${msg}`, { cause: e }));
    else console.error(`trillium: a pthread worker failed: ${msg}`);
  };
  const workers = [];
  const WorkerClass = isNode() ? await nodeWorkerClass(workers, onWorkerError) : browserWorkerClass(workers, onWorkerError);
  const printErr = (text) => {
    // Node and module workers may block; a page's main thread busy-waits
    // instead (the core's fork-join wait is microseconds). Not worth a warning.
    if (String(text).startsWith('Blocking on the main thread')) return;
    console.warn(text);
  };
  const init = factory({
    // At least one: 3.1.6's glue waits for the last pool worker to load
    // before it resolves, so an empty pool would never resolve.
    trlwPoolSize: poolSize,
    trlwWorker: WorkerClass,
    mainScriptUrlOrBlob: glueUrl.href,
    print: (text) => console.log(text),
    printErr,
    instantiateWasm(imports, receive) {
      WebAssembly.instantiate(module, imports).then((instance) => receive(instance, module), (e) =>
        fail(new TrilliumError('WASM', `cannot instantiate ${String(wasmLocation)}: ${e.message}`, { cause: e })));
      return {};
    },
  });
  // A worker whose own import of the glue fails reports nowhere in browsers
  // (an unhandled rejection inside the worker): bound the wait instead.
  const timer = setTimeout(() => fail(new TrilliumError('WASM',
    `the ${poolSize} pthread workers of ${glueUrl.href} did not start within ${START_TIMEOUT_MS / 1000} s` +
    ' (is trillium-mt.worker.js served beside it, same-origin or with Cross-Origin-Resource-Policy?)')), START_TIMEOUT_MS);
  let M;
  try {
    M = await Promise.race([init, failed]);
  } catch (e) {
    for (const w of workers) w.terminate();
    if (e instanceof TrilliumError) throw e;
    throw new TrilliumError('WASM', `cannot start ${glueUrl.href}: ${e?.message ?? e}`, { cause: e });
  } finally {
    clearTimeout(timer);
  }
  loaded = true;
  // Idle pool workers must not keep Node alive: a program that forgets
  // dispose() still exits (the workers only run inside calls into the core).
  for (const w of workers) w.unref?.();
  const exports = M.asm;
  if (!exports || typeof exports.trlw_ctx_create_mt !== 'function') {
    for (const w of workers) w.terminate();
    throw new TrilliumError('WASM', `${glueUrl.href} does not export trlw_ctx_create_mt (rebuild it from wasm_glue/)`);
  }
  let terminated = false;
  return {
    exports,
    memory: M.wasmMemory,
    workers: workers.length,
    /** Pool workers running a pthread now (the contexts' threads beyond the caller's). */
    running: () => M.PThread.runningWorkers.length,
    /** Pool workers free for a new context's threads. */
    idle: () => M.PThread.unusedWorkers.length,
    terminate() {
      if (terminated) return;
      terminated = true;
      M.PThread.terminateAllThreads();
    },
  };
}

// The glue calls `new Worker(url)` and then uses onmessage / onerror /
// postMessage / terminate. In browsers the real Worker, with failures routed
// to the loader.
function browserWorkerClass(workers, onError) {
  return class TrilliumPthreadWorker extends Worker {
    constructor(url, opts) {
      super(url, opts);
      workers.push(this);
      this.addEventListener('error', (e) => onError(e));
    }
  };
}

// In Node: a worker_threads Worker that looks like a web one to the glue and
// to worker.js. The bootstrap gives the thread the globals worker.js uses
// (self, postMessage, onmessage) and queues messages until worker.js has set
// its onmessage (it is loaded asynchronously, and 'load' arrives at once).
const NODE_BOOT = `
const { parentPort, workerData } = require('node:worker_threads');
globalThis.self = globalThis;
globalThis.postMessage = (msg, transfer) => parentPort.postMessage(msg, transfer);
const queue = [];
let ready = false;
parentPort.on('message', (data) => {
  if (ready) globalThis.onmessage({ data });
  else queue.push(data);
});
import(workerData.url).then(() => {
  ready = true;
  for (const data of queue.splice(0)) globalThis.onmessage({ data });
}, (e) => {
  throw e;
});
`;

async function nodeWorkerClass(workers, onError) {
  const { Worker: NodeWorker } = await import(/* webpackIgnore: true */ NODE_WORKER_THREADS);
  return class TrilliumPthreadWorker {
    constructor(url) {
      this.onmessage = null;
      this.onerror = null;
      this._w = new NodeWorker(NODE_BOOT, { eval: true, workerData: { url: String(url) } });
      this._w.on('message', (data) => this.onmessage?.({ data }));
      this._w.on('error', (e) => onError(e));
      workers.push(this);
    }
    postMessage(msg, transfer) {
      this._w.postMessage(msg, transfer);
    }
    terminate() {
      this._w.terminate();
    }
    unref() {
      this._w.unref();
    }
  };
}
