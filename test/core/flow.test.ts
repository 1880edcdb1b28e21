import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { call, startTestServer, type TestServer } from '../helpers/server.ts';
import { fixture, sha256 } from '../helpers/files.ts';

const JPEG = fixture('cameras/Canon_40D.jpg');
const JPEG_SHA = sha256(JPEG);

let t: TestServer;
before(async () => {
  // The upload core alone: statuses stay where completion leaves them (processing has its own suites).
  t = await startTestServer({ WORKER_ENABLED: 'false' });
});
after(async () => {
  await t?.close();
});

type Auth = Record<string, string>;

async function createSession(
  auth: Auth,
  body: Record<string, unknown>,
  headers: Record<string, string> = {},
) {
  return call(t.api('/media'), { method: 'POST', headers: { ...auth, ...headers }, json: body });
}

function jpegSession(extra: Record<string, unknown> = {}) {
  return {
    fileName: 'Canon 40D.jpg',
    mimeType: 'image/jpeg',
    bytes: JPEG.length,
    sha256: JPEG_SHA,
    ...extra,
  };
}

async function put(
  url: string,
  body: Buffer,
  headers: Record<string, string> = { 'content-type': 'image/jpeg' },
) {
  return call(url, { method: 'PUT', headers, body });
}

function objectPath(key: string) {
  return path.join(t.config.storage.dir, key);
}

describe('the whole upload flow for a device', () => {
  test('session → PUT → complete → metadata, status, list, redirect and proxied download → delete', async () => {
    const dev = await t.device('cam-1');
    const s = await createSession(
      dev.auth,
      jpegSession({
        cameraId: 'front',
        messageId: 'm-1',
        capturedAt: '2026-11-20T10:00:00Z',
        reason: 'motion',
      }),
    );
    assert.equal(s.status, 201, s.text);
    assert.equal(s.body.status, 'PENDING');
    assert.equal(s.body.upload.method, 'PUT');
    assert.equal(s.body.upload.headers['Content-Type'], 'image/jpeg');
    assert.ok(Date.parse(s.body.upload.expiresAt) > Date.now());
    const id: string = s.body.mediaId;

    const up = await put(s.body.upload.url, JPEG);
    assert.equal(up.status, 200, up.text);
    assert.equal(up.body.sha256, JPEG_SHA);
    const key = `${dev.id}/front/2026-11-20/m-1.jpg`;
    assert.ok(existsSync(objectPath(key)), 'object stored under the deterministic key');

    const done = await call(t.api(`/media/${id}/complete`), { method: 'POST', headers: dev.auth });
    assert.equal(done.status, 200, done.text);
    assert.match(done.body.status, /^(UPLOADED|PROCESSING|READY)$/);
    assert.equal(done.body.detectedMimeType, 'image/jpeg');
    assert.equal(done.body.sha256, JPEG_SHA);

    const again = await call(t.api(`/media/${id}/complete`), { method: 'POST', headers: dev.auth });
    assert.equal(again.status, 200, 'completing twice is harmless');
    assert.match(again.body.status, /^(UPLOADED|PROCESSING|READY)$/);

    // Exactly one processing job was enqueued, in the completing transaction.
    const jobs = await t.server.database.pool.query(
      `SELECT count(*)::int AS n FROM pgboss.job WHERE name IN ('media-process', 'media-process-video') AND data->>'mediaId' = $1`,
      [id],
    );
    assert.equal(jobs.rows[0].n, 1);

    const meta = await call(t.api(`/media/${id}`), { headers: dev.auth });
    assert.equal(meta.status, 200);
    assert.equal(meta.body.cameraId, 'front');
    assert.equal(meta.body.messageId, 'm-1');
    assert.equal(meta.body.reason, 'motion');
    assert.equal(meta.body.capturedAt, '2026-11-20T10:00:00.000Z');
    assert.equal(meta.body.fileName, 'Canon 40D.jpg');
    assert.ok(!JSON.stringify(meta.body).includes(t.config.storage.dir), 'no internal paths in metadata');

    const st = await call(t.api(`/media/${id}/status`), { headers: dev.auth });
    assert.deepEqual([st.status, st.body.status], [200, 'UPLOADED']);

    const list = await call(t.api(`/devices/${dev.id}/media`), { headers: dev.auth });
    assert.equal(list.status, 200);
    assert.deepEqual(
      list.body.items.map((m: { mediaId: string }) => m.mediaId),
      [id],
    );

    const redirect = await call(t.api(`/media/${id}/download`), { headers: dev.auth });
    assert.equal(redirect.status, 302);
    const location = redirect.headers.get('location')!;
    const viaUrl = await fetch(location);
    assert.equal(viaUrl.status, 200);
    assert.equal(sha256(Buffer.from(await viaUrl.arrayBuffer())), JPEG_SHA);
    assert.equal(viaUrl.headers.get('content-type'), 'image/jpeg');
    assert.equal(viaUrl.headers.get('x-content-type-options'), 'nosniff');

    const proxied = await fetch(t.api(`/media/${id}/download?mode=proxy`), { headers: dev.auth });
    assert.equal(proxied.status, 200);
    assert.equal(proxied.headers.get('etag'), `"${JPEG_SHA}"`);
    assert.equal(proxied.headers.get('content-length'), String(JPEG.length));
    assert.equal(proxied.headers.get('accept-ranges'), 'bytes');
    assert.equal(proxied.headers.get('x-content-type-options'), 'nosniff');
    assert.match(
      proxied.headers.get('content-disposition')!,
      /^inline; filename="Canon 40D.jpg"; filename\*=UTF-8''Canon%2040D.jpg$/,
    );
    assert.equal(sha256(Buffer.from(await proxied.arrayBuffer())), JPEG_SHA);

    const del = await call(t.api(`/media/${id}`), { method: 'DELETE', headers: dev.auth });
    assert.equal(del.status, 204);
    assert.ok(!existsSync(objectPath(key)), 'object removed');
    for (const p of [`/media/${id}`, `/media/${id}/status`, `/media/${id}/download`]) {
      assert.equal((await call(t.api(p), { headers: dev.auth })).status, 404, p);
    }
    assert.equal((await call(t.api(`/media/${id}`), { method: 'DELETE', headers: dev.auth })).status, 404);
    const listAfter = await call(t.api(`/devices/${dev.id}/media`), { headers: dev.auth });
    assert.deepEqual(listAfter.body.items, []);
    // The signed URL handed out earlier no longer serves anything.
    assert.equal((await fetch(location)).status, 404);
  });

  test('a PUT with the owner credentials instead of the signed URL works too', async () => {
    const dev = await t.device();
    const s = await createSession(dev.auth, jpegSession());
    const up = await put(t.api(`/media/${s.body.mediaId}/upload`), JPEG, {
      ...dev.auth,
      'content-type': 'image/jpeg',
    });
    assert.equal(up.status, 200, up.text);
    const done = await call(t.api(`/media/${s.body.mediaId}/complete`), {
      method: 'POST',
      headers: dev.auth,
    });
    assert.match(done.body.status, /^(UPLOADED|PROCESSING|READY)$/);
    assert.match(s.body.media.mediaType, /^image$/);
  });
});

