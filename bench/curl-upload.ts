/**
 * Upload throughput seen by a real client (issue 22 §1): `curl -T` (its default 64 KiB writes)
 * against a spawned `mediary serve` (PUT /media/{id}/upload + complete, timed together; the
 * session is created just before and not timed) and against a raw durable sink (new file, sha256
 * on the fly, fsync of the file and of its directory: bench/lib/durable-sink.ts), alternating,
 * `sync` before each upload.
 *
 * 1. Fresh: BENCH_REPS pairs (default 5) on a fresh data directory.
 * 2. History: BENCH_CURL_HISTORY_BYTES (default 8 GiB) uploaded through the same service and
 *    deleted again, in 1-upload steps like the pairs; the service's RSS / heap / external memory
 *    (its own diagnostics line), the files left in its temporary directories, and the kernel's
 *    page cache (Cached, Dirty) before and after.
 * 3. After the history: BENCH_REPS triples — the sink, the long-running service, and a fresh
 *    service started now on a new data directory — so that a slowdown of the long-running
 *    service alone (Mediary's state) is told apart from one of everything (the disk).
 *
 * BENCH_CURL_BYTES (1 GiB) per upload. Prints a table and writes JSON (BENCH_OUT or stdout).
 */
import { readdir, readFile, stat as statFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { embeddedUrl, makeDevices, poolFor, spawnService } from '../test/helpers/process.ts';
import { testEnv } from '../test/helpers/server.ts';
import {
  GiB,
  MiB,
  fmt,
  log,
  memoryOf,
  report,
  reps,
  scratch,
  stat,
  syncDisks,
  type BenchRow,
} from './lib/common.ts';
import {
  curlIn,
  deleteMedia,
  openSession,
  putAndComplete,
  startDurableSink,
  writeSourceFile,
} from './lib/curl.ts';

const SIZE = Number(process.env.BENCH_CURL_BYTES ?? GiB);
const HISTORY = Number(process.env.BENCH_CURL_HISTORY_BYTES ?? 8 * GiB);
const ROUNDS = reps(5);
/** BENCH_CURL_RESTART=1: a fourth phase, the long-running service restarted on its data directory. */
const RESTART = process.env.BENCH_CURL_RESTART === '1';

const work = await scratch('curl');
const source = path.join(work.dir, 'source.mp4');
const SHA = await writeSourceFile(source, SIZE);
const curl = curlIn(work.dir);

interface Service {
  name: string;
  dataDir: string;
  svc: Awaited<ReturnType<typeof spawnService>>;
  auth: Record<string, string>;
  memory: { rss: number; heapUsed: number; external: number; arrayBuffers: number } | undefined;
}

async function startService(name: string): Promise<Service> {
  const dataDir = path.join(work.dir, name);
  const env = await testEnv(dataDir, {
    LOG_LEVEL: 'warn',
    MULTIPART_THRESHOLD_BYTES: String(5 * GiB),
    WORKER_ENABLED: 'false',
    DIAGNOSTICS_INTERVAL_SECONDS: '1',
  });
  const s: Service = { name, dataDir, svc: undefined!, auth: {}, memory: undefined };
  s.svc = await spawnService(env, {
    onStdout: (line) => {
      if (!line.includes('"diagnostics"')) return;
      try {
        s.memory = (JSON.parse(line) as { memoryMiB: Service['memory'] }).memoryMiB;
      } catch {
        // not ours
      }
    },
  });
  const db = poolFor(embeddedUrl(env.DATA_DIR!, env.EMBEDDED_PG_PORT!));
  const [dev] = await makeDevices(db, 1, 'curl');
  await db.end();
  s.auth = dev!.auth;
  return s;
}

/** Session (untimed), then PUT with `curl -T` + complete with curl (timed); deletes it afterwards. */
async function mediaryUpload(s: Service): Promise<number> {
  const to = { api: (p: string) => s.svc.api(p), authorization: s.auth.authorization!, label: s.name };
  const session = await openSession(curl, to, { bytes: SIZE, sha256: SHA });
  const t0 = performance.now();
  await putAndComplete(curl, to, session, source);
  const seconds = (performance.now() - t0) / 1000;
  await deleteMedia(curl, to, session.mediaId);
  return seconds;
}

const sink = await startDurableSink(curl, path.join(work.dir, 'sink'), { file: source, sha256: SHA });
const sinkUpload = () => sink.upload();

async function meminfo(): Promise<{ cachedMiB: number; dirtyMiB: number }> {
  const text = await readFile('/proc/meminfo', 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
  return { cachedMiB: Math.round(kb('Cached') / 1024), dirtyMiB: Math.round(kb('Dirty') / 1024) };
}

/** Files under any `.tmp`/`.tus` directory of the service's data dir, and their bytes. */
async function leftovers(dir: string): Promise<{ files: number; bytes: number }> {
  let files = 0;
  let bytes = 0;
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    const full = path.join(e.parentPath, e.name);
    if (!e.isFile() || !/(^|\/)\.(tmp|tus)(\/|$)/.test(path.relative(dir, full))) continue;
    files++;
    bytes += (await statFile(full)).size;
  }
  return { files, bytes };
}

const mibps = (xs: number[]) => stat(xs.map((s) => SIZE / MiB / s));
const loadAvg = () =>
  os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' ');
