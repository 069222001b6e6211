#!/usr/bin/env node
// trillium: the Node CLI over the WebAssembly build (the same trillium.wasm
// browsers run; no native binary).
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { Trillium, TrilliumError, formatBytes } from '../src/node.js';

const HELP = `usage: trillium <command> <pack> [options]

A pack is a directory written by trillium-convert, or an http(s) URL of one.
Downloads are cached ($TRILLIUM_CACHE, else ~/.cache/trillium) and resumed.

commands:
  run <pack> --prompt TEXT     generate a continuation, printed as it is produced
  chat <pack>                  chat with the model's chat template: interactive on a
                               terminal (/reset, /exit), else one user message per stdin line
  logits <pack> --prompt TEXT  JSON {"tokens": [...], "logits": [...]} for the last position
  tokenize <pack> --prompt TEXT
                               JSON array of token ids
  perplexity <pack> --text-file F
                               perplexity of a text file (windows of the context length)
  info <pack>                  config, tensors, chunks and variants with their sizes (from the manifest)
  bench <pack>                 prefill and decode tokens/s, load time, memory (greedy, random tokens)

options:
  -p, --prompt TEXT        the prompt
      --system TEXT        chat: a system message first
      --text-file FILE     perplexity: the text to score
      --max-tokens N       stop after N generated tokens (default 256)
  -t, --temperature T      0 = greedy (default 0.8)
      --top-k K            0 = off (default 40)
      --top-p P            1 = off (default 0.95)
      --min-p P            0 = off (default 0)
      --repeat-penalty R   1 = off (default 1)
      --repeat-last-n N    tokens the penalty looks back at (default 64)
  -s, --seed S             sampling seed, 0 <= S < 2^64 (default: random)
  -c, --context N          context length in tokens (default: min(max_seq_len, 4096))
      --variant ID|auto    pack variant (default: auto, the largest that fits the memory budget)
      --memory-budget SIZE memory for the model, e.g. 1.5GiB (default: estimated from the system)
      --progressive        start on the smallest variant, upgrade as the rest downloads
      --no-cache           neither read nor write the download cache
      --cache-dir DIR      the download cache (default: $TRILLIUM_CACHE or ~/.cache/trillium)
      --refresh            fetch the manifest again even if it is cached
      --threads N|auto     threads per context (the pthreads build; default 1)
      --simd auto|simd128|relaxed  which wasm module (default auto: relaxed SIMD where the engine
                           computes it correctly; Node 20 does not)
      --retries N          download retries per request (default 4)
      --timeout S          seconds without data before a download is retried (default 30)
      --no-bos             do not prepend BOS (tokenize, logits, run, perplexity)
      --json               machine-readable output
      --ignore-eos         keep generating past end-of-text tokens (run)
      --prompt-tokens N    bench: prompt length (default 64)
      --gen-tokens N       bench: tokens to decode (default 64)
      --repeats N          bench: runs, the median is reported (default 3)
      --wasm PATH          trillium.wasm to use (default: $TRILLIUM_WASM, else the package's dist/)
  -h, --help               this help
  -v, --version            print the version`;

const OPTIONS = {
  prompt: { type: 'string', short: 'p' },
  system: { type: 'string' },
  'text-file': { type: 'string' },
  'max-tokens': { type: 'string' },
  temperature: { type: 'string', short: 't' },
  'top-k': { type: 'string' },
  'top-p': { type: 'string' },
  'min-p': { type: 'string' },
  'repeat-penalty': { type: 'string' },
  'repeat-last-n': { type: 'string' },
  seed: { type: 'string', short: 's' },
  context: { type: 'string', short: 'c' },
  variant: { type: 'string' },
  'memory-budget': { type: 'string' },
  progressive: { type: 'boolean' },
  'no-cache': { type: 'boolean' },
  'cache-dir': { type: 'string' },
  refresh: { type: 'boolean' },
  retries: { type: 'string' },
  threads: { type: 'string' },
  timeout: { type: 'string' },
  'no-bos': { type: 'boolean' },
  json: { type: 'boolean' },
  'ignore-eos': { type: 'boolean' },
  'prompt-tokens': { type: 'string' },
  'gen-tokens': { type: 'string' },
  repeats: { type: 'string' },
  wasm: { type: 'string' },
  simd: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
};

