/**
 * Processing and upload latency under sustained upload load (issue 22 §2–§3): N clients upload a
 * small camera JPEG (session → PUT → complete, over and over) for T seconds against a spawned
 * `mediary serve`; then the load stops and the backlog drains with nothing else running.
 *
 * Reports uploads/s accepted, per-step latency (session, PUT, complete, whole upload) p50/p99,
 * time-to-READY (complete answered → `processed_at`) p50/p99, READY/s during the load against
 * READY/s while the backlog drains (the same pipeline idle: the ratio the issue's goal is about),
 * the drain time, sessions refused with 503 + Retry-After (admission control; the clients wait
 * as told and try again with the same messageId), and the server's own event-loop delay and
 * Postgres pool waits (`DIAGNOSTICS_INTERVAL_SECONDS`, logged by the service, parsed here).
 *
 * `BENCH_LOAD_CLIENTS` (200), `BENCH_LOAD_SECONDS` (60), `BENCH_LOAD_SPLIT=1` (API with
 * `WORKER_ENABLED=false` and one `mediary worker` process beside it), `BENCH_LOAD_ENV`
 * (`K=V,K=V` added to the service's and worker's environment; the service runs with its default
 * admission bound unless `ADMISSION_MAX_BACKLOG_SECONDS` is given there), `BENCH_LOAD_TIMELINE=1`
 * (a per-second table of each step's latency, the event loop and the pool waiters).
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fixture } from '../test/helpers/files.ts';
import { BIN, embeddedUrl, makeDevices, poolFor, spawnService } from '../test/helpers/process.ts';
import { DEFAULT_MAX_BACKLOG_SECONDS } from '../src/config/load.ts';
import { testEnv } from '../test/helpers/server.ts';
import { fmt, log, percentile, report, scratch, stat, type BenchRow } from './lib/common.ts';
import { cpuDelta, machineBusySeconds, treeCpu } from './lib/cpu.ts';

const CLIENTS = Number(process.env.BENCH_LOAD_CLIENTS ?? 200);
const SECONDS = Number(process.env.BENCH_LOAD_SECONDS ?? 60);
const SPLIT = process.env.BENCH_LOAD_SPLIT === '1';
const EXTRA = Object.fromEntries(
  (process.env.BENCH_LOAD_ENV ?? '')
    .split(',')
    .filter(Boolean)
    .map((kv) => kv.split('=') as [string, string]),
);
const JPEG = fixture('cameras/Canon_40D.jpg');
const JPEG_SHA = createHash('sha256').update(JPEG).digest('hex');

interface LoopSample {
  at: number;
  p50: number;
  p99: number;
  max: number;
  poolWaiting: number;
  poolTotal: number;
}
const loop: LoopSample[] = [];
const onLine = (line: string) => {
  if (!line.includes('"diagnostics"')) return;
  try {
    const o = JSON.parse(line) as {
      eventLoopDelayMs: { p50: number; p99: number; max: number };
      pool: { waiting: number; total: number; maxWaiting: number };
    };
    loop.push({
      at: Date.now(),
      ...o.eventLoopDelayMs,
      poolWaiting: o.pool.maxWaiting,
      poolTotal: o.pool.total,
    });
  } catch {
    // not ours
  }
};

const work = await scratch('load');
const env = await testEnv(path.join(work.dir, 'svc'), {
  LOG_LEVEL: 'warn',
  DIAGNOSTICS_INTERVAL_SECONDS: '1',
  RATE_LIMIT_SESSIONS_PER_MINUTE: '1000000',
  // The service's default (test helpers turn admission off); BENCH_LOAD_ENV=ADMISSION_MAX_BACKLOG_SECONDS=0 measures without it.
  ADMISSION_MAX_BACKLOG_SECONDS: String(DEFAULT_MAX_BACKLOG_SECONDS),
  ...(SPLIT ? { WORKER_ENABLED: 'false' } : {}),
  ...EXTRA,
});
/** BENCH_LOAD_NODE_ARGS: node flags of the service (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`). */
const nodeArgs = (process.env.BENCH_LOAD_NODE_ARGS ?? '').split(' ').filter(Boolean);
const svc = await spawnService(env, { onStdout: onLine, nodeArgs });
const worker = SPLIT
  ? spawn(process.execPath, [BIN, 'worker'], {
      env: { ...process.env, ...env, DIAGNOSTICS_INTERVAL_SECONDS: '0' },
      stdio: 'ignore',
    })
  : undefined;
