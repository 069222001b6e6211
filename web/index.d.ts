// Type declarations for the `trillium` package (ES module).

/** Where the WebAssembly module comes from: a path (Node), a URL, its bytes, or a compiled module. */
export type WasmSource = string | URL | ArrayBuffer | ArrayBufferView | WebAssembly.Module;

/** A custom pack source (e.g. the Cache API, an in-memory pack in tests). */
export interface PackSourceLike {
  /** How to name the pack in messages. */
  label?: string;
  /** The path or URL of a file of the pack, for messages. */
  describe(file: string): string;
  readText(file: string): Promise<string>;
  /**
   * Write exactly `expected` bytes of `file` through `view(offset, n)` (a fresh Uint8Array over
   * the wasm heap each call), calling `onBytes(n)` as they arrive; throw if the size differs.
   */
  readInto(
    file: string,
    expected: number,
    view: (offset: number, n: number) => Uint8Array,
    onBytes: (n: number) => void,
    opts?: {
      reload?: boolean;
      /** Manifest field for size errors, e.g. "chunks[1].bytes". */
      field?: string;
      /** Manifest field for other errors about the file, e.g. "chunks[1].file". */
      fileField?: string;
      /** Bytes 0..start are already in place (a resumed download): deliver the rest. */
      start?: number;
      /** Sees every new piece (the cache's partial file); restart() when the bytes start over. */
      sink?: { write(piece: Uint8Array): void; restart?(): Promise<void> };
      signal?: AbortSignal;
    },
  ): Promise<void>;
  /** http sources: true, so the download cache applies; cacheKey names the pack in it. */
  cacheable?: boolean;
  cacheKey?: string;
}

/** A pack directory (Node), an http(s) URL (Node and browsers; relative URLs in browsers), or a custom source. */
export type PackSource = string | URL | PackSourceLike;

export type TrilliumErrorCode =
  | 'BAD_PACK'
  | 'UNSUPPORTED_VERSION'
  | 'MISSING_FILE'
  | 'SIZE_MISMATCH'
  | 'SHA_MISMATCH'
  | 'IO'
  | 'CORE'
  | 'NO_MEMORY'
  | 'BAD_ARGUMENT'
  | 'BUSY'
  | 'DISPOSED'
  | 'WASM'
  | 'WORKER';

export class TrilliumError extends Error {
  readonly name: 'TrilliumError';
  readonly code: TrilliumErrorCode;
  /** The pack file the error is about (path or URL), when there is one. */
  file?: string;
  /** The manifest field the error is about, e.g. "chunks[1].sha256". */
  field?: string;
  /** The core's trl_status for CORE errors; the HTTP status for http errors. */
  status?: number;
  /** NO_MEMORY: the next smaller variant, which may fit. */
  suggestedVariant?: string;
  /** NO_MEMORY from variant 'auto': the longest context with which the smallest variant fits. */
  suggestedContextLength?: number;
  constructor(code: TrilliumErrorCode, message: string, extra?: { file?: string; field?: string; cause?: unknown; status?: number });
}

export interface LoadProgress {
  /** Bytes of chunks read so far in this phase (cache and network). */
  loaded: number;
  /** Bytes of chunks this phase needs. */
  total: number;
  /** The chunk file being read, or null before the first. */
  file: string | null;
  chunksDone: number;
  chunks: number;
  /** Of `loaded`, bytes that came from the download cache. */
  fromCache: number;
  /** 'load' until the model is usable; 'upgrade' for the tiers a progressive load fetches afterwards. */
  phase: 'load' | 'upgrade';
  /** The variant these chunks are for. */
  variant: string | null;
}

