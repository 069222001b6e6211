// Loading trillium.wasm: a standalone reactor module (emcc --no-entry
// -sSTANDALONE_WASM) with no emscripten JS. It imports exactly one function,
// env.emscripten_notify_memory_growth; anything else it asks for is a build
// mistake and is reported as such rather than stubbed.
import { TrilliumError } from './errors.js';
import { defaultWasmLocation, isNode, readWasm } from './platform/index.js';

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