const db = poolFor(embeddedUrl(env.DATA_DIR!, env.EMBEDDED_PG_PORT!));
const devices = await makeDevices(db, CLIENTS, 'load');
log(
  `load: ${CLIENTS} clients × ${SECONDS} s, ${SPLIT ? 'separate worker process' : 'worker in the API process'}` +
    `, load average ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}` +
    (Object.keys(EXTRA).length ? `, env ${JSON.stringify(EXTRA)}` : ''),
);

/** One request's latency and when it was sent (ms since the epoch). */
interface Sample {
  at: number;
  ms: number;
}
const lat = { session: [] as Sample[], put: [] as Sample[], complete: [] as Sample[], flow: [] as Sample[] };
/**
 * The first seconds are a cold start: 200 clients open their first session in the same instant,
 * against empty caches and a cold pool. Latency is also reported without them (steady state).
 */
const WARMUP_MS = 5000;
const refusedLat: number[] = [];
const errors: string[] = [];
let refused = 0;
const completedAt = new Map<string, number>();

async function call(url: string, init: RequestInit) {
  const at = Date.now();
  const t0 = performance.now();
  const res = await fetch(url, init);
  const text = await res.text();
  return { res, text, at, ms: performance.now() - t0 };
}

/** CPU seconds during the load: the service (and its Postgres), a split worker, these clients, the machine. */
const cpuNow = () => ({
  service: treeCpu(svc.pid),
  worker: worker?.pid ? treeCpu(worker.pid) : {},
  clients: process.cpuUsage(),
  machine: machineBusySeconds(),
});
const cpuStart = cpuNow();
const loadStart = Date.now();
const deadline = loadStart + SECONDS * 1000;
await Promise.all(
  devices.map(async (dev, w) => {
    for (let n = 0; Date.now() < deadline; n++) {
      try {
        const t0 = performance.now();
        const flowAt = Date.now();
        let s: Awaited<ReturnType<typeof call>>;
        for (;;) {
          s = await call(svc.api('/media'), {
            method: 'POST',
            headers: { ...dev.auth, 'content-type': 'application/json' },
            body: JSON.stringify({
              fileName: 'p.jpg',
              mimeType: 'image/jpeg',
              bytes: JPEG.length,
              sha256: JPEG_SHA,
              messageId: `w${w}-${n}`,
            }),
          });
          const retryAfter = s.res.headers.get('retry-after');
          if (s.res.status !== 503 || !retryAfter) break;
          refused++;
          refusedLat.push(s.ms);
          const wait = Number(retryAfter) * 1000;
          if (Date.now() + wait >= deadline) return;
          await sleep(wait);
        }
        if (s.res.status !== 201) throw new Error(`session ${s.res.status} ${s.text.slice(0, 200)}`);
        lat.session.push(s);
        const session = JSON.parse(s.text) as { mediaId: string; upload: { url: string } };
        const up = await call(session.upload.url, {
          method: 'PUT',
          headers: { 'content-type': 'image/jpeg' },
          body: JPEG,
        });
        if (up.res.status !== 200) throw new Error(`PUT ${up.res.status} ${up.text.slice(0, 200)}`);
        lat.put.push(up);
        const done = await call(svc.api(`/media/${session.mediaId}/complete`), {
          method: 'POST',
          headers: dev.auth,
        });
        if (done.res.status !== 200)
          throw new Error(`complete ${done.res.status} ${done.text.slice(0, 200)}`);
        lat.complete.push(done);
        lat.flow.push({ at: flowAt, ms: performance.now() - t0 });
        completedAt.set(session.mediaId, Date.now());
      } catch (err) {
        errors.push((err as Error).message);
      }
    }
  }),
);
const loadEnd = Date.now();
const cpuEnd = cpuNow();
const loadSeconds = (loadEnd - loadStart) / 1000;
const round2 = (o: Record<string, number>) =>
  Object.fromEntries(Object.entries(o).map(([k, v]) => [k, Math.round(v * 100) / 100]));
