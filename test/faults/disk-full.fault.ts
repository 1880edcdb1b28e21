/**
 * A full disk is the server's fault, not the client's: a real `mediary serve` whose local store is
 * a 4 MiB tmpfs gets uploads larger than that. A single PUT and a multipart part must answer
 * `507 insufficient_storage` with Retry-After (before the fix: `400 upload_aborted`, nothing
 * logged), the failure must be logged as an error, and no half-written temp or part file may stay.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, readdir, rm, statfs } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { tempDir, testEnv } from '../helpers/server.ts';
import {
  fakeMp4,
  makeDevices,
  embeddedUrl,
  poolFor,
  spawnService,
  type ServiceProcess,
} from '../helpers/process.ts';
import type pg from 'pg';

const MiB = 1024 * 1024;
let dataDir: string;
let storeDir: string;
let svc: ServiceProcess;
let db: pg.Pool;
let auth: Record<string, string>;

before(async () => {
  assert.equal(process.getuid?.(), 0, 'mounting a tmpfs needs root');
  dataDir = await tempDir('mediary-fault-disk-');
  storeDir = path.join(dataDir, 'full-store');
  await mkdir(storeDir);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', storeDir]);
  const env = await testEnv(dataDir, {
    LOCAL_STORAGE_DIR: storeDir,
    LOG_LEVEL: 'warn',
    WORKER_ENABLED: 'false',
    MULTIPART_THRESHOLD_BYTES: String(5 * MiB),
    MULTIPART_PART_SIZE_BYTES: String(5 * MiB),
  });
  svc = await spawnService(env);
  db = poolFor(embeddedUrl(dataDir, env.EMBEDDED_PG_PORT!));
  auth = (await makeDevices(db, 1, 'disk'))[0]!.auth;
});

after(async () => {
  await svc?.kill('SIGTERM');
  await db?.end();
  if (storeDir) execFileSync('umount', ['-l', storeDir]);
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

async function session(bytes: number, messageId: string) {
  const res = await fetch(svc.api('/media'), {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({ fileName: 'v.mp4', mimeType: 'video/mp4', bytes, messageId }),
  });
  assert.equal(res.status, 201);
  return (await res.json()) as {
    mediaId: string;
    upload: { method: string; url?: string; partCount?: number; partSize?: number };
  };
}

async function assertInsufficientStorage(res: Response, what: string) {
  const body = (await res.json()) as { error: { code: string } };
  assert.equal(res.status, 507, `${what}: ${JSON.stringify(body)}`);
  assert.equal(body.error.code, 'insufficient_storage');
  assert.ok(Number(res.headers.get('retry-after')) > 0, `${what}: Retry-After`);
}

/** Every regular file under `dir`. */
async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) out.push(path.join(e.parentPath, e.name));
  }
  return out;
}

test('ENOSPC while storing an upload or a part is 507 insufficient_storage, logged, with nothing half-written left', async () => {
  // A single PUT larger than the volume.
  const single = await session(4.5 * MiB, 'single');
  assert.equal(single.upload.method, 'PUT');
  const put = await fetch(single.upload.url!, {
    method: 'PUT',
    headers: { 'content-type': 'video/mp4' },
    body: new Uint8Array(fakeMp4(4.5 * MiB)),
  });
  await assertInsufficientStorage(put, 'single PUT');

  // A multipart part larger than the volume.
  const multi = await session(12 * MiB, 'multi');
  assert.equal(multi.upload.method, 'MULTIPART');
  const signed = await fetch(svc.api(`/media/${multi.mediaId}/parts`), {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({ partNumbers: [1] }),
  });
  assert.equal(signed.status, 200);
  const { parts } = (await signed.json()) as { parts: { url: string }[] };
  const part = await fetch(parts[0]!.url, {
    method: 'PUT',
    headers: { 'content-type': 'application/octet-stream' },
    body: new Uint8Array(fakeMp4(multi.upload.partSize!)),
  });
  await assertInsufficientStorage(part, 'part PUT');

  // Nothing half-written: no temp or part file holds the space (the open multipart upload's small
  // upload.json record stays: the upload can go on).
  const left = await filesUnder(storeDir);
  assert.deepEqual(
    left.filter((f) => path.basename(f) !== 'upload.json'),
    [],
  );
  assert.equal(left.length, 1);
  const fs = await statfs(storeDir);
  assert.ok(fs.bfree * fs.bsize > 3.5 * MiB, 'the space is free again');

  // The sessions are still usable once there is room: a small file goes through.
  const small = await session(1 * MiB, 'small');
  const ok = await fetch(small.upload.url!, {
    method: 'PUT',
    headers: { 'content-type': 'video/mp4' },
    body: new Uint8Array(fakeMp4(1 * MiB)),
  });
  assert.equal(ok.status, 200, await ok.text());

  // Logged as errors (the operator's problem), naming the cause.
  const log = readFileSync(path.join(dataDir, 'service.log'), 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { level: number; err?: { code?: string } });
  const errors = log.filter((l) => l.level >= 50 && l.err?.code === 'ENOSPC');
  assert.ok(errors.length >= 2, `two ENOSPC errors logged, found ${errors.length}`);
});
