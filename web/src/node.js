// The package's Node entry (package.json "exports" condition "node"): the
// same API as index.js, with packs read from local directories and the wasm
// from the file system.
import * as nodePlatform from './platform/node.js';
import { setPlatform } from './platform/index.js';

setPlatform(nodePlatform);

export * from './index.js';
export { default } from './index.js';
