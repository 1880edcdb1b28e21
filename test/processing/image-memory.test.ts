/**
 * Image decode memory is bounded in bytes, not only in pixels: files under the pixel limit that
 * libvips must decode whole (an interlaced 16-bit PNG, a progressive JPEG, 9999×10000, under 1 MB
 * each) neither exhaust the worker's memory one at a time nor together. Measured from outside: the
 * peak RSS (VmHWM) of a spawned `mediary worker` process offered all five at once.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { startTestServer, testEnv, type TestServer } from '../helpers/server.ts';
import { upload, waitFor } from './helpers.ts';

const MiB = 1024 * 1024;
/**
 * Far above what the bounded worker reached here (~0.75 GiB: one JPEG decoding at a time), far
 * below the unbounded run (~2.1 GiB: all five decoding at once).
 */
const PEAK_RSS_BOUND = 1280 * MiB;

let t: TestServer;
let png16: Buffer;
let progressive: Buffer;

before(async () => {
  t = await startTestServer({ WORKER_ENABLED: 'false' });
  const flat = () => sharp({ create: { width: 9999, height: 10000, channels: 3, background: '#7f8081' } });
  [png16, progressive] = await Promise.all([
    flat().toColourspace('rgb16').png({ progressive: true, compressionLevel: 9 }).toBuffer(),
    flat().jpeg({ progressive: true, quality: 50 }).toBuffer(),
  ]);
});
after(async () => {
  await t?.close();
});

/** Peak resident set size of a process, from /proc (bytes). */
async function peakRss(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = /^VmHWM:\s+(\d+) kB$/m.exec(status);
  assert.ok(kb, 'VmHWM in /proc/PID/status');
  return Number(kb[1]) * 1024;
}

describe('image decode memory: five bombs offered at once to one worker', () => {
  let user: { auth: Record<string, string> };
  const pngs: string[] = [];
  const jpegs: string[] = [];
  let child: ReturnType<typeof spawn> | undefined;
  before(async () => {
    user = await t.user('memory-bombs');
    for (let i = 0; i < 3; i++) pngs.push((await upload(t, user.auth, png16, 'image/png')).id);
    for (let i = 0; i < 2; i++) jpegs.push((await upload(t, user.auth, progressive, 'image/jpeg')).id);
    // The jobs wait in the queue; one worker process with room for all five at once.
    const env = await testEnv(t.dataDir, {
      DATABASE_URL: t.databaseUrl,
      PROCESSING_CONCURRENCY: '5',
    });
    child = spawn(process.execPath, ['bin/mediary.mjs', 'worker'], {
      env: { ...process.env, ...env },
      stdio: 'ignore',
    });
  });
  after(() => {
    child?.kill('SIGKILL');
  });

  test('the bombs are small files: an interlaced 16-bit PNG and a progressive JPEG', async () => {
    assert.ok(png16.length < 1024 * 1024 && progressive.length < 1024 * 1024, 'small files');
    const meta = await sharp(png16).metadata();
    assert.deepEqual([meta.depth, meta.isProgressive], ['ushort', true]);
  });

  test('interlaced 16-bit PNGs fail image_too_large', async () => {
    for (const id of pngs) {
      const st = await waitFor(t, user.auth, id, ['READY', 'FAILED'], 180_000);
      assert.deepEqual([st.status, st.error?.code], ['FAILED', 'image_too_large']);
      assert.match(st.error.message, /9999×10000 16-bit interlaced image would take about \d+ MiB/);
    }
  });

  test('progressive JPEGs take turns and become READY', async () => {
    for (const id of jpegs) {
      const st = await waitFor(t, user.auth, id, ['READY', 'FAILED'], 180_000);
      assert.equal(st.status, 'READY', JSON.stringify(st.error));
    }
  });

  test('the worker stays alive with its peak RSS bounded', async (ctx) => {
    assert.equal(child!.exitCode, null, 'the worker is alive');
    const peak = await peakRss(child!.pid!);
    ctx.diagnostic(`worker peak RSS ${Math.round(peak / MiB)} MiB`);
    assert.ok(
      peak < PEAK_RSS_BOUND,
      `worker peak RSS ${Math.round(peak / MiB)} MiB < ${PEAK_RSS_BOUND / MiB} MiB`,
    );
  });
});
