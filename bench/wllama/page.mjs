// The measurement, in the page: one engine per fresh browser, the way an app
// uses it (each engine's own URL loader, its own worker, its own cache), on
// the same prompt text, one token per word (tokenizing is outside both timers).
//
//   trillium: Trillium.load(packUrl, {threads, contextLength}) (on a page that
//             is the module-Worker proxy), model.complete(ids, ...) stats;
//   wllama:   new Wllama({default: wllama.wasm}).loadModelFromUrl(ggufUrl,
//             {n_threads, n_ctx, n_gpu_layers: 0}), createCompletion({prompt:
//             ids, cache_prompt: false, ...}) timings (llama-server's).
//
// Per load: one warm-up completion, then `iters` times: a 64-token prompt
// with a greedy decode of `gen` tokens, and a 512-token prompt with one token
// (its prefill only); a different first token each time so no prompt cache
// can skip work. Returns every sample; bench.mjs takes the medians.
import { Trillium } from '/web/src/index.js';
import { LoggerWithoutDebug, Wllama } from '/wllama/index.js';

const now = () => performance.now();
// wllama v3's completion takes text only (a token-id array is refused: "type
// must be string"), so both engines get the same text: n words, each one
// token of the models' byte-level BPE (" the", " fox", ...), a different
// sequence per iteration; both engines' evaluated prompt lengths are checked.
const WORDS = ['the', 'fox', 'and', 'for', 'bird', 'she', 'said', 'wood', 'river', 'day'];
// The first word differs from the previous prompt's (Trillium reuses the
// longest common prefix in its KV cache; llama-server gets cache_prompt false).
let seq = 0;
function ids(r, n) {
  let x = (r * 2654435761 + 12345) >>> 0;
  const w = [WORDS[seq++ % WORDS.length]];
  for (let i = 1; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    w.push(WORDS[(x >>> 16) % WORDS.length]);
  }
  return ' ' + w.join(' ');
}
const promptLength = (text) => text.split(' ').length - 1;

async function trillium(o) {
  const t0 = now();
  const model = await Trillium.load(o.url, { threads: o.threads, contextLength: o.nCtx });
  const loadMs = now() - t0;
  const info = model.info;
  let samples = [];
  let tokens = null;
  try {
    const run = async (prompt, gen) => {
      const t = now();
      const st = await model.complete(prompt, { maxTokens: gen, temperature: 0, ignoreEos: true, addBos: false });
      if (st.evaluatedPromptTokens !== promptLength(prompt)) throw new Error(`trillium: evaluated ${st.evaluatedPromptTokens} prompt tokens, sent ${promptLength(prompt)}`);
      return { prefillMs: st.prefillMs, decodeMs: st.decodeMs, generated: st.generatedTokens, promptN: st.evaluatedPromptTokens, wallMs: now() - t, tokens: st.tokens };
    };
    ({ samples, tokens } = await measure(run, o));
  } finally {
    model.dispose();
  }
  return { loadMs, samples, build: info.build ?? null, threads: info.threads ?? null, threadsNote: info.threadsNote || undefined, tokens };
}

/** One warm-up, then per iteration a 64-token prompt + o.gen tokens and an o.long-token prompt. */
async function measure(run, o) {
  const samples = [];
  let tokens = null;
  await run(ids(0, 8), 4);
  for (let r = 1; r <= o.iters; r++) {
    const a = await run(ids(r, 64), o.gen);
    const b = await run(ids(r + 100, o.long), 1);
    tokens = a.tokens;
    samples.push(sample(a, b, o));
  }
  return { samples, tokens };
}

async function wllama(o) {
  const logs = [];
  const keep = (...a) => {
    logs.push(a.map(String).join(' '));
    if (logs.length > 40) logs.shift();
  };
  // llama-server throws on a completion text that is not valid UTF-8 (a random
  // model's byte tokens): ban the non-ASCII tokens in wllama's sampler.
  const logitBias = (o.ban ?? []).map((id) => [id, false]);
  const logger = { ...LoggerWithoutDebug, debug: () => {}, log: keep, warn: keep, error: keep };
  const w = new Wllama({ default: '/wllama/wasm/wllama.wasm' }, { logger, suppressNativeLog: false });
  const t0 = now();
  try {
    await w.loadModelFromUrl(o.url, { n_threads: o.threads, n_ctx: o.nCtx, n_batch: 512, n_ubatch: 512, n_gpu_layers: 0, n_parallel: 1, log_level: 3 });
  } catch (e) {
    throw new Error(`${e?.stack || e}\nwllama log:\n${logs.join('\n')}`);
  }
  const loadMs = now() - t0;
  let samples = [];
  let tokens = null;
  try {
    const run = async (prompt, gen) => {
      const t = now();
      const res = await w.createCompletion({ prompt, max_tokens: gen, temperature: 0, ignore_eos: true, cache_prompt: false, logit_bias: logitBias });
      const tm = res.timings;
      if (!tm) throw new Error('wllama: no timings in the response');
      if (tm.prompt_n !== promptLength(prompt)) throw new Error(`wllama: evaluated ${tm.prompt_n} prompt tokens, sent ${promptLength(prompt)}`);
      return { prefillMs: tm.prompt_ms, decodeMs: tm.predicted_ms, generated: tm.predicted_n, promptN: tm.prompt_n, wallMs: now() - t, tokens: res.choices?.[0]?.tokens ?? null };
    };
    ({ samples, tokens } = await measure(run, o));
    var build = w.isMultithread() ? 'multi-thread' : 'single-thread';
  } catch (e) {
    throw new Error(`${e?.stack || e}\nwllama log:\n${logs.join('\n')}`);
  } finally {
    await w.exit();
  }
  return { loadMs, samples, build, threads: o.threads, tokens, logs: logs.length ? logs.slice(-5) : undefined };
}

function sample(a, b, o) {
  if (a.generated !== o.gen) throw new Error(`generated ${a.generated} tokens, asked ${o.gen}`);
  return {
    prefill64: (a.promptN / a.prefillMs) * 1000,
    decode: (a.generated / a.decodeMs) * 1000,
    prefill512: (b.promptN / b.prefillMs) * 1000,
    wall64Ms: a.wallMs,
    wall512Ms: b.wallMs,
  };
}

window.runEngine = (o) => (o.engine === 'wllama' ? wllama(o) : trillium(o)).then(
  (result) => ({ result, crossOriginIsolated, hardwareConcurrency: navigator.hardwareConcurrency }),
  (e) => ({ error: String(e?.stack || e) }),
);
window.benchReady = true;
