/**
 * Deleting media reaches every copy (issue 18): the original, every variant and poster, on the local
 * store and on Ceph, through the deletion outbox (migration 0031), and a CDN purge of each object's
 * URL, sent to a local receiver — retried from the outbox when the CDN fails, never holding the
 * delete up, given up after CDN_PURGE_MAX_ATTEMPTS. A deletion made outside the API (SQL) is
 * finished by the drain too. The crash between the steps is test/faults/deletion-crash.fault.ts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Pool } from '../../src/db/pool.ts';
import type { DeletionOutbox } from '../../src/media/deletion-outbox.ts';
import { createStore } from '../../src/storage/factory.ts';
import { UrlSigner } from '../../src/storage/signing.ts';
import { PublicUrls } from '../../src/http/urls.ts';
import type { ObjectStore } from '../../src/storage/types.ts';
import { type Ceph, startCeph } from '../helpers/ceph.ts';
import { fixture } from '../helpers/files.ts';
import { call, startTestServer, type TestServer } from '../helpers/server.ts';
import { waitFor } from '../processing/helpers.ts';
import { uploadImage } from './helpers.ts';
import { startPurgeReceiver, type PurgeReceiver } from './purge-receiver.ts';

const CDN = 'https://cdn.example.test';
let ceph: Ceph;
let receiver: PurgeReceiver;
const servers: TestServer[] = [];

before(async () => {
  [ceph, receiver] = await Promise.all([startCeph(), startPurgeReceiver()]);
});
after(async () => {
  for (const t of servers) await t.close();
  await receiver?.close();
  await ceph?.stop();
});

interface Ctx {
  t: TestServer;
  pool: Pool;
  store: ObjectStore;
  outbox: DeletionOutbox;
  auth: Record<string, string>;
}

async function serverFor(backend: 'local' | 's3'): Promise<Ctx> {
  const t = await startTestServer({
    ...(backend === 's3' ? ceph.serverEnv('mediary-deletion-outbox') : {}),
    SWEEP_INTERVAL_SECONDS: '0',
    DELETION_DRAIN_INTERVAL_SECONDS: '0', // the tests drain by hand
    CDN_PURGE_URL: receiver.url,
    CDN_PURGE_HEADER: 'Authorization: Bearer purge-token',
    CDN_PURGE_FILE_URLS: `${CDN}/{key},${CDN}/media/{mediaId}`,
    CDN_PURGE_MAX_ATTEMPTS: '3',
  });
  servers.push(t);
  const store = createStore(
    t.config,
    t.config.storage.backend,
    new PublicUrls(new UrlSigner('unused-for-stat'), t.config.publicUrl),
  );
  if (backend === 's3') await store.setup({ corsOrigins: [] });
  const dev = await t.device('cam');
  return {
    t,
    pool: t.server.database.pool,
    store,
    outbox: t.server.media.deletion.outbox,
    auth: dev.auth,
  };
}

async function readyImage(c: Ctx): Promise<{ id: string; keys: string[] }> {
  const id = await uploadImage(c.t, c.auth, fixture('cameras/Canon_40D.jpg'));
  const st = await waitFor(c.t, c.auth, id, ['READY', 'FAILED'], 120_000);
  assert.equal(st.status, 'READY', JSON.stringify(st));
  const keys = await c.outbox.objectKeys(id);
  assert.ok(keys.length >= 2, `the original and its variants: ${keys.join(', ')}`);
  for (const k of keys) assert.ok(await c.store.stat(k), `${k} is stored`);
  return { id, keys };
}

async function present(c: Ctx, keys: string[]): Promise<string[]> {
  const out = [];
  for (const k of keys) if (await c.store.stat(k)) out.push(k);
  return out;
}

const outboxRow = async (c: Ctx, id: string) =>
  (
    await c.pool.query<{ objects_removed_at: Date | null; last_error: string | null; attempts: number }>(
      'SELECT objects_removed_at, last_error, attempts FROM media_deletions WHERE media_id = $1',
      [id],
    )
  ).rows[0];

const expectedUrls = (id: string, keys: string[]) => [
  ...keys.map((k) => `${CDN}/${k.split('/').map(encodeURIComponent).join('/')}`),
  `${CDN}/media/${id}`,
];

/** Makes a row that waits for its backoff due now (instead of waiting it out). */
const dueNow = (c: Ctx, id: string) =>
  c.pool.query('UPDATE media_deletions SET next_attempt_at = now() WHERE media_id = $1', [id]);

