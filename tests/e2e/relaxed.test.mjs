// The relaxed-SIMD modules (dist/trillium-relaxed.wasm, dist/trillium-mt-relaxed.wasm) in
// Chromium, which runs relaxed SIMD (Node 20 does not: its V8 accepts the opcode behind a
// flag but computes something else, which is why these tests live here):
// - the loader picks them by itself (simd: 'auto') in a cross-origin isolated page;
// - they give the SIMD128 build's logits bit for bit (the relaxed ternary kernel is exact
//   integer arithmetic), with 1 and 2 threads, for a ternary pack with int8 activations (the
//   kernel they change) and a q8_0 one, against the same pack run by Node's SIMD128 build.
// The kernel-level test (test-kernels-ternary-relaxed, every shape and row range against the
// scalar reference) runs in Chromium too, through tests/e2e/wasm-page-runner.mjs (ctest label
// "browser", make test-e2e).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Trillium } from '../../web/src/node.js';
import { convertPack, serveSite, withPage } from './harness.mjs';

const PROMPT = 'Once upon a time, a little dog';

describe('relaxed SIMD in Chromium', () => {
  let site;
  const packs = [];
  before(async () => {
    packs.push({ name: 't2-int8', dir: convertPack('t2-int8', ['--ternary', '--act-quant', 'int8']) });
    packs.push({ name: 'q8', dir: convertPack('q8', ['--dtype', 'q8_0']) });
    site = await serveSite({ packs });
  });
  after(() => site?.close());

  test('simd auto picks the relaxed modules; logits equal the SIMD128 build bit for bit', async () => {
    const want = {};
    for (const p of packs) {
      const m = await Trillium.load(p.dir, { cache: false });
      assert.equal(m.info.simd, 'simd128', 'Node 20 must run the SIMD128 module');
      want[p.name] = Array.from((await m.logits(PROMPT)).logits);
      m.dispose();
    }
    const got = await withPage(async ({ page, errors }) => {
      const missing = [];
      page.on('response', (res) => {
        if (res.status() === 404) missing.push(res.url());
      });
      await page.goto(`${site.url}config.json`);
      const r = await page.evaluate(async ([base, names, prompt]) => {
        const { Trillium } = await import(`${base}trillium/src/index.js`);
        const out = { isolated: crossOriginIsolated, runs: [] };
        for (const name of names) {
          for (const [simd, threads] of [['auto', 1], ['auto', 2], ['simd128', 1]]) {
            const m = await Trillium.load(`${base}packs/${name}/`, { simd, threads, cache: false, worker: false });
            const { logits } = await m.logits(prompt);
            out.runs.push({ name, asked: simd, simd: m.info.simd, simdNote: m.info.simdNote, build: m.info.build,
              threads: m.info.threads, logits: Array.from(logits) });
            m.dispose();
          }
        }
        return out;
      }, [site.url, packs.map((p) => p.name), PROMPT]);
      // (a page showing a JSON file asks for /favicon.ico, which the site does not have)
      assert.deepEqual(missing.filter((u) => !u.endsWith('/favicon.ico')), [], 'nothing the loader asked for is missing');
      assert.deepEqual(errors.filter((e) => !/status of 404/.test(e)), []);
      return r;
    });
    assert.equal(got.isolated, true);
    for (const run of got.runs) {
      const what = `${run.name} simd ${run.asked} threads ${run.threads} (${run.build}, ${run.simd})`;
      assert.equal(run.simd, run.asked === 'auto' ? 'relaxed' : 'simd128', `${what}: ${run.simdNote}`);
      assert.equal(run.build, run.threads > 1 ? 'pthreads' : 'standalone', what);
      assert.equal(run.logits.length, want[run.name].length, what);
      const bad = run.logits.findIndex((v, i) => v !== want[run.name][i]);
      assert.equal(bad, -1, `${what}: logit ${bad} is ${run.logits[bad]}, Node's SIMD128 build gives ${want[run.name][bad]}`);
    }
  });
});
