// A --family pack (docs/FORMAT.md "Families", format version 3): two members
// of stories260K's family (the real checkpoint, and a copy whose attention
// query weights are halved: same embeddings, norms and tokenizer) in one pack.
// Each variant, loaded by the JS package (which binds the tensors of the
// variant's tiers), computes the same logits as its member converted alone.
// Needs a trillium.wasm that reads format version 3 (TRL_PACK_FORMAT_VERSION);
// an older build refuses the pack by its version, and the test says so and skips.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Trillium } from '../../web/src/node.js';
import { CONVERT, MODEL_BIN, MODEL_TOK, needConverter, needWasm, readManifestJson, tmpDir } from './helpers.mjs';

function convert(args) {
  execFileSync(CONVERT, ['--tokenizer', MODEL_TOK, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
}

test('family pack: each variant computes its member\'s logits', async (t) => {
  needConverter();
  const dir = tmpDir('trl-family-');
  // member b: stories260K with wq halved (llama2.c layout: header, token_embd, rms_att, then wq)
  const buf = Buffer.from(readFileSync(MODEL_BIN));
  const h = new Int32Array(buf.buffer, buf.byteOffset, 7);
  const [dim, , layers, , , vocab] = [h[0], h[1], h[2], h[3], h[4], Math.abs(h[5])];
  const f = new Float32Array(buf.buffer, buf.byteOffset + 28, (buf.length - 28) / 4);
  const wq = vocab * dim + layers * dim;
  for (let i = wq; i < wq + layers * dim * dim; i++) f[i] *= 0.5;
  const b = join(dir, 'b.bin');
  writeFileSync(b, buf);
  const fam = join(dir, 'fam');
  const soloA = join(dir, 'a');
  const soloB = join(dir, 'solo-b');
  try {
    convert([MODEL_BIN, '-o', fam, '--family', `half=${b}`]);
  } catch (e) {
    if (/unknown option.*--family/.test(String(e.stderr))) {
      t.skip(`${CONVERT} predates --family; rebuild it (make native)`);
      return;
    }
    throw e;
  }
  convert([MODEL_BIN, '-o', soloA]);
  convert([b, '-o', soloB]);
  const m = readManifestJson(fam);
  assert.equal(m.version, 3);
  assert.deepEqual(m.variants.map((v) => [v.id, v.tiers]), [['stories260K', [0, 1]], ['half', [0, 2]]]);

  let a;
  try {
    a = await Trillium.load(fam, { wasm: needWasm(), variant: 'stories260K', cache: false });
  } catch (e) {
    if (e.code === 'UNSUPPORTED_VERSION') {
      t.skip(`this trillium.wasm reads an older pack format (${e.message}); rebuild it (make wasm) to run this test`);
      return;
    }
    throw e;
  }
  const half = await Trillium.load(fam, { wasm: needWasm(), variant: 'half', cache: false });
  const sa = await Trillium.load(soloA, { wasm: needWasm(), cache: false });
  const sb = await Trillium.load(soloB, { wasm: needWasm(), cache: false });
  try {
    assert.equal(a.info.formatVersion, 3);
    for (const prompt of ['Once upon a time', 'The little dog']) {
      const [la, lh, ra, rb] = await Promise.all([a, half, sa, sb].map(async (x) => Array.from((await x.logits(prompt)).logits)));
      assert.deepEqual(la, ra, 'variant stories260K = stories260K alone');
      assert.deepEqual(lh, rb, 'variant half = its member alone');
      assert.notDeepEqual(la, lh, 'the members differ');
    }
    // the shared tier downloads once: each variant downloads less than the pack
    const total = m.chunks.reduce((s, c) => s + c.bytes, 0);
    for (const v of m.variants) assert.ok(v.download_bytes < total);
  } finally {
    for (const x of [a, half, sa, sb]) x.dispose();
  }
});
