// web/bin/trillium.js, the Node CLI over the wasm build.
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { LLAMA2C_GREEDY_200, copyPack, needWasm, readManifestJson, runCli, stories260K } from './helpers.mjs';

test('run: greedy continuation of a prompt', async () => {
  needWasm();
  const pack = await stories260K();
  const r = await runCli(['run', pack, '--prompt', 'Once upon a time', '--temperature', '0', '--max-tokens', '20']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '');
  assert.ok(r.stdout.trim().length > 10, `some text: ${JSON.stringify(r.stdout)}`);
  assert.ok(r.stdout.endsWith('\n'));
  const again = await runCli(['run', pack, '-p', 'Once upon a time', '-t', '0', '--max-tokens', '20']);
  assert.equal(again.stdout, r.stdout);
});

test('run: empty prompt, 200 greedy tokens = llama2.c run -t 0 -n 200', async () => {
  const r = await runCli(['run', await stories260K(), '--prompt', '', '--temperature', '0', '--max-tokens', '200']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, LLAMA2C_GREEDY_200 + '\n');
});

test('run --json: one object with counts, text and timing', async () => {
  const r = await runCli(['run', await stories260K(), '--prompt', 'Once upon a time', '--seed', '123', '--max-tokens', '16', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.equal(j.generated_tokens, j.tokens.length);
  assert.ok(j.generated_tokens <= 16);
  assert.ok(j.prompt_tokens >= 2);
  assert.equal(typeof j.text, 'string');
  assert.equal(j.seed, '123');
  for (const k of ['load_ms', 'prefill_ms', 'decode_ms', 'tokens_per_second']) assert.equal(typeof j.timing[k], 'number');
  const again = JSON.parse((await runCli(['run', await stories260K(), '--prompt', 'Once upon a time', '--seed', '123', '--max-tokens', '16', '--json'])).stdout);
  assert.equal(again.text, j.text, 'same seed, same text');
});

test('tokenize: JSON ids, --no-bos', async () => {
  const pack = await stories260K();
  const r = await runCli(['tokenize', pack, '--prompt', 'Once upon a time']);
  assert.equal(r.code, 0, r.stderr);
  const ids = JSON.parse(r.stdout);
  assert.ok(Array.isArray(ids) && ids.length >= 2 && ids[0] === 1);
  const nb = JSON.parse((await runCli(['tokenize', pack, '--prompt', 'Once upon a time', '--no-bos'])).stdout);
  assert.deepEqual(nb, ids.slice(1));
});

test('logits: JSON with vocab-size logits at full precision', async () => {
  const r = await runCli(['logits', await stories260K(), '--prompt', 'Once upon a time']);
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.equal(j.logits.length, 512);
  assert.ok(j.logits.every((v) => typeof v === 'number' && Number.isFinite(v)));
  // every value is exactly an f32 (printed in full, not rounded to a few digits)
  assert.ok(j.logits.every((v) => Math.fround(v) === v));
  assert.ok(j.logits.some((v) => String(v).replace(/^-|\.|e.*$/g, '').length > 6), 'more than 6 significant digits');
  assert.equal(j.tokens[0], 1);
});

test('info: human and --json', async () => {
  const pack = await stories260K();
  const h = await runCli(['info', pack]);
  assert.equal(h.code, 0, h.stderr);
  assert.match(h.stdout, /dim 64/);
  assert.match(h.stdout, /tensors/);
  assert.match(h.stdout, /variants/);
  const j = JSON.parse((await runCli(['info', pack, '--json'])).stdout);
  const man = readManifestJson(pack);
  assert.equal(j.config.vocab_size, 512);
  assert.equal(j.tensors.count, man.tensors.length);
  assert.equal(Object.values(j.tensors.byEncoding).reduce((s, e) => s + e.bytes, 0), j.tensors.bytes);
  assert.equal(j.chunks.length, man.chunks.length);
  assert.ok(j.variants.length >= 1);
});

test('bad input: one-line errors, non-zero exit', async () => {
  const pack = await stories260K();
  const cases = [
    [['run', '/nonexistent/pack', '--prompt', 'x'], 1, /^trillium: error: .*\/nonexistent\/pack\/manifest\.json: no such file\n$/],
    [['run', pack], 2, /--prompt is required/],
    [['run', pack, '--prompt', 'x', '--temperature', 'hot'], 2, /--temperature: expected a number/],
    [['run', pack, '--prompt', 'x', '--top-p', '1.5'], 2, /--top-p/],
    [['run', pack, '--prompt', 'x', '--seed', '-3'], 2, /--seed/],
    [['run', pack, '--prompt', 'x', '--bogus'], 2, /bogus/],
    [['frobnicate', pack], 2, /unknown command/],
    [['info'], 2, /missing the pack/],
  ];
  for (const [args, code, re] of cases) {
    const r = await runCli(args);
    assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re, args.join(' '));
    assert.equal(r.stdout, '', `${args.join(' ')}: nothing on stdout`);
  }
  const bad = await copyPack();
  const man = readManifestJson(bad);
  writeFileSync(join(bad, man.chunks[0].file), 'garbage');
  const r1 = await runCli(['run', bad, '--prompt', 'x']);
  assert.equal(r1.code, 1);
  assert.match(r1.stderr, /^trillium: error: .*size is 7 bytes but manifest\.json chunks\[0\]\.bytes says/);
  assert.equal(r1.stderr.trim().split('\n').length, 1, 'one line');
  writeFileSync(join(bad, 'manifest.json'), '{');
  const r2 = await runCli(['info', bad]);
  assert.equal(r2.code, 1);
  assert.match(r2.stderr, /manifest\.json: not valid JSON/);
  rmSync(join(bad, 'manifest.json'));
  const r3 = await runCli(['logits', bad, '--prompt', 'x']);
  assert.equal(r3.code, 1);
});

test('--help and no arguments', async () => {
  const h = await runCli(['--help']);
  assert.equal(h.code, 0);
  assert.match(h.stdout, /usage: trillium <command>/);
  const n = await runCli([]);
  assert.equal(n.code, 2);
});
