/**
 * SIGKILL the API process at each point of the upload flow, restart it on the same data dir, and
 * check the invariants: no acknowledged upload lost, no duplicates, no UPLOADED/READY row without
 * its object (checked on disk), and every upload can be finished by repeating the requests.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import http from 'node:http';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { call, tempDir, testEnv } from '../helpers/server.ts';
import {
  embeddedUrl,
  fakeMp4,
  makeDevices,
  poolFor,
  recordFaultResults,
  spawnService,
  stopOrphanPostgres,
  type FaultRow,
  type ServiceProcess,
} from '../helpers/process.ts';

const TRIALS = Number(process.env.FAULT_CRASH_TRIALS ?? 4);
const POINTS = [
  'before the session commits',
  'mid-upload',
  'after the bytes, before complete',
  'during complete',
  'after complete',
] as const;
type Point = (typeof POINTS)[number];

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

let dataDir: string;
let env: Record<string, string>;
let svc: ServiceProcess | undefined;
let db: pg.Pool;
let dev: { id: string; auth: Record<string, string> };

before(async () => {
  dataDir = await tempDir('mediary-fault-crash-');
  env = await testEnv(dataDir, { LOG_LEVEL: 'warn' });
  svc = await spawnService(env);
  db = poolFor(embeddedUrl(dataDir, env.EMBEDDED_PG_PORT!));
  dev = (await makeDevices(db, 1, 'crash'))[0]!;
});

after(async () => {
  await db?.end();
  if (svc) {
    await svc.kill('SIGTERM');
  }
  await stopOrphanPostgres(dataDir);
  if (!process.env.FAULT_KEEP) await rm(dataDir, { recursive: true, force: true });
});

/** Sends a request and does not wait for it; errors (the process dies under it) are expected. */
function fire(url: string, method: string, headers: Record<string, string>, body?: Buffer) {
  const req = http.request(url, { method, headers, agent: false });
  req.on('error', () => undefined);
  req.on('response', (res) => {
    res.on('error', () => undefined);
    res.resume();
  });
  req.end(body);
}

/** Streams `body` in chunks and SIGKILLs the service once about half of it has been sent. */
async function uploadThenKillMidway(url: string, body: Buffer): Promise<void> {
  const req = http.request(url, {
    method: 'PUT',
    headers: { 'content-type': 'video/mp4', 'content-length': String(body.length) },
    agent: false,
  });
  req.on('error', () => undefined);
  const chunk = 256 * 1024;
  for (let off = 0; off < body.length / 2; off += chunk) {
    if (!req.write(body.subarray(off, off + chunk))) await new Promise((r) => req.once('drain', r));
    await sleep(2);
  }
  await sleep(100); // let the server write what it received into its temporary file
  await svc!.kill();
  req.destroy();
}

function session(messageId: string, body: Buffer) {
  return call(svc!.api('/media'), {
    method: 'POST',
    headers: dev.auth,
    json: {
      fileName: `${messageId}.mp4`,
      mimeType: 'video/mp4',
      bytes: body.length,
      sha256: sha(body),
      messageId,
    },
  });
}

/** Repeats the client's requests until the upload is complete, as a retrying device would. */
async function finish(messageId: string, body: Buffer): Promise<string> {
  const s = await session(messageId, body);
  assert.ok(s.status === 200 || s.status === 201, `session replay: ${s.status} ${s.text}`);
  const id = s.body.mediaId as string;
  if (s.body.upload) {
    const up = await call(s.body.upload.url as string, {
      method: 'PUT',
      headers: { 'content-type': 'video/mp4' },
      body,
    });
    assert.equal(up.status, 200, `PUT retry: ${up.text}`);
  }
  const done = await call(svc!.api(`/media/${id}/complete`), { method: 'POST', headers: dev.auth });
  assert.equal(done.status, 200, `complete retry: ${done.text}`);
  assert.ok(
    holdsObject({ ...done.body, error_code: done.body.error?.code ?? null }),
    `completed upload is ${done.body.status} (${done.body.error?.code ?? 'no error'})`,
  );
  return id;
}

