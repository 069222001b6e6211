// web/bin/trillium.js, the Node CLI over the wasm build.
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  LLAMA2C_GREEDY_200, copyLowrankPack, copyPack, lowrankPack, needWasm, readManifestJson, runCli, servePack, stories260K, tmpDir,
  writeManifestJson,
} from './helpers.mjs';

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

// ------------------------------------------------------- chat, perplexity, variants

/** A --memory-budget (bytes) between the peaks of two variants, from `info --json`. */
async function between(pack, a, b) {
  const j = JSON.parse((await runCli(['info', pack, '--json'])).stdout);
  const peak = (id) => j.variants.find((v) => v.id === id).peak.bytes;
  return String(Math.floor((peak(a) + peak(b)) / 2));
}

test('chat (stdin is not a TTY): one reply per input line, history kept, note on stderr', async () => {
  const pack = await stories260K();
  const r = await runCli(['chat', pack, '-t', '0', '--max-tokens', '12'], { input: 'Tell me a story\n\nAnother one\n' });
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.split('\n');
  assert.equal(lines.length, 3, JSON.stringify(r.stdout)); // two replies, each ends with a newline
  assert.ok(lines[0].length > 0 && lines[1].length > 0);
  assert.match(r.stderr, /note: the pack has no chat template; used a plain "role: content" prompt/);
  const j = await runCli(['chat', pack, '-t', '0', '--max-tokens', '12', '--json', '--system', 'You tell stories.'], { input: 'Tell me a story\nAnother one\n' });
  assert.equal(j.code, 0, j.stderr);
  const replies = j.stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(replies.map((x) => x.user), ['Tell me a story', 'Another one']);
  for (const x of replies) {
    assert.equal(typeof x.assistant, 'string');
    assert.equal(x.format, 'plain');
    assert.equal(x.variant, 'base');
    assert.ok(x.generated_tokens <= 12);
  }
});

test('chat with a template pack (ChatML) and --variant', async () => {
  const pack = await lowrankPack();
  const r = await runCli(['chat', pack, '-t', '0', '--max-tokens', '6', '--json', '--variant', 'r0.5'], { input: 'Hi\n' });
  assert.equal(r.code, 0, r.stderr);
  const x = JSON.parse(r.stdout);
  assert.equal(x.format, 'template');
  assert.equal(x.variant, 'r0.5');
  assert.equal(r.stderr, '');
});

test('perplexity --text-file: text and --json; matches the library', async () => {
  const pack = await stories260K();
  const f = join(tmpDir('trl-ppl-'), 'text.txt');
  writeFileSync(f, 'Once upon a time, there was a little girl named Lily. She loved to play outside.\n');
  const r = await runCli(['perplexity', pack, '--text-file', f]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^perplexity \d+\.\d{4} over \d+ predicted tokens \(1 window of up to 512 tokens, variant base, \d+ tokens\/s\)\n$/);
  const j = JSON.parse((await runCli(['perplexity', pack, '--text-file', f, '--json', '-c', '16'])).stdout);
  assert.equal(j.context_length, 16);
  assert.ok(j.windows >= 2);
  const { Trillium } = await import('../../web/src/node.js');
  const m = await Trillium.load(pack, { wasm: needWasm(), contextLength: 16 });
  try {
    const want = await m.perplexity(readFileSync(f, 'utf8'));
    assert.equal(j.perplexity, want.perplexity);
    assert.equal(j.predicted, want.predicted);
  } finally {
    m.dispose();
  }
  const missing = await runCli(['perplexity', pack]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /--text-file is required/);
  const nofile = await runCli(['perplexity', pack, '--text-file', '/nonexistent.txt']);
  assert.equal(nofile.code, 1);
  assert.match(nofile.stderr, /nonexistent\.txt: no such file/);
});

