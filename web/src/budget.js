// How much memory one model may use on this device, and which variant of a
// pack fits in it. Pure functions over an "environment" object so the tests
// can simulate any device; `environment()` reads the real one.
//
// The budget is the smallest of what we know:
//   - the caller's memoryBudget (authoritative when given);
//   - navigator.deviceMemory x 0.75 (Chrome: GiB rounded down to a power of
//     two, capped at 8) or, in Node, the system memory x 0.75;
//     without either (Safari, Firefox) we assume 1 GiB: a phone that crashes
//     is worse than a desktop that starts with a smaller variant;
//   - performance.memory.jsHeapSizeLimit (Chrome), the browser's own idea of
//     how much one page may hold;
//   - how far a WebAssembly.Memory really grows here (32-bit browsers and
//     iOS stop well below 4 GiB): grown in steps until RangeError, never past
//     what the largest variant needs, then dropped;
//   - the wasm32 limit, 4 GiB.
import { TrilliumError } from './errors.js';

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;
export const WASM32_MAX = 4 * GiB;
export const DEVICE_FRACTION = 0.75;
export const UNKNOWN_DEVICE_BYTES = 1 * GiB;
const PAGE = 65536;

/** "1.5 GiB", "412 MiB", "96 KiB": at most one decimal, none when whole. */
export function formatBytes(n) {
  if (n === null || n === undefined || !Number.isFinite(n)) return String(n);
  const units = [[GiB, 'GiB'], [MiB, 'MiB'], [KiB, 'KiB']];
  for (const [u, name] of units) {
    if (Math.abs(n) >= u) {
      const v = n / u;
      const s = v >= 100 ? Math.round(v).toString() : (Math.round(v * 10) / 10).toString();
      return `${s} ${name}`;
    }
  }
  return `${n} B`;
}

/**
 * A byte count from a number or a string such as "1.5GiB", "512 MB", "2g",
 * "300M" (decimal and binary suffixes both taken as binary: a budget is a
 * rough figure and users type "GB" meaning GiB).
 */
export function parseBytes(v, what = 'memoryBudget') {
  if (typeof v === 'number' && Number.isFinite(v) && v > 0) return Math.floor(v);
  if (typeof v === 'bigint' && v > 0n) return Number(v);
  if (typeof v === 'string') {
    const m = /^\s*(\d+(?:\.\d+)?(?:e\d+)?)\s*([kmgt]?)(i?b?)\s*$/i.exec(v);
    if (m) {
      const mult = { '': 1, k: KiB, m: MiB, g: GiB, t: 1024 * GiB }[m[2].toLowerCase()];
      const n = Math.floor(Number(m[1]) * mult);
      if (n > 0) return n;
    }
  }
  throw new TrilliumError('BAD_ARGUMENT', `${what} must be a positive byte count such as 1073741824, "1.5GiB" or "512MB", got ${JSON.stringify(v)}`);
}

/**
 * Grow a fresh WebAssembly.Memory in `step`-byte steps until it refuses
 * (RangeError) or reaches `limit`. Returns the bytes reached; the memory is
 * dropped (its pages were never touched, so they cost address space, not RAM).
 * @returns {{bytes: number, error: string|null}}
 */
export function probeWasmMemory({ limit = WASM32_MAX, step = 256 * MiB, Memory = globalThis.WebAssembly?.Memory } = {}) {
  if (typeof Memory !== 'function') return { bytes: 0, error: 'WebAssembly.Memory is unavailable' };
  const maxPages = Math.min(65536, Math.ceil(Math.min(limit, WASM32_MAX) / PAGE));
  let mem = null;
  // A 32-bit engine may refuse even to reserve a large maximum: halve it.
  for (let max = maxPages; max >= 16 && !mem; max >>= 1) {
    try {
      mem = new Memory({ initial: 0, maximum: max });
    } catch (e) {
      if (!(e instanceof RangeError)) return { bytes: 0, error: e?.message || String(e) };
    }
  }
  if (!mem) return { bytes: 0, error: 'cannot create a WebAssembly.Memory' };
  const stepPages = Math.max(1, Math.floor(step / PAGE));
  let pages = mem.buffer.byteLength / PAGE;
  let error = null;
  while (pages < maxPages) {
    const n = Math.min(stepPages, maxPages - pages);
    try {
      mem.grow(n);
      pages += n;
    } catch (e) {
      if (!(e instanceof RangeError)) error = e?.message || String(e);
      // A smaller last step may still succeed: narrow down once.
      if (n > 16) {
        try {
          mem.grow(n >> 1);
          pages += n >> 1;
        } catch {
          /* that is the limit */
        }
      }
      break;
    }
  }
  mem = null;
  return { bytes: pages * PAGE, error };
}

/**
 * The real environment (browser globals, or what the platform layer knows in
 * Node). Each member may be missing.
 */
