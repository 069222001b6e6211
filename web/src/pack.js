// Model packs (docs/FORMAT.md): read and check manifest.json, pick a variant,
// stream its chunks into the wasm heap, verify them, and describe the tensors
// for the core. Every error names the file and the field it is about.
import { isQuotaError } from './cache.js';
import { TrilliumError, packError } from './errors.js';
import { openPack, sha256Hex } from './platform/index.js';

const MANIFEST = 'manifest.json';
/** Members of a tensor's "params" (format v2), as in trl_enc_params. */
const PARAM_KEYS = ['bits', 'group', 'pow2', 'scale_axis', 'scale_blocks'];
const FILE_RE = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/;
const SHA_RE = /^[0-9a-f]{64}$/;
const MAX_CHUNK = 0xffffffc0; // the wasm32 heap cannot hold more in one region

/**
 * Open a pack location (directory path or http(s) URL in Node, URL in
 * browsers, or a custom source object).
 * @param {object} [opts] for http(s): {retries, retryDelayMs, timeoutMs, fetch}
 */
export function packSource(source, opts = {}) {
  if (source && typeof source === 'object' && typeof source.readText === 'function' &&
      typeof source.readInto === 'function') {
    return source;
  }
  return openPack(source, opts);
}

const isInt = (v) => Number.isSafeInteger(v);

/**
 * Parse and check a manifest.
 * @param {string} text the manifest.json text
 * @param {object} k what the core knows: {formatVersion, encodings: {name: id}, tokenizerKinds: {name: id},
 *   encodingBytes(id, rows, cols) -> number}
 * @param {string} [where] how to name the manifest in messages (its path or URL)
 */
