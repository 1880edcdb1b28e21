/**
 * Multipart upload throughput to a real Ceph RGW: a 1 GiB object in 16 MiB parts sent through
 * presigned part URLs (as a client does) with 1, 4 and 8 parts in flight, plus the time to sign
 * 1,000 part URLs. Prints a table, writes bench/results/s3-multipart.json.
 *   node --import tsx bench/s3-multipart.ts
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { S3ObjectStore } from '../src/storage/s3.ts';

const run = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const CEPH_SCRIPT = path.resolve(here, '../scripts/ceph-rgw.sh');
const MiB = 1024 * 1024;
const TOTAL = 1024 * MiB;
const PART = 16 * MiB;

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      srv.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });

async function main() {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mediary-s3bench-ceph-'));
  const port = await freePort();
  const { stdout } = await run('bash', [CEPH_SCRIPT, 'start', dir, String(port)], {
    env: { ...process.env, MON_PORT: String(await freePort()) },
  });
  const env = Object.fromEntries(
    stdout
      .trim()
      .split('\n')
      .map((l) => l.split('=', 2) as [string, string]),
  );
  process.env.AWS_ACCESS_KEY_ID = env.S3_ACCESS_KEY_ID;
  process.env.AWS_SECRET_ACCESS_KEY = env.S3_SECRET_ACCESS_KEY;
  const store = new S3ObjectStore({
    bucket: 'bench',
    region: env.S3_REGION ?? 'us-east-1',
    endpoint: env.S3_ENDPOINT,
    forcePathStyle: true,
    enforcesChecksum: false,
    singlePutMaxBytes: 16 * MiB,
    partSize: PART,
  });
  const results: Record<string, unknown>[] = [];
  try {
    await store.setup({ corsOrigins: [] });
    // One 16 MiB random buffer sent as every part: the client side costs no CPU to produce bytes.
    const part = randomBytes(PART);
    const body = new Uint8Array(part.buffer, part.byteOffset, part.length);
    const partCount = TOTAL / PART;
    for (const inFlight of [1, 4, 8]) {
      const key = `bench/1gib-${inFlight}.bin`;
      const started = process.hrtime.bigint();
      const uploadId = await store.createMultipart(key, 'video/mp4');
      const etags: { partNumber: number; etag: string }[] = [];
      let next = 1;
      await Promise.all(
        Array.from({ length: inFlight }, async () => {
          while (next <= partCount) {
            const n = next++;
            const signed = await store.presignPart(key, uploadId, n, PART, 300);
            const res = await fetch(signed.url, { method: 'PUT', headers: signed.headers, body });
            await res.arrayBuffer();
            if (res.status !== 200) throw new Error(`part ${n}: HTTP ${res.status}`);
            etags.push({ partNumber: n, etag: res.headers.get('etag') ?? '' });
          }
        }),
      );
      etags.sort((a, b) => a.partNumber - b.partNumber);
      const { size } = await store.completeMultipart(key, uploadId, etags);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      if (size !== TOTAL) throw new Error(`stored ${size} bytes, expected ${TOTAL}`);
      await store.delete(key); // Ceph keeps objects in RAM: free it before the next run
      results.push({
        case: `1 GiB, ${inFlight} in flight`,
        inFlight,
        parts: partCount,
        seconds,
        mibPerSecond: 1024 / seconds,
      });
    }
    const uploadId = await store.createMultipart('bench/sign.bin', 'video/mp4');
    const t0 = process.hrtime.bigint();
    for (let n = 1; n <= 1000; n++) await store.presignPart('bench/sign.bin', uploadId, n, PART, 300);
    const signMs = Number(process.hrtime.bigint() - t0) / 1e6;
    await store.abortMultipart('bench/sign.bin', uploadId);
    results.push({
      case: 'sign 1,000 part URLs',
      milliseconds: signMs,
      microsecondsPerUrl: (signMs * 1000) / 1000,
    });
  } finally {
    store.destroy();
    await run('bash', [CEPH_SCRIPT, 'stop', dir]).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
  console.log('| case | result |\n|---|---|');
  for (const r of results) {
    console.log(
      `| ${String(r.case)} | ${
        'mibPerSecond' in r
          ? `${(r.seconds as number).toFixed(2)} s, ${(r.mibPerSecond as number).toFixed(1)} MiB/s`
          : `${(r.milliseconds as number).toFixed(1)} ms (${(r.microsecondsPerUrl as number).toFixed(0)} µs/URL)`
      } |`,
    );
  }
  const out = path.resolve(here, 'results/s3-multipart.json');
  await mkdir(path.dirname(out), { recursive: true });
  await writeFile(
    out,
    JSON.stringify(
      {
        date: new Date().toISOString(),
        node: process.version,
        cpus: os.cpus().length,
        partSize: PART,
        results,
      },
      null,
      2,
    ),
  );
  console.log(`wrote ${path.relative(process.cwd(), out)}`);
}

await main();
