/**
 * The README's "Moving from local disk to S3", step by step, against a real Ceph RGW whose bucket
 * does not exist yet. Regressions: `storage setup` while STORAGE_BACKEND=local created no bucket
 * and said nothing; a dry run against the missing bucket exited 0 ("would copy …"), and the real
 * run then failed every media with "UnknownError". And a session still PENDING during the
 * migration, completed after the switch, had its bytes on S3 while its row said "local".
 */
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { startServer, type Server } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { createLogger } from '../../src/log.ts';
import type { S3ObjectStore } from '../../src/storage/s3.ts';
import { bucketStore, type Ceph, mediary, startCeph } from '../helpers/ceph.ts';
import { fixture, sha256 } from '../helpers/files.ts';
import { asBody } from '../helpers/multipart-suite.ts';
import { call, startTestServer, type TestServer } from '../helpers/server.ts';

const BUCKET = 'mediary-readme-migration';
let ceph: Ceph;
let t: TestServer;
let switched: Server | undefined;
let s3: S3ObjectStore;

before(async () => {
  ceph = await startCeph();
  // The operator's environment: the server on local disk, the S3_* settings of the bucket to come.
  t = await startTestServer({ ...ceph.serverEnv(BUCKET), STORAGE_BACKEND: 'local', WORKER_ENABLED: 'false' });
  s3 = bucketStore(ceph, BUCKET, 16 * 1024 * 1024);
});
after(async () => {
  s3?.destroy();
  await switched?.close();
  await t?.server.close().catch(() => undefined);
  await rm(t?.dataDir ?? '/nonexistent', { recursive: true, force: true });
  await ceph?.stop();
});

const jpeg = fixture('cameras/Canon_40D.jpg');
const other = fixture('cameras/Nikon_D70.jpg');

async function session(auth: Record<string, string>, bytes: Buffer, mimeType: string, messageId: string) {
  const s = await call(t.api('/media'), {
    method: 'POST',
    headers: auth,
    json: { fileName: messageId, mimeType, bytes: bytes.length, sha256: sha256(bytes), messageId },
  });
  assert.equal(s.status, 201, s.text);
  return s.body as { mediaId: string; upload: { url: string; headers: Record<string, string> } };
}
const put = (s: { upload: { url: string; headers: Record<string, string> } }, bytes: Buffer) =>
  fetch(s.upload.url, { method: 'PUT', headers: s.upload.headers, body: asBody(bytes) });

describe('README: setup --to s3, dry run, migrate, switch', () => {
  type Session = Awaited<ReturnType<typeof session>>;
  let dev: Awaited<ReturnType<TestServer['device']>>;
  let done: Session;
  let sent: Session;
  let later: Session;
  let env: Record<string, string>;

  test('setup: a completed media, a session with its bytes and one without, then the server stops', async () => {
    dev = await t.device();
    // A completed media, one session whose bytes arrived but which is not completed yet, and one
    // whose client has not sent its bytes yet.
    done = await session(dev.auth, jpeg, 'image/jpeg', 'done-1');
    assert.equal((await put(done, jpeg)).status, 200);
    assert.equal(
      (await call(t.api(`/media/${done.mediaId}/complete`), { method: 'POST', headers: dev.auth })).status,
      200,
    );
    sent = await session(dev.auth, other, 'image/jpeg', 'sent-not-completed');
    assert.equal((await put(sent, other)).status, 200);
    later = await session(dev.auth, jpeg, 'image/jpeg', 'bytes-after-switch');
    // README: stop the server, then migrate.
    await t.server.close();
    env = { ...t.env };
  });

  test('storage setup on the local backend prepares local disk and names the command for the bucket', async () => {
    const local = await mediary(['storage', 'setup'], env);
    assert.equal(local.code, 0, local.stderr);
    assert.match(local.stdout, /setting up the local store/);
    assert.match(local.stdout, /mediary storage setup --to s3/, 'names the command for the bucket');
  });

  test('a dry run against a bucket that does not exist fails clearly and copies nothing', async () => {
    const missing = await mediary(['storage', 'migrate', '--from', 'local', '--to', 's3', '--dry-run'], env);
    assert.notEqual(missing.code, 0, missing.stdout);
    assert.match(missing.stderr, /s3 store .* is not writable: NoSuchBucket/, missing.stderr);
    assert.match(missing.stderr, /mediary storage setup --to s3/);
    assert.doesNotMatch(missing.stdout, /would copy/);
  });

  test('storage setup --to s3 creates the bucket and finds it writable', async () => {
    const setup = await mediary(['storage', 'setup', '--to', 's3'], env);
    assert.equal(setup.code, 0, setup.stderr);
    assert.match(setup.stdout, new RegExp(`bucket ${BUCKET} created`));
    assert.match(setup.stdout, /writable/);
  });

  test('a dry run against the bucket copies nothing', async () => {
    const dry = await mediary(['storage', 'migrate', '--from', 'local', '--to', 's3', '--dry-run'], env);
    assert.equal(dry.code, 0, dry.stdout + dry.stderr);
    assert.match(dry.stdout, /would copy/);
    for await (const page of s3.listObjects()) assert.deepEqual(page, [], 'a dry run copies nothing');
  });

  test('migrate switches the completed media and copies the originals of pending sessions that arrived', async () => {
    const real = await mediary(['storage', 'migrate', '--from', 'local', '--to', 's3'], env);
    assert.equal(real.code, 0, real.stdout + real.stderr);
    assert.match(real.stdout, /1 of 1 media switched/);
    assert.match(real.stdout, /2 pending uploads not switched \(1 of their originals copied\)/);
    // README: switch STORAGE_BACKEND and serve.
    const config = loadConfig({ ...env, STORAGE_BACKEND: 's3' });
    switched = await startServer(config, createLogger('silent', 2));
  });

  test('after the switch, a session whose bytes arrived before it completes on S3', async () => {
    // Its original was copied.
    const completed = await call(t.api(`/media/${sent.mediaId}/complete`), {
      method: 'POST',
      headers: dev.auth,
    });
    assert.equal(completed.status, 200, completed.text);
    assert.equal(completed.body.storageBackend, 's3');
  });

  test('after the switch, bytes sent to an upload URL given before it land on S3 and the record says so', async () => {
    assert.equal((await put(later, jpeg)).status, 200);
    const late = await call(t.api(`/media/${later.mediaId}/complete`), { method: 'POST', headers: dev.auth });
    assert.equal(late.status, 200, late.text);
    assert.equal(late.body.storageBackend, 's3', 'the record names the store that holds the bytes');
  });

  test('every record points at S3, which holds the bytes and serves them', async () => {
    const now = Object.fromEntries(
      (
        await switched!.database.pool.query<{ id: string; storage_backend: string; storage_uri: string }>(
          'SELECT id, storage_backend, storage_uri FROM media',
        )
      ).rows.map((r) => [r.id, r]),
    );
    for (const s of [done, sent, later]) {
      const row = now[s.mediaId]!;
      assert.equal(row.storage_backend, 's3', s.mediaId);
      assert.match(row.storage_uri, new RegExp(`^s3://${BUCKET}/`));
      const key = row.storage_uri.slice(`s3://${BUCKET}/`.length);
      assert.ok(await s3.stat(key), `bytes on S3 for ${s.mediaId}`);
    }
    const back = await fetch(t.api(`/media/${sent.mediaId}/download?mode=proxy`), { headers: dev.auth });
    assert.equal(sha256(Buffer.from(await back.arrayBuffer())), sha256(other));
  });
});