describe('idempotency', () => {
  describe('a device replaying one (camera, messageId)', () => {
    let dev: { id: string; auth: Auth };
    const body = jpegSession({ cameraId: 'c1', messageId: 'replay-1' });
    let first: Awaited<ReturnType<typeof createSession>>;
    before(async () => {
      dev = await t.device();
      first = await createSession(dev.auth, body);
      assert.equal(first.status, 201);
    });

    test('gets the same record, with fresh upload instructions while PENDING', async () => {
      const second = await createSession(dev.auth, body);
      assert.equal(second.status, 200);
      assert.equal(second.body.mediaId, first.body.mediaId);
      assert.ok(second.body.upload, 'still PENDING → fresh upload instructions');
    });

    test('with different bytes → 409 naming the conflict', async () => {
      const conflictBytes = await createSession(dev.auth, { ...body, bytes: JPEG.length + 1 });
      assert.equal(conflictBytes.status, 409);
      assert.equal(conflictBytes.body.error.code, 'idempotency_conflict');
      assert.deepEqual(conflictBytes.body.error.details.conflicts.bytes, {
        existing: JPEG.length,
        declared: JPEG.length + 1,
      });
    });

    test('with a different sha256 → 409', async () => {
      const conflictSha = await createSession(dev.auth, { ...body, sha256: 'a'.repeat(64) });
      assert.equal(conflictSha.status, 409);
    });

    test('on another camera is another capture', async () => {
      // Same message id on another camera is another capture.
      const other = await createSession(dev.auth, { ...body, cameraId: 'c2' });
      assert.equal(other.status, 201);
      assert.notEqual(other.body.mediaId, first.body.mediaId);
    });

    test('after completion answers with the state and no upload instructions', async () => {
      // After completion a replay answers with the state and no upload instructions.
      await put(first.body.upload.url, JPEG);
      await call(t.api(`/media/${first.body.mediaId}/complete`), { method: 'POST', headers: dev.auth });
      const replay = await createSession(dev.auth, body);
      assert.equal(replay.status, 200);
      assert.match(replay.body.status, /^(UPLOADED|PROCESSING|READY)$/);
      assert.equal(replay.body.upload, null);
    });

    test('made one record per camera, no more', async () => {
      const rows = await t.server.database.pool.query(
        'SELECT count(*)::int AS n FROM media WHERE device_id = $1',
        [dev.id],
      );
      assert.equal(rows.rows[0].n, 2);
    });
  });

  test('concurrent replays of one message create exactly one record', async () => {
    const dev = await t.device();
    const body = jpegSession({ messageId: 'race-1' });
    const results = await Promise.all(Array.from({ length: 8 }, () => createSession(dev.auth, body)));
    const ids = new Set(results.map((r) => r.body.mediaId));
    assert.equal(ids.size, 1);
    assert.deepEqual(results.map((r) => r.status).sort(), [200, 200, 200, 200, 200, 200, 200, 201]);
  });

  test('users get the same guarantee with an Idempotency-Key header', async () => {
    const u = await t.user('alice-idem');
    const body = jpegSession();
    const a = await createSession(u.auth, body, { 'idempotency-key': 'k-1' });
    const b = await createSession(u.auth, body, { 'idempotency-key': 'k-1' });
    assert.deepEqual([a.status, b.status], [201, 200]);
    assert.equal(a.body.mediaId, b.body.mediaId);
    const c = await createSession(u.auth, { ...body, bytes: 10 }, { 'idempotency-key': 'k-1' });
    assert.equal(c.status, 409);
    const d = await createSession(u.auth, body);
    assert.equal(d.status, 201);
    assert.notEqual(d.body.mediaId, a.body.mediaId, 'no key → a new session each time');
    // Another user's identical key is theirs alone.
    const other = await t.user('bob-idem');
    const e = await createSession(other.auth, body, { 'idempotency-key': 'k-1' });
    assert.equal(e.status, 201);
  });
});

