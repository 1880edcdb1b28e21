/**
 * tus on S3 (a real Ceph RGW): PATCH bodies become multipart parts of MULTIPART_PART_SIZE_BYTES
 * (5 MiB here), at most one part staged on local disk; an upload of one part is a single put.
 */
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { type Ceph, mediary, startCeph } from '../helpers/ceph.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { TUS_ENV, tusProtocolSuite } from './protocol-suite.ts';

let ceph: Ceph;
let t: TestServer;
before(async () => {
  ceph = await startCeph();
  t = await startTestServer({ ...ceph.serverEnv('mediary-tus-s3'), ...TUS_ENV });
  const setup = await mediary(['storage', 'setup'], t.env);
  assert.equal(setup.code, 0, setup.stdout + setup.stderr);
});
after(async () => {
  await t?.close();
  await ceph?.stop();
});

tusProtocolSuite('S3 (Ceph)', () => t);

test('S3: no staged part outlives its upload, and no multipart upload is left open in the bucket', async () => {
  const rows = await t.server.database.pool.query<{ media_id: string }>('SELECT media_id FROM tus_uploads');
  const open = new Set(rows.rows.map((r) => r.media_id));
  const left = await readdir(t.config.tus.stagingDir).catch(() => [] as string[]);
  assert.deepEqual(
    left.filter((f) => !open.has(f.split('.')[0]!)),
    [],
  );
  const store = (await import('../../src/storage/factory.ts')).createStore(
    t.config,
    's3',
    new (await import('../../src/http/urls.ts')).PublicUrls(
      new (await import('../../src/storage/signing.ts')).UrlSigner('unused'),
      t.config.publicUrl,
    ),
  );
  const uploads = [];
  for await (const u of store.listMultipartUploads()) uploads.push(u);
  const openKeys = new Set(
    (
      await t.server.database.pool.query<{ storage_key: string }>(
        'SELECT m.storage_key FROM tus_uploads t JOIN media m ON m.id = t.media_id',
      )
    ).rows.map((r) => r.storage_key),
  );
  assert.deepEqual(
    uploads.filter((u) => !openKeys.has(u.key)),
    [],
  );
});
