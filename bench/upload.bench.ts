/**
 * Durable upload throughput of a 1 GiB file: Mediary (session + PUT /media/{id}/upload + complete)
 * against a bare Node sink that only hashes, writes and fsyncs, and against @tus/server with its
 * file store (POST + one PATCH). Same client, same bytes, same disk, order rotated each round.
 * Also a server that reads the body and drops it: the most any server could do here, so its ratio
 * to tus bounds what the "≥ 1.5× tus" goal can reach.
 */
import { createHash } from 'node:crypto';
import { readdir, rm } from 'node:fs/promises';
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

const SIZE = Number(process.env.BENCH_UPLOAD_BYTES ?? GiB);
const ROUNDS = reps(3);
const pattern = fakeMp4(16 * MiB);
const hash = createHash('sha256');
for (let sent = 0; sent < SIZE; sent += pattern.length)
  hash.update(pattern.subarray(0, Math.min(pattern.length, SIZE - sent)));
const SHA = hash.digest('hex');

const work = await scratch('upload');
const sinkDir = path.join(work.dir, 'sink');
const tusDir = path.join(work.dir, 'tus');
const { mkdir } = await import('node:fs/promises');
await mkdir(sinkDir);
await mkdir(tusDir);

const { svc, dev } = await startSinglePutService(path.join(work.dir, 'mediary'));
const sinkPort = await freePort();
const sink = await startHelper('sink.ts', [String(sinkPort), sinkDir]);
const tusPort = await freePort();
const tus = await startHelper('tus.ts', [String(tusPort), tusDir]);
const discardPort = await freePort();
const discard = await startHelper('discard.ts', [String(discardPort)]);

const headers = { 'content-type': 'video/mp4' };
const contenders = {
  async sink() {
    const r = await streamUpload(`http://127.0.0.1:${sinkPort}/`, {
      method: 'PUT',
      headers,
      pattern,
      total: SIZE,
    });
    const body = JSON.parse(r.body) as { file: string; sha256: string };
    if (r.status !== 200 || body.sha256 !== SHA) throw new Error(`sink: ${r.status} ${r.body}`);
    await rm(body.file);
    return r.seconds;
  },
  async discard() {
    const r = await streamUpload(`http://127.0.0.1:${discardPort}/`, {
      method: 'PUT',
      headers,
      pattern,
      total: SIZE,
    });
    const body = JSON.parse(r.body) as { bytes: number };
    if (r.status !== 200 || body.bytes !== SIZE) throw new Error(`discard: ${r.status} ${r.body}`);
    return r.seconds;
  },
  async mediary() {
    const t0 = performance.now();
    const s = await fetch(svc.api('/media'), {
      method: 'POST',
      headers: { ...dev.auth, 'content-type': 'application/json' },
      body: JSON.stringify({ fileName: 'big.mp4', mimeType: 'video/mp4', bytes: SIZE, sha256: SHA }),
    });
    const session = (await s.json()) as { mediaId: string; upload: { url: string } };
    const r = await streamUpload(session.upload.url, { method: 'PUT', headers, pattern, total: SIZE });
    if (r.status !== 200) throw new Error(`mediary PUT: ${r.status} ${r.body}`);
    const done = await fetch(svc.api(`/media/${session.mediaId}/complete`), {
      method: 'POST',
      headers: dev.auth,
    });
    if (done.status !== 200) throw new Error(`mediary complete: ${done.status} ${await done.text()}`);
    const seconds = (performance.now() - t0) / 1000;
    await fetch(svc.api(`/media/${session.mediaId}`), { method: 'DELETE', headers: dev.auth });
    return seconds;
  },
  async tus() {
    const t0 = performance.now();
    const c = await fetch(`http://127.0.0.1:${tusPort}/files`, {
      method: 'POST',
      headers: { 'tus-resumable': '1.0.0', 'upload-length': String(SIZE) },
    });
    if (c.status !== 201) throw new Error(`tus create: ${c.status}`);
    const location = new URL(c.headers.get('location')!, `http://127.0.0.1:${tusPort}`).toString();
    const r = await streamUpload(location, {
      method: 'PATCH',
      headers: {
        'tus-resumable': '1.0.0',
        'upload-offset': '0',
        'content-type': 'application/offset+octet-stream',
      },
      pattern,
      total: SIZE,
    });
    if (r.status !== 204) throw new Error(`tus PATCH: ${r.status} ${r.body}`);
    const seconds = (performance.now() - t0) / 1000;
    for (const f of await readdir(tusDir)) await rm(path.join(tusDir, f), { force: true });
    return seconds;
  },
};
type Name = keyof typeof contenders;
const order: Name[] = ['sink', 'mediary', 'tus', 'discard'];
const seconds: Record<Name, number[]> = { sink: [], mediary: [], tus: [], discard: [] };
try {
  for (let round = 0; round < ROUNDS; round++) {
    for (let i = 0; i < order.length; i++) {
      const name = order[(i + round) % order.length]!;
      syncDisks();
      const s = await contenders[name]();
      seconds[name].push(s);
      log(`upload round ${round + 1}/${ROUNDS} ${name}: ${fmt(SIZE / MiB / s)} MiB/s`);
    }
  }
} finally {
  await sink.stop();
  await tus.stop();
  await discard.stop();
  await svc.kill('SIGTERM');
  await work.cleanup();
}

const mibps = (name: Name) => stat(seconds[name].map((s) => SIZE / MiB / s));
const m = mibps('mediary');
const sk = mibps('sink');
const tu = mibps('tus');
const dc = mibps('discard');
const sizeLabel = SIZE >= GiB ? `${SIZE / GiB} GiB` : `${SIZE / MiB} MiB`;
await report({
  name: 'upload',
  rows: [
    {
      bench: `durable upload ${sizeLabel}`,
      figure: 'Mediary session+PUT+complete',
      unit: 'MiB/s',
      value: m,
      baselineName: 'Node sink (sha256+write+fsync)',
      baseline: sk,
      ratio: m.median / sk.median,
      ratioMeaning: 'Mediary / sink',
      goal: '≥ 0.9×',
      met: m.median / sk.median >= 0.9,
    },
    {
      bench: `upload vs tus ${sizeLabel}`,
      figure: 'Mediary session+PUT+complete',
      unit: 'MiB/s',
      value: m,
      baselineName: '@tus/server + file-store (POST+PATCH)',
      baseline: tu,
      ratio: m.median / tu.median,
      ratioMeaning: 'Mediary / tus',
      goal: '≥ 1.5×',
      met: m.median / tu.median >= 1.5,
    },
    {
      bench: `ceiling vs tus ${sizeLabel}`,
      figure: 'Node server that reads and drops the body',
      unit: 'MiB/s',
      value: dc,
      baselineName: '@tus/server + file-store (POST+PATCH)',
      baseline: tu,
      ratio: dc.median / tu.median,
      ratioMeaning: 'discard / tus: the most any server could beat tus by here',
      goal: 'bound',
      met: null,
    },
  ],
  notes: [
    `${ROUNDS} rounds, order rotated; \`sync\` before each upload so earlier unsynced writes are not charged to the next contender.`,
    'Mediary and the sink fsync before answering; @tus/file-store does not fsync and does not hash, so it does less work per byte.',
  ],
});