const samples = {
  freshSink: [] as number[],
  freshMediary: [] as number[],
  afterSink: [] as number[],
  afterLong: [] as number[],
  afterFresh: [] as number[],
  restartSink: [] as number[],
  restarted: [] as number[],
  restartFresh: [] as number[],
};
const state: Record<string, unknown> = {};
const long = await startService('long');
let fresh: Service | undefined;
let restarted: Service | undefined;
try {
  log(`curl upload: ${SIZE / MiB} MiB per upload, ${ROUNDS} rounds, load average ${loadAvg()}`);
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 ? ['mediary', 'sink'] : ['sink', 'mediary'];
    for (const name of order) {
      syncDisks();
      const s = name === 'sink' ? await sinkUpload() : await mediaryUpload(long);
      (name === 'sink' ? samples.freshSink : samples.freshMediary).push(s);
      log(`fresh ${round + 1}/${ROUNDS} ${name}: ${fmt(SIZE / MiB / s)} MiB/s`);
    }
  }
  const before = { memory: long.memory, rss: memoryOf(long.svc.pid), ...(await meminfo()) };
  const t0 = performance.now();
  let stored = 0;
  while (stored < HISTORY) {
    await mediaryUpload(long);
    stored += SIZE;
  }
  const historySeconds = (performance.now() - t0) / 1000;
  syncDisks();
  await new Promise((r) => setTimeout(r, 1500)); // one more diagnostics line
  const afterHistory = {
    memory: long.memory,
    rss: memoryOf(long.svc.pid),
    ...(await meminfo()),
    leftovers: await leftovers(long.dataDir),
  };
  Object.assign(state, {
    historyBytes: stored,
    historySeconds,
    historyMiBps: stored / MiB / historySeconds,
    before,
    afterHistory,
  });
  log(
    `history: ${stored / GiB} GiB stored and deleted in ${fmt(historySeconds)} s; load average ${loadAvg()}`,
  );
  fresh = await startService('fresh');
  for (let round = 0; round < ROUNDS; round++) {
    const names = ['sink', 'long', 'fresh'];
    for (let i = 0; i < names.length; i++) {
      const name = names[(i + round) % names.length]!;
      syncDisks();
      const s = name === 'sink' ? await sinkUpload() : await mediaryUpload(name === 'long' ? long : fresh);
      (name === 'sink' ? samples.afterSink : name === 'long' ? samples.afterLong : samples.afterFresh).push(
        s,
      );
      log(`after history ${round + 1}/${ROUNDS} ${name}: ${fmt(SIZE / MiB / s)} MiB/s`);
    }
  }
  state.end = { memory: long.memory, rss: memoryOf(long.svc.pid), leftovers: await leftovers(long.dataDir) };
  if (RESTART) {
    // The long-running service restarted on its own data directory: a new process (memory,
    // sockets, caches) on the same files and the same Postgres data. Still slow → on-disk state.
    await long.svc.kill('SIGTERM');
    restarted = await startService('long');
    for (let round = 0; round < ROUNDS; round++) {
      const names = ['sink', 'restarted', 'fresh'];
      for (let i = 0; i < names.length; i++) {
        const name = names[(i + round) % names.length]!;
        syncDisks();
        const s =
          name === 'sink'
            ? await sinkUpload()
            : await mediaryUpload(name === 'restarted' ? restarted : fresh);
        (name === 'sink'
          ? samples.restartSink
          : name === 'restarted'
            ? samples.restarted
            : samples.restartFresh
        ).push(s);
        log(`after restart ${round + 1}/${ROUNDS} ${name}: ${fmt(SIZE / MiB / s)} MiB/s`);
      }
    }
  }
} finally {
  await sink.stop();
  await restarted?.svc.kill('SIGTERM');
  await long.svc.kill('SIGTERM');
  await fresh?.svc.kill('SIGTERM');
  await work.cleanup();
}