/** A download cache (see CacheApiStore, MemoryStore; Node: a directory). Failures never fail a load. */
export interface ChunkCache {
  label?: string;
  getManifest(key: string): Promise<string | null>;
  putManifest(key: string, text: string): Promise<void>;
  /** Read a complete chunk stored under its sha256 into the heap; false if absent or the wrong size. */
  readChunk(sha256: string, bytes: number, view: (offset: number, n: number) => Uint8Array, onBytes?: (n: number) => void): Promise<boolean>;
  /** Bytes of a partial download of this chunk (0 if none). */
  partialSize(sha256: string): Promise<number>;
  readPartial(sha256: string, n: number, view: (offset: number, n: number) => Uint8Array, onBytes?: (n: number) => void): Promise<number>;
  /** Append the pieces of a download from `offset` (the partial entry). */
  openWriter(sha256: string, offset: number): Promise<{ failed: unknown; write(piece: Uint8Array): void; restart(): Promise<void>; close(): Promise<void> }>;
  /** Store the chunk whose heap bytes (`bytes()`, a fresh view) matched its sha256; drop the partial entry. */
  commit(sha256: string, bytes: number, heapBytes: () => Uint8Array): Promise<void>;
  /** Forget a chunk (complete and partial), e.g. one that failed its hash. */
  discard(sha256: string): Promise<void>;
  clear?(): Promise<void>;
}

/** Simulated or overridden device facts for variant: 'auto' (tests, or a host that knows better). */
export interface DeviceFacts {
  /** navigator.deviceMemory, GiB. */
  deviceMemory?: number;
  /** Node: os.totalmem(), bytes. */
  systemMemory?: number;
  /** performance.memory.jsHeapSizeLimit, bytes. */
  jsHeapSizeLimit?: number;
  /** How far a WebAssembly.Memory grows here (bytes, or {bytes, error}); never asked past `limit`. */
  probe?: (limit: number) => number | { bytes: number; error: string | null };
}

export interface LoadWarning {
  message: string;
  error?: unknown;
  /** The cache ran out of storage space. */
  quota?: boolean;
}

export interface LoadOptions {
  /** KV cache length in tokens (default: min(config.max_seq_len, 4096)). */
  contextLength?: number;
  /** Most tokens per prefill matmul (default: the core's, 64). */
  batchSize?: number;
  /**
   * Pack variant id, or 'auto': the largest variant whose peak memory (weights + context + margin)
   * fits the memory budget. Default: 'auto' for a pack with several variants, else its only one.
   */
  variant?: string;
  /** Memory for this model: bytes or "1.5GiB" / "512MB" (default: estimated, see estimateBudget). */
  memoryBudget?: number | string;
  /** Device facts for 'auto' instead of the real ones. */
  device?: DeviceFacts;
  /**
   * Start on the smallest variant whose tiers are a subset of the chosen one's; the rest
   * downloads in the background and the model switches to the chosen variant at the next
   * call or between two tokens (see Model.upgraded, Model.variant).
   */
  progressive?: boolean;
  /**
   * Download cache for http(s) packs: true (default: the Cache API in browsers, $TRILLIUM_CACHE or
   * ~/.cache/trillium in Node), false, a cache name (browsers) or directory (Node), or a ChunkCache.
   */
  cache?: boolean | string | ChunkCache;
  /** Fetch the manifest again even when it is cached (offline: the cached one is used). */
  refresh?: boolean;
  /** Retries per request on network errors, 5xx, 429 and stalls (default 4). */
  retries?: number;
  /** Chunks downloaded at the same time (default 4). */
  concurrency?: number;
  /** First backoff delay; doubles each retry (default 500). */
  retryDelayMs?: number;
  /** A request that delivers no data for this long is retried (default 30000). */
  timeoutMs?: number;
  /** A fetch implementation (default: globalThis.fetch). Not with worker: true. */
  fetch?: typeof fetch;
  /**
   * Run the engine in a worker (a module Worker in browsers, worker_threads in Node) behind a
   * RemoteModel with the same API. Default 'auto': on a browser page's main thread only.
   */
  worker?: boolean | 'auto';
  /** Called as chunk bytes arrive. */
  onProgress?: (p: LoadProgress) => void;
  /** Called when something degrades without failing the load (the cache is full, ...). */
  onWarning?: (w: LoadWarning) => void;
  /** Called when a progressive load has switched to its target variant. */
  onUpgrade?: (v: VariantInfo) => void;
  /** Aborts the download (and a progressive upgrade still running). */
  signal?: AbortSignal;
  /** The WebAssembly module (default: ../dist/trillium.wasm next to src/). */
  wasm?: WasmSource;
  /**
   * Threads per context (default 1; 'auto': the hardware's parallelism, capped at 4). Above 1 the
   * pthreads build (dist/trillium-mt.*) runs where SharedArrayBuffer is allowed (Node; cross-origin
   * isolated pages), else the standalone build on one thread (info.threadsNote says why).
   * Any thread count gives the same bits.
   */
  threads?: number | 'auto';
  /** Force a build (default 'auto'). */
  build?: 'auto' | 'standalone' | 'pthreads';
  /** trillium-mt.js of the pthreads build (default ../dist/trillium-mt.js). */
  threadsGlue?: string | URL;
  /** trillium-mt.wasm (default: beside the glue). */
  threadsWasm?: WasmSource;
  /**
   * Which default module (default 'auto'): 'relaxed' runs trillium-relaxed.wasm /
   * trillium-mt-relaxed.wasm, whose ternary kernel uses relaxed SIMD's int8 dot product
   * (Chrome/Edge 114+; an error where the engine lacks it); 'auto' does so where the engine
   * computes it correctly, else the SIMD128 module. Same bits either way. An explicit `wasm` /
   * `threadsWasm` is used as given.
   */
  simd?: 'auto' | 'simd128' | 'relaxed';
}

