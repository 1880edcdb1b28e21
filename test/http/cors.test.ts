/**
 * CORS for browser apps on other origins (CORS_ORIGINS), over real HTTP against real servers: one
 * with two listed origins, one without CORS_ORIGINS (no CORS headers at all, as before). The
 * expected header lists are spelled out here, not imported, so a change to them shows up.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import Fastify from 'fastify';
import { ConfigError, loadConfig } from '../../src/config.ts';
import { registerCors } from '../../src/http/cors.ts';
import { registerErrorHandling } from '../../src/http/errors.ts';
import { fixture, sha256 } from '../helpers/files.ts';
import { call, startTestServer, type TestServer } from '../helpers/server.ts';

const APP = 'https://app.example.com';
const DEV = 'http://localhost:5173';
const EVIL = 'https://evil.example';
const JPEG = fixture('cameras/Canon_40D.jpg');

const METHODS = ['DELETE', 'GET', 'HEAD', 'OPTIONS', 'PATCH', 'POST', 'PUT'];
const ALLOWED_HEADERS = [
  'authorization',
  'content-type',
  'idempotency-key',
  'if-none-match',
  'if-range',
  'range',
  // tus 1.0 (src/http/routes/tus.ts)
  'tus-resumable',
  'upload-checksum',
  'upload-defer-length',
  'upload-length',
  'upload-metadata',
  'upload-offset',
];
const EXPOSED = [
  'accept-ranges',
  'content-disposition',
  'content-range',
  'etag',
  'location',
  'retry-after',
  // tus 1.0 (src/http/routes/tus.ts)
  'tus-checksum-algorithm',
  'tus-extension',
  'tus-max-size',
  'tus-resumable',
  'tus-version',
  'upload-expires',
  'upload-length',
  'upload-metadata',
  'upload-offset',
  'x-ratelimit-limit',
  'x-ratelimit-remaining',
  'x-ratelimit-reset',
];

let t: TestServer;
let plain: TestServer;
before(async () => {
  [t, plain] = await Promise.all([
    startTestServer({
      CORS_ORIGINS: `${APP}, ${DEV}`,
      RATE_LIMIT_SESSIONS_PER_MINUTE: '2',
      WORKER_ENABLED: 'false',
    }),
    startTestServer({ WORKER_ENABLED: 'false' }),
  ]);
});
after(async () => {
  await Promise.all([t?.close(), plain?.close()]);
});

/** A comma-separated header as a sorted list (names lower-cased; methods are case-sensitive). */
const list = (h: string | null, lower = true) =>
  (h ?? '')
    .split(',')
    .map((s) => (lower ? s.trim().toLowerCase() : s.trim()))
    .filter(Boolean)
    .sort();
function corsHeaders(h: Headers): string[] {
  const out: string[] = [];
  h.forEach((_v, k) => {
    if (k.startsWith('access-control-')) out.push(k);
  });
  return out;
}

function preflight(url: string, origin: string, method: string, headers: string[] = []) {
  return call(url, {
    method: 'OPTIONS',
    headers: {
      origin,
      'access-control-request-method': method,
      ...(headers.length ? { 'access-control-request-headers': headers.join(',') } : {}),
    },
  });
}

/** An actual cross-origin response for `origin`: ACAO echoes it, the exposed list, no credentials. */
function assertCors(h: Headers, origin: string, what: string) {
  assert.equal(h.get('access-control-allow-origin'), origin, `${what}: ACAO`);
  assert.deepEqual(list(h.get('access-control-expose-headers')), EXPOSED, `${what}: exposed headers`);
  assert.equal(h.get('access-control-allow-credentials'), null, `${what}: no credentials mode`);
  assert.ok(list(h.get('vary')).includes('origin'), `${what}: Vary: Origin`);
}

function jpegSession(extra: Record<string, unknown> = {}) {
  return { fileName: 'cors.jpg', mimeType: 'image/jpeg', bytes: JPEG.length, sha256: sha256(JPEG), ...extra };
}

