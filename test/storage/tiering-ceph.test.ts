/**
 * A real lifecycle transition on Ceph 16, the gateway the suite runs: a Ceph of this file's own
 * (the run's shared one has no second storage class, and adding one needs a gateway restart) with
 * a `GLACIER` storage class in the default placement (scripts/ceph-rgw.sh RGW_STORAGE_CLASSES).
 * `radosgw-admin lc process --rgw-lc-debug-interval 1` runs the bucket's lifecycle at once, with
 * days counted as seconds. Proves: Mediary's rule (tag filter) moves originals and leaves
 * variants; an object in a Ceph class stays readable, and Mediary knows it (it asks the store
 * with a one-byte read instead of trusting the class's name): downloads work, restore is a no-op.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { HeadObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import pg from 'pg';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { launchCeph, stopCeph } from '../helpers/ceph.ts';
import { fixture, sha256 } from '../helpers/files.ts';
import { call, startTestServer, tempDir, type TestServer } from '../helpers/server.ts';
import { createStore } from '../../src/storage/factory.ts';
import { UrlSigner } from '../../src/storage/signing.ts';
import { PublicUrls } from '../../src/http/urls.ts';

const run = promisify(execFile);
const BUCKET = 'mediary-tiering-ceph';
const JPEG = fixture('cameras/Canon_40D.jpg');
let dir: string;
let env: Record<string, string>;
let t: TestServer;
let s3: S3Client;
let db: pg.Pool;

before(async () => {
  dir = await tempDir('mediary-tiering-ceph-');
  env = await launchCeph(dir, { RGW_STORAGE_CLASSES: 'GLACIER' });
  process.env.AWS_ACCESS_KEY_ID = env.S3_ACCESS_KEY_ID;
  process.env.AWS_SECRET_ACCESS_KEY = env.S3_SECRET_ACCESS_KEY;
  s3 = new S3Client({ endpoint: env.S3_ENDPOINT, region: env.S3_REGION, forcePathStyle: true });
  t = await startTestServer({
    STORAGE_BACKEND: 's3',
    S3_BUCKET: BUCKET,
    S3_ENDPOINT: env.S3_ENDPOINT!,
    S3_REGION: env.S3_REGION!,
    S3_FORCE_PATH_STYLE: 'true',
    S3_ARCHIVE_AFTER_DAYS: '1',
    S3_ARCHIVE_STORAGE_CLASS: 'GLACIER',
  });
  db = new pg.Pool({ connectionString: t.databaseUrl, max: 2 });
});
after(async () => {
  await db?.end();
  await t?.close();
  s3?.destroy();
  if (dir) {
    await stopCeph(dir).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
});

const storageClass = async (key: string) =>
  (await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }))).StorageClass ?? 'STANDARD';

describe('Ceph moves originals to GLACIER by Mediary’s rule, and Mediary serves them', () => {
  let dev: Awaited<ReturnType<TestServer['device']>>;
  let id: string;
  let key: string;

  test('storage setup installs the rule that moves originals to GLACIER', async () => {
    const store = createStore(
      t.config,
      's3',
      new PublicUrls(new UrlSigner('x'.repeat(32)), t.config.publicUrl),
    );
    const lines = await store.setup({ corsOrigins: [] });
    assert.ok(
      lines.some((l) => /move to GLACIER 1 days after upload/.test(l)),
      lines.join('\n'),
    );
  });

  test('setup: a photo is uploaded and processed', async () => {
    dev = await t.device();
    const s = await call(t.api('/media'), {
      method: 'POST',
      headers: dev.auth,
      json: { fileName: 'photo.jpg', mimeType: 'image/jpeg', bytes: JPEG.length, sha256: sha256(JPEG) },
    });
    assert.equal(s.status, 201, s.text);
    const put = await fetch(s.body.upload.url, {
      method: 'PUT',
      headers: s.body.upload.headers,
      body: new Uint8Array(JPEG),
    });
    assert.equal(put.status, 200);
    id = s.body.mediaId as string;
    assert.equal(
      (await call(t.api(`/media/${id}/complete`), { method: 'POST', headers: dev.auth })).status,
      200,
    );
    for (const deadline = Date.now() + 60_000; ; await sleep(25)) {
      const m = await call(t.api(`/media/${id}`), { headers: dev.auth });
      if (m.body.status === 'READY') break;
      assert.ok(Date.now() < deadline && m.body.status !== 'FAILED', m.text);
    }
    key = (await db.query<{ storage_key: string }>('SELECT storage_key FROM media WHERE id = $1', [id]))
      .rows[0]!.storage_key;
  });

  test('the lifecycle moves the original to GLACIER and leaves the variants', async () => {
    // Days are seconds here: rerun the lifecycle until the original (older than 1 s) has moved.
    const conf = path.join(dir, 'ceph.conf');
    for (let i = 0; (await storageClass(key)) !== 'GLACIER'; i++) {
      assert.ok(i < 10, 'the lifecycle never moved the original');
      await run('radosgw-admin', [
        '-c',
        conf,
        'lc',
        'process',
        '--bucket',
        BUCKET,
        '--rgw-lc-debug-interval',
        '1',
      ]);
    }
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET }));
    const classes = Object.fromEntries((listed.Contents ?? []).map((o) => [o.Key, o.StorageClass]));
    assert.equal(classes[key], 'GLACIER');
    const others = Object.entries(classes).filter(([k]) => k !== key);
    assert.ok(others.length > 0, 'variants were stored');
    for (const [k, c] of others) assert.equal(c, 'STANDARD', `${k} (not an original) stays`);
  });

  test('an original in GLACIER stays readable: signed and proxied downloads serve it', async () => {
    // Old enough for the rule: downloads ask the store, which serves the bytes.
    await db.query(`UPDATE media SET created_at = now() - interval '2 days' WHERE id = $1`, [id]);
    const dl = await call(t.api(`/media/${id}/download`), { headers: dev.auth });
    assert.equal(dl.status, 302, dl.text);
    assert.equal(
      sha256(Buffer.from(await (await fetch(dl.headers.get('location')!)).arrayBuffer())),
      sha256(JPEG),
    );
    const proxied = await fetch(t.api(`/media/${id}/download?mode=proxy`), { headers: dev.auth });
    assert.equal(proxied.status, 200);
    assert.equal(sha256(Buffer.from(await proxied.arrayBuffer())), sha256(JPEG));
  });

  test('restore reports the original readable and a restore request is a no-op', async () => {
    const status = await call(t.api(`/media/${id}/restore`), { headers: dev.auth });
    assert.deepEqual(status.body, {
      mediaId: id,
      state: 'readable',
      storageClass: 'GLACIER',
      restoredUntil: null,
    });
    // Nothing to restore (Ceph 16 would answer RestoreObject with 501 NotImplemented).
    const restore = await call(t.api(`/media/${id}/restore`), { method: 'POST', headers: dev.auth });
    assert.equal(restore.status, 200, restore.text);
    assert.equal(restore.body.state, 'readable');
  });
});
