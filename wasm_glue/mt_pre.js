// --pre-js of trillium-mt.js: runs inside the MODULARIZE factory, before the
// runtime. Node has no global Worker; web/src/wasm.js passes one built on
// worker_threads as Module.trlwWorker, and this binding shadows the global for
// the glue alone (nothing is installed on globalThis).
var Worker = Module['trlwWorker'] || globalThis.Worker;
