// The Node download cache: a directory (default $TRILLIUM_CACHE, else
// ~/.cache/trillium, honouring $XDG_CACHE_HOME).
//
//   chunks/<sha256>            verified chunks (renamed into place, never written in place)
//   chunks/<sha256>.partial    a download in progress or cut short: the first N bytes
//   manifests/<hash>.json      {"url": ..., "text": ...} per pack URL
//
// A partial file is trusted only as a prefix to resume from: the chunk built
// from it is hashed in the heap before use, and the file itself is hashed
// again before it is renamed into chunks/<sha256>.
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { checkSha, pieces } from '../cache.js';

export function defaultCacheDir(env = process.env) {
  if (env.TRILLIUM_CACHE) return resolve(env.TRILLIUM_CACHE);
  const base = env.XDG_CACHE_HOME ? resolve(env.XDG_CACHE_HOME) : join(homedir(), '.cache');
  return join(base, 'trillium');
}

const SLICE = 8 << 20;

export class DirStore {
  constructor(dir = defaultCacheDir()) {
    this.dir = resolve(dir);
    this.label = this.dir;
    this._ready = null;
  }

  _mk() {
    this._ready ??= Promise.all([
      mkdir(join(this.dir, 'chunks'), { recursive: true }),
      mkdir(join(this.dir, 'manifests'), { recursive: true }),
    ]).catch((e) => {
      this._ready = null;
      throw e;
    });
    return this._ready;
  }

  chunkPath(sha) {
    return join(this.dir, 'chunks', checkSha(sha));
  }
  partialPath(sha) {
    return join(this.dir, 'chunks', `${checkSha(sha)}.partial`);
  }
  _manifestPath(key) {
    return join(this.dir, 'manifests', `${createHash('sha256').update(key).digest('hex').slice(0, 32)}.json`);
  }

  async _atomicWrite(path, data) {
    await this._mk();
    const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    try {
      await writeFile(tmp, data);
      await rename(tmp, path);
    } catch (e) {
      await unlink(tmp).catch(() => {});
      throw e;
    }
  }

  async getManifest(key) {
    let j;
    try {
      j = JSON.parse(await readFile(this._manifestPath(key), 'utf8'));
    } catch {
      return null;
    }
    return j && j.url === key && typeof j.text === 'string' ? j.text : null;
  }

  async putManifest(key, text) {
    await this._atomicWrite(this._manifestPath(key), JSON.stringify({ url: key, savedAt: new Date().toISOString(), text }));
  }

  async _readFile(path, n, view, onBytes) {
    let fh;
    try {
      fh = await open(path, 'r');
    } catch (e) {
      if (e.code === 'ENOENT') return -1;
      throw e;
    }
    try {
      let pos = 0;
      while (pos < n) {
        const k = Math.min(SLICE, n - pos);
        const { bytesRead } = await fh.read(view(pos, k), 0, k, pos);
        if (bytesRead === 0) break;
        pos += bytesRead;
        onBytes?.(bytesRead);
      }
      return pos;
    } finally {
      await fh.close();
    }
  }

  async readChunk(sha, expected, view, onBytes) {
    const p = this.chunkPath(sha);
    let st;
    try {
      st = await stat(p);
    } catch {
      return false;
    }
    if (st.size !== expected) {
      await unlink(p).catch(() => {});
      return false;
    }
    return (await this._readFile(p, expected, view, onBytes)) === expected;
  }

  async partialSize(sha) {
    try {
      return (await stat(this.partialPath(sha))).size;
    } catch {
      return 0;
    }
  }

  async readPartial(sha, n, view, onBytes) {
    return Math.max(0, await this._readFile(this.partialPath(sha), n, view, onBytes));
  }

  async openWriter(sha, offset) {
    await this._mk();
    const path = this.partialPath(sha);
    const fh = await open(path, offset > 0 ? 'r+' : 'w').catch(async (e) => {
      if (e.code === 'ENOENT') return open(path, 'w');
      throw e;
    });
    let at = offset;
    await fh.truncate(offset);
    let chain = Promise.resolve();
    let closed = false;
    const w = {
      failed: null,
      write(piece) {
        if (w.failed || closed) return;
        const where = at;
        at += piece.length;
        chain = chain.then(async () => {
          if (w.failed) return;
          let off = 0;
          while (off < piece.length) {
            const { bytesWritten } = await fh.write(piece, off, piece.length - off, where + off);
            off += bytesWritten;
          }
        }).catch((e) => {
          w.failed ??= e;
        });
      },
      async restart() {
        await chain;
        at = 0;
        await fh.truncate(0).catch((e) => {
          w.failed ??= e;
        });
      },
      async close() {
        if (closed) return;
        closed = true;
        await chain;
        await fh.close().catch(() => {});
        // A partial file with a hole (a failed write) is no prefix to resume from.
        if (w.failed) await unlink(path).catch(() => {});
      },
    };
    return w;
  }

  async _hashFile(path, n) {
    const h = createHash('sha256');
    let fh;
    try {
      fh = await open(path, 'r');
    } catch {
      return null;
    }
    try {
      if ((await fh.stat()).size !== n) return null;
      const buf = Buffer.allocUnsafe(Math.min(SLICE, Math.max(1, n)));
      let pos = 0;
      while (pos < n) {
        const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, n - pos), pos);
        if (bytesRead === 0) return null;
        h.update(buf.subarray(0, bytesRead));
        pos += bytesRead;
      }
    } finally {
      await fh.close();
    }
    return h.digest('hex');
  }

  async commit(sha, expected, bytes) {
    await this._mk();
    const part = this.partialPath(sha);
    const dest = this.chunkPath(sha);
    if ((await this._hashFile(part, expected)) === sha) {
      await rename(part, dest);
      return;
    }
    // The partial file is not the verified bytes (a failed write, another
    // process downloading the same chunk): write the heap's copy instead.
    await unlink(part).catch(() => {});
    const tmp = `${dest}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    const fh = await open(tmp, 'w');
    try {
      let pos = 0;
      for (const p of pieces(bytes, expected)) {
        let off = 0;
        while (off < p.length) {
          const { bytesWritten } = await fh.write(p, off, p.length - off, pos + off);
          off += bytesWritten;
        }
        pos += p.length;
      }
    } catch (e) {
      await fh.close().catch(() => {});
      await unlink(tmp).catch(() => {});
      throw e;
    }
    await fh.close();
    await rename(tmp, dest);
  }

  async discard(sha) {
    await unlink(this.chunkPath(sha)).catch(() => {});
    await unlink(this.partialPath(sha)).catch(() => {});
  }

  async clear() {
    await rm(this.dir, { recursive: true, force: true });
    this._ready = null;
  }
}