/** The variant in use and why. */
export interface VariantInfo {
  id: string;
  /** e.g. "fits: 412 MiB of 1.5 GiB budget (deviceMemory 2 GiB x 0.75)", "requested", "upgraded from r0.25 ...". */
  reason: string;
  /** The variant a progressive load is heading for (= id otherwise). */
  target: string;
  /** The target's peak heap estimate. */
  peakBytes: number;
  /** The memory budget used by 'auto' (null otherwise). */
  budgetBytes: number | null;
  budgetReason: string | null;
  /** A progressive upgrade is still downloading. */
  upgrading: boolean;
  /** Why a progressive upgrade failed (the model stays on the smaller variant). */
  upgradeError: string | null;
}

/** Load and last-generation statistics. */
export interface ModelStats {
  loadMs: number;
  fromCacheBytes: number;
  fromNetworkBytes: number;
  /** Time the progressive upgrade took to download (null without one). */
  upgradeMs: number | null;
  timeToFirstTokenMs: number | null;
  prefillTokensPerSecond: number | null;
  decodeTokensPerSecond: number | null;
  promptTokens: number;
  evaluatedPromptTokens: number;
  generatedTokens: number;
}

export interface ModelConfig {
  arch: 'llama' | 'bitnet';
  mlp: 'swiglu' | 'relu2';
  rope_style: 'interleaved' | 'half';
  act_quant: 'float' | 'int8';
  dim: number;
  hidden_dim: number;
  n_layers: number;
  n_heads: number;
  n_kv_heads: number;
  head_dim: number;
  vocab_size: number;
  max_seq_len: number;
  rope_theta: number;
  norm_eps: number;
  tied_embeddings: boolean;
  sub_norms: boolean;
  n_params: number;
}

export interface ModelInfo {
  name: string | null;
  source: string | null;
  /** The pack directory or URL. */
  pack: string;
  formatVersion: number;
  /** The variant in use (see Model.variant for why). */
  variant: string;
  /** Every variant id of the pack. */
  variants: string[];
  /** The config as the core parsed it (defaults filled in). */
  config: ModelConfig;
  tokenizer: {
    kind: 'spm' | 'bpe_gpt2' | string;
    vocabSize: number;
    bosId: number;
    eosId: number;
    chatTemplate: string | null;
  };
  contextLength: number;
  tensors: number;
  chunks: number;
  downloadBytes: number;
  weightBytes: number;
  /** Bytes the context allocates (trl_ctx_memory_bytes). */
  contextBytes: number;
  /** Size of the wasm heap after loading. */
  heapBytes: number;
  loadMs: number;
  wasmVersion: string;
  /** The wasm build running: 'standalone' (trillium.wasm) or 'pthreads' (trillium-mt). */
  build: 'standalone' | 'pthreads';
  /** Threads per context. */
  threads: number;
  /** Why fewer threads than asked for run ('' if none). */
  threadsNote: string;
  /** The module's SIMD level ('custom': a `wasm`/`threadsWasm` given). */
  simd: 'simd128' | 'relaxed' | 'custom';
  /** Why the relaxed-SIMD module was wanted but not used ('' if not). */
  simdNote: string;
  cache: { store: string | null; manifestFromCache: boolean; fromCacheBytes: number; fromNetworkBytes: number };
  /** Messages of the warnings the load reported. */
  warnings: string[];
}

