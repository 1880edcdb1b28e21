/**
 * What an outside attack found on the edges of authorisation (issue 13, item 2): signed routes that
 * told existing ids from unknown ones, validation answered before authentication, a malformed path
 * answered without our shape or headers, signed upload URLs that outlived their device's
 * revocation, failed authentications never throttled, a 429 naming the wrong window, and CLI
 * tokens without the issuer and audience the server insists on.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { request } from 'node:http';
import { connect } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { mintUserToken, revokeDevice } from '../../src/auth/principals.ts';
import { UrlSigner } from '../../src/storage/signing.ts';
import { fixture, sha256 } from '../helpers/files.ts';
import { call, JWT_SECRET, startTestServer, type TestServer } from '../helpers/server.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = path.join(ROOT, 'bin/mediary.mjs');
const JPEG = fixture('cameras/Canon_40D.jpg');
const SECRET = 'signing-secret-for-the-authz-signed-test-0123456789';
const ISSUER = 'https://issuer.authz.test';
const AUDIENCE = 'mediary-authz-test';
const MiB = 1024 * 1024;
const GHOST = '00000000-0000-4000-8000-000000000000';
const AUTH_FAILURES = 5;

let t: TestServer;
before(async () => {
  t = await startTestServer({
    SIGNING_SECRET: SECRET,
    JWT_ISSUER: ISSUER,
    JWT_AUDIENCE: AUDIENCE,
    MULTIPART_THRESHOLD_BYTES: String(5 * MiB),
    MULTIPART_PART_SIZE_BYTES: String(5 * MiB),
    RATE_LIMIT_SESSIONS_PER_MINUTE: '5',
    RATE_LIMIT_AUTH_FAILURES_PER_MINUTE: String(AUTH_FAILURES),
    WORKER_ENABLED: 'false',
  });
});
after(async () => {
  await t?.close();
});

type Auth = Record<string, string>;
type Answer = Awaited<ReturnType<typeof call>>;

async function user(id: string): Promise<Auth> {
  const token = await mintUserToken(JWT_SECRET, id, 3600, { issuer: ISSUER, audience: AUDIENCE });
  return { authorization: `Bearer ${token}` };
}

async function session(auth: Auth, extra: Record<string, unknown> = {}) {
  const s = await call(t.api('/media'), {
    method: 'POST',
    headers: auth,
    json: { fileName: 'p.jpg', mimeType: 'image/jpeg', bytes: JPEG.length, sha256: sha256(JPEG), ...extra },
  });
  assert.equal(s.status, 201, s.text);
  return s.body as { mediaId: string; upload: { url: string; method: string } };
}

/** The error without its request id: what tells two answers apart. */
const shape = (res: Answer) => ({
  status: res.status,
  ...res.body?.error,
  requestId: typeof res.body?.error?.requestId,
});

/** A request from a chosen loopback address (the failed-auth throttle counts per client IP). */
function from(localAddress: string, url: string, headers: Auth): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers, localAddress }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        const h = new Headers();
        for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') h.set(k, v);
        resolve({ status: res.statusCode ?? 0, headers: h, body: text ? JSON.parse(text) : undefined, text });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

