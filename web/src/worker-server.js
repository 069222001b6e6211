// The worker side of the engine protocol: one Model per worker, driven by
// messages from a RemoteModel (remote.js). Requests run concurrently as far
// as the Model allows (it refuses a second generation with BUSY), so an
// 'abort' message reaches a running generation between two tokens.
//
// client -> worker: {id, op: 'load', source, opts, progress}
//                   {id, op: 'call', method, args}      tokenize, detokenize, tokenBytes, logits, perplexity, formatChat
//                   {id, op: 'generate', prompt, opts} / {id, op: 'chat', messages, opts}
//                   {op: 'abort', target}               stop request `target` (a load or a generation)
//                   {op: 'ack', target, n}              the client consumed n pieces of generation `target`
//                   {id, op: 'dispose'}
// worker -> client: {id, type: 'result', value, state}  {id, type: 'error', error, state}
//                   {id, type: 'piece', value}          {id, type: 'progress' | 'warning', value}
//                   {type: 'upgraded', value, state}    {type: 'upgrade-failed', error, state}
import { TrilliumError } from './errors.js';
import { Model } from './model.js';

const WINDOW = 4;
const CALLS = new Set(['tokenize', 'detokenize', 'tokenBytes', 'logits', 'perplexity', 'formatChat']);

/** Plain data for an error (structured clone keeps only some Error fields). */
export function errorData(e) {
  return {
    name: e?.name ?? 'Error',
    message: e?.message ?? String(e),
    code: e?.code,
    file: e?.file,
    field: e?.field,
    status: e?.status,
    suggestedVariant: e?.suggestedVariant,
    suggestedContextLength: e?.suggestedContextLength,
  };
}

/** @param {{post(msg, transfer?): void, onMessage(fn): void}} port */
export function serve(port) {
  let model = null;
  const running = new Map(); // request id -> AbortController
  const finished = new Map(); // request id -> Promise settled when it is done
  // Flow control: a generation runs at most WINDOW pieces ahead of what the
  // client has consumed, like the in-process iterator that only works when
  // asked; so a slow consumer costs no compute and an abort lands within a
  // few tokens of the last piece shown.
  const flows = new Map(); // request id -> {credit, wake}
  const send = (msg, transfer) => port.post(msg, transfer);
  const state = () => (model ? { info: model.info, variant: model.variant, stats: model.stats, lastStats: model.lastStats } : null);
  const needModel = () => {
    if (!model) throw new TrilliumError('DISPOSED', 'no model is loaded in this worker');
    return model;
  };

  port.onMessage(async (msg) => {
    if (!msg || typeof msg !== 'object') return;
    const { id, op } = msg;
    if (op === 'abort') {
      running.get(msg.target)?.abort(abortError());
      return;
    }
    if (op === 'ack') {
      const f = flows.get(msg.target);
      if (f) {
        f.credit += msg.n ?? 1;
        f.wake?.();
      }
      return;
    }
    const ac = new AbortController();
    running.set(id, ac);
    let settle;
    finished.set(id, new Promise((r) => (settle = r)));
    try {
      switch (op) {
        case 'load': {
          if (model) throw new TrilliumError('BAD_ARGUMENT', 'this worker already holds a model');
          const opts = {
            ...msg.opts,
            signal: ac.signal,
            onProgress: msg.progress ? (p) => send({ id, type: 'progress', value: p }) : undefined,
            onWarning: (w) => send({ id, type: 'warning', value: { message: w.message, quota: !!w.quota } }),
          };
          model = await Model.load(msg.source, opts);
          const m = model;
          m.upgraded.then(
            (v) => m === model && send({ type: 'upgraded', value: v, state: state() }),
            (e) => m === model && send({ type: 'upgrade-failed', error: errorData(e), state: state() }),
          );
          send({ id, type: 'result', value: null, state: state() });
          break;
        }
        case 'call': {
          if (!CALLS.has(msg.method)) throw new TrilliumError('BAD_ARGUMENT', `unknown method ${msg.method}`);
          const m = needModel();
          const args = [...(msg.args ?? [])];
          // options objects may carry an abort (perplexity)
          if (msg.method === 'perplexity') args[1] = { ...(args[1] ?? {}), signal: ac.signal };
          const value = await m[msg.method](...args);
          const transfer = value?.logits instanceof Float32Array ? [value.logits.buffer] : [];
          send({ id, type: 'result', value, state: state() }, transfer);
          break;
        }
        case 'generate':
        case 'chat': {
          const m = needModel();
          const opts = { ...msg.opts, signal: ac.signal };
          const it = op === 'generate' ? m.generate(msg.prompt, opts) : m.chat(msg.messages, opts);
          const flow = { credit: WINDOW, wake: null };
          flows.set(id, flow);
          const onAbort = () => flow.wake?.();
          ac.signal.addEventListener('abort', onAbort);
          try {
            let r;
            while (!(r = await it.next()).done) {
              send({ id, type: 'piece', value: r.value });
              flow.credit--;
              while (flow.credit <= 0 && !ac.signal.aborted) await new Promise((w) => (flow.wake = w));
              flow.wake = null;
            }
            send({ id, type: 'result', value: r.value, state: state() });
          } finally {
            ac.signal.removeEventListener('abort', onAbort);
            flows.delete(id);
          }
          break;
        }
        case 'dispose': {
          // Stop what runs (a generation notices between two tokens), then free.
          const others = [...running.keys()].filter((rid) => rid !== id);
          for (const rid of others) running.get(rid).abort(abortError());
          await Promise.all(others.map((rid) => finished.get(rid)));
          model?.dispose();
          model = null;
          send({ id, type: 'result', value: null, state: null });
          break;
        }
        default:
          throw new TrilliumError('BAD_ARGUMENT', `unknown request ${JSON.stringify(op)}`);
      }
    } catch (e) {
      send({ id, type: 'error', error: errorData(e), state: state() });
    } finally {
      running.delete(id);
      finished.delete(id);
      settle();
    }
  });
}

function abortError() {
  if (typeof DOMException === 'function') return new DOMException('aborted', 'AbortError');
  const e = new Error('aborted');
  e.name = 'AbortError';
  return e;
}
