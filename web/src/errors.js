// Every error the package throws on purpose is a TrilliumError with a stable
// `code`, so callers (and the CLI) can tell a bad pack from a bug.

/**
 * Codes:
 *   BAD_PACK         manifest or chunk metadata is wrong (names the file and field)
 *   UNSUPPORTED_VERSION  the pack needs a newer (or is an unknown) format version
 *   MISSING_FILE     a manifest or chunk file could not be found
 *   SIZE_MISMATCH    a chunk's size differs from the manifest
 *   SHA_MISMATCH     a chunk's sha256 differs from the manifest
 *   IO               reading or fetching failed for another reason
 *   CORE             the inference core refused something (its message is kept)
 *   NO_MEMORY        the wasm heap could not hold what was asked
 *   BAD_ARGUMENT     an API argument is invalid
 *   BUSY             a generation is already running on this model
 *   DISPOSED         the model was disposed
 *   WASM             the WebAssembly module could not be loaded
 */
export class TrilliumError extends Error {
  /**
   * @param {string} code
   * @param {string} message
   * @param {{file?: string, field?: string, cause?: unknown, status?: number}} [extra]
   */
  constructor(code, message, extra = {}) {
    super(message, extra.cause !== undefined ? { cause: extra.cause } : undefined);
    this.name = 'TrilliumError';
    this.code = code;
    if (extra.file !== undefined) this.file = extra.file;
    if (extra.field !== undefined) this.field = extra.field;
    if (extra.status !== undefined) this.status = extra.status;
  }
}

/** A bad-pack error that names the file and the field, e.g. "manifest.json: tensors[3].offset: ...". */
export function packError(file, field, what, code = 'BAD_PACK') {
  const where = field ? `${file}: ${field}` : file;
  return new TrilliumError(code, `${where}: ${what}`, { file, field });
}
