import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { AppError } from '../errors.ts';
import type { UrlSigner } from './signing.ts';
import {
  assertSafeKey,
  type ByteRange,
  type ObjectStat,
  type ObjectStore,
  type PutExpectation,
  type PutResult,
  type SignedGetOptions,
} from './types.ts';

/** Resource name a signed local-store download URL covers. */
export const storageResource = (key: string) => `storage/${key}`;

/**
 * Objects as files under one directory. Writes go to `.tmp/` and are renamed into place only
 * after the length and hash check out (and after fsync), so a reader never sees a partial object.
 * Downloads are served by the API itself through HMAC-signed URLs.
 */
export class LocalObjectStore implements ObjectStore {
  readonly backend = 'local' as const;
  readonly capabilities = {
    presignedPut: false,
    enforcesLength: true,
    enforcesContentType: true,
    enforcesChecksum: true,
  };
  private readonly tmpDir: string;

  constructor(
    private readonly root: string,
    private readonly signer: UrlSigner,
    private readonly publicUrl: string,
  ) {
    this.tmpDir = path.join(root, '.tmp');
  }

  private pathFor(key: string): string {
    assertSafeKey(key);
    const full = path.resolve(this.root, key);
    if (!full.startsWith(this.root + path.sep)) throw new Error(`storage key escapes the root: ${key}`);
    return full;
  }

  async put(key: string, body: Readable, expect: PutExpectation): Promise<PutResult> {
    const final = this.pathFor(key);
    await mkdir(this.tmpDir, { recursive: true });
    const tmp = path.join(this.tmpDir, randomUUID());
    const hash = createHash('sha256');
    let size = 0;
    const meter = new Transform({
      transform(chunk: Buffer, _enc, done) {
        size += chunk.length;
        if (size > expect.bytes) {
          done(
            new AppError('upload_too_large', `More than the declared ${expect.bytes} bytes were sent.`, {
              declaredBytes: expect.bytes,
            }),
          );
          return;
        }
        hash.update(chunk);
        done(null, chunk);
      },
    });
    try {
      await pipeline(body, meter, createWriteStream(tmp, { flags: 'wx', mode: 0o640 }));
      await fsync(tmp);
      if (size < expect.bytes) {
        throw new AppError('upload_incomplete', `Expected ${expect.bytes} bytes, received ${size}.`, {
          expectedBytes: expect.bytes,
          receivedBytes: size,
        });
      }
      const sha256 = hash.digest('hex');
      if (expect.sha256 !== undefined && sha256 !== expect.sha256) {
        throw new AppError('checksum_mismatch', `Expected sha256 ${expect.sha256}, received ${sha256}.`, {
          expectedSha256: expect.sha256,
          actualSha256: sha256,
        });
      }
      await mkdir(path.dirname(final), { recursive: true });
      await rename(tmp, final);
      await fsync(path.dirname(final));
      return { size, sha256 };
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }

  async get(key: string, range?: ByteRange): Promise<Readable | undefined> {
    try {
      const fh = await open(this.pathFor(key), 'r');
      return fh.createReadStream(range ? { start: range.start, end: range.end } : {});
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  async stat(key: string): Promise<ObjectStat | undefined> {
    try {
      const s = await stat(this.pathFor(key));
      if (!s.isFile()) return undefined;
      // Objects are immutable once written; size + mtime identify the bytes (as nginx's ETag does).
      return {
        size: s.size,
        etag: `"${s.size.toString(16)}-${Math.floor(s.mtimeMs).toString(16)}"`,
        lastModified: s.mtime,
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  async delete(key: string): Promise<void> {
    await rm(this.pathFor(key), { force: true });
  }

  signedGetUrl(key: string, opts: SignedGetOptions): Promise<string> {
    assertSafeKey(key);
    const expires = Math.floor(Date.now() / 1000) + opts.expiresInSeconds;
    const params = { ct: opts.contentType, cd: opts.contentDisposition };
    const sig = this.signer.sign('GET', storageResource(key), expires, params);
    const q = new URLSearchParams({ expires: String(expires), ...params, sig });
    const encodedKey = key.split('/').map(encodeURIComponent).join('/');
    return Promise.resolve(`${this.publicUrl}/api/v1/storage/${encodedKey}?${q.toString()}`);
  }

  uri(key: string): string {
    return this.pathFor(key);
  }

  /** Removes temporary files older than `olderThanMs` (left by a process killed mid-upload). */
  async sweepTemp(olderThanMs: number): Promise<number> {
    let removed = 0;
    let names: string[];
    try {
      names = await readdir(this.tmpDir);
    } catch {
      return 0;
    }
    for (const name of names) {
      const file = path.join(this.tmpDir, name);
      const s = await stat(file).catch(() => undefined);
      if (s && Date.now() - s.mtimeMs > olderThanMs) {
        await rm(file, { force: true });
        removed++;
      }
    }
    return removed;
  }
}

/** fsync through a fresh descriptor: Linux flushes the inode's dirty pages whichever fd asks. */
async function fsync(file: string): Promise<void> {
  const fh = await open(file, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
