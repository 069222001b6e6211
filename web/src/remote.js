// RemoteModel: the Model API over a worker (worker-server.js). Every method
// returns a Promise (tokenize too: `await model.tokenize(x)` works on both
// kinds), generate() and chat() are async iterators of text pieces, and an
// AbortSignal, or breaking out of the loop, stops the worker's generation
// between two tokens. info, variant, stats and lastStats are kept up to date
// from the worker's replies.
import { TrilliumError } from './errors.js';
import { createWorker } from './platform/index.js';

// Options that are plain data and cross to the worker as they are.
const DATA_OPTS = ['contextLength', 'batchSize', 'variant', 'memoryBudget', 'progressive', 'refresh', 'retries', 'retryDelayMs', 'timeoutMs', 'concurrency'];

function baseHref() {
  if (typeof document !== 'undefined' && document.baseURI) return document.baseURI;
  if (typeof location !== 'undefined') return location.href;
  return undefined;
}

// A worker resolves relative URLs against its own script: make them absolute here.
function absolute(v) {
  const base = baseHref();
  if (v instanceof URL) return v.href;
  if (typeof v === 'string' && base && !/^[a-z][a-z0-9+.-]*:/i.test(v)) return new URL(v, base).href;
  return v;
}

function toError(d) {
  if (!d) return new TrilliumError('WORKER', 'the trillium worker failed');
  if (d.name === 'AbortError') {
    if (typeof DOMException === 'function') return new DOMException(d.message, 'AbortError');
    const e = new Error(d.message);
    e.name = 'AbortError';
    return e;
  }
  if (d.code) {
    const e = new TrilliumError(d.code, d.message, { file: d.file, field: d.field, status: d.status });
    if (d.suggestedVariant !== undefined) e.suggestedVariant = d.suggestedVariant;
    if (d.suggestedContextLength !== undefined) e.suggestedContextLength = d.suggestedContextLength;
    return e;
  }
  const e = new Error(d.message);
  e.name = d.name || 'Error';
  return e;
}

export class RemoteModel {
  #port;
  #pending = new Map(); // id -> {resolve, reject, onPiece?, onProgress?, onWarning?}
  #next = 1;
  #state = null;
  #dead = null;
  #disposed = false;
  #upgrade;