export function environment(extra = {}) {
  const nav = globalThis.navigator;
  const perf = globalThis.performance;
  return {
    deviceMemory: typeof nav?.deviceMemory === 'number' && nav.deviceMemory > 0 ? nav.deviceMemory : undefined,
    jsHeapSizeLimit: typeof perf?.memory?.jsHeapSizeLimit === 'number' && perf.memory.jsHeapSizeLimit > 0
      ? perf.memory.jsHeapSizeLimit : undefined,
    probe: (limit) => probeWasmMemory({ limit }),
    ...extra,
  };
}

/**
 * The memory budget for one model.
 * @param {object} env {memoryBudget?, deviceMemory? (GiB), systemMemory? (bytes), jsHeapSizeLimit? (bytes),
 *   probe?: (limit) => {bytes, error} | number}
 * @param {{probeLimit?: number}} [opts] the probe never grows past this (the largest candidate's need)
 * @returns {{bytes: number, reason: string, parts: object[]}}
 */
export function estimateBudget(env = {}, { probeLimit = WASM32_MAX } = {}) {
  if (env.memoryBudget !== undefined && env.memoryBudget !== null) {
    const given = parseBytes(env.memoryBudget);
    if (given > WASM32_MAX) {
      return { bytes: WASM32_MAX, reason: `memoryBudget ${formatBytes(given)}, capped at the wasm32 limit of 4 GiB`, parts: [] };
    }
    return { bytes: given, reason: `memoryBudget ${formatBytes(given)}`, parts: [{ bytes: given, label: 'memoryBudget' }] };
  }
  const parts = [];
  if (typeof env.deviceMemory === 'number' && env.deviceMemory > 0) {
    parts.push({ bytes: env.deviceMemory * GiB * DEVICE_FRACTION, label: `deviceMemory ${formatBytes(env.deviceMemory * GiB)} x ${DEVICE_FRACTION}` });
  } else if (typeof env.systemMemory === 'number' && env.systemMemory > 0) {
    parts.push({ bytes: env.systemMemory * DEVICE_FRACTION, label: `system memory ${formatBytes(env.systemMemory)} x ${DEVICE_FRACTION}` });
  } else {
    parts.push({ bytes: UNKNOWN_DEVICE_BYTES, label: `no deviceMemory API, assuming ${formatBytes(UNKNOWN_DEVICE_BYTES)}` });
  }
  if (typeof env.jsHeapSizeLimit === 'number' && env.jsHeapSizeLimit > 0) {
    parts.push({ bytes: env.jsHeapSizeLimit, label: `jsHeapSizeLimit ${formatBytes(env.jsHeapSizeLimit)}` });
  }
  const notes = [];
  if (typeof env.probe === 'function') {
    const limit = Math.min(WASM32_MAX, probeLimit);
    let r;
    try {
      r = env.probe(limit);
      if (typeof r === 'number') r = { bytes: r, error: null };
    } catch (e) {
      r = { bytes: 0, error: e?.message || String(e) };
    }
    if (r && r.bytes > 0 && r.bytes < limit) {
      parts.push({ bytes: r.bytes, label: `a WebAssembly.Memory grew only to ${formatBytes(r.bytes)}` });
    } else if (!r || r.bytes <= 0) {
      notes.push(`memory probe failed${r?.error ? `: ${r.error}` : ''}`);
    }
  }
  parts.push({ bytes: WASM32_MAX, label: 'the wasm32 limit of 4 GiB' });
  let best = parts[0];
  for (const p of parts) if (p.bytes < best.bytes) best = p;
  return { bytes: Math.floor(best.bytes), reason: best.label + (notes.length ? `; ${notes.join('; ')}` : ''), parts };
}

/**
 * Bytes the core allocates for an n-token context: the manifest's figure when
 * it lists this length, else `compute(n)` (the core's trl_ctx_memory_bytes,
 * exact), else a linear fit through the listed lengths (extrapolated past
 * them; one point scales proportionally).
 * @returns {{bytes: number, source: 'manifest'|'core'|'interpolated'|'scaled'}|null}
 */
export function contextBytesFor(variant, nCtx, compute) {
  const listed = Object.entries(variant.contextBytes ?? {})
    .map(([k, v]) => [Number(k), v])
    .filter(([k, v]) => Number.isSafeInteger(k) && k > 0 && Number.isFinite(v) && v >= 0)
    .sort((a, b) => a[0] - b[0]);
  const exact = listed.find(([k]) => k === nCtx);
  if (exact) return { bytes: exact[1], source: 'manifest' };
  if (typeof compute === 'function') {
    const b = compute(nCtx);
    if (Number.isFinite(b) && b > 0) return { bytes: b, source: 'core' };
  }
  if (listed.length >= 2) {
    // The segment around nCtx, or the nearest end segment for extrapolation.
    let i = listed.findIndex(([k]) => k > nCtx);
    if (i <= 0) i = i === 0 ? 1 : listed.length - 1;
    const [x0, y0] = listed[i - 1];
    const [x1, y1] = listed[i];
    const y = y0 + ((y1 - y0) * (nCtx - x0)) / (x1 - x0);
    return { bytes: Math.max(0, Math.round(y)), source: 'interpolated' };
  }
  if (listed.length === 1) {
    const [x0, y0] = listed[0];
    return { bytes: Math.round((y0 * nCtx) / x0), source: 'scaled' };
  }
  return null;
}

