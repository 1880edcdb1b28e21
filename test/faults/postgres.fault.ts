/**
 * Postgres restarted under load. The service runs on DATABASE_URL against an embedded Postgres this
 * test owns; while 16 clients keep sending a mix of requests, the database is shut down (fast
 * shutdown, then an immediate one that needs crash recovery) and started again. Every answer must
 * be a success or a 503 with Retry-After — never a 500 or a dropped connection — and the service
 * must recover on its own.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { startEmbedded, type EmbeddedDatabase } from '../../src/db/embedded.ts';
import { createLogger } from '../../src/log.ts';
import { freePort, tempDir, testEnv } from '../helpers/server.ts';
import { fixture } from '../helpers/files.ts';
import {
  makeDevices,
  poolFor,
  recordFaultResults,
  spawnService,
  type FaultRow,
  type ServiceProcess,
} from '../helpers/process.ts';

const CYCLES = [
  { how: 'fast shutdown (SIGINT)', signal: 'SIGINT' },
  { how: 'immediate shutdown (SIGQUIT, crash recovery)', signal: 'SIGQUIT' },
  { how: 'fast shutdown (SIGINT)', signal: 'SIGINT' },
] as const;
const JPEG = fixture('cameras/Canon_40D.jpg');
const JPEG_SHA = createHash('sha256').update(JPEG).digest('hex');
const logger = createLogger('silent');

let dataDir: string;
let pgDir: string;
let pgPort: number;
let database: EmbeddedDatabase;
let svc: ServiceProcess;
let db: pg.Pool;
let devices: { id: string; auth: Record<string, string> }[];

before(async () => {
  dataDir = await tempDir('mediary-fault-pg-');
  pgDir = path.join(dataDir, 'external-pg');
  pgPort = await freePort();
  database = await startEmbedded({ dir: pgDir, port: pgPort, logger, restartOnExit: false });
  svc = await spawnService(await testEnv(dataDir, { DATABASE_URL: database.url, LOG_LEVEL: 'warn' }));
  db = poolFor(database.url);
  devices = await makeDevices(db, 4, 'pg');
});

after(async () => {
  await svc?.kill('SIGTERM');
  await db?.end();
  await database?.stop();
  if (!process.env.FAULT_KEEP) await rm(dataDir, { recursive: true, force: true });
});

interface Outcome {
  status: number | 'network';
  retryAfter: boolean;
  what: string;
}

let seq = 0;
/** One client step: a session, upload and completion, a listing, or a read. */
async function step(worker: number): Promise<Outcome[]> {
  const dev = devices[worker % devices.length]!;
  const out: Outcome[] = [];
  const record = (what: string, res: Response) =>
    out.push({ status: res.status, retryAfter: res.headers.has('retry-after'), what });
  try {
    const n = seq++;
    const kind = n % 3;
    if (kind === 0) {
      const res = await fetch(svc.api('/media'), {
        method: 'POST',
        headers: { ...dev.auth, 'content-type': 'application/json' },
        body: JSON.stringify({
          fileName: 'a.jpg',
          mimeType: 'image/jpeg',
          bytes: JPEG.length,
          sha256: JPEG_SHA,
          messageId: `w${worker}-${n}`,
        }),
      });
      record('POST /media', res);
      if (res.status !== 201) return out;
      const s = (await res.json()) as { mediaId: string; upload: { url: string } };
      const up = await fetch(s.upload.url, {
        method: 'PUT',
        headers: { 'content-type': 'image/jpeg' },
        body: JPEG,
      });
      record('PUT upload', up);
      await up.arrayBuffer();
      if (up.status !== 200) return out;
      const done = await fetch(svc.api(`/media/${s.mediaId}/complete`), {
        method: 'POST',
        headers: dev.auth,
      });
      record('POST complete', done);
      await done.arrayBuffer();
    } else if (kind === 1) {
      const res = await fetch(svc.api(`/devices/${dev.id}/media?limit=20`), { headers: dev.auth });
      record('GET list', res);
      await res.arrayBuffer();
    } else {
      const res = await fetch(`${svc.base}/readyz`);
      record('GET /readyz', res);
      await res.arrayBuffer();
    }
  } catch {
    out.push({ status: 'network', retryAfter: false, what: 'network error' });
  }
  return out;
}

