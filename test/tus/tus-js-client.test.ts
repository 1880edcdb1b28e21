/**
 * tus-js-client (Node) against a real `mediary serve` process, on the local store and on Ceph S3:
 * the server is killed (SIGKILL) in the middle of the upload and started again; the client, left
 * to its own retries, resumes from the offset the new process answers on HEAD — more than zero,
 * so the bytes before the kill were kept — and the media ends READY with the file's sha256.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Upload } from 'tus-js-client';
import { mintUserToken } from '../../src/auth/principals.ts';
import { type Ceph, mediary, startCeph } from '../helpers/ceph.ts';
import { sha256 } from '../helpers/files.ts';
import { MiB } from '../helpers/multipart-suite.ts';
import { embeddedUrl, poolFor, spawnService, type ServiceProcess } from '../helpers/process.ts';
import { JWT_SECRET, tempDir, testEnv } from '../helpers/server.ts';
import { createTestDatabase } from '../helpers/test-postgres.ts';
import { paddedJpeg } from './protocol-suite.ts';

let ceph: Ceph;
const running: ServiceProcess[] = [];
before(async () => {
  ceph = await startCeph();
});
after(async () => {
  for (const svc of running) await svc.kill();
  await ceph?.stop();
});

async function serverEnv(store: Record<string, string>) {
  const dataDir = await tempDir('mediary-tus-client-');
  const db = await createTestDatabase();
  return testEnv(dataDir, {
    ...(db !== undefined ? { DATABASE_URL: db } : {}),
    ...store,
    MULTIPART_PART_SIZE_BYTES: String(5 * MiB),
    TUS_CHECKPOINT_BYTES: String(MiB),
    MAX_IMAGE_BYTES: String(40 * MiB),
    // The SHA-256 on the event loop (the default with one core); the other tus suites run the
    // hashing thread, the default with two cores or more.
    TUS_HASH_THREAD: 'false',
  });
}

async function start(env: Record<string, string>) {
  const svc = await spawnService(env);
  running.push(svc);
  return svc;
}

for (const backend of ['local', 's3'] as const) {
  describe(`tus-js-client on ${backend}`, () => {
    test('killed mid-upload, restarted: resumes from the kept offset and ends READY with the right sha256', async () => {
      const env = await serverEnv(backend === 's3' ? ceph.serverEnv(`mediary-tus-client-${Date.now()}`) : {});
      if (backend === 's3') {
        const setup = await mediary(['storage', 'setup'], env);
        assert.equal(setup.code, 0, setup.stdout + setup.stderr);
      }
      let svc = await start(env);
      const file = await paddedJpeg(24 * MiB + 4321);
      const token = await mintUserToken(JWT_SECRET, `tus-client-${backend}`);
      const offsetsAfterRestart: number[] = [];
      let killed: Promise<void> | undefined;
      // Set in the same tick as the SIGKILL: any HEAD answered after it is the new process's (the
      // old one cannot answer). Waiting for start() to return instead would miss a HEAD that the
      // client's retry sends between the new process listening and its /readyz being polled.
      let killSent = false;
      let uploadUrl = '';

      await new Promise<void>((resolve, reject) => {
        const upload = new Upload(file, {
          endpoint: svc.api('/tus/'),
          headers: { authorization: `Bearer ${token}` },
          metadata: { filename: 'resumed.jpg', filetype: 'image/jpeg' },
          chunkSize: 4 * MiB,
          // The client retries on its own until the server is back, however long its start takes
          // on a loaded machine (the test's own timeout bounds it, not a retry count).
          retryDelays: Array.from({ length: 2400 }, () => 250),
          onProgress(sent) {
            if (killed === undefined && sent >= 10 * MiB) {
              killSent = true;
              killed = (async () => {
                await svc.kill('SIGKILL');
                svc = await start(env);
              })();
            }
          },
          onAfterResponse(req, res) {
            if (killSent && req.getMethod() === 'HEAD') {
              offsetsAfterRestart.push(Number(res.getHeader('Upload-Offset')));
            }
          },
          onError: reject,
          onSuccess: () => {
            uploadUrl = upload.url ?? '';
            resolve();
          },
        });
        upload.start();
      });
      await killed;

      assert.ok(offsetsAfterRestart.length > 0, 'the client asked the restarted server where to resume');
      const resumedAt = offsetsAfterRestart[0]!;
      assert.ok(resumedAt > 0, `bytes before the kill were kept (resumed at ${resumedAt})`);
      assert.ok(resumedAt < file.length, 'the kill landed before the end');

      const mediaId = uploadUrl.split('/').pop()!;
      const url = env.DATABASE_URL ?? embeddedUrl(env.DATA_DIR!, env.EMBEDDED_PG_PORT!);
      const pool = poolFor(url);
      try {
        let row: { status: string; content_sha256: string | null } | undefined;
        for (let i = 0; i < 600; i++) {
          row = (await pool.query('SELECT status, content_sha256 FROM media WHERE id = $1', [mediaId]))
            .rows[0];
          if (row?.status === 'READY' || row?.status === 'FAILED') break;
          await sleep(100);
        }
        assert.equal(row?.status, 'READY', JSON.stringify(row));
        assert.equal(row?.content_sha256, sha256(file));
      } finally {
        await pool.end();
      }
      await svc.kill('SIGTERM');
    });
  });
}
