// Runs the browser build of bench-kernels (bench-kernels-web*.js, an
// Emscripten ES module factory) in a page or a module Worker: main(args)
// through callMain, stdout and stderr lines collected from Module.print /
// Module.printErr. browser.mjs imports it into its page, which either calls
// runKernels itself ('page') or starts this file as a module Worker
// ('worker'), which answers one message. stderr lines (the readable table)
// also go to onLine as they come, for progress.

/**
 * @param {{glue: string, args: string[]}} o glue URL (bench-kernels-web.js or -mt.js), main's arguments
 * @param {(stream: 'stdout'|'stderr', line: string) => void} [onLine]
 * @returns {Promise<{rc: number, stdout: string[], stderr: string[], env: object}>}
 */
export async function runKernels(o, onLine = () => {}) {
  const { default: createBenchKernels } = await import(o.glue);
  const stdout = [];
  const stderr = [];
  const mod = await createBenchKernels({
    print: (line) => {
      stdout.push(line);
      onLine('stdout', line);
    },
    printErr: (line) => {
      stderr.push(line);
      onLine('stderr', line);
    },
  });
  const rc = mod.callMain(o.args);
  return {
    rc: rc ?? 0,
    stdout,
    stderr,
    env: {
      where: typeof window !== 'undefined' ? 'page' : 'worker',
      crossOriginIsolated: globalThis.crossOriginIsolated ?? null,
      hardwareConcurrency: globalThis.navigator?.hardwareConcurrency ?? null,
      userAgent: globalThis.navigator?.userAgent ?? null,
    },
  };
}

if (typeof WorkerGlobalScope !== 'undefined' && globalThis instanceof WorkerGlobalScope) {
  globalThis.onmessage = async (e) => {
    try {
      const result = await runKernels(e.data, (stream, line) => globalThis.postMessage({ line: { stream, line } }));
      globalThis.postMessage({ result });
    } catch (err) {
      globalThis.postMessage({ error: String(err?.stack || err) });
    }
  };
}
