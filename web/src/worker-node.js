// The engine's worker for Node (worker_threads, Trillium.load with
// worker: true): the Node platform layer (files, the cache directory) plus
// the same protocol as the browser worker.
import { parentPort } from 'node:worker_threads';
import * as nodePlatform from './platform/node.js';
import { setPlatform } from './platform/index.js';
import { serve } from './worker-server.js';

setPlatform(nodePlatform);
serve({
  post: (msg, transfer) => parentPort.postMessage(msg, transfer ?? []),
  onMessage: (fn) => parentPort.on('message', fn),
});
