// The streaming UTF-8 decoder (pure JS): generated text is printed piece by
// piece and must never show half a character.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Utf8Stream, utf8Length } from '../../web/src/utf8.js';

const enc = new TextEncoder();

function feed(pieces) {
  const s = new Utf8Stream();
  const outs = pieces.map((p) => s.push(Uint8Array.from(p)));
  outs.push(s.end());
  return outs;
}

test('ASCII passes through piece by piece', () => {
  assert.deepEqual(feed([enc.encode('Once'), enc.encode(' upon'), enc.encode(' a time')]), ['Once', ' upon', ' a time', '']);
});

test('a 2-byte character split across tokens is held back until complete', () => {
  const e = enc.encode('é'); // c3 a9
  assert.deepEqual(feed([[0x63, 0x61, 0x66, e[0]], [e[1], 0x21]]), ['caf', 'é!', '']);
});

test('3- and 4-byte characters split at every position', () => {
  for (const ch of ['€', '日', '😀', '𝄞']) {
    const b = Array.from(enc.encode(ch));
    for (let cut = 1; cut < b.length; cut++) {
      const outs = feed([b.slice(0, cut), b.slice(cut)]);
      assert.equal(outs[0], '', `${ch} cut at ${cut}: nothing before the character is complete`);
      assert.equal(outs.join(''), ch);
      for (const o of outs) assert.ok(!/[\uFFFD]/.test(o), 'no replacement character for a valid split');
    }
    // one byte per token (SPM byte fallback <0xNN>)
    const outs = feed(b.map((x) => [x]));
    assert.deepEqual(outs.slice(0, -2).filter((o) => o !== ''), []);
    assert.equal(outs.join(''), ch);
  }
});

test('hasPending reports a held-back tail', () => {
  const s = new Utf8Stream();
  assert.equal(s.push(Uint8Array.from([0xf0, 0x9f])), '');
  assert.equal(s.hasPending, true);
  assert.equal(s.push(Uint8Array.from([0x98, 0x80])), '😀');
  assert.equal(s.hasPending, false);
});

test('an unfinished character at the end becomes one U+FFFD', () => {
  assert.deepEqual(feed([[0x61, 0xe2, 0x82]]), ['a', '\uFFFD']);
});

test('invalid bytes become U+FFFD and decoding continues', () => {
  const outs = feed([[0x61, 0xff, 0x62], [0x80], [0x63]]);
  assert.equal(outs.join(''), 'a\uFFFDb\uFFFDc');
});

test('piecewise decoding equals whole decoding for random byte streams', () => {
  let seed = 12345;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) / 65536;
  const text = 'héllo wörld — 日本語 😀 ok ';
  for (let trial = 0; trial < 200; trial++) {
    const bytes = Array.from(enc.encode(text.repeat(3)));
    if (trial % 2) bytes[Math.floor(rnd() * bytes.length)] = Math.floor(rnd() * 256); // some corruption
    const pieces = [];
    for (let i = 0; i < bytes.length; ) {
      const n = 1 + Math.floor(rnd() * 5);
      pieces.push(bytes.slice(i, i + n));
      i += n;
    }
    const whole = new TextDecoder().decode(Uint8Array.from(bytes));
    assert.equal(feed(pieces).join(''), whole);
  }
});

test('utf8Length matches TextEncoder', () => {
  for (const s of ['', 'abc', 'é', '€', '😀', 'a\uD800b', '\uDC00', 'x😀y日']) {
    assert.equal(utf8Length(s), enc.encode(s).length, JSON.stringify(s));
  }
});
