/**
 * Where the image pipeline's CPU goes beside (a) raw sharp decode-once, step by step (issue 22 §4).
 *
 *   node --import tsx bench/image-steps.ts        (npm run bench:image-steps)
 *   BENCH_REPS=5 BENCH_BATCH=12 BENCH_STEP_IMAGES=8 BENCH_OUT=steps.json npm run bench:image-steps
 *
 * On bench:image's 12 MP JPEG, each step alone, one after the other, `BENCH_REPS` rounds (medians),
 * as CPU time, not wall time: this process (`process.cpuUsage`, all threads; its main thread from
 * /proc/self/task/PID/schedstat) and this run's own embedded Postgres (its processes' schedstat):
 *
 * - in this process, `BENCH_STEP_IMAGES` images per round: reading the original from the local
 *   store (the job's `readOriginal`, into a pooled buffer) with its SHA-256; file-type; the EXIF
 *   adapter; sharp `metadata()`; the pipeline's `renderVariants` and (a)'s decode-once, one image
 *   at a time in turn (their difference is the metadata, colourspace and 64 px preview share,
 *   directly; at loads above ≈ 4 it does not resolve, so the sum takes its parts measured alone:
 *   `metadata()`, the preview, and the decode to 1200 px with and without `toColourspace('srgb')`,
 *   in turn);
 *   thumbhash of the preview; the four variant writes (`putVariant` → `LocalObjectStore.putBuffer`,
 *   fsync) into the service's store directory;
 * - the database work, through the real code paths of the service started in this process,
 *   `BENCH_BATCH` images per round: the real `POST /media/:id/complete` requests (all at once, as
 *   bench:image sends them; no worker running), the same requests sent by the same client to a
 *   trivial server in another process (the bench client's own cost), and a real queue worker
 *   (`Worker` with the runtime's start hook) whose handler does only the job's database part
 *   (READY through `pgRecords`, with the variant records a real job writes): claim + start +
 *   complete transactions and READY. A second worker runs the real `ImageJob` with only the render
 *   replaced by the render's result (everything but sharp), as a check of the sum of its parts;
 * - a short whole pipeline (real worker, 250 ms status poll, as bench:image) against (a) at the
 *   worker's concurrency, alternating, and the idle service's CPU per second.
 *
 * The SUM of the steps is printed against the gap (whole − (a), process + Postgres, per round).
 * Windows of the database steps end `TAIL_MS` after their last answer (asynchronous follow-ups such
 * as the webhook settle after a NOTIFY fall inside); the idle rate over that tail is subtracted.
 */
import { rm } from 'node:fs/promises';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileTypeFromBuffer } from 'file-type';
import sharp from 'sharp';
import { rgbaToThumbHash } from 'thumbhash';
import { createWorkerPool, startServer } from '../src/app.ts';
import { mintUserToken } from '../src/auth/principals.ts';
import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/log.ts';
import { exifrReader } from '../src/infra/imaging/exif.ts';
import { sharpImaging } from '../src/infra/imaging/sharp-imaging.ts';
import { variantKey } from '../src/media/layout.ts';
import { findMedia, type MediaRecord } from '../src/media/repo.ts';
import { BufferPool } from '../src/processing/buffer-pool.ts';
import { ImageJob } from '../src/processing/image-job.ts';
import { putVariant, readOriginal, VARIANT_SIZES } from '../src/processing/job-kit.ts';
import type { Imaging, ProcessJob, ProcessingRecords, RenderResult } from '../src/processing/ports.ts';
import { pgRecords } from '../src/processing/records.ts';
import * as repo from '../src/processing/repo.ts';
import { startWorker } from '../src/processing/runtime.ts';
import { Worker as JobWorker, type JobHandler } from '../src/processing/worker.ts';
import { PublicUrls } from '../src/http/urls.ts';
import { LocalObjectStore } from '../src/storage/local.ts';
import { UrlSigner } from '../src/storage/signing.ts';
import { fixture, sha256 } from '../test/helpers/files.ts';
import { call, freePort, JWT_SECRET, tempDir, testEnv } from '../test/helpers/server.ts';
import { bigJpeg } from '../test/processing/helpers.ts';
import { report, startHelper, stat, type BenchRow } from './lib/common.ts';
import {
  batchStatus,
  completeAll,
  completeAndWait,
  postgresPreciseMs,
  prepareUploads,
  rawDecodeOnce,
  schedMs,
} from './lib/image-bench.ts';

