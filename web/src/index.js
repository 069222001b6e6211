// trillium: run small LLaMA-family / BitNet language models with WebAssembly SIMD.
//
//   import { Trillium } from 'trillium';
//   const model = await Trillium.load('https://example.com/packs/stories260K/');
//   for await (const piece of model.generate('Once upon a time', { maxTokens: 64 })) show(piece);
//   model.dispose();
import { Binding } from './binding.js';
import { TrilliumError } from './errors.js';
import { Model, GENERATE_DEFAULTS, splitSeed } from './model.js';
import { packSource, parseManifest, pickVariant, readManifest } from './pack.js';
import { Utf8Stream } from './utf8.js';

/**
 * Describe a pack from its manifest alone (no chunk is downloaded): the config
 * as the core parses it, a tensor summary, chunks and variants.
 */
export async function inspectPack(source, opts = {}) {
  const src = packSource(source);
  const b = await Binding.create({ wasm: opts.wasm });
  const { manifest, text, where } = await readManifest(b, src);
  const mt = b.allocString(text);
  let cfg = 0;
  try {
    cfg = b.withError(`${where}: config`, (err) => b.x.trlw_config_from_json(mt.ptr, mt.len, err));
    const config = JSON.parse(b.callString((buf, cap) => b.x.trlw_config_json(cfg, buf, cap), 512));
    const byEncoding = {};
    for (const t of manifest.tensors) {
      const e = (byEncoding[t.encoding] ??= { tensors: 0, bytes: 0, weights: 0 });
      e.tensors++;
      e.bytes += t.bytes;
      e.weights += t.shape.reduce((a, d) => a * d, 1);
    }
    const variants = manifest.variants.map((v) => ({
      ...v,
      contextBytesComputed: Object.fromEntries(
        [512, 2048, Math.min(config.max_seq_len, 4096)].map((n) => [n, b.x.trlw_ctx_memory_bytes(cfg, n, 0)]),
      ),
    }));
    return {
      pack: src.label ?? String(source),
      name: manifest.name,
      source: manifest.source,
      formatVersion: manifest.version,
      config,
      tokenizer: {
        kind: manifest.tokenizer.kind,
        bytes: manifest.tokenizer.bytes,
        bosId: manifest.tokenizer.bosId,
        eosId: manifest.tokenizer.eosId,
        chatTemplate: manifest.tokenizer.chatTemplate,
      },
      tensors: {
        count: manifest.tensors.length,
        bytes: manifest.tensors.reduce((s, t) => s + t.bytes, 0),
        byEncoding,
      },
      chunks: manifest.chunks,
      variants,
    };
  } catch (e) {
    if (e instanceof TrilliumError && e.code === 'CORE') e.code = 'BAD_PACK';
    throw e;
  } finally {
    if (cfg) b.x.trlw_config_free(cfg);
    b.free(mt.ptr);
  }
}

/** Entry point: `Trillium.load(pack, opts)`. */
export class Trillium {
  /** @returns {Promise<Model>} */
  static load(source, opts) {
    return Model.load(source, opts);
  }
  static inspect(source, opts) {
    return inspectPack(source, opts);
  }
}

export const load = Trillium.load;
export { Binding, Model, TrilliumError, Utf8Stream, GENERATE_DEFAULTS, parseManifest, pickVariant, splitSeed };
export default Trillium;
