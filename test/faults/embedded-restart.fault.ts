/**
 * The embedded Postgres dies under a running `mediary serve` (SIGKILL of the postmaster: the OOM
 * killer, a crash). Before the fix the API answered 503 for ever while /healthz stayed 200, so no
 * supervisor restarted anything. Now the server restarts its database (with backoff) and uploads
 * work again, in the same process.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fixture } from '../helpers/files.ts';
import { embeddedUrl, makeDevices, poolFor, spawnService, type ServiceProcess } from '../helpers/process.ts';
import { tempDir, testEnv } from '../helpers/server.ts';

const JPEG = fixture('cameras/Canon_40D.jpg');
const JPEG_SHA = createHash('sha256').update(JPEG).digest('hex');

let dataDir: string;
let svc: ServiceProcess;
let auth: Record<string, string>;
let pgPort: string;

before(async () => {
  dataDir = await tempDir('mediary-fault-embedded-');
  const env = await testEnv(dataDir, { LOG_LEVEL: 'warn', WORKER_ENABLED: 'false' });
  pgPort = env.EMBEDDED_PG_PORT!;
  svc = await spawnService(env);
  const db = poolFor(embeddedUrl(dataDir, pgPort));
  auth = (await makeDevices(db, 1, 'restart'))[0]!.auth;
  await db.end();
});

after(async () => {
  await svc?.kill('SIGTERM');
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

const postmasterPid = () =>
  Number(readFileSync(path.join(dataDir, 'postgres', 'postmaster.pid'), 'utf8').split('\n')[0]);

/** Session, bytes, completion: the status of the first step that did not succeed, else 200. */
async function upload(messageId: string): Promise<number> {
  const res = await fetch(svc.api('/media'), {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({
      fileName: 'a.jpg',
      mimeType: 'image/jpeg',
      bytes: JPEG.length,
      sha256: JPEG_SHA,
      messageId,
    }),
  });
  if (res.status !== 201) return res.status;
  const s = (await res.json()) as { mediaId: string; upload: { url: string } };
  const put = await fetch(s.upload.url, {
    method: 'PUT',
    headers: { 'content-type': 'image/jpeg' },
    body: new Uint8Array(JPEG),
  });
  await put.arrayBuffer();
  if (put.status !== 200) return put.status;
  const done = await fetch(svc.api(`/media/${s.mediaId}/complete`), { method: 'POST', headers: auth });
  await done.arrayBuffer();
  return done.status;
}

test('a SIGKILLed embedded postmaster is restarted and uploads work again in the same process', async () => {
  assert.equal(await upload('before'), 200);
  for (let round = 0; round < 2; round++) {
    const pid = postmasterPid();
    process.kill(pid, 'SIGKILL');
    // While it is down: a 503 with Retry-After, never a 500.
    let status = 0;
    for (let i = 0; i < 300 && status !== 200; i++) {
      status = await upload(`after-${round}-${i}`);
      if (status !== 200) {
        assert.equal(status, 503, `while the database restarts: ${status}`);
        await sleep(200);
      }
    }
    assert.equal(status, 200, `round ${round}: uploads work again after the restart`);
    assert.notEqual(postmasterPid(), pid, 'a new postmaster runs');
  }
  assert.equal(svc.child.exitCode, null, 'the service process is still the same one');
  assert.equal((await fetch(`${svc.base}/readyz`)).status, 200);
});
