import assert from 'node:assert/strict';
import { request } from 'node:http';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { call, startTestServer, type TestServer } from '../helpers/server.ts';

let t: TestServer;
before(async () => {
  t = await startTestServer({ MAX_IMAGE_BYTES: '1000000', RATE_LIMIT_SESSIONS_PER_MINUTE: '1000' });
});
after(async () => {
  await t?.close();
});

const valid = { fileName: 'a.jpg', mimeType: 'image/jpeg', bytes: 1000 };

async function mediaCount() {
  return (await t.server.database.pool.query('SELECT count(*)::int AS n FROM media')).rows[0].n as number;
}

/** Raw HTTP for what fetch refuses to send (huge headers). */
function rawStatus(path: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const url = new URL(t.api(path));
    const req = request(
      { host: url.hostname, port: url.port, path: url.pathname, method: 'GET', headers },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** Writes raw bytes on a socket and returns everything the server sends until it closes. */
function rawExchange(bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const url = new URL(t.base);
    const sock = net.connect(Number(url.port), url.hostname, () => sock.write(bytes));
    let got = '';
    sock.setEncoding('utf8');
    sock.on('data', (c: string) => (got += c));
    sock.on('close', () => resolve(got));
    sock.on('error', (err) => (got ? resolve(got) : reject(err)));
  });
}

