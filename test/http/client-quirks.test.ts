/**
 * What ordinary clients send that the API used to refuse: a `Content-Type` repeated by `fetch`
 * when upload.headers is spread and a content-type added (`image/jpeg, image/jpeg`), an empty body
 * with `content-type: application/json` on the POSTs whose body is optional; and the HLS playlist
 * of an image, which is a 409 (a state of the media), not a 404.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { foldRepeatedContentType } from '../../src/http/upload-content-type.ts';
import { sha256 } from '../helpers/files.ts';
import { asBody, MiB, MULTIPART_ENV, videoBytes } from '../helpers/multipart-suite.ts';
import { call, startTestServer, type TestServer } from '../helpers/server.ts';

let t: TestServer;
let jpeg: Buffer;
before(async () => {
  t = await startTestServer(MULTIPART_ENV);
  jpeg = await sharp({ create: { width: 32, height: 24, channels: 3, background: '#3a7' } })
    .jpeg()
    .toBuffer();
});
after(async () => {
  await t?.close();
});

type Auth = Record<string, string>;

async function session(auth: Auth, bytes: Buffer, mimeType = 'image/jpeg') {
  const s = await call(t.api('/media'), {
    method: 'POST',
    headers: auth,
    json: { fileName: 'x', mimeType, bytes: bytes.length, sha256: sha256(bytes) },
  });
  assert.equal(s.status, 201, s.text);
  return s.body as { mediaId: string; upload: { url: string; headers: Record<string, string> } };
}

describe('a repeated Content-Type on uploads', () => {
  test('fetch with upload.headers spread and its own content-type: the same type twice is accepted', async () => {
    const dev = await t.device('ct-twice');
    const s = await session(dev.auth, jpeg);
    // `Content-Type` from upload.headers plus `content-type`: fetch joins them with ", ".
    const res = await fetch(s.upload.url, {
      method: 'PUT',
      headers: new Headers([...Object.entries(s.upload.headers), ['content-type', 'image/jpeg']]),
      body: asBody(jpeg),
    });
    const body = (await res.json()) as { sha256: string };
    assert.equal(res.status, 200, JSON.stringify(body));
    assert.equal(body.sha256, sha256(jpeg));
    const done = await call(t.api(`/media/${s.mediaId}/complete`), { method: 'POST', headers: dev.auth });
    assert.equal(done.status, 200, done.text);
    assert.equal(done.body.status, 'UPLOADED');
  });

  test('different types in one Content-Type: 400 content_type_mismatch, nothing stored', async () => {
    const dev = await t.device('ct-differ');
    const s = await session(dev.auth, jpeg);
    for (const ct of ['image/jpeg, text/html', 'text/html, image/jpeg', 'image/png,image/jpeg']) {
      const res = await call(s.upload.url, { method: 'PUT', headers: { 'content-type': ct }, body: jpeg });
      assert.equal(res.status, 400, `${ct}: ${res.text}`);
      assert.equal(res.body.error.code, 'content_type_mismatch');
    }
    const early = await call(t.api(`/media/${s.mediaId}/complete`), { method: 'POST', headers: dev.auth });
    assert.equal(early.status, 409);
    assert.equal(early.body.error.code, 'object_missing');
    // Case and spacing do not make a type different; a single wrong type is still refused.
    const folded = await call(s.upload.url, {
      method: 'PUT',
      headers: { 'content-type': 'image/jpeg,  Image/JPEG' },
      body: asBody(jpeg),
    });
    assert.equal(folded.status, 200, folded.text);
    const wrong = await call(s.upload.url, {
      method: 'PUT',
      headers: { 'content-type': 'image/png, image/png' },
      body: asBody(jpeg),
    });
    assert.equal(wrong.status, 400);
    assert.equal(wrong.body.error.code, 'content_type_mismatch');
  });

  test('part PUTs: a repeated type is accepted, different ones are 400 content_type_mismatch', async () => {
    const dev = await t.device('ct-parts');
    const data = videoBytes(5 * MiB + 1000); // two parts
    const s = await session(dev.auth, data, 'video/mp4');
    const signed = await call(t.api(`/media/${s.mediaId}/parts`), {
      method: 'POST',
      headers: dev.auth,
      json: { partNumbers: [1, 2] },
    });
    assert.equal(signed.status, 200, signed.text);
    const [p1, p2] = signed.body.parts as { url: string }[];
    const bad = await call(p1!.url, {
      method: 'PUT',
      headers: { 'content-type': 'video/mp4, text/html' },
      body: data.subarray(0, 5 * MiB),
    });
    assert.equal(bad.status, 400, bad.text);
    assert.equal(bad.body.error.code, 'content_type_mismatch');
    const etags: string[] = [];
    for (const [i, p] of [p1!, p2!].entries()) {
      const res = await fetch(p.url, {
        method: 'PUT',
        headers: new Headers([
          ['Content-Type', 'video/mp4'],
          ['content-type', 'video/mp4'],
        ]),
        body: asBody(data.subarray(i * 5 * MiB, (i + 1) * 5 * MiB)),
      });
      assert.equal(res.status, 200, await res.text());
      etags.push(res.headers.get('etag')!);
    }
    const done = await call(t.api(`/media/${s.mediaId}/complete`), {
      method: 'POST',
      headers: dev.auth,
      json: { parts: etags.map((etag, i) => ({ partNumber: i + 1, etag })) },
    });
    assert.equal(done.status, 200, done.text);
    assert.equal(done.body.sha256, sha256(data));
  });

  test('folding keeps quoted commas and single values as they are', () => {
    assert.equal(foldRepeatedContentType(undefined), undefined);
    assert.equal(foldRepeatedContentType('image/jpeg'), 'image/jpeg');
    assert.equal(foldRepeatedContentType('a/b; x="1,2"'), 'a/b; x="1,2"');
    assert.equal(foldRepeatedContentType('a/b; x="1,2", A/B;x="1,2"'), 'a/b; x="1,2"');
    assert.throws(() => foldRepeatedContentType('a/b; x="1,2", a/b; x="1"'), /more than one type/);
  });
});

describe('an empty JSON body where the body is optional', () => {
  const emptyJson = (auth: Auth, body = '') => ({
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body,
  });

  test('complete, cancel and retry-processing take content-type: application/json with no body', async () => {
    const dev = await t.device('empty-json');
    const s = await session(dev.auth, jpeg);
    const put = await call(s.upload.url, { method: 'PUT', headers: s.upload.headers, body: jpeg });
    assert.equal(put.status, 200, put.text);
    const done = await call(t.api(`/media/${s.mediaId}/complete`), emptyJson(dev.auth));
    assert.equal(done.status, 200, done.text);
    assert.equal(done.body.status, 'UPLOADED');

    const pending = await session(dev.auth, Buffer.concat([jpeg, Buffer.from('x')]));
    const cancel = await call(t.api(`/media/${pending.mediaId}/cancel`), emptyJson(dev.auth));
    assert.equal(cancel.status, 200, cancel.text);
    assert.equal(cancel.body.status, 'FAILED');
    // Reached the route: a cancelled media never completed, so it cannot be retried (not a 400).
    const retry = await call(t.api(`/media/${pending.mediaId}/retry-processing`), emptyJson(dev.auth));
    assert.equal(retry.status, 409, retry.text);
    assert.equal(retry.body.error.code, 'invalid_state');
  });

  test('malformed JSON is still invalid_json, and a required body is still required', async () => {
    const dev = await t.device('bad-json');
    const s = await session(dev.auth, Buffer.concat([jpeg, Buffer.from('yy')]));
    for (const body of ['{', 'nul', '{"parts":']) {
      const res = await call(t.api(`/media/${s.mediaId}/complete`), emptyJson(dev.auth, body));
      assert.equal(res.status, 400, res.text);
      assert.equal(res.body.error.code, 'invalid_json');
    }
    const unknown = await call(t.api(`/media/${s.mediaId}/cancel`), emptyJson(dev.auth, '{"x":1}'));
    assert.equal(unknown.status, 400);
    assert.equal(unknown.body.error.code, 'validation_failed');
    const noSession = await call(t.api('/media'), emptyJson(dev.auth));
    assert.equal(noSession.status, 400);
    assert.equal(noSession.body.error.code, 'invalid_json');
    const noParts = await call(t.api(`/media/${s.mediaId}/parts`), emptyJson(dev.auth));
    assert.equal(noParts.status, 400);
    assert.equal(noParts.body.error.code, 'invalid_json');
  });
});

describe('HLS playlist of an image', () => {
  let owner: Awaited<ReturnType<TestServer['user']>>;
  let s: Awaited<ReturnType<typeof session>>;
  before(async () => {
    owner = await t.user('hls-image-owner');
    s = await session(owner.auth, jpeg);
  });

  test('409 invalid_state for whoever may see it', async () => {
    const res = await call(t.api(`/media/${s.mediaId}/hls/master.m3u8`), { headers: owner.auth });
    assert.equal(res.status, 409, res.text);
    assert.equal(res.body.error.code, 'invalid_state');
    assert.equal(res.body.error.details.mediaType, 'image');
  });

  test('404 for a stranger', async () => {
    const stranger = await t.user('hls-image-stranger');
    const other = await call(t.api(`/media/${s.mediaId}/hls/master.m3u8`), { headers: stranger.auth });
    assert.equal(other.status, 404);
    assert.equal(other.body.error.code, 'not_found');
  });

  test('401 without credentials', async () => {
    assert.equal((await call(t.api(`/media/${s.mediaId}/hls/master.m3u8`))).status, 401);
  });
});
