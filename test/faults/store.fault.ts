/**
 * The object store unavailable under load. `mediary serve` runs with STORAGE_BACKEND=s3 on a
 * throw-away Ceph cluster; a few clients keep creating sessions, uploading straight to the bucket
 * (single presigned PUTs and two-part multipart uploads), completing, listing parts and
 * downloading (redirect and proxied). Then the gateway goes away twice over: first hung (radosgw
 * SIGSTOPped: connections accepted, nothing answers), then dead (SIGKILL: connections refused);
 * then it is started again on the same cluster. Only radosgw is stopped: the monitor and the
 * memstore OSD keep running, so the objects survive (restarting the whole cluster would start
 * from an empty store, objects being in the OSD's RAM).
 *
 * Every answer of the service must be a success, a 4xx the client caused, or a 503 with
 * Retry-After — never a 500, never slower than a bound (the S3 client's timeouts are lowered for
 * the test, see STORE_ENV). Afterwards every upload begun is finished by repeating its requests
 * (same messageId), and the database and the bucket agree: no UPLOADED row without its object of
 * the right size, no multipart upload left COMPLETING, no open store upload for completed media.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { HeadObjectCommand, ListMultipartUploadsCommand, S3Client } from '@aws-sdk/client-s3';
import type pg from 'pg';
import { type Ceph, mediary, startCeph } from '../helpers/ceph.ts';
import { fixture } from '../helpers/files.ts';
import { asBody, MiB } from '../helpers/multipart-suite.ts';
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
import { tempDir, testEnv } from '../helpers/server.ts';
import type { Outcome, Upload } from './store-model.ts';

const BUCKET = 'mediary-fault-store';
/** S3 client limits for the test: each bodiless store call gives up within ~4 s. */
const STORE_ENV = {
  S3_CONNECT_TIMEOUT_MS: '1000',
  S3_SOCKET_TIMEOUT_MS: '2000',
  S3_OPERATION_TIMEOUT_MS: '4000',
  S3_MAX_ATTEMPTS: '3',
};
/** No answer of the service may take longer than this (the store limits above, plus slack). */
const BOUND_MS = 12_000;
const HANG_MS = 7000;
const DOWN_MS = 5000;
const WORKERS = 6;
/** Clients that only read through the store (proxied downloads, part listings). */
const READERS = 2;

const JPEG = fixture('cameras/Canon_40D.jpg');
const JPEG_SHA = createHash('sha256').update(JPEG).digest('hex');
const BIG = fakeMp4(6 * MiB); // two parts: 5 MiB + 1 MiB
const BIG_SHA = createHash('sha256').update(BIG).digest('hex');

let ceph: Ceph;
let dataDir: string;
let svc: ServiceProcess;
let db: pg.Pool;
let s3: S3Client;
let devices: { id: string; auth: Record<string, string> }[];

before(async () => {
  ceph = await startCeph();
  dataDir = await tempDir('mediary-fault-store-');
  const env = await testEnv(
    dataDir,
    ceph.serverEnv(BUCKET, {
      ...STORE_ENV,
      MULTIPART_THRESHOLD_BYTES: String(5 * MiB),
      MULTIPART_PART_SIZE_BYTES: String(5 * MiB),
      // The API under an outage; the worker's own retries are not what this file measures.
      WORKER_ENABLED: 'false',
      SWEEP_INTERVAL_SECONDS: '0',
      RATE_LIMIT_SESSIONS_PER_MINUTE: '1000000',
      LOG_LEVEL: 'warn',
    }),
  );
  const setup = await mediary(['storage', 'setup'], env);
  assert.equal(setup.code, 0, setup.stderr);
  svc = await spawnService(env);
  db = poolFor(embeddedUrl(dataDir, env.EMBEDDED_PG_PORT!));
  devices = await makeDevices(db, WORKERS, 'store');
  s3 = new S3Client({ endpoint: ceph.env.S3_ENDPOINT, region: ceph.env.S3_REGION, forcePathStyle: true });
});

after(async () => {
  s3?.destroy();
  await svc?.kill('SIGTERM');
  await db?.end();
  if (dataDir) await stopOrphanPostgres(dataDir);
  await ceph?.stop();
  if (dataDir && !process.env.FAULT_KEEP) await rm(dataDir, { recursive: true, force: true });
});