describe('upload failure modes leave nothing behind', () => {
  async function pending(auth: Auth, extra: Record<string, unknown> = {}) {
    const s = await createSession(auth, jpegSession(extra));
    assert.equal(s.status, 201, s.text);
    const row = await t.server.database.pool.query('SELECT storage_key FROM media WHERE id = $1', [
      s.body.mediaId,
    ]);
    return {
      id: s.body.mediaId as string,
      url: s.body.upload.url as string,
      key: row.rows[0].storage_key as string,
    };
  }

  function tmpFiles() {
    const dir = path.join(t.config.storage.dir, '.tmp');
    return existsSync(dir) ? readdirSync(dir) : [];
  }

  test('more bytes than declared → 413', async () => {
    const dev = await t.device();
    const p = await pending(dev.auth);
    const res = await put(p.url, Buffer.concat([JPEG, Buffer.from('extra')]));
    assert.equal(res.status, 413);
    assert.equal(res.body.error.code, 'upload_too_large');
    assert.ok(!existsSync(objectPath(p.key)));
  });

  test('more bytes than declared without Content-Length (chunked) → 413', async () => {
    const dev = await t.device();
    const p = await pending(dev.auth);
    const stream = new ReadableStream({
      start(c) {
        c.enqueue(JPEG);
        c.enqueue(new Uint8Array(100));
        c.close();
      },
    });
    const res = await fetch(p.url, {
      method: 'PUT',
      body: stream,
      headers: { 'content-type': 'image/jpeg' },
      duplex: 'half',
    } as RequestInit);
    assert.equal(res.status, 413);
    assert.ok(!existsSync(objectPath(p.key)));
    assert.deepEqual(tmpFiles(), []);
  });

  test('fewer bytes → 422 naming expected and actual', async () => {
    const dev = await t.device();
    const p = await pending(dev.auth);
    const stream = new ReadableStream({
      start(c) {
        c.enqueue(JPEG.subarray(0, 1000));
        c.close();
      },
    });
    const res = await fetch(p.url, {
      method: 'PUT',
      body: stream,
      headers: { 'content-type': 'image/jpeg' },
      duplex: 'half',
    } as RequestInit);
    const body = (await res.json()) as { error: { code: string; details: Record<string, number> } };
    assert.equal(res.status, 422);
    assert.equal(body.error.code, 'upload_incomplete');
    assert.deepEqual(body.error.details, { expectedBytes: JPEG.length, receivedBytes: 1000 });
    assert.ok(!existsSync(objectPath(p.key)));
  });

  describe('a PUT whose sha256 does not match', () => {
    let dev: { auth: Auth };
    let p: Awaited<ReturnType<typeof pending>>;
    before(async () => {
      dev = await t.device();
      p = await pending(dev.auth);
    });

    test('→ 422 naming both hashes, nothing stored', async () => {
      const tampered = Buffer.from(JPEG);
      tampered.writeUInt8(tampered.readUInt8(5000) ^ 0xff, 5000);
      const res = await put(p.url, tampered);
      assert.equal(res.status, 422);
      assert.equal(res.body.error.code, 'checksum_mismatch');
      assert.equal(res.body.error.details.expectedSha256, JPEG_SHA);
      assert.equal(res.body.error.details.actualSha256, sha256(tampered));
      assert.ok(!existsSync(objectPath(p.key)));
      assert.equal(
        (await call(t.api(`/media/${p.id}/complete`), { method: 'POST', headers: dev.auth })).status,
        409,
      );
    });

    test('a later good PUT still works', async () => {
      assert.equal((await put(p.url, JPEG)).status, 200);
      assert.match(
        (await call(t.api(`/media/${p.id}/complete`), { method: 'POST', headers: dev.auth })).body.status,
        /^(UPLOADED|PROCESSING|READY)$/,
      );
    });

    test('repeating a successful PUT after completion is harmless', async () => {
      // Repeating a successful PUT after completion is harmless.
      const again = await put(p.url, JPEG);
      assert.equal(again.status, 200);
      assert.match(again.body.status, /^(UPLOADED|PROCESSING|READY)$/);
    });
  });

  test('wrong Content-Type → 400 and nothing stored', async () => {
    const dev = await t.device();
    const p = await pending(dev.auth);
    const res = await put(p.url, JPEG, { 'content-type': 'text/html' });
    assert.equal(res.status, 400);
    assert.equal(res.body.error.code, 'content_type_mismatch');
    assert.ok(!existsSync(objectPath(p.key)));
  });

  test('an HTML file declared as image/jpeg is rejected at completion and never served', async () => {
    const dev = await t.device();
    const html = Buffer.from('<!doctype html><html><body><script>alert(1)</script></body></html>');
    const s = await createSession(dev.auth, {
      fileName: 'x.jpg',
      mimeType: 'image/jpeg',
      bytes: html.length,
    });
    assert.equal((await put(s.body.upload.url, html)).status, 200);
    const done = await call(t.api(`/media/${s.body.mediaId}/complete`), {
      method: 'POST',
      headers: dev.auth,
    });
    assert.equal(done.status, 422);
    assert.equal(done.body.error.code, 'type_mismatch');
    const meta = await call(t.api(`/media/${s.body.mediaId}`), { headers: dev.auth });
    assert.equal(meta.body.status, 'FAILED');
    assert.equal(meta.body.error.code, 'type_mismatch');
    const dl = await call(t.api(`/media/${s.body.mediaId}/download?mode=proxy`), { headers: dev.auth });
    assert.equal(dl.status, 409);
  });

  test('complete before any upload → 409 object_missing', async () => {
    const dev = await t.device();
    const p = await pending(dev.auth);
    const res = await call(t.api(`/media/${p.id}/complete`), { method: 'POST', headers: dev.auth });
    assert.equal(res.status, 409);
    assert.equal(res.body.error.code, 'object_missing');
  });
});

