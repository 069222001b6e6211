// Node side of the platform layer, installed by src/node.js. Packs come from
// a local directory or an http(s) URL; chunk files are read straight into the
// wasm heap, never into an intermediate Buffer.
import { createHash, randomFillSync } from 'node:crypto';
import { open, readFile } from 'node:fs/promises';
import { totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TrilliumError } from '../errors.js';
import { DirStore, defaultCacheDir } from './cache-node.js';
import { HttpSource } from './http.js';

export const isNode = true;

/** Bytes of the wasm module at a file location, or null to let the caller fetch it. */
export async function readWasm(location) {
  let path = null;
  if (location instanceof URL) {
    if (location.protocol !== 'file:') return null;
    path = fileURLToPath(location);
  } else if (typeof location === 'string') {
    if (/^https?:\/\//i.test(location)) return null;
    path = location.startsWith('file:') ? fileURLToPath(location) : location;
  } else return null;
  try {
    return await readFile(path);
  } catch (e) {
    throw new TrilliumError(
      'WASM',
      `cannot read the WebAssembly module ${path}: ${e.code === 'ENOENT' ? 'no such file' : e.message}` +
        ' (build it with `make wasm` and copy it to web/dist/trillium.wasm, or pass {wasm: path})',
      { file: path, cause: e },
    );
  }
}

class DirSource {
  constructor(dir) {
    this.dir = resolve(dir);
    this.label = this.dir;
  }

  describe(file) {
    return join(this.dir, file);
  }

  async readText(file) {
    const p = this.describe(file);
    try {
      return await readFile(p, 'utf8');
    } catch (e) {
      throw fsError(p, file, e);
    }
  }

  async readInto(file, expected, view, onBytes, { field = 'bytes', fileField } = {}) {
    const p = this.describe(file);
    let fh;
    try {
      fh = await open(p, 'r');
    } catch (e) {
      throw fsError(p, file, e, fileField);
    }
    try {
      const { size } = await fh.stat();
      if (size !== expected) {
        throw new TrilliumError(
          'SIZE_MISMATCH',
          `${p}: size is ${size} bytes but manifest.json ${field} says ${expected}` +
            ' (a truncated or replaced chunk: re-run trillium-convert)',
          { file, field },
        );
      }
      // Read in slices so progress is reported and a fresh heap view is taken
      // per slice; the bytes land in the heap directly.
      const SLICE = 8 << 20;
      let pos = 0;
      while (pos < expected) {
        const n = Math.min(SLICE, expected - pos);
        const { bytesRead } = await fh.read(view(pos, n), 0, n, pos);
        if (bytesRead === 0) {
          throw new TrilliumError('SIZE_MISMATCH', `${p}: file ended after ${pos} of ${expected} bytes`, {
            file,
            field,
          });
        }
        pos += bytesRead;
        onBytes(bytesRead);
      }
    } catch (e) {
      if (e instanceof TrilliumError) throw e;
      throw fsError(p, file, e);
    } finally {
      await fh.close();
    }
  }
}

function fsError(path, file, e, field) {
  if (e.code === 'ENOENT') return new TrilliumError('MISSING_FILE', `${path}: no such file`, { file, field, cause: e });
  if (e.code === 'EISDIR') return new TrilliumError('IO', `${path}: is a directory`, { file, field, cause: e });
  return new TrilliumError('IO', `${path}: ${e.message}`, { file, field, cause: e });
}

/** A pack location: a directory path, a file: URL, or an http(s) URL. */
export function openPack(source, opts = {}) {
  if (source instanceof URL) {
    if (source.protocol === 'file:') return new DirSource(fileURLToPath(source));
    if (source.protocol === 'http:' || source.protocol === 'https:') return new HttpSource(source, opts);
    throw new TrilliumError('BAD_ARGUMENT', `unsupported pack URL scheme ${source.protocol}`);
  }
  if (typeof source !== 'string' || source === '') {
    throw new TrilliumError('BAD_ARGUMENT', 'pack source must be a directory path or an http(s) URL');
  }
  if (/^https?:\/\//i.test(source)) return new HttpSource(new URL(source), opts);
  if (source.startsWith('file:')) return new DirSource(fileURLToPath(source));
  return new DirSource(source);
}

export async function sha256Hex(bytes) {
  return createHash('sha256').update(bytes).digest('hex');
}

export function randomSeed() {
  const a = new Uint32Array(2);
  randomFillSync(a);
  return [a[0], a[1]];
}

// setImmediate lets timers and I/O (an AbortController fired from a timer, a
// SIGINT handler) run between tokens without the 1 ms floor of setTimeout.
export function yieldToEventLoop() {
  return new Promise((r) => setImmediate(r));
}

export const defaultWasmLocation = () => new URL('../../dist/trillium.wasm', import.meta.url);

/** The cache directory: `name` if given, else $TRILLIUM_CACHE, else ~/.cache/trillium. */
export function openCache(name) {
  return new DirStore(name ?? defaultCacheDir());
}

export function systemMemory() {
  return totalmem();
}

export function createWorker() {
  // worker_threads is loaded on demand: most Node users never start a worker.
  return import('node:worker_threads').then(({ Worker }) => {
    // The worker inherits the process's flags, except those that only make
    // sense for an -e/stdin entry point (a worker starts from a file).
    const execArgv = [];
    for (let i = 0; i < process.execArgv.length; i++) {
      const a = process.execArgv[i];
      if (a === '--input-type') i++;
      else if (!a.startsWith('--input-type=')) execArgv.push(a);
    }
    const w = new Worker(new URL('../worker-node.js', import.meta.url), { execArgv });
    return {
      post: (msg, transfer) => w.postMessage(msg, transfer ?? []),
      onMessage: (fn) => w.on('message', fn),
      onError: (fn) => {
        w.on('error', fn);
        w.on('exit', (code) => fn(new Error(`the trillium worker exited (code ${code})`)));
      },
      terminate: () => w.terminate(),
      unref: () => w.unref(),
      ref: () => w.ref(),
    };
  });
}

export function workerByDefault() {
  return false;
}
