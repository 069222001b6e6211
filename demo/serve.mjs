#!/usr/bin/env node
// A static file server for the demo site (Node's http, no dependencies).
//
//   node demo/serve.mjs [SITE_DIR] [--port 8080] [--host 127.0.0.1] [--no-isolation] [--quiet]
//
// It serves what any static host would: files with their MIME types (wasm as
// application/wasm so browsers compile while downloading), index.html for
// directories, ETag revalidation, single byte ranges. By default it also sends
// the cross-origin isolation headers (COOP same-origin + COEP require-corp),
// which give pages SharedArrayBuffer and so the threaded wasm build;
// --no-isolation leaves them out, as on hosts that cannot set headers, where
// the demo's service worker adds them instead.
import { createReadStream, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

export const MIME = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.webmanifest': 'application/manifest+json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.md': 'text/markdown; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.bin': 'application/octet-stream',
};

export const ISOLATION_HEADERS = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

/**
 * Start serving `root`. Resolves to { server, url, close() }.
 * `root` is read on every request, so a site rebuilt in place is served at once.
 * @param {{root: string, port?: number, host?: string, isolation?: boolean, log?: (line: string) => void}} opts
 */
export function startServer({ root, port = 8080, host = '127.0.0.1', isolation = true, log = null }) {
  const base = resolve(root);
  const server = createServer((req, res) => {
    const common = {
      'Cache-Control': 'no-cache', // revalidate every time: a rebuilt site is seen at once
      'Access-Control-Allow-Origin': '*', // packs may be loaded from other origins
      'X-Content-Type-Options': 'nosniff',
      ...(isolation ? { ...ISOLATION_HEADERS, 'Cross-Origin-Resource-Policy': 'cross-origin' } : {}),
    };
    const done = (status, headers = {}, body = '') => {
      res.writeHead(status, { ...common, ...headers });
      res.end(req.method === 'HEAD' ? undefined : body);
      log?.(`${status} ${req.method} ${req.url}`);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return done(405, { Allow: 'GET, HEAD' }, 'method not allowed\n');
    let path;
    try {
      path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    } catch {
      return done(400, {}, 'bad request\n');
    }
    let file = resolve(base, '.' + path);
    if (file !== base && !file.startsWith(base + sep)) return done(403, {}, 'forbidden\n');
    let st;
    try {
      st = statSync(file);
      if (st.isDirectory()) {
        if (!path.endsWith('/')) return done(301, { Location: path + '/' });
        file = join(file, 'index.html');
        st = statSync(file);
      }
    } catch {
      return done(404, { 'Content-Type': 'text/plain; charset=utf-8' }, `not found: ${path}\n`);
    }
    if (!st.isFile()) return done(404, {}, 'not found\n');
    const etag = `"${st.size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"`;
    const headers = {
      'Content-Type': MIME[extname(file).toLowerCase()] || 'application/octet-stream',
      ETag: etag,
      'Last-Modified': st.mtime.toUTCString(),
      'Accept-Ranges': 'bytes',
    };
    if (req.headers['if-none-match'] === etag) return done(304, { ETag: etag });
    let start = 0;
    let end = st.size - 1;
    let status = 200;
    const range = req.headers.range;
    if (range && (!req.headers['if-range'] || req.headers['if-range'] === etag)) {
      const m = /^bytes=(\d*)-(\d*)$/.exec(range.trim());
      if (!m || (m[1] === '' && m[2] === '')) return done(416, { 'Content-Range': `bytes */${st.size}` });
      if (m[1] === '') start = Math.max(0, st.size - Number(m[2]));
      else {
        start = Number(m[1]);
        if (m[2] !== '') end = Math.min(end, Number(m[2]));
      }
      if (start > end || start >= st.size) return done(416, { 'Content-Range': `bytes */${st.size}` });
      status = 206;
      headers['Content-Range'] = `bytes ${start}-${end}/${st.size}`;
    }
    headers['Content-Length'] = String(end - start + 1);
    res.writeHead(status, { ...common, ...headers });
    log?.(`${status} ${req.method} ${req.url}`);
    if (req.method === 'HEAD' || st.size === 0) return res.end();
    createReadStream(file, { start, end })
      .on('error', () => res.destroy())
      .pipe(res);
  });
  return new Promise((resolveStart, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const { port: p } = server.address();
      const shownHost = host.includes(':') ? `[${host}]` : host;
      resolveStart({
        server,
        url: `http://${shownHost}:${p}/`,
        close: () =>
          new Promise((r) => {
            server.closeAllConnections?.();
            server.close(() => r());
          }),
      });
    });
  });
}

function parseArgs(argv) {
  const o = { root: null, port: 8080, host: '127.0.0.1', isolation: true, quiet: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--port') o.port = Number(value());
    else if (a === '--host') o.host = value();
    else if (a === '--no-isolation') o.isolation = false;
    else if (a === '--quiet') o.quiet = true;
    else if (a === '-h' || a === '--help') o.help = true;
    else if (a.startsWith('-')) throw new Error(`unknown option ${a}`);
    else if (o.root === null) o.root = a;
    else throw new Error(`unexpected argument ${a}`);
  }
  if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535) throw new Error('--port must be 0..65535');
  return o;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  let o;
  try {
    o = parseArgs(process.argv.slice(2));
  } catch (e) {
    console.error(`serve.mjs: ${e.message} (try --help)`);
    process.exit(2);
  }
  if (o.help) {
    console.log('usage: node demo/serve.mjs [SITE_DIR] [--port 8080] [--host 127.0.0.1] [--no-isolation] [--quiet]');
    process.exit(0);
  }
  const root = o.root ?? join(fileURLToPath(new URL('..', import.meta.url)), 'build/demo/site');
  try {
    statSync(join(root, 'index.html'));
  } catch {
    console.error(`serve.mjs: ${root}/index.html not found: build the site first (make demo, or node demo/build.mjs)`);
    process.exit(1);
  }
  try {
    const s = await startServer({ ...o, root, log: o.quiet ? null : (line) => console.log(line) });
    console.log(`Trillium demo: ${s.url}  (serving ${root}${o.isolation ? ', cross-origin isolated' : ', no COOP/COEP headers'}; Ctrl+C stops)`);
  } catch (e) {
    console.error(`serve.mjs: cannot listen on ${o.host}:${o.port}: ${e.message}${e.code === 'EADDRINUSE' ? ' (another server is running there: stop it or pass --port)' : ''}`);
    process.exit(1);
  }
}
