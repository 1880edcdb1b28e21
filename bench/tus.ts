/**
 * `npm run bench:tus`: a 1 GiB upload through Mediary's tus endpoint (POST + one PATCH; the last
 * byte publishes the object and completes the session: sha256 computed as the bytes pass, fsync,
 * hard link, type sniffed, UPLOADED) against @tus/server with its FileStore (POST + one PATCH; no
 * hash, no fsync), in the same run, alternating which goes first. Also Mediary with the client's
 * tus-js-client-style 64 MiB PATCHes, and @tus/server made as durable as Mediary (its PATCH
 * answered after an fsync), which separates the cost of durability from the cost of hashing. `BENCH_TUS_BYTES` sets the size, `BENCH_REPS` the rounds.
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fakeMp4 } from '../test/helpers/process.ts';
import { freePort } from '../test/helpers/server.ts';
import {
  GiB,
  MiB,
  fmt,
  log,
  report,
  reps,
  scratch,
  startHelper,
  startSinglePutService,
  stat,
  streamUpload,
  syncDisks,
} from './lib/common.ts';
import { machineCpu, processCpu, processesNamedCpu, threadCpu, threadDelta } from './lib/thread-cpu.ts';

const SIZE = Number(process.env.BENCH_TUS_BYTES ?? GiB);
const CHUNK = 64 * MiB;
const ROUNDS = reps(3);
const pattern = fakeMp4(16 * MiB);
const hash = createHash('sha256');
for (let sent = 0; sent < SIZE; sent += pattern.length)
  hash.update(pattern.subarray(0, Math.min(pattern.length, SIZE - sent)));
const SHA = hash.digest('hex');
const b64 = (s: string) => Buffer.from(s).toString('base64');

const work = await scratch('tus');
const tusDir = path.join(work.dir, 'tus-server');
await mkdir(tusDir);
// BENCH_TUS_CPU_PROF=DIR: a V8 CPU profile of the Mediary service (written when it stops).
const profDir = process.env.BENCH_TUS_CPU_PROF;
const { svc, dev } = await startSinglePutService(path.join(work.dir, 'mediary'), {
  nodeArgs: profDir ? ['--cpu-prof', '--cpu-prof-dir', path.resolve(profDir)] : [],
});
// BENCH_TUS_ONLY=mediary,tusServer: a subset (profiling, quick checks). `mediary` runs with the
// default TUS_HASH_THREAD (the hashing thread with two cores or more); mediaryLoop is a second
// service with TUS_HASH_THREAD=false (SHA-256 on the event loop): the same-run A/B of the thread.
const order = (process.env.BENCH_TUS_ONLY?.split(',') ?? [
  'mediary',
  'tusServer',
  'mediaryChunked',
  'mediaryLoop',
  'tusServerDurable',
]) as Name[];
const onLoop = order.includes('mediaryLoop')
  ? await startSinglePutService(path.join(work.dir, 'mediary-loop'), { env: { TUS_HASH_THREAD: 'false' } })
  : undefined;
const tusPort = await freePort();
const tus = await startHelper('tus.ts', [String(tusPort), tusDir]);
const durableDir = path.join(work.dir, 'tus-server-durable');
await mkdir(durableDir);
const durablePort = await freePort();
const durable = order.includes('tusServerDurable')
  ? await startHelper('tus.ts', [String(durablePort), durableDir, 'durable'])
  : undefined;
const TUS = { 'tus-resumable': '1.0.0' };
const OCTETS = { ...TUS, 'content-type': 'application/offset+octet-stream' };

async function mediaryTus(chunk: number, service = { svc, dev }): Promise<number> {
  const { svc, dev } = service;
  const t0 = performance.now();
  const c = await fetch(svc.api('/tus/'), {
    method: 'POST',
    headers: {
      ...dev.auth,
      ...TUS,
      'upload-length': String(SIZE),
      'upload-metadata': `filename ${b64('big.mp4')},filetype ${b64('video/mp4')},sha256 ${b64(SHA)}`,
    },
  });
  if (c.status !== 201) throw new Error(`mediary tus create: ${c.status} ${await c.text()}`);
  const location = c.headers.get('location')!;
  for (let offset = 0; offset < SIZE; offset += chunk) {
    const n = Math.min(chunk, SIZE - offset);
    const r = await streamUpload(location, {
      method: 'PATCH',
      headers: { ...dev.auth, ...OCTETS, 'upload-offset': String(offset) },
      pattern: pattern.subarray(0, Math.min(pattern.length, n)),
      total: n,
    });
    if (r.status !== 204) throw new Error(`mediary tus PATCH: ${r.status} ${r.body}`);
  }
  const seconds = (performance.now() - t0) / 1000;
  const id = location.split('/').pop()!;
  const m = (await (await fetch(svc.api(`/media/${id}`), { headers: dev.auth })).json()) as {
    status: string;
    sha256: string | null;
  };
  if (m.status !== 'UPLOADED') throw new Error(`mediary tus: ${JSON.stringify(m)}`);
  await fetch(svc.api(`/media/${id}`), { method: 'DELETE', headers: dev.auth });
  return seconds;
}

async function tusServerUpload(port: number, dir: string): Promise<number> {
  const t0 = performance.now();
  const c = await fetch(`http://127.0.0.1:${port}/files`, {
    method: 'POST',
    headers: { ...TUS, 'upload-length': String(SIZE) },
  });
  if (c.status !== 201) throw new Error(`tus create: ${c.status}`);
  const location = new URL(c.headers.get('location')!, `http://127.0.0.1:${port}`).toString();
  const r = await streamUpload(location, {
    method: 'PATCH',
    headers: { ...OCTETS, 'upload-offset': '0' },
    pattern,
    total: SIZE,
  });
  if (r.status !== 204) throw new Error(`tus PATCH: ${r.status} ${r.body}`);
  const seconds = (performance.now() - t0) / 1000;
  for (const f of await readdir(dir)) await rm(path.join(dir, f), { force: true });
  return seconds;
}

const contenders = {
  mediary: () => mediaryTus(SIZE),
  mediaryChunked: () => mediaryTus(CHUNK),
  mediaryLoop: () => mediaryTus(SIZE, onLoop),
  tusServer: () => tusServerUpload(tusPort, tusDir),
  tusServerDurable: () => tusServerUpload(durablePort, durableDir),
};
type Name = keyof typeof contenders;
const seconds: Record<Name, number[]> = {
  mediary: [],
  tusServer: [],
  mediaryChunked: [],
  mediaryLoop: [],
  tusServerDurable: [],
};
const serverPid: Record<Name, number> = {
  mediary: svc.pid,
  mediaryChunked: svc.pid,
  tusServer: tus.pid,
  mediaryLoop: onLoop?.svc.pid ?? 0,
  tusServerDurable: durable?.pid ?? 0,
};

/** CPU seconds per upload: where the two cores' time went (server threads, client, database, kernel). */
interface Cpu {
  wall: number;
  serverMain: number;
  serverOther: number;
  serverSys: number;
  client: number;
  postgres: number;
  /** All cores, every process and the kernel's own threads (writeback), busy seconds. */
  machine: number;
  iowait: number;
}
const cpu: Record<Name, Cpu[]> = {
  mediary: [],
  tusServer: [],
  mediaryChunked: [],
  mediaryLoop: [],
  tusServerDurable: [],
};
async function measured(name: Name): Promise<number> {
  const pid = serverPid[name];
  const t0 = threadCpu(pid);
  const c0 = processCpu(process.pid);
  const m0 = machineCpu();
  const pg0 = processesNamedCpu('postgres');
  const s = await contenders[name]();
  const m1 = machineCpu();
  const c1 = processCpu(process.pid);
  const g = threadDelta(t0, threadCpu(pid), (tid) => (tid === pid ? 'main' : 'other'));
  const main = g.main ?? { user: 0, sys: 0 };
  const other = g.other ?? { user: 0, sys: 0 };
  cpu[name].push({
    wall: s,
    serverMain: main.user + main.sys,
    serverOther: other.user + other.sys,
    serverSys: main.sys + other.sys,
    client: c1.user + c1.sys - c0.user - c0.sys,
    postgres: processesNamedCpu('postgres') - pg0,
    machine: m1.busy - m0.busy,
    iowait: m1.iowait - m0.iowait,
  });
  if (process.env.BENCH_TUS_THREADS) {
    const byName = threadDelta(t0, threadCpu(pid), (tid, t) => (tid === pid ? 'main' : t.name));
    log(`  ${name} server threads: ${JSON.stringify(byName)}`);
  }
  return s;
}
const load: number[] = [];
try {
  for (let round = 0; round < ROUNDS; round++) {
    for (let i = 0; i < order.length; i++) {
      const name = order[(i + round) % order.length]!;
      syncDisks();
      load.push(os.loadavg()[0]!);
      const s = await measured(name);
      seconds[name].push(s);
      const c = cpu[name].at(-1)!;
      log(
        `tus round ${round + 1}/${ROUNDS} ${name}: ${fmt(SIZE / MiB / s)} MiB/s (load ${fmt(load.at(-1)!)}); ` +
          `CPU s: server main ${fmt(c.serverMain, 2)} other ${fmt(c.serverOther, 2)} (kernel ${fmt(c.serverSys, 2)}), ` +
          `client ${fmt(c.client, 2)}, postgres ${fmt(c.postgres, 2)}, machine ${fmt(c.machine, 2)} of ` +
          `${fmt(os.cpus().length * s, 2)} (${os.cpus().length} cores × ${fmt(s, 2)} s), iowait ${fmt(c.iowait, 2)}`,
      );
    }
  }
} finally {
  await tus.stop();
  await durable?.stop();
  await svc.kill('SIGTERM');
  await onLoop?.svc.kill('SIGTERM');
  await work.cleanup();
}