interface MediaDbRow {
  id: string;
  message_id: string;
  status: string;
  bytes: number;
  storage_uri: string;
  content_sha256: string | null;
  error_code: string | null;
}

/**
 * The bytes here are a fake MP4 (a valid header, then noise): the video job rightly fails to
 * decode it. Such a FAILED row is still an acknowledged, intact upload; any other failure is not.
 */
const PROCESSING_FAILURES = ['decode_failed', 'no_video', 'unreadable'];
const holdsObject = (r: MediaDbRow) =>
  ['UPLOADED', 'PROCESSING', 'READY'].includes(r.status) ||
  (r.status === 'FAILED' && PROCESSING_FAILURES.includes(r.error_code ?? ''));

/** messageId → sha256 of every upload whose completion the API acknowledged. */
const acknowledged = new Map<string, string>();

async function checkInvariants(): Promise<void> {
  const { rows } = await db.query<MediaDbRow>(
    `SELECT id, message_id, status, bytes::float8 AS bytes, storage_uri, content_sha256, error->>'code' AS error_code
     FROM media WHERE device_id = $1`,
    [dev.id],
  );
  const byMessage = new Map<string, MediaDbRow[]>();
  for (const r of rows) byMessage.set(r.message_id, [...(byMessage.get(r.message_id) ?? []), r]);
  for (const [m, list] of byMessage) assert.equal(list.length, 1, `duplicate rows for message ${m}`);
  for (const r of rows) {
    if (!holdsObject(r)) continue;
    assert.ok(existsSync(r.storage_uri), `${r.status} row ${r.id} has no object on disk`);
    assert.equal(statSync(r.storage_uri).size, r.bytes, `object of ${r.id} has the wrong size`);
    assert.equal(sha(readFileSync(r.storage_uri)), r.content_sha256, `object of ${r.id} has other bytes`);
    const jobs = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pgboss.job WHERE name IN ('media-process', 'media-process-video') AND data->>'mediaId' = $1`,
      [r.id],
    );
    assert.equal(jobs.rows[0]!.n, 1, `media ${r.id} must have exactly one processing job`);
  }
  for (const [m, digest] of acknowledged) {
    const r = byMessage.get(m)?.[0];
    assert.ok(r, `acknowledged upload ${m} lost its row`);
    assert.ok(holdsObject(r), `acknowledged upload ${m} is ${r.status} (${r.error_code ?? 'no error'})`);
    assert.equal(r.content_sha256, digest, `acknowledged upload ${m} changed content`);
  }
}

async function rowFor(messageId: string): Promise<MediaDbRow | undefined> {
  const { rows } = await db.query<MediaDbRow>(
    `SELECT id, message_id, status, bytes::float8 AS bytes, storage_uri, content_sha256, error->>'code' AS error_code
     FROM media WHERE device_id = $1 AND message_id = $2`,
    [dev.id, messageId],
  );
  return rows[0];
}

/** Drives the flow up to `point` and SIGKILLs the service there. Returns what the client saw. */
async function crashAt(point: Point, messageId: string, body: Buffer, trial: number): Promise<void> {
  if (point === 'before the session commits') {
    fire(
      svc!.api('/media'),
      'POST',
      { ...dev.auth, 'content-type': 'application/json' },
      Buffer.from(
        JSON.stringify({
          fileName: 'a.mp4',
          mimeType: 'video/mp4',
          bytes: body.length,
          sha256: sha(body),
          messageId,
        }),
      ),
    );
    await sleep(1 + 2 * trial); // sometimes before the INSERT commits, sometimes after
    await svc!.kill();
    return;
  }
  const s = await session(messageId, body);
  assert.equal(s.status, 201, s.text);
  const uploadUrl = s.body.upload.url as string;
  const id = s.body.mediaId as string;
  if (point === 'mid-upload') {
    await uploadThenKillMidway(uploadUrl, body);
    return;
  }
  const up = await call(uploadUrl, { method: 'PUT', headers: { 'content-type': 'video/mp4' }, body });
  assert.equal(up.status, 200, up.text);
  if (point === 'after the bytes, before complete') {
    await svc!.kill();
    return;
  }
  if (point === 'during complete') {
    fire(svc!.api(`/media/${id}/complete`), 'POST', dev.auth);
    await sleep(2 + 4 * trial); // before, inside or after the completing transaction
    await svc!.kill();
    return;
  }
  const done = await call(svc!.api(`/media/${id}/complete`), { method: 'POST', headers: dev.auth });
  assert.equal(done.status, 200, done.text);
  acknowledged.set(messageId, sha(body));
  await svc!.kill();
}

const results: FaultRow[] = [];

test(`SIGKILL at each point of the upload flow (${TRIALS} trials each), then restart`, async () => {
  const failures: string[] = [];
  for (const point of POINTS) {
    let survived = 0;
    const seen = new Map<string, number>();
    for (let trial = 0; trial < TRIALS; trial++) {
      const messageId = `${point.replace(/[^a-z]+/g, '-')}-${trial}`;
      const body = fakeMp4(point === 'mid-upload' ? 8 * 1024 * 1024 : 64 * 1024 + trial);
      try {
        await crashAt(point, messageId, body, trial);
        svc = await spawnService(env);
        await checkInvariants();
        const r = await rowFor(messageId);
        const state = r ? r.status : 'no row';
        seen.set(state, (seen.get(state) ?? 0) + 1);
        if (point === 'mid-upload' || point === 'after the bytes, before complete') {
          assert.equal(r?.status, 'PENDING');
          // A half-written object is never visible under its key; a fully received one is.
          assert.equal(existsSync(r.storage_uri), point !== 'mid-upload', `object after ${point}`);
        }
        if (point === 'after complete')
          assert.ok(r && holdsObject(r), `after complete the row is ${r?.status}`);
        const id = await finish(messageId, body);
        acknowledged.set(messageId, sha(body));
        if (r) assert.equal(id, r.id, 'the retry finished the same media, not a new one');
        await checkInvariants();
        survived++;
      } catch (err) {
        failures.push(`${point} #${trial}: ${(err as Error).message}`);
        if (svc && svc.child.exitCode !== null) svc = await spawnService(env).catch(() => undefined);
        else if (!svc) svc = await spawnService(env).catch(() => undefined);
      }
    }
    const states = [...seen].map(([s, n]) => `${s}×${n}`).join(', ');
    results.push({
      scenario: `SIGKILL ${point}`,
      trials: TRIALS,
      survived,
      notes: `state after restart: ${states}`,
    });
  }
  // A final restart with everything in place: all acknowledged uploads still there and downloadable.
  await svc!.kill();
  svc = await spawnService(env);
  await checkInvariants();
  for (const [messageId, digest] of acknowledged) {
    const r = (await rowFor(messageId))!;
    if (r.status === 'FAILED') {
      // Processing rejected the fake video; the original is kept intact, just not served.
      assert.equal(sha(readFileSync(r.storage_uri)), digest);
      continue;
    }
    const dl: Response = await fetch(svc.api(`/media/${r.id}/download?mode=proxy`), { headers: dev.auth });
    assert.equal(dl.status, 200);
    assert.equal(sha(Buffer.from(await dl.arrayBuffer())), digest);
  }
  results.push({
    scenario: 'acknowledged uploads intact after a final SIGKILL + restart',
    trials: acknowledged.size,
    survived: acknowledged.size,
    notes: 'row UPLOADED, object on disk, same sha256, one job each, proxied download matches',
  });
  await recordFaultResults('crash', results);
  assert.deepEqual(failures, []);
});
