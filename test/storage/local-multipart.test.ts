/** The multipart protocol on the local backend (parts through the API's signed part route). */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { sha256 } from '../helpers/files.ts';
import { heldRequest } from '../helpers/held.ts';
import {
  asBody,
  MiB,
  MULTIPART_ENV,
  multipartProtocolSuite,
  videoBytes,
} from '../helpers/multipart-suite.ts';
import { call, startTestServer, type TestServer } from '../helpers/server.ts';

let t: TestServer;
before(async () => {
  t = await startTestServer(MULTIPART_ENV);
});
after(async () => {
  await t?.close();
});

multipartProtocolSuite('local', () => t);

// Found by a security review: a part still streaming when `complete` joined the parts (and removed
// the upload's directory) ended in a 500; and a single PUT to a multipart session was accepted.
test('local multipart: a part arriving after the join is a 409, a single PUT to a multipart session too', async () => {
  const dev = await t.device();
  const data = videoBytes(6 * MiB);
  const s = await call(t.api('/media'), {
    method: 'POST',
    headers: dev.auth,
    json: { fileName: 'clip.mp4', mimeType: 'video/mp4', bytes: data.length, sha256: sha256(data) },
  });
  assert.equal(s.status, 201, s.text);
  const id = s.body.mediaId as string;

  const single = await call(t.api(`/media/${id}/upload`), {
    method: 'PUT',
    headers: { ...dev.auth, 'content-type': 'video/mp4' },
    body: asBody(data),
  });
  assert.equal(single.status, 409, single.text);
  assert.equal(single.body.error.code, 'multipart_required');

  const signed = await call(t.api(`/media/${id}/parts`), {
    method: 'POST',
    headers: dev.auth,
    json: { partNumbers: [1, 2] },
  });
  assert.equal(signed.status, 200, signed.text);
  const parts = signed.body.parts as { partNumber: number; url: string; headers: Record<string, string> }[];
  const bodyOf = (n: number) => data.subarray((n - 1) * 5 * MiB, n * 5 * MiB);
  const etags = [];
  for (const p of parts) {
    const r = await fetch(p.url, { method: 'PUT', headers: p.headers, body: asBody(bodyOf(p.partNumber)) });
    assert.equal(r.status, 200, await r.text());
    etags.push({ partNumber: p.partNumber, etag: r.headers.get('etag') });
  }
  // Part 1 again, held back by one byte while the upload completes.
  const again = bodyOf(1);
  const late = await heldRequest(parts[0]!.url, { method: 'PUT', headers: parts[0]!.headers, body: again });
  const done = await call(t.api(`/media/${id}/complete`), {
    method: 'POST',
    headers: dev.auth,
    json: { parts: etags },
  });
  assert.equal(done.status, 200, done.text);
  const answer = await late.release();
  assert.equal(answer.status, 409, answer.text);
  assert.equal((JSON.parse(answer.text) as { error: { code: string } }).error.code, 'invalid_state');
  const file = await fetch(t.api(`/media/${id}/download?mode=proxy`), { headers: dev.auth });
  assert.equal(sha256(Buffer.from(await file.arrayBuffer())), sha256(data), 'the joined object is intact');
});
