/**
 * The media use cases (src/media: sessions, upload, completion, queries, deletion) without HTTP:
 * an in-memory object store and a fake queue, over a clone of the run's migrated template
 * database (no server, no disk store). Each test takes milliseconds; the real-component suites
 * (test/core, test/storage) prove the same paths end to end.
 */
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import type { Principal } from '../../src/auth/principals.ts';
import { loadConfig } from '../../src/config.ts';
import { createPool, type Pool, type Queryable } from '../../src/db/pool.ts';
import { AppError } from '../../src/errors.ts';
import { createLogger } from '../../src/log.ts';
import { MediaService } from '../../src/media/service.ts';
import { UrlSigner } from '../../src/storage/signing.ts';
import { PublicUrls } from '../../src/http/urls.ts';
import { fixture, sha256 } from '../helpers/files.ts';
import { MemoryObjectStore } from '../helpers/memory-store.ts';
import { createTestDatabase } from '../helpers/test-postgres.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

const JPEG = fixture('cameras/Canon_40D.jpg');
const alice: Principal = { kind: 'user', userId: 'alice' };
const bob: Principal = { kind: 'user', userId: 'bob' };

let pool: Pool;
let fallback: TestServer | undefined;
let store: MemoryObjectStore;
let media: MediaService;
const enqueued: string[] = [];

before(async () => {
  const url = await createTestDatabase();
  // Outside scripts/test.mjs there is no template: borrow a test server's database.
  if (url === undefined) fallback = await startTestServer({ WORKER_ENABLED: 'false' });
  const logger = createLogger('silent');
  pool = fallback ? fallback.server.database.pool : createPool(url!, logger, 4);
  store = new MemoryObjectStore();
  const config = loadConfig({ PUBLIC_URL: 'http://media.test' }, '/nonexistent');
  const queue = {
    enqueueProcessing: async (_tx: Queryable, id: string) => {
      enqueued.push(id);
    },
  };
  media = new MediaService(
    pool,
    store,
    queue,
    new PublicUrls(new UrlSigner('unit-secret'), config.publicUrl),
    config,
    logger,
  );
});
after(async () => {
  if (fallback) await fallback.close();
  else await pool?.end();
});

const declare = (bytes = JPEG.length) => ({
  fileName: 'a.jpg',
  mimeType: 'image/jpeg',
  bytes,
  sha256: sha256(JPEG),
});

async function uploaded(owner: Principal, key?: string) {
  const s = await media.createSession(owner, declare(), key);
  await media.receiveUpload(owner, s.media.id, Readable.from([JPEG]), {
    contentType: 'image/jpeg',
    contentLength: JPEG.length,
  });
  return s.media.id;
}

const code = (c: string) => (err: unknown) => err instanceof AppError && err.code === c;

describe('sessions', () => {
  test('a new session is PENDING with a signed upload URL', async () => {
    const s = await media.createSession(alice, declare());
    assert.equal(s.created, true);
    assert.equal(s.media.status, 'PENDING');
    assert.ok(s.upload && 'url' in s.upload, 'a single-upload instruction');
    assert.match(s.upload.url, new RegExp(`^http://media\\.test/api/v1/media/${s.media.id}/upload\\?`));
  });

  test('a new session stores nothing yet', async () => {
    const s = await media.createSession(alice, declare());
    assert.equal(await store.stat(s.media.storage_key), undefined);
  });

  test('the same Idempotency-Key replays the session', async () => {
    const first = await media.createSession(alice, declare(), 'k-replay');
    const again = await media.createSession(alice, declare(), 'k-replay');
    assert.equal(again.created, false);
    assert.equal(again.media.id, first.media.id);
  });

  test('different bytes under a used Idempotency-Key are a conflict', async () => {
    await media.createSession(alice, declare(), 'k-conflict');
    await assert.rejects(
      media.createSession(alice, declare(JPEG.length + 1), 'k-conflict'),
      code('idempotency_conflict'),
    );
  });
});

describe('upload and completion', () => {
  test('complete verifies the stored bytes, sets UPLOADED and queues one job', async () => {
    const id = await uploaded(alice);
    const done = await media.complete(alice, id);
    assert.equal(done.status, 'UPLOADED');
    assert.equal(done.content_sha256, sha256(JPEG));
    assert.equal(enqueued.filter((e) => e === id).length, 1);
    const again = await media.complete(alice, id);
    assert.equal(again.status, 'UPLOADED');
    assert.equal(enqueued.filter((e) => e === id).length, 1, 'completing twice queues nothing more');
  });

  test('fewer bytes than declared store nothing, and complete says nothing was uploaded', async () => {
    const s = await media.createSession(alice, declare());
    await assert.rejects(
      media.receiveUpload(null, s.media.id, Readable.from([JPEG.subarray(0, 100)]), {
        contentType: 'image/jpeg',
        contentLength: 100,
      }),
      code('upload_incomplete'),
    );
    assert.equal(await store.stat(s.media.storage_key), undefined);
    await assert.rejects(media.complete(alice, s.media.id), code('object_missing'));
    assert.equal((await media.get(alice, s.media.id)).status, 'PENDING');
  });

  test('content that is not the declared type FAILS the media (type_mismatch) and drops the bytes', async () => {
    const html = Buffer.from('<!doctype html><html><body>not a photo</body></html>');
    const s = await media.createSession(alice, {
      fileName: 'x.jpg',
      mimeType: 'image/jpeg',
      bytes: html.length,
    });
    await media.receiveUpload(alice, s.media.id, Readable.from([html]), {
      contentType: 'image/jpeg',
      contentLength: html.length,
    });
    await assert.rejects(media.complete(alice, s.media.id), code('type_mismatch'));
    const failed = await media.get(alice, s.media.id);
    assert.equal(failed.status, 'FAILED');
    assert.equal(failed.error?.code, 'type_mismatch');
    assert.equal(await store.stat(s.media.storage_key), undefined);
    assert.ok(!enqueued.includes(s.media.id));
  });
});

describe('queries', () => {
  test("get and view check access: another user's media is 404", async () => {
    const id = await uploaded(alice);
    await assert.rejects(media.get(bob, id), code('not_found'));
    await assert.rejects(media.view(bob, id), code('not_found'));
  });

  test('loadUnchecked reads any media, without an access check', async () => {
    const id = await uploaded(alice);
    assert.equal((await media.loadUnchecked(id)).id, id);
  });

  test('listing shows only the caller’s own media', async () => {
    const id = await uploaded(alice);
    const mine = await media.list(alice, { userId: 'me' }, { limit: 100 });
    assert.ok(mine.items.some((m) => m.id === id));
    const theirs = await media.list(bob, { userId: 'me' }, { limit: 100 });
    assert.ok(!theirs.items.some((m) => m.id === id));
  });
});

describe('deletion', () => {
  test('delete marks DELETED, removes the object, and every read is 404 afterwards', async () => {
    const id = await uploaded(alice);
    const key = (await media.get(alice, id)).storage_key;
    await assert.rejects(media.delete(bob, id), code('not_found'));
    assert.ok(await store.stat(key), "a stranger's delete removes nothing");
    await media.delete(alice, id);
    assert.equal(await store.stat(key), undefined);
    await assert.rejects(media.get(alice, id), code('not_found'));
    await assert.rejects(media.loadUnchecked(id), code('not_found'));
    await assert.rejects(media.delete(alice, id), code('not_found'));
  });
});
