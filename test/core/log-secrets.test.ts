/**
 * Secrets never reach the logs: a running `mediary serve` (debug level) goes through a whole
 * upload (device key, signed upload and download URLs, a user JWT) and some refused requests; no
 * log line may hold the key, a signature, the token or the signing secret, and no error body a
 * path of the data directory. (SECURITY.md "Secrets"; the review checked it by hand.)
 */
import assert from 'node:assert/strict';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type pg from 'pg';
import { mintUserToken } from '../../src/auth/principals.ts';
import { fixture, sha256 } from '../helpers/files.ts';
import {
  embeddedUrl,
  makeDevices,
  poolFor,
  spawnService,
  stopOrphanPostgres,
  type ServiceProcess,
} from '../helpers/process.ts';
import { call, JWT_SECRET, tempDir, testEnv } from '../helpers/server.ts';

const JPEG = fixture('cameras/Canon_40D.jpg');
const lines: string[] = [];
let dataDir: string;
let svc: ServiceProcess;
let db: pg.Pool;

before(async () => {
  dataDir = await tempDir('mediary-log-secrets-');
  const env = await testEnv(dataDir, { LOG_LEVEL: 'debug', WORKER_ENABLED: 'false' });
  svc = await spawnService(env, { onStdout: (l) => lines.push(l) });
  db = poolFor(embeddedUrl(dataDir, env.EMBEDDED_PG_PORT!));
});
after(async () => {
  await svc?.kill('SIGTERM');
  await db?.end();
  if (dataDir) {
    await stopOrphanPostgres(dataDir);
    await rm(dataDir, { recursive: true, force: true });
  }
});

describe('an upload, a download and refusals, logged', () => {
  let dev: Awaited<ReturnType<typeof makeDevices>>[number] | undefined;
  let token: string;
  let s: Awaited<ReturnType<typeof call>>;
  let dl: Awaited<ReturnType<typeof call>>;
  let refused: Awaited<ReturnType<typeof call>>[];
  let uploadUrl: URL;
  let downloadUrl: URL;
  let id: string;
  let log: string;
  before(async () => {
    [dev] = await makeDevices(db, 1, 'secrets');
    token = await mintUserToken(JWT_SECRET, 'log-user');
    s = await call(svc.api('/media'), {
      method: 'POST',
      headers: dev!.auth,
      json: { fileName: 'p.jpg', mimeType: 'image/jpeg', bytes: JPEG.length, sha256: sha256(JPEG) },
    });
    assert.equal(s.status, 201, s.text);
    uploadUrl = new URL(s.body.upload.url as string);
    id = s.body.mediaId as string;
    assert.equal(
      (
        await call(uploadUrl.toString(), {
          method: 'PUT',
          headers: { 'content-type': 'image/jpeg' },
          body: JPEG,
        })
      ).status,
      200,
    );
    assert.equal(
      (await call(svc.api(`/media/${id}/complete`), { method: 'POST', headers: dev!.auth })).status,
      200,
    );
    dl = await call(svc.api(`/media/${id}/download`), { headers: dev!.auth, redirect: 'manual' });
    downloadUrl = new URL(dl.headers.get('location')!);
    assert.equal((await call(downloadUrl.toString())).status, 200);
    await call(svc.api('/users/me/media'), { headers: { authorization: `Bearer ${token}` } });

    // Refusals, which log at warn level with what went wrong.
    refused = [
      await call(svc.api(`/media/${id}`), { headers: { authorization: `${dev!.auth.authorization}x` } }),
      await call(svc.api('/users/me/media'), { headers: { authorization: `Bearer ${token}x` } }),
      await call(`${uploadUrl.toString().replace(/sig=[^&]+/, 'sig=AAAA')}`, { method: 'PUT', body: JPEG }),
      await call(downloadUrl.toString().replace(/expires=\d+/, 'expires=1')),
      await call(svc.api(`/media/${id}/complete`), {
        method: 'POST',
        headers: { authorization: 'Bearer mdk_nope' },
      }),
    ];
    // Logs are written asynchronously: stopping flushes them all; then read the pipe to its end.
    await svc.kill('SIGTERM');
    if (!svc.child.stdout!.closed) await new Promise((r) => svc.child.stdout!.once('close', r));
    log = lines.join('\n');
  });

  test('the refusals are 401 and 403', () => {
    assert.deepEqual(
      refused.map((r) => r.status),
      [401, 401, 403, 403, 401],
    );
  });

  test('no data path in error bodies', () => {
    for (const r of [s, dl, ...refused]) assert.ok(!r.text.includes(dataDir), `no data path in ${r.text}`);
  });

  test('requests and refusals are logged', () => {
    assert.ok(
      log.includes('request completed') && log.includes('request rejected'),
      'requests and refusals were logged',
    );
    assert.ok(log.includes(id), 'requests were logged');
  });

  test('no key, signature, token or signing secret in the logs', async () => {
    const secret = (await readFile(path.join(dataDir, 'signing.secret'), 'utf8')).trim();
    const secrets: Record<string, string> = {
      'device key': dev!.key,
      'device key, tail': dev!.key.slice(-20),
      'user token': token,
      'token signature': token.split('.')[2]!,
      'upload signature': uploadUrl.searchParams.get('sig')!,
      'download signature': downloadUrl.searchParams.get('sig')!,
      'signing secret': secret,
    };
    for (const [what, value] of Object.entries(secrets)) {
      assert.ok(value.length >= 16, `${what} is a real secret`);
      assert.ok(!log.includes(value), `${what} appears in the log`);
    }
    assert.doesNotMatch(log, /[?&]sig=/, 'no signed query string in the log');
  });
});