export interface GenerateOptions {
  /** Most tokens to generate (default 256; Infinity: until EOS or the context is full). */
  maxTokens?: number;
  /** 0 = greedy (default 0.8). */
  temperature?: number;
  /** 0 = off (default 40). */
  topK?: number;
  /** 1 = off (default 0.95). */
  topP?: number;
  /** 0 = off (default 0). */
  minP?: number;
  /** 1 = off (default 1). */
  repeatPenalty?: number;
  /** Tokens the repetition penalty looks back at (default 64). */
  repeatLastN?: number;
  /** 0 <= seed < 2^64 (default: random). */
  seed?: number | bigint | string;
  /** Prepend BOS to a text prompt (default true). */
  addBos?: boolean;
  /** Keep generating past EOS/BOS tokens (default false; for tests and benchmarks). */
  ignoreEos?: boolean;
  /** Stops the generation: the iterator rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Stop before any of these strings; the text never contains one (or its beginning). */
  stop?: string | string[];
  /** Stop at any of these token ids (not included). */
  stopTokens?: number[];
}

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | string;
  content: string;
}

export interface ChatPrompt {
  text: string;
  /** 'template': the pack's chat_template; 'plain': "role: content" lines (no template, or unsupported syntax). */
  format: 'template' | 'plain';
  /** Why the plain format was used. */
  note: string | null;
  /** End-of-turn strings the template uses. */
  stop: string[];
  /** Those of them that are single special tokens. */
  stopTokens: number[];
  /** Whether generation prepends BOS (templates write it themselves). */
  addBos: boolean;
}

export interface PerplexityResult {
  tokens: number;
  /** Tokens scored (each window's first token is only context). */
  predicted: number;
  /** Sum of -log p over the predicted tokens (natural log). */
  nll: number;
  meanNll: number;
  perplexity: number;
  windows: number;
  contextLength: number;
  ms: number;
  tokensPerSecond: number;
  variant: string;
}

export interface GenerateStats {
  promptTokens: number;
  /** Prompt tokens actually run (the rest came from the KV cache of the previous call). */
  evaluatedPromptTokens: number;
  generatedTokens: number;
  /** Generated token ids (EOS excluded). */
  tokens: number[];
  text: string;
  finishReason: 'eos' | 'length' | 'context' | 'stop';
  prefillMs: number;
  decodeMs: number;
  /** Decode speed. */
  tokensPerSecond: number;
  /** From the call to the first sampled token (prefill included). */
  timeToFirstTokenMs: number | null;
  prefillTokensPerSecond: number;
  /** The seed used, as a decimal string. */
  seed: string;
  /** The variant at the end of the generation. */
  variant: string;
  /** The token index at which a progressive upgrade switched variants, or null. */
  upgradedAt: number | null;
  /** chat(): the prompt format used. */
  chat?: { format: 'template' | 'plain'; note: string | null };
}

export declare const GENERATE_DEFAULTS: Readonly<Required<Omit<GenerateOptions, 'seed' | 'signal' | 'addBos'>>>;

export class Model {
  private constructor();
  static load(source: PackSource, opts?: LoadOptions): Promise<Model>;
  readonly info: ModelInfo;
  /** Statistics of the last generation (also the generator's return value). */
  lastStats: GenerateStats | null;
  tokenize(text: string, opts?: { addBos?: boolean }): number[];
  detokenize(ids: ArrayLike<number>): string;
  /** The raw bytes of one token (may be part of a UTF-8 character). */
  tokenBytes(id: number): Uint8Array;
  /** Text pieces as they are produced; never half a UTF-8 character. */
  generate(prompt: string | number[], opts?: GenerateOptions): AsyncGenerator<string, GenerateStats, void>;
  /** Generate to the end. */
  complete(prompt: string | number[], opts?: GenerateOptions & { onText?: (piece: string) => void }): Promise<GenerateStats>;
  /** Logits (vocab_size floats) of the next token after the prompt. */
  logits(prompt: string | number[], opts?: { addBos?: boolean }): Promise<{ tokens: number[]; logits: Float32Array }>;
  /** The assistant's reply to a conversation, as generate() (uses the pack's chat_template). */
  chat(messages: ChatMessage[], opts?: GenerateOptions): AsyncGenerator<string, GenerateStats, void>;
  /** The prompt chat() would use. */
  formatChat(messages: ChatMessage[], opts?: { addGenerationPrompt?: boolean; vars?: Record<string, unknown> }): ChatPrompt;
  /** Perplexity of a text (windows of contextLength tokens, all-position logits). */
  perplexity(text: string | number[], opts?: { addBos?: boolean; contextLength?: number; signal?: AbortSignal }): Promise<PerplexityResult>;
  /** The variant in use and why. */
  readonly variant: VariantInfo;
  readonly stats: ModelStats;
  /** Resolves once a progressive upgrade switched variants (at once without one); rejects if it failed. */
  upgraded: Promise<VariantInfo>;
  /** Release the wasm instance. Idempotent. */
  dispose(): void;
}

