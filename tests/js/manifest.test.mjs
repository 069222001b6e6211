// Manifest checks (pure JS: the core's knowledge is stubbed with the
// docs/FORMAT.md v1 values). Each bad manifest must name the file and field.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseManifest, pickVariant } from '../../web/src/pack.js';

const K = {
  formatVersion: 2,
  encodings: { f32: 0, f16: 1, q8_0: 2 },
  tokenizerKinds: { spm: 0, bpe_gpt2: 1 },
  encodingBytes(id, rows, cols) {
    const row = id === 0 ? cols * 4 : id === 1 ? cols * 2 : Math.ceil(cols / 32) * 34;
    return rows * row;
  },
  tensorBytes(id, rows, cols, params) {
    return Object.keys(params).length ? 0 : this.encodingBytes(id, rows, cols);
  },
};

const sha = 'a'.repeat(64);
function good() {
  return {
    format: 'trillium-pack',
    version: 1,
    name: 'tiny',
    config: { arch: 'llama', dim: 64 },
    tokenizer: { kind: 'spm', chunk: 0, offset: 0, bytes: 100, bos_id: 1, eos_id: 2, chat_template: null },
    tensors: [
      { name: 'token_embd.weight', encoding: 'f32', shape: [4, 8], chunk: 0, offset: 128, bytes: 128 },
      { name: 'output_norm.weight', encoding: 'f32', shape: [8], chunk: 1, offset: 0, bytes: 32 },
      { name: 'blk.0.attn_q.weight', encoding: 'q8_0', shape: [2, 40], chunk: 1, offset: 64, bytes: 136 },
    ],
    chunks: [
      { file: 'chunk-0000.bin', bytes: 256, sha256: sha, tier: 0 },
      { file: 'chunk-0001.bin', bytes: 200, sha256: sha, tier: 0 },
    ],
    variants: [{ id: 'base', tiers: [0], download_bytes: 456, resident_bytes: 396, context_bytes: { 512: 1000 } }],
  };
}

const parse = (m) => parseManifest(typeof m === 'string' ? m : JSON.stringify(m), K, '/p/manifest.json');

function rejects(mutate, field, re, code = 'BAD_PACK') {
  const m = good();
  mutate(m);
  assert.throws(() => parse(m), (e) => {
    assert.equal(e.name, 'TrilliumError');
    assert.equal(e.code, code, e.message);
    assert.equal(e.file, '/p/manifest.json');
    if (field !== undefined) assert.equal(e.field, field, e.message);
    assert.match(e.message, /^\/p\/manifest\.json/);
    if (re) assert.match(e.message, re);
    return true;
  });
}

test('a good manifest parses and normalises', () => {
  const p = parse(good());
  assert.equal(p.version, 1);
  assert.equal(p.tensors.length, 3);
  assert.equal(p.tensors[2].encodingId, 2);
  assert.equal(p.tokenizer.bosId, 1);
  assert.deepEqual(p.variants[0].tiers, [0]);
  assert.equal(p.variants[0].downloadBytes, 456);
  assert.equal(pickVariant(p).id, 'base');
});

test('no variants list means one variant over every tier', () => {
  const m = good();
  delete m.variants;
  const p = parse(m);
  assert.deepEqual(p.variants.map((v) => [v.id, v.tiers, v.downloadBytes]), [['base', [0], 456]]);
});

test('not JSON / not an object', () => {
  assert.throws(() => parse('{"format": '), /manifest\.json: not valid JSON/);
  assert.throws(() => parse('[]'), /expected a JSON object/);
});

test('format and version', () => {
  rejects((m) => (m.format = 'gguf'), 'format', /trillium-pack/);
  rejects((m) => (m.version = 4), 'version', /this pack needs format version 4/, 'UNSUPPORTED_VERSION');
  rejects((m) => (m.version = 99), 'version', /needs format version 99.*upgrade trillium/, 'UNSUPPORTED_VERSION');
  rejects((m) => (m.version = '1'), 'version', /positive integer/);
  rejects((m) => (m.version = 1.5), 'version');
  rejects((m) => delete m.version, 'version');
  rejects((m) => delete m.config, 'config');
});

test('chunks', () => {
  rejects((m) => (m.chunks = []), 'chunks');
  rejects((m) => (m.chunks[1].file = '../etc/passwd'), 'chunks[1].file', /plain file name/);
  rejects((m) => (m.chunks[1].file = 'sub/chunk.bin'), 'chunks[1].file');
  rejects((m) => (m.chunks[1].file = 'chunk-0000.bin'), 'chunks[1].file', /listed twice/);
  rejects((m) => (m.chunks[0].bytes = -1), 'chunks[0].bytes');
  rejects((m) => (m.chunks[0].bytes = 2 ** 40), 'chunks[0].bytes', /32-bit/);
  rejects((m) => (m.chunks[0].sha256 = 'A'.repeat(64)), 'chunks[0].sha256', /lowercase hex/);
  rejects((m) => (m.chunks[0].sha256 = 'abc'), 'chunks[0].sha256');
  rejects((m) => (m.chunks[0].tier = -1), 'chunks[0].tier');
});

test('tensors', () => {
  rejects((m) => (m.tensors[1].name = 'token_embd.weight'), 'tensors[1].name', /listed twice/);
  rejects((m) => (m.tensors[0].encoding = 'q4_k'), 'tensors[0] (token_embd.weight).encoding', /unknown encoding "q4_k"/);
  rejects((m) => (m.tensors[0].shape = [4, 0]), 'tensors[0] (token_embd.weight).shape');
  rejects((m) => (m.tensors[0].shape = [1, 2, 3]), 'tensors[0] (token_embd.weight).shape');
  rejects((m) => (m.tensors[0].chunk = 2), 'tensors[0] (token_embd.weight).chunk', /below 2/);
  rejects((m) => (m.tensors[0].offset = 100), 'tensors[0] (token_embd.weight).offset', /multiple of 64/);
  rejects((m) => (m.tensors[0].bytes = 124), 'tensors[0] (token_embd.weight).bytes', /takes 128 bytes/);
  rejects((m) => {
    m.tensors[0].shape = [8, 8];
    m.tensors[0].bytes = 256;
  }, 'tensors[0] (token_embd.weight).bytes', /runs past the end of chunk-0000\.bin/);
  rejects((m) => (m.tensors[2].bytes = 102), 'tensors[2] (blk.0.attn_q.weight).bytes', /q8_0 tensor takes 136/);
});

test('tokenizer', () => {
  rejects((m) => delete m.tokenizer, 'tokenizer');
  rejects((m) => (m.tokenizer.kind = 'wordpiece'), 'tokenizer.kind', /unknown tokenizer kind/);
  rejects((m) => (m.tokenizer.bytes = 0), 'tokenizer.bytes');
  rejects((m) => (m.tokenizer.bytes = 300), 'tokenizer.bytes', /runs past/);
  rejects((m) => (m.tokenizer.bos_id = 'x'), 'tokenizer.bos_id');
});

test('variants', () => {
  rejects((m) => (m.variants[0].tiers = [1]), 'variants[0].tiers[0]', /no chunk has tier 1/);
  rejects((m) => (m.variants[0].download_bytes = 455), 'variants[0].download_bytes', /add up to 456/);
  rejects((m) => m.variants.push({ id: 'base', tiers: [0] }), 'variants[1].id', /listed twice/);
  assert.throws(() => pickVariant(parse(good()), 'large', '/p/manifest.json'), /no variant "large" \(available: base\)/);
});