export function parseManifest(text, k, where = MANIFEST) {
  const bad = (field, what) => packError(where, field, what);
  let m;
  try {
    m = JSON.parse(text);
  } catch (e) {
    throw bad(null, `not valid JSON (${e.message})`);
  }
  if (!m || typeof m !== 'object' || Array.isArray(m)) throw bad(null, 'expected a JSON object');
  if (m.format !== 'trillium-pack') {
    throw bad('format', `expected "trillium-pack", got ${JSON.stringify(m.format)} (is this a Trillium model pack?)`);
  }
  if (!isInt(m.version) || m.version < 1) throw bad('version', `expected a positive integer, got ${JSON.stringify(m.version)}`);
  if (m.version > k.formatVersion) {
    const what = m.version > k.formatVersion
      ? `this pack needs format version ${m.version}; this trillium reads version ${k.formatVersion} (upgrade trillium)`
      : `this pack is format version ${m.version}; this trillium reads version ${k.formatVersion} (re-run trillium-convert)`;
    throw packError(where, 'version', what, 'UNSUPPORTED_VERSION');
  }
  if (!m.config || typeof m.config !== 'object' || Array.isArray(m.config)) throw bad('config', 'expected an object');

  // chunks
  if (!Array.isArray(m.chunks) || m.chunks.length === 0) throw bad('chunks', 'expected a non-empty array');
  const files = new Set();
  const chunks = m.chunks.map((c, i) => {
    const f = `chunks[${i}]`;
    if (!c || typeof c !== 'object') throw bad(f, 'expected an object');
    if (typeof c.file !== 'string' || !FILE_RE.test(c.file) || c.file.includes('..')) {
      throw bad(`${f}.file`, `${JSON.stringify(c.file)} is not a plain file name`);
    }
    if (files.has(c.file)) throw bad(`${f}.file`, `${c.file} is listed twice`);
    files.add(c.file);
    if (!isInt(c.bytes) || c.bytes < 0) throw bad(`${f}.bytes`, `expected a non-negative integer, got ${JSON.stringify(c.bytes)}`);
    if (c.bytes > MAX_CHUNK) throw bad(`${f}.bytes`, `${c.bytes} bytes does not fit in a 32-bit WebAssembly heap`);
    if (typeof c.sha256 !== 'string' || !SHA_RE.test(c.sha256)) throw bad(`${f}.sha256`, 'expected 64 lowercase hex digits');
    const tier = c.tier === undefined ? 0 : c.tier;
    if (!isInt(tier) || tier < 0) throw bad(`${f}.tier`, `expected a non-negative integer, got ${JSON.stringify(c.tier)}`);
    return { file: c.file, bytes: c.bytes, sha256: c.sha256, tier };
  });

  // Checks a (chunk, offset, bytes) placement shared by tensors and the tokenizer.
  const placed = (f, o) => {
    if (!isInt(o.chunk) || o.chunk < 0 || o.chunk >= chunks.length) {
      throw bad(`${f}.chunk`, `expected a chunk index below ${chunks.length}, got ${JSON.stringify(o.chunk)}`);
    }
    if (!isInt(o.offset) || o.offset < 0) throw bad(`${f}.offset`, `expected a non-negative integer, got ${JSON.stringify(o.offset)}`);
    if (o.offset % 64 !== 0) throw bad(`${f}.offset`, `${o.offset} is not a multiple of 64`);
    if (!isInt(o.bytes) || o.bytes < 0) throw bad(`${f}.bytes`, `expected a non-negative integer, got ${JSON.stringify(o.bytes)}`);
    const size = chunks[o.chunk].bytes;
    if (o.offset + o.bytes > size) {
      throw bad(`${f}.bytes`, `offset ${o.offset} + ${o.bytes} bytes runs past the end of ${chunks[o.chunk].file} (${size} bytes)`);
    }
  };

  // tensors
  if (!Array.isArray(m.tensors) || m.tensors.length === 0) throw bad('tensors', 'expected a non-empty array');
  const names = new Set();
  const tensors = m.tensors.map((t, i) => {
    const f = `tensors[${i}]`;
    if (!t || typeof t !== 'object') throw bad(f, 'expected an object');
    if (typeof t.name !== 'string' || t.name === '' || t.name.includes('\0')) throw bad(`${f}.name`, 'expected a non-empty string');
    // version 3 (a family): a name may repeat in another tier, never within one (FORMAT.md "Families")
    const key = m.version >= 3 ? `${Number.isInteger(t.chunk) ? chunks[t.chunk]?.tier : '?'}\0${t.name}` : t.name;
    if (names.has(key)) throw bad(`${f}.name`, `${t.name} is listed twice${m.version >= 3 ? ' in one tier' : ''}`);
    names.add(key);
    const ff = `${f} (${t.name})`;
    if (typeof t.encoding !== 'string' || !Object.hasOwn(k.encodings, t.encoding)) {
      throw bad(`${ff}.encoding`, `unknown encoding ${JSON.stringify(t.encoding)} (known: ${Object.keys(k.encodings).join(', ')}; a newer pack needs a newer trillium)`);
    }
    const enc = k.encodings[t.encoding];
    if (!Array.isArray(t.shape) || t.shape.length < 1 || t.shape.length > 2 || !t.shape.every((d) => isInt(d) && d > 0)) {
      throw bad(`${ff}.shape`, `expected [rows, cols] or [n] of positive integers, got ${JSON.stringify(t.shape)}`);
    }
    placed(ff, t);
    const rows = t.shape.length === 2 ? t.shape[0] : 1;
    const cols = t.shape.length === 2 ? t.shape[1] : t.shape[0];
    const params = {};
    if (t.params !== undefined) {
      if (m.version < 2) throw bad(`${ff}.params`, 'encoding parameters need format version 2');
      if (!t.params || typeof t.params !== 'object' || Array.isArray(t.params)) throw bad(`${ff}.params`, 'expected an object');
      for (const [key, v] of Object.entries(t.params)) {
        if (!PARAM_KEYS.includes(key)) throw bad(`${ff}.params.${key}`, `unknown parameter (known: ${PARAM_KEYS.join(', ')})`);
        if (!isInt(v) || v < 0 || v > 65536) throw bad(`${ff}.params.${key}`, `expected a small non-negative integer, got ${JSON.stringify(v)}`);
        params[key] = v;
      }
    }
    const want = k.tensorBytes(enc, rows, cols, params);
    if (want === 0 || t.bytes !== want) {
      throw bad(`${ff}.bytes`, `${t.bytes} bytes, but a ${JSON.stringify(t.shape)} ${t.encoding} tensor${Object.keys(params).length ? ` with params ${JSON.stringify(params)}` : ''} takes ${want || 'an impossible number of'} bytes`);
    }
    return { name: t.name, encoding: t.encoding, encodingId: enc, shape: t.shape.slice(), params, chunk: t.chunk, offset: t.offset, bytes: t.bytes };
  });

  // tokenizer
  const tk = m.tokenizer;
  if (!tk || typeof tk !== 'object' || Array.isArray(tk)) throw bad('tokenizer', 'expected an object');
  if (typeof tk.kind !== 'string' || !Object.hasOwn(k.tokenizerKinds, tk.kind)) {
    throw bad('tokenizer.kind', `unknown tokenizer kind ${JSON.stringify(tk.kind)} (known: ${Object.keys(k.tokenizerKinds).join(', ')})`);
  }
  placed('tokenizer', tk);
  if (tk.bytes === 0) throw bad('tokenizer.bytes', 'the tokenizer blob is empty');
  for (const key of ['bos_id', 'eos_id']) {
    if (tk[key] !== undefined && tk[key] !== null && !isInt(tk[key])) throw bad(`tokenizer.${key}`, 'expected an integer or null');
  }
  if (tk.chat_template !== undefined && tk.chat_template !== null && typeof tk.chat_template !== 'string') {
    throw bad('tokenizer.chat_template', 'expected a string or null');
  }
  if (tk.add_bos !== undefined && tk.add_bos !== null && typeof tk.add_bos !== 'boolean') {
    throw bad('tokenizer.add_bos', 'expected a boolean or null');
  }
  const tokenizer = {
    addBos: tk.add_bos ?? null,
    kind: tk.kind,
    chunk: tk.chunk,
    offset: tk.offset,
    bytes: tk.bytes,
    bosId: tk.bos_id ?? null,
    eosId: tk.eos_id ?? null,
    chatTemplate: tk.chat_template ?? null,
  };

  // variants (version 1: one, "base", tier 0; a pack without the list is treated as that)
  const tiers = new Set(chunks.map((c) => c.tier));
  let variants;
  if (m.variants === undefined) {
    variants = [{ id: 'base', tiers: [...tiers].sort((a, b) => a - b), downloadBytes: null, residentBytes: null, contextBytes: {}, rankSlices: null, perplexity: null }];
  } else {
    if (!Array.isArray(m.variants) || m.variants.length === 0) throw bad('variants', 'expected a non-empty array');
    const ids = new Set();
    variants = m.variants.map((v, i) => {
      const f = `variants[${i}]`;
      if (!v || typeof v !== 'object') throw bad(f, 'expected an object');
      if (typeof v.id !== 'string' || v.id === '') throw bad(`${f}.id`, 'expected a non-empty string');
      if (ids.has(v.id)) throw bad(`${f}.id`, `${v.id} is listed twice`);
      ids.add(v.id);
      if (!Array.isArray(v.tiers) || v.tiers.length === 0) throw bad(`${f}.tiers`, 'expected a non-empty array');
      v.tiers.forEach((t, j) => {
        if (!isInt(t) || !tiers.has(t)) throw bad(`${f}.tiers[${j}]`, `no chunk has tier ${JSON.stringify(t)}`);
      });
      const download = chunks.filter((c) => v.tiers.includes(c.tier)).reduce((s, c) => s + c.bytes, 0);
      if (v.download_bytes !== undefined && v.download_bytes !== download) {
        throw bad(`${f}.download_bytes`, `${v.download_bytes}, but the chunks of tiers [${v.tiers}] add up to ${download}`);
      }
      for (const key of ['resident_bytes']) {
        if (v[key] !== undefined && (!isInt(v[key]) || v[key] < 0)) throw bad(`${f}.${key}`, 'expected a non-negative integer');
      }
      const cb = v.context_bytes ?? {};
      if (typeof cb !== 'object' || Array.isArray(cb)) throw bad(`${f}.context_bytes`, 'expected an object');
      if (v.rank_slices !== undefined && !(isInt(v.rank_slices) && v.rank_slices >= 0)) {
        throw bad(`${f}.rank_slices`, `expected a non-negative integer, got ${JSON.stringify(v.rank_slices)}`);
      }
      // Measured perplexity (DESIGN.md: when the converter had calibration
      // text): a number, or an object of numbers (e.g. per data set); shown, never relied on.
      // trillium-convert --calib writes {text_sha256, tokens, value}.
      const ppl = typeof v.perplexity === 'number' && v.perplexity > 0 ? v.perplexity
        : v.perplexity && typeof v.perplexity === 'object' && !Array.isArray(v.perplexity) &&
          (typeof v.perplexity.value === 'number' ||
           Object.values(v.perplexity).every((x) => typeof x === 'number')) ? { ...v.perplexity } : null;
      return { id: v.id, tiers: v.tiers.slice(), downloadBytes: download, residentBytes: v.resident_bytes ?? null, contextBytes: { ...cb }, rankSlices: v.rank_slices ?? null, perplexity: ppl };
    });
  }
  if (m.version >= 3) {
    // a variant binds the tensors of its tiers: none may see a name twice
    variants.forEach((v, i) => {
      const seen = new Set();
      for (const t of tensors) {
        if (!v.tiers.includes(chunks[t.chunk].tier)) continue;
        if (seen.has(t.name)) throw bad(`variants[${i}].tiers`, `tensor ${t.name} is in two of the tiers of ${v.id}`);
        seen.add(t.name);
      }
    });
  }
  for (const v of variants) {
    if (v.downloadBytes === null) v.downloadBytes = chunks.filter((c) => v.tiers.includes(c.tier)).reduce((s, c) => s + c.bytes, 0);
  }

  return {
    format: m.format,
    version: m.version,
    name: typeof m.name === 'string' ? m.name : null,
    source: typeof m.source === 'string' ? m.source : null,
    config: m.config,
    tokenizer,
    tensors,
    chunks,
    variants,
  };
}