/** Runs `workers` clients until `stop()` says so; returns every outcome. */
function load(workers: number) {
  const outcomes: Outcome[] = [];
  let running = true;
  const loops = Array.from({ length: workers }, async (_, w) => {
    while (running) outcomes.push(...(await step(w)));
  });
  return {
    outcomes,
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}

function postmasterPid(): number {
  return Number(readFileSync(path.join(pgDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
}

const results: FaultRow[] = [];

test('Postgres restarted under load: only 2xx or 503 + Retry-After, then recovery', async () => {
  const problems: string[] = [];
  for (const cycle of CYCLES) {
    const l = load(16);
    await sleep(1500);
    const before = l.outcomes.length;
    // Take the database away under load.
    const pid = postmasterPid();
    process.kill(pid, cycle.signal);
    while (existsSync(`/proc/${pid}`)) await sleep(20);
    await sleep(2500);
    const down = l.outcomes.slice(before);
    database = await startEmbedded({ dir: pgDir, port: pgPort, logger, restartOnExit: false });
    const restartedAt = Date.now();
    // Recovery: the first successful session creation after the restart.
    let recoveredMs = -1;
    while (Date.now() - restartedAt < 20_000) {
      const ok = l.outcomes
        .slice(before + down.length)
        .some((o) => o.what === 'POST /media' && o.status === 201);
      if (ok) {
        recoveredMs = Date.now() - restartedAt;
        break;
      }
      await sleep(50);
    }
    await sleep(2000);
    const tailFrom = l.outcomes.length;
    await sleep(1000);
    const tail = l.outcomes.slice(tailFrom);
    await l.stop();

    const bad = l.outcomes.filter(
      (o) => o.status === 'network' || (o.status >= 500 && !(o.status === 503 && o.retryAfter)),
    );
    const n503 = l.outcomes.filter((o) => o.status === 503).length;
    const tailBad = tail.filter((o) => o.status !== 200 && o.status !== 201);
    if (bad.length > 0)
      problems.push(`${cycle.how}: ${bad.length} bad answers, e.g. ${JSON.stringify(bad.slice(0, 3))}`);
    if (n503 === 0) problems.push(`${cycle.how}: the outage produced no 503 at all`);
    if (recoveredMs < 0) problems.push(`${cycle.how}: no successful session within 20 s of the restart`);
    if (tail.length === 0 || tailBad.length > 0)
      problems.push(`${cycle.how}: after recovery ${tailBad.length}/${tail.length} requests still failed`);
    results.push({
      scenario: `Postgres ${cycle.how} under load (16 clients)`,
      trials: l.outcomes.length,
      survived: l.outcomes.length - bad.length,
      notes: `${n503} × 503 with Retry-After, ${bad.length} × 500/dropped; recovered ${recoveredMs} ms after restart`,
    });
  }
  // The service is still the same process, healthy, and nothing UPLOADED lacks its object.
  assert.equal(svc.child.exitCode, null, 'the service process survived every restart');
  const ready = await fetch(`${svc.base}/readyz`);
  assert.equal(ready.status, 200);
  const { rows } = await db.query<{ storage_uri: string }>(
    `SELECT storage_uri FROM media WHERE status IN ('UPLOADED', 'PROCESSING', 'READY')`,
  );
  for (const r of rows) assert.ok(existsSync(r.storage_uri), `UPLOADED row without object: ${r.storage_uri}`);
  await recordFaultResults('postgres', results);
  assert.deepEqual(problems, []);
});
