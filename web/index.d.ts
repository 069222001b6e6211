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
    opts?: { reload?: boolean; field?: string },
  ): Promise<void>;
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
  | 'WASM';

export class TrilliumError extends Error {
  readonly name: 'TrilliumError';
  readonly code: TrilliumErrorCode;
  /** The pack file the error is about (path or URL), when there is one. */
  file?: string;
  /** The manifest field the error is about, e.g. "chunks[1].sha256". */
  field?: string;
  /** The core's trl_status, for CORE errors. */
  status?: number;
  constructor(code: TrilliumErrorCode, message: string, extra?: { file?: string; field?: string; cause?: unknown; status?: number });
}

export interface LoadProgress {
  /** Bytes of chunks read so far. */
  loaded: number;
  /** Bytes of chunks the chosen variant needs. */
  total: number;
  /** The chunk file being read, or null before the first. */
  file: string | null;
  chunksDone: number;
  chunks: number;
}

export interface LoadOptions {
  /** KV cache length in tokens (default: min(config.max_seq_len, 4096)). */
  contextLength?: number;
  /** Most tokens per prefill matmul (default: the core's, 64). */
  batchSize?: number;
  /** Pack variant id (default: "base", else the first listed). */
  variant?: string;
  /** Called as chunk bytes arrive. */
  onProgress?: (p: LoadProgress) => void;
  /** Aborts the download between chunks. */
  signal?: AbortSignal;
  /** The WebAssembly module (default: ../dist/trillium.wasm next to src/). */
  wasm?: WasmSource;
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
  variant: string;
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
}

export interface GenerateStats {
  promptTokens: number;
  /** Prompt tokens actually run (the rest came from the KV cache of the previous call). */
  evaluatedPromptTokens: number;
  generatedTokens: number;
  /** Generated token ids (EOS excluded). */
  tokens: number[];
  text: string;
  finishReason: 'eos' | 'length' | 'context';
  prefillMs: number;
  decodeMs: number;
  tokensPerSecond: number;
  /** The seed used, as a decimal string. */
  seed: string;
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
  /** Release the wasm instance. Idempotent. */
  dispose(): void;
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
    /** trl_ctx_memory_bytes for a few context lengths, computed by this core. */
    contextBytesComputed: Record<string, number>;
  }[];
}

export class Trillium {
  static load(source: PackSource, opts?: LoadOptions): Promise<Model>;
  /** Describe a pack from its manifest alone (downloads no chunk). */
  static inspect(source: PackSource, opts?: { wasm?: WasmSource }): Promise<PackInfo>;
}
export default Trillium;
export declare function load(source: PackSource, opts?: LoadOptions): Promise<Model>;
export declare function inspectPack(source: PackSource, opts?: { wasm?: WasmSource }): Promise<PackInfo>;

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
  tokenizer: { kind: string; chunk: number; offset: number; bytes: number; bosId: number | null; eosId: number | null; chatTemplate: string | null };
  tensors: { name: string; encoding: string; encodingId: number; shape: number[]; chunk: number; offset: number; bytes: number }[];
  chunks: { file: string; bytes: number; sha256: string; tier: number }[];
  variants: { id: string; tiers: number[]; downloadBytes: number; residentBytes: number | null; contextBytes: Record<string, number> }[];
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
  static create(opts?: { wasm?: WasmSource }): Promise<Binding>;
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
