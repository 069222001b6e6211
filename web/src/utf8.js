// Streaming UTF-8 for generated text: a token may end in the middle of a
// character (byte-fallback tokens, byte-level BPE), and a caller printing
// pieces as they arrive must never see half of one.

/**
 * Decodes a stream of byte pieces into text pieces. push() returns only whole
 * characters and holds back an incomplete tail until the bytes that finish it
 * arrive; end() flushes, turning a tail that never completed into U+FFFD.
 * Invalid sequences become U+FFFD (WHATWG "replacement" semantics), so the
 * concatenation of all returned strings equals decoding all bytes at once.
 */
export class Utf8Stream {
  constructor() {
    this._dec = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });
    this._pending = 0; // bytes held back by the decoder, for hasPending
  }

  /** @param {Uint8Array} bytes @returns {string} */
  push(bytes) {
    const s = this._dec.decode(bytes, { stream: true });
    this._pending = incompleteTail(this._pending, bytes);
    return s;
  }

  /** True while an incomplete character is held back. */
  get hasPending() {
    return this._pending > 0;
  }

  /** @returns {string} what was held back (U+FFFD for an unfinished character) */
  end() {
    this._pending = 0;
    return this._dec.decode();
  }
}

// Length of the unfinished UTF-8 sequence at the end of the stream so far,
// given the previous one: only used for hasPending, the decoder does the work.
function incompleteTail(prev, bytes) {
  let n = prev;
  for (const b of bytes) {
    if (n > 0 && (b & 0xc0) === 0x80) {
      n -= 1;
      continue;
    }
    if (b >= 0xc2 && b <= 0xdf) n = 1;
    else if (b >= 0xe0 && b <= 0xef) n = 2;
    else if (b >= 0xf0 && b <= 0xf4) n = 3;
    else n = 0;
  }
  return n;
}

/** Byte length of the UTF-8 encoding of a JS string (lone surrogates: 3 bytes, as TextEncoder writes U+FFFD). */
export function utf8Length(s) {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 4;
        i++;
      } else n += 3;
    } else n += 3;
  }
  return n;
}
