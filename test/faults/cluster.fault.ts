/**
 * Many instances, one database (issue 17 §4): two `mediary serve` processes (API only) and two
 * `mediary worker` processes, spawned, on one database and one local store directory, with
 * traffic spread across both APIs. Then one API and one worker are SIGKILLed under load: clients
 * go on through the other API, and nothing acknowledged is lost or processed twice into
 * different results.
 *
 * In the fault suite (`npm run test:faults`) rather than `npm test`: four spawned processes and
 * their traffic take one to two minutes on a loaded 2-core machine. The in-process checks of the
 * same properties (shared rate limits, periodic jobs) are in test/cluster/shared-limits.test.ts.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { createDevice } from '../../src/auth/principals.ts';
import { startEmbedded, type EmbeddedDatabase } from '../../src/db/embedded.ts';
import { migrate } from '../../src/db/migrate.ts';
import { createPool } from '../../src/db/pool.ts';
import { createLogger } from '../../src/log.ts';
import { fixture, sha256 } from '../helpers/files.ts';
import { BIN, recordFaultResults, spawnService, type ServiceProcess } from '../helpers/process.ts';
import { call, freePort, tempDir, testEnv } from '../helpers/server.ts';
import { createTestDatabase } from '../helpers/test-postgres.ts';

const IMAGES = ['cameras/Canon_40D.jpg', 'cameras/Pentax_K10D.jpg', 'cameras/Nikon_D70.jpg'].map(fixture);
const SESSION_LIMIT = 400;

let dir: string;
let embedded: EmbeddedDatabase | undefined;
let db: pg.Pool;
let shared: Record<string, string>;
const apis: ServiceProcess[] = [];
const workers: { child: ChildProcess; exited: Promise<unknown> }[] = [];

async function startApi(name: string): Promise<ServiceProcess> {
  const env = await testEnv(path.join(dir, name), { ...shared, WORKER_ENABLED: 'false' });
  return spawnService(env);
}

function startWorker(name: string) {
  const log = createWriteStream(path.join(dir, `${name}.log`));
  const child = spawn(process.execPath, [BIN, 'worker'], {
    env: { ...process.env, ...shared, DATA_DIR: path.join(dir, name), LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  const exited = new Promise((r) => child.once('exit', r));
  return { child, exited };
}

before(async () => {
  dir = await tempDir('mediary-cluster-');
  let url = await createTestDatabase();
  if (url === undefined) {
    const logger = createLogger('silent');
    embedded = await startEmbedded({ dir: path.join(dir, 'postgres'), port: await freePort(), logger });
    url = embedded.url;
    const p = createPool(url, logger, 1);
    await migrate(p, logger);
    await p.end();
  }
  db = new pg.Pool({ connectionString: url, max: 4 });
  shared = {
    DATABASE_URL: url,
    LOCAL_STORAGE_DIR: path.join(dir, 'objects'),
    SIGNING_SECRET: randomBytes(32).toString('hex'),
    RATE_LIMIT_SESSIONS_PER_MINUTE: String(SESSION_LIMIT),
    PROCESSING_CONCURRENCY: '1',
    PROCESSING_RETRY_DELAY_SECONDS: '0',
    PROCESSING_POLL_INTERVAL_MS: '200',
    SWEEP_INTERVAL_SECONDS: '0',
    LOG_LEVEL: 'warn',
  };
  apis.push(await startApi('api-1'), await startApi('api-2'));
  workers.push(startWorker('worker-1'), startWorker('worker-2'));
});
after(async () => {
  for (const w of workers)
    if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGTERM');
  await Promise.all(workers.map((w) => w.exited));
  await Promise.all(apis.map((a) => a.kill('SIGTERM')));
  await db?.end();
  await embedded?.stop();
  await rm(dir, { recursive: true, force: true });
});

/** The same URL on another API process (signed URLs name the API they were made by). */
const via = (url: string, api: ServiceProcess) => {
  const u = new URL(url);
  const b = new URL(api.base);
  u.host = b.host;
  return u.toString();
};

const device = async (name: string) => {
  const { device: d, apiKey } = await createDevice(db, { name });
  return { id: d.id, auth: { authorization: `Bearer ${apiKey}` } };
};

/**
 * One upload by a camera, step by step, each step on the next API of `pick()` and repeated
 * (with the same messageId, so idempotently) on a connection error, a 5xx or a 409 in flight until
 * it holds. Resolves with the media id once `complete` was acknowledged.
 */
