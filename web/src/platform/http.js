// A pack served over http(s) (any static server, CDN, or the PWA cache): the
// same code in Node (global fetch, Node >= 18) and browsers.
//
// Downloads survive bad networks: a failed request or a body cut short is
// retried with exponential backoff (retries, retryDelayMs), resuming with a
// Range request from the bytes already received; a server that sends nothing
// for timeoutMs counts as failed. Errors that retrying cannot fix (404, a size
// that contradicts the manifest) fail at once. The caller's AbortSignal stops
// everything immediately with the signal's reason.
import { TrilliumError } from '../errors.js';

export const FETCH_DEFAULTS = Object.freeze({ retries: 4, retryDelayMs: 500, timeoutMs: 30000 });

const RETRY_STATUS = new Set([408, 425, 429, 500, 502, 503, 504]);

class Retryable extends Error {}

export class HttpSource {
  /**
   * @param {URL} base the pack directory URL
   * @param {{retries?: number, retryDelayMs?: number, timeoutMs?: number, fetch?: typeof fetch}} [opts]
   */
  constructor(base, opts = {}) {
    const href = base.href.endsWith('/') ? base.href : base.href + '/';
    this.base = new URL(href);
    this.label = href;
    /** Where a cache files this pack's manifest. */
    this.cacheKey = href;
    this.cacheable = true;
    this.retries = opts.retries ?? FETCH_DEFAULTS.retries;
    this.retryDelayMs = opts.retryDelayMs ?? FETCH_DEFAULTS.retryDelayMs;
    this.timeoutMs = opts.timeoutMs ?? FETCH_DEFAULTS.timeoutMs;
    this.fetch = opts.fetch ?? ((...a) => globalThis.fetch(...a));
  }

  describe(file) {
    return new URL(file, this.base).href;
  }

  /**
   * Run `attempt(n)` until it succeeds, with exponential backoff between tries
   * for failures it marks Retryable. The final error names the file and field.
   */
  async _retrying(file, field, signal, attempt) {
    const url = this.describe(file);
    let last = null;
    for (let n = 0; n <= this.retries; n++) {
      signal?.throwIfAborted?.();
      if (n > 0) {
        // 0.5 s, 1 s, 2 s, 4 s, ... with a little jitter so clients spread out.
        await sleep(this.retryDelayMs * 2 ** (n - 1) * (1 + Math.random() * 0.25), signal);
      }
      try {
        return await attempt(n);
      } catch (e) {
        if (signal?.aborted) throw signal.reason ?? e;
        if (!(e instanceof Retryable)) throw e;
        last = e;
      }
    }
    throw new TrilliumError('IO', `${url}: download failed after ${this.retries + 1} attempts: ${last.message}`, {
      file,
      field,
      cause: last.cause ?? last,
    });
  }

