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
export const openPack = (source) => impl.openPack(source);
export const sha256Hex = (bytes) => impl.sha256Hex(bytes);
export const randomSeed = () => impl.randomSeed();
export const yieldToEventLoop = () => impl.yieldToEventLoop();
export const defaultWasmLocation = () => impl.defaultWasmLocation();
