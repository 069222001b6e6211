// Pack reader fault tests on packs written by the native converter: every
// broken pack is refused with a TrilliumError naming the file and field.
import assert from 'node:assert/strict';
import { appendFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { test } from 'node:test';
import { Trillium } from '../../web/src/node.js';
import { copyPack, needWasm, readManifestJson, serveDir, splitFirstChunk, stories260K, writeManifestJson } from './helpers.mjs';

// No download cache here: these tests count requests and inject faults per load.
const load = (src, opts = {}) => Trillium.load(src, { wasm: needWasm(), cache: false, ...opts });

async function refuses(src, code, re, field) {
  await assert.rejects(load(src), (e) => {
    assert.equal(e.name, 'TrilliumError', e.stack);
    assert.equal(e.code, code, e.message);
    if (re) assert.match(e.message, re);
    if (field !== undefined) assert.equal(e.field, field);
    return true;
  });
}

test('the converted pack loads, with progress reported', async () => {
  const dir = await stories260K();
  const seen = [];
  const m = await load(dir, { onProgress: (p) => seen.push(p) });
  try {
    const man = readManifestJson(dir);
    const total = man.chunks.reduce((s, c) => s + c.bytes, 0);
    assert.equal(seen.at(-1).loaded, total);
    assert.equal(seen.at(-1).total, total);
    assert.equal(seen.at(-1).chunksDone, man.chunks.length);
    assert.equal(m.info.config.vocab_size, 512);
    assert.equal(m.info.tensors, man.tensors.length);
  } finally {
    m.dispose();
  }
});

test('a pack split over several chunks gives the same logits', async () => {
  const one = await load(await stories260K());
  const dir = await copyPack();
  const { chunks } = splitFirstChunk(dir);
  assert.ok(chunks >= 2);
  const seen = [];
  const two = await load(dir, { onProgress: (p) => seen.push(p.file) });
  try {
    assert.equal(two.info.chunks, chunks);
    assert.ok(seen.includes('chunk-0000b.bin'));
    const a = await one.logits('Once upon a time');
    const b = await two.logits('Once upon a time');
    assert.deepEqual(Array.from(b.logits), Array.from(a.logits));
  } finally {
    one.dispose();
    two.dispose();
  }
});

test('missing chunk file', async () => {
  const dir = await copyPack();
  const man = readManifestJson(dir);
  const f = man.chunks.at(-1).file;
  rmSync(join(dir, f));
  await refuses(dir, 'MISSING_FILE', new RegExp(`${f}: no such file`));
});

test('missing manifest / not a pack directory', async () => {
  const dir = await copyPack();
  rmSync(join(dir, 'manifest.json'));
  await refuses(dir, 'MISSING_FILE', /manifest\.json: no such file/);
  await refuses('/nonexistent/pack', 'MISSING_FILE', /\/nonexistent\/pack\/manifest\.json/);
});

test('one corrupted byte is a sha256 mismatch naming the chunk and field', async () => {
  const dir = await copyPack();
  const man = readManifestJson(dir);
  const i = man.chunks.length - 1;
  const p = join(dir, man.chunks[i].file);
  const buf = readFileSync(p);
  buf[buf.length >> 1] ^= 0x01;
  writeFileSync(p, buf);
  await refuses(dir, 'SHA_MISMATCH', new RegExp(`${man.chunks[i].file}: sha256 is [0-9a-f]{64} but .*chunks\\[${i}\\]\\.sha256 says ${man.chunks[i].sha256}`), `chunks[${i}].sha256`);
});

test('a chunk longer or shorter than the manifest says', async () => {
  const dir = await copyPack();
  const man = readManifestJson(dir);
  appendFileSync(join(dir, man.chunks[0].file), Buffer.from([0]));
  await refuses(dir, 'SIZE_MISMATCH', new RegExp(`size is ${man.chunks[0].bytes + 1} bytes but manifest.json chunks\\[0\\]\\.bytes says ${man.chunks[0].bytes}`));
});

test('manifest with wrong byte counts', async () => {
  const dir = await copyPack();
  const man = readManifestJson(dir);
  man.chunks[0].bytes += 64;
  for (const v of man.variants ?? []) if (v.tiers.includes(man.chunks[0].tier ?? 0)) v.download_bytes += 64;
  writeManifestJson(dir, man);
  await refuses(dir, 'SIZE_MISMATCH', /chunks\[0\]\.bytes/);

  const dir2 = await copyPack();
  const man2 = readManifestJson(dir2);
  const t = man2.tensors.findIndex((x) => x.shape.length === 2);
  man2.tensors[t].bytes -= 4;
  writeManifestJson(dir2, man2);
  await refuses(dir2, 'BAD_PACK', new RegExp(`tensors\\[${t}\\] \\(${man2.tensors[t].name.replace(/\./g, '\\.')}\\)\\.bytes`));
});

test('unknown and future format versions', async () => {
  const dir = await copyPack();
  const man = readManifestJson(dir);
  man.version = 4;
  writeManifestJson(dir, man);
  await refuses(dir, 'UNSUPPORTED_VERSION', /this pack needs format version 4/, 'version');
  man.version = 0;
  writeManifestJson(dir, man);
  await refuses(dir, 'BAD_PACK', /version/, 'version');
  man.version = 1;
  man.format = 'gguf';
  writeManifestJson(dir, man);
  await refuses(dir, 'BAD_PACK', /format: expected "trillium-pack"/, 'format');
});

test('manifest that is not JSON', async () => {
  const dir = await copyPack();
  writeFileSync(join(dir, 'manifest.json'), '{"format": "trillium-pack", ');
  await refuses(dir, 'BAD_PACK', /manifest\.json: not valid JSON/);
});

test('a config the core refuses names manifest.json config', async () => {
  const dir = await copyPack();
  const man = readManifestJson(dir);
  man.config.n_heads = 7; // dim 64 is not divisible; n_kv_heads 4 does not divide 7
  delete man.config.head_dim;
  writeManifestJson(dir, man);
  await refuses(dir, 'BAD_PACK', /manifest\.json: config: .+/, 'config');
});

test('a tensor the core does not expect is refused', async () => {
  const dir = await copyPack();
  const man = readManifestJson(dir);
  const t = man.tensors.find((x) => x.name === 'output_norm.weight');
  t.name = 'output_norm.weight.typo';
  writeManifestJson(dir, man);
  await refuses(dir, 'BAD_PACK', /manifest\.json: tensors: .+/, 'tensors');
});

test('a corrupted tokenizer blob (with a matching sha256) is refused by the core', async () => {
  const dir = await copyPack();
  const man = readManifestJson(dir);
  const c = man.chunks[man.tokenizer.chunk];
  const p = join(dir, c.file);
  const buf = readFileSync(p);
  buf[man.tokenizer.offset] ^= 0xff; // the blob's magic
  writeFileSync(p, buf);
  c.sha256 = createHash('sha256').update(buf).digest('hex');
  writeManifestJson(dir, man);
  await refuses(dir, 'BAD_PACK', /manifest\.json: tokenizer: .*magic/, 'tokenizer');
});

test('an unknown encoding asks for a newer trillium', async () => {
  const dir = await copyPack();
  const man = readManifestJson(dir);
  man.tensors[0].encoding = 'ternary_2b';
  writeManifestJson(dir, man);
  await refuses(dir, 'BAD_PACK', /unknown encoding "ternary_2b"/);
});

test('http: loads over fetch; 404 chunk and corrupted chunk are refused; a bad download is retried once', async () => {
  const dir = await copyPack();
  const man = readManifestJson(dir);
  let corruptOnce = false;
  let corruptAlways = false;
  const srv = await serveDir(dir, (req, res) => {
    const name = req.url.split('/').pop();
    if (name === man.chunks[0].file && (corruptOnce || corruptAlways)) {
      corruptOnce = false;
      const body = readFileSync(join(dir, name));
      body[0] ^= 0xff;
      res.writeHead(200, { 'content-length': body.length }).end(body);
      return true;
    }
    return false;
  });
  try {
    const m = await load(srv.url);
    assert.equal(m.info.pack, srv.url);
    m.dispose();

    corruptOnce = true;
    srv.requests.length = 0;
    const m2 = await load(srv.url);
    m2.dispose();
    assert.equal(srv.requests.filter((u) => u.endsWith(man.chunks[0].file)).length, 2, 'fetched again after a bad hash');

    corruptAlways = true;
    await refuses(srv.url, 'SHA_MISMATCH', new RegExp(`${srv.url}${man.chunks[0].file}: sha256`));
    corruptAlways = false;

    const last = join(dir, man.chunks.at(-1).file);
    const full = readFileSync(last);
    writeFileSync(last, full.subarray(0, full.length - 1));
    await refuses(srv.url, 'SIZE_MISMATCH', /size is \d+ bytes but manifest\.json chunks\[\d+\]\.bytes says/);

    rmSync(last);
    await refuses(srv.url, 'MISSING_FILE', /HTTP 404/);
  } finally {
    await srv.close();
  }
  await refuses('http://127.0.0.1:9/pack/', 'IO', /fetch failed/);
});

test('a failed load leaves nothing behind that a later load trips on', async () => {
  const dir = await stories260K();
  const bad = await copyPack();
  rmSync(join(bad, readManifestJson(bad).chunks[0].file));
  await refuses(bad, 'MISSING_FILE');
  const m = await load(dir);
  assert.ok(m.tokenize('hello').length > 0);
  m.dispose();
});
