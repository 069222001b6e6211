// The wasm module and the low-level binding: what the module imports and
// exports, the constants JSON, strings, errors and memory growth.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { Binding } from '../../web/src/node.js';
import { compileWasm } from '../../web/src/wasm.js';
import { needWasm } from './helpers.mjs';

test('trillium.wasm imports only env.emscripten_notify_memory_growth', async () => {
  const mod = await compileWasm(readFileSync(needWasm()));
  assert.deepEqual(WebAssembly.Module.imports(mod), [
    { module: 'env', name: 'emscripten_notify_memory_growth', kind: 'function' },
  ]);
  const exports = new Set(WebAssembly.Module.exports(mod).map((e) => e.name));
  for (const name of ['memory', '_initialize', 'malloc', 'free', 'trl_ctx_prefill', 'trl_ctx_decode',
    'trl_ctx_logits', 'trl_tokenize', 'trl_token_to_bytes', 'trlw_constants_json', 'trlw_model_create',
    'trlw_ctx_create', 'trlw_ctx_memory_bytes', 'trlw_sampler_create', 'trlw_tokenizer_create']) {
    assert.ok(exports.has(name), `exports ${name}`);
  }
});

test('the module validates with SIMD (the build really is -msimd128)', () => {
  const bytes = readFileSync(needWasm());
  assert.ok(WebAssembly.validate(bytes));
  // v128 instructions use the 0xfd prefix; a scalar build has none of the
  // SIMD kernels' loads. A cheap check: the byte sequence of v128.load (fd 00).
  assert.ok(bytes.includes(Buffer.from([0xfd, 0x00])), 'no v128.load found');
});

test('constants come from C and match docs/FORMAT.md v1', async () => {
  const b = await Binding.create({ wasm: needWasm() });
  const c = b.constants;
  assert.match(c.version, /^\d+\.\d+\.\d+$/);
  assert.equal(c.pack_format_version, 3); // docs/FORMAT.md versions 1..3
  assert.equal(c.encodings.f32, 0);
  assert.equal(c.encodings.f16, 1);
  assert.equal(c.encodings.q8_0, 2);
  assert.equal(c.status.OK, 0);
  assert.equal(c.sizeof.pointer, 4);
  assert.deepEqual(c.tokenizer_kinds, { spm: 0, bpe_gpt2: 1 });
  assert.equal(b.statusStr(c.status.ERR_BAD_CONFIG).length > 0, true);
});

test('encoding sizes agree with the format', async () => {
  const b = await Binding.create({ wasm: needWasm() });
  const { f32, f16, q8_0 } = b.constants.encodings;
  assert.equal(b.encodingBytes(f32, 3, 5), 60);
  assert.equal(b.encodingBytes(f16, 3, 5), 30);
  assert.equal(b.encodingBytes(q8_0, 2, 33), 2 * 2 * 34);
  assert.equal(b.encodingBytes(q8_0, 1, 32), 34);
  assert.equal(b.encodingBytes(99, 1, 1), 0);
  assert.equal(b.encodingBytes(f32, 2 ** 40, 2 ** 40), 0, 'overflow reported as 0');
});

test('UTF-8 strings round-trip through the heap', async () => {
  const b = await Binding.create({ wasm: needWasm() });
  for (const s of ['', 'hello', 'héllo 日本 😀']) {
    const { ptr, len } = b.allocString(s);
    assert.equal(len, new TextEncoder().encode(s).length);
    assert.equal(b.cString(ptr), s);
    b.free(ptr);
  }
});

test('core errors become TrilliumError with the core message', async () => {
  const b = await Binding.create({ wasm: needWasm() });
  const json = b.allocString('{"config": {"arch": "llama", "dim": -4}}');
  assert.throws(
    () => b.withError('manifest.json: config', (err) => b.x.trlw_config_from_json(json.ptr, json.len, err)),
    (e) => e.name === 'TrilliumError' && e.code === 'CORE' && /^manifest\.json: config: .+/.test(e.message),
  );
  const bad = b.allocString('{not json');
  assert.throws(() => b.withError('x', (err) => b.x.trlw_config_from_json(bad.ptr, bad.len, err)), (e) => e.code === 'CORE' && /^x: .+/.test(e.message));
});

test('views are refreshed after the heap grows; pointers read unsigned', async () => {
  const b = await Binding.create({ wasm: needWasm() });
  const before = b.heapBytes;
  const u8Before = b.u8;
  const p = b.mallocAligned(before + (16 << 20), 'a big block'); // forces a growth
  assert.ok(p > 0 && p % 64 === 0, `64-aligned pointer ${p}`);
  assert.ok(b.heapBytes > before, 'the heap grew');
  assert.equal(u8Before.length, 0, 'the old view is detached');
  assert.equal(b.u8.length, b.heapBytes);
  b.u8[p + before] = 7;
  assert.equal(b.u8[p + before], 7);
  b.free(p);
});

test('an allocation the heap cannot hold is a NO_MEMORY error, not a crash', async () => {
  const b = await Binding.create({ wasm: needWasm() });
  assert.throws(() => b.mallocAligned(0xffffffff, 'an impossible block'), (e) => e.code === 'NO_MEMORY' && /impossible block/.test(e.message));
  assert.throws(() => b.malloc(0xfff00000, 'x'), (e) => e.code === 'NO_MEMORY');
});

test('a missing wasm file is a clear WASM error', async () => {
  await assert.rejects(Binding.create({ wasm: '/nonexistent/trillium.wasm' }), (e) => e.code === 'WASM' && /\/nonexistent\/trillium\.wasm/.test(e.message));
});
