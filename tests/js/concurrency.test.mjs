// Chunks download several at a time (bounded by `concurrency`), and the result is the
// same as one at a time. The server holds every chunk response for a while and
// records how many were in flight together.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Trillium } from '../../web/src/node.js';
import { WASM, needWasm, lowrankPack, serveDir } from './helpers.mjs';

async function loadCounting(pack, concurrency) {
  let inFlight = 0;
  let most = 0;
  const srv = await serveDir(pack, (req, res) => {
    const name = decodeURIComponent(new URL(req.url, 'http://x').pathname).split('/').pop();
    if (!name.startsWith('chunk-')) return false;
    inFlight++;
    most = Math.max(most, inFlight);
    setTimeout(() => {
      const body = readFileSync(join(pack, name));
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length });
      res.end(body);
      inFlight--;
    }, 150);
    return true;
  });
  try {
    const llm = await Trillium.load(srv.url, { wasm: WASM, cache: false, variant: 'r0.75', concurrency });
    const { logits } = await llm.logits([1, 5, 9, 13]);
    llm.dispose();
    return { most, logits: Array.from(logits) };
  } finally {
    await srv.close();
  }
}

test('chunks download concurrently, bounded, with the same result', { timeout: 120000 }, async () => {
  needWasm();
  const pack = await lowrankPack();
  const chunks = JSON.parse(readFileSync(join(pack, 'manifest.json'), 'utf8')).chunks;
  assert.ok(chunks.length >= 3 && chunks.every((c) => existsSync(join(pack, c.file))), 'a pack of 3+ chunks');
  const one = await loadCounting(pack, 1);
  const two = await loadCounting(pack, 2);
  const many = await loadCounting(pack, undefined); // the default, 4
  assert.equal(one.most, 1, 'concurrency 1: one chunk at a time');
  assert.equal(two.most, 2, 'concurrency 2: never more than two');
  assert.equal(many.most, chunks.length, 'the default fetches all of these chunks together');
  assert.deepEqual(two.logits, one.logits);
  assert.deepEqual(many.logits, one.logits);
});