const COMMANDS = ['run', 'chat', 'logits', 'tokenize', 'perplexity', 'info', 'bench'];

class UsageError extends Error {}

function num(opts, name, { integer = false, min = -Infinity, max = Infinity } = {}) {
  const raw = opts[name];
  if (raw === undefined) return undefined;
  const v = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(v) || (integer && !Number.isInteger(v)) || v < min || v > max) {
    throw new UsageError(`--${name}: expected ${integer ? 'an integer' : 'a number'}` +
      `${min > -Infinity ? ` >= ${min}` : ''}${max < Infinity ? ` <= ${max}` : ''}, got ${JSON.stringify(raw)}`);
  }
  return v;
}

function out(s) {
  return new Promise((resolve, reject) => {
    process.stdout.write(s, (e) => (e ? reject(e) : resolve()));
  });
}

// A one-line progress bar on stderr while chunks download (terminals only).
function progressBar(enabled) {
  if (!enabled) return { onProgress: undefined, done() {} };
  let last = 0;
  let shown = false;
  const draw = (p) => {
    const frac = p.total > 0 ? p.loaded / p.total : 1;
    const width = 24;
    const fill = Math.round(frac * width);
    const line = `${p.phase === 'upgrade' ? 'upgrading' : 'loading'} ${p.variant ?? ''} [${'#'.repeat(fill)}${'-'.repeat(width - fill)}] ` +
      `${Math.floor(frac * 100)}% ${formatBytes(p.loaded)} / ${formatBytes(p.total)}` +
      `${p.fromCache ? ` (${formatBytes(p.fromCache)} cached)` : ''}${p.file ? `  ${p.file}` : ''}`;
    process.stderr.write(`\r\x1b[K${line.slice(0, (process.stderr.columns || 100) - 1)}`);
    shown = true;
  };
  return {
    onProgress(p) {
      if (p.phase === 'upgrade') return; // generation owns the terminal by then
      const t = performance.now();
      if (t - last < 100 && p.loaded < p.total) return;
      last = t;
      draw(p);
    },
    done() {
      if (shown) process.stderr.write('\r\x1b[K');
      shown = false;
    },
  };
}

function loadOptions(o, wasm, extra = {}) {
  const budget = o['memory-budget'];
  if (budget !== undefined && !/^\s*\d+(\.\d+)?\s*([kmgt]i?b?)?\s*$/i.test(budget)) {
    throw new UsageError(`--memory-budget: expected a size such as 1.5GiB or 512MB, got ${JSON.stringify(budget)}`);
  }
  if (o['no-cache'] && o['cache-dir'] !== undefined) throw new UsageError('--no-cache and --cache-dir contradict each other');
  const timeout = num(o, 'timeout', { min: 0.001 });
  const threads = o.threads === 'auto' ? 'auto' : num(o, 'threads', { integer: true, min: 1, max: 64 });
  return {
    wasm,
    threads,
    simd: o.simd,
    variant: o.variant,
    memoryBudget: budget,
    progressive: o.progressive,
    cache: o['no-cache'] ? false : o['cache-dir'],
    refresh: o.refresh,
    retries: num(o, 'retries', { integer: true, min: 0, max: 100 }),
    timeoutMs: timeout === undefined ? undefined : timeout * 1000,
    contextLength: num(o, 'context', { integer: true, min: 1 }),
    onWarning: (w) => process.stderr.write(`trillium: warning: ${w.message}\n`),
    ...extra,
  };
}