const mibps = (name: Name) => stat(seconds[name].map((s) => SIZE / MiB / s));
const m = mibps('mediary');
const mc = seconds.mediaryChunked.length > 0 ? mibps('mediaryChunked') : undefined;
const tu = mibps('tusServer');
const mi = seconds.mediaryLoop.length > 0 ? mibps('mediaryLoop') : undefined;
const td = seconds.tusServerDurable.length > 0 ? mibps('tusServerDurable') : undefined;
const sizeLabel = SIZE >= GiB ? `${SIZE / GiB} GiB` : `${SIZE / MiB} MiB`;
const baselineName = '@tus/server + FileStore (POST + one PATCH)';
await report({
  name: 'tus',
  rows: [
    {
      bench: `tus ${sizeLabel}, one PATCH`,
      figure: 'Mediary /api/v1/tus (POST + PATCH, completes)',
      unit: 'MiB/s',
      value: m,
      baselineName,
      baseline: tu,
      ratio: m.median / tu.median,
      ratioMeaning: 'Mediary / @tus/server',
      goal: '≥ 1× (not slower)',
      met: m.median / tu.median >= 1,
    },
    ...(mc
      ? [
          {
            bench: `tus ${sizeLabel}, 64 MiB PATCHes`,
            figure: 'Mediary /api/v1/tus (POST + PATCH × n, completes)',
            unit: 'MiB/s',
            value: mc,
            baselineName,
            baseline: tu,
            ratio: mc.median / tu.median,
            ratioMeaning: 'Mediary chunked / @tus/server one PATCH',
            goal: 'report',
            met: null,
          },
        ]
      : []),
    ...(mi
      ? [
          {
            bench: `tus ${sizeLabel}, one PATCH, SHA-256 on the event loop (TUS_HASH_THREAD=false)`,
            figure: 'Mediary /api/v1/tus, hash on the event loop',
            unit: 'MiB/s',
            value: mi,
            baselineName,
            baseline: tu,
            ratio: mi.median / tu.median,
            ratioMeaning:
              'Mediary (hash on the event loop) / @tus/server; compare with the first row (default setting)',
            goal: 'report',
            met: null,
          },
        ]
      : []),
    ...(td
      ? [
          {
            bench: `tus ${sizeLabel}, one PATCH, against @tus/server made as durable (fsync before answering)`,
            figure: 'Mediary /api/v1/tus (POST + PATCH, completes)',
            unit: 'MiB/s',
            value: m,
            baselineName: '@tus/server + FileStore + fsync at the end of the PATCH',
            baseline: td,
            ratio: m.median / td.median,
            ratioMeaning: 'Mediary / durable @tus/server: what hashing, checks and the database cost',
            goal: 'report',
            met: null,
          },
        ]
      : []),
  ],
  notes: [
    ...order.map((name) => {
      const c = cpu[name];
      const med = (f: (x: Cpu) => number) => fmt(stat(c.map(f)).median, 2);
      return `${name} CPU s per upload (median): server event loop ${med((x) => x.serverMain)}, other threads ${med((x) => x.serverOther)}, client ${med((x) => x.client)}, postgres ${med((x) => x.postgres)}, machine busy ${med((x) => x.machine)} over ${med((x) => x.wall)} s wall`;
    }),
    `${ROUNDS} rounds, order rotated; \`sync\` before each upload. 1-minute load average at the starts: ${load.map((l) => fmt(l)).join(', ')} (${os.cpus().length} CPUs).`,
    'Mediary hashes (sha256) every byte, fsyncs before committing offsets (every TUS_CHECKPOINT_BYTES) and before publishing, checks the declared sha256 and sniffs the type; @tus/file-store neither hashes nor fsyncs.',
  ],
});