/** What parseManifest needs from a Binding. */
export function coreKnowledge(binding) {
  return {
    formatVersion: binding.constants.pack_format_version,
    encodings: binding.encodingIds,
    tokenizerKinds: binding.constants.tokenizer_kinds,
    encodingBytes: (id, rows, cols) => binding.encodingBytes(id, rows, cols),
    tensorBytes: (id, rows, cols, params) => binding.tensorBytes(id, rows, cols, params),
  };
}

/**
 * Read and check manifest.json of a pack source. With a cache (http sources),
 * a stored manifest is used without a request unless `refresh`; a refreshed
 * manifest that cannot be fetched (offline) falls back to the stored one.
 * Only a manifest that parses is stored.
 * @returns {Promise<{text: string, manifest: object, where: string, fromCache: boolean}>}
 */
export async function readManifest(binding, src, { cache = null, refresh = false, signal, onWarning } = {}) {
  const where = src.describe(MANIFEST);
  const k = coreKnowledge(binding);
  const useCache = !!cache && src.cacheable === true;
  const cached = async () => {
    try {
      return await cache.getManifest(src.cacheKey);
    } catch {
      return null;
    }
  };
  if (useCache && !refresh) {
    const text = await cached();
    if (text !== null) {
      try {
        return { text, where, manifest: parseManifest(text, k, where), fromCache: true };
      } catch {
        // stored by another trillium version, or damaged: fetch it again
      }
    }
  }
  let text;
  try {
    text = await src.readText(MANIFEST, { signal });
  } catch (e) {
    if (useCache && refresh && e instanceof TrilliumError && e.code === 'IO') {
      const t = await cached();
      if (t !== null) {
        onWarning?.({ message: `${where}: cannot refresh (${e.message}); using the stored manifest`, error: e });
        return { text: t, where, manifest: parseManifest(t, k, where), fromCache: true };
      }
    }
    throw e;
  }
  const manifest = parseManifest(text, k, where);
  if (useCache) {
    try {
      await cache.putManifest(src.cacheKey, text);
    } catch (e) {
      onWarning?.(cacheWarning(cache, e, 'storing the manifest'));
    }
  }
  return { text, where, manifest, fromCache: false };
}