describe('signed routes check the signature before reading a row', () => {
  test('upload, part, storage and HLS URLs: a known id with a bad signature answers as an unknown id', async () => {
    const dev = await t.device('signed-a');
    const future = Math.floor(Date.now() / 1000) + 600;

    // Single upload URL (PENDING media).
    const single = await session(dev.auth);
    // Multipart session: parts go to the API's own signed part route (local store).
    const multi = await session(dev.auth, { bytes: 6 * MiB, sha256: undefined });
    const signed = await call(t.api(`/media/${multi.mediaId}/parts`), {
      method: 'POST',
      headers: dev.auth,
      json: { partNumbers: [1] },
    });
    assert.equal(signed.status, 200, signed.text);
    const partUrl = new URL(signed.body.parts[0].url as string);
    // A stored object behind a signed storage URL.
    const done = await session(dev.auth);
    await call(done.upload.url, { method: 'PUT', headers: { 'content-type': 'image/jpeg' }, body: JPEG });
    assert.equal(
      (await call(t.api(`/media/${done.mediaId}/complete`), { method: 'POST', headers: dev.auth })).status,
      200,
    );
    const redirect = await call(t.api(`/media/${done.mediaId}/download`), { headers: dev.auth });
    const storageUrl = new URL(redirect.headers.get('location')!);
    // A READY video with an HLS ladder (the row is all the token route reads before the object).
    const video = await session(dev.auth, { fileName: 'v.mp4', mimeType: 'video/mp4', sha256: undefined });
    const prefix = `hls/${video.mediaId}/${randomUUID()}`;
    await t.server.database.pool.query(
      `UPDATE media SET status = 'READY', hls_master_key = $2 WHERE id = $1`,
      [video.mediaId, `${prefix}/master.m3u8`],
    );

    const tamperedPart = new URL(partUrl);
    tamperedPart.searchParams.set('sig', 'forged');
    const noUploadPart = new URL(partUrl);
    noUploadPart.searchParams.delete('upload');
    const tamperedStorage = new URL(storageUrl);
    tamperedStorage.searchParams.set('sig', 'forged');
    const forgedTokens = ['1.x', `${future}.${randomUUID()}.AAAA`, `${future}.forged`];

    // [what, URL for the known id, method, body]; the unknown id's URL replaces the id.
    const cases: [string, string, string, Uint8Array?][] = [
      [
        'upload forged sig',
        t.api(`/media/${single.mediaId}/upload?expires=${future}&sig=forged`),
        'PUT',
        JPEG,
      ],
      ['upload expired', t.api(`/media/${single.mediaId}/upload?expires=1&sig=x`), 'PUT', JPEG],
      ['upload no sig, no credentials', t.api(`/media/${single.mediaId}/upload`), 'PUT', JPEG],
      ['part forged sig', tamperedPart.href, 'PUT', new Uint8Array(16)],
      ['part without its upload id', noUploadPart.href, 'PUT', new Uint8Array(16)],
      [
        'part forged from scratch',
        t.api(`/media/${multi.mediaId}/parts/1?expires=${future}&upload=${randomUUID()}&sig=forged`),
        'PUT',
        new Uint8Array(16),
      ],
      ['storage forged sig', tamperedStorage.href, 'GET'],
      ...forgedTokens.flatMap((token): [string, string, string][] => [
        [`HLS segment ${token}`, t.api(`/media/${video.mediaId}/hls/360p/seg_0.m4s?token=${token}`), 'GET'],
        [`HLS playlist ${token}`, t.api(`/media/${video.mediaId}/hls/360p/index.m3u8?token=${token}`), 'GET'],
        [`HLS master ${token}`, t.api(`/media/${video.mediaId}/hls/master.m3u8?token=${token}`), 'GET'],
      ]),
    ];
    for (const [what, url, method, body] of cases) {
      const known = await call(url, { method, body, headers: body ? { 'content-type': 'image/jpeg' } : {} });
      const ghostUrl = url.includes('/storage/')
        ? url.replace(storageUrl.pathname, storageUrl.pathname.replace(/[^/]+$/, 'nothing-here.jpg'))
        : url.replace(/\/media\/[0-9a-f-]{36}\//, `/media/${GHOST}/`);
      assert.notEqual(ghostUrl, url, what);
      const ghost = await call(ghostUrl, {
        method,
        body,
        headers: body ? { 'content-type': 'image/jpeg' } : {},
      });
      assert.ok(known.status === 401 || known.status === 403, `${what}: ${known.status} ${known.text}`);
      assert.deepEqual(shape(known), shape(ghost), what);
    }

    // The checks above refuse for the right reason: properly signed URLs still get through.
    const signer = new UrlSigner(SECRET);
    const runId = prefix.slice(prefix.lastIndexOf('/') + 1);
    const { token } = signer.sign('hls', { mediaId: video.mediaId, runId }, future);
    const segment = await call(t.api(`/media/${video.mediaId}/hls/360p/seg_0.m4s?token=${token}`));
    assert.equal(segment.status, 404, 'a valid token reaches the row (no such segment recorded)');
    assert.equal(segment.body.error.code, 'not_found');
    const ghostToken = signer.sign('hls', { mediaId: GHOST, runId: randomUUID() }, future).token;
    assert.equal((await call(t.api(`/media/${GHOST}/hls/360p/seg_0.m4s?token=${ghostToken}`))).status, 404);
    const part = await call(partUrl.href, { method: 'PUT', body: new Uint8Array(5 * MiB) });
    assert.equal(part.status, 200, part.text);
    assert.equal((await call(storageUrl.href)).status, 200);
  });
});

describe('authentication comes before validation', () => {
  let dev: { id: string; auth: Record<string, string> };
  before(async () => {
    dev = await t.device('order');
  });
  const requests = (): [string, Parameters<typeof call>[1]][] => [
    [t.api('/media'), { method: 'POST', json: { fileName: 1, nonsense: true } }],
    [t.api('/media'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{not json' }],
    [t.api('/media'), { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x' }],
    [t.api('/media/not-a-uuid'), {}],
    [t.api('/media/not-a-uuid/status'), {}],
    [t.api(`/devices/${dev.id}/media?limit=abc`), {}],
    [t.api(`/devices/${dev.id}/media?unknown=1`), {}],
    [t.api('/media/not-a-uuid/complete'), { method: 'POST', json: { parts: 'x' } }],
    [t.api(`/media/${GHOST}/parts`), { method: 'POST', json: { partNumbers: [0] } }],
    [t.api('/media/not-a-uuid/variants/600'), {}],
  ];

  test('anonymous requests with malformed bodies, params or queries get 401', async () => {
    for (const [url, init] of requests()) {
      const anon = await call(url, init);
      assert.equal(anon.status, 401, `anonymous ${init?.method ?? 'GET'} ${url}: ${anon.text}`);
      assert.equal(anon.body.error.code, 'unauthorized');
    }
  });

  test('the same requests authenticated get 400 (or 404, 415)', async () => {
    for (const [url, init] of requests()) {
      const authed = await call(url, { ...init, headers: { ...init?.headers, ...dev.auth } });
      assert.ok([400, 404, 415].includes(authed.status), `authenticated ${url}: ${authed.status}`);
    }
  });
});

describe('a path the router cannot decode', () => {
  test('malformed percent-encoding gets our error shape and the security headers', async () => {
    for (const p of [
      '/api/v1/media/%E0%A4%A',
      '/api/v1/media/%ZZ/status',
      `/api/v1/media/${'a'.repeat(150)}%`,
    ]) {
      const res = await call(`${t.base}${p}`);
      assert.equal(res.status, 400, `${p}: ${res.text}`);
      assert.equal(res.body.error.code, 'validation_failed', p);
      assert.equal(typeof res.body.error.message, 'string');
      assert.equal(typeof res.body.error.requestId, 'string');
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff', p);
      assert.equal(
        res.headers.get('content-security-policy'),
        "default-src 'none'; frame-ancestors 'none'; sandbox",
        p,
      );
      assert.equal(res.headers.get('referrer-policy'), 'no-referrer', p);
    }
  });
  test('a request Node’s parser refuses gets the same headers', async () => {
    const { port } = new URL(t.base);
    const raw = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(port), '127.0.0.1', () => {
        socket.end('GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n');
      });
      let text = '';
      socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
      socket.on('end', () => resolve(text));
      socket.on('error', reject);
    });
    assert.match(raw, /^HTTP\/1\.1 400 /);
    assert.match(raw, /"code":"malformed_request"/);
    assert.match(raw, /\r\nx-content-type-options: nosniff\r\n/i);
    assert.match(
      raw,
      /\r\ncontent-security-policy: default-src 'none'; frame-ancestors 'none'; sandbox\r\n/i,
    );
    assert.match(raw, /\r\nreferrer-policy: no-referrer\r\n/i);
  });
});

describe('signed upload URLs after their device is revoked', () => {
  test('the upload URL, the part URLs and completion refuse a revoked device’s session', async () => {
    const ownerId = 'revoked-owner';
    const owner = await user(ownerId);
    const dev = await t.device('to-revoke', ownerId);
    const single = await session(dev.auth);
    const multi = await session(dev.auth, { bytes: 6 * MiB, sha256: undefined });
    const parts = await call(t.api(`/media/${multi.mediaId}/parts`), {
      method: 'POST',
      headers: dev.auth,
      json: { partNumbers: [1] },
    });
    assert.equal(parts.status, 200, parts.text);
    // A session the owner made naming the device is the owner's: it stays open.
    const usersOwn = await session(owner, { deviceId: dev.id });
    assert.ok(await revokeDevice(t.server.database.pool, dev.id));

    const put = await call(single.upload.url, {
      method: 'PUT',
      headers: { 'content-type': 'image/jpeg' },
      body: JPEG,
    });
    assert.equal(put.status, 403, put.text);
    assert.equal(put.body.error.code, 'device_revoked');
    const part = await call(parts.body.parts[0].url, { method: 'PUT', body: new Uint8Array(5 * MiB) });
    assert.equal(part.status, 403, part.text);
    assert.equal(part.body.error.code, 'device_revoked');
    // Nothing was stored, and the owner cannot complete the session either.
    const listed = await call(t.api(`/media/${multi.mediaId}/parts`), { headers: owner });
    assert.deepEqual(listed.body.parts, []);
    const complete = await call(t.api(`/media/${single.mediaId}/complete`), {
      method: 'POST',
      headers: owner,
    });
    assert.equal(complete.status, 403, complete.text);
    assert.equal(complete.body.error.code, 'device_revoked');
    const media = await call(t.api(`/media/${single.mediaId}`), { headers: owner });
    assert.equal(media.body.status, 'PENDING');
    assert.equal(media.body.sha256Verified, false);

    const own = await call(usersOwn.upload.url, {
      method: 'PUT',
      headers: { 'content-type': 'image/jpeg' },
      body: JPEG,
    });
    assert.equal(own.status, 200, own.text);
    assert.equal(
      (await call(t.api(`/media/${usersOwn.mediaId}/complete`), { method: 'POST', headers: owner })).status,
      200,
    );

    // The same flow for a device that is not revoked goes through (the refusal is the revocation's).
    const live = await t.device('live', ownerId);
    const s = await session(live.auth);
    const ok = await call(s.upload.url, {
      method: 'PUT',
      headers: { 'content-type': 'image/jpeg' },
      body: JPEG,
    });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(
      (await call(t.api(`/media/${s.mediaId}/complete`), { method: 'POST', headers: owner })).status,
      200,
    );
  });
});

describe('rate limits', () => {
  test('the 429 of session creation states the real limit and window', async () => {
    const dev = await t.device('limited');
    let over: Answer | undefined;
    for (let i = 0; i < 10 && !over; i++) {
      const res = await call(t.api('/media'), {
        method: 'POST',
        headers: dev.auth,
        json: { fileName: 'p.jpg', mimeType: 'image/jpeg', bytes: JPEG.length },
      });
      if (res.status === 429) over = res;
      else assert.equal(res.status, 201, res.text);
    }
    assert.ok(over, 'the sixth session within a minute is refused');
    assert.equal(over.body.error.code, 'rate_limited');
    const retryAfter = Number(over.headers.get('retry-after'));
    assert.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After ${retryAfter}`);
    assert.match(over.body.error.message, /^Rate limit exceeded: 5 per minute; retry in \d+ seconds\.$/);
    assert.ok(Number(/in (\d+) seconds/.exec(over.body.error.message)![1]) <= 60);
  });

  describe('failed authentications, throttled per client IP', () => {
    let dev: { id: string; auth: Record<string, string> };
    let url: string;
    const bad = { authorization: 'Bearer mdk_not-a-key' };
    before(async () => {
      dev = await t.device('throttle');
      url = t.api(`/devices/${dev.id}/media`);
    });

    test('successful authentications are not counted', async () => {
      // Successful requests spend nothing: many of them, then still the whole budget of failures.
      for (let i = 0; i < AUTH_FAILURES * 3; i++)
        assert.equal((await from('127.0.0.3', url, dev.auth)).status, 200);
      for (let i = 0; i < AUTH_FAILURES; i++) {
        const res = await from('127.0.0.3', url, bad);
        assert.equal(res.status, 401, `failure ${i + 1}`);
      }
    });

    test('past the budget of failures: 429 with Retry-After', async () => {
      const throttled = await from('127.0.0.3', url, bad);
      assert.equal(throttled.status, 429, throttled.text);
      assert.equal(throttled.body.error.code, 'rate_limited');
      assert.match(throttled.body.error.message, new RegExp(`${AUTH_FAILURES} per minute`));
      const retryAfter = Number(throttled.headers.get('retry-after'));
      assert.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After ${retryAfter}`);
      assert.equal(throttled.headers.get('x-content-type-options'), 'nosniff');
    });

    test('a throttled address gets 429 for any credentials, a JWT too', async () => {
      // A throttled address gets 429 for anything that presents credentials, a JWT too.
      assert.equal((await from('127.0.0.3', url, await user('throttled-user'))).status, 429);
    });

    test('other addresses are not affected', async () => {
      // Other addresses are not affected.
      assert.equal((await from('127.0.0.4', url, bad)).status, 401);
      assert.equal((await from('127.0.0.4', url, dev.auth)).status, 200);
      assert.equal((await call(url, { headers: dev.auth })).status, 200);
    });
  });
});

describe('mediary users token', () => {
  const mint = async (...extra: string[]) =>
    (
      await promisify(execFile)(process.execPath, [BIN, 'users', 'token', '--user', 'cli-user', ...extra], {
        env: { ...process.env, ...t.env },
      })
    ).stdout.trim();
  const me = (token: string) =>
    call(t.api('/users/me/media'), { headers: { authorization: `Bearer ${token}` } });
  test('mints with JWT_ISSUER / JWT_AUDIENCE from the configuration', async () => {
    assert.equal((await me(await mint())).status, 200);
  });

  test('flags override the issuer and audience', async () => {
    assert.equal((await me(await mint('--audience', 'someone-else', '--issuer', ISSUER))).status, 401);
  });

  test('the server requires the claims', async () => {
    // A token without the claims is refused: the configuration is in force.
    assert.equal((await me(await mintUserToken(JWT_SECRET, 'cli-user'))).status, 401);
  });
});
