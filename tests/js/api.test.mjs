// Model API additions: chat (templates, plain fallback, stop tokens), stop
// strings, perplexity (checked against token-by-token logits), stats.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { Trillium } from '../../web/src/node.js';
import { copyLowrankPack, lowrankPack, needWasm, readManifestJson, stories260K, writeManifestJson } from './helpers.mjs';

let stories;
let lr;
before(async () => {
  stories = await Trillium.load(await stories260K(), { wasm: needWasm(), contextLength: 512 });
  lr = await Trillium.load(await lowrankPack(), { wasm: needWasm() });
});
after(() => {
  stories?.dispose();
  lr?.dispose();
});

const TEMPLATES = JSON.parse(readFileSync(new URL('./fixtures/chat_templates.json', import.meta.url), 'utf8'));

function logProb(logits, t) {
  let max = -Infinity;
  for (const v of logits) max = Math.max(max, v);
  let s = 0;
  for (const v of logits) s += Math.exp(v - max);
  return logits[t] - max - Math.log(s);
}

test('perplexity equals the token-by-token sum of log-probabilities', async () => {
  const text = 'Once upon a time, there was a little girl named Lily. She loved to play outside.';
  const r = await stories.perplexity(text);
  const ids = stories.tokenize(text);
  let nll = 0;
  for (let i = 1; i < ids.length; i++) nll -= logProb((await stories.logits(ids.slice(0, i))).logits, ids[i]);
  assert.equal(r.tokens, ids.length);
  assert.equal(r.predicted, ids.length - 1);
  assert.equal(r.windows, 1);
  assert.ok(Math.abs(r.nll - nll) < 1e-3 * Math.max(1, nll), `${r.nll} vs ${nll}`);
  assert.ok(Math.abs(r.perplexity - Math.exp(nll / (ids.length - 1))) < 1e-3);
  assert.ok(r.perplexity < 5, `stories260K knows this text: ${r.perplexity}`);
  // windows: a short context splits the text; every window starts from an empty cache
  const w = await stories.perplexity(text, { contextLength: 8 });
  assert.equal(w.windows, Math.ceil((ids.length - 1) / 8));
  let nll2 = 0;
  let count = 0;
  for (let s = 0; s + 1 < ids.length; s += 8) {
    const win = ids.slice(s, s + 8);
    for (let i = 1; i < win.length; i++, count++) nll2 -= logProb((await stories.logits(win.slice(0, i), { addBos: false })).logits, win[i]);
  }
  assert.equal(w.predicted, count);
  assert.ok(Math.abs(w.nll - nll2) < 1e-3 * nll2);
  assert.ok(w.perplexity > r.perplexity, 'less context, higher perplexity');
  await assert.rejects(stories.perplexity('', { addBos: false }), (e) => e.code === 'BAD_ARGUMENT');
  await assert.rejects(stories.perplexity(text, { contextLength: 1 }), (e) => e.code === 'BAD_ARGUMENT');
  // the model still generates normally afterwards
  assert.equal((await stories.complete('Once', { temperature: 0, maxTokens: 5 })).generatedTokens, 5);
});

test('stop strings end the text before them, even across pieces; stats say "stop"', async () => {
  const full = (await stories.complete('Once upon a time', { temperature: 0, maxTokens: 60 })).text;
  const at = full.indexOf('Lily');
  assert.ok(at > 0, full);
  const pieces = [];
  for await (const p of stories.generate('Once upon a time', { temperature: 0, maxTokens: 60, stop: ['Lily', 'zzz'] })) pieces.push(p);
  assert.equal(pieces.join(''), full.slice(0, at));
  assert.equal(stories.lastStats.finishReason, 'stop');
  assert.equal(stories.lastStats.text, full.slice(0, at));
  const word = full.slice(at, at + 7); // a stop string spanning several tokens
  const s = await stories.complete('Once upon a time', { temperature: 0, maxTokens: 60, stop: word });
  assert.equal(s.text, full.slice(0, at));
  const none = await stories.complete('Once upon a time', { temperature: 0, maxTokens: 60, stop: ['not in the text'] });
  assert.equal(none.text, full);
  await assert.rejects(stories.complete('x', { stop: [1] }), (e) => e.code === 'BAD_ARGUMENT');
  const ids = stories.tokenize(full, { addBos: false });
  const tok = await stories.complete('Once upon a time', { temperature: 0, maxTokens: 60, stopTokens: [ids[3]] });
  assert.equal(tok.finishReason, 'stop');
});

