/**
 * Deletion survives a crash (issue 18). A real `mediary serve` deletes a processed image and a
 * processed video (original, variants, poster, HLS playlists and segments) and is SIGKILLed after
 * the database change committed but before its store deletes finished:
 *  - local store: a test-only preload (test/faults/preload/stall-rm.mjs) holds the `rm` of the
 *    media's variant / HLS files, so the original may be gone and the rest not;
 *  - Ceph: the server reaches the gateway through a TCP proxy that is frozen before the deletes.
 * After a restart (no stall), the deletion outbox finishes: no object of a deleted media is left in
 * the store, no outbox row is left, the deleted media answer 404, and a media nobody deleted
 * still has every object it references (no record pointing at missing bytes).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { loadConfig } from '../../src/config.ts';
import { createStore } from '../../src/storage/factory.ts';
import { UrlSigner } from '../../src/storage/signing.ts';
import { PublicUrls } from '../../src/http/urls.ts';
import type { ObjectStore } from '../../src/storage/types.ts';
import { type Ceph, startCeph } from '../helpers/ceph.ts';
import { fixture } from '../helpers/files.ts';
import {
  embeddedUrl,
  makeDevices,
  poolFor,
  recordFaultResults,
  spawnService,
  stopOrphanPostgres,
  type FaultRow,
  type ServiceProcess,
} from '../helpers/process.ts';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.ts';
import { call, tempDir, testEnv } from '../helpers/server.ts';
import { createTestDatabase } from '../helpers/test-postgres.ts';
import { videoClip } from '../helpers/video.ts';

const STALL = path.join(path.dirname(fileURLToPath(import.meta.url)), 'preload', 'stall-rm.mjs');
const SECRET = 'deletion-crash-signing-secret-0123456789abcdef';
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

let ceph: Ceph;
let proxy: TcpProxy;
let clip: Buffer;
const cleanup: (() => Promise<void>)[] = [];
const rows: FaultRow[] = [];

before(async () => {
  const dir = await tempDir('mediary-fault-deletion-clip-');
  const out = path.join(dir, 'clip.mp4');
  clip = await videoClip(out, { size: '320x180', rate: 15, duration: 2 });
  await rm(dir, { recursive: true, force: true });
  ceph = await startCeph();
  const gateway = new URL(ceph.env.S3_ENDPOINT!);
  proxy = await startTcpProxy(Number(gateway.port), gateway.hostname);
});

after(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => undefined);
  await proxy?.close();
  await ceph?.stop();
  await recordFaultResults('deletion-crash', rows);
});

interface Run {
  env: Record<string, string>;
  db: pg.Pool;
  store: ObjectStore;
  svc: ServiceProcess;
  auth: Record<string, string>;
}

async function start(backend: 'local' | 's3', extra: Record<string, string>): Promise<Run> {
  const dataDir = await tempDir(`mediary-fault-deletion-${backend}-`);
  const databaseUrl = await createTestDatabase();
  const env = await testEnv(dataDir, {
    LOG_LEVEL: 'warn',
    SIGNING_SECRET: SECRET,
    SWEEP_INTERVAL_SECONDS: '0', // the orphan sweeper must not be what cleans up
    DELETION_DRAIN_INTERVAL_SECONDS: '1',
    VIDEO_PRESET: 'ultrafast',
    ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
    ...(backend === 's3'
      ? ceph.serverEnv(`mediary-deletion-crash`, { S3_ENDPOINT: `http://127.0.0.1:${proxy.port}` })
      : {}),
    ...extra,
  });
  const store = createStore(
    loadConfig(env),
    backend,
    new PublicUrls(new UrlSigner(SECRET), 'http://localhost'),
  );
  if (backend === 's3') await store.setup({ corsOrigins: [] });
  const svc = await spawnService(env, { nodeArgs: ['--import', STALL] });
  const db = poolFor(databaseUrl ?? embeddedUrl(dataDir, env.EMBEDDED_PG_PORT!));
  const auth = (await makeDevices(db, 1, `del-${backend}`))[0]!.auth;
  const run = { env, db, store, svc, auth };
  cleanup.push(async () => {
    await run.svc.kill('SIGTERM');
    await db.end();
    await stopOrphanPostgres(dataDir);
    await rm(dataDir, { recursive: true, force: true });
  });
  return run;
}

async function uploadReady(r: Run, bytes: Buffer, mimeType: string): Promise<string> {
  const s = await call(r.svc.api('/media'), {
    method: 'POST',
    headers: r.auth,
    json: { fileName: 'f', mimeType, bytes: bytes.length, sha256: sha(bytes) },
  });
  assert.equal(s.status, 201, s.text);
  const put = await call(s.body.upload.url, { method: 'PUT', headers: s.body.upload.headers, body: bytes });
  assert.equal(put.status, 200, put.text);
  const id = s.body.mediaId as string;
  assert.equal(
    (await call(r.svc.api(`/media/${id}/complete`), { method: 'POST', headers: r.auth })).status,
    200,
  );
  await until(`${id} READY`, async () => {
    const st = await call(r.svc.api(`/media/${id}/status`), { headers: r.auth });
    assert.notEqual(st.body.status, 'FAILED', st.text);
    return st.body.status === 'READY' ? true : undefined;
  });
  return id;
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** Every object key a media's rows reference (read from the tables, as an operator would). */
async function keysOf(db: pg.Pool, id: string): Promise<string[]> {
  const { rows } = await db.query<{ k: string }>(
    `SELECT storage_key AS k FROM media WHERE id = $1
     UNION SELECT key FROM media_variants WHERE media_id = $1
     UNION SELECT storage_key FROM media_hls_objects WHERE media_id = $1`,
    [id],
  );
  return rows.map((r) => r.k).sort();
}