// ---- clients ------------------------------------------------------------------------------

const outcomes: Outcome[] = [];
const uploads: Upload[] = [];
/** Direct client ↔ Ceph requests that failed (the outage itself; not the service's answers). */
let storeDirectFailures = 0;

/** A request to the service, bounded; records the outcome and returns the response (if any). */
async function api(
  what: string,
  url: string,
  init: { method?: string; auth: Record<string, string>; json?: unknown; redirect?: RequestRedirect },
): Promise<{ status: number; body: any; headers: Headers } | undefined> {
  const t0 = Date.now();
  const headers: Record<string, string> = { ...init.auth };
  if (init.json !== undefined) headers['content-type'] = 'application/json';
  try {
    const res = await fetch(url, {
      method: init.method ?? 'GET',
      headers,
      body: init.json !== undefined ? JSON.stringify(init.json) : null,
      redirect: init.redirect ?? 'manual',
      signal: AbortSignal.timeout(BOUND_MS),
    });
    const text = await res.text();
    let body: any;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = undefined;
    }
    outcomes.push({
      what,
      status: res.status,
      retryAfter: res.headers.has('retry-after'),
      ms: Date.now() - t0,
      at: t0,
      code: body?.error?.code,
      state: body?.error?.details?.state,
    });
    return { status: res.status, body, headers: res.headers };
  } catch (err) {
    const timeout = (err as Error).name === 'TimeoutError';
    outcomes.push({
      what,
      status: timeout ? 'timeout' : 'network',
      retryAfter: false,
      ms: Date.now() - t0,
      at: t0,
    });
    return undefined;
  }
}

/** A PUT straight to the bucket (presigned); undefined when the store did not take it. */
async function putToStore(url: string, headers: Record<string, string>, body: Buffer) {
  try {
    const res = await fetch(url, {
      method: 'PUT',
      headers,
      body: asBody(body),
      signal: AbortSignal.timeout(3000),
    });
    await res.arrayBuffer();
    // 412: a single-upload URL is create-only, and an earlier attempt's bytes are in place.
    if (res.ok || res.status === 412) return res;
  } catch {
    // the store is down: expected during the outage
  }
  storeDirectFailures++;
  return undefined;
}

/**
 * Runs an upload as far as it gets: session (a replay when repeated), the bytes, completion, then
 * its part listing and downloads. Returns true when completed.
 */
async function drive(u: Upload, stageOnly = false): Promise<boolean> {
  const ok = await driveInner(u, stageOnly);
  if (!ok && !u.staged) {
    const last = outcomes.at(-1);
    u.lastFail = last ? `${last.what} → ${last.status} ${last.code ?? ''}` : 'store PUT';
  }
  return ok;
}