async function load(pack, o, wasm, extra = {}) {
  const bar = progressBar(process.stderr.isTTY && !o.json && /^https?:\/\//i.test(pack));
  try {
    return await Trillium.load(pack, loadOptions(o, wasm, { onProgress: bar.onProgress, ...extra }));
  } finally {
    bar.done();
  }
}

function generateOptions(o, addBos) {
  if (o.seed !== undefined && !/^\d+$/.test(o.seed)) throw new UsageError(`--seed: expected a non-negative integer, got ${JSON.stringify(o.seed)}`);
  return {
    maxTokens: num(o, 'max-tokens', { integer: true, min: 0 }),
    temperature: num(o, 'temperature', { min: 0 }),
    topK: num(o, 'top-k', { integer: true, min: 0 }),
    topP: num(o, 'top-p', { min: 0, max: 1 }),
    minP: num(o, 'min-p', { min: 0, max: 1 }),
    repeatPenalty: num(o, 'repeat-penalty', { min: 0 }),
    repeatLastN: num(o, 'repeat-last-n', { integer: true, min: 0 }),
    seed: o.seed,
    ignoreEos: o['ignore-eos'],
    addBos,
  };
}

const timing = (loadMs, s) => ({
  load_ms: round(loadMs),
  prefill_ms: round(s.prefillMs),
  decode_ms: round(s.decodeMs),
  time_to_first_token_ms: s.timeToFirstTokenMs === null ? null : round(s.timeToFirstTokenMs),
  prefill_tokens_per_second: round(s.prefillTokensPerSecond),
  tokens_per_second: round(s.tokensPerSecond),
});

async function main(argv) {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError(e.message.replace(/\. To specify a positional.*$/s, ''));
  }
  const { values: o, positionals } = parsed;
  if (o.help || (positionals.length === 0 && !o.version)) {
    await out(HELP + '\n');
    return o.help ? 0 : 2;
  }
  if (o.version) {
    const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8'));
    await out(`trillium ${pkg.version}\n`);
    return 0;
  }
  const [cmd, pack, ...extra] = positionals;
  if (!COMMANDS.includes(cmd)) throw new UsageError(`unknown command ${JSON.stringify(cmd)} (see --help)`);
  if (!pack) throw new UsageError(`${cmd}: missing the pack directory or URL`);
  if (extra.length) throw new UsageError(`${cmd}: unexpected argument ${JSON.stringify(extra[0])}`);
  const wasm = o.wasm ?? process.env.TRILLIUM_WASM ?? undefined;
  const addBos = !o['no-bos'];

  if (cmd === 'info') {
    const lo = loadOptions(o, wasm);
    const info = await Trillium.inspect(pack, lo);
    await out(o.json ? JSON.stringify(info, null, 2) + '\n' : formatInfo(info));
    return 0;
  }
  if (cmd === 'bench') return bench(pack, o, wasm);
  if (cmd === 'chat') return chat(pack, o, wasm);
  if (cmd === 'perplexity') return perplexity(pack, o, wasm, addBos);
  if (o.prompt === undefined) throw new UsageError(`${cmd}: --prompt is required`);
  const gen = generateOptions(o, addBos);

  const t0 = performance.now();
  const model = await load(pack, o, wasm);
  const loadMs = performance.now() - t0;
  try {
    if (cmd === 'tokenize') {
      await out(JSON.stringify(model.tokenize(o.prompt, { addBos })) + '\n');
    } else if (cmd === 'logits') {
      const { tokens, logits } = await model.logits(o.prompt, { addBos });
      // Number -> JSON gives the shortest text that reads back to the same
      // double, hence exactly the f32 value: full precision.
      await out(`{"tokens":${JSON.stringify(tokens)},"logits":[${Array.from(logits, jsonNumber).join(',')}]}\n`);
    } else {
      const ac = new AbortController();
      const onSig = () => ac.abort();
      process.once('SIGINT', onSig);
      try {
        const it = model.generate(o.prompt, { ...gen, signal: ac.signal });
        let stats;
        for (;;) {
          const r = await it.next();
          if (r.done) {
            stats = r.value;
            break;
          }
          if (!o.json) await out(r.value);
        }
        if (o.json) {
          await out(JSON.stringify({
            prompt_tokens: stats.promptTokens,
            generated_tokens: stats.generatedTokens,
            text: stats.text,
            tokens: stats.tokens,
            finish_reason: stats.finishReason,
            seed: stats.seed,
            variant: { id: model.variant.id, reason: model.variant.reason },
            timing: timing(loadMs, stats),
          }) + '\n');
        } else if (!stats.text.endsWith('\n')) {
          await out('\n');
        }
      } finally {
        process.removeListener('SIGINT', onSig);
      }
    }
  } finally {
    model.dispose();
  }
  return 0;
}

// ------------------------------------------------------------------ chat

