/**
 * `X-Content-Type-Options: nosniff`, a restrictive CSP and `Referrer-Policy: no-referrer` on every
 * response the API sends: JSON, errors of each kind, redirects, proxied and signed file bodies.
 * (A security review found the headers everywhere it looked, but no test held them in place.)
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { fixture, sha256 } from '../helpers/files.ts';
import { call, startTestServer, type TestServer } from '../helpers/server.ts';

let t: TestServer;
before(async () => {
  t = await startTestServer({ RATE_LIMIT_SESSIONS_PER_MINUTE: '2' });
});
after(async () => {
  await t?.close();
});

const JPEG = fixture('cameras/Canon_40D.jpg');

test('every kind of answer carries nosniff, the CSP and no-referrer', async () => {
  const dev = await t.device();
  const session = (auth: Record<string, string>) =>
    call(t.api('/media'), {
      method: 'POST',
      headers: auth,
      json: { fileName: 'p.jpg', mimeType: 'image/jpeg', bytes: JPEG.length, sha256: sha256(JPEG) },
    });
  const s = await session(dev.auth);
  assert.equal(s.status, 201, s.text);
  const put = await call(s.body.upload.url, {
    method: 'PUT',
    headers: { 'content-type': 'image/jpeg' },
    body: JPEG,
  });
  const done = await call(t.api(`/media/${s.body.mediaId}/complete`), { method: 'POST', headers: dev.auth });
  const id = s.body.mediaId as string;
  const redirect = await call(t.api(`/media/${id}/download`), { headers: dev.auth, redirect: 'manual' });
  const answers: [string, Awaited<ReturnType<typeof call>>][] = [
    ['201 session', s],
    ['200 upload', put],
    ['200 complete', done],
    ['200 media', await call(t.api(`/media/${id}`), { headers: dev.auth })],
    ['302 download redirect', redirect],
    ['200 signed storage URL', await call(redirect.headers.get('location')!)],
    ['200 proxied download', await call(t.api(`/media/${id}/download?mode=proxy`), { headers: dev.auth })],
    [
      '206 range',
      await call(t.api(`/media/${id}/download?mode=proxy`), { headers: { ...dev.auth, range: 'bytes=0-9' } }),
    ],
    ['200 openapi', await call(t.api('/openapi.json'))],
    ['200 healthz', await call(`${t.base}/healthz`)],
    ['400 validation', await call(t.api('/media/not-a-uuid'), { headers: dev.auth })],
    ['401 no credentials', await call(t.api(`/media/${id}`))],
    [
      '403 forged signature',
      await call(`${s.body.upload.url.split('&sig=')[0]}&sig=forged`, { method: 'PUT', body: JPEG }),
    ],
    ['404 no route', await call(t.api('/nope'))],
    ['404 not yours', await call(t.api(`/media/${id}`), { headers: (await t.device()).auth })],
    [
      '415 not JSON',
      await call(t.api('/media'), {
        method: 'POST',
        headers: { ...dev.auth, 'content-type': 'text/plain' },
        body: 'x',
      }),
    ],
  ];
  await session(dev.auth);
  answers.push(['429 rate limited', await session(dev.auth)]);
  for (const [what, res] of answers) {
    assert.ok(res.status < 500, `${what}: ${res.status}`);
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff', what);
    assert.equal(
      res.headers.get('content-security-policy'),
      "default-src 'none'; frame-ancestors 'none'; sandbox",
      what,
    );
    assert.equal(res.headers.get('referrer-policy'), 'no-referrer', what);
  }
  assert.deepEqual(
    answers.map(([, r]) => r.status),
    [201, 200, 200, 200, 302, 200, 200, 206, 200, 200, 400, 401, 403, 404, 404, 415, 429],
  );
});
