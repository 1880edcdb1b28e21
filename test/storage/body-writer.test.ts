/**
 * Request bodies through the pooled buffers (src/storage/buffer-pool.ts, body-writer.ts) and the
 * local store's put/putPart on top of them: the right bytes and hash on disk for sizes around the
 * buffer and chunk boundaries, no bytes mixed between uploads sharing the pool, and every buffer
 * back in the pool — with nothing published — when a body fails or is too long.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { open, readdir, readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { setImmediate as yieldTurn } from 'node:timers/promises';
import { after, describe, test } from 'node:test';
import { AppError } from '../../src/errors.ts';
import { writeBody } from '../../src/storage/body-writer.ts';
import { BufferPool } from '../../src/storage/buffer-pool.ts';
import { LocalObjectStore } from '../../src/storage/local.ts';
import { tempDir } from '../helpers/server.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** `data` as a body of `chunk`-byte pieces, yielding to the event loop between pieces. */
function body(data: Buffer, chunk = 64 * KiB, failAfter?: number): Readable {
  return Readable.from(
    (async function* () {
      for (let at = 0; at < data.length; at += chunk) {
        if (failAfter !== undefined && at >= failAfter) throw new Error('client went away');
        await yieldTurn();
        yield data.subarray(at, Math.min(at + chunk, data.length));
      }
    })(),
    { objectMode: false },
  );
}

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function scratch(): Promise<string> {
  const d = await tempDir('mediary-body-writer-');
  dirs.push(d);
  return d;
}

describe('BufferPool', () => {
  test('a released buffer is handed out again; no more than maxIdle are kept', () => {
    const pool = new BufferPool(1024, 2);
    const a = pool.acquire();
    const b = pool.acquire();
    assert.notEqual(a, b);
    assert.equal(a.length, 1024);
    assert.notEqual(a.buffer, b.buffer, 'each buffer has its own memory');
    pool.release(a);
    assert.equal(pool.acquire(), a, 'reused, not allocated');
    assert.equal(pool.allocated, 2);
    const c = pool.acquire();
    pool.release(a);
    pool.release(b);
    pool.release(c);
    assert.equal(pool.idle, 2, 'idle buffers bounded');
    assert.equal(pool.inUse, 0);
  });

  test('a buffer cannot be released twice, nor one the pool did not lend', () => {
    const pool = new BufferPool(16, 4);
    const a = pool.acquire();
    pool.release(a);
    assert.throws(() => pool.release(a), /released twice/);
    assert.throws(() => pool.release(Buffer.alloc(16)), /not from this pool/);
    assert.throws(() => new BufferPool(0, 1), /bad buffer size/);
  });
});

describe('writeBody', () => {
  const sizes = [0, 1, 999, 1000, 1001, 2000, 4 * 1000 + 17];
  for (const size of sizes) {
    test(`${size} bytes in 333-byte chunks through 1000-byte buffers: same bytes, hashed once in order`, async () => {
      const dir = await scratch();
      const pool = new BufferPool(1000, 4);
      const data = randomBytes(size);
      const file = path.join(dir, 'f');
      const fh = await open(file, 'wx');
      const hash = createHash('sha256');
      const written = await writeBody(body(data, 333), fh, pool, {
        limit: size,
        tooLarge: () => new Error('too large'),
        update: (b) => hash.update(b),
      }).finally(() => fh.close());
      assert.equal(written, size);
      assert.deepEqual(await readFile(file), data);
      assert.equal(hash.digest('hex'), sha256(data));
      assert.equal(pool.inUse, 0, 'buffers returned');
      assert.ok(pool.allocated <= 2, `at most two buffers per upload (${pool.allocated})`);
    });
  }

  test('uploads sharing one pool get their own bytes, and reuse the buffers', async () => {
    const dir = await scratch();
    const pool = new BufferPool(4096, 16);
    const run = async (round: number) =>
      Promise.all(
        Array.from({ length: 6 }, async (_, i) => {
          const data = randomBytes(40_000 + i * 777 + round);
          const file = path.join(dir, `r${round}-${i}`);
          const fh = await open(file, 'wx');
          const hash = createHash('sha256');
          await writeBody(body(data, 1000 + i * 111), fh, pool, {
            limit: data.length,
            tooLarge: () => new Error('too large'),
            update: (b) => hash.update(b),
          }).finally(() => fh.close());
          assert.deepEqual(await readFile(file), data, `upload ${i} of round ${round}`);
          assert.equal(hash.digest('hex'), sha256(data));
        }),
      );
    await run(0);
    const afterFirst = pool.allocated;
    assert.ok(afterFirst <= 12, `two buffers per concurrent upload at most (${afterFirst})`);
    await run(1);
    await run(2);
    assert.equal(pool.allocated, afterFirst, 'later rounds only reuse');
    assert.equal(pool.inUse, 0);
  });

  test('a body that fails or runs long: the error, and every buffer back', async () => {
    const dir = await scratch();
    const pool = new BufferPool(1000, 4);
    const data = randomBytes(10_000);
    for (const [name, b, limit, expected] of [
      ['fails', body(data, 700, 5000), data.length, /client went away/],
      ['too long', body(data, 700), data.length - 1, /too large/],
    ] as const) {
      const fh = await open(path.join(dir, name), 'wx');
      await assert.rejects(
        writeBody(b, fh, pool, { limit, tooLarge: () => new Error('too large'), update: () => undefined }),
        expected,
      );
      await fh.close();
      assert.equal(pool.inUse, 0, name);
      assert.ok(b.destroyed, `${name}: the body is not read further`);
    }
  });
});

