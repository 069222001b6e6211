// A pack served over http(s) (any static server, CDN, or the PWA cache): the
// same code in Node (global fetch, Node >= 18) and browsers.
import { TrilliumError } from '../errors.js';

export class HttpSource {
  /** @param {URL} base the pack directory URL */
  constructor(base) {
    const href = base.href.endsWith('/') ? base.href : base.href + '/';
    this.base = new URL(href);
    this.label = href;
  }

  describe(file) {
    return new URL(file, this.base).href;
  }

  async _fetch(file, reload) {
    const url = this.describe(file);
    let res;
    try {
      res = await fetch(url, reload ? { cache: 'reload' } : undefined);
    } catch (e) {
      throw new TrilliumError('IO', `${url}: fetch failed: ${e?.cause?.message || e?.message || e}`, {
        file,
        cause: e,
      });
    }
    if (res.status === 404 || res.status === 410) {
      throw new TrilliumError('MISSING_FILE', `${url}: not found (HTTP ${res.status})`, { file });
    }
    if (!res.ok) throw new TrilliumError('IO', `${url}: HTTP ${res.status} ${res.statusText}`, { file });
    return res;
  }

  async readText(file) {
    const res = await this._fetch(file, false);
    return await res.text();
  }

  /**
   * Streams `file` into the wasm heap: `view(offset, n)` returns a fresh
   * Uint8Array over the destination (the heap may have been replaced by a
   * growth elsewhere), so no JS buffer ever holds more than one network piece.
   */
  async readInto(file, expected, view, onBytes, { reload = false, field = 'bytes' } = {}) {
    const res = await this._fetch(file, reload);
    const url = this.describe(file);
    const len = res.headers.get('content-length');
    // With a Content-Encoding the length is the compressed one: only the
    // streamed byte count is meaningful then.
    if (len !== null && !res.headers.get('content-encoding') && Number(len) !== expected) {
      await res.body?.cancel().catch(() => {});
      throw sizeError(url, file, field, Number(len), expected);
    }
    let pos = 0;
    if (!res.body) {
      const buf = new Uint8Array(await res.arrayBuffer());
      if (buf.length !== expected) throw sizeError(url, file, field, buf.length, expected);
      view(0, buf.length).set(buf);
      onBytes(buf.length);
      return;
    }
    const reader = res.body.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        if (pos + value.length > expected) throw sizeError(url, file, field, `more than ${expected}`, expected);
        view(pos, value.length).set(value);
        pos += value.length;
        onBytes(value.length);
      }
    } catch (e) {
      reader.cancel().catch(() => {});
      if (e instanceof TrilliumError) throw e;
      throw new TrilliumError('IO', `${url}: download failed after ${pos} bytes: ${e?.message || e}`, {
        file,
        cause: e,
      });
    }
    if (pos !== expected) throw sizeError(url, file, field, pos, expected);
  }
}

function sizeError(url, file, field, got, expected) {
  return new TrilliumError(
    'SIZE_MISMATCH',
    `${url}: size is ${got} bytes but manifest.json ${field} says ${expected}` +
      ' (a truncated or replaced chunk: re-run trillium-convert or re-upload the pack)',
    { file, field },
  );
}
