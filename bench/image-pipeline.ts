/**
 * Image pipeline benchmark (one run): a 12 MP JPEG → the four WebP variants.
 *
 *   node --import tsx bench/image-pipeline.ts        (npm run bench:image)
 *   PROCESSING_CONCURRENCY=1 BENCH_BATCH=8 BENCH_REPS=5 npm run bench:image   (default batch 24)
 *
 * Throughput (images/second) over a batch of N images, all three measured with the same
 * parallelism C (the worker's configured concurrency, PROCESSING_CONCURRENCY, default 2):
 *
 * - whole pipeline: N uploads (session + PUT) are prepared, then all N are completed at once, which
 *   enqueues N jobs; an already running, idle worker with concurrency C drains them. Timed from the
 *   first enqueue (pg-boss `created_on`) to the last READY (`processed_at`), both on the database
 *   clock, so the benchmark's own wait (one cheap query every 250 ms) does not skew the figure. The
 *   poll's CPU does fall inside the measured window (this process and Postgres), so it is kept rare:
 *   at 50 ms it was ≈ 5 queries per image, charged to the pipeline.
 * - (a) raw sharp, decode once: decode + orient + shrink to 1200 px into raw pixels, then the four
 *   WebP encodes from those pixels (what the pipeline's sharp step does; its outputs are checked to
 *   be byte-identical to the pipeline's variants). No placeholder, storage, database or queue.
 * - (b) four separate sharp pipelines: each variant decoded from the original on its own (same
 *   sizes, same WebP settings, metadata stripped, auto-orient).
 *
 * (a) and (b) run C images at a time over the same N images (each image's four encodes in
 * parallel, as the pipeline does), from the same in-memory JPEG. The order of the three rotates per
 * repetition; ratios are reported per repetition (same moment, same machine load) and as medians.
 * Also: step timings inside the pipeline's jobs, CPU time per image (this process, by thread group:
 * the JavaScript thread, libvips' threads, the rest, and the kernel's share; and the Postgres
 * processes), full garbage collections per image, and job pickup latency.
 */
import { createHash } from 'node:crypto';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { constants as perfConstants, performance, PerformanceObserver } from 'node:perf_hooks';
import { Session } from 'node:inspector/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import sharp from 'sharp';
import { createWorkerPool, startServer } from '../src/app.ts';
import { mintUserToken } from '../src/auth/principals.ts';
import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/log.ts';
import { IMAGE_JOB_STEPS, VARIANT_SIZES, type ImageJobStep } from '../src/processing/image-job.ts';
import { startWorker } from '../src/processing/runtime.ts';
import { LocalObjectStore } from '../src/storage/local.ts';
import { UrlSigner } from '../src/storage/signing.ts';
import { PublicUrls } from '../src/http/urls.ts';
import { fixture } from '../test/helpers/files.ts';
import { JWT_SECRET, tempDir, testEnv } from '../test/helpers/server.ts';
import { bigJpeg, upload, waitFor } from '../test/processing/helpers.ts';
import {
  completeAndWait,
  postgresCpuMs,
  prepareUploads,
  rawDecodeOnce,
  type PgCpu,
} from './lib/image-bench.ts';

const REPS = Number(process.env.BENCH_REPS ?? 5);
/**
 * Images per batch. Each batch has a ramp (the first jobs wait while N completions are answered)
 * and a drain (one slot idles while the other finishes its last image): ≈ 30 ms of idle slot time
 * per image at 8, ≈ 16 ms at 24. 24 is close to steady state; BENCH_BATCH=8 shows the short burst.
 */
const BATCH = Number(process.env.BENCH_BATCH ?? 24);
const PICKUPS = 20;
/** The wait for a batch's last READY: one query per POLL_MS (its CPU counts against the pipeline). */
const POLL_MS = 250;
/**
 * BENCH_CPU_PROFILE=file.cpuprofile: a V8 CPU profile of the JavaScript thread during the
 * whole-pipeline batches only (not the uploads that prepare them, nor (a) and (b)); open it in
 * Chrome DevTools or summarise it with `node bench/lib/profile-summary.mjs file`.
 */
