import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, test } from 'node:test';
import { durableFileStream, skip } from '../../src/storage/durable-file.ts';

let dir: string;
before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'mediary-durable-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const openFds = () => readdirSync('/proc/self/fd').length;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** `count` chunks of `size` bytes, each different, produced as fast as the consumer takes them. */
function* chunks(count: number, size: number): Generator<Buffer> {
  for (let i = 0; i < count; i++) yield Buffer.alloc(size, i % 251);
}

describe('durableFileStream', () => {
  test('writes every byte in order, in batches, with background flushes along the way', async () => {
    const file = path.join(dir, 'big');
    const out = durableFileStream(file, { flushEvery: 4 * 1024 * 1024 });
    const expected = createHash('sha256');
    const source = Readable.from(
      (function* () {
        for (const c of chunks(300, 65_536)) {
          expected.update(c);
          yield c;
        }
      })(),
    );
    await pipeline(source, out);
    assert.ok(out.flushes >= 2, `flushes: ${out.flushes}`);
    assert.equal(sha(await readFile(file)), expected.digest('hex'));
  });

  test('never overwrites: an existing file is an error and stays as it was', async () => {
    const file = path.join(dir, 'exists');
    await writeFile(file, 'keep me');
    await assert.rejects(pipeline(Readable.from([Buffer.from('new')]), durableFileStream(file)), {
      code: 'EEXIST',
    });
    assert.equal(await readFile(file, 'utf8'), 'keep me');
  });

  test('a source that fails mid-way closes the file (no descriptor left open)', async () => {
    const before = openFds();
    const file = path.join(dir, 'broken');
    // Slow enough that writes (and so flushes) happen before the failure.
    const failing = Readable.from(
      (async function* () {
        for (const c of chunks(40, 65_536)) {
          await sleep(1);
          yield c;
        }
        throw new Error('client went away');
      })(),
    );
    const out = durableFileStream(file, { flushEvery: 65_536 });
    await assert.rejects(pipeline(failing, out), /went away/);
    if (!out.closed) await new Promise((resolve) => out.once('close', resolve));
    assert.ok(out.flushes >= 1, 'a flush was running or done when the source failed');
    assert.equal(openFds(), before);
  });

  test('skip drops whole and partial buffers from the front (short writes)', () => {
    const bufs = [Buffer.from('abc'), Buffer.from('defg'), Buffer.from('h')];
    assert.deepEqual(skip(bufs, 0).map(String), ['abc', 'defg', 'h']);
    assert.deepEqual(skip(bufs, 2).map(String), ['c', 'defg', 'h']);
    assert.deepEqual(skip(bufs, 3).map(String), ['defg', 'h']);
    assert.deepEqual(skip(bufs, 7).map(String), ['h']);
    assert.deepEqual(skip(bufs, 8), []);
  });
});