/**
 * The Model API over a worker (Trillium.load with worker: true, the default on a browser page).
 * Every method returns a Promise; generate() and chat() stream pieces; breaking out of the loop or
 * aborting stops the worker's generation within a few tokens.
 */
export class RemoteModel {
  private constructor();
  static load(source: string | URL, opts?: LoadOptions): Promise<RemoteModel>;
  readonly info: ModelInfo;
  readonly variant: VariantInfo;
  readonly stats: ModelStats;
  readonly lastStats: GenerateStats | null;
  upgraded: Promise<VariantInfo>;
  tokenize(text: string, opts?: { addBos?: boolean }): Promise<number[]>;
  detokenize(ids: ArrayLike<number>): Promise<string>;
  tokenBytes(id: number): Promise<Uint8Array>;
  logits(prompt: string | number[], opts?: { addBos?: boolean }): Promise<{ tokens: number[]; logits: Float32Array }>;
  formatChat(messages: ChatMessage[], opts?: { addGenerationPrompt?: boolean }): Promise<ChatPrompt>;
  perplexity(text: string | number[], opts?: { addBos?: boolean; contextLength?: number; signal?: AbortSignal }): Promise<PerplexityResult>;
  generate(prompt: string | number[], opts?: GenerateOptions): AsyncGenerator<string, GenerateStats, void>;
  chat(messages: ChatMessage[], opts?: GenerateOptions): AsyncGenerator<string, GenerateStats, void>;
  complete(prompt: string | number[], opts?: GenerateOptions & { onText?: (piece: string) => void }): Promise<GenerateStats>;
  /** Free the model and stop the worker; the model is unusable at once. */
  dispose(): Promise<void>;
}

export interface PackInfo {
  pack: string;
  name: string | null;
  source: string | null;
  formatVersion: number;
  config: ModelConfig;
  tokenizer: { kind: string; bytes: number; bosId: number | null; eosId: number | null; chatTemplate: string | null };
  tensors: { count: number; bytes: number; byEncoding: Record<string, { tensors: number; bytes: number; weights: number }> };
  chunks: { file: string; bytes: number; sha256: string; tier: number }[];
  variants: {
    id: string;
    tiers: number[];
    downloadBytes: number;
    residentBytes: number | null;
    contextBytes: Record<string, number>;
    rankSlices: number | null;
    /** Measured perplexity from the manifest, when the converter had calibration text
     * (trillium-convert --calib writes `{ text_sha256, tokens, value }`). */
    perplexity: number | { value?: number; tokens?: number; text_sha256?: string; [k: string]: number | string | undefined } | null;
    /** trl_ctx_memory_bytes for a few context lengths, computed by this core. */
    contextBytesComputed: Record<string, number>;
    /** Peak heap estimate for `contextLength`: weights (chunks + expansion) + context + margin. */
    peak: { contextLength: number; weights: number; context: number; margin: number; bytes: number };
  }[];
  /** The context length the peaks are for. */
  contextLength: number;
  manifestFromCache: boolean;
  /** What variant: 'auto' would load here (id null when nothing fits; reason says why). */
  auto: { id: string | null; reason: string; budgetBytes?: number; budgetReason?: string; suggestedVariant?: string | null };
}