async function resilientUpload(
  auth: Record<string, string>,
  messageId: string,
  bytes: Buffer,
  pick: () => ServiceProcess,
): Promise<string> {
  const step = async (fn: (api: ServiceProcess) => Promise<{ status: number; text: string; body: any }>) => {
    for (let attempt = 0; ; attempt++) {
      const api = pick();
      try {
        const r = await fn(api);
        if (r.status < 500 && r.status !== 409) return r;
        if (attempt > 200) assert.fail(`still ${r.status}: ${r.text}`);
      } catch (err) {
        if (attempt > 200) throw err;
      }
      await sleep(50);
    }
  };
  const session = await step((api) =>
    call(api.api('/media'), {
      method: 'POST',
      headers: auth,
      json: {
        fileName: 'p.jpg',
        mimeType: 'image/jpeg',
        bytes: bytes.length,
        sha256: sha256(bytes),
        messageId,
      },
    }),
  );
  assert.ok([200, 201].includes(session.status), session.text);
  const id = session.body.mediaId as string;
  if (session.body.upload) {
    const put = await step((api) =>
      call(via(session.body.upload.url, api), {
        method: 'PUT',
        headers: { 'content-type': 'image/jpeg' },
        body: bytes,
      }),
    );
    assert.equal(put.status, 200, put.text);
  }
  const done = await step((api) => call(api.api(`/media/${id}/complete`), { method: 'POST', headers: auth }));
  assert.equal(done.status, 200, done.text);
  return id;
}

async function allProcessed(ids: string[], timeoutMs = 120_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { rows } = await db.query<{ status: string; n: number }>(
      'SELECT status, count(*)::int AS n FROM media WHERE id = ANY($1) GROUP BY status',
      [ids],
    );
    const ready = rows.find((r) => r.status === 'READY')?.n ?? 0;
    if (ready === ids.length) return;
    assert.ok(!rows.some((r) => r.status === 'FAILED'), JSON.stringify(rows));
    if (Date.now() > deadline) assert.fail(`not all processed: ${JSON.stringify(rows)}`);
    await sleep(200);
  }
}

/** Each media: one row per messageId, READY, exactly its 4 variants, and in the store exactly those. */
async function assertProcessedOnce(deviceId: string, ids: string[]) {
  const { rows: perMessage } = await db.query(
    'SELECT message_id, count(*)::int AS n FROM media WHERE device_id = $1 GROUP BY message_id HAVING count(*) > 1',
    [deviceId],
  );
  assert.deepEqual(perMessage, [], 'one media per messageId');
  const { rows: variants } = await db.query<{ media_id: string; names: string[]; keys: string[] }>(
    `SELECT media_id, array_agg(name ORDER BY name) AS names, array_agg(key ORDER BY key) AS keys
       FROM media_variants WHERE media_id = ANY($1) GROUP BY media_id`,
    [ids],
  );
  assert.equal(variants.length, ids.length, 'every media has variants');
  for (const v of variants) {
    assert.deepEqual(v.names, ['1200', '150', '300', '600'], v.media_id);
    // What the store holds for the media is exactly what its rows name: a second run of the
    // same job (after a killed worker) produced the same bytes under the same keys. (Variants of
    // a small photo can be one and the same object: keys are content-addressed.)
    const onDisk = (await readdir(path.join(shared.LOCAL_STORAGE_DIR!, 'variants', v.media_id)))
      .map((f) => `variants/${v.media_id}/${f}`)
      .sort();
    assert.deepEqual(onDisk, [...new Set(v.keys)].sort(), `variant objects of ${v.media_id}`);
  }
}