  /**
   * Start a worker and load the pack in it.
   * @param {string|URL} source a pack directory (Node) or URL
   * @param {object} [opts] LoadOptions; callbacks (onProgress, onWarning, onUpgrade) and signal work as in-process
   */
  static async load(source, opts = {}) {
    if (source && typeof source === 'object' && !(source instanceof URL)) {
      throw new TrilliumError('BAD_ARGUMENT', 'a custom pack source cannot be sent to a worker: load it with worker: false');
    }
    const o = {};
    for (const k of DATA_OPTS) if (opts[k] !== undefined) o[k] = opts[k];
    if (opts.cache !== undefined) {
      if (typeof opts.cache !== 'boolean' && typeof opts.cache !== 'string' && opts.cache !== null) {
        throw new TrilliumError('BAD_ARGUMENT', 'a cache store object cannot be sent to a worker: pass true, false or a cache name/directory');
      }
      o.cache = opts.cache;
    }
    if (opts.device !== undefined) {
      if (Object.values(opts.device).some((v) => typeof v === 'function')) {
        throw new TrilliumError('BAD_ARGUMENT', 'device.probe cannot be sent to a worker (functions do not cross)');
      }
      o.device = opts.device;
    }
    if (opts.fetch !== undefined) throw new TrilliumError('BAD_ARGUMENT', 'a custom fetch cannot be sent to a worker: load it with worker: false');
    if (opts.wasm !== undefined) o.wasm = absolute(opts.wasm);
    for (const k of ['threads', 'build']) if (opts[k] !== undefined) o[k] = opts[k];
    for (const k of ['threadsGlue', 'threadsWasm']) if (opts[k] !== undefined) o[k] = absolute(opts[k]);
    opts.signal?.throwIfAborted?.();

    const port = await createWorker();
    const m = new RemoteModel(port, opts.onUpgrade);
    try {
      await m.#request({ op: 'load', source: absolute(source), opts: o, progress: typeof opts.onProgress === 'function' }, {
        signal: opts.signal,
        onProgress: opts.onProgress,
        onWarning: opts.onWarning,
      });
    } catch (e) {
      port.terminate();
      m.#disposed = true;
      throw e;
    }
    return m;
  }

  /** @private use RemoteModel.load */
  constructor(port, onUpgrade) {
    this.#port = port;
    let resolve;
    let reject;
    this.#upgrade = { onUpgrade };
    /** Resolves with `variant` once a progressive upgrade is in (at once without one); rejects if it failed. */
    this.upgraded = new Promise((res, rej) => {
      resolve = res;
      reject = rej;
    });
    this.upgraded.catch(() => {});
    this.#upgrade.resolve = resolve;
    this.#upgrade.reject = reject;
    port.onMessage((msg) => this.#onMessage(msg));
    port.onError((e) => this.#onDeath(e));
    port.unref?.();
  }

  #onMessage(msg) {
    if (!msg || typeof msg !== 'object') return;
    if (msg.state !== undefined && msg.state !== null) this.#state = msg.state;
    if (msg.type === 'upgraded') {
      this.#upgrade.resolve(msg.value);
      this.#upgrade.onUpgrade?.(msg.value);
      return;
    }
    if (msg.type === 'upgrade-failed') {
      this.#upgrade.reject(toError(msg.error));
      return;
    }
    const p = this.#pending.get(msg.id);
    if (!p) return;
    switch (msg.type) {
      case 'piece':
        p.onPiece?.(msg.value);
        break;
      case 'progress':
        p.onProgress?.(msg.value);
        break;
      case 'warning':
        p.onWarning?.(msg.value);
        break;
      case 'result':
        this.#settle(msg.id);
        p.resolve(msg.value);
        break;
      case 'error':
        this.#settle(msg.id);
        p.reject(toError(msg.error));
        break;
      default:
        break;
    }
  }

  #settle(id) {
    this.#pending.delete(id);
    // Node: an idle worker does not keep the process alive.
    if (this.#pending.size === 0) this.#port.unref?.();
  }

  #onDeath(e) {
    if (this.#dead || this.#disposed) return;
    this.#dead = new TrilliumError('WORKER', `the trillium worker stopped: ${e?.message || e}`, { cause: e });
    for (const [, p] of this.#pending) p.reject(this.#dead);
    this.#pending.clear();
    this.#upgrade.reject(this.#dead);
  }

  #request(msg, { signal, onPiece, onProgress, onWarning, transfer, id = this.#next++ } = {}) {
    if (this.#dead) return Promise.reject(this.#dead);
    if (this.#disposed && msg.op !== 'dispose') return Promise.reject(new TrilliumError('DISPOSED', 'this model was disposed'));
    return new Promise((resolve, reject) => {
      const onAbort = () => this.#port.post({ op: 'abort', target: id });
      signal?.addEventListener?.('abort', onAbort, { once: true });
      const done = () => signal?.removeEventListener?.('abort', onAbort);
      this.#pending.set(id, {
        resolve: (v) => {
          done();
          resolve(v);
        },
        reject: (e) => {
          done();
          reject(e?.name === 'AbortError' && signal?.aborted ? signal.reason ?? e : e);
        },
        onPiece,
        onProgress,
        onWarning,
      });
      this.#port.ref?.();
      this.#port.post({ ...msg, id }, transfer);
    });
  }

  #call(method, ...args) {
    return this.#request({ op: 'call', method, args });
  }

  /** Pack, config, tokenizer and memory facts (as Model.info). */
  get info() {
    return this.#state?.info ?? null;
  }
  get variant() {
    return this.#state?.variant ? { ...this.#state.variant } : null;
  }
  get stats() {
    return this.#state?.stats ? { ...this.#state.stats } : null;
  }
  get lastStats() {
    return this.#state?.lastStats ?? null;
  }

  tokenize(text, opts) {
    return this.#call('tokenize', text, opts);
  }
  detokenize(ids) {
    return this.#call('detokenize', Array.from(ids));
  }
  tokenBytes(id) {
    return this.#call('tokenBytes', id);
  }
  logits(prompt, opts) {
    return this.#call('logits', prompt, opts);
  }
  formatChat(messages, opts) {
    return this.#call('formatChat', messages, opts);
  }
  perplexity(text, opts = {}) {
    const { signal, ...rest } = opts;
    return this.#request({ op: 'call', method: 'perplexity', args: [text, rest] }, { signal });
  }

  /** Text pieces as the worker produces them; the return value is the statistics. */
  generate(prompt, opts = {}) {
    return this.#stream({ op: 'generate', prompt }, opts);
  }

  chat(messages, opts = {}) {
    return this.#stream({ op: 'chat', messages }, opts);
  }

  async *#stream(msg, opts) {
    const { signal, onText, ...rest } = opts ?? {};
    signal?.throwIfAborted?.();
    const queue = [];
    let wake = null;
    let finished = false;
    let result;
    let error = null;
    const id = this.#next++;
    const p = this.#request({ ...msg, opts: rest }, {
      id,
      signal,
      onPiece: (piece) => {
        queue.push(piece);
        wake?.();
      },
    }).then(
      (v) => {
        result = v;
      },
      (e) => {
        error = e;
      },
    ).finally(() => {
      finished = true;
      wake?.();
    });
    let completed = false;
    try {
      for (;;) {
        // Aborted: no piece the worker sent before it noticed is shown.
        if (signal?.aborted) throw signal.reason;
        if (queue.length) {
          const piece = queue.shift();
          this.#port.post({ op: 'ack', target: id, n: 1 });
          yield piece;
          continue;
        }
        if (finished) break;
        await new Promise((r) => (wake = r));
        wake = null;
      }
      completed = true;
      if (error) throw error;
      return result;
    } finally {
      if (!completed && !finished) {
        // The caller left the loop early: stop the worker's generation and
        // wait for it, so the next call does not find the model busy.
        this.#port.post({ op: 'abort', target: id });
        await p;
      }
    }
  }

  /** Generate to the end and return the statistics (onText sees each piece). */
  async complete(prompt, opts = {}) {
    const it = this.generate(prompt, opts);
    for (;;) {
      const r = await it.next();
      if (r.done) return r.value;
      opts.onText?.(r.value);
    }
  }

  /**
   * Free the model and stop the worker. Returns a Promise (the worker
   * finishes what runs first); the model is unusable at once.
   */
  dispose() {
    if (this.#disposed) return Promise.resolve();
    this.#disposed = true;
    if (this.#dead) {
      this.#port.terminate();
      return Promise.resolve();
    }
    return this.#request({ op: 'dispose' }).catch(() => {}).finally(() => this.#port.terminate());
  }
}