async function chat(pack, o, wasm) {
  const gen = generateOptions(o, undefined);
  delete gen.addBos;
  const model = await load(pack, o, wasm);
  const tty = process.stdin.isTTY && process.stdout.isTTY && !o.json;
  const history = [];
  if (o.system !== undefined) history.push({ role: 'system', content: o.system });
  const base = history.length;
  let noted = false;
  let shownVariant = model.variant.id;

  // One reply: streamed to stdout (or collected for --json); Ctrl-C stops the reply, not the program.
  const reply = async (text) => {
    history.push({ role: 'user', content: text });
    const ac = new AbortController();
    const onSig = () => ac.abort();
    process.on('SIGINT', onSig);
    let answer = '';
    let stats;
    try {
      const it = model.chat(history, { ...gen, signal: ac.signal });
      for (;;) {
        const r = await it.next();
        if (r.done) {
          stats = r.value;
          break;
        }
        // the reply starts after "assistant:" or a header: no leading blank on screen
        const piece = answer === '' ? r.value.trimStart() : r.value;
        answer += piece;
        if (!o.json && piece) await out(piece);
      }
    } catch (e) {
      if (e?.name !== 'AbortError') throw e;
      stats = model.lastStats;
      if (!o.json) await out(' [stopped]');
    } finally {
      process.removeListener('SIGINT', onSig);
    }
    answer = answer.trim();
    history.push({ role: 'assistant', content: answer });
    if (!o.json) await out('\n');
    if (!noted && stats?.chat?.note) {
      process.stderr.write(`trillium: note: ${stats.chat.note}\n`);
      noted = true;
    }
    if (model.variant.id !== shownVariant && !o.json) {
      shownVariant = model.variant.id;
      process.stderr.write(`trillium: now on variant ${shownVariant} (${model.variant.reason})\n`);
    }
    if (o.json) {
      await out(JSON.stringify({
        user: text,
        assistant: answer,
        finish_reason: stats?.finishReason ?? 'aborted',
        generated_tokens: stats?.generatedTokens ?? 0,
        variant: model.variant.id,
        format: stats?.chat?.format ?? null,
        time_to_first_token_ms: stats?.timeToFirstTokenMs === null || !stats ? null : round(stats.timeToFirstTokenMs),
        tokens_per_second: stats ? round(stats.tokensPerSecond) : 0,
      }) + '\n');
    }
  };

  try {
    if (!tty) {
      // Non-interactive: every non-empty stdin line is one user message.
      const { createInterface } = await import('node:readline');
      const rl = createInterface({ input: process.stdin, crlfDelay: Infinity, terminal: false });
      for await (const line of rl) {
        if (!line.trim()) continue;
        await reply(line);
      }
      return 0;
    }
    return await interactive(model, reply, () => history.splice(base), o);
  } finally {
    model.dispose();
  }
}

async function interactive(model, reply, reset) {
  const { createInterface } = await import('node:readline');
  const { mkdir, readFile: rf, writeFile } = await import('node:fs/promises');
  const { defaultCacheDir } = await import('../src/platform/cache-node.js');
  const histFile = join(defaultCacheDir(), 'chat_history');
  let saved = [];
  try {
    saved = (await rf(histFile, 'utf8')).split('\n').filter(Boolean).reverse().slice(0, 500);
  } catch {
    /* no history yet */
  }
  const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: true, historySize: 500, history: saved, prompt: '> ' });
  let lines = saved;
  rl.on('history', (h) => {
    lines = h;
  });
  const v = model.variant;
  process.stderr.write(`trillium: ${model.info.name ?? 'model'} (${v.id}: ${v.reason}); /reset clears the conversation, /exit or Ctrl-D quits\n`);
  const ask = () => new Promise((resolve) => {
    rl.question('> ', resolve);
    rl.once('close', () => resolve(null));
  });
  try {
    for (;;) {
      const line = await ask();
      if (line === null || line.trim() === '/exit' || line.trim() === '/quit') break;
      if (!line.trim()) continue;
      if (line.trim() === '/reset') {
        reset();
        process.stderr.write('(conversation cleared)\n');
        continue;
      }
      rl.pause();
      await reply(line);
      rl.resume();
    }
  } finally {
    rl.close();
    try {
      await mkdir(dirname(histFile), { recursive: true });
      await writeFile(histFile, [...lines].reverse().join('\n') + '\n');
    } catch {
      /* history is a convenience */
    }
  }
  return 0;
}