for (const backend of ['local', 's3'] as const) {
  describe(`deletion on the ${backend} store`, () => {
    let c: Ctx;
    before(async () => {
      c = await serverFor(backend);
    });

    describe('DELETE', () => {
      let id: string;
      let keys: string[];
      before(async () => {
        receiver.mode = 'ok';
        ({ id, keys } = await readyImage(c));
      });

      test('removes the original and every variant before it answers', async () => {
        const del = await call(c.t.api(`/media/${id}`), { method: 'DELETE', headers: c.auth });
        assert.equal(del.status, 204, del.text);
        assert.deepEqual(await present(c, keys), [], 'no object is left once the delete answered');
      });

      test('purges each URL with the CDN token', async () => {
        await c.outbox.idle();
        const purged = receiver.purged();
        for (const u of expectedUrls(id, keys)) assert.ok(purged.has(u), `${u} purged`);
        const mine = receiver.calls.filter((x) => x.files.some((f) => f.includes(id)));
        for (const x of mine) assert.equal(x.headers.authorization, 'Bearer purge-token');
      });

      test('the outbox row goes and the media is gone', async () => {
        assert.equal(await outboxRow(c, id), undefined);
        const gone = await call(c.t.api(`/media/${id}`), { headers: c.auth });
        assert.equal(gone.status, 404);
      });
    });

    test('a failing CDN: the objects go at once, the purge is retried from the outbox until accepted', async () => {
      receiver.mode = 'fail';
      const { id, keys } = await readyImage(c);
      const del = await call(c.t.api(`/media/${id}`), { method: 'DELETE', headers: c.auth });
      assert.equal(del.status, 204);
      await c.outbox.idle();
      assert.deepEqual(await present(c, keys), []);
      const row = await outboxRow(c, id);
      assert.ok(row?.objects_removed_at, 'objects recorded as removed');
      assert.match(row.last_error ?? '', /503/);
      receiver.mode = 'ok';
      await dueNow(c, id);
      await c.outbox.drain();
      assert.equal(await outboxRow(c, id), undefined, 'done once the CDN accepted');
      const purged = receiver.purged();
      for (const u of expectedUrls(id, keys)) assert.ok(purged.has(u), `${u} purged`);
    });
  });
}

describe('deletion, more cases (local store)', () => {
  let c: Ctx;
  before(async () => {
    c = await serverFor('local');
  });

  test('a CDN that does not answer never holds the delete up', async () => {
    receiver.mode = 'hang';
    const { id, keys } = await readyImage(c);
    const del = await call(c.t.api(`/media/${id}`), { method: 'DELETE', headers: c.auth });
    assert.equal(del.status, 204);
    assert.deepEqual(await present(c, keys), []);
    assert.ok((await outboxRow(c, id))?.objects_removed_at, 'the purge is still outstanding');
    receiver.mode = 'ok';
    receiver.release();
    await c.outbox.idle();
    assert.equal(await outboxRow(c, id), undefined);
  });

  test('a purge the CDN keeps refusing is given up after CDN_PURGE_MAX_ATTEMPTS, the objects gone already', async () => {
    receiver.mode = 'fail';
    const { id, keys } = await readyImage(c);
    assert.equal((await call(c.t.api(`/media/${id}`), { method: 'DELETE', headers: c.auth })).status, 204);
    await c.outbox.idle();
    for (let i = 0; i < 10 && (await outboxRow(c, id)); i++) {
      await dueNow(c, id);
      await c.outbox.drain();
    }
    assert.equal(await outboxRow(c, id), undefined, 'given up, not retried forever');
    assert.deepEqual(await present(c, keys), []);
    receiver.mode = 'ok';
  });

  test('a deletion made outside the API (an operator’s SQL) is queued by the trigger and finished by the drain', async () => {
    receiver.mode = 'ok';
    const { id, keys } = await readyImage(c);
    await c.pool.query(`UPDATE media SET status = 'DELETED', deleted_at = now() WHERE id = $1`, [id]);
    assert.ok(await outboxRow(c, id), 'queued in the same transaction');
    assert.deepEqual(await present(c, keys), keys, 'nothing removed yet');
    await c.outbox.drain();
    assert.deepEqual(await present(c, keys), []);
    assert.equal(await outboxRow(c, id), undefined);
  });
});