function cacheWarning(cache, e, what) {
  const quota = isQuotaError(e);
  return {
    message: `cache ${cache.label ?? ''}: ${quota ? 'out of storage space' : (e?.message || String(e))} while ${what}: ` +
      'this load goes on without caching (the next load downloads again)',
    error: e,
    quota,
  };
}

/** The variant to load: the one asked for, else "base", else the first listed. */
export function pickVariant(manifest, id, where = MANIFEST) {
  if (id !== undefined && id !== null) {
    const v = manifest.variants.find((x) => x.id === id);
    if (!v) {
      throw packError(where, 'variants', `no variant ${JSON.stringify(id)} (available: ${manifest.variants.map((x) => x.id).join(', ')})`);
    }
    return v;
  }
  return manifest.variants.find((x) => x.id === 'base') ?? manifest.variants[0];
}

/** Indices of the chunks whose tier a variant lists. */
export function variantChunks(manifest, variant) {
  const tiers = new Set(variant.tiers);
  return manifest.chunks.map((c, i) => (tiers.has(c.tier) ? i : -1)).filter((i) => i >= 0);
}

/**
 * Copy chunks into the wasm heap, verifying each one's size and sha256 before
 * anything uses it. With a cache (http sources): a stored chunk is read
 * instead of downloaded (and hashed like a download: a damaged entry is
 * dropped and fetched again); a stored partial download is resumed with a
 * Range request; a chunk is stored only once its bytes matched the hash. A
 * download whose hash is wrong is fetched once more, from the start and
 * bypassing caches, before giving up. Nothing that failed its hash is kept.
 * @param {number[]} indices chunk indices to load (those already in `ptrs` are skipped)
 * @returns {Promise<{ptrs: Map<number, number>, fromCache: number, fromNetwork: number}>} fromNetwork
 *   counts bytes from a remote source (not a local directory)
 *   ptrs: chunk index -> heap pointer (64-aligned); on failure the chunks this call added are freed
 */
