// Facts JS needs from the tokenizer blob (docs/FORMAT.md "Tokenizer blob")
// that the core's API does not give: the text of control tokens (bos_token and
// eos_token for chat templates: trl_token_to_bytes returns nothing for them)
// and the NFC flag (the core does not normalize; callers do). The core has
// already validated the blob when this runs; the reads are bounds-checked anyway.

const HEADER = 48;
export const TOKF_NFC = 0x20;

/**
 * @param {Uint8Array} blob the tokenizer blob
 * @param {number[]} ids token ids whose pieces are wanted
 * @returns {{flags: number, nVocab: number, pieces: Map<number, string>}}
 */
export function readTokenizerBlob(blob, ids = []) {
  const out = { flags: 0, nVocab: 0, pieces: new Map() };
  if (blob.length < HEADER || String.fromCharCode(...blob.subarray(0, 4)) !== 'TRLT') return out;
  const dv = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  out.flags = dv.getUint32(8, true);
  const nVocab = dv.getUint32(12, true);
  const lenBytes = dv.getUint32(32, true);
  out.nVocab = nVocab;
  const want = new Set(ids.filter((i) => Number.isInteger(i) && i >= 0 && i < nVocab));
  if (!want.size) return out;
  let p = HEADER + nVocab; // the lengths section follows the types
  const lenEnd = p + lenBytes;
  const piecesStart = lenEnd;
  if (lenEnd > blob.length) return out;
  let off = 0;
  const dec = new TextDecoder('utf-8', { fatal: false });
  for (let id = 0; id < nVocab && p < lenEnd; id++) {
    let len = 0;
    let shift = 0;
    for (let k = 0; k < 5 && p < lenEnd; k++) {
      const b = blob[p++];
      len += (b & 0x7f) * 2 ** shift;
      shift += 7;
      if (!(b & 0x80)) break;
    }
    if (want.has(id)) {
      const s = piecesStart + off;
      if (s + len <= blob.length) out.pieces.set(id, dec.decode(blob.subarray(s, s + len)));
    }
    off += len;
  }
  return out;
}