const REPS = Number(process.env.BENCH_REPS ?? 5);
/** Images per database step and per whole-pipeline / (a) batch. */
const BATCH = Number(process.env.BENCH_BATCH ?? 12);
/** Images per in-process step and round. */
const STEP_IMAGES = Number(process.env.BENCH_STEP_IMAGES ?? 8);
const POLL_MS = 250; // bench:image's status poll
const TAIL_MS = 200;
const IDLE_MS = 2000;
/**
 * A pause before each in-process measurement: what the previous step left running on other threads
 * (V8's concurrent GC of the render's buffers, libvips freeing its caches) ends outside the window.
 */
const SETTLE_MS = 50;

const median = (xs: number[]) => stat(xs).median;

/** CPU ms so far: this process (all threads), its main thread, this run's Postgres. */
interface Cpu {
  proc: number;
  main: number;
  pg: number;
}
function cpuNow(): Cpu {
  const u = process.cpuUsage();
  return { proc: (u.user + u.system) / 1000, main: schedMs(process.pid), pg: postgresPreciseMs() };
}

/** The CPU and wall time (ms) of `fn`. */
async function measure(fn: () => Promise<unknown>): Promise<Cpu & { wall: number }> {
  const c0 = cpuNow();
  const t0 = performance.now();
  await fn();
  const wall = performance.now() - t0;
  const c1 = cpuNow();
  return { proc: c1.proc - c0.proc, main: c1.main - c0.main, pg: c1.pg - c0.pg, wall };
}

/**
 * `measure`, the window ending `TAIL_MS` after `fn` (so its asynchronous follow-ups fall inside), with
 * the idle service's CPU over that tail (`idle`: ms per ms) taken off, and the tail off the wall time.
 */
async function measureWithTail(
  fn: () => Promise<unknown>,
  idle: { proc: number; pg: number },
): Promise<Cpu & { wall: number }> {
  const m = await measure(async () => {
    await fn();
    await sleep(TAIL_MS);
  });
  return {
    proc: m.proc - idle.proc * TAIL_MS,
    main: m.main,
    pg: m.pg - idle.pg * TAIL_MS,
    wall: m.wall - TAIL_MS,
  };
}

/** Per-image samples of each step (one per round): process, main thread, Postgres (ms). */
const samples = new Map<string, { proc: number[]; main: number[]; pg: number[] }>();
let recording = false;
function record(name: string, c: Cpu, images: number): void {
  if (!recording) return;
  const s = samples.get(name) ?? { proc: [], main: [], pg: [] };
  s.proc.push(c.proc / images);
  s.main.push(c.main / images);
  s.pg.push(c.pg / images);
  samples.set(name, s);
}
const total = (name: string) => {
  const s = samples.get(name)!;
  return s.proc.map((p, i) => p + s.pg[i]!);
};

/** Runs `fn` for `n` images one after the other and records the step's CPU per image. */
async function step(name: string, n: number, fn: (i: number) => Promise<unknown>): Promise<Cpu> {
  await sleep(SETTLE_MS);
  const m = await measure(async () => {
    for (let i = 0; i < n; i++) await fn(i);
  });
  record(name, m, n);
  return m;
}

/** (a)'s decode to raw 1200 px pixels; `srgb`: with the render's `toColourspace('srgb')`. */
async function decodeTo1200(input: Buffer, srgb: boolean): Promise<Buffer> {
  const p = sharp(input).autoOrient().resize(1200, 1200, { fit: 'inside', withoutEnlargement: true });
  return (srgb ? p.toColourspace('srgb') : p).raw().toBuffer();
}