describe('CORS_ORIGINS set', () => {
  test('a preflight from a listed origin: 204, methods, headers, max-age, without credentials', async () => {
    for (const origin of [APP, DEV]) {
      const r = await preflight(t.api('/media'), origin, 'POST', [
        'authorization',
        'content-type',
        'idempotency-key',
      ]);
      assert.equal(r.status, 204, r.text);
      assert.equal(r.text, '');
      assert.equal(r.headers.get('access-control-allow-origin'), origin, 'the request origin is echoed');
      assert.deepEqual(list(r.headers.get('access-control-allow-methods'), false), METHODS);
      assert.deepEqual(list(r.headers.get('access-control-allow-headers')), ALLOWED_HEADERS);
      assert.equal(r.headers.get('access-control-max-age'), '600');
      assert.equal(r.headers.get('access-control-allow-credentials'), null);
      assert.ok(list(r.headers.get('vary')).includes('origin'));
      assert.equal(r.headers.get('x-ratelimit-limit'), null, 'not rate limited');
    }
  });

  test('preflights are never rate limited nor 404, on paths with and without routes', async () => {
    // More preflights than the session limit (2 a minute), and for paths with and without routes.
    for (const url of [
      t.api('/media'),
      t.api('/media'),
      t.api('/media'),
      t.api(`/media/${randomUUID()}/upload?expires=1&sig=x`),
      t.api(`/media/${randomUUID()}/parts/1?expires=1&sig=x`),
      t.api('/no-such-route'),
      `${t.base}/nowhere`,
    ]) {
      const r = await preflight(url, APP, 'PUT', ['content-type']);
      assert.equal(r.status, 204, `${url}: ${r.text}`);
      assert.equal(r.headers.get('access-control-allow-origin'), APP);
    }
  });

  test('an OPTIONS that is no preflight (no Origin) is answered alike, with no ACAO', async () => {
    const bare = await call(t.api('/media'), { method: 'OPTIONS' });
    assert.equal(bare.status, 204, bare.text);
    assert.equal(bare.headers.get('access-control-allow-origin'), null);
  });

  test('an origin not listed gets no Access-Control-Allow-Origin (preflight or actual request)', async () => {
    for (const origin of [EVIL, 'http://app.example.com', 'https://app.example.com.evil.example', 'null']) {
      const r = await preflight(t.api('/media'), origin, 'POST', ['authorization', 'content-type']);
      assert.ok(r.status < 500, `${origin}: ${r.status}`);
      assert.equal(r.headers.get('access-control-allow-origin'), null, origin);
    }
    const user = await t.user('u-cors-evil');
    const s = await call(t.api('/media'), {
      method: 'POST',
      headers: { ...user.auth, origin: EVIL },
      json: jpegSession(),
    });
    assert.equal(s.status, 201, 'the request itself is served as usual');
    assert.equal(s.headers.get('access-control-allow-origin'), null);
    const none = await call(t.api('/media'), { method: 'POST', headers: user.auth, json: jpegSession() });
    assert.equal(none.headers.get('access-control-allow-origin'), null, 'no Origin (not a browser): no ACAO');
  });

  test('actual requests from a listed origin carry the headers: 201 and the JSON errors (400, 401, 404)', async () => {
    const user = await t.user('u-cors-actual');
    const s = await call(t.api('/media'), {
      method: 'POST',
      headers: { ...user.auth, origin: APP, 'idempotency-key': 'k-cors' },
      json: jpegSession(),
    });
    assert.equal(s.status, 201, s.text);
    assertCors(s.headers, APP, '201');
    assert.ok(s.headers.get('x-ratelimit-remaining') !== null);

    const unauth = await call(t.api(`/media/${randomUUID()}`), { headers: { origin: DEV } });
    assert.equal(unauth.status, 401);
    assert.equal(unauth.body.error.code, 'unauthorized');
    assertCors(unauth.headers, DEV, '401');

    const missing = await call(t.api('/no-such-route'), { headers: { origin: APP } });
    assert.equal(missing.status, 404);
    assert.equal(missing.body.error.code, 'not_found');
    assertCors(missing.headers, APP, '404 (not-found handler)');

    const notYours = await call(t.api(`/media/${randomUUID()}`), { headers: { ...user.auth, origin: APP } });
    assert.equal(notYours.status, 404);
    assertCors(notYours.headers, APP, '404 (route)');

    const badJson = await call(t.api('/media'), {
      method: 'POST',
      headers: { ...user.auth, origin: APP, 'content-type': 'application/json' },
      body: '{',
    });
    assert.equal(badJson.status, 400);
    assert.equal(badJson.body.error.code, 'invalid_json');
    assertCors(badJson.headers, APP, '400');
  });

  test('429 rate_limited carries the headers, with Retry-After and X-RateLimit-* exposed', async () => {
    const dev = await t.device('cam-cors-429');
    const statuses: number[] = [];
    let last: Awaited<ReturnType<typeof call>> | undefined;
    for (let i = 0; i < 3; i++) {
      last = await call(t.api('/media'), {
        method: 'POST',
        headers: { ...dev.auth, origin: APP },
        json: jpegSession({ cameraId: 'c', messageId: `m-${i}` }),
      });
      statuses.push(last.status);
    }
    assert.deepEqual(statuses, [201, 201, 429]);
    assert.equal(last!.body.error.code, 'rate_limited');
    assert.ok(Number(last!.headers.get('retry-after')) > 0);
    assert.equal(last!.headers.get('x-ratelimit-remaining'), '0');
    assertCors(last!.headers, APP, '429');
  });

  test('the signed local upload URL, completion and both downloads carry the headers', async () => {
    const user = await t.user('u-cors-flow');
    const h = { ...user.auth, origin: APP };
    const s = await call(t.api('/media'), { method: 'POST', headers: h, json: jpegSession() });
    assert.equal(s.status, 201, s.text);
    const id: string = s.body.mediaId;
    const uploadUrl: string = s.body.upload.url;
    assert.ok(uploadUrl.startsWith(t.api(`/media/${id}/upload?`)), 'a URL on this API (local store)');

    const pre = await preflight(uploadUrl, APP, 'PUT', ['content-type']);
    assert.equal(pre.status, 204);
    assert.equal(pre.headers.get('access-control-allow-origin'), APP);
    const put = await call(uploadUrl, {
      method: 'PUT',
      headers: { origin: APP, 'content-type': 'image/jpeg' },
      body: new Uint8Array(JPEG),
    });
    assert.equal(put.status, 200, put.text);
    assertCors(put.headers, APP, 'signed PUT');

    const done = await call(t.api(`/media/${id}/complete`), { method: 'POST', headers: h });
    assert.equal(done.status, 200, done.text);
    assertCors(done.headers, APP, 'complete');

    const proxied = await call(t.api(`/media/${id}/download?mode=proxy`), { headers: h });
    assert.equal(proxied.status, 200);
    assertCors(proxied.headers, APP, 'proxied download');
    assert.equal(proxied.headers.get('etag'), `"${sha256(JPEG)}"`);
    const ranged = await call(t.api(`/media/${id}/download?mode=proxy`), {
      headers: { ...h, range: 'bytes=0-9' },
    });
    assert.equal(ranged.status, 206);
    assert.equal(ranged.headers.get('content-range'), `bytes 0-9/${JPEG.length}`);
    assertCors(ranged.headers, APP, 'ranged download');

    const redirect = await call(t.api(`/media/${id}/download`), { headers: h });
    assert.equal(redirect.status, 302);
    assertCors(redirect.headers, APP, '302');
    const signed = await fetch(redirect.headers.get('location')!, { headers: { origin: APP } });
    assert.equal(signed.status, 200);
    assert.equal(sha256(Buffer.from(await signed.arrayBuffer())), sha256(JPEG));
    assertCors(signed.headers, APP, 'signed local download (/storage)');
    const expired = await call(t.api('/storage/x?expires=1&ct=a&cd=b&sig=c'), { headers: { origin: APP } });
    assert.equal(expired.status, 403);
    assertCors(expired.headers, APP, '403 signed URL');
  });
});