const CPU_PROFILE = process.env.BENCH_CPU_PROFILE;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.ceil((p / 100) * xs.length) - 1]!;
const spread = (xs: number[], digits = 2) =>
  `${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)}`;

const FIT = { fit: 'inside', withoutEnlargement: true } as const;

async function fourPipelines(input: Buffer): Promise<Buffer[]> {
  return Promise.all(
    VARIANT_SIZES.map((s) => sharp(input).autoOrient().resize(s, s, FIT).webp({ quality: 80 }).toBuffer()),
  );
}

/** N images, `parallel` at a time. */
async function runBatch(n: number, parallel: number, fn: () => Promise<unknown>): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(parallel, n) }, async () => {
      while (next++ < n) await fn();
    }),
  );
  return (performance.now() - t0) / 1000;
}

interface Measured {
  seconds: number;
  cpuMs: number;
  /** This process's CPU by thread group (Linux /proc/self/task), ms. */
  threads: ThreadCpu;
  /** CPU time of this run's own Postgres processes meanwhile (Linux /proc; the embedded database). */
  pgCpuMs: number;
  /** The same by role. */
  pgCpu: PgCpu;
  /** Full (mark-compact) garbage collections of this process meanwhile, and their pauses (ms). */
  majorGcs: number;
  majorGcPauseMs: number;
}

/** Every full GC of this process: its start and duration (ms, `performance.now()` clock). */
const majorGcs: { start: number; duration: number }[] = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    const kind = (e as { detail?: { kind?: number } }).detail?.kind;
    if (kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR)
      majorGcs.push({ start: e.startTime, duration: e.duration });
  }
}).observe({ entryTypes: ['gc'] });

/**
 * Statements this process sends to Postgres (every pg client: API, worker, queue, the bench's own
 * poll), counted while `sql.on`: a structural figure the machine's load cannot move.
 */
const sql = { on: false, statements: 0, begins: 0, commits: 0 };
/** BENCH_SQL_TOP=n: also list the n statements sent most often (by their first 100 characters). */
const SQL_TOP = Number(process.env.BENCH_SQL_TOP ?? 0);
const sqlTexts = new Map<string, number>();
const clientQuery = Object.getOwnPropertyDescriptor(pg.Client.prototype, 'query')!.value as (
  this: pg.Client,
  ...a: unknown[]
) => unknown;
pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
  if (sql.on) {
    sql.statements++;
    const text = typeof args[0] === 'string' ? args[0] : (args[0] as { text?: string } | undefined)?.text;
    if (SQL_TOP > 0) {
      const k = (text ?? '?').replace(/\s+/g, ' ').trim().slice(0, 100);
      sqlTexts.set(k, (sqlTexts.get(k) ?? 0) + 1);
    }
    if (text === 'BEGIN') sql.begins++;
    else if (text === 'COMMIT') sql.commits++;
  }
  return clientQuery.apply(this, args);
} as typeof pg.Client.prototype.query;

interface ThreadCpu {
  /** The JavaScript thread: HTTP, pg, hashing, queue, thumbhash, GC's main-thread part. */
  main: number;
  /** libvips' own threads: decode, resize, encode. */
  libvips: number;
  /** Everything else: libuv's pool (file I/O, sharp's calls into libvips), V8 helpers. */
  other: number;
  /** Of all three, the time spent in the kernel (system calls: file I/O, fsync, sockets, page faults). */
  sys: number;
}