describe('signed upload URLs', () => {
  describe('a refused upload URL', () => {
    let a: Awaited<ReturnType<typeof createSession>>;
    let b: Awaited<ReturnType<typeof createSession>>;
    let url: URL;
    before(async () => {
      const dev = await t.device();
      a = await createSession(dev.auth, jpegSession());
      b = await createSession(dev.auth, jpegSession());
      url = new URL(a.body.upload.url as string);
    });

    test('a tampered signature → 403 signature_invalid', async () => {
      const sig = url.searchParams.get('sig')!;
      const tampered = new URL(url);
      tampered.searchParams.set('sig', (sig[0] === 'A' ? 'B' : 'A') + sig.slice(1));
      const r1 = await put(tampered.toString(), JPEG);
      assert.equal(r1.status, 403);
      assert.equal(r1.body.error.code, 'signature_invalid');
    });

    test('another media id → 403', async () => {
      const otherMedia = new URL(url.toString().replace(a.body.mediaId, b.body.mediaId));
      assert.equal((await put(otherMedia.toString(), JPEG)).status, 403);
    });

    test('a changed expiry → 403', async () => {
      const longer = new URL(url);
      longer.searchParams.set('expires', String(Number(url.searchParams.get('expires')) + 3600));
      assert.equal((await put(longer.toString(), JPEG)).status, 403);
    });

    test('no signature and no credentials → 401', async () => {
      const noAuth = await put(t.api(`/media/${a.body.mediaId}/upload`), JPEG);
      assert.equal(noAuth.status, 401);
    });

    test('nothing was stored', async () => {
      const rows = await t.server.database.pool.query('SELECT content_sha256 FROM media WHERE id = ANY($1)', [
        [a.body.mediaId, b.body.mediaId],
      ]);
      assert.ok(rows.rows.every((r) => r.content_sha256 === null));
    });
  });

  test('an expired URL → 403 signature_expired', async () => {
    const dev = await t.device();
    const a = await createSession(dev.auth, jpegSession());
    const expires = Math.floor(Date.now() / 1000) - 5;
    // Sign a URL that expired 5 s ago with the server's own signer.
    const { UrlSigner } = await import('../../src/storage/signing.ts');
    const { readFileSync } = await import('node:fs');
    const signer = new UrlSigner(readFileSync(path.join(t.dataDir, 'signing.secret'), 'utf8').trim());
    const expired = t.api(
      `/media/${a.body.mediaId}/upload?expires=${expires}&sig=${signer.sign('upload', { mediaId: a.body.mediaId }, expires).sig}`,
    );
    const res = await put(expired, JPEG);
    assert.equal(res.status, 403);
    assert.equal(res.body.error.code, 'signature_expired');
  });

  test('signed download URLs: tampering with key, headers or expiry → 403', async () => {
    const dev = await t.device();
    const s = await createSession(dev.auth, jpegSession());
    await put(s.body.upload.url, JPEG);
    await call(t.api(`/media/${s.body.mediaId}/complete`), { method: 'POST', headers: dev.auth });
    const loc = new URL(
      (await call(t.api(`/media/${s.body.mediaId}/download`), { headers: dev.auth })).headers.get(
        'location',
      )!,
    );
    assert.equal((await fetch(loc)).status, 200);
    const badCt = new URL(loc);
    badCt.searchParams.set('ct', 'text/html');
    assert.equal((await fetch(badCt)).status, 403, 'response content type is covered by the signature');
    const badKey = new URL(loc.toString().replace(/\.jpg\?/, '.png?'));
    assert.equal((await fetch(badKey)).status, 403);
    const badExp = new URL(loc);
    badExp.searchParams.set('expires', '9999999999');
    assert.equal((await fetch(badExp)).status, 403);
  });
});

