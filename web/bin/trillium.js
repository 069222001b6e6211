#!/usr/bin/env node
// trillium: the Node CLI over the WebAssembly build (the same trillium.wasm
// browsers run; no native binary).
import { parseArgs } from 'node:util';
import { Trillium, TrilliumError } from '../src/node.js';

const HELP = `usage: trillium <command> <pack> [options]

A pack is a directory written by trillium-convert, or an http(s) URL of one.

commands:
  run <pack> --prompt TEXT     generate a continuation, printed as it is produced
  logits <pack> --prompt TEXT  JSON {"tokens": [...], "logits": [...]} for the last position
  tokenize <pack> --prompt TEXT
                               JSON array of token ids
  info <pack>                  config, tensors, chunks and variants (from the manifest)
  bench <pack>                 prefill and decode tokens/s, load time, memory (greedy, random tokens)

options:
  -p, --prompt TEXT        the prompt
      --max-tokens N       stop after N generated tokens (default 256)
  -t, --temperature T      0 = greedy (default 0.8)
      --top-k K            0 = off (default 40)
      --top-p P            1 = off (default 0.95)
      --min-p P            0 = off (default 0)
      --repeat-penalty R   1 = off (default 1)
      --repeat-last-n N    tokens the penalty looks back at (default 64)
  -s, --seed S             sampling seed, 0 <= S < 2^64 (default: random)
  -c, --context N          context length in tokens (default: min(max_seq_len, 4096))
      --variant ID         pack variant to load (default: base)
      --no-bos             do not prepend BOS (tokenize, logits, run)
      --json               machine-readable output (run, info)
      --ignore-eos         keep generating past end-of-text tokens (run)
      --prompt-tokens N    bench: prompt length (default 64)
      --gen-tokens N       bench: tokens to decode (default 64)
      --repeats N          bench: runs, the median is reported (default 3)
      --wasm PATH          trillium.wasm to use (default: $TRILLIUM_WASM, else the package's dist/)
  -h, --help               this help
  -v, --version            print the version`;

const OPTIONS = {
  prompt: { type: 'string', short: 'p' },
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
  'no-bos': { type: 'boolean' },
  json: { type: 'boolean' },
  'ignore-eos': { type: 'boolean' },
  'prompt-tokens': { type: 'string' },
  'gen-tokens': { type: 'string' },
  repeats: { type: 'string' },
  wasm: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
};

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
    const { readFile } = await import('node:fs/promises');
    const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8'));
    await out(`trillium ${pkg.version}\n`);
    return 0;
  }
  const [cmd, pack, ...extra] = positionals;
  if (!['run', 'logits', 'tokenize', 'info', 'bench'].includes(cmd)) throw new UsageError(`unknown command ${JSON.stringify(cmd)} (see --help)`);
  if (!pack) throw new UsageError(`${cmd}: missing the pack directory or URL`);
  if (extra.length) throw new UsageError(`${cmd}: unexpected argument ${JSON.stringify(extra[0])}`);
  const wasm = o.wasm ?? process.env.TRILLIUM_WASM ?? undefined;
  const addBos = !o['no-bos'];

  if (cmd === 'info') {
    const info = await Trillium.inspect(pack, { wasm });
    await out(o.json ? JSON.stringify(info, null, 2) + '\n' : formatInfo(info));
    return 0;
  }

  if (cmd === 'bench') return bench(pack, o, wasm);
  if (o.prompt === undefined) throw new UsageError(`${cmd}: --prompt is required`);
  const contextLength = num(o, 'context', { integer: true, min: 1 });
  const gen = {
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
  if (o.seed !== undefined && !/^\d+$/.test(o.seed)) throw new UsageError(`--seed: expected a non-negative integer, got ${JSON.stringify(o.seed)}`);

  const t0 = performance.now();
  const model = await Trillium.load(pack, { wasm, contextLength, variant: o.variant });
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
            timing: {
              load_ms: round(loadMs),
              prefill_ms: round(stats.prefillMs),
              decode_ms: round(stats.decodeMs),
              tokens_per_second: round(stats.tokensPerSecond),
            },
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

const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

// Prefill and decode speed on token ids (no tokenizer cost), each run with a
// different first token so the KV-cache prefix reuse cannot skip the prefill.
async function bench(pack, o, wasm) {
  const nPrompt = num(o, 'prompt-tokens', { integer: true, min: 1 }) ?? 64;
  const nGen = num(o, 'gen-tokens', { integer: true, min: 1 }) ?? 64;
  const repeats = num(o, 'repeats', { integer: true, min: 1 }) ?? 3;
  const contextLength = num(o, 'context', { integer: true, min: 1 }) ?? nPrompt + nGen + 1;
  const t0 = performance.now();
  const model = await Trillium.load(pack, { wasm, contextLength, variant: o.variant });
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
  if (n >= 1 << 30) return `${(n / (1 << 30)).toFixed(2)} GiB`;
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(2)} MiB`;
  if (n >= 1 << 10) return `${(n / (1 << 10)).toFixed(1)} KiB`;
  return `${n} B`;
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
  lines.push(`variants   ${i.variants.length}`);
  for (const v of i.variants) {
    const ctx = Object.entries(v.contextBytesComputed).map(([n, b]) => `ctx ${n}: ${bytesStr(b)}`).join(', ');
    lines.push(`  ${v.id}  tiers [${v.tiers.join(',')}]  download ${bytesStr(v.downloadBytes)}` +
      `${v.residentBytes !== null ? `  resident ${bytesStr(v.residentBytes)}` : ''}  (${ctx})`);
  }
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
