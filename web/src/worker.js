// The engine's module Worker for browsers (started by Trillium.load with
// worker: true, the default on a page's main thread):
//   new Worker(new URL('./worker.js', import.meta.url), { type: 'module' })
// Bundlers that understand that pattern (Vite, webpack 5, esbuild with the
// plugin) ship this file and its imports as a worker chunk.
import { serve } from './worker-server.js';

serve({
  post: (msg, transfer) => self.postMessage(msg, transfer ?? []),
  onMessage: (fn) => self.addEventListener('message', (e) => fn(e.data)),
});
