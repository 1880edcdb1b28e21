/**
 * The statements a single upload's PUT and complete send (issue 22 §3: under load every statement
 * is a round trip the busy event loop and Postgres pay for): the media row is read once per
 * request, and the device's revocation and the multipart lookup come with it — no statement of
 * their own — and complete does not read the row back after its UPDATE. A revoked device is still
 * refused (test/core/authz-signed.test.ts), and a multipart upload still found (multipart suites).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { fixture, sha256 } from '../helpers/files.ts';
import { call, startTestServer, type TestServer } from '../helpers/server.ts';

const JPEG = fixture('cameras/Canon_40D.jpg');

/** Statement texts sent by any pg client of this process while `fn` runs. */
async function statementsOf(fn: () => Promise<void>): Promise<string[]> {
  const seen: string[] = [];
  // A spy on the real client (the statements still run): records each text, changes nothing.
  const proto = pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown };
  const original = proto.query;
  proto.query = function (this: unknown, ...args: unknown[]) {
    const q = args[0] as string | { text?: string };
    seen.push((typeof q === 'string' ? q : (q.text ?? '')).replace(/\s+/g, ' '));
    return original.apply(this, args);
  };
  try {
    await fn();
  } finally {
    proto.query = original;
  }
  return seen;
}

// The media read (findMedia's SELECT, its columns spelled out) by its join.
const mediaReads = (s: string[]) =>
  s.filter((q) => /^SELECT m\.id, .* FROM media m LEFT JOIN devices d ON d\.id = m\.device_id /.test(q));
const ownLookups = (s: string[]) =>
  s.filter(
    (q) =>
      /FROM devices WHERE id = \$1 AND revoked_at IS NULL/.test(q) ||
      /FROM multipart_uploads WHERE media_id/.test(q),
  );

let t: TestServer;
before(async () => {
  t = await startTestServer({ WORKER_ENABLED: 'false' });
});
after(async () => t.close());

test('a PUT reads the media row once and asks nothing else about the device or multipart', async () => {
  const dev = await t.device('stmts-put');
  const s = await call(t.api('/media'), {
    method: 'POST',
    headers: dev.auth,
    json: {
      fileName: 'a.jpg',
      mimeType: 'image/jpeg',
      bytes: JPEG.length,
      sha256: sha256(JPEG),
      messageId: 'p1',
    },
  });
  assert.equal(s.status, 201, s.text);
  let status = 0;
  const sent = await statementsOf(async () => {
    status = (
      await call(s.body.upload.url, { method: 'PUT', headers: { 'content-type': 'image/jpeg' }, body: JPEG })
    ).status;
  });
  assert.equal(status, 200);
  assert.equal(mediaReads(sent).length, 1, sent.join('\n'));
  assert.deepEqual(ownLookups(sent), []);
});

test('complete reads the media row once, and not again after marking it UPLOADED', async () => {
  const dev = await t.device('stmts-complete');
  const s = await call(t.api('/media'), {
    method: 'POST',
    headers: dev.auth,
    json: {
      fileName: 'b.jpg',
      mimeType: 'image/jpeg',
      bytes: JPEG.length,
      sha256: sha256(JPEG),
      messageId: 'c1',
    },
  });
  const put = await call(s.body.upload.url, {
    method: 'PUT',
    headers: { 'content-type': 'image/jpeg' },
    body: JPEG,
  });
  assert.equal(put.status, 200, put.text);
  let done: Awaited<ReturnType<typeof call>> | undefined;
  const sent = await statementsOf(async () => {
    done = await call(t.api(`/media/${s.body.mediaId}/complete`), { method: 'POST', headers: dev.auth });
  });
  assert.equal(done!.status, 200, done!.text);
  // The answer still carries the committed state and the joined fields.
  assert.equal(done!.body.status, 'UPLOADED');
  assert.equal(done!.body.id ?? done!.body.mediaId, s.body.mediaId);
  assert.equal(done!.body.sha256Verified, true);
  assert.equal(mediaReads(sent).length, 1, sent.join('\n'));
  assert.deepEqual(ownLookups(sent), []);
});