export type InspectOptions = Pick<LoadOptions, 'wasm' | 'contextLength' | 'batchSize' | 'memoryBudget' | 'device' | 'cache' | 'refresh' | 'retries' | 'retryDelayMs' | 'timeoutMs' | 'fetch' | 'signal'>;

export class Trillium {
  static load(source: PackSource, opts: LoadOptions & { worker: true }): Promise<RemoteModel>;
  static load(source: PackSource, opts: LoadOptions & { worker: false }): Promise<Model>;
  /** A Model, or a RemoteModel with worker: true ('auto': on a browser page). */
  static load(source: PackSource, opts?: LoadOptions): Promise<Model | RemoteModel>;
  /** Describe a pack from its manifest alone (downloads no chunk). */
  static inspect(source: PackSource, opts?: InspectOptions): Promise<PackInfo>;
}
export default Trillium;
export declare function load(source: PackSource, opts: LoadOptions & { worker: true }): Promise<RemoteModel>;
export declare function load(source: PackSource, opts: LoadOptions & { worker: false }): Promise<Model>;
export declare function load(source: PackSource, opts?: LoadOptions): Promise<Model | RemoteModel>;
export declare function inspectPack(source: PackSource, opts?: InspectOptions): Promise<PackInfo>;

/** The memory budget for one model from the device facts (see README "Variants"). */
export declare function estimateBudget(
  env: DeviceFacts & { memoryBudget?: number | string },
  opts?: { probeLimit?: number },
): { bytes: number; reason: string; parts: { bytes: number; label: string }[] };
/** variant: 'auto' on a parsed manifest; throws NO_MEMORY when nothing fits. */
export declare function chooseVariant(
  manifest: ParsedManifest,
  o: { nCtx: number; budget: { bytes: number; reason: string }; compute?: (nCtx: number) => number; maxCtx?: number },
): { variant: ParsedManifest['variants'][number]; reason: string; peak: object; candidates: { id: string; peak: number; fits: boolean }[] };
/** Grow a WebAssembly.Memory in steps until RangeError or `limit` (default 4 GiB). */
export declare function probeWasmMemory(opts?: { limit?: number; step?: number }): { bytes: number; error: string | null };
export declare function formatBytes(n: number): string;
export declare function parseBytes(v: number | string, what?: string): number;

/** Render a chat prompt (the Jinja subset of chat templates); falls back to "role: content". */
export declare function formatChat(
  template: string | null,
  messages: ChatMessage[],
  opts?: { bosToken?: string; eosToken?: string; addGenerationPrompt?: boolean; vars?: Record<string, unknown> },
): { text: string; format: 'template' | 'plain'; note: string | null; stop: string[] };
export declare function renderTemplate(template: string, vars: Record<string, unknown>): string;

/** The browser Cache API as a ChunkCache (the browser default). */
export class CacheApiStore implements ChunkCache {
  constructor(name?: string, storage?: CacheStorage);
  label: string;
  getManifest(key: string): Promise<string | null>;
  putManifest(key: string, text: string): Promise<void>;
  readChunk(sha256: string, bytes: number, view: (offset: number, n: number) => Uint8Array, onBytes?: (n: number) => void): Promise<boolean>;
  partialSize(sha256: string): Promise<number>;
  readPartial(sha256: string, n: number, view: (offset: number, n: number) => Uint8Array, onBytes?: (n: number) => void): Promise<number>;
  openWriter(sha256: string, offset: number): Promise<{ failed: unknown; write(piece: Uint8Array): void; restart(): Promise<void>; close(): Promise<void> }>;
  commit(sha256: string, bytes: number, heapBytes: () => Uint8Array): Promise<void>;
  discard(sha256: string): Promise<void>;
  clear(): Promise<void>;
}
/** A ChunkCache in memory (tests, custom policies). */
export class MemoryStore implements ChunkCache {
  constructor();
  label: string;
  getManifest(key: string): Promise<string | null>;
  putManifest(key: string, text: string): Promise<void>;
  readChunk(sha256: string, bytes: number, view: (offset: number, n: number) => Uint8Array, onBytes?: (n: number) => void): Promise<boolean>;
  partialSize(sha256: string): Promise<number>;
  readPartial(sha256: string, n: number, view: (offset: number, n: number) => Uint8Array, onBytes?: (n: number) => void): Promise<number>;
  openWriter(sha256: string, offset: number): Promise<{ failed: unknown; write(piece: Uint8Array): void; restart(): Promise<void>; close(): Promise<void> }>;
  commit(sha256: string, bytes: number, heapBytes: () => Uint8Array): Promise<void>;
  discard(sha256: string): Promise<void>;
  clear(): Promise<void>;
}