// ------------------------------------------------------------ perplexity

async function perplexity(pack, o, wasm, addBos) {
  const file = o['text-file'];
  if (file === undefined) throw new UsageError('perplexity: --text-file is required');
  let text;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new TrilliumError('IO', `${file}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`, { file });
  }
  const model = await load(pack, o, wasm);
  try {
    const r = await model.perplexity(text, { addBos });
    if (o.json) {
      await out(JSON.stringify({
        perplexity: r.perplexity,
        mean_nll: r.meanNll,
        tokens: r.tokens,
        predicted: r.predicted,
        windows: r.windows,
        context_length: r.contextLength,
        variant: r.variant,
        ms: round(r.ms),
        tokens_per_second: round(r.tokensPerSecond),
      }) + '\n');
    } else {
      await out(`perplexity ${r.perplexity.toFixed(4)} over ${r.predicted} predicted tokens ` +
        `(${r.windows} window${r.windows === 1 ? '' : 's'} of up to ${r.contextLength} tokens, variant ${r.variant}, ` +
        `${Math.round(r.tokensPerSecond)} tokens/s)\n`);
    }
  } finally {
    model.dispose();
  }
  return 0;
}

// ----------------------------------------------------------------- bench

const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

// Prefill and decode speed on token ids (no tokenizer cost), each run with a
// different first token so the KV-cache prefix reuse cannot skip the prefill.
async function bench(pack, o, wasm) {
  const nPrompt = num(o, 'prompt-tokens', { integer: true, min: 1 }) ?? 64;
  const nGen = num(o, 'gen-tokens', { integer: true, min: 1 }) ?? 64;
  const repeats = num(o, 'repeats', { integer: true, min: 1 }) ?? 3;
  const contextLength = num(o, 'context', { integer: true, min: 1 }) ?? nPrompt + nGen + 1;
  const t0 = performance.now();
  const model = await load(pack, o, wasm, { contextLength });
  const loadMs = performance.now() - t0;
  const vocab = model.info.config.vocab_size ?? model.info.config.vocabSize;
  const runs = [];
  try {
    for (let r = 0; r < repeats + 1; r++) {
      const prompt = Array.from({ length: nPrompt }, (_, i) => (r * 131 + i * 7 + 3) % vocab);
      const it = model.generate(prompt, { maxTokens: nGen, temperature: 0, ignoreEos: true });
      let res;
      do res = await it.next(); while (!res.done);
      const st = res.value;
      if (r > 0) runs.push({ // the first run warms the engine up
        prefill: nPrompt / (st.prefillMs / 1000),
        decode: st.generatedTokens / (st.decodeMs / 1000),
      });
    }
  } finally {
    model.dispose();
  }
  const result = {
    pack,
    variant: model.info.variant ?? 'base',
    build: model.info.build,
    simd: model.info.simd,
    threads: model.info.threads,
    prompt_tokens: nPrompt,
    gen_tokens: nGen,
    repeats,
    load_ms: Math.round(loadMs * 10) / 10,
    prefill_tokens_per_s: Math.round(median(runs.map((x) => x.prefill)) * 10) / 10,
    decode_tokens_per_s: Math.round(median(runs.map((x) => x.decode)) * 10) / 10,
    peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
  };
  await out(o.json ? JSON.stringify(result) + '\n' :
    `load ${result.load_ms} ms, prefill ${result.prefill_tokens_per_s} tok/s (${nPrompt} tokens), ` +
    `decode ${result.decode_tokens_per_s} tok/s (${nGen} tokens), peak RSS ${result.peak_rss_mb} MB\n`);
  return 0;
}

// JSON has no NaN or Infinity: those become null (a correct model never produces them).
const jsonNumber = (v) => (Number.isFinite(v) ? String(v) : 'null');

const round = (v) => Math.round(v * 1000) / 1000;

