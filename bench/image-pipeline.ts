/**
 * Image pipeline benchmark (one run): a 12 MP JPEG → the four WebP variants.
 *
 *   node --import tsx bench/image-pipeline.ts        (npm run bench:image)
 *
 * Compares images/second through the whole pipeline (queue + storage + processing + database,
 * one worker, concurrency 1) with (a) raw sharp decoding once and deriving the four sizes, and
 * (b) four separate sharp pipelines from the original. Also measures job pickup latency (enqueue →
 * job start) with an idle worker. Medians of several repetitions, all in this run.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import sharp from 'sharp';
import { startServer } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/log.ts';
import { VARIANT_SIZES } from '../src/processing/image-job.ts';
import { startWorker } from '../src/processing/runtime.ts';
import { LocalObjectStore } from '../src/storage/local.ts';
import { UrlSigner } from '../src/storage/signing.ts';
import { fixture } from '../test/helpers/files.ts';
import { JWT_SECRET, tempDir, testEnv } from '../test/helpers/server.ts';
import { bigJpeg, upload, waitFor } from '../test/processing/helpers.ts';
import { mintUserToken } from '../src/auth/principals.ts';

const REPS = 5;
const BATCH = 4;
const PICKUPS = 20;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.ceil((p / 100) * xs.length) - 1]!;

async function rawDecodeOnce(input: Buffer) {
  const largest = Math.max(...VARIANT_SIZES);
  const base = await sharp(input)
    .autoOrient()
    .resize(largest, largest, { fit: 'inside', withoutEnlargement: true })
    .raw()
    .toBuffer({ resolveWithObject: true });
  const raw = { raw: { width: base.info.width, height: base.info.height, channels: base.info.channels } };
  await Promise.all(
    VARIANT_SIZES.map((s) =>
      sharp(base.data, raw)
        .resize(s, s, { fit: 'inside', withoutEnlargement: true })
        .webp({ quality: 80 })
        .toBuffer(),
    ),
  );
}

async function fourPipelines(input: Buffer) {
  await Promise.all(
    VARIANT_SIZES.map((s) =>
      sharp(input)
        .autoOrient()
        .resize(s, s, { fit: 'inside', withoutEnlargement: true })
        .webp({ quality: 80 })
        .toBuffer(),
    ),
  );
}

async function rate(fn: () => Promise<void>): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < BATCH; i++) await fn();
  return BATCH / ((performance.now() - t0) / 1000);
}

async function main() {
  const jpeg = await bigJpeg(fixture('gps/DSCN0010.jpg'), 4000, 3000);
  console.log(
    `input: 4000×3000 JPEG (12 MP), ${(jpeg.length / 1e6).toFixed(1)} MB; ${os.cpus().length} CPUs`,
  );

  const dataDir = await tempDir('mediary-bench-');
  const env = await testEnv(dataDir, { WORKER_ENABLED: 'false', LOG_LEVEL: 'silent' });
  const config = loadConfig(env);
  const logger = createLogger('silent', 2);
  const server = await startServer(config, logger);
  const t = {
    server,
    config,
    dataDir,
    base: config.publicUrl,
    api: (p: string) => `${config.publicUrl}/api/v1${p}`,
  } as unknown as Parameters<typeof upload>[0];
  const auth = { authorization: `Bearer ${await mintUserToken(JWT_SECRET, 'bench')}` };
  const store = new LocalObjectStore(config.storage.dir, new UrlSigner('x'.repeat(32)), config.publicUrl);
  const processing = { ...config.processing, concurrency: 1 };
  const results: Record<string, unknown> = {};
  try {
    // Warm-up (sharp, the JIT, the database).
    await rawDecodeOnce(jpeg);
    await fourPipelines(jpeg);

    const full: number[] = [];
    const a: number[] = [];
    const b: number[] = [];
    for (let rep = 0; rep < REPS; rep++) {
      // Whole pipeline: BATCH completed uploads wait in the queue; one worker drains them.
      const ids: string[] = [];
      for (let i = 0; i < BATCH; i++) ids.push((await upload(t, auth, jpeg)).id);
      const t0 = performance.now();
      const worker = await startWorker({
        pool: server.database.pool,
        queue: server.queue,
        store,
        config: processing,
        logger,
      });
      for (const id of ids) {
        const st = await waitFor(t, auth, id, ['READY', 'FAILED'], 120_000);
        if (st.status !== 'READY') throw new Error(`bench media ${id} ended ${st.status}`);
      }
      full.push(BATCH / ((performance.now() - t0) / 1000));
      await worker.stop();
      a.push(await rate(() => rawDecodeOnce(jpeg)));
      b.push(await rate(() => fourPipelines(jpeg)));
    }

    // Pickup latency: an idle worker, one small job at a time.
    const worker = await startWorker({
      pool: server.database.pool,
      queue: server.queue,
      store,
      config: processing,
      logger,
    });
    const small = fixture('cameras/Canon_40D.jpg');
    const pickups: number[] = [];
    try {
      for (let i = 0; i < PICKUPS; i++) {
        await sleep(150); // idle: the worker is waiting, not polling right now
        const { id } = await upload(t, auth, small);
        await waitFor(t, auth, id, ['READY', 'FAILED']);
        const { rows } = await server.database.pool.query<{ ms: string }>(
          `SELECT extract(epoch FROM started_on - created_on) * 1000 AS ms FROM pgboss.job
           WHERE name = 'media-process' AND data->>'mediaId' = $1`,
          [id],
        );
        pickups.push(Number(rows[0]!.ms));
      }
    } finally {
      await worker.stop();
    }

    const mFull = median(full);
    const mA = median(a);
    const mB = median(b);
    Object.assign(results, {
      input: { width: 4000, height: 3000, bytes: jpeg.length },
      cpus: os.cpus().length,
      repetitions: REPS,
      batch: BATCH,
      imagesPerSecond: { fullPipeline: mFull, rawDecodeOnce: mA, fourSeparatePipelines: mB },
      samples: { fullPipeline: full, rawDecodeOnce: a, fourSeparatePipelines: b },
      ratios: {
        fullVsDecodeOnce: mFull / mA,
        fullVsFourPipelines: mFull / mB,
        goals: { fullVsDecodeOnce: 0.85, fullVsFourPipelines: 1.5 },
      },
      pickupLatencyMs: {
        median: median(pickups),
        p95: pct(pickups, 95),
        samples: pickups,
        pollIntervalMs: processing.pollIntervalMs,
      },
    });
    const row = (k: string, v: string, goal = '') => console.log(`${k.padEnd(44)}${v.padStart(12)}  ${goal}`);
    console.log('');
    row('images/s, whole pipeline (queue+store+db)', mFull.toFixed(2));
    row('images/s, (a) raw sharp, decode once', mA.toFixed(2));
    row('images/s, (b) four separate sharp pipelines', mB.toFixed(2));
    row(
      'ratio whole / (a)',
      (mFull / mA).toFixed(2),
      `goal ≥ 0.85 ${mFull / mA >= 0.85 ? 'met' : 'NOT met'}`,
    );
    row('ratio whole / (b)', (mFull / mB).toFixed(2), `goal ≥ 1.5 ${mFull / mB >= 1.5 ? 'met' : 'NOT met'}`);
    row(
      'pickup latency median (ms)',
      median(pickups).toFixed(1),
      `goal < 100 ${median(pickups) < 100 ? 'met' : 'NOT met'}`,
    );
    row('pickup latency p95 (ms)', pct(pickups, 95).toFixed(1));
    await mkdir(path.join(import.meta.dirname, 'results'), { recursive: true });
    await writeFile(
      path.join(import.meta.dirname, 'results', 'image-pipeline.json'),
      JSON.stringify(results, null, 2) + '\n',
    );
    console.log('\nwritten: bench/results/image-pipeline.json');
  } finally {
    await server.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

await main();
