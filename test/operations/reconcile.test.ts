/**
 * `mediary storage reconcile` against drift made on purpose, on the local store and on Ceph: an
 * object no row references (old, and one within the grace period), objects only a DELETED media
 * references (its deletion never reached the store), a READY media whose original vanished, and a
 * READY media one of whose variants vanished. A dry run reports them and changes nothing; `--apply`
 * removes the orphans and leftovers and marks the media without its original FAILED
 * (`storage_missing`); a second run finds nothing more. The CLI prints the table.
 */
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { reconcile, type ReconcileReport } from '../../src/operations/reconcile.ts';
import { createStore } from '../../src/storage/factory.ts';
import { UrlSigner } from '../../src/storage/signing.ts';
import { PublicUrls } from '../../src/http/urls.ts';
import type { ObjectStore } from '../../src/storage/types.ts';
import { type Ceph, mediary, startCeph } from '../helpers/ceph.ts';
import { fixture } from '../helpers/files.ts';
import { call, startTestServer, type TestServer } from '../helpers/server.ts';
import { waitFor } from '../processing/helpers.ts';
import { uploadImage } from './helpers.ts';

let ceph: Ceph;
const servers: TestServer[] = [];
before(async () => {
  ceph = await startCeph();
});
after(async () => {
  for (const t of servers) await t.close();
  await ceph?.stop();
});

async function put(store: ObjectStore, key: string, bytes: Buffer) {
  await store.put(key, Readable.from([bytes]), {
    contentType: 'application/octet-stream',
    bytes: bytes.length,
  });
}

const kinds = (r: ReconcileReport) => r.findings.map((f) => `${f.kind} ${f.key}`).sort();

for (const backend of ['local', 's3'] as const) {
  describe(`storage reconcile on the ${backend} store`, () => {
    let t: TestServer;
    let store: ObjectStore;
    before(async () => {
      t = await startTestServer({
        ...(backend === 's3' ? ceph.serverEnv('mediary-reconcile') : {}),
        SWEEP_INTERVAL_SECONDS: '0',
        DELETION_DRAIN_INTERVAL_SECONDS: '0',
      });
      servers.push(t);
      store = createStore(
        t.config,
        t.config.storage.backend,
        new PublicUrls(new UrlSigner('unused'), t.config.publicUrl),
      );
      if (backend === 's3') await store.setup({ corsOrigins: [] });
    });

    test('reports drift in a dry run, fixes it with apply, and then finds nothing', async () => {
      const pool = t.server.database.pool;
      const dev = await t.device('cam');
      const ids: string[] = [];
      for (const f of [
        'cameras/Canon_40D.jpg',
        'cameras/Nikon_D70.jpg',
        'gps/DSCN0010.jpg',
        'cameras/Canon_40D.jpg',
      ]) {
        const id = await uploadImage(t, dev.auth, fixture(f), { messageId: `m-${ids.length}` });
        assert.equal((await waitFor(t, dev.auth, id, ['READY', 'FAILED'], 120_000)).status, 'READY');
        ids.push(id);
      }
      const [intact, deleted, noOriginal, noVariant] = ids as [string, string, string, string];
      const keysOf = async (id: string) => {
        const { rows } = await pool.query<{ k: string }>(
          `SELECT storage_key AS k FROM media WHERE id = $1 UNION SELECT key FROM media_variants WHERE media_id = $1`,
          [id],
        );
        return rows.map((r) => r.k).sort();
      };
      const original = async (id: string) =>
        (await pool.query<{ k: string }>('SELECT storage_key AS k FROM media WHERE id = $1', [id])).rows[0]!
          .k;
      const variant = async (id: string) =>
        (
          await pool.query<{ k: string }>('SELECT key AS k FROM media_variants WHERE media_id = $1 LIMIT 1', [
            id,
          ])
        ).rows[0]!.k;

      // Drift: a deletion whose objects were never removed (its outbox row lost too) …
      const deletedKeys = await keysOf(deleted);
      await pool.query(`UPDATE media SET status = 'DELETED', deleted_at = now() WHERE id = $1`, [deleted]);
      await pool.query('DELETE FROM media_deletions WHERE media_id = $1', [deleted]);
      // … objects gone behind the database's back …
      const lostOriginal = await original(noOriginal);
      const lostVariant = await variant(noVariant);
      await store.delete(lostOriginal);
      await store.delete(lostVariant);
      // … and objects nobody references.
      await put(store, 'image/stray/old-orphan.jpg', Buffer.from('orphan'));
      await put(store, 'image/stray/recent-orphan.jpg', Buffer.from('recent'));
      // Rather than waiting out a grace period, the runs are told that "now" is a minute later.
      const later = new Date(Date.now() + 60_000);

      const dry = await reconcile(pool, store, { apply: false, graceSeconds: 30, now: later });
      const expected = [
        'orphan image/stray/old-orphan.jpg',
        'orphan image/stray/recent-orphan.jpg',
        ...deletedKeys.map((k) => `deleted-leftover ${k}`),
        `missing-original ${lostOriginal}`,
        `missing-derived ${lostVariant}`,
      ].sort();
      assert.deepEqual(kinds(dry), expected);
      for (const f of dry.findings)
        assert.match(f.action, f.kind === 'missing-derived' ? /^reported$/ : /^would /);
      for (const k of deletedKeys) assert.ok(await store.stat(k), `dry run kept ${k}`);
      assert.ok(await store.stat('image/stray/old-orphan.jpg'));
      const st = await call(t.api(`/media/${noOriginal}/status`), { headers: dev.auth });
      assert.equal(st.body.status, 'READY', 'dry run changed no record');

      // A grace period that covers the strays keeps them out of the orphans (uploads in flight).
      const graceful = await reconcile(pool, store, { apply: false, graceSeconds: 3600, now: later });
      assert.equal(graceful.counts.orphan, 0);
      assert.equal(graceful.counts['orphan-young'], 2);

      // The CLI: a table with a header and the summary; dry run by default.
      const cli = await mediary(['storage', 'reconcile', '--grace-seconds', '0'], t.env);
      assert.equal(cli.code, 0, cli.stderr);
      assert.match(cli.stdout, /^KIND\s+KEY\s+MEDIA\s+STATUS\s+BYTES\s+AGE\s+ACTION/m);
      assert.match(cli.stdout, /missing-original\s+\S+\s+[0-9a-f-]{36}\s+READY/);
      assert.match(cli.stdout, /dry run \(nothing changed; --apply to fix\)/);

      const applied = await reconcile(pool, store, { apply: true, graceSeconds: 30, now: later });
      assert.deepEqual(kinds(applied), expected);
      assert.equal(applied.errors, 0);
      for (const k of [...deletedKeys, 'image/stray/old-orphan.jpg', 'image/stray/recent-orphan.jpg'])
        assert.equal(await store.stat(k), undefined, `${k} removed`);
      const failed = await call(t.api(`/media/${noOriginal}/status`), { headers: dev.auth });
      assert.equal(failed.body.status, 'FAILED');
      assert.equal(failed.body.error.code, 'storage_missing');
      for (const k of await keysOf(intact)) assert.ok(await store.stat(k), `${k} of the intact media kept`);

      const again = await reconcile(pool, store, { apply: true, graceSeconds: 30, now: later });
      assert.deepEqual(kinds(again), [`missing-derived ${lostVariant}`], 'only what apply cannot fix stays');
    });
  });
}