describe('range and conditional requests (proxy mode)', () => {
  test('Range → 206, suffix ranges, 416, If-None-Match → 304, If-Range', async () => {
    const dev = await t.device();
    const s = await createSession(dev.auth, jpegSession());
    await put(s.body.upload.url, JPEG);
    await call(t.api(`/media/${s.body.mediaId}/complete`), { method: 'POST', headers: dev.auth });
    const url = t.api(`/media/${s.body.mediaId}/download?mode=proxy`);
    const get = (h: Record<string, string>) => fetch(url, { headers: { ...dev.auth, ...h } });

    const r1 = await get({ range: 'bytes=0-99' });
    assert.equal(r1.status, 206);
    assert.equal(r1.headers.get('content-range'), `bytes 0-99/${JPEG.length}`);
    assert.deepEqual(Buffer.from(await r1.arrayBuffer()), JPEG.subarray(0, 100));

    const r2 = await get({ range: 'bytes=-10' });
    assert.equal(r2.status, 206);
    assert.deepEqual(Buffer.from(await r2.arrayBuffer()), JPEG.subarray(JPEG.length - 10));

    const r3 = await get({ range: `bytes=100-` });
    assert.equal(r3.status, 206);
    assert.equal(Buffer.from(await r3.arrayBuffer()).length, JPEG.length - 100);

    const r4 = await get({ range: `bytes=${JPEG.length}-` });
    assert.equal(r4.status, 416);
    assert.equal(r4.headers.get('content-range'), `bytes */${JPEG.length}`);
    await r4.arrayBuffer();

    const etag = r1.headers.get('etag')!;
    const r5 = await get({ 'if-none-match': etag });
    assert.equal(r5.status, 304);
    const r6 = await get({ 'if-none-match': '"something-else"' });
    assert.equal(r6.status, 200);
    await r6.arrayBuffer();

    const r7 = await get({ range: 'bytes=0-9', 'if-range': etag });
    assert.equal(r7.status, 206);
    await r7.arrayBuffer();
    const r8 = await get({ range: 'bytes=0-9', 'if-range': '"stale"' });
    assert.equal(r8.status, 200, 'a stale If-Range gets the whole object');
    assert.equal(Buffer.from(await r8.arrayBuffer()).length, JPEG.length);
  });
});
