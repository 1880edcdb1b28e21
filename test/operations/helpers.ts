/** Uploads for the operations tests: a session, the PUT with the headers it names, complete. */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { call, type TestServer } from '../helpers/server.ts';

export async function uploadImage(
  t: TestServer,
  auth: Record<string, string>,
  bytes: Buffer,
  extra: Record<string, unknown> = {},
): Promise<string> {
  const s = await call(t.api('/media'), {
    method: 'POST',
    headers: auth,
    json: {
      fileName: 'photo.jpg',
      mimeType: 'image/jpeg',
      bytes: bytes.length,
      sha256: createHash('sha256').update(bytes).digest('hex'),
      ...extra,
    },
  });
  assert.equal(s.status, 201, s.text);
  const put = await call(s.body.upload.url, {
    method: 'PUT',
    headers: s.body.upload.headers ?? { 'content-type': 'image/jpeg' },
    body: bytes,
  });
  assert.equal(put.status, 200, put.text);
  const done = await call(t.api(`/media/${s.body.mediaId}/complete`), { method: 'POST', headers: auth });
  assert.equal(done.status, 200, done.text);
  return s.body.mediaId as string;
}