const serviceCpu = cpuDelta(cpuStart.service, cpuEnd.service);
const workerCpu = cpuDelta(cpuStart.worker, cpuEnd.worker);
const clientsCpu =
  (cpuEnd.clients.user + cpuEnd.clients.system - cpuStart.clients.user - cpuStart.clients.system) / 1e6;
const machineCpu = cpuEnd.machine - cpuStart.machine;
const ours = [...Object.values(serviceCpu), ...Object.values(workerCpu), clientsCpu].reduce(
  (a, b) => a + b,
  0,
);
/** CPU seconds during the load window by who used them (2 cores × seconds is the most there is). */
const cpu = {
  capacity: Math.round(os.cpus().length * loadSeconds * 10) / 10,
  machineBusy: Math.round(machineCpu * 10) / 10,
  service: round2(serviceCpu),
  worker: round2(workerCpu),
  clients: Math.round(clientsCpu * 100) / 100,
  othersOnTheMachine: Math.round((machineCpu - ours) * 10) / 10,
};
log(`CPU during the load: ${JSON.stringify(cpu)}`);
const ids = [...completedAt.keys()];
const countReady = async () =>
  (
    await db.query<{ ready: number; failed: number }>(
      `SELECT count(*) FILTER (WHERE status = 'READY')::int AS ready,
              count(*) FILTER (WHERE status = 'FAILED')::int AS failed
         FROM media WHERE id = ANY($1::uuid[])`,
      [ids],
    )
  ).rows[0]!;
const atEnd = await countReady();
const backlog = ids.length - atEnd.ready - atEnd.failed;
log(`load ended: ${ids.length} uploads, ${atEnd.ready} READY, backlog ${backlog}; draining`);
const drainStart = Date.now();
let drained = atEnd;
while (drained.ready + drained.failed < ids.length) {
  await sleep(250);
  drained = await countReady();
  if (Date.now() - drainStart > 30 * 60_000) throw new Error('backlog did not drain in 30 minutes');
}
const drainSeconds = (Date.now() - drainStart) / 1000;

const { rows } = await db.query<{ id: string; processed_at: Date }>(
  `SELECT id, processed_at FROM media WHERE id = ANY($1::uuid[]) AND status = 'READY'`,
  [ids],
);
const readyDuringLoad = rows.filter((r) => r.processed_at.getTime() <= loadEnd).length;
const toReady = rows.map((r) => (r.processed_at.getTime() - completedAt.get(r.id)!) / 1000);
await db.end();
worker?.kill('SIGTERM');
await svc.kill('SIGTERM');
await work.cleanup();

const loadRate = readyDuringLoad / loadSeconds;
const drainRate = backlog / drainSeconds;
const q = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length
    ? { p50: percentile(s, 50), p99: percentile(s, 99), n: s.length }
    : { p50: NaN, p99: NaN, n: 0 };
};
const duringLoad = loop.filter((l) => l.at > loadStart + 1000 && l.at <= loadEnd);
const one = (v: number) => stat([v]);
const rowsOut: BenchRow[] = [];
const row = (figure: string, unit: string, v: number, extra: Partial<BenchRow> = {}) =>
  rowsOut.push({
    bench: 'load',
    figure,
    unit,
    value: one(v),
    baselineName: '',
    goal: '',
    met: null,
    ...extra,
  });
row('uploads accepted', 'uploads/s', ids.length / loadSeconds);
row('READY during load', 'images/s', loadRate, {
  baselineName: 'READY/s draining the backlog afterwards (same pipeline, idle)',
  baseline: one(drainRate),
  ratio: loadRate / drainRate,
  ratioMeaning: 'during load / idle',
  goal: '≥ 0.5×',
  met: loadRate / drainRate >= 0.5,
});
row('backlog drain time', 's', drainSeconds);
for (const [k, samples] of Object.entries(lat)) {
  const p = q(samples.map((x) => x.ms));
  const steady = q(samples.filter((x) => x.at >= loadStart + WARMUP_MS).map((x) => x.ms));
  const goal = k === 'session' || k === 'complete';
  const met = (v: number) => (goal ? { goal: 'p99 ≤ 1000 ms', met: v <= 1000 } : {});
  row(`${k} p50`, 'ms', p.p50);
  row(`${k} p99`, 'ms', p.p99, met(p.p99));
  row(`${k} p99 after the first ${WARMUP_MS / 1000} s`, 'ms', steady.p99, met(steady.p99));
}
if (process.env.BENCH_LOAD_TIMELINE === '1') printTimeline();
const tr = q(toReady);
row('time-to-READY p50', 's', tr.p50);
row('time-to-READY p99', 's', tr.p99);
const loopP99 = stat(duringLoad.map((l) => l.p99).concat(duringLoad.length ? [] : [NaN]));
row('server event-loop delay p99 (median of 1 s windows during load)', 'ms', loopP99.median);
row('server event-loop delay max (during load)', 'ms', Math.max(...duringLoad.map((l) => l.max), 0));
row(
  'Postgres pool: most requests waiting for a connection',
  'count',
  Math.max(...duringLoad.map((l) => l.poolWaiting), 0),
);