describe('two API processes and two workers on one database', () => {
  test('uploads spread over both APIs are completed and processed exactly once each', async () => {
    const cam = await device('cam-spread');
    let turn = 0;
    const pick = () => apis[turn++ % 2]!;
    const ids = await Promise.all(
      Array.from({ length: 12 }, (_, i) => resilientUpload(cam.auth, `spread-${i}`, IMAGES[i % 3]!, pick)),
    );
    assert.equal(new Set(ids).size, 12);
    await allProcessed(ids);
    await assertProcessedOnce(cam.id, ids);
    // One attempt per media, one completed job per media (no job ran twice).
    const { rows } = await db.query(
      `SELECT processing_attempts AS attempts, count(*)::int AS n FROM media WHERE id = ANY($1) GROUP BY 1`,
      [ids],
    );
    assert.deepEqual(rows, [{ attempts: 1, n: 12 }]);
    const { rows: jobs } = await db.query(
      `SELECT data->>'mediaId' AS media, count(*)::int AS n FROM pgboss.job
        WHERE data->>'mediaId' = ANY($1) AND state = 'completed' GROUP BY 1`,
      [ids],
    );
    assert.equal(jobs.length, 12);
    assert.ok(
      jobs.every((j) => j.n === 1),
      JSON.stringify(jobs),
    );
  });

  test('signed URLs made by one API are accepted by the other', async () => {
    const cam = await device('cam-signed');
    const bytes = IMAGES[0]!;
    const s = await call(apis[0]!.api('/media'), {
      method: 'POST',
      headers: cam.auth,
      json: { fileName: 'p.jpg', mimeType: 'image/jpeg', bytes: bytes.length, sha256: sha256(bytes) },
    });
    assert.equal(s.status, 201, s.text);
    const put = await call(via(s.body.upload.url, apis[1]!), {
      method: 'PUT',
      headers: { 'content-type': 'image/jpeg' },
      body: bytes,
    });
    assert.equal(put.status, 200, put.text);
    const done = await call(apis[1]!.api(`/media/${s.body.mediaId}/complete`), {
      method: 'POST',
      headers: cam.auth,
    });
    assert.equal(done.status, 200, done.text);
    const link = await call(apis[1]!.api(`/media/${s.body.mediaId}/download?mode=url`), {
      headers: cam.auth,
    });
    assert.equal(link.status, 200, link.text);
    const got = await fetch(via(link.body.url, apis[0]!));
    assert.equal(got.status, 200);
    assert.equal(sha256(Buffer.from(await got.arrayBuffer())), sha256(bytes));
    // A tampered one is refused by either.
    const forged = new URL(via(link.body.url, apis[0]!));
    const sig = forged.searchParams.get('sig')!;
    forged.searchParams.set('sig', sig.slice(0, -1) + (sig.endsWith('A') ? 'B' : 'A'));
    assert.equal((await fetch(forged)).status, 403);
  });

  test('a device revoked through one process is refused by both', async () => {
    const cam = await device('cam-revoked');
    const probe = (api: ServiceProcess) =>
      call(api.api(`/devices/${cam.id}/media?limit=1`), { headers: cam.auth });
    // Both processes have the key cached.
    for (const api of apis) for (let i = 0; i < 2; i++) assert.equal((await probe(api)).status, 200);
    const revoke = spawn(process.execPath, [BIN, 'devices', 'revoke', cam.id], {
      env: { ...process.env, ...shared, DATA_DIR: path.join(dir, 'admin') },
      stdio: 'ignore',
    });
    assert.equal(await new Promise((r) => revoke.once('exit', r)), 0);
    for (const api of apis) {
      const deadline = Date.now() + 5000;
      let status = (await probe(api)).status;
      while (status !== 401 && Date.now() < deadline) {
        await sleep(20);
        status = (await probe(api)).status;
      }
      assert.equal(status, 401, `refused by ${api.base}`);
    }
  });

  test('the session rate limit counts across both APIs', async () => {
    const cam = await device('cam-limited');
    const post = (api: ServiceProcess) =>
      call(api.api('/media'), {
        method: 'POST',
        headers: cam.auth,
        json: { fileName: 'a.jpg', mimeType: 'image/jpeg', bytes: 10 },
      });
    const statuses = await Promise.all(
      Array.from({ length: SESSION_LIMIT + 10 }, (_, i) => post(apis[i % 2]!).then((r) => r.status)),
    );
    assert.equal(statuses.filter((s) => s === 201).length, SESSION_LIMIT);
    assert.equal(statuses.filter((s) => s === 429).length, 10);
  });

  test('SIGKILL of one API and one worker under load: nothing acknowledged is lost or processed twice', async () => {
    const cam = await device('cam-kill');
    let killed = false;
    let turn = 0;
    // Before the kill: both APIs; after it, the survivor (a client that hit the dead one retries there).
    const pick = () => (killed ? apis[1]! : apis[turn++ % 2]!);
    const acknowledged: string[] = [];
    let next = 0;
    const stopAt = Date.now() + 6000;
    const client = async () => {
      while (Date.now() < stopAt) {
        const i = next++;
        acknowledged.push(await resilientUpload(cam.auth, `kill-${i}`, IMAGES[i % 3]!, pick));
      }
    };
    const load = Promise.all(Array.from({ length: 4 }, client));
    // Once jobs are running, kill one API and one worker mid-flight.
    const deadline = Date.now() + 20_000;
    while (acknowledged.length < 6 && Date.now() < deadline) await sleep(20);
    await apis[0]!.kill('SIGKILL');
    workers[0]!.child.kill('SIGKILL');
    killed = true;
    await workers[0]!.exited;
    await load;
    assert.ok(acknowledged.length >= 6, `${acknowledged.length} uploads acknowledged`);
    // Every acknowledged upload is processed (the surviving worker takes over the dead one's job).
    await allProcessed(acknowledged, 180_000);
    await assertProcessedOnce(cam.id, acknowledged);
    // No session left behind as a duplicate or half-done for an acknowledged messageId.
    const { rows } = await db.query(
      `SELECT count(*)::int AS n FROM media WHERE device_id = $1 AND status = 'READY'`,
      [cam.id],
    );
    assert.equal(rows[0].n, acknowledged.length);
    await recordFaultResults('cluster', [
      {
        scenario: 'SIGKILL of one of two APIs and one of two workers under load',
        trials: acknowledged.length,
        survived: rows[0].n,
        notes: 'acknowledged uploads READY once, with exactly the variant objects their rows name',
      },
    ]);
  });
});