/** CPU time (ms) of this process's threads so far, by group. */
function threadCpuMs(): ThreadCpu {
  const out: ThreadCpu = { main: 0, libvips: 0, other: 0, sys: 0 };
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ms = (Number(fields[11]) + Number(fields[12])) * 10;
      out.sys += Number(fields[12]) * 10;
      if (Number(tid) === process.pid) out.main += ms;
      else if (name.startsWith('libvips')) out.libvips += ms;
      else out.other += ms;
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

async function cpuTimed(fn: () => Promise<number>): Promise<Measured> {
  const before = process.cpuUsage();
  const threadsBefore = threadCpuMs();
  const pgBefore = postgresCpuMs();
  const t0 = performance.now();
  const seconds = await fn();
  const t1 = performance.now();
  const d = process.cpuUsage(before);
  const t = threadCpuMs();
  const pgAfter = postgresCpuMs();
  await sleep(0); // GC entries are delivered asynchronously
  const gcs = majorGcs.filter((g) => g.start >= t0 && g.start < t1);
  return {
    seconds,
    cpuMs: (d.user + d.system) / 1000,
    threads: {
      main: t.main - threadsBefore.main,
      libvips: t.libvips - threadsBefore.libvips,
      other: t.other - threadsBefore.other,
      sys: t.sys - threadsBefore.sys,
    },
    pgCpuMs: pgAfter.total - pgBefore.total,
    pgCpu: Object.fromEntries(
      Object.entries(pgAfter).map(([k, v]) => [k, v - pgBefore[k as keyof PgCpu]]),
    ) as PgCpu,
    majorGcs: gcs.length,
    majorGcPauseMs: gcs.reduce((sum, g) => sum + g.duration, 0),
  };
}

async function main() {
  const jpeg = await bigJpeg(fixture('gps/DSCN0010.jpg'), 4000, 3000);
  const dataDir = await tempDir('mediary-bench-');
  const extra: Record<string, string> = { WORKER_ENABLED: 'false', LOG_LEVEL: 'silent' };
  if (process.env.PROCESSING_CONCURRENCY) extra.PROCESSING_CONCURRENCY = process.env.PROCESSING_CONCURRENCY;
  const env = await testEnv(dataDir, extra);
  const config = loadConfig(env);
  const parallel = config.processing.concurrency;
  const threadpool = Number(process.env.UV_THREADPOOL_SIZE ?? 4);
  console.log(
    `input: 4000×3000 JPEG (12 MP), ${(jpeg.length / 1e6).toFixed(1)} MB; ${os.cpus().length} CPUs; ` +
      `parallelism ${parallel} images at a time (worker concurrency) for all three; ` +
      `sharp.concurrency ${sharp.concurrency()}; UV_THREADPOOL_SIZE ${threadpool}; batch ${BATCH}; ${REPS} repetitions`,
  );
  const logger = createLogger('silent', 2);
  const server = await startServer(config, logger);
  const pool = server.database.pool;
  const t = {
    server,
    config,
    dataDir,
    base: config.publicUrl,
    api: (p: string) => `${config.publicUrl}/api/v1${p}`,
  } as unknown as Parameters<typeof upload>[0];
  const auth = { authorization: `Bearer ${await mintUserToken(JWT_SECRET, 'bench')}` };
  const store = new LocalObjectStore(
    config.storage.dir,
    new PublicUrls(new UrlSigner('x'.repeat(32)), config.publicUrl),
  );
  // The worker's own pool, as `serve` gives it (named statements included).
  const workerPool = createWorkerPool(server.database.url, config, logger);
  const worker = await startWorker({
    pool: workerPool,
    queue: server.queue,
    store,
    config: config.processing,
    logger,
  });

  const steps = new Map<string, number[]>();
  let recording = false;
  let handlerSeconds = 0;
  const onStep = (msg: unknown) => {
    if (!recording) return;
    const s = msg as ImageJobStep;
    if (s.step === 'job') handlerSeconds += (s.end - s.start) / 1000;
    const xs = steps.get(s.step) ?? [];
    xs.push(s.end - s.start);
    steps.set(s.step, xs);
  };
  subscribe(IMAGE_JOB_STEPS.name, onStep);

  let polls = 0;
  /** Completes all ids at once (N enqueues) and waits for the worker to finish them. */
  const api = (p: string) => t.api(p);
  const pipelineBatch = (ids: string[]) => completeAndWait(api, auth, pool, ids, POLL_MS, () => polls++);
  const prepare = (n: number) => prepareUploads(api, auth, jpeg, n);

  const profiler = CPU_PROFILE ? new Session() : undefined;
  if (profiler) {
    profiler.connect();
    await profiler.post('Profiler.enable');
    await profiler.post('Profiler.setSamplingInterval', { interval: 200 });
  }
  const results: Record<string, unknown> = {};
  try {
    // Warm-up (sharp, the JIT, the database, the worker), and a like-for-like check of the outputs.
    const warm = await prepare(parallel);
    await pipelineBatch(warm);
    const a0 = await rawDecodeOnce(jpeg);
    const b0 = await fourPipelines(jpeg);
    const { rows: recorded } = await pool.query<{ name: string; key: string; width: number; height: number }>(
      'SELECT name, key, width, height FROM media_variants WHERE media_id = $1',
      [warm[0]],
    );
    const check = await Promise.all(
      VARIANT_SIZES.map(async (size, i) => {
        const v = recorded.find((r) => r.name === String(size))!;
        const [ma, mb] = await Promise.all([sharp(a0[i]).metadata(), sharp(b0[i]).metadata()]);
        return {
          size,
          pipeline: `${v.width}×${v.height}`,
          a: `${ma.width}×${ma.height}`,
          b: `${mb.width}×${mb.height}`,
          aBytesIdenticalToPipeline: v.key.includes(createHash('sha256').update(a0[i]!).digest('hex')),
          metadataStripped: [ma, mb].every((m) => !m.exif && !m.icc && !m.xmp),
        };
      }),
    );
    console.log('outputs (pipeline vs a vs b):');
    for (const c of check) {
      console.log(
        `  ${String(c.size).padStart(4)}: ${c.pipeline} / ${c.a} / ${c.b}` +
          `  (a) bytes identical to the pipeline's: ${c.aBytesIdenticalToPipeline}; stripped: ${c.metadataStripped}`,
      );
    }

    const full: Measured[] = [];
    /** Per whole-pipeline batch: statements sent per image (without the bench's poll), BEGINs, COMMITs. */
    const statements: { perImage: number; beginsPerImage: number; commitsPerImage: number }[] = [];
    /** Per image: slot time not spent in the job handler (queue fetch, claim, ack, idle slots). */
    const outsideHandlerMs: number[] = [];
    const a: Measured[] = [];
    const b: Measured[] = [];
    const profiles: unknown[] = [];
    for (let rep = 0; rep < REPS; rep++) {
      const ids = await prepare(BATCH);
      const runs = [
        async () => {
          recording = true;
          handlerSeconds = 0;
          if (profiler) await profiler.post('Profiler.start');
          Object.assign(sql, { on: true, statements: 0, begins: 0, commits: 0 });
          polls = 0;
          const m = await cpuTimed(() => pipelineBatch(ids));
          sql.on = false;
          statements.push({
            perImage: (sql.statements - polls) / BATCH,
            beginsPerImage: sql.begins / BATCH,
            commitsPerImage: sql.commits / BATCH,
          });
          if (profiler) await profiler.post('Profiler.stop').then((r) => profiles.push(r.profile));
          recording = false;
          full.push(m);
          outsideHandlerMs.push(((parallel * m.seconds - handlerSeconds) / BATCH) * 1000);
        },
        async () => a.push(await cpuTimed(() => runBatch(BATCH, parallel, () => rawDecodeOnce(jpeg)))),
        async () => b.push(await cpuTimed(() => runBatch(BATCH, parallel, () => fourPipelines(jpeg)))),
      ];
      for (let i = 0; i < runs.length; i++) await runs[(rep + i) % runs.length]!();
    }
    unsubscribe(IMAGE_JOB_STEPS.name, onStep);
    if (CPU_PROFILE) {
      // One profile per batch; the summary script adds them up.
      for (const [i, p] of profiles.entries())
        await writeFile(CPU_PROFILE.replace(/(\.cpuprofile)?$/, `.${i}.cpuprofile`), JSON.stringify(p));
      profiler?.disconnect();
    }

    // Pickup latency: the idle worker, one small job at a time.
    const small = fixture('cameras/Canon_40D.jpg');
    const pickups: number[] = [];
    for (let i = 0; i < PICKUPS; i++) {
      await sleep(150); // idle: the worker is waiting, not polling right now
      const { id } = await upload(t, auth, small);
      await waitFor(t, auth, id, ['READY', 'FAILED']);
      const { rows } = await pool.query<{ ms: string }>(
        `SELECT extract(epoch FROM started_on - created_on) * 1000 AS ms FROM pgboss.job
         WHERE name = 'media-process' AND data->>'mediaId' = $1`,
        [id],
      );
      pickups.push(Number(rows[0]!.ms));
    }

    const rate = (m: Measured) => BATCH / m.seconds;
    const rFull = full.map(rate);
    const rA = a.map(rate);
    const rB = b.map(rate);
    const perRepA = rFull.map((x, i) => x / rA[i]!);
    const perRepB = rFull.map((x, i) => x / rB[i]!);
    const cpuPerImage = (ms: Measured[]) => median(ms.map((m) => m.cpuMs / BATCH));
    const threadsPerImage = (ms: Measured[]): ThreadCpu => ({
      main: median(ms.map((m) => m.threads.main / BATCH)),
      libvips: median(ms.map((m) => m.threads.libvips / BATCH)),
      other: median(ms.map((m) => m.threads.other / BATCH)),
      sys: median(ms.map((m) => m.threads.sys / BATCH)),
    });
    const pgRoles = (ms: Measured[]) =>
      Object.fromEntries(
        Object.keys(ms[0]!.pgCpu).map((k) => [k, median(ms.map((m) => m.pgCpu[k as keyof PgCpu] / BATCH))]),
      ) as PgCpu;
    const gcs = (ms: Measured[]) => ({
      count: median(ms.map((m) => m.majorGcs / BATCH)),
      pauseMs: median(ms.map((m) => m.majorGcPauseMs / BATCH)),
    });
    const stepTable = [...steps.entries()].map(([step, xs]) => ({
      step,
      count: xs.length,
      medianMs: median(xs),
      p90Ms: pct(xs, 90),
    }));
    Object.assign(results, {
      input: { width: 4000, height: 3000, bytes: jpeg.length },
      cpus: os.cpus().length,
      parallelism: parallel,
      sharpConcurrency: sharp.concurrency(),
      uvThreadpoolSize: threadpool,
      repetitions: REPS,
      batch: BATCH,
      outputs: check,
      imagesPerSecond: {
        fullPipeline: median(rFull),
        rawDecodeOnce: median(rA),
        fourSeparatePipelines: median(rB),
      },
      samples: { fullPipeline: rFull, rawDecodeOnce: rA, fourSeparatePipelines: rB },
      cpuMsPerImage: {
        note: 'this process only (the embedded Postgres runs in its own processes)',
        fullPipeline: cpuPerImage(full),
        rawDecodeOnce: cpuPerImage(a),
        fourSeparatePipelines: cpuPerImage(b),
        postgresDuringFullPipeline: median(full.map((m) => m.pgCpuMs / BATCH)),
        postgresByRole: pgRoles(full),
        byThread: {
          note: 'main = the JavaScript thread; libvips = its worker threads; other = libuv pool + V8 helpers',
          fullPipeline: threadsPerImage(full),
          rawDecodeOnce: threadsPerImage(a),
          fourSeparatePipelines: threadsPerImage(b),
        },
      },
      fullGcsPerImage: {
        note: 'mark-compact collections of this process (their main-thread pauses only, in ms)',
        fullPipeline: gcs(full),
        rawDecodeOnce: gcs(a),
        fourSeparatePipelines: gcs(b),
      },
      ratios: {
        fullVsDecodeOnce: median(rFull) / median(rA),
        fullVsFourPipelines: median(rFull) / median(rB),
        perRepetition: { fullVsDecodeOnce: perRepA, fullVsFourPipelines: perRepB },
        goals: { fullVsDecodeOnce: 0.95, fullVsFourPipelines: 1.5 },
      },
      sqlPerImage: {
        note: 'statements this process sent per image during the whole-pipeline batches (the bench poll excluded), and how many were BEGIN / COMMIT',
        statements: median(statements.map((x) => x.perImage)),
        begins: median(statements.map((x) => x.beginsPerImage)),
        commits: median(statements.map((x) => x.commitsPerImage)),
      },
      jobSteps: stepTable,
      slotMsOutsideHandlerPerImage: outsideHandlerMs,
      pickupLatencyMs: {
        median: median(pickups),
        p95: pct(pickups, 95),
        samples: pickups,
        pollIntervalMs: config.processing.pollIntervalMs,
      },
    });

    const row = (k: string, v: string, extra = '') =>
      console.log(`${k.padEnd(46)}${v.padStart(10)}  ${extra}`);
    console.log('\njob steps (ms; steps inside one job overlap when they run in parallel):');
    for (const s of stepTable) {
      console.log(
        `  ${s.step.padEnd(34)}${s.medianMs.toFixed(1).padStart(8)} median ${s.p90Ms.toFixed(1).padStart(8)} p90  (${s.count})`,
      );
    }
    console.log(
      `slot time outside the job handler (queue fetch/claim/ack, idle slot), per image: ` +
        `${median(outsideHandlerMs).toFixed(0)} ms median (${spread(outsideHandlerMs, 0)})`,
    );
    console.log(`\nmedian of ${REPS} (min–max); parallelism ${parallel}; batch ${BATCH}`);
    row('images/s, whole pipeline (queue+store+db)', median(rFull).toFixed(2), `(${spread(rFull)})`);
    row('images/s, (a) raw sharp, decode once', median(rA).toFixed(2), `(${spread(rA)})`);
    row('images/s, (b) four separate sharp pipelines', median(rB).toFixed(2), `(${spread(rB)})`);
    row(
      'CPU ms/image (this process): whole / a / b',
      '',
      `${cpuPerImage(full).toFixed(0)} / ${cpuPerImage(a).toFixed(0)} / ${cpuPerImage(b).toFixed(0)}`,
    );
    const th = (x: ThreadCpu) =>
      `${x.main.toFixed(0)}/${x.libvips.toFixed(0)}/${x.other.toFixed(0)} (kernel ${x.sys.toFixed(0)})`;
    row(
      'CPU ms/image by thread, main/libvips/other',
      '',
      `whole ${th(threadsPerImage(full))}; a ${th(threadsPerImage(a))}; b ${th(threadsPerImage(b))}`,
    );
    const gcPerImage = (ms: Measured[]) => `${gcs(ms).count.toFixed(2)} (${gcs(ms).pauseMs.toFixed(1)} ms)`;
    row(
      'full GCs/image (pause ms/image): whole / a / b',
      '',
      `${gcPerImage(full)} / ${gcPerImage(a)} / ${gcPerImage(b)}`,
    );
    row(
      'SQL statements/image sent (whole; poll excluded)',
      median(statements.map((x) => x.perImage)).toFixed(1),
      `of which BEGIN ${median(statements.map((x) => x.beginsPerImage)).toFixed(1)}, COMMIT ${median(statements.map((x) => x.commitsPerImage)).toFixed(1)}`,
    );
    row(
      'CPU ms/image, Postgres processes (whole)',
      median(full.map((m) => m.pgCpuMs / BATCH)).toFixed(0),
      `(includes the bench’s own ${POLL_MS} ms status poll)`,
    );
    row(
      '… by role (backends/walwriter/checkpointer/autovacuum/exited/other)',
      '',
      Object.values(pgRoles(full))
        .slice(1)
        .map((v) => v.toFixed(1))
        .join(' / '),
    );
    const goal = (x: number, g: number) => `goal ≥ ${g} ${x >= g ? 'met' : 'NOT met'}`;
    row(
      'ratio whole / (a)',
      (median(rFull) / median(rA)).toFixed(2),
      `${goal(median(rFull) / median(rA), 0.95)}; per repetition ${median(perRepA).toFixed(2)} (${spread(perRepA)})`,
    );
    row(
      'ratio whole / (b)',
      (median(rFull) / median(rB)).toFixed(2),
      `${goal(median(rFull) / median(rB), 1.5)}; per repetition ${median(perRepB).toFixed(2)} (${spread(perRepB)})`,
    );
    row('ratio (a) / (b) (bound for whole / (b))', (median(rA) / median(rB)).toFixed(2));
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
    if (SQL_TOP > 0) {
      const batches = statements.length * BATCH;
      console.log(
        `\nstatements sent most often (per image, over ${statements.length} batches; the poll included):`,
      );
      for (const [k, n] of [...sqlTexts].sort((x, y) => y[1] - x[1]).slice(0, SQL_TOP))
        console.log(`  ${(n / batches).toFixed(2).padStart(6)}  ${k}`);
    }
    console.log('\nwritten: bench/results/image-pipeline.json');
  } finally {
    await worker.stop();
    await workerPool.end();
    await server.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

await main();