export async function loadChunks(binding, src, manifest, indices, {
  onProgress, onWarning, signal, where = MANIFEST, cache = null, ptrs = new Map(), phase = 'load', variant = null,
  concurrency = 4,
} = {}) {
  concurrency = Number.isInteger(concurrency) && concurrency > 0 ? concurrency : 4;
  const wanted = indices.filter((i) => !ptrs.has(i)).map((i) => ({ ...manifest.chunks[i], index: i }));
  const total = wanted.reduce((s, c) => s + c.bytes, 0);
  const added = [];
  let loaded = 0;
  let done = 0;
  let fromCache = 0;
  let fromNetwork = 0;
  const progress = (file) => onProgress?.({ loaded, total, file, chunksDone: done, chunks: wanted.length, fromCache, phase, variant });
  let useCache = !!cache && src.cacheable === true;
  const cacheFailed = (e, what) => {
    if (!useCache) return;
    useCache = false;
    onWarning?.(cacheWarning(cache, e, what));
  };
  const isRemote = typeof src.dir !== 'string';
  // One chunk: from the cache, else (resumed) from the source, verified before use.
  // Runs up to `concurrency` at a time; its own byte count lets a retry take back
  // just what this chunk had added to the shared progress.
  const loadOne = async (c) => {
      if (failed) return;
      signal?.throwIfAborted?.();
      const field = `chunks[${c.index}]`;
      const ptr = binding.mallocAligned(c.bytes, `${c.file} (${field})`);
      ptrs.set(c.index, ptr);
      added.push(c.index);
      // Fresh views each time: the heap may grow (and its buffer change) at any await.
      const view = (off, n) => binding.u8.subarray(ptr + off, ptr + off + n);
      const whole = () => binding.u8.subarray(ptr, ptr + c.bytes);
      // What the hash reads: a copy on a shared (pthreads) heap, which crypto.subtle refuses.
      const hashable = () => (typeof binding.external === 'function' ? binding.external(ptr, c.bytes) : whole());
      let mine = 0;
      const count = (n) => {
        mine += n;
        loaded += n;
        progress(c.file);
      };
      const restart = () => {
        loaded -= mine;
        mine = 0;
      };

      if (useCache) {
        let hit = false;
        try {
          hit = await cache.readChunk(c.sha256, c.bytes, view, count);
        } catch (e) {
          cacheFailed(e, `reading ${c.file}`);
        }
        if (hit && (await sha256Hex(hashable())) === c.sha256) {
          fromCache += c.bytes;
          done++;
          progress(c.file);
          return;
        }
        if (hit) await cache.discard(c.sha256).catch(() => {}); // damaged: never used, never kept
        restart();
      }

      for (let attempt = 0; ; attempt++) {
        let start = 0;
        let writer = null;
        if (useCache) {
          try {
            if (attempt === 0) {
              const have = Math.min(await cache.partialSize(c.sha256), c.bytes);
              if (have > 0) start = await cache.readPartial(c.sha256, have, view, count);
            }
            writer = await cache.openWriter(c.sha256, start);
          } catch (e) {
            cacheFailed(e, `resuming ${c.file}`);
            restart();
            start = 0;
          }
        }
        try {
          await src.readInto(c.file, c.bytes, view, count, {
            reload: attempt > 0,
            field: `${field}.bytes`,
            fileField: `${field}.file`,
            start,
            sink: writer ?? undefined,
            signal,
          });
        } finally {
          if (writer) {
            await writer.close();
            if (writer.failed) cacheFailed(writer.failed, `storing ${c.file}`);
          }
        }
        const got = await sha256Hex(hashable());
        if (got === c.sha256) {
          if (isRemote) fromNetwork += c.bytes - start; // local files are not a download
          fromCache += start;
          if (useCache) {
            try {
              await cache.commit(c.sha256, c.bytes, whole);
            } catch (e) {
              cacheFailed(e, `storing ${c.file}`);
            }
          }
          break;
        }
        if (cache && src.cacheable === true) await cache.discard(c.sha256).catch(() => {});
        restart();
        // Fetch once more from the start, past any cache: a proxy, a stale
        // cache or a damaged partial download may have served these bytes.
        if ((isRemote || start > 0) && attempt === 0) continue;
        throw new TrilliumError(
          'SHA_MISMATCH',
          `${src.describe(c.file)}: sha256 is ${got} but ${where} ${field}.sha256 says ${c.sha256}` +
            ' (a corrupted or modified chunk: re-run trillium-convert or re-download the pack)',
          { file: c.file, field: `${field}.sha256` },
        );
      }
      done++;
      progress(c.file);
  };
  let failed = null;
  try {
    progress(null);
    let next = 0;
    const lanes = Array.from({ length: Math.max(1, Math.min(concurrency, wanted.length)) }, async () => {
      while (!failed && next < wanted.length) {
        try {
          await loadOne(wanted[next++]);
        } catch (e) {
          failed ??= e;
        }
      }
    });
    // every lane stops before any memory is freed: no download writes into a freed chunk
    await Promise.all(lanes);
    if (failed) throw failed;
  } catch (e) {
    for (const i of added) {
      binding.free(ptrs.get(i));
      ptrs.delete(i);
    }
    throw e;
  }
  return { ptrs, fromCache, fromNetwork };
}