test('stats: load, time to first token, prefill and decode speed', async () => {
  const s = await stories.complete('Once upon a time', { temperature: 0, maxTokens: 20 });
  assert.ok(s.timeToFirstTokenMs > 0 && s.timeToFirstTokenMs >= s.prefillMs);
  assert.ok(s.prefillTokensPerSecond > 0 || s.evaluatedPromptTokens === 0);
  const st = stories.stats;
  assert.ok(st.loadMs > 0);
  assert.equal(st.timeToFirstTokenMs, s.timeToFirstTokenMs);
  assert.equal(st.decodeTokensPerSecond, s.tokensPerSecond);
  assert.equal(st.generatedTokens, 20);
  assert.equal(st.fromNetworkBytes, 0, 'a local pack is not downloaded');
  assert.equal(s.variant, 'base');
});

test('chat without a template: plain "role: content" with a note; history reuses the KV cache', async () => {
  const msgs = [{ role: 'system', content: 'You tell stories.' }, { role: 'user', content: 'Tell me a story' }];
  const f = stories.formatChat(msgs);
  assert.equal(f.format, 'plain');
  assert.equal(f.text, 'system: You tell stories.\nuser: Tell me a story\nassistant:');
  assert.equal(f.addBos, true);
  let text = '';
  for await (const p of stories.chat(msgs, { temperature: 0, maxTokens: 30 })) text += p;
  const s = stories.lastStats;
  assert.equal(s.chat.format, 'plain');
  assert.match(s.chat.note, /no chat template/);
  assert.ok(!text.includes('\nuser:'));
  const again = [...msgs, { role: 'assistant', content: text }, { role: 'user', content: 'Another one' }];
  await stories.complete('warm', { maxTokens: 0 });
  for await (const p of stories.chat(msgs, { temperature: 0, maxTokens: 5 })) assert.equal(typeof p, 'string');
  const it = stories.chat(again, { temperature: 0, maxTokens: 5 });
  let r;
  while (!(r = await it.next()).done);
  assert.ok(r.value.evaluatedPromptTokens < r.value.promptTokens, 'the shared history came from the KV cache');
  await assert.rejects(async () => {
    for await (const p of stories.chat([{ role: 'user' }])) assert.fail(p);
  }, (e) => e.code === 'BAD_ARGUMENT' && /messages\[0\]/.test(e.message));
});

test('chat with the pack template (ChatML): special tokens, end-of-turn stops as a token', async () => {
  const f = lr.formatChat([{ role: 'user', content: 'Hi' }]);
  assert.equal(f.format, 'template');
  assert.equal(f.text, '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n');
  assert.equal(f.addBos, false);
  const ids = lr.tokenize(f.text, { addBos: false });
  const imStart = lr.tokenize('<|im_start|>', { addBos: false });
  assert.equal(imStart.length, 1, 'the special token is one token');
  assert.equal(ids[0], imStart[0]);
  assert.deepEqual(f.stopTokens, lr.tokenize('<|im_end|>', { addBos: false }));
  const s = await (async () => {
    const it = lr.chat([{ role: 'user', content: 'Hi' }], { temperature: 0, maxTokens: 8 });
    let r;
    while (!(r = await it.next()).done);
    return r.value;
  })();
  assert.equal(s.chat.format, 'template');
  assert.equal(s.promptTokens, ids.length, 'no BOS added: the template decides');
});

test('bos_token and eos_token are the tokenizer\'s own texts; an unsupported template falls back', async () => {
  const dir = await copyLowrankPack();
  const man = readManifestJson(dir);
  man.tokenizer.chat_template = TEMPLATES.llama3;
  writeManifestJson(dir, man);
  const m = await Trillium.load(dir, { wasm: needWasm(), variant: 'r0.25' });
  try {
    const f = m.formatChat([{ role: 'user', content: 'Hi' }]);
    assert.ok(f.text.startsWith('<|begin_of_text|><|start_header_id|>user'), f.text);
    assert.equal(m.tokenize(f.text, { addBos: false })[0], m.info.tokenizer.bosId);
  } finally {
    m.dispose();
  }
  man.tokenizer.chat_template = '{% macro x() %}{% endmacro %}{{ x() }}';
  writeManifestJson(dir, man);
  const u = await Trillium.load(dir, { wasm: needWasm(), variant: 'r0.25' });
  try {
    const f = u.formatChat([{ role: 'user', content: 'Hi' }]);
    assert.equal(f.format, 'plain');
    assert.match(f.note, /unsupported syntax/);
  } finally {
    u.dispose();
  }
  man.tokenizer.chat_template = TEMPLATES.gemma;
  writeManifestJson(dir, man);
  const g = await Trillium.load(dir, { wasm: needWasm(), variant: 'r0.25' });
  try {
    assert.throws(() => g.formatChat([{ role: 'system', content: 'x' }, { role: 'user', content: 'y' }]),
      (e) => e.code === 'BAD_ARGUMENT' && /chat template: System role not supported/.test(e.message));
  } finally {
    g.dispose();
  }
});
