// The demo's build and serving scripts, without a browser: what build.mjs puts
// in the site (and how its version follows the content), and that serve.mjs
// answers like a static host should (MIME types, COOP/COEP on request, ranges,
// revalidation, no way out of the site directory).
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { buildSite } from '../../demo/build.mjs';
import { startServer } from '../../demo/serve.mjs';
import { WEB, stories260K, tmpDir } from './harness.mjs';

// A raw GET (node's fetch would normalise "/../" away before sending it).
function get(url, path, headers = {}) {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = request({ host: u.hostname, port: u.port, path, headers }, (res) => {
      const parts = [];
      res.on('data', (d) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(parts) }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('demo/build.mjs', () => {
  test('assembles shell, package, wasm builds and packs; the version follows the content', async () => {
    const out = join(tmpDir(), 'site');
    const r = buildSite({ out, packs: [{ name: 'stories260K', dir: await stories260K() }], web: WEB });
    for (const f of ['index.html', 'app.js', 'style.css', 'sw.js', 'manifest.webmanifest', 'config.json', 'lib/markdown.js',
      'icons/icon-192.png', 'icons/icon-512.png', 'icons/icon-maskable-512.png', 'trillium/src/index.js', 'trillium/dist/trillium.wasm',
      'packs/stories260K/manifest.json']) {
      assert.ok(existsSync(join(out, f)), `${f} is in the site`);
    }
    const sw = readFileSync(join(out, 'sw.js'), 'utf8');
    assert.match(sw, new RegExp(`const VERSION = "${r.version}";`));
    const shell = JSON.parse(/const SHELL = (.*);/.exec(sw)[1]);
    assert.ok(shell.includes('./') && shell.includes('trillium/dist/trillium.wasm') && shell.includes('app.js'));
    for (const w of r.wasms) assert.ok(shell.includes(`trillium/dist/${w}`), `${w} is precached`);
    assert.ok(!shell.some((f) => f.startsWith('packs/')), 'packs are cached on use, not precached');
    assert.deepEqual(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).packs, [{ name: 'stories260K', url: 'packs/stories260K/' }]);
    const m = JSON.parse(readFileSync(join(out, 'manifest.webmanifest'), 'utf8'));
    assert.ok(m.icons.some((i) => i.purpose === 'maskable') && m.icons.some((i) => i.sizes === '512x512'));
    for (const i of m.icons) {
      const png = readFileSync(join(out, i.src));
      assert.equal(png.subarray(1, 4).toString(), 'PNG');
      assert.equal(`${png.readUInt32BE(16)}x${png.readUInt32BE(20)}`, i.sizes, `${i.src} is ${i.sizes}`);
    }

    assert.equal(buildSite({ out, packs: [], web: WEB }).version, buildSite({ out, packs: [], web: WEB }).version, 'same input, same version');
    assert.notEqual(buildSite({ out, packs: [], web: WEB, tag: 'x' }).version, r.version);
  });

  test('refuses a missing wasm build or pack with what to run', () => {
    assert.throws(() => buildSite({ out: join(tmpDir(), 's'), web: tmpDir() }), /index\.js not found: is .* the trillium package/);
    assert.throws(() => buildSite({ out: join(tmpDir(), 's'), web: WEB, packs: [{ name: 'p', dir: tmpDir() }] }), /make pack/);
  });
});

describe('demo/serve.mjs', () => {
  let site;
  let iso;
  let plain;
  before(async () => {
    site = join(tmpDir(), 'site');
    buildSite({ out: site, packs: [{ name: 'stories260K', dir: await stories260K() }], web: WEB });
    iso = await startServer({ root: site, port: 0 });
    plain = await startServer({ root: site, port: 0, isolation: false });
  });
  after(async () => {
    await iso?.close();
    await plain?.close();
  });

  test('MIME types, COOP/COEP, index.html for directories', async () => {
    const types = {
      '/': 'text/html', '/app.js': 'text/javascript', '/style.css': 'text/css', '/manifest.webmanifest': 'application/manifest+json',
      '/trillium/dist/trillium.wasm': 'application/wasm', '/icons/icon-192.png': 'image/png', '/config.json': 'application/json',
    };
    for (const [p, t] of Object.entries(types)) {
      const r = await get(iso.url, p);
      assert.equal(r.status, 200, p);
      assert.ok(r.headers['content-type'].startsWith(t), `${p}: ${r.headers['content-type']}`);
      assert.equal(r.headers['cross-origin-opener-policy'], 'same-origin');
      assert.equal(r.headers['cross-origin-embedder-policy'], 'require-corp');
    }
    const r = await get(plain.url, '/');
    assert.equal(r.status, 200);
    assert.equal(r.headers['cross-origin-opener-policy'], undefined, '--no-isolation sends no COOP');
    assert.equal((await get(iso.url, '/packs')).status, 301);
  });

  test('no path leaves the site; unknown files are 404', async () => {
    for (const p of ['/../package.json', '/%2e%2e/%2e%2e/etc/passwd', '/packs/../../../etc/passwd', '/..%2f..%2fetc%2fpasswd']) {
      const r = await get(iso.url, p);
      assert.ok([403, 404].includes(r.status), `${p} -> ${r.status}`);
      assert.ok(!r.body.toString().includes('root:'), p);
    }
    assert.equal((await get(iso.url, '/nope.js')).status, 404);
  });

  test('byte ranges and ETag revalidation', async () => {
    const file = '/packs/stories260K/manifest.json';
    const whole = await get(iso.url, file);
    const part = await get(iso.url, file, { Range: 'bytes=2-9' });
    assert.equal(part.status, 206);
    assert.deepEqual(part.body, whole.body.subarray(2, 10));
    assert.equal(part.headers['content-range'], `bytes 2-9/${whole.body.length}`);
    const tail = await get(iso.url, file, { Range: 'bytes=-4' });
    assert.deepEqual(tail.body, whole.body.subarray(whole.body.length - 4));
    assert.equal((await get(iso.url, file, { Range: `bytes=${whole.body.length}-` })).status, 416);
    assert.equal((await get(iso.url, file, { 'If-None-Match': whole.headers.etag })).status, 304);
  });
});
