// The browser entry (src/index.js, no node: imports) driven from Node, which
// has fetch and crypto.subtle: packs over http, sha256 through subtle.digest,
// the wasm given as bytes. This process never imports src/node.js.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Trillium, TrilliumError } from '../../web/src/index.js';
import { LLAMA2C_GREEDY_200, copyPack, needWasm, readManifestJson, serveDir } from './helpers.mjs';

test('browser platform: http pack, subtle sha256, greedy text equals llama2.c', async () => {
  const wasm = readFileSync(needWasm());
  const dir = await copyPack();
  const srv = await serveDir(dir);
  try {
    const m = await Trillium.load(srv.url, { wasm });
    try {
      const s = await m.complete('', { temperature: 0, maxTokens: 200 });
      assert.equal(s.text, LLAMA2C_GREEDY_200);
      assert.equal(m.info.tokenizer.kind, 'spm');
    } finally {
      m.dispose();
    }
    // a local path means nothing to a browser: it resolves against no base and is refused
    await assert.rejects(Trillium.load(dir, { wasm }), (e) => e instanceof TrilliumError && e.code === 'BAD_ARGUMENT');

    const man = readManifestJson(dir);
    const p = join(dir, man.chunks[0].file);
    const buf = readFileSync(p);
    buf[3] ^= 0x10;
    writeFileSync(p, buf);
    await assert.rejects(Trillium.load(srv.url, { wasm }), (e) => e.code === 'SHA_MISMATCH' && e.field === 'chunks[0].sha256');
  } finally {
    await srv.close();
  }
});
