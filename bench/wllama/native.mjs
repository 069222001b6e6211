#!/usr/bin/env node
// Trillium's native build (the same C, x86-64 with the compiler's SIMD) on the
// same packs, for reference beside the browser rows. There is no native timing
// tool, so this times whole trillium-eval processes and takes differences:
//   decode  = 127 / (t(64-token prompt, 128 greedy) - t(64-token prompt, 1 greedy))
//   prefill = 448 / (t(512-token prompt, 1) - t(64-token prompt, 1))
// (load and start-up cancel out; one thread). Median of --repeats.
//
//   node bench/wllama/native.mjs PACK... [--eval build/native/converter/trillium-eval] [--repeats 3] [--out FILE]
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const { values: a, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    eval: { type: 'string', default: 'build/native/converter/trillium-eval' },
    repeats: { type: 'string', default: '3' },
    out: { type: 'string' },
  },
});
const ids = (n) => Array.from({ length: n }, (_, i) => (i * 7 + 3) % 380).join(',');
const time = (pack, n, greedy) => {
  const t = process.hrtime.bigint();
  execFileSync(resolve(a.eval), [pack, '--tokens', ids(n), '--greedy', String(greedy), '--n-ctx', '1024'], { stdio: ['ignore', 'ignore', 'inherit'] });
  return Number(process.hrtime.bigint() - t) / 1e6;
};
const median = (v) => [...v].sort((x, y) => x - y)[Math.floor(v.length / 2)];
const out = { date: new Date().toISOString(), method: 'trillium-eval process time differences, 1 thread', packs: [] };
for (const pack of positionals) {
  const d = [];
  const p = [];
  for (let r = 0; r < Number(a.repeats); r++) {
    const base = time(pack, 64, 1);
    d.push(127 / ((time(pack, 64, 128) - base) / 1000));
    p.push(448 / ((time(pack, 512, 1) - base) / 1000));
  }
  const row = { pack: basename(pack), threads: 1, decode: Math.round(median(d) * 10) / 10, prefill512: Math.round(median(p) * 10) / 10 };
  process.stderr.write(`${JSON.stringify(row)}\n`);
  out.packs.push(row);
}
if (a.out) writeFileSync(a.out, JSON.stringify(out, null, 1) + '\n');
else process.stdout.write(JSON.stringify(out, null, 1) + '\n');