function bytesStr(n) {
  if (n === null || n === undefined) return '-';
  if (n >= 1 << 30) return `${(n / (1 << 30)).toFixed(2)} GiB`;
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(2)} MiB`;
  if (n >= 1 << 10) return `${(n / (1 << 10)).toFixed(1)} KiB`;
  return `${n} B`;
}

function pplStr(p) {
  if (p === null || p === undefined) return null;
  if (typeof p === 'number') return `ppl ${p}`;
  // trillium-convert --calib: { text_sha256, tokens, value }
  if (typeof p.value === 'number') return `ppl ${p.value}${typeof p.tokens === 'number' ? ` (${p.tokens} calibration tokens)` : ''}`;
  return 'ppl ' + Object.entries(p).map(([k, v]) => `${k} ${v}`).join(', ');
}

function formatInfo(i) {
  const c = i.config;
  const lines = [];
  lines.push(`pack       ${i.pack}`);
  if (i.name) lines.push(`name       ${i.name}`);
  if (i.source) lines.push(`source     ${i.source}`);
  lines.push(`format     trillium-pack v${i.formatVersion}`);
  lines.push(`arch       ${c.arch}  mlp ${c.mlp}  rope ${c.rope_style}  activations ${c.act_quant}`);
  lines.push(`dims       dim ${c.dim}  hidden ${c.hidden_dim}  layers ${c.n_layers}  heads ${c.n_heads}  kv heads ${c.n_kv_heads}  head_dim ${c.head_dim}`);
  lines.push(`vocab      ${c.vocab_size}  max_seq_len ${c.max_seq_len}  rope_theta ${c.rope_theta}  norm_eps ${c.norm_eps}`);
  lines.push(`flags      tied_embeddings ${c.tied_embeddings}  sub_norms ${c.sub_norms}`);
  lines.push(`params     ${c.n_params}`);
  lines.push(`tokenizer  ${i.tokenizer.kind}  ${bytesStr(i.tokenizer.bytes)}  bos ${i.tokenizer.bosId}  eos ${i.tokenizer.eosId}${i.tokenizer.chatTemplate ? '  (chat template)' : ''}`);
  lines.push(`tensors    ${i.tensors.count}  ${bytesStr(i.tensors.bytes)}`);
  for (const [enc, e] of Object.entries(i.tensors.byEncoding)) {
    lines.push(`  ${enc.padEnd(8)} ${String(e.tensors).padStart(4)} tensors  ${bytesStr(e.bytes).padStart(11)}  ${e.weights} weights`);
  }
  lines.push(`chunks     ${i.chunks.length}  ${bytesStr(i.chunks.reduce((s, x) => s + x.bytes, 0))}`);
  for (const ch of i.chunks) lines.push(`  ${ch.file}  tier ${ch.tier}  ${bytesStr(ch.bytes)}  sha256 ${ch.sha256.slice(0, 16)}…`);
  lines.push(`variants   ${i.variants.length}  (peak = weights + ${i.contextLength}-token context + margin)`);
  const rows = i.variants.map((v) => {
    const parts = [
      v.id,
      `tiers [${v.tiers.join(',')}]`,
      `download ${bytesStr(v.downloadBytes)}`,
      `resident ${bytesStr(v.residentBytes)}`,
      `peak ${bytesStr(v.peak.bytes)}`,
    ];
    if (v.rankSlices !== null && v.rankSlices !== undefined) parts.push(`rank slices ${v.rankSlices}`);
    const p = pplStr(v.perplexity);
    if (p) parts.push(p);
    return parts;
  });
  const widths = [];
  for (const r of rows) r.forEach((x, k) => (widths[k] = Math.max(widths[k] ?? 0, x.length)));
  for (const r of rows) lines.push(`  ${r.map((x, k) => (k === r.length - 1 ? x : x.padEnd(widths[k]))).join('  ')}`);
  lines.push(`auto       ${i.auto.id ?? 'none'}: ${i.auto.reason}`);
  return lines.join('\n') + '\n';
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    if (e instanceof UsageError) {
      process.stderr.write(`trillium: ${e.message}\nTry 'trillium --help'.\n`);
      process.exitCode = 2;
    } else if (e instanceof TrilliumError) {
      process.stderr.write(`trillium: error: ${e.message}\n`);
      process.exitCode = 1;
    } else if (e?.name === 'AbortError') {
      process.stderr.write('\ntrillium: interrupted\n');
      process.exitCode = 130;
    } else {
      process.stderr.write(`trillium: internal error: ${e?.stack || e}\n`);
      process.exitCode = 70;
    }
  },
);
