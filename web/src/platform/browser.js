// Browser / worker / bundler side of the platform layer (the default, see
// index.js). Packs are fetched; hashing uses crypto.subtle.
import { TrilliumError } from '../errors.js';
import { CacheApiStore } from '../cache.js';
import { HttpSource } from './http.js';

export const isNode = false;

/** Browsers stream-compile from the URL instead (see wasm.js). */
export async function readWasm() {
  return null;
}

function baseHref() {
  if (typeof document !== 'undefined' && document.baseURI) return document.baseURI;
  if (typeof location !== 'undefined') return location.href;
  return undefined;
}

export function openPack(source, opts = {}) {
  let url;
  try {
    url = source instanceof URL ? source : new URL(String(source), baseHref());
  } catch (e) {
    throw new TrilliumError('BAD_ARGUMENT', `pack source ${source} is not a URL`, { cause: e });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new TrilliumError('BAD_ARGUMENT', `unsupported pack URL scheme ${url.protocol} (use http or https)`);
  }
  return new HttpSource(url, opts);
}

export async function sha256Hex(bytes) {
  if (!globalThis.crypto?.subtle) {
    throw new TrilliumError('IO', 'crypto.subtle is unavailable (pages must be served over https or from localhost)');
  }
  // subtle.digest copies its input: one chunk (a few MiB) at a time, never the model.
  // Browsers refuse views of a SharedArrayBuffer (the pthreads build's heap): hash a copy then.
  const shared = typeof SharedArrayBuffer === 'function' && bytes.buffer instanceof SharedArrayBuffer;
  const d = new Uint8Array(await crypto.subtle.digest('SHA-256', shared ? bytes.slice() : bytes));
  let s = '';
  for (const b of d) s += b.toString(16).padStart(2, '0');
  return s;
}

export function randomSeed() {
  const a = new Uint32Array(2);
  crypto.getRandomValues(a);
  return [a[0], a[1]];
}

// A MessageChannel round trip yields to the event loop (so an abort click is
// seen) without setTimeout's 4 ms clamp.
export function yieldToEventLoop() {
  if (typeof MessageChannel === 'undefined') return new Promise((r) => setTimeout(r, 0));
  return new Promise((r) => {
    const ch = new MessageChannel();
    ch.port1.onmessage = () => {
      ch.port1.close();
      r();
    };
    ch.port2.postMessage(0);
  });
}

export const defaultWasmLocation = () => new URL('../../dist/trillium.wasm', import.meta.url);

export function openCache(name) {
  if (!globalThis.caches) return null; // insecure context, or a runtime without the Cache API
  return new CacheApiStore(name ?? 'trillium');
}

export function systemMemory() {
  return undefined;
}

export function createWorker() {
  if (typeof Worker !== 'function') throw new TrilliumError('BAD_ARGUMENT', 'worker: true needs Worker, which this runtime lacks');
  const w = new Worker(new URL('../worker.js', import.meta.url), { type: 'module', name: 'trillium' });
  return {
    post: (msg, transfer) => w.postMessage(msg, transfer ?? []),
    onMessage: (fn) => w.addEventListener('message', (e) => fn(e.data)),
    onError: (fn) => {
      w.addEventListener('error', (e) => fn(new Error(e.message || 'the trillium worker failed to start')));
      w.addEventListener('messageerror', () => fn(new Error('a message from the trillium worker could not be read')));
    },
    terminate: () => w.terminate(),
  };
}

/** A page's main thread (not a worker, where the engine already is off the UI thread). */
export function workerByDefault() {
  return typeof Worker === 'function' && typeof window !== 'undefined' && typeof document !== 'undefined';
}
