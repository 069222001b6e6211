#!/usr/bin/env node
// Run an Emscripten program built for the web (-sENVIRONMENT=web -sEXIT_RUNTIME=1, its .js and
// .wasm side by side) in Debian's headless Chromium, as ctest runs the other wasm tests under
// Node: its stdout and stderr are printed here and its exit status is this process's.
// For the builds Node cannot run, e.g. the relaxed-SIMD kernels (Node 20's V8 does not compute
// relaxed SIMD's dot product correctly; Chromium does).
//
//   node tests/e2e/wasm-page-runner.mjs build/wasm/tests/test-kernels-ternary-relaxed.js [ARGS...]
//
// Needs playwright-core in demo/node_modules (make test-e2e installs it) and /usr/bin/chromium.
// The page is served from 127.0.0.1 with COOP/COEP (cross-origin isolated, as pthreads need).
import { existsSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { startServer } from '../../demo/serve.mjs';
import { CHROMIUM, playwright } from './harness.mjs';

const TIMEOUT_MS = Number(process.env.TRL_WASM_TEST_TIMEOUT_MS || 600000);

async function main() {
  const [prog, ...args] = process.argv.slice(2);
  if (!prog) {
    console.error('usage: wasm-page-runner.mjs PROGRAM.js [ARGS...]');
    return 2;
  }
  const js = resolve(prog);
  if (!existsSync(js)) {
    console.error(`wasm-page-runner: ${js} not found`);
    return 2;
  }
  if (!existsSync(CHROMIUM)) {
    console.error(`wasm-page-runner: Chromium not found at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM)`);
    return 2;
  }
  const srv = await startServer({ root: dirname(js), port: 0, isolation: true });
  const { chromium } = playwright();
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  try {
    const page = await browser.newPage();
    let done;
    const finished = new Promise((r) => {
      done = r;
    });
    await page.exposeFunction('__trlOut', (stream, text) => (stream === 1 ? process.stdout : process.stderr).write(text + '\n'));
    await page.exposeFunction('__trlExit', (code) => done(code));
    page.on('pageerror', (e) => {
      process.stderr.write(`wasm-page-runner: page error: ${e.message}\n`);
      done(1);
    });
    await page.goto(`${srv.url}${basename(js)}`); // any same-origin document will do
    await page.evaluate((argv) => {
      globalThis.Module = {
        arguments: argv,
        print: (t) => globalThis.__trlOut(1, t),
        printErr: (t) => globalThis.__trlOut(2, t),
        onExit: (code) => globalThis.__trlExit(code),
        onAbort: (what) => {
          globalThis.__trlOut(2, `aborted: ${what}`);
          globalThis.__trlExit(1);
        },
      };
    }, args);
    await page.addScriptTag({ url: `${srv.url}${basename(js)}` });
    let timer;
    const code = await Promise.race([finished, new Promise((r) => {
      timer = setTimeout(() => {
        process.stderr.write(`wasm-page-runner: no exit within ${TIMEOUT_MS / 1000} s\n`);
        r(124);
      }, TIMEOUT_MS);
    })]);
    clearTimeout(timer);
    return code;
  } finally {
    await browser.close();
    srv.close();
  }
}

process.exitCode = await main();