describe('CORS_ORIGINS unset (the default)', () => {
  test('a preflight is the 404 it always was, with no CORS headers', async () => {
    const pre = await preflight(plain.api('/media'), APP, 'POST', ['authorization', 'content-type']);
    assert.equal(pre.status, 404);
    assert.deepEqual(corsHeaders(pre.headers), []);
  });

  test('requests from any origin carry no CORS headers, also errors', async () => {
    const user = await plain.user('u-plain');
    const s = await call(plain.api('/media'), {
      method: 'POST',
      headers: { ...user.auth, origin: APP },
      json: jpegSession(),
    });
    assert.equal(s.status, 201);
    assert.deepEqual(corsHeaders(s.headers), []);
    const unauth = await call(plain.api(`/media/${randomUUID()}`), { headers: { origin: APP } });
    assert.equal(unauth.status, 401);
    assert.deepEqual(corsHeaders(unauth.headers), []);
  });
});

describe('CORS_ORIGINS "*"', () => {
  test('any origin: ACAO "*" (no credentials), preflights answered', async () => {
    const app = Fastify();
    registerErrorHandling(app);
    await registerCors(app, loadConfig({ CORS_ORIGINS: '*' }).corsOrigins);
    app.get('/x', async () => ({ ok: true }));
    await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
      const pre = await preflight(`${base}/x`, EVIL, 'GET', ['authorization']);
      assert.equal(pre.status, 204);
      assert.equal(pre.headers.get('access-control-allow-origin'), '*');
      assert.equal(pre.headers.get('access-control-allow-credentials'), null);
      const r = await call(`${base}/x`, { headers: { origin: EVIL } });
      assert.equal(r.status, 200);
      assert.equal(r.headers.get('access-control-allow-origin'), '*');
      assert.deepEqual(list(r.headers.get('access-control-expose-headers')), EXPOSED);
    } finally {
      await app.close();
    }
  });
});