/** Streaming UTF-8 decoder: push() returns whole characters only. */
export class Utf8Stream {
  push(bytes: Uint8Array): string;
  readonly hasPending: boolean;
  end(): string;
}

export interface ParsedManifest {
  format: 'trillium-pack';
  version: number;
  name: string | null;
  source: string | null;
  config: Record<string, unknown>;
  tokenizer: { kind: string; chunk: number; offset: number; bytes: number; bosId: number | null; eosId: number | null; chatTemplate: string | null; addBos: boolean | null };
  tensors: { name: string; encoding: string; encodingId: number; shape: number[]; chunk: number; offset: number; bytes: number }[];
  chunks: { file: string; bytes: number; sha256: string; tier: number }[];
  variants: {
    id: string;
    tiers: number[];
    downloadBytes: number;
    residentBytes: number | null;
    contextBytes: Record<string, number>;
    rankSlices: number | null;
    perplexity: number | Record<string, number> | null;
  }[];
}

export declare function parseManifest(
  text: string,
  knowledge: {
    formatVersion: number;
    encodings: Record<string, number>;
    tokenizerKinds: Record<string, number>;
    encodingBytes(id: number, rows: number, cols: number): number;
  },
  where?: string,
): ParsedManifest;
export declare function pickVariant(manifest: ParsedManifest, id?: string, where?: string): ParsedManifest['variants'][number];
export declare function splitSeed(seed: number | bigint | string): [number, number];

/** The low-level binding: one wasm instance and its heap (advanced use). */
export class Binding {
  static create(opts?: {
    wasm?: WasmSource;
    threads?: number | 'auto';
    build?: 'auto' | 'standalone' | 'pthreads';
    contexts?: number;
    threadsGlue?: string | URL;
    threadsWasm?: WasmSource;
    simd?: 'auto' | 'simd128' | 'relaxed';
  }): Promise<Binding>;
  /** The build running: 'standalone' (trillium.wasm) or 'pthreads' (trillium-mt). */
  readonly build: 'standalone' | 'pthreads';
  /** The module's SIMD level ('custom': a `wasm`/`threadsWasm` given). */
  readonly simd: 'simd128' | 'relaxed' | 'custom';
  /** Why the relaxed-SIMD module was wanted but not used ('' if not). */
  readonly simdNote: string;
  /** Raw exports (trl_*, trlw_*, malloc, free, memory). Pointers are i32: read them with `>>> 0`. */
  readonly x: Record<string, any>;
  readonly memory: WebAssembly.Memory;
  /** Enum values, struct sizes and versions from trlw_constants_json. */
  readonly constants: {
    version: string;
    pack_format_version: number;
    max_dims: number;
    sizeof: Record<string, number>;
    status: Record<string, number>;
    encodings: Record<string, number>;
    tokenizer_kinds: Record<string, number>;
  };
  readonly u8: Uint8Array;
  readonly i32: Int32Array;
  readonly f32: Float32Array;
  readonly heapBytes: number;
  malloc(bytes: number, what?: string): number;
  mallocAligned(bytes: number, what?: string): number;
  free(ptr: number): void;
  allocString(s: string): { ptr: number; len: number };
  allocBytes(bytes: Uint8Array, what?: string): number;
  cString(ptr: number): string;
  bytes(ptr: number, len: number): Uint8Array;
  floats(ptr: number, n: number): Float32Array;
  /** Run fn(trl_error*) -> handle; throws a TrilliumError with the core's message when it returns 0. */
  withError(context: string, fn: (errPtr: number) => number): number;
  /** Call an snprintf-style fn(buf, cap) -> full length and return the text. */
  callString(fn: (buf: number, cap: number) => number, cap?: number): string;
  statusStr(status: number): string;
  encodingBytes(encodingId: number, rows: number, cols: number): number;
}