describe('LocalObjectStore put through pooled buffers', () => {
  const store = async () => {
    const root = await scratch();
    return { root, store: new LocalObjectStore(root, { signedGet: () => 'unused' }) };
  };
  const expectOf = (data: Buffer) => ({
    contentType: 'video/mp4',
    bytes: data.length,
    sha256: sha256(data),
    exclusive: true,
  });

  for (const size of [1, MiB - 1, MiB, MiB + 1, 3 * MiB + 12_345]) {
    test(`${size} bytes (64 KiB and 7,777-byte chunks): the right bytes and sha256`, async () => {
      const { root, store: s } = await store();
      for (const chunk of [64 * KiB, 7777]) {
        const data = randomBytes(size);
        const key = `m/${size}-${chunk}.bin`;
        assert.deepEqual(await s.put(key, body(data, chunk), expectOf(data)), {
          size,
          sha256: sha256(data),
        });
        assert.deepEqual(await readFile(path.join(root, key)), data);
      }
      assert.deepEqual(await readdir(path.join(root, '.tmp')), [], 'no temp file left');
    });
  }

  test('concurrent puts into one store keep their own bytes', async () => {
    const { root, store: s } = await store();
    const datas = Array.from({ length: 5 }, (_, i) => randomBytes(2 * MiB + 1000 * i + 1));
    await Promise.all(datas.map((d, i) => s.put(`m/c${i}.bin`, body(d, 60_000 + i), expectOf(d))));
    for (const [i, d] of datas.entries()) {
      assert.equal(sha256(await readFile(path.join(root, `m/c${i}.bin`))), sha256(d), `upload ${i}`);
    }
  });

  test('an aborted, a too long and a wrong-hash upload leave nothing, half-written or whole', async () => {
    const { root, store: s } = await store();
    const data = randomBytes(3 * MiB + 5);
    await assert.rejects(
      s.put('m/a.bin', body(data, 64 * KiB, 2 * MiB + 64 * KiB), expectOf(data)),
      /went away/,
    );
    await assert.rejects(
      s.put('m/a.bin', body(data), { ...expectOf(data), bytes: data.length - 1 }),
      (err: unknown) => err instanceof AppError && err.code === 'upload_too_large',
    );
    await assert.rejects(
      s.put('m/a.bin', body(data), { ...expectOf(data), sha256: 'a'.repeat(64) }),
      (err: unknown) => err instanceof AppError && err.code === 'checksum_mismatch',
    );
    await assert.rejects(stat(path.join(root, 'm/a.bin')), { code: 'ENOENT' });
    assert.deepEqual(await readdir(path.join(root, '.tmp')), [], 'no temp file left');
    // The same key still takes the whole upload afterwards.
    await s.put('m/a.bin', body(data), expectOf(data));
    assert.equal(sha256(await readFile(path.join(root, 'm/a.bin'))), sha256(data));
  });
});