describe('CORS_ORIGINS parsing', () => {
  test('unset or blank: no origins', () => {
    assert.deepEqual(loadConfig({}).corsOrigins, []);
    assert.deepEqual(loadConfig({ CORS_ORIGINS: '  ' }).corsOrigins, []);
  });

  test('exact origins, trimmed, with empty entries and duplicates dropped', () => {
    assert.deepEqual(loadConfig({ CORS_ORIGINS: ` ${APP} ,${DEV},,http://[::1]:8080,${APP}` }).corsOrigins, [
      APP,
      DEV,
      'http://[::1]:8080',
    ]);
  });

  test('"*" alone: any origin', () => {
    assert.deepEqual(loadConfig({ CORS_ORIGINS: '*' }).corsOrigins, ['*']);
  });
  for (const [value, message] of [
    ['app.example.com', /must list origins like https:\/\/app\.example\.com, got "app\.example\.com"/],
    [
      'https://app.example.com/',
      /"https:\/\/app\.example\.com\/" is not an origin .* use "https:\/\/app\.example\.com"/,
    ],
    ['https://app.example.com/app', /is not an origin .*no path/],
    ['https://App.Example.com', /use "https:\/\/app\.example\.com"/],
    ['https://app.example.com:443', /use "https:\/\/app\.example\.com"/],
    ['https://app.example.com?x=1', /is not an origin/],
    ['ftp://files.example.com', /must list origins like/],
    ['null', /must list origins like/],
    [`${APP},*`, /"\*" \(any origin\) must be the only entry/],
  ] as const) {
    test(`CORS_ORIGINS=${value} stops start-up naming the variable`, () => {
      assert.throws(
        () => loadConfig({ CORS_ORIGINS: value }),
        (err: unknown) =>
          err instanceof ConfigError &&
          err.variable === 'CORS_ORIGINS' &&
          err.message.startsWith('Invalid configuration: CORS_ORIGINS ') &&
          message.test(err.message),
      );
    });
  }
});