async function main() {
  const jpeg = await bigJpeg(fixture('gps/DSCN0010.jpg'), 4000, 3000);
  const dataDir = await tempDir('mediary-bench-steps-');
  const extra: Record<string, string> = { WORKER_ENABLED: 'false', LOG_LEVEL: 'silent' };
  if (process.env.PROCESSING_CONCURRENCY) extra.PROCESSING_CONCURRENCY = process.env.PROCESSING_CONCURRENCY;
  const config = loadConfig(await testEnv(dataDir, extra));
  const parallel = config.processing.concurrency;
  const loadStart = os.loadavg();
  console.log(
    `input: 4000×3000 JPEG (12 MP), ${(jpeg.length / 1e6).toFixed(1)} MB; ${REPS} rounds; batch ${BATCH}; ` +
      `${STEP_IMAGES} images per in-process step; parallelism ${parallel}; load ${loadStart[0]!.toFixed(1)}`,
  );
  const logger = createLogger('silent', 2);
  const server = await startServer(config, logger);
  const pool = server.database.pool;
  const api = (p: string) => `${config.publicUrl}/api/v1${p}`;
  const auth = { authorization: `Bearer ${await mintUserToken(JWT_SECRET, 'bench')}` };
  const store = new LocalObjectStore(
    config.storage.dir,
    new PublicUrls(new UrlSigner('x'.repeat(32)), config.publicUrl),
  );
  // The workers' statements on the pool `serve` gives its worker (named statements included).
  const workerPool = createWorkerPool(server.database.url, config, logger);
  const records = pgRecords(workerPool);
  const sinkPort = await freePort();
  const sinkDir = await tempDir('mediary-bench-sink-');
  const sink = await startHelper('sink.ts', [String(sinkPort), sinkDir]);

  // What a real job renders from this JPEG (replayed by the replay worker; its variants' records
  // are what the database-only worker writes).
  const rendered = await sharpImaging.render(jpeg, {
    sizes: VARIANT_SIZES,
    format: 'webp',
    maxPixels: config.processing.maxPixels,
    maxDecodeBytes: config.processing.maxDecodeBytes,
    autoOrient: true,
  });
  const exif = await exifrReader.read('image/jpeg', jpeg, () => sharpImaging.exifBlock(jpeg));
  const placeholder = Buffer.from(
    rgbaToThumbHash(rendered.preview.width, rendered.preview.height, rendered.preview.rgba),
  ).toString('base64');
  const variantShas = rendered.variants.map((v) => sha256(v.data));

  /**
   * One queue worker for the database steps, started once (stopping a worker drops its LISTEN
   * connection, and the pool's next connection is a new Postgres backend whose cold caches cost
   * 15–270 ms of Postgres CPU: more than these steps). The runtime's start hook; the handler is the
   * one of the step running (`jobHandler`), held at `gate` while completions are being measured.
   */
  let finished = 0;
  let jobHandler: JobHandler<ProcessJob, MediaRecord | undefined> | undefined;
  let gate: Promise<void> = Promise.resolve();
  const startBenchWorker = () =>
    JobWorker.start<MediaRecord | undefined>({
      pool: workerPool,
      queue: server.queue,
      logger,
      config: config.processing,
      start: (tx, job) => repo.startProcessing(tx, job.data.mediaId, job.attempt),
      handler: async (payload, ctx, media) => {
        await gate;
        try {
          return await jobHandler!(payload, ctx, media);
        } catch (err) {
          console.error('bench job failed', err);
          throw err;
        } finally {
          finished++;
        }
      },
      onDead: async () => undefined,
    });
  /** The job's database part only: READY with the records a real job writes. */
  const dbOnly: JobHandler<ProcessJob, MediaRecord | undefined> = async (_payload, _ctx, media) => {
    if (!media) throw new Error('a bench job found no media');
    if (media.content_sha256 === null) await records.recordVerifiedSha256(media.id, sha256(jpeg));
    await records.markImageReady(media.id, {
      width: rendered.width,
      height: rendered.height,
      metadata: { exif: exif.exif },
      gps: exif.gps ? { ...exif.gps } : null,
      placeholder,
      detectedMime: 'image/jpeg',
      variants: rendered.variants.map((v, i) => ({
        name: String(v.size),
        format: 'webp' as const,
        key: variantKey(media.id, variantShas[i]!, 'webp'),
        width: v.width,
        height: v.height,
        bytes: v.data.length,
      })),
    });
    return { status: 'completed' };
  };
  /** The real image job with its render replaced by the render's result (no sharp). */
  const replay: Imaging = {
    ...sharpImaging,
    render: async (_input, opts) => {
      opts.onPreview?.(rendered.preview);
      await Promise.all(rendered.variants.map(async (v) => opts.onVariant?.(v)));
      return rendered;
    },
  };
  const replayJob = new ImageJob({
    store,
    records,
    imaging: replay,
    heif: { isAvailable: async () => false, toJpeg: () => Promise.reject(new Error('no HEIC here')) },
    exif: exifrReader,
    config: config.processing,
  });

  /** Lets the held jobs run and measures until `n` have ended; the window ends TAIL_MS after. */
  async function drain(
    worker: JobWorker<MediaRecord | undefined>,
    name: string,
    n: number,
    open: () => void,
    idle: { proc: number; pg: number },
  ) {
    const m = await measureWithTail(async () => {
      open();
      while (finished < n || worker.busy > 0) await sleep(2);
    }, idle);
    record(name, m, n);
  }

  // The stored original the in-process steps read (an upload of the same JPEG).
  const [stepId] = await prepareUploads(api, auth, jpeg, 1);
  const stepMedia = (await findMedia(pool, stepId!)) as unknown as MediaRecord;
  const noRecords = { recordVerifiedSha256: async () => undefined } as unknown as ProcessingRecords;
  const originals = new BufferPool({ maxFree: parallel, maxBufferBytes: 32 * 1024 * 1024, idleMs: 30_000 });
  const limits = { limitInputPixels: config.processing.maxPixels, failOn: 'warning' as const };
  const base = await sharp(jpeg)
    .autoOrient()
    .resize(1200, 1200, { fit: 'inside', withoutEnlargement: true })
    .toColourspace('srgb')
    .raw()
    .toBuffer({ resolveWithObject: true });

  const gaps: number[] = [];
  const polls: number[] = [];
  const wholeWall: number[] = [];
  const aWall: number[] = [];
  const renderMinusA: number[] = [];
  const srgbMinusA: number[] = [];
  const idleRates: number[] = [];
  const idleProc: number[] = [];
  const idlePg: number[] = [];
  const rounds = (run: (round: number, n: number, k: number) => Promise<void>) => async () => {
    // Round −1 warms up (sharp, the JIT, the database, the store) and is not recorded.
    for (let round = -1; round < REPS; round++) {
      recording = round >= 0;
      await run(round, recording ? BATCH : 2, recording ? STEP_IMAGES : 1);
      console.log(`round ${round + 1}/${REPS} done (load ${os.loadavg()[0]!.toFixed(1)})`);
    }
  };
  let idleRate = { proc: 0, pg: 0 };
  let ids: string[] = [];

  // 1. The whole pipeline (the runtime's worker, started once) against (a), in turn by round; the
  //    idle service (that worker waiting) per ms before each pair.
  const realWorker = await startWorker({
    pool: workerPool,
    queue: server.queue,
    store,
    config: config.processing,
    logger,
  });
  await rounds(async (round, n) => {
    const idle = await measure(() => sleep(IDLE_MS));
    idleRate = { proc: idle.proc / idle.wall, pg: idle.pg / idle.wall };
    if (recording) {
      idleRates.push((idleRate.proc + idleRate.pg) * 1000);
      idleProc.push(idleRate.proc * 1000);
      idlePg.push(idleRate.pg * 1000);
    }
    ids = await prepareUploads(api, auth, jpeg, n);
    let whole: (Cpu & { wall: number }) | undefined;
    let a: (Cpu & { wall: number }) | undefined;
    let p = 0;
    const runs = [
      async () => {
        whole = await measureWithTail(
          () => completeAndWait(api, auth, pool, ids, POLL_MS, () => p++),
          idleRate,
        );
      },
      async () => {
        let next = 0;
        a = await measureWithTail(
          () =>
            Promise.all(
              Array.from({ length: parallel }, async () => {
                while (next++ < n) await rawDecodeOnce(jpeg);
              }),
            ),
          idleRate,
        );
      },
    ];
    for (const i of round % 2 === 0 ? [0, 1] : [1, 0]) await runs[i]!();
    record('whole pipeline (bench:image, short)', whole!, n);
    record('(a) raw sharp, decode once', a!, n);
    if (recording) {
      gaps.push((whole!.proc + whole!.pg - a!.proc - a!.pg) / n);
      polls.push(p / n);
      wholeWall.push(whole!.wall / n);
      aWall.push(a!.wall / n);
    }
  })();
  await realWorker.stop();

  // 2. The database steps, through the bench worker: completions (their jobs held at the gate),
  //    then the held jobs run; once with the database-only handler, once with the replay job.
  const worker = await startBenchWorker();
  try {
    await rounds(async (_round, n) => {
      for (const [handler, name] of [
        [dbOnly, 'worker: claim + start + complete txs, READY (db only)'],
        [
          (_payload: ProcessJob, ctx: Parameters<typeof replayJob.handle>[1], media?: MediaRecord) =>
            replayJob.handle(media!, ctx),
          'worker: real ImageJob, render replayed (check)',
        ],
      ] as const) {
        const batch = await prepareUploads(api, auth, jpeg, n);
        let open!: () => void;
        gate = new Promise<void>((resolve) => (open = resolve));
        jobHandler = handler;
        finished = 0;
        const c = await measureWithTail(() => completeAll(api, auth, batch), idleRate);
        record('completion: POST /complete incl. the bench client', c, n);
        await drain(worker, name, n, open, idleRate);
        const { rows } = await pool.query<{ status: string; error: unknown }>(
          'SELECT status, error FROM media WHERE id = ANY($1::uuid[])',
          [batch],
        );
        if (rows.some((r) => r.status !== 'READY'))
          throw new Error(`${name}: a bench job did not end READY: ${JSON.stringify(rows)}`);
      }
      const client = await measure(() =>
        Promise.all(
          Array.from({ length: n }, () =>
            call(`http://127.0.0.1:${sinkPort}/api/v1/media/x/complete`, { method: 'POST', headers: auth }),
          ),
        ),
      );
      record('bench client: the same POSTs to a server in another process', client, n);
      // The bench's status poll alone (one query, as completeAndWait sends it).
      await step('bench: one status poll query', 50, () => batchStatus(pool, ids));
    })();
  } finally {
    await worker.stop();
  }

  // 3. The in-process steps, one image at a time.
  try {
    await rounds(async (round, _n, k) => {
      await step('read original + sha256 (readOriginal, local store)', k, async () => {
        const lease = originals.lease();
        await readOriginal(store, noRecords, stepMedia, lease.allocate);
        lease.release();
      });
      const original = await readOriginal(store, noRecords, stepMedia);
      await step('file-type', k, () => fileTypeFromBuffer(original));
      await step('EXIF (exifr adapter)', k, () =>
        exifrReader.read('image/jpeg', original, () => sharpImaging.exifBlock(original)),
      );
      await step('sharp metadata() (inside the render)', k, () => sharp(original, limits).metadata());
      // The render and (a) one image at a time, in turn, and the decode to 1200 px with and without
      // the render's colourspace step, in turn (the first of each pair alternating by image), so the
      // machine's drift falls on both sides of each difference alike; CPU summed over the k images.
      let result: RenderResult | undefined;
      const turns: [string, () => Promise<unknown>][] = [
        [
          'render: renderVariants (metadata, decode, 4 WebP, preview)',
          async () => {
            result = await sharpImaging.render(original, {
              sizes: VARIANT_SIZES,
              format: 'webp',
              maxPixels: config.processing.maxPixels,
              maxDecodeBytes: config.processing.maxDecodeBytes,
              autoOrient: true,
            });
          },
        ],
        ['(a) decode-once, alone', () => rawDecodeOnce(original)],
        ['decode to 1200 px raw, as (a)', () => decodeTo1200(original, false)],
        ["decode to 1200 px raw + toColourspace('srgb'), as the render", () => decodeTo1200(original, true)],
      ];
      const got = turns.map(() => ({ proc: 0, main: 0, pg: 0 }));
      for (let i = 0; i < k; i++) {
        // render and (a) in turn, then the two decodes in turn (the first of each pair by image).
        for (const j of i % 2 ? [1, 0, 3, 2] : [0, 1, 2, 3]) {
          await sleep(SETTLE_MS);
          const c = await measure(turns[j]![1]);
          got[j]!.proc += c.proc;
          got[j]!.main += c.main;
          got[j]!.pg += c.pg;
        }
      }
      turns.forEach(([name], j) => record(name, got[j]!, k));
      const cost = (c: Cpu) => (c.proc + c.pg) / k;
      if (recording) {
        renderMinusA.push(cost(got[0]!) - cost(got[1]!));
        srgbMinusA.push(cost(got[3]!) - cost(got[2]!));
      }
      const raw = { raw: { width: base.info.width, height: base.info.height, channels: base.info.channels } };
      await step('64 px preview alone (inside the render)', k, () =>
        sharp(base.data, raw)
          .resize(64, 64, { fit: 'inside', withoutEnlargement: true })
          .ensureAlpha()
          .raw()
          .toBuffer(),
      );
      const preview = result!.preview;
      await step('thumbhash of the preview', k, async () =>
        Buffer.from(rgbaToThumbHash(preview.width, preview.height, preview.rgba)).toString('base64'),
      );
      await step('4 variant writes (putVariant → putBuffer, fsync)', k, async (i) => {
        for (const v of result!.variants) await putVariant(store, `steps-${round}-${i}`, 'webp', v);
      });

      // The bench's status poll alone (one query, as completeAndWait sends it).
      await step('bench: one status poll query', 50, () => batchStatus(pool, ids));
    })();
  } finally {
    await sink.stop();
    await workerPool.end();
    await server.close();
    await rm(dataDir, { recursive: true, force: true });
    await rm(sinkDir, { recursive: true, force: true });
  }

  // ---- the table ------------------------------------------------------------------------------
  const f = (x: number) => x.toFixed(2);
  const range = (xs: number[]) => `${f(Math.min(...xs))}–${f(Math.max(...xs))}`;
  const rows: BenchRow[] = [];
  console.log(
    `\n${'step (CPU ms per image, medians of rounds)'.padEnd(64)}${'total'.padStart(8)} ${'(min–max)'.padEnd(14)}` +
      `${'main'.padStart(7)}${'other'.padStart(7)}${'Postgres'.padStart(9)}`,
  );
  for (const [name, s] of samples) {
    const t = total(name);
    const other = s.proc.map((p, i) => p - s.main[i]!);
    console.log(
      `${name.padEnd(64)}${f(median(t)).padStart(8)} ${`(${range(t)})`.padEnd(14)}` +
        `${f(median(s.main)).padStart(7)}${f(median(other)).padStart(7)}${f(median(s.pg)).padStart(9)}`,
    );
    rows.push({
      bench: 'image-steps',
      figure: name,
      unit: 'CPU ms per image (process + Postgres)',
      value: stat(t),
      baselineName: `main ${f(median(s.main))}, other threads ${f(median(other))}, Postgres ${f(median(s.pg))}`,
      goal: '',
      met: null,
    });
  }

  // ---- the sum against the gap ----------------------------------------------------------------
  const m = (name: string) => median(total(name));
  const idlePerMs = median(idleRates) / 1000;
  const metadata = m('sharp metadata() (inside the render)');
  const preview = m('64 px preview alone (inside the render)');
  const parts: [string, number][] = [
    ['read original + sha256', m('read original + sha256 (readOriginal, local store)')],
    ['file-type', m('file-type')],
    ['EXIF', m('EXIF (exifr adapter)')],
    ['render − (a), measured directly (in turn, per-round differences)', median(renderMinusA)],
    ['thumbhash', m('thumbhash of the preview')],
    ['4 variant writes', m('4 variant writes (putVariant → putBuffer, fsync)')],
    [
      'completion, server side + Postgres (completion − bench client)',
      m('completion: POST /complete incl. the bench client') -
        m('bench client: the same POSTs to a server in another process'),
    ],
    [
      'bench client (undici) for the completion',
      m('bench client: the same POSTs to a server in another process'),
    ],
    [
      'worker: claim + start + complete, READY (+ Postgres)',
      m('worker: claim + start + complete txs, READY (db only)'),
    ],
    ['bench: status polls (polls per image × one query)', median(polls) * m('bench: one status poll query')],
    [
      'idle service over the extra wall time (idle rate × (whole − (a)))',
      idlePerMs * (median(wholeWall) - median(aWall)),
    ],
  ];
  const sum = parts.reduce((acc, [, v]) => acc + v, 0);
  // The same with the render's share taken from its parts measured alone (less noisy under load).
  const renderParts = metadata + preview + median(srgbMinusA);
  const sumFromParts = sum - median(renderMinusA) + renderParts;
  const gap = median(gaps);

  // By thread group: each part from the medians of its components (so a row's three need not add
  // up exactly to its total, a median of per-round totals).
  type Split = { main: number; other: number; pg: number };
  const split = (name: string): Split => {
    const x = samples.get(name)!;
    return { main: median(x.main), other: median(x.proc.map((p, i) => p - x.main[i]!)), pg: median(x.pg) };
  };
  const minus = (x: Split, y: Split): Split => ({
    main: x.main - y.main,
    other: x.other - y.other,
    pg: x.pg - y.pg,
  });
  const times = (x: Split, k: number): Split => ({ main: x.main * k, other: x.other * k, pg: x.pg * k });
  const client = split('bench client: the same POSTs to a server in another process');
  const idleShare = (median(wholeWall) - median(aWall)) / 1000;
  const splits: Split[] = [
    split('read original + sha256 (readOriginal, local store)'),
    split('file-type'),
    split('EXIF (exifr adapter)'),
    minus(
      split('render: renderVariants (metadata, decode, 4 WebP, preview)'),
      split('(a) decode-once, alone'),
    ),
    split('thumbhash of the preview'),
    split('4 variant writes (putVariant → putBuffer, fsync)'),
    minus(split('completion: POST /complete incl. the bench client'), client),
    client,
    split('worker: claim + start + complete txs, READY (db only)'),
    times(split('bench: one status poll query'), median(polls)),
    { main: 0, other: median(idleProc) * idleShare, pg: median(idlePg) * idleShare },
  ];
  const sumSplit = splits.reduce((acc, x) => ({
    main: acc.main + x.main,
    other: acc.other + x.other,
    pg: acc.pg + x.pg,
  }));
  const gapSplit = minus(split('whole pipeline (bench:image, short)'), split('(a) raw sharp, decode once'));
  const row3 = (x: Split) => `${f(x.main).padStart(8)}${f(x.other).padStart(8)}${f(x.pg).padStart(9)}`;
  console.log(
    `\nthe sum of the steps against the gap (CPU ms per image, process + Postgres):` +
      `${' '.repeat(8)}${'main'.padStart(8)}${'other'.padStart(8)}${'Postgres'.padStart(9)}`,
  );
  parts.forEach(([k, v], i) => console.log(`  ${k.padEnd(72)}${f(v).padStart(8)}${row3(splits[i]!)}`));
  console.log(
    `  ${'SUM'.padEnd(72)}${f(sum).padStart(8)}${row3(sumSplit)}  (by thread: render − (a) from its medians)`,
  );
  console.log(
    `  ${'gap: whole − (a), difference of the medians'.padEnd(72)}${f(m('whole pipeline (bench:image, short)') - m('(a) raw sharp, decode once')).padStart(8)}${row3(gapSplit)}`,
  );
  console.log(
    `  ${'SUM with the render share from its parts (metadata + preview + colourspace)'.padEnd(72)}${f(sumFromParts).padStart(8)}`,
  );
  console.log(
    `  ${'gap: whole − (a), median of rounds'.padEnd(72)}${f(gap).padStart(8)}  (rounds ${gaps.map(f).join(', ')})`,
  );
  console.log(
    `  ${'unexplained (gap − sum)'.padEnd(72)}${f(gap - sum).padStart(8)}  (with the parts: ${f(gap - sumFromParts)})`,
  );
  const jobParts =
    m('read original + sha256 (readOriginal, local store)') +
    m('file-type') +
    m('EXIF (exifr adapter)') +
    m('thumbhash of the preview') +
    m('4 variant writes (putVariant → putBuffer, fsync)') +
    m('worker: claim + start + complete txs, READY (db only)');
  const replayed = m('worker: real ImageJob, render replayed (check)');
  console.log(
    `check: the real ImageJob with the render replayed ${f(replayed)} ` +
      `against its parts measured alone ${f(jobParts)}`,
  );
  console.log(
    `render − (a) measured directly ${f(median(renderMinusA))} ms/image (per round ${renderMinusA.map(f).join(', ')}); ` +
      `its parts measured alone: metadata() ${f(metadata)}, preview ${f(preview)}, toColourspace ${f(median(srgbMinusA))} ` +
      `(decodes in turn, per round ${srgbMinusA.map(f).join(', ')})`,
  );
  console.log(
    `status polls per image ${f(median(polls))}; wall ms per image whole ${f(median(wholeWall))}, (a) ${f(median(aWall))}; ` +
      `idle service ${f(median(idleRates))} CPU ms/s`,
  );
  const loadEnd = os.loadavg();
  const load = `load average at start ${loadStart.map((l) => l.toFixed(1)).join(' / ')}, at end ${loadEnd
    .map((l) => l.toFixed(1))
    .join(' / ')}`;
  console.log(load);
  for (const [k, v] of parts)
    rows.push({
      bench: 'image-steps',
      figure: `sum part: ${k}`,
      unit: 'CPU ms per image',
      value: stat([v]),
      baselineName: '',
      goal: '',
      met: null,
    });
  rows.push({
    bench: 'image-steps',
    figure: 'sum of the steps, the render share from its parts',
    unit: 'CPU ms per image',
    value: stat([sumFromParts]),
    baselineName: 'gap: whole − (a), process + Postgres',
    baseline: stat(gaps),
    ratio: sumFromParts / gap,
    ratioMeaning: 'sum / gap',
    goal: 'the sum accounts for the gap',
    met: null,
  });
  rows.push({
    bench: 'image-steps',
    figure: 'sum of the steps',
    unit: 'CPU ms per image',
    value: stat([sum]),
    baselineName: 'gap: whole − (a), process + Postgres',
    baseline: stat(gaps),
    ratio: sum / gap,
    ratioMeaning: 'sum / gap',
    goal: 'the sum accounts for the gap',
    met: null,
  });
  await report({
    name: 'image-steps',
    rows,
    notes: [
      load,
      `rounds ${REPS}, batch ${BATCH}, ${STEP_IMAGES} images per in-process step, parallelism ${parallel}`,
      `status polls per image ${f(median(polls))}; idle service ${f(median(idleRates))} CPU ms/s`,
      `render − (a) measured directly, per round: ${renderMinusA.map(f).join(', ')}; toColourspace share (decode with − without), per round: ${srgbMinusA.map(f).join(', ')}`,
      `gap per round: ${gaps.map(f).join(', ')}; the real ImageJob, render replayed: ${f(replayed)} against its parts alone ${f(jobParts)}`,
    ],
  });
}

await main();
