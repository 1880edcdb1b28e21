/**
 * A hung Postgres (paused, or a network that stops forwarding): the server reaches its database
 * through a TCP proxy the test freezes. Requests that need the database must answer
 * `503 service_unavailable` with Retry-After within the configured timeouts (not hang for as long
 * as the database does), /readyz must fail fast, and everything works again once it thaws.
 */
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startEmbedded, type EmbeddedDatabase } from '../../src/db/embedded.ts';
import { createLogger } from '../../src/log.ts';
import { call, freePort, startTestServer, tempDir, type TestServer } from '../helpers/server.ts';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.ts';

const logger = createLogger('silent');
// Far below the 45 s the database stays hung in the report, far above the configured timeouts
// (1 s connect, 2 s statement): an answer later than this means the request waited for the database.
const ANSWER_WITHIN_MS = 15_000;

let dir: string;
let database: EmbeddedDatabase;
let proxy: TcpProxy;
let t: TestServer;

before(async () => {
  dir = await tempDir('mediary-fault-hung-pg-');
  database = await startEmbedded({ dir: path.join(dir, 'pg'), port: await freePort(), logger });
  const target = new URL(database.url);
  proxy = await startTcpProxy(Number(target.port));
  target.port = String(proxy.port);
  t = await startTestServer({
    DATABASE_URL: target.toString(),
    DATABASE_CONNECT_TIMEOUT_MS: '1000',
    DATABASE_STATEMENT_TIMEOUT_MS: '2000',
    // The device key must be looked up in the (hung) database on every request.
    DEVICE_KEY_CACHE_SECONDS: '0',
  });
});

after(async () => {
  proxy?.thaw();
  await t?.close();
  await proxy?.close();
  await database?.stop();
  await rm(dir, { recursive: true, force: true });
});

const session = (auth: Record<string, string>, n: number) =>
  call(t.api('/media'), {
    method: 'POST',
    headers: auth,
    json: { fileName: 'a.jpg', mimeType: 'image/jpeg', bytes: 100, messageId: `m-${n}` },
  });

test('a hung database gives 503 + Retry-After within seconds, /readyz fails fast, and service resumes after', async () => {
  const dev = await t.device('hung');
  const user = await t.user('hung-user');
  assert.equal((await session(dev.auth, 0)).status, 201);
  assert.equal((await call(`${t.base}/readyz`)).status, 200);

  proxy.freeze();
  try {
    // More concurrent requests than the pool has connections, so some wait for a connection.
    const requests: Promise<{ what: string; status: number; retryAfter: string | null }>[] = [];
    for (let i = 0; i < 30; i++) {
      const what = ['POST /media', 'GET device list', 'GET user list', 'GET /readyz'][i % 4]!;
      const url =
        what === 'POST /media'
          ? undefined
          : what === 'GET device list'
            ? t.api(`/devices/${dev.id}/media`)
            : what === 'GET user list'
              ? t.api('/users/me/media')
              : `${t.base}/readyz`;
      requests.push(
        (async () => {
          const signal = AbortSignal.timeout(ANSWER_WITHIN_MS);
          const res = url
            ? await fetch(url, { headers: what === 'GET user list' ? user.auth : dev.auth, signal })
            : await fetch(t.api('/media'), {
                method: 'POST',
                signal,
                headers: { ...dev.auth, 'content-type': 'application/json' },
                body: JSON.stringify({
                  fileName: 'a.jpg',
                  mimeType: 'image/jpeg',
                  bytes: 100,
                  messageId: `h-${i}`,
                }),
              });
          const body = (await res.json()) as { error?: { code: string } };
          assert.equal(res.status, 503, `${what}: ${JSON.stringify(body)}`);
          assert.equal(body.error?.code, 'service_unavailable', what);
          return { what, status: res.status, retryAfter: res.headers.get('retry-after') };
        })(),
      );
    }
    const answers = await Promise.all(requests);
    for (const a of answers) assert.ok(Number(a.retryAfter) > 0, `${a.what} has Retry-After`);

    // /readyz alone, while the pool may hold no free connection: still a quick 503.
    const ready = await fetch(`${t.base}/readyz`, { signal: AbortSignal.timeout(ANSWER_WITHIN_MS) });
    assert.equal(ready.status, 503);
  } finally {
    proxy.thaw();
  }

  // Connections that timed out were dropped, so the pool recovers by itself.
  let last = 0;
  for (let i = 0; i < 100 && last !== 201; i++) {
    last = (await session(dev.auth, 1000 + i)).status;
    if (last !== 201) await sleep(200);
  }
  assert.equal(last, 201, 'sessions are created again after the database thawed');
  assert.equal((await call(`${t.base}/readyz`)).status, 200);
  assert.equal((await call(t.api('/users/me/media'), { headers: user.auth })).status, 200);
});