/** The safety margin on top of weights + context: allocator slack, heap growth steps, JS objects. */
export function safetyMargin(bytes) {
  return Math.max(16 * MiB, Math.round(bytes * 0.1));
}

/**
 * What a variant needs at its peak, in wasm heap bytes: the chunks as
 * downloaded (they stay in the heap whole), plus what the core expands on
 * top (t1 weights become t2: resident_bytes above the packed tensor bytes),
 * plus the context, plus the margin.
 */
export function variantPeak(manifest, variant, nCtx, compute) {
  const tiers = new Set(variant.tiers);
  const inTiers = new Set(manifest.chunks.map((c, i) => (tiers.has(c.tier) ? i : -1)).filter((i) => i >= 0));
  let packed = 0;
  for (const t of manifest.tensors) if (inTiers.has(t.chunk)) packed += t.bytes;
  if (manifest.tokenizer && inTiers.has(manifest.tokenizer.chunk)) packed += manifest.tokenizer.bytes;
  const expansion = variant.residentBytes !== null && variant.residentBytes !== undefined
    ? Math.max(0, variant.residentBytes - packed) : 0;
  const weights = variant.downloadBytes + expansion;
  const ctx = contextBytesFor(variant, nCtx, compute);
  const context = ctx ? ctx.bytes : 0;
  const margin = safetyMargin(weights + context);
  return { id: variant.id, weights, context, contextSource: ctx ? ctx.source : 'unknown', margin, peak: weights + context + margin };
}

/** Variants ordered by their peak, smallest first. */
export function rankVariants(manifest, nCtx, compute) {
  return manifest.variants
    .map((v) => ({ variant: v, ...variantPeak(manifest, v, nCtx, compute) }))
    .sort((a, b) => a.peak - b.peak || a.variant.downloadBytes - b.variant.downloadBytes);
}

/** The longest context (<= maxCtx) with which `variant` fits `budget`, or 0. */
export function maxContextFitting(manifest, variant, budget, maxCtx, compute) {
  let lo = 0;
  let hi = maxCtx;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (variantPeak(manifest, variant, mid, compute).peak <= budget) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/**
 * variant: 'auto': the largest variant whose peak fits the budget.
 * @param {object} manifest parsed manifest
 * @param {{nCtx: number, budget: {bytes, reason}, compute?: (n) => number, maxCtx?: number}} o
 * @returns {{variant: object, reason: string, peak: object, candidates: object[]}}
 * @throws {TrilliumError} NO_MEMORY when even the smallest does not fit
 */
export function chooseVariant(manifest, { nCtx, budget, compute, maxCtx }) {
  const ranked = rankVariants(manifest, nCtx, compute);
  const fits = ranked.filter((r) => r.peak <= budget.bytes);
  const candidates = ranked.map((r) => ({ id: r.id, peak: r.peak, weights: r.weights, context: r.context, fits: r.peak <= budget.bytes }));
  if (!fits.length) {
    const small = ranked[0];
    const n = maxContextFitting(manifest, small.variant, budget.bytes, maxCtx ?? nCtx, compute);
    const hint = n > 0 ? `a contextLength of at most ${n} tokens (${small.id} then fits)` : 'a smaller pack';
    const e = new TrilliumError(
      'NO_MEMORY',
      `no variant fits the ${formatBytes(budget.bytes)} memory budget (${budget.reason}): the smallest, ${small.id}, ` +
        `needs ${formatBytes(small.peak)} (${describePeak(small)}) for a ${nCtx}-token context; ` +
        `use ${hint}, pass memoryBudget to override the estimate, or variant: '${small.id}' to try anyway`,
    );
    e.suggestedVariant = small.id;
    if (n > 0) e.suggestedContextLength = n;
    throw e;
  }
  const pick = fits[fits.length - 1];
  const bigger = ranked.find((r) => r.peak > budget.bytes);
  const reason = `fits: ${formatBytes(pick.peak)} of ${formatBytes(budget.bytes)} budget (${budget.reason})` +
    (bigger ? `; ${bigger.id} would need ${formatBytes(bigger.peak)}` : '');
  return { variant: pick.variant, reason, peak: pick, candidates };
}

export function describePeak(p) {
  return `weights ${formatBytes(p.weights)} + context ${formatBytes(p.context)} + margin ${formatBytes(p.margin)}`;
}

/** The next variant below `id` by peak (for "try a smaller variant" hints), or null. */
export function nextSmaller(manifest, id, nCtx, compute) {
  const ranked = rankVariants(manifest, nCtx, compute);
  const i = ranked.findIndex((r) => r.id === id);
  return i > 0 ? ranked[i - 1] : null;
}