async function driveInner(u: Upload, stageOnly: boolean): Promise<boolean> {
  const base = svc.api('');
  const s = await api('POST /media', `${base}/media`, {
    method: 'POST',
    auth: u.device.auth,
    json: {
      fileName: u.big ? 'clip.mp4' : 'a.jpg',
      mimeType: u.big ? 'video/mp4' : 'image/jpeg',
      bytes: u.big ? BIG.length : JPEG.length,
      sha256: u.big ? BIG_SHA : JPEG_SHA,
      messageId: u.messageId,
    },
  });
  if (!s || (s.status !== 201 && s.status !== 200)) return false;
  u.mediaId = s.body.mediaId;
  const id = u.mediaId!;
  if (s.body.status === 'PENDING') {
    let completeBody: unknown = undefined;
    if (u.big) {
      // Resume: what is stored already, then sign and send only the missing parts.
      const listed = await api('GET parts', `${base}/media/${id}/parts`, { auth: u.device.auth });
      // Joined in the store by an earlier completion the outage then interrupted (multipart row
      // COMPLETED, media still PENDING): nothing left to list or send; completing again finishes.
      const joined = listed?.status === 409 && listed.body?.error?.details?.state === 'COMPLETED';
      if (!joined && listed?.status !== 200) return false;
      if (joined) {
        const done = await api('POST complete', `${base}/media/${id}/complete`, {
          method: 'POST',
          auth: u.device.auth,
        });
        if (done?.status !== 200) return false;
        u.acknowledged = true;
        return true;
      }
      const have = new Map<number, string>(
        (listed.body.parts as { partNumber: number; etag: string }[]).map((p) => [p.partNumber, p.etag]),
      );
      const partSize = listed.body.partSize as number;
      const missing = [1, 2].filter((n) => !have.has(n));
      if (missing.length > 0) {
        const signed = await api('POST parts (sign)', `${base}/media/${id}/parts`, {
          method: 'POST',
          auth: u.device.auth,
          json: { partNumbers: missing },
        });
        if (signed?.status !== 200) return false;
        for (const p of signed.body.parts as {
          partNumber: number;
          url: string;
          headers: Record<string, string>;
        }[]) {
          const chunk = BIG.subarray((p.partNumber - 1) * partSize, p.partNumber * partSize);
          const res = await putToStore(p.url, p.headers, chunk);
          if (!res) return false;
          have.set(p.partNumber, res.headers.get('etag') ?? '');
        }
      }
      completeBody = { parts: [...have].map(([partNumber, etag]) => ({ partNumber, etag })) };
    } else {
      const res = await putToStore(s.body.upload.url, s.body.upload.headers, JPEG);
      if (!res) return false;
    }
    if (stageOnly) {
      u.staged = { body: completeBody };
      return false;
    }
    const done = await api('POST complete', `${base}/media/${id}/complete`, {
      method: 'POST',
      auth: u.device.auth,
      ...(completeBody !== undefined ? { json: completeBody } : {}),
    });
    if (done?.status !== 200) return false;
  }
  u.acknowledged = true;
  // Reads of a completed upload: the redirect needs no store call; the proxy streams from it.
  await api('GET download (redirect)', `${base}/media/${id}/download`, { auth: u.device.auth });
  if (!u.big)
    await api('GET download (proxy)', `${base}/media/${id}/download?mode=proxy`, { auth: u.device.auth });
  return true;
}

let seq = 0;
function load(workers: number) {
  let running = true;
  const loops = Array.from({ length: workers }, async (_, w) => {
    while (running) {
      const n = seq++;
      const u: Upload = {
        device: devices[w % devices.length]!,
        messageId: `store-${w}-${n}`,
        big: n % 3 === 2,
        acknowledged: false,
      };
      uploads.push(u);
      if (!(await drive(u, n % 4 === 1)) && !u.staged) {
        u.parked = true;
        await sleep(200); // a client backing off after a 503
      }
    }
  });
  // Readers: calls the service must make to the store itself, independent of direct PUTs.
  const readers = Array.from({ length: READERS }, async (_, r) => {
    while (running) {
      const done = uploads.filter((u) => u.acknowledged && !u.big);
      const pending = uploads.filter((u) => u.big && u.parked && !u.acknowledged && u.mediaId !== undefined);
      const staged = uploads.filter((u) => u.staged && !u.acknowledged);
      const pick = <T>(xs: T[]) => xs[Math.floor(Math.random() * xs.length)];
      const a = pick(done);
      if (a)
        await api('GET download (proxy)', svc.api(`/media/${a.mediaId}/download?mode=proxy`), {
          auth: a.device.auth,
        });
      const b = r % 2 === 0 ? pick(pending) : undefined;
      if (b) await api('GET parts', svc.api(`/media/${b.mediaId}/parts`), { auth: b.device.auth });
      const c = r % 2 === 1 ? staged.shift() : undefined;
      if (c) {
        const res = await api('POST complete', svc.api(`/media/${c.mediaId}/complete`), {
          method: 'POST',
          auth: c.device.auth,
          ...(c.staged!.body !== undefined ? { json: c.staged!.body } : {}),
        });
        if (res?.status === 200) c.acknowledged = true;
      }
      await sleep(50);
    }
  });
  return {
    async stop() {
      running = false;
      await Promise.all([...loops, ...readers]);
    },
  };
}

// ---- the test -------------------------------------------------------------------------------

const isBad = (o: Outcome) =>
  o.status === 'network' ||
  o.status === 'timeout' ||
  o.ms > BOUND_MS ||
  (typeof o.status === 'number' && o.status >= 500 && !(o.status === 503 && o.retryAfter));

