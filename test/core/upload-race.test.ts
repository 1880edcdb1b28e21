/**
 * A PUT still streaming when the session is decided (completed, cancelled) must not change the
 * object afterwards (found by a security review: an HTML file swapped in after `complete` had
 * checked a JPEG was then served as that verified JPEG). Uploads are create-only: the first
 * whole upload stays; the same bytes again are a success, other bytes a 409.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fixture } from '../helpers/files.ts';
import { heldRequest } from '../helpers/held.ts';
import { call, startTestServer, type TestServer } from '../helpers/server.ts';
import { waitFor } from '../processing/helpers.ts';

let t: TestServer;
before(async () => {
  t = await startTestServer();
});
after(async () => {
  await t?.close();
});

const JPEG = fixture('cameras/Canon_40D.jpg');
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A PUT of `body` holding its last byte back (see heldRequest); the answer's body as JSON. */
async function heldPut(url: string, body: Buffer) {
  const req = await heldRequest(url, { method: 'PUT', headers: { 'content-type': 'image/jpeg' }, body });
  return {
    release: async () => {
      const { status, text } = await req.release();
      return { status, body: JSON.parse(text) as { error: { code: string } } };
    },
  };
}

async function session(auth: Record<string, string>) {
  const s = await call(t.api('/media'), {
    method: 'POST',
    headers: auth,
    json: { fileName: 'p.jpg', mimeType: 'image/jpeg', bytes: JPEG.length },
  });
  assert.equal(s.status, 201, s.text);
  return { id: s.body.mediaId as string, url: s.body.upload.url as string };
}

async function original(id: string, auth: Record<string, string>) {
  const res = await fetch(t.api(`/media/${id}/download?mode=proxy`), { headers: auth });
  assert.equal(res.status, 200);
  return Buffer.from(await res.arrayBuffer());
}

test('bytes still arriving after complete never replace the verified object', async () => {
  const dev = await t.device();
  const { id, url } = await session(dev.auth);
  assert.equal(
    (await call(url, { method: 'PUT', headers: { 'content-type': 'image/jpeg' }, body: JPEG })).status,
    200,
  );
  // Same length, other bytes: an HTML page behind a JPEG's declaration.
  const html = Buffer.alloc(JPEG.length, 0x20);
  html.write('<html><script>alert(document.domain)</script>');
  const late = await heldPut(url, html);

  const done = await call(t.api(`/media/${id}/complete`), { method: 'POST', headers: dev.auth });
  assert.equal(done.status, 200, done.text);
  await waitFor(t, dev.auth, id, ['READY']);

  const answer = await late.release();
  assert.equal(answer.status, 409);
  assert.equal(answer.body.error.code, 'object_exists');
  const served = await original(id, dev.auth);
  assert.equal(sha(served), sha(JPEG), 'the original is still the JPEG complete verified');
  const meta = await call(t.api(`/media/${id}`), { headers: dev.auth });
  assert.equal(meta.body.status, 'READY');

  // A PUT of the same bytes again (a retry whose first answer was lost) is still a success.
  const again = await heldPut(url, JPEG);
  assert.equal((await again.release()).status, 200);
});

describe('repeated PUTs before complete', () => {
  let dev: { auth: Record<string, string> };
  let id: string;
  let url: string;
  before(async () => {
    dev = await t.device();
    ({ id, url } = await session(dev.auth));
  });
  const put = (body: Buffer) => call(url, { method: 'PUT', headers: { 'content-type': 'image/jpeg' }, body });

  test('the same bytes again succeed, also after a crash before the hash was recorded', async () => {
    assert.equal((await put(JPEG)).status, 200);
    assert.equal((await put(JPEG)).status, 200);
    // A process killed between placing the object and recording its hash: the repeat reads it.
    await t.server.database.pool.query('UPDATE media SET content_sha256 = NULL WHERE id = $1', [id]);
    const repeated = await put(JPEG);
    assert.equal(repeated.status, 200, repeated.text);
    assert.equal(repeated.body.sha256, sha(JPEG));
  });

  test('other bytes are 409 object_exists', async () => {
    const other = Buffer.from(JPEG);
    other[other.length - 3] = other[other.length - 3]! ^ 0xff;
    const refused = await put(other);
    assert.equal(refused.status, 409);
    assert.equal(refused.body.error.code, 'object_exists');
  });

  test('the first whole upload stays, verified at completion', async () => {
    const done = await call(t.api(`/media/${id}/complete`), { method: 'POST', headers: dev.auth });
    assert.equal(done.status, 200, done.text);
    // The media record names the hash of the bytes the store kept (the first upload), verified.
    assert.equal(done.body.sha256, sha(JPEG));
    assert.equal(done.body.sha256Verified, true);
    assert.equal(sha(await original(id, dev.auth)), sha(JPEG));
  });
});

test('bytes arriving after a cancel are not kept, and a retry cannot revive the session', async () => {
  const dev = await t.device();
  const { id, url } = await session(dev.auth);
  const late = await heldPut(url, JPEG);
  const cancel = await call(t.api(`/media/${id}/cancel`), { method: 'POST', headers: dev.auth });
  assert.equal(cancel.status, 200, cancel.text);

  const answer = await late.release();
  assert.equal(answer.status, 409);
  assert.equal(answer.body.error.code, 'invalid_state');
  const { rows } = await t.server.database.pool.query('SELECT storage_key FROM media WHERE id = $1', [id]);
  assert.equal(
    existsSync(path.join(t.config.storage.dir, rows[0].storage_key)),
    false,
    'no object left for a cancelled session',
  );

  const retry = await call(t.api(`/media/${id}/retry-processing`), { method: 'POST', headers: dev.auth });
  assert.equal(retry.status, 409);
  assert.equal(retry.body.error.code, 'invalid_state');
  const meta = await call(t.api(`/media/${id}`), { headers: dev.auth });
  assert.equal(meta.body.status, 'FAILED');
});
