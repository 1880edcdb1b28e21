/**
 * Memory per upload: peak RSS growth of the `mediary serve` process (sampled from /proc every 20 ms)
 * while it receives a 4 GiB file, against the same figure for the bare Node sink.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fakeMp4 } from '../test/helpers/process.ts';
import { freePort } from '../test/helpers/server.ts';
import {
  GiB,
  MiB,
  fmt,
  log,
  memoryOf,
  report,
  reps,
  sampleRss,
  scratch,
  startHelper,
  startSinglePutService,
  stat,
  streamUpload,
  syncDisks,
} from './lib/common.ts';

const SIZE = Number(process.env.BENCH_MEMORY_BYTES ?? 4 * GiB);
const ROUNDS = reps(2);
const pattern = fakeMp4(16 * MiB);
const headers = { 'content-type': 'video/mp4' };

const work = await scratch('memory');
const sinkDir = path.join(work.dir, 'sink');
await mkdir(sinkDir);
const { svc, dev } = await startSinglePutService(path.join(work.dir, 'mediary'));
const sinkPort = await freePort();
const sink = await startHelper('sink.ts', [String(sinkPort), sinkDir]);

async function mediaryUpload(total: number) {
  const s = await fetch(svc.api('/media'), {
    method: 'POST',
    headers: { ...dev.auth, 'content-type': 'application/json' },
    body: JSON.stringify({ fileName: 'big.mp4', mimeType: 'video/mp4', bytes: total }),
  });
  const session = (await s.json()) as { mediaId: string; upload: { url: string } };
  const r = await streamUpload(session.upload.url, { method: 'PUT', headers, pattern, total });
  if (r.status !== 200) throw new Error(`PUT ${r.status} ${r.body}`);
  const done = await fetch(svc.api(`/media/${session.mediaId}/complete`), {
    method: 'POST',
    headers: dev.auth,
  });
  if (done.status !== 200) throw new Error(`complete ${done.status}`);
  await fetch(svc.api(`/media/${session.mediaId}`), { method: 'DELETE', headers: dev.auth });
}

async function sinkUpload(total: number) {
  const r = await streamUpload(`http://127.0.0.1:${sinkPort}/`, { method: 'PUT', headers, pattern, total });
  const { rm } = await import('node:fs/promises');
  await rm((JSON.parse(r.body) as { file: string }).file);
}

/** Peak RSS growth over the RSS measured just before the upload, after a warm-up upload. */
async function growth(pid: number, upload: (n: number) => Promise<void>) {
  await upload(64 * MiB); // warm-up: JIT, buffers, pools
  syncDisks();
  const before = memoryOf(pid).rss;
  const sampler = sampleRss(pid);
  await upload(SIZE);
  const peak = await sampler.stop();
  return { growth: Math.max(0, peak - before), before, hwm: memoryOf(pid).hwm };
}

const grow = { mediary: [] as number[], sink: [] as number[] };
const hwm: number[] = [];
try {
  for (let round = 0; round < ROUNDS; round++) {
    const m = await growth(svc.pid, mediaryUpload);
    grow.mediary.push(m.growth / MiB);
    hwm.push(m.hwm / MiB);
    log(
      `memory round ${round + 1}/${ROUNDS} mediary: +${fmt(m.growth / MiB)} MiB over ${fmt(m.before / MiB)} MiB`,
    );
    const s = await growth(sink.pid, sinkUpload);
    grow.sink.push(s.growth / MiB);
    log(
      `memory round ${round + 1}/${ROUNDS} sink: +${fmt(s.growth / MiB)} MiB over ${fmt(s.before / MiB)} MiB`,
    );
  }
} finally {
  await sink.stop();
  await svc.kill('SIGTERM');
  await work.cleanup();
}

const m = stat(grow.mediary);
const s = stat(grow.sink);
await report({
  name: 'memory',
  rows: [
    {
      bench: `peak RSS growth, ${SIZE / GiB} GiB upload`,
      figure: 'mediary serve process',
      unit: 'MiB',
      value: m,
      baselineName: 'Node sink process',
      baseline: s,
      ratio: s.median > 0 ? m.median / s.median : undefined,
      ratioMeaning: 'Mediary / sink',
      goal: '< 64 MiB',
      met: m.max < 64,
    },
  ],
  notes: [
    `RSS sampled from /proc/PID/status every 20 ms; growth = peak VmRSS during the upload − VmRSS just before it (after a 64 MiB warm-up). VmHWM of the service at the end: ${hwm.map((h) => fmt(h)).join(', ')} MiB (includes start-up).`,
    'The embedded Postgres is a separate process and not counted.',
  ],
});
