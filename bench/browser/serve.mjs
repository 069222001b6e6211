// Shared by the browser benchmarks (bench/browser/bench.mjs,
// bench/kernels/browser.mjs): a static file server on 127.0.0.1 that can send
// the cross-origin isolation headers, and Debian's headless Chromium through
// playwright-core (never a downloaded browser).
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { extname, resolve, sep } from 'node:path';

const require = createRequire(import.meta.url);

export const TYPES = {
  '.js': 'text/javascript', '.mjs': 'text/javascript', '.json': 'application/json',
  '.wasm': 'application/wasm', '.html': 'text/html; charset=utf-8',
};

// COOP same-origin + COEP require-corp: crossOriginIsolated, so
// SharedArrayBuffer (the pthreads builds) and fine-grained performance.now().
export const ISOLATION_HEADERS = {
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-embedder-policy': 'require-corp',
  'cross-origin-resource-policy': 'same-origin',
};

/**
 * Serve `pages` (path -> HTML string) and the files under `roots` (URL prefix
 * ending in '/' -> directory), never a path outside those directories.
 * @param {{roots: Record<string, string>, pages?: Record<string, string>, isolation?: boolean}} o
 * @returns {Promise<{origin: string, close: () => void}>}
 */
export async function serveStatic({ roots, pages = {}, isolation = true }) {
  const headers = isolation ? ISOLATION_HEADERS : {};
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    if (path === '/favicon.ico') {
      res.writeHead(204, headers).end();
      return;
    }
    if (Object.hasOwn(pages, path)) {
      res.writeHead(200, { ...headers, 'content-type': TYPES['.html'] }).end(pages[path]);
      return;
    }
    let file = null;
    for (const [prefix, dir] of Object.entries(roots)) {
      if (path.startsWith(prefix)) {
        const f = resolve(dir, path.slice(prefix.length));
        if (f === dir || f.startsWith(dir + sep)) file = f;
        break;
      }
    }
    if (!file || !existsSync(file) || statSync(file).isDirectory()) {
      res.writeHead(404, headers).end('not found');
      return;
    }
    const body = readFileSync(file);
    res.writeHead(200, {
      ...headers,
      'content-type': TYPES[extname(file)] || 'application/octet-stream',
      'content-length': body.length,
      'cache-control': 'no-store',
    }).end(body);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { origin: `http://127.0.0.1:${server.address().port}`, close: () => server.close() };
}

/**
 * Headless Chromium (env CHROMIUM, default /usr/bin/chromium) through
 * playwright-core from bench/node_modules, with extraArgs added to its command
 * line (e.g. '--js-flags=--no-liftoff'). Throws an Error that says what to
 * install when either is missing.
 */
export async function launchChromium(extraArgs = []) {
  let chromium;
  try {
    ({ chromium } = require('playwright-core'));
  } catch {
    throw new Error('playwright-core is not installed: cd bench && npm install');
  }
  const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
  if (!existsSync(executablePath)) {
    throw new Error(`Chromium not found at ${executablePath} (apt-get install -y chromium, or set CHROMIUM)`);
  }
  return chromium.launch({
    executablePath,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-quic', ...extraArgs],
  });
}