  // One request with a stall timer: rejects with Retryable on network errors,
  // timeouts and retryable statuses. Returns {res, ctl, arm, disarm}.
  async _request(file, field, headers, reload, signal) {
    const url = this.describe(file);
    const ctl = new AbortController();
    const onAbort = () => ctl.abort(signal.reason);
    signal?.addEventListener?.('abort', onAbort, { once: true });
    let timer = null;
    let timedOut = false;
    const arm = () => {
      clearTimeout(timer);
      if (this.timeoutMs > 0 && Number.isFinite(this.timeoutMs)) {
        timer = setTimeout(() => {
          timedOut = true;
          ctl.abort(new Error(`no data for ${this.timeoutMs} ms`));
        }, this.timeoutMs);
      }
    };
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener?.('abort', onAbort);
    };
    arm();
    let res;
    try {
      res = await this.fetch(url, { headers, signal: ctl.signal, ...(reload ? { cache: 'reload' } : {}) });
    } catch (e) {
      done();
      if (signal?.aborted) throw signal.reason ?? e;
      throw new Retryable(timedOut ? `no response within ${this.timeoutMs} ms` : `fetch failed: ${e?.cause?.message || e?.message || e}`, { cause: e });
    }
    if (res.status === 404 || res.status === 410) {
      done();
      await res.body?.cancel().catch(() => {});
      throw new TrilliumError('MISSING_FILE', `${url}: not found (HTTP ${res.status})`, { file, field, status: res.status });
    }
    if (RETRY_STATUS.has(res.status)) {
      done();
      await res.body?.cancel().catch(() => {});
      throw new Retryable(`HTTP ${res.status} ${res.statusText}`.trim());
    }
    if (!res.ok && res.status !== 416) {
      done();
      await res.body?.cancel().catch(() => {});
      throw new TrilliumError('IO', `${url}: HTTP ${res.status} ${res.statusText}`.trim(), { file, field, status: res.status });
    }
    return { res, arm, done, timedOut: () => timedOut };
  }

  async readText(file, { signal, reload = false } = {}) {
    return this._retrying(file, undefined, signal, async (n) => {
      const { res, arm, done, timedOut } = await this._request(file, undefined, undefined, reload || n > 0, signal);
      try {
        arm();
        return await res.text();
      } catch (e) {
        if (signal?.aborted) throw signal.reason ?? e;
        throw new Retryable(timedOut() ? `no data for ${this.timeoutMs} ms` : `download failed: ${e?.cause?.message || e?.message || e}`, { cause: e });
      } finally {
        done();
      }
    });
  }

  /**
   * Streams `file` into the wasm heap: `view(offset, n)` returns a fresh
   * Uint8Array over the destination (the heap may have been replaced by a
   * growth elsewhere), so no JS buffer ever holds more than one network piece.
   * `start` bytes are already in place (a cached partial download): only the
   * rest is requested. `sink.write(piece)` sees every new piece (the cache's
   * partial file); `sink.restart()` is called when a server ignores a Range
   * request and the bytes start over.
   */
  async readInto(file, expected, view, onBytes, { reload = false, field = 'bytes', fileField, start = 0, sink, signal } = {}) {
    const url = this.describe(file);
    let pos = start;
    await this._retrying(file, fileField ?? field, signal, async (n) => {
      // Everything already here (a partial download that was complete): nothing to ask.
      if (pos === expected && pos > 0) return;
      const headers = pos > 0 ? { Range: `bytes=${pos}-` } : undefined;
      const { res, arm, done, timedOut } = await this._request(file, fileField, headers, reload || n > 0, signal);
      try {
        const len = res.headers.get('content-length');
        const encoded = !!res.headers.get('content-encoding');
        if (res.status === 416) {
          await res.body?.cancel().catch(() => {});
          throw sizeError(url, file, field, `at most ${pos}`, expected);
        }
        if (res.status === 206) {
          const m = /^bytes\s+(\d+)-(\d+)\/(\d+|\*)$/i.exec(res.headers.get('content-range') || '');
          if (!m || Number(m[1]) !== pos) {
            await res.body?.cancel().catch(() => {});
            throw new TrilliumError('IO', `${url}: the server answered a request for bytes ${pos}- with Content-Range ${JSON.stringify(res.headers.get('content-range'))}`, { file, field: fileField });
          }
          if (m[3] !== '*' && Number(m[3]) !== expected) {
            await res.body?.cancel().catch(() => {});
            throw sizeError(url, file, field, Number(m[3]), expected);
          }
        } else if (pos > 0) {
          // 200 to a Range request: the whole file comes again.
          onBytes(-pos);
          pos = 0;
          await sink?.restart?.();
        }
        // With a Content-Encoding the length is the compressed one: only the
        // streamed byte count is meaningful then.
        if (len !== null && !encoded && Number(len) !== expected - pos) {
          await res.body?.cancel().catch(() => {});
          throw sizeError(url, file, field, res.status === 206 ? `${pos} + ${len}` : Number(len), expected);
        }
        if (!res.body) {
          const buf = new Uint8Array(await res.arrayBuffer());
          if (pos + buf.length !== expected) throw sizeError(url, file, field, pos + buf.length, expected);
          view(pos, buf.length).set(buf);
          sink?.write(buf);
          pos += buf.length;
          onBytes(buf.length);
          return;
        }
        const reader = res.body.getReader();
        try {
          for (;;) {
            arm();
            const { done: end, value } = await reader.read();
            if (end) break;
            if (pos + value.length > expected) throw sizeError(url, file, field, `more than ${expected}`, expected);
            view(pos, value.length).set(value);
            sink?.write(value);
            pos += value.length;
            onBytes(value.length);
          }
        } catch (e) {
          reader.cancel().catch(() => {});
          if (e instanceof TrilliumError) throw e;
          if (signal?.aborted) throw signal.reason ?? e;
          throw new Retryable(
            timedOut() ? `no data for ${this.timeoutMs} ms after ${pos} of ${expected} bytes`
              : `connection lost after ${pos} of ${expected} bytes: ${e?.cause?.message || e?.message || e}`,
            { cause: e },
          );
        }
        if (pos !== expected) {
          // A body that ends early without an error: resume; a server whose
          // file really is shorter answers the Range request with 416.
          throw new Retryable(`the body ended after ${pos} of ${expected} bytes`);
        }
      } finally {
        done();
      }
    });
    if (pos !== expected) throw sizeError(url, file, field, pos, expected);
  }
}

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener?.('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal.reason);
    };
    signal?.addEventListener?.('abort', onAbort, { once: true });
  });
}

function sizeError(url, file, field, got, expected) {
  return new TrilliumError(
    'SIZE_MISMATCH',
    `${url}: size is ${got} bytes but manifest.json ${field} says ${expected}` +
      ' (a truncated or replaced chunk: re-run trillium-convert or re-upload the pack)',
    { file, field },
  );
}