test('info on a multi-variant pack: download, resident and peak per variant, the auto pick; --json', async () => {
  const pack = await lowrankPack();
  const budget = await between(pack, 'r0.25', 'r0.5');
  const h = await runCli(['info', pack, '--memory-budget', budget]);
  assert.equal(h.code, 0, h.stderr);
  assert.match(h.stdout, /variants {3}3 {2}\(peak = weights \+ 256-token context \+ margin\)/);
  for (const id of ['r0.25', 'r0.5', 'r0.75']) {
    assert.match(h.stdout, new RegExp(`\\n  ${id.replace('.', '\\.')} +tiers \\[[0-9,]+\\] +download [\\d.]+ KiB +resident [\\d.]+ KiB +peak [\\d.]+ MiB +rank slices \\d+`));
  }
  assert.match(h.stdout, /\nauto {7}r0\.25: fits: [\d.]+ MiB of [\d.]+ MiB budget \(memoryBudget [\d.]+ MiB\); r0\.5 would need [\d.]+ MiB\n$/);
  const j = JSON.parse((await runCli(['info', pack, '--json', '-c', '64'])).stdout);
  assert.equal(j.contextLength, 64);
  assert.equal(j.variants.length, 3);
  for (const v of j.variants) {
    assert.ok(v.peak.bytes > v.downloadBytes);
    assert.equal(v.peak.contextLength, 64);
    assert.equal(v.peak.bytes, v.peak.weights + v.peak.context + v.peak.margin);
  }
  assert.equal(j.auto.id, 'r0.75');
  // perplexity from the manifest, when a converter wrote one
  const dir = await copyLowrankPack();
  const man = readManifestJson(dir);
  man.variants[0].perplexity = 12.5;
  man.variants[1].perplexity = { wikitext: 9.25 };
  man.variants[2].perplexity = { text_sha256: 'ab'.repeat(32), tokens: 512, value: 7.75 }; // trillium-convert --calib
  writeManifestJson(dir, man);
  const p = await runCli(['info', dir]);
  assert.match(p.stdout, /r0\.25 .* ppl 12\.5\n/);
  assert.match(p.stdout, /r0\.5 .* ppl wikitext 9\.25\n/);
  assert.match(p.stdout, /r0\.75 .* ppl 7\.75 \(512 calibration tokens\)\n/);
});

test('--variant auto / --memory-budget / a budget nothing fits', async () => {
  const pack = await lowrankPack();
  const r = await runCli(['run', pack, '-p', 'Hi', '-t', '0', '--max-tokens', '3', '--json', '--variant', 'auto', '--memory-budget', await between(pack, 'r0.25', 'r0.5')]);
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.equal(j.variant.id, 'r0.25');
  assert.match(j.variant.reason, /^fits: /);
  assert.equal(typeof j.timing.time_to_first_token_ms, 'number');
  const none = await runCli(['logits', pack, '-p', 'Hi', '--memory-budget', '1MiB']);
  assert.equal(none.code, 1);
  assert.match(none.stderr, /^trillium: error: no variant fits the 1 MiB memory budget .* variant: 'r0\.25' to try anyway\n$/);
  const bad = await runCli(['run', pack, '-p', 'Hi', '--memory-budget', 'lots']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--memory-budget: expected a size/);
  const unknown = await runCli(['run', pack, '-p', 'Hi', '--variant', 'r9']);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /no variant "r9" \(available: r0\.25, r0\.5, r0\.75\)/);
});

test('http packs: cached after the first run, --no-cache, --cache-dir', async () => {
  const pack = await stories260K();
  const srv = await servePack(pack);
  const cacheDir = tmpDir('trl-cli-cache-');
  try {
    const args = ['tokenize', srv.url, '-p', 'hi', '--cache-dir', cacheDir];
    assert.equal((await runCli(args)).code, 0);
    const n = srv.log.length;
    assert.ok(n >= 2);
    const again = await runCli(args);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(srv.log.length, n, 'no request the second time');
    await runCli(['tokenize', srv.url, '-p', 'hi', '--no-cache']);
    assert.equal(srv.log.length, 2 * n);
    const both = await runCli(['tokenize', srv.url, '-p', 'hi', '--no-cache', '--cache-dir', cacheDir]);
    assert.equal(both.code, 2);
  } finally {
    await srv.close();
  }
});