describe('bad input gets a clear 4xx and changes nothing', () => {
  test('session creation', async () => {
    const dev = await t.device();
    const user = await t.user('bad-input-user');
    const before = await mediaCount();
    const cases: {
      name: string;
      body?: string;
      json?: unknown;
      headers?: Record<string, string>;
      status: number;
      code: string;
      auth?: Record<string, string>;
    }[] = [
      { name: 'malformed JSON', body: '{"fileName": ', status: 400, code: 'invalid_json' },
      { name: 'empty JSON body', body: '', status: 400, code: 'invalid_json' },
      {
        name: 'not JSON',
        body: 'fileName=a',
        headers: { 'content-type': 'text/plain' },
        status: 415,
        code: 'unsupported_media_type',
      },
      { name: 'wrong type', json: { ...valid, bytes: 'many' }, status: 400, code: 'validation_failed' },
      { name: 'fractional bytes', json: { ...valid, bytes: 1.5 }, status: 400, code: 'validation_failed' },
      { name: 'zero bytes', json: { ...valid, bytes: 0 }, status: 400, code: 'validation_failed' },
      { name: 'negative bytes', json: { ...valid, bytes: -1 }, status: 400, code: 'validation_failed' },
      { name: 'unknown field', json: { ...valid, isAdmin: true }, status: 400, code: 'validation_failed' },
      {
        name: 'missing field',
        json: { fileName: 'a.jpg', bytes: 10 },
        status: 400,
        code: 'validation_failed',
      },
      { name: 'array body', json: [valid], status: 400, code: 'validation_failed' },
      { name: 'bad sha256', json: { ...valid, sha256: 'xyz' }, status: 400, code: 'validation_failed' },
      {
        name: 'bad capturedAt',
        json: { ...valid, capturedAt: '2026-13-45' },
        status: 400,
        code: 'validation_failed',
      },
      // Dates the format allowed but JS or Postgres could not hold were 500s (leap second, year 0).
      ...[
        '2016-12-31T23:59:60Z',
        '0000-01-01T00:00:00Z',
        '2026-02-29T10:00:00Z',
        '2026-01-01T24:00:00Z',
      ].flatMap((capturedAt) =>
        [
          { name: `capturedAt ${capturedAt}`, json: { ...valid, capturedAt } },
          { name: `capturedAt ${capturedAt} with messageId`, json: { ...valid, capturedAt, messageId: 'x' } },
        ].map((c) => ({ ...c, status: 400, code: 'validation_failed' })),
      ),
      // Postgres text cannot hold U+0000.
      {
        name: 'NUL in reason',
        json: { ...valid, reason: 'a\u0000b' },
        status: 400,
        code: 'validation_failed',
      },
      {
        name: 'NUL in fileName',
        json: { ...valid, fileName: 'a\u0000.jpg' },
        status: 400,
        code: 'validation_failed',
      },
      {
        name: 'path in messageId',
        json: { ...valid, messageId: '../../etc/passwd' },
        status: 400,
        code: 'validation_failed',
      },
      {
        name: 'slash in cameraId',
        json: { ...valid, cameraId: 'a/b' },
        status: 400,
        code: 'validation_failed',
      },
      {
        name: 'non-UUID deviceId',
        json: { ...valid, deviceId: 'dev-1' },
        status: 400,
        code: 'validation_failed',
      },
      {
        name: 'svg is not allowed',
        json: { ...valid, mimeType: 'image/svg+xml' },
        status: 422,
        code: 'mime_type_not_allowed',
      },
      {
        name: 'html is not allowed',
        json: { ...valid, mimeType: 'text/html' },
        status: 422,
        code: 'mime_type_not_allowed',
      },
      {
        name: 'too large for images',
        json: { ...valid, bytes: 1_000_001 },
        status: 413,
        code: 'file_too_large',
      },
      {
        name: 'mediaType mismatch',
        json: { ...valid, mediaType: 'video' },
        status: 422,
        code: 'media_type_mismatch',
      },
      {
        name: 'oversized body',
        json: { ...valid, reason: 'x'.repeat(70_000) },
        status: 413,
        code: 'body_too_large',
      },
      {
        name: 'messageId from a user',
        json: { ...valid, messageId: 'm1' },
        status: 400,
        code: 'validation_failed',
        auth: user.auth,
      },
      {
        name: 'empty idempotency key',
        json: valid,
        headers: { 'idempotency-key': '' },
        status: 400,
        code: 'validation_failed',
        auth: user.auth,
      },
    ];
    for (const c of cases) {
      const headers = {
        ...(c.auth ?? dev.auth),
        ...(c.json !== undefined ? {} : { 'content-type': 'application/json' }),
        ...c.headers,
      };
      const res = await call(t.api('/media'), { method: 'POST', headers, json: c.json, body: c.body });
      assert.equal(res.status, c.status, `${c.name}: ${res.text}`);
      assert.equal(res.body?.error?.code, c.code, c.name);
      assert.equal(typeof res.body.error.message, 'string', c.name);
      assert.ok(res.body.error.message.length > 5, c.name);
    }
    assert.equal(await mediaCount(), before, 'no row was created by any bad request');
  });

  test('ids, routes, headers', async () => {
    const dev = await t.device();
    for (const path of [
      '/media/not-a-uuid',
      '/media/123/status',
      '/media/x/download',
      "/media/'%20OR%201=1/complete",
    ]) {
      const method = path.endsWith('complete') ? 'POST' : 'GET';
      const res = await call(t.api(path), { method, headers: dev.auth });
      assert.equal(res.status, 400, path);
      assert.equal(res.body.error.code, 'validation_failed');
    }
    const unknown = await call(t.api('/nope'), { headers: dev.auth });
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error.code, 'not_found');
    const badMode = await call(t.api('/media/00000000-0000-4000-8000-000000000000/download?mode=inline'), {
      headers: dev.auth,
    });
    assert.equal(badMode.status, 400);
    assert.equal(await rawStatus('/media', { 'x-big': 'a'.repeat(40_000) }), 431);
    // What Node's HTTP parser refuses gets the same JSON error shape (it was Node's plain text).
    for (const [head, status, code] of [
      ['GET /api/v1/healthz HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n', 400, 'malformed_request'],
      ['GARBAGE\r\n\r\n', 400, 'malformed_request'],
      [
        `GET /api/v1/media HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(40_000)}\r\n\r\n`,
        431,
        'headers_too_large',
      ],
    ] as const) {
      const answer = await rawExchange(head);
      assert.match(answer, new RegExp(`^HTTP/1.1 ${status} `), head.slice(0, 40));
      assert.match(answer, /\r\ncontent-type: application\/json/i);
      assert.match(answer, /\r\nx-content-type-options: nosniff/i);
      const body = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as { error: { code: string } };
      assert.equal(body.error.code, code);
    }
    // Still healthy afterwards.
    assert.equal((await call(`${t.base}/readyz`)).status, 200);
  });

  test('signed storage URLs with garbage parameters', async () => {
    for (const q of [
      '',
      '?expires=1',
      '?expires=abc&ct=a&cd=b&sig=c',
      '?expires=99999999999&ct=image%2Fjpeg&cd=inline&sig=zzz',
    ]) {
      const res = await call(t.api(`/storage/some/key.jpg${q}`));
      assert.ok(res.status === 400 || res.status === 403, `${q} → ${res.status}`);
      assert.equal(typeof res.body.error.code, 'string');
    }
    const traversal = await call(
      t.api('/storage/..%2f..%2fetc%2fpasswd?expires=99999999999&ct=a&cd=b&sig=c'),
    );
    assert.ok([400, 403, 404].includes(traversal.status));
  });

  test('session creation is rate limited per principal with 429 and Retry-After', async () => {
    const limited = await startTestServer({ RATE_LIMIT_SESSIONS_PER_MINUTE: '3' });
    try {
      const a = await limited.device();
      const b = await limited.device();
      const post = (auth: Record<string, string>) =>
        call(limited.api('/media'), { method: 'POST', headers: auth, json: valid });
      for (let i = 0; i < 3; i++) assert.equal((await post(a.auth)).status, 201);
      const over = await post(a.auth);
      assert.equal(over.status, 429);
      assert.equal(over.body.error.code, 'rate_limited');
      assert.ok(Number(over.headers.get('retry-after')) > 0);
      assert.equal((await post(b.auth)).status, 201, 'another principal is not affected');
      // The alias URL shares the bucket: alternating the two does not double the limit.
      const viaAlias = (auth: Record<string, string>) =>
        call(limited.api('/media/upload-session'), { method: 'POST', headers: auth, json: valid });
      assert.equal((await viaAlias(a.auth)).status, 429, 'the alias is limited too');
      const c = await limited.device();
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) statuses.push((await (i % 2 ? viaAlias : post)(c.auth)).status);
      assert.deepEqual(statuses, [201, 201, 201, 429]);
    } finally {
      await limited.close();
    }
  });
});