const fs = mibps(samples.freshSink);
const fm = mibps(samples.freshMediary);
const as = mibps(samples.afterSink);
const al = mibps(samples.afterLong);
const af = mibps(samples.afterFresh);
const perRound = (a: number[], b: number[]) => a.map((s, i) => (b[i]! / s).toFixed(2)).join(', ');
const rows: BenchRow[] = [
  {
    bench: `curl -T ${SIZE / MiB} MiB, fresh`,
    figure: 'Mediary PUT + complete',
    unit: 'MiB/s',
    value: fm,
    baselineName: 'raw durable sink (sha256, new file, fsync file + dir)',
    baseline: fs,
    ratio: fm.median / fs.median,
    ratioMeaning: `Mediary / sink (per pair ${perRound(samples.freshMediary, samples.freshSink)})`,
    goal: '≥ 0.95×',
    met: fm.median / fs.median >= 0.95,
  },
  {
    bench: `curl -T ${SIZE / MiB} MiB, after ${HISTORY / GiB} GiB stored+deleted`,
    figure: 'long-running Mediary PUT + complete',
    unit: 'MiB/s',
    value: al,
    baselineName: 'raw durable sink, same time',
    baseline: as,
    ratio: al.median / as.median,
    ratioMeaning: `long-running Mediary / sink (per round ${perRound(samples.afterLong, samples.afterSink)})`,
    goal: '≥ 0.95×',
    met: al.median / as.median >= 0.95,
  },
  {
    bench: `curl -T ${SIZE / MiB} MiB, after the history`,
    figure: 'fresh Mediary (new process + data dir) PUT + complete',
    unit: 'MiB/s',
    value: af,
    baselineName: 'raw durable sink, same time',
    baseline: as,
    ratio: af.median / as.median,
    ratioMeaning: `fresh Mediary / sink (per round ${perRound(samples.afterFresh, samples.afterSink)})`,
    goal: '≥ 0.95×',
    met: af.median / as.median >= 0.95,
  },
  {
    bench: 'long-running vs fresh, same rounds',
    figure: 'long-running Mediary',
    unit: 'MiB/s',
    value: al,
    baselineName: 'fresh Mediary',
    baseline: af,
    ratio: al.median / af.median,
    ratioMeaning: 'long / fresh: below 1 only if the service itself slows down',
    goal: '≈ 1',
    met: null,
  },
  {
    bench: 'sink after vs before the history',
    figure: 'raw durable sink after',
    unit: 'MiB/s',
    value: as,
    baselineName: 'raw durable sink, fresh phase',
    baseline: fs,
    ratio: as.median / fs.median,
    ratioMeaning: 'after / before: the disk (and machine) alone',
    goal: '—',
    met: null,
  },
];
if (RESTART) {
  const rs = mibps(samples.restartSink);
  const rr = mibps(samples.restarted);
  const rf = mibps(samples.restartFresh);
  rows.push(
    {
      bench: 'after restarting the long-running service on its data directory',
      figure: 'restarted Mediary PUT + complete',
      unit: 'MiB/s',
      value: rr,
      baselineName: 'fresh Mediary, same rounds',
      baseline: rf,
      ratio: rr.median / rf.median,
      ratioMeaning: `restarted / fresh (per round ${perRound(samples.restarted, samples.restartFresh)}): below 1 → on-disk state`,
      goal: '≈ 1',
      met: null,
    },
    {
      bench: 'after restarting',
      figure: 'restarted Mediary PUT + complete',
      unit: 'MiB/s',
      value: rr,
      baselineName: 'raw durable sink, same rounds',
      baseline: rs,
      ratio: rr.median / rs.median,
      ratioMeaning: `restarted / sink (per round ${perRound(samples.restarted, samples.restartSink)})`,
      goal: '≥ 0.95×',
      met: rr.median / rs.median >= 0.95,
    },
  );
}
for (const r of rows) {
  process.stderr.write(
    `[curl] ${r.bench} | ${r.figure}: ${fmt(r.value.median)} [${fmt(r.value.min)}–${fmt(r.value.max)}] | ${r.baselineName}: ${fmt(r.baseline!.median)} [${fmt(r.baseline!.min)}–${fmt(r.baseline!.max)}] | ${fmt(r.ratio!, 2)}× ${r.ratioMeaning}\n`,
  );
}
process.stderr.write(`[curl] ${JSON.stringify({ ...state, loadAverageAfter: os.loadavg() })}\n`);
await report({
  name: 'curl-upload',
  rows,
  notes: [JSON.stringify({ ...state, loadAverageAfter: os.loadavg() })],
});
await writeFile(
  path.join(os.tmpdir(), 'mediary-curl-last.json'),
  JSON.stringify({ rows, state }, null, 2),
).catch(() => undefined);
