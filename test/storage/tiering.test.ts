/**
 * Tiered storage on S3 (docs/DEPLOY-TIERING.md), on the run's Ceph gateway:
 * - `mediary storage setup` applies the archive lifecycle rule, keeping the operator's rules
 *   (real Ceph: read back with GetBucketLifecycleConfiguration), and removes only its own;
 * - completion tags originals (the rule's filter), never variants;
 * - an archived original (GLACIER semantics: Ceph has none, so test/helpers/glacier-proxy.ts
 *   answers as AWS does for the keys the test archives) answers 409 `archived` with the restore
 *   request on every download mode, processing fails it with `original_archived` (not retried,
 *   not dead-lettered), retry-processing refuses it, and after POST …/restore has finished the
 *   same media downloads and reprocesses again.
 */
import assert from 'node:assert/strict';
import {
  CreateBucketCommand,
  DeleteObjectTaggingCommand,
  GetBucketLifecycleConfigurationCommand,
  GetObjectTaggingCommand,
  PutBucketLifecycleConfigurationCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import pg from 'pg';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { type Ceph, mediary, startCeph } from '../helpers/ceph.ts';
import { fixture, sha256 } from '../helpers/files.ts';
import { startGlacierProxy, type GlacierProxy } from '../helpers/glacier-proxy.ts';
import { call, startTestServer, type TestServer } from '../helpers/server.ts';
import { tagExistingOriginals } from '../../src/operations/tag-originals.ts';
import { createStore } from '../../src/storage/factory.ts';
import { UrlSigner } from '../../src/storage/signing.ts';
import { PublicUrls } from '../../src/http/urls.ts';

const BUCKET = 'mediary-tiering-test';
const JPEG = fixture('cameras/Canon_40D.jpg');
let ceph: Ceph;
let glacier: GlacierProxy;
let t: TestServer;
let s3: S3Client;
let db: pg.Pool;

before(async () => {
  ceph = await startCeph();
  s3 = new S3Client({ endpoint: ceph.env.S3_ENDPOINT, region: ceph.env.S3_REGION, forcePathStyle: true });
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  glacier = await startGlacierProxy(ceph.env.S3_ENDPOINT!, BUCKET);
  t = await startTestServer(
    ceph.serverEnv(BUCKET, {
      S3_ENDPOINT: glacier.url,
      S3_ARCHIVE_AFTER_DAYS: '30',
      S3_ARCHIVE_STORAGE_CLASS: 'GLACIER',
    }),
  );
  db = new pg.Pool({ connectionString: t.databaseUrl, max: 2 });
});
after(async () => {
  await db?.end();
  await t?.close();
  await glacier?.close();
  s3?.destroy();
  await ceph?.stop();
});

const urls = new PublicUrls(new UrlSigner('x'.repeat(32)), 'http://localhost');

const rules = async () =>
  (await s3.send(new GetBucketLifecycleConfigurationCommand({ Bucket: BUCKET }))).Rules ?? [];

describe('mediary storage setup: the archive lifecycle rule', () => {
  test('adds Mediary’s rule beside the operator’s, replaces only its own, removes only its own', async () => {
    const operatorRule = {
      ID: 'operator-expire-tmp',
      Status: 'Enabled' as const,
      Filter: { Prefix: 'tmp/' },
      Expiration: { Days: 3 },
    };
    // An operator rule, and a Mediary rule from an earlier setup with other settings.
    await s3.send(
      new PutBucketLifecycleConfigurationCommand({
        Bucket: BUCKET,
        LifecycleConfiguration: {
          Rules: [
            operatorRule,
            {
              ID: 'mediary-archive-originals',
              Status: 'Enabled',
              Filter: { Tag: { Key: 'mediary-object', Value: 'original' } },
              Transitions: [{ Days: 365, StorageClass: 'DEEP_ARCHIVE' }],
            },
          ],
        },
      }),
    );
    const res = await mediary(['storage', 'setup'], t.env);
    assert.equal(res.code, 0, res.stderr);
    assert.match(
      res.stdout,
      /lifecycle: originals \(tag mediary-object=original\) move to GLACIER 30 days after upload \(rule mediary-archive-originals, replaced\); kept 1 other rule\(s\): operator-expire-tmp/,
    );
    const applied = await rules();
    assert.equal(applied.length, 2, JSON.stringify(applied));
    assert.deepEqual(
      applied.find((r) => r.ID === 'operator-expire-tmp'),
      operatorRule,
      'the operator’s rule is untouched',
    );
    const ours = applied.find((r) => r.ID === 'mediary-archive-originals');
    assert.deepEqual(ours?.Filter, { Tag: { Key: 'mediary-object', Value: 'original' } });
    assert.deepEqual(ours?.Transitions, [{ Days: 30, StorageClass: 'GLACIER' }]);

    // Archiving switched off: setup takes its rule away and leaves the operator's.
    // (In process: one `mediary` spawn per file is enough, the command is the same code.)
    const off = createStore({ ...t.config, s3: { ...t.config.s3!, archive: undefined } }, 's3', urls);
    const lines = await off.setup({ corsOrigins: [] });
    assert.ok(
      lines.some((l) => /archive rule mediary-archive-originals removed/.test(l)),
      lines.join('\n'),
    );
    assert.deepEqual(await rules(), [operatorRule]);
  });
});

/** Session → presigned PUT (with every header the session names) → complete. */
async function uploadJpeg(auth: Record<string, string>): Promise<string> {
  const s = await call(t.api('/media'), {
    method: 'POST',
    headers: auth,
    json: { fileName: 'photo.jpg', mimeType: 'image/jpeg', bytes: JPEG.length, sha256: sha256(JPEG) },
  });
  assert.equal(s.status, 201, s.text);
  const put = await fetch(s.body.upload.url, {
    method: 'PUT',
    headers: s.body.upload.headers,
    body: new Uint8Array(JPEG),
  });
  assert.equal(put.status, 200, await put.text());
  const done = await call(t.api(`/media/${s.body.mediaId}/complete`), { method: 'POST', headers: auth });
  assert.equal(done.status, 200, done.text);
  return s.body.mediaId as string;
}

async function waitFor(auth: Record<string, string>, id: string, states: string[]) {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const m = await call(t.api(`/media/${id}`), { headers: auth });
    assert.equal(m.status, 200, m.text);
    if (states.includes(m.body.status)) return m.body;
    if (Date.now() > deadline) assert.fail(`media ${id} is still ${m.body.status}`);
    await sleep(25);
  }
}