test('object store hung, then down, then back: 2xx or 503 + Retry-After, no corruption, recovery', async () => {
  const problems: string[] = [];
  const results: FaultRow[] = [];
  const t0 = Date.now();
  const l = load(WORKERS);
  await sleep(3000);
  const warm = outcomes.length;

  // Hung gateway: connections accepted, nothing answered.
  const hungAt = Date.now();
  ceph.gateway.pause();
  await sleep(HANG_MS);
  // Dead gateway: connections refused.
  const killedAt = Date.now();
  await ceph.gateway.kill();
  await sleep(DOWN_MS);
  const restartAt = Date.now();
  await ceph.gateway.start();
  const upAt = Date.now();
  let recoveredMs = -1;
  while (Date.now() - upAt < 20_000) {
    if (outcomes.some((o) => o.what === 'POST complete' && o.status === 200 && o.at >= upAt)) {
      recoveredMs = Date.now() - upAt;
      break;
    }
    await sleep(50);
  }
  await sleep(2000);
  const tailFrom = Date.now();
  await sleep(2000);
  await l.stop();

  const phase = (from: number, to: number) => outcomes.filter((o) => o.at >= from && o.at < to);
  const hung = phase(hungAt, killedAt);
  const down = phase(killedAt, restartAt);
  const tail = outcomes.filter((o) => o.at >= tailFrom);
  const storeCalls = new Set(['POST complete', 'GET parts', 'GET download (proxy)']);
  // Each store-bound call must have been tried, and answered 503, while the store was away.
  for (const what of storeCalls)
    if (![...hung, ...down].some((o) => o.what === what && o.status === 503))
      problems.push(`no 503 for ${what} during the outage (not exercised?)`);

  for (const [name, list] of [
    ['warm-up', outcomes.slice(0, warm)],
    ['gateway hung (SIGSTOP)', hung],
    ['gateway down (SIGKILL)', down],
    ['restart and after', outcomes.filter((o) => o.at >= restartAt)],
  ] as const) {
    const bad = list.filter(isBad);
    const n503 = list.filter((o) => o.status === 503).length;
    const n4xx = list.filter((o) => typeof o.status === 'number' && o.status >= 400 && o.status < 500);
    const maxMs = Math.max(0, ...list.map((o) => o.ms));
    const storeAnswers = list.filter((o) => storeCalls.has(o.what));
    const by503 = [...new Set(list.filter((o) => o.status === 503).map((o) => o.what))].join(', ');
    results.push({
      scenario: `S3 store ${name} (${WORKERS} clients)`,
      trials: list.length,
      survived: list.length - bad.length,
      notes:
        `${n503} × 503 + Retry-After${by503 ? ` (${by503})` : ''}, ${bad.length} × 500/hang/dropped, ${n4xx.length} × 4xx` +
        `${n4xx.length > 0 ? ` (${[...new Set(n4xx.map((o) => `${o.status} ${o.code}`))].join(', ')})` : ''}` +
        `; slowest ${maxMs} ms; store-bound calls: ${storeAnswers.filter((o) => o.status === 200).length} ok / ${storeAnswers.length}`,
    });
    if (bad.length > 0)
      problems.push(`${name}: ${bad.length} bad answers, e.g. ${JSON.stringify(bad.slice(0, 3))}`);
  }
  // 4xx during the outage would mean a store failure reported as the client's fault.
  // The one 4xx that is the client's to act on: "parts joined, complete again" (see drive()).
  const joinedAnswer = (o: Outcome) =>
    o.status === 409 && o.code === 'invalid_state' && o.state === 'COMPLETED';
  const outage4xx = [...hung, ...down].filter(
    (o) => typeof o.status === 'number' && o.status >= 400 && o.status < 500 && !joinedAnswer(o),
  );
  if (outage4xx.length > 0) problems.push(`4xx during the outage: ${JSON.stringify(outage4xx.slice(0, 3))}`);
  for (const [name, list] of [
    ['hung', hung],
    ['down', down],
  ] as const) {
    if (!list.some((o) => o.status === 503)) problems.push(`gateway ${name}: no 503 at all`);
    // Calls that need no store (sessions for single uploads, part signing, redirects) keep working.
    if (!list.some((o) => o.what === 'POST /media' && o.status === 201))
      problems.push(`gateway ${name}: no session was created although sessions need no store call`);
  }
  if (recoveredMs < 0) problems.push('no completion succeeded within 20 s of the gateway restart');
  const tailBad = tail.filter(
    (o) => o.status !== 200 && o.status !== 201 && o.status !== 302 && !joinedAnswer(o),
  );
  if (tail.length === 0 || tailBad.length > 0)
    problems.push(
      `after recovery ${tailBad.length}/${tail.length} requests failed: ${JSON.stringify(tailBad.slice(0, 3))}`,
    );

  // Finish every upload begun, by repeating its requests (same messageId).
  const unfinished = uploads.filter((u) => !u.acknowledged);
  let finished = 0;
  for (const u of unfinished) {
    // As a client would: repeat, honouring Retry-After (short here), a few times.
    for (let attempt = 0; attempt < 5 && !u.acknowledged; attempt++) {
      if (attempt > 0) await sleep(1000);
      if (await drive(u)) finished++;
    }
  }
  results.push({
    scenario: 'S3 store: uploads interrupted by the outage, finished by repeating the requests',
    trials: unfinished.length,
    survived: finished,
    notes: `${uploads.length} uploads begun in all (${uploads.filter((u) => u.big).length} multipart); gateway restart to first completion ${recoveredMs} ms; ${storeDirectFailures} direct client→store PUTs failed during the outage`,
  });
  if (finished !== unfinished.length)
    problems.push(
      `${unfinished.length - finished} interrupted uploads could not be finished by repeating: ` +
        unfinished
          .filter((u) => !u.acknowledged)
          .map((u) => `${u.mediaId} (${u.big ? 'multipart' : 'single'}): ${u.lastFail}`)
          .join('; '),
    );

  // The database and the bucket agree.
  const { rows } = await db.query<{
    id: string;
    status: string;
    storage_key: string;
    bytes: number;
    message_id: string;
    mp_state: string | null;
    upload_id: string | null;
  }>(
    `SELECT m.id, m.status, m.storage_key, m.bytes, m.message_id, u.state AS mp_state, u.upload_id
       FROM media m LEFT JOIN multipart_uploads u ON u.media_id = m.id`,
  );
  const corrupt: string[] = [];
  const byMessage = new Map<string, number>();
  for (const r of rows) byMessage.set(r.message_id, (byMessage.get(r.message_id) ?? 0) + 1);
  for (const [m, n] of byMessage) if (n > 1) corrupt.push(`${n} rows for messageId ${m}`);
  for (const r of rows) {
    if (['UPLOADED', 'PROCESSING', 'READY'].includes(r.status)) {
      const head = await s3
        .send(new HeadObjectCommand({ Bucket: BUCKET, Key: r.storage_key }))
        .catch(() => undefined);
      if (head?.ContentLength !== r.bytes)
        corrupt.push(
          `${r.id} is ${r.status} but its object is ${head ? `${head.ContentLength} bytes` : 'missing'}`,
        );
    } else corrupt.push(`${r.id} is ${r.status} after every upload was finished`);
    if (r.mp_state !== null && r.mp_state !== 'COMPLETED')
      corrupt.push(`${r.id}: multipart left ${r.mp_state}`);
  }
  const open = await s3.send(new ListMultipartUploadsCommand({ Bucket: BUCKET }));
  const completedUploadIds = new Set(rows.filter((r) => r.upload_id !== null).map((r) => r.upload_id!));
  const leftOpen = (open.Uploads ?? []).filter((x) => completedUploadIds.has(x.UploadId!));
  for (const x of leftOpen) corrupt.push(`store upload ${x.UploadId} of completed media still open`);
  // Store uploads no row points to (begun while the answer was lost): the sweeper's to abort.
  const strays = (open.Uploads ?? []).length - leftOpen.length;
  results.push({
    scenario: 'S3 store: database ↔ bucket consistency after the outage',
    trials: rows.length,
    survived: rows.length - new Set(corrupt.map((c) => c.split(' ')[0])).size,
    notes: `${rows.length} media rows, one per messageId, each UPLOADED with its object of the declared size; ${strays} stray store multipart uploads without a row (left to the sweeper); ${Math.round((Date.now() - t0) / 1000)} s in all`,
  });
  if (corrupt.length > 0) problems.push(`inconsistent: ${corrupt.slice(0, 5).join('; ')}`);

  assert.equal(svc.child.exitCode, null, 'the service process survived the outage');
  await recordFaultResults('store', results);
  assert.deepEqual(problems, []);
});
