/**
 * The cost of metrics on the hot path (issue 21): `POST /api/v1/media` (new upload sessions) under
 * autocannon against two copies of the service on one database, one with metrics on (METRICS_TOKEN:
 * every request timed by route, sessions counted, store calls wrapped, /metrics scraped every 5 s
 * meanwhile as a Prometheus would) and one with them off. Rounds alternate which goes first, so
 * neither always meets the warmer database. Two figures: requests per second, and the service's own
 * CPU time per request (from /proc: far less sensitive than throughput to other work on a loaded
 * machine); each as the ratio on/off of the medians.
 * `npm run bench -- metrics` (BENCH_METRICS_SECONDS, BENCH_REPS).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import autocannon from 'autocannon';
import {
  embeddedUrl,
  makeDevices,
  poolFor,
  spawnService,
  type ServiceProcess,
} from '../test/helpers/process.ts';
import { testEnv } from '../test/helpers/server.ts';
import { fmt, log, report, reps, scratch, stat } from './lib/common.ts';

const SECONDS = Number(process.env.BENCH_METRICS_SECONDS ?? 8);
const CONNECTIONS = 32;
const ROUNDS = reps(6);
const TOKEN = 'bench-metrics-token-0123456789abcdef';

const common = {
  LOG_LEVEL: 'warn',
  RATE_LIMIT_SESSIONS_PER_MINUTE: '1000000',
  QUOTA_DEVICE_OPEN_SESSIONS: '100000000',
  QUOTA_USER_OPEN_SESSIONS: '100000000',
  WORKER_ENABLED: 'false',
  SWEEP_INTERVAL_SECONDS: '0',
};
const work = await scratch('metrics');
const offEnv = await testEnv(path.join(work.dir, 'off'), common);
const off = await spawnService(offEnv);
const url = embeddedUrl(offEnv.DATA_DIR!, offEnv.EMBEDDED_PG_PORT!);
const onEnv = await testEnv(path.join(work.dir, 'on'), {
  ...common,
  DATABASE_URL: url,
  METRICS_TOKEN: TOKEN,
});
const on = await spawnService(onEnv);
const db = poolFor(url, 4);
const [dev] = await makeDevices(db, 1, 'bench');

/** CPU seconds (user + system) the process has used, from /proc/PID/stat (clock ticks, 100 Hz). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function sessions(target: ServiceProcess, scrape: boolean) {
  let scrapes = 0;
  const cpu0 = cpuSeconds(target.pid);
  const timer = scrape
    ? setInterval(() => {
        void fetch(`${target.base}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })
          .then((r) => r.text())
          .then(() => scrapes++);
      }, 5000)
    : undefined;
  try {
    const r = await autocannon({
      url: target.api('/media'),
      method: 'POST',
      headers: { ...dev!.auth, 'content-type': 'application/json' },
      body: JSON.stringify({ fileName: 'p.jpg', mimeType: 'image/jpeg', bytes: 123456 }),
      connections: CONNECTIONS,
      duration: SECONDS,
    });
    const cpuMs = ((cpuSeconds(target.pid) - cpu0) * 1000) / Math.max(1, r.requests.total);
    return { rps: r.requests.average, p99: r.latency.p99, bad: r.non2xx + r.errors, scrapes, cpuMs };
  } finally {
    clearInterval(timer);
  }
}

const onRps: number[] = [];
const offRps: number[] = [];
const onP99: number[] = [];
const offP99: number[] = [];
const ratios: number[] = [];
const onCpu: number[] = [];
const offCpu: number[] = [];
let bad = 0;
let scrapes = 0;
let counted = 0;
try {
  await sessions(on, false); // warm-up of both (JIT, pools, prepared statements)
  await sessions(off, false);
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 ? (['off', 'on'] as const) : (['on', 'off'] as const);
    const r: Record<string, Awaited<ReturnType<typeof sessions>>> = {};
    for (const which of order) r[which] = await sessions(which === 'on' ? on : off, which === 'on');
    onRps.push(r.on!.rps);
    offRps.push(r.off!.rps);
    onP99.push(r.on!.p99);
    offP99.push(r.off!.p99);
    ratios.push(r.on!.rps / r.off!.rps);
    onCpu.push(r.on!.cpuMs);
    offCpu.push(r.off!.cpuMs);
    bad += r.on!.bad + r.off!.bad;
    scrapes += r.on!.scrapes;
    log(
      `metrics round ${round + 1}/${ROUNDS} (${order.join(' then ')}): on ${fmt(r.on!.rps)}/s (p99 ${r.on!.p99} ms), off ${fmt(r.off!.rps)}/s (p99 ${r.off!.p99} ms), on/off ${fmt(ratios.at(-1)!, 3)}; CPU per request on ${fmt(r.on!.cpuMs, 3)} ms, off ${fmt(r.off!.cpuMs, 3)} ms`,
    );
  }
  const text = await (
    await fetch(`${on.base}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })
  ).text();
  counted = Number(/^mediary_upload_sessions_created_total\{[^}]*\} (\d+)/m.exec(text)?.[1] ?? 0);
} finally {
  await db.end();
  await on.kill('SIGTERM');
  await off.kill('SIGTERM');
  await work.cleanup();
}

const a = stat(onRps);
const b = stat(offRps);
const r = stat(ratios);
const ca = stat(onCpu);
const cb = stat(offCpu);
await report({
  name: 'metrics-overhead',
  rows: [
    {
      bench: 'POST /media sessions/s, metrics on',
      figure: `autocannon ${CONNECTIONS} conns, ${SECONDS} s, scraped every 5 s`,
      unit: 'req/s',
      value: a,
      baselineName: 'same service, metrics off (same database, alternating rounds)',
      baseline: b,
      ratio: a.median / b.median,
      ratioMeaning: 'on / off (median of rounds)',
      goal: '≥ 0.95× (≤ 5 % cost)',
      met: a.median / b.median >= 0.95 && bad === 0,
    },
    {
      bench: 'service CPU per session, metrics on',
      figure: 'user + system CPU of the service process / requests',
      unit: 'ms',
      value: ca,
      baselineName: 'same service, metrics off',
      baseline: cb,
      ratio: ca.median / cb.median,
      ratioMeaning: 'on / off CPU per request (lower is better)',
      goal: '≤ 1.05×',
      met: ca.median / cb.median <= 1.05,
    },
  ],
  notes: [
    `Per-round on/off ratios: ${ratios.map((x) => fmt(x, 3)).join(', ')} (median ${fmt(r.median, 3)}).`,
    `p99 latency on: ${onP99.join(', ')} ms; off: ${offP99.join(', ')} ms. Non-2xx or errors: ${bad}. Scrapes during the runs: ${scrapes}; sessions counted by the metrics service: ${counted}.`,
    'Client (autocannon), both services and Postgres share the machine’s 2 cores; the idle service waits while the other runs.',
  ],
});