const keyOf = async (id: string) =>
  (await db.query<{ storage_key: string }>('SELECT storage_key FROM media WHERE id = $1', [id])).rows[0]!
    .storage_key;

/** The configured rule archives after 30 days: the media is made that old. */
const age = (id: string) =>
  db.query(`UPDATE media SET created_at = now() - interval '31 days' WHERE id = $1`, [id]);

const assertArchived = (res: { status: number; body: any; text: string }, id: string, state = 'archived') => {
  assert.equal(res.status, 409, res.text);
  assert.equal(res.body.error.code, 'archived');
  assert.equal(res.body.error.details.state, state);
  assert.equal(res.body.error.details.mediaId, id);
  assert.deepEqual(res.body.error.details.restore, { method: 'POST', href: `/api/v1/media/${id}/restore` });
};

describe('archived originals', () => {
  describe('tags', () => {
    let id: string;
    before(async () => {
      const dev = await t.device();
      id = await uploadJpeg(dev.auth);
      await waitFor(dev.auth, id, ['READY']);
    });

    test('originals are tagged for the rule at completion', async () => {
      const tags = await s3.send(new GetObjectTaggingCommand({ Bucket: BUCKET, Key: await keyOf(id) }));
      assert.deepEqual(tags.TagSet, [{ Key: 'mediary-object', Value: 'original' }]);
    });

    test('variants are not tagged', async () => {
      const variant = await db.query<{ key: string }>(
        'SELECT key FROM media_variants WHERE media_id = $1 LIMIT 1',
        [id],
      );
      const vtags = await s3.send(new GetObjectTaggingCommand({ Bucket: BUCKET, Key: variant.rows[0]!.key }));
      assert.deepEqual(vtags.TagSet, []);
    });

    test('setup --tag-existing tags an original from before archiving was switched on', async () => {
      // An original from before archiving was switched on has no tag: setup --tag-existing's pass adds it.
      await s3.send(new DeleteObjectTaggingCommand({ Bucket: BUCKET, Key: await keyOf(id) }));
      const store = createStore(t.config, 's3', urls);
      assert.ok((await tagExistingOriginals(db, store)) >= 1);
      const again = await s3.send(new GetObjectTaggingCommand({ Bucket: BUCKET, Key: await keyOf(id) }));
      assert.deepEqual(again.TagSet, [{ Key: 'mediary-object', Value: 'original' }]);
    });
  });

  describe('an archived original', () => {
    let dev: { auth: Record<string, string> };
    let id: string;
    let key: string;
    before(async () => {
      dev = await t.device();
      id = await uploadJpeg(dev.auth);
      await waitFor(dev.auth, id, ['READY']);
      key = await keyOf(id);
    });

    test('of young media: the redirect is handed out without asking the store', async () => {
      // Young media never pay for the check (nothing can be archived before 30 days): the redirect
      // is handed out without asking the store, and the store itself refuses the bytes.
      glacier.archive(key);
      const young = await call(t.api(`/media/${id}/download`), { headers: dev.auth });
      assert.equal(young.status, 302);
      assert.equal((await fetch(young.headers.get('location')!)).status, 403, 'GLACIER: InvalidObjectState');
    });

    test('downloads answer 409 archived with the restore request', async () => {
      await age(id);
      for (const mode of ['redirect', 'url', 'proxy']) {
        const res = await call(t.api(`/media/${id}/download?mode=${mode}`), { headers: dev.auth });
        assertArchived(res, id);
        assert.equal(res.body.error.details.storageClass, mode === 'proxy' ? null : 'GLACIER', mode);
      }
    });

    test('the record and its variants are still served', async () => {
      // The record is still served (variants are never archived by Mediary's rule).
      const rec = await call(t.api(`/media/${id}`), { headers: dev.auth });
      assert.equal(rec.status, 200);
      const name = rec.body.variants[0]?.name as string;
      const variant = await call(t.api(`/media/${id}/variants/${name}?mode=proxy`), { headers: dev.auth });
      assert.equal(variant.status, 200);
    });

    test('the restore status says archived', async () => {
      const status = await call(t.api(`/media/${id}/restore`), { headers: dev.auth });
      assert.equal(status.status, 200, status.text);
      assert.deepEqual(status.body, {
        mediaId: id,
        state: 'archived',
        storageClass: 'GLACIER',
        restoredUntil: null,
      });
    });

    test('others get 404 for a restore', async () => {
      // Others: 404 as for everything of someone else's.
      const other = await t.device('other');
      assert.equal(
        (await call(t.api(`/media/${id}/restore`), { method: 'POST', headers: other.auth })).status,
        404,
      );
    });

    test('the restore runs, asked of the store once', async () => {
      const started = await call(t.api(`/media/${id}/restore`), { method: 'POST', headers: dev.auth });
      assert.equal(started.status, 202, started.text);
      assert.equal(started.body.state, 'restoring');
      const again = await call(t.api(`/media/${id}/restore`), { method: 'POST', headers: dev.auth });
      assert.equal(again.status, 202, 'asking again while it runs is fine');
      assert.deepEqual(glacier.restoreRequests, [key], 'and asks the store once');
      assertArchived(await call(t.api(`/media/${id}/download`), { headers: dev.auth }), id, 'restoring');
    });

    test('once restored it downloads again, asking nothing more of the store', async () => {
      const until = new Date(Date.now() + 7 * 86_400_000);
      glacier.finishRestore(key, until);
      const restored = await call(t.api(`/media/${id}/restore`), { headers: dev.auth });
      assert.equal(restored.body.state, 'restored');
      assert.equal(restored.body.restoredUntil, new Date(until.toUTCString()).toISOString());
      // Nothing more is asked of the store once restored.
      const noop = await call(t.api(`/media/${id}/restore`), { method: 'POST', headers: dev.auth });
      assert.equal(noop.status, 200);
      assert.equal(glacier.restoreRequests.length, 1);
      const dl = await call(t.api(`/media/${id}/download`), { headers: dev.auth });
      assert.equal(dl.status, 302, dl.text);
      const bytes = Buffer.from(await (await fetch(dl.headers.get('location')!)).arrayBuffer());
      assert.equal(sha256(bytes), sha256(JPEG));
    });
  });

  test('processing an archived original: FAILED original_archived at once, retry refused until restored, then READY', async () => {
    const dev = await t.device();
    const id = await uploadJpeg(dev.auth);
    await waitFor(dev.auth, id, ['READY']);
    const key = await keyOf(id);
    // A failed media whose original was archived since: the retry is refused up front.
    await db.query(
      `UPDATE media SET status = 'FAILED', error = '{"code":"decode_failed","message":"x"}' WHERE id = $1`,
      [id],
    );
    glacier.archive(key);
    const refused = await call(t.api(`/media/${id}/retry-processing`), { method: 'POST', headers: dev.auth });
    assertArchived(refused, id);
    assert.equal((await waitFor(dev.auth, id, ['FAILED'])).error.code, 'decode_failed', 'unchanged');

    // Archived between the API's check and the worker's read: the job ends the media with a
    // code that says what to do, instead of retrying for hours or dead-lettering it.
    glacier.finishRestore(key, new Date(Date.now() + 86_400_000));
    const race = await uploadJpeg(dev.auth);
    const raceKey = await keyOf(race);
    await waitFor(dev.auth, race, ['READY']);
    await db.query(
      `UPDATE media SET status = 'FAILED', error = '{"code":"decode_failed","message":"x"}' WHERE id = $1`,
      [race],
    );
    glacier.archiveOnNextRead(raceKey);
    const queued = await call(t.api(`/media/${race}/retry-processing`), {
      method: 'POST',
      headers: dev.auth,
    });
    assert.equal(queued.status, 202, queued.text);
    const failed = await waitFor(dev.auth, race, ['FAILED', 'READY']);
    assert.equal(failed.status, 'FAILED');
    assert.equal(failed.error.code, 'original_archived');
    assert.match(failed.error.message, new RegExp(`POST /api/v1/media/${race}/restore`));

    // Restored: retry-processing runs it to READY.
    glacier.finishRestore(raceKey, new Date(Date.now() + 86_400_000));
    const retried = await call(t.api(`/media/${race}/retry-processing`), {
      method: 'POST',
      headers: dev.auth,
    });
    assert.equal(retried.status, 202, retried.text);
    assert.equal((await waitFor(dev.auth, race, ['READY', 'FAILED'])).status, 'READY');
  });
});