async function listed(store: ObjectStore): Promise<Set<string>> {
  const keys = new Set<string>();
  for await (const page of store.listObjects()) for (const o of page) keys.add(o.key);
  return keys;
}

/**
 * Deletes `doomed` while the store cannot finish (`hold`), SIGKILLs the server once every row is
 * DELETED, lets the store work again (`release`), restarts, and checks the invariants.
 */
async function crashAndRecover(
  backend: 'local' | 's3',
  r: Run,
  ids: { doomed: string[]; kept: string },
  hold: () => Promise<void>,
  release: () => Promise<void>,
): Promise<void> {
  const keys = new Map<string, string[]>();
  for (const id of [...ids.doomed, ids.kept]) keys.set(id, await keysOf(r.db, id));
  for (const id of ids.doomed) assert.ok(keys.get(id)!.length >= 2, `${id}: original + derived objects`);
  const before = await listed(r.store);
  for (const k of [...keys.values()].flat()) assert.ok(before.has(k), `${k} stored before the delete`);

  await hold();
  const deletes = ids.doomed.map((id) =>
    fetch(r.svc.api(`/media/${id}`), { method: 'DELETE', headers: r.auth }).catch(() => undefined),
  );
  await until('every delete committed', async () => {
    const { rows } = await r.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM media m JOIN media_deletions d ON d.media_id = m.id
        WHERE m.id = ANY($1) AND m.status = 'DELETED'`,
      [ids.doomed],
    );
    return rows[0]!.n === ids.doomed.length ? true : undefined;
  });
  await r.svc.kill('SIGKILL');
  await Promise.all(deletes);
  await release();

  const atCrash = await listed(r.store);
  const left = ids.doomed.flatMap((id) => keys.get(id)!.filter((k) => atCrash.has(k)));
  assert.ok(left.length > 0, 'the crash left objects of the deleted media behind');
  const { rows: pending } = await r.db.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM media_deletions WHERE media_id = ANY($1)',
    [ids.doomed],
  );
  assert.equal(pending[0]!.n, ids.doomed.length, 'the outbox holds every unfinished deletion');

  const restartedAt = Date.now();
  r.svc = await spawnService(r.env, { nodeArgs: ['--import', STALL] });
  await until('the outbox drained', async () => {
    const { rows: n } = await r.db.query<{ n: number }>('SELECT count(*)::int AS n FROM media_deletions');
    return n[0]!.n === 0 ? true : undefined;
  });
  const after = await listed(r.store);
  for (const id of ids.doomed) {
    assert.deepEqual(
      keys.get(id)!.filter((k) => after.has(k)),
      [],
      `no object of deleted media ${id} is left`,
    );
    const get = await call(r.svc.api(`/media/${id}`), { headers: r.auth });
    assert.equal(get.status, 404);
  }
  for (const k of keys.get(ids.kept)!) assert.ok(after.has(k), `${k} of the kept media is still stored`);
  const kept = await call(r.svc.api(`/media/${ids.kept}/status`), { headers: r.auth });
  assert.equal(kept.body.status, 'READY');
  // No record points at missing bytes: every live media's objects are in the store.
  const { rows: live } = await r.db.query<{ id: string }>(`SELECT id FROM media WHERE status <> 'DELETED'`);
  for (const { id } of live)
    for (const k of await keysOf(r.db, id)) assert.ok(after.has(k), `${k} (live ${id})`);
  rows.push({
    scenario: `${backend}: SIGKILL between the DELETED commit and the store deletes`,
    trials: ids.doomed.length,
    survived: ids.doomed.length,
    notes: `${left.length} objects left by the crash, removed ${((Date.now() - restartedAt) / 1000).toFixed(1)} s after the restart began`,
  });
}

test('local store: a delete killed between the database and the store deletes is finished after the restart', async () => {
  const stallFile = path.join(await tempDir('mediary-fault-stall-'), 'stall');
  cleanup.push(() => rm(path.dirname(stallFile), { recursive: true, force: true }));
  const r = await start('local', { MEDIARY_TEST_STALL_RM_FILE: stallFile });
  const image = await uploadReady(r, fixture('cameras/Canon_40D.jpg'), 'image/jpeg');
  const video = await uploadReady(r, clip, 'video/mp4');
  const kept = await uploadReady(r, fixture('cameras/Nikon_D70.jpg'), 'image/jpeg');
  await crashAndRecover(
    'local',
    r,
    { doomed: [image, video], kept },
    // The original goes first; the variants (and HLS) of the doomed media hang.
    () => writeFile(stallFile, `variants/${image}\nvariants/${video}\nhls/${video}\n`),
    () => rm(stallFile, { force: true }),
  );
});

test('Ceph: a delete killed while the gateway does not answer is finished after the restart', async () => {
  const r = await start('s3', {});
  const image = await uploadReady(r, fixture('cameras/Canon_40D.jpg'), 'image/jpeg');
  const video = await uploadReady(r, clip, 'video/mp4');
  const kept = await uploadReady(r, fixture('cameras/Nikon_D70.jpg'), 'image/jpeg');
  await crashAndRecover(
    's3',
    r,
    { doomed: [image, video], kept },
    async () => proxy.freeze(),
    async () => proxy.thaw(),
  );
});