/**
 * BENCH_LOAD_TIMELINE=1: per second of the load (by when each request was sent), requests and
 * p50/p99 of each step, refusals, and the service's event-loop p99 and pool waiters that second.
 */
function printTimeline(): void {
  const secondOf = (at: number) => Math.floor((at - loadStart) / 1000);
  const bySecond = new Map<number, Record<string, number[]>>();
  for (const [k, samples] of Object.entries(lat)) {
    for (const s of samples) {
      const b = bySecond.get(secondOf(s.at)) ?? {};
      (b[k] ??= []).push(s.ms);
      bySecond.set(secondOf(s.at), b);
    }
  }
  const cell = (xs: number[] | undefined) => {
    if (!xs?.length) return '—'.padStart(16);
    const s = [...xs].sort((a, b) => a - b);
    return `${String(s.length).padStart(4)} ${fmt(percentile(s, 50)).padStart(5)}/${fmt(percentile(s, 99)).padStart(5)}`;
  };
  process.stderr.write(
    '[timeline] s | session n p50/p99 ms | put n p50/p99 | complete n p50/p99 | loop p99 | pool waiting\n',
  );
  for (const sec of [...bySecond.keys()].sort((a, b) => a - b)) {
    const b = bySecond.get(sec)!;
    const l = loop.find((x) => secondOf(x.at) === sec);
    process.stderr.write(
      `[timeline] ${String(sec).padStart(3)} | ${cell(b.session)} | ${cell(b.put)} | ${cell(b.complete)} | ${l ? fmt(l.p99).padStart(6) : '—'} | ${l ? l.poolWaiting : '—'}\n`,
    );
  }
}

const summary = {
  clients: CLIENTS,
  seconds: SECONDS,
  split: SPLIT,
  env: EXTRA,
  loadAverageAfter: os.loadavg(),
  uploads: ids.length,
  errors: errors.length,
  firstErrors: errors.slice(0, 5),
  refused,
  refusedLatency: q(refusedLat),
  readyDuringLoad,
  backlogAtEnd: backlog,
  failed: drained.failed,
  cpu,
  cpuMsPerUpload: round2(
    Object.fromEntries(
      [
        ...Object.entries(serviceCpu).map(([k, v]) => [k === 'self' ? 'service' : `service:${k}`, v]),
        ...Object.entries(workerCpu).map(([k, v]) => [k === 'self' ? 'worker' : `worker:${k}`, v]),
        ['clients', clientsCpu],
      ].map(([k, v]) => [k, ((v as number) * 1000) / Math.max(1, ids.length)]),
    ),
  ),
};
for (const r of rowsOut) {
  const base = r.baseline ? ` | ${r.baselineName}: ${fmt(r.baseline.median)} | ${fmt(r.ratio!, 2)}×` : '';
  process.stderr.write(
    `[load] ${r.figure}: ${fmt(r.value.median)} ${r.unit}${base}${r.goal ? ` (goal ${r.goal})` : ''}\n`,
  );
}
process.stderr.write(`[load] ${JSON.stringify(summary)}\n`);
await report({
  name: 'load',
  rows: rowsOut,
  notes: [
    `${CLIENTS} clients × ${SECONDS} s; ${ids.length} uploads, ${errors.length} errors, ${refused} sessions refused (503 + Retry-After, retried after the wait).`,
    `Event-loop delay: the service's own monitorEventLoopDelay, 1 s windows (${duringLoad.length} during the load).`,
    JSON.stringify(summary),
  ],
});
