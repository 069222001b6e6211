// The platform layer in use. Browsers (and bundlers targeting them) get
// browser.js by default and never see a node: import; the package's Node entry
// (src/node.js) installs node.js before any user code runs.
import * as browser from './browser.js';

let impl = browser;

/** @param {typeof browser} p */
export function setPlatform(p) {
  impl = p;
}

export const isNode = () => impl.isNode;
export const readWasm = (location) => impl.readWasm(location);
export const openPack = (source, opts) => impl.openPack(source, opts);
export const sha256Hex = (bytes) => impl.sha256Hex(bytes);
export const randomSeed = () => impl.randomSeed();
export const yieldToEventLoop = () => impl.yieldToEventLoop();
export const defaultWasmLocation = () => impl.defaultWasmLocation();
/** The download cache a `cache` option names (undefined/true: the default; a string: a directory in Node, a cache name in browsers), or null. */
export const openCache = (name) => impl.openCache(name);
/** Total system memory in bytes where the platform knows it (Node), else undefined. */
export const systemMemory = () => impl.systemMemory();
/** Start the engine worker (worker_threads in Node, a module Worker in browsers): a port {post, onMessage, onError, terminate}. */
export const createWorker = () => impl.createWorker();
/** True where `worker: 'auto'` should run the engine in a worker (a browser page). */
export const workerByDefault = () => impl.workerByDefault();
