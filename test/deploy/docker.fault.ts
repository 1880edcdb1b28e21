/**
 * The container image builds and runs here (issue 17 §2). Heavy (debootstrap once per machine,
 * apt-get and `npm ci` inside the build, ~5–15 min), so it is part of `npm run test:faults`, not
 * `npm test`.
 *
 * The run's Docker engine (test/helpers/dockerd.ts; shared with compose.fault.ts, so a build the
 * other file made is a cache hit here) imports the base image (Debian from debootstrap + Node 20
 * from npm), builds the real Dockerfile on it, and runs `mediary serve` from
 * the image with `--network host` against the run's Postgres: /readyz answers, the health check
 * turns healthy, the process is not root, the image's own ffmpeg and heif-convert are the ones
 * used, and one upload is processed to READY. The daemon is stopped and its mounts removed at the end.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { fixture, sha256 } from '../helpers/files.ts';
import { buildImage, imageSize, run, useDockerd, type Dockerd } from '../helpers/dockerd.ts';
import { makeDevices, poolFor, recordFaultResults } from '../helpers/process.ts';
import { call, freePort, JWT_SECRET } from '../helpers/server.ts';
import { createTestDatabase } from '../helpers/test-postgres.ts';

const IMAGE = 'mediary:test';
let d: Dockerd;
let db: pg.Pool;
let imageBytes = 0;

before(async () => {
  d = await useDockerd();
  await buildImage(d, IMAGE);
  imageBytes = await imageSize(d, IMAGE);
});

after(async () => {
  await db?.end();
  await d?.docker(['rm', '-f', 'mediary-serve']).catch(() => undefined);
  await d?.stop();
  if (imageBytes > 0) {
    await recordFaultResults('docker', [
      {
        scenario: 'docker image builds and serves',
        trials: 1,
        survived: 1,
        notes: `image ${(imageBytes / 1e6).toFixed(0)} MB`,
      },
    ]);
  }
});

test('mediary serve from the image: ready, healthy, not root, system tools, one upload processed', async () => {
  const cloned = await createTestDatabase();
  assert.ok(cloned, 'needs the run’s Postgres (run through scripts/test.mjs)');
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const env = {
    DATABASE_URL: cloned,
    HOST: '127.0.0.1',
    PORT: String(port),
    PUBLIC_URL: base,
    JWT_SECRET,
  };
  await d.docker([
    'run',
    '-d',
    '--name',
    'mediary-serve',
    '--network',
    'host',
    ...Object.entries(env).flatMap(([k, v]) => ['-e', `${k}=${v}`]),
    IMAGE,
    'serve',
  ]);
  const deadline = Date.now() + 120_000;
  for (;;) {
    const ok = await fetch(`${base}/readyz`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) break;
    if (Date.now() > deadline) {
      // The container's stderr is the docker client's stderr: ask for both, and for its state.
      const said = await run('sh', ['-c', 'docker ps -a; docker logs --tail 50 mediary-serve 2>&1'], {
        env: d.env,
      }).catch(String);
      assert.fail(`not ready in 120 s:\n${said}`);
    }
    await sleep(250);
  }
  assert.equal((await d.docker(['exec', 'mediary-serve', 'id', '-u'])).trim(), '10001');
  // PID 1 is tini, mediary runs under it.
  assert.match(await d.docker(['exec', 'mediary-serve', 'cat', '/proc/1/cmdline']), /tini/);

  db = poolFor(cloned);
  const [dev] = await makeDevices(db, 1, 'docker');
  const jpeg = fixture('cameras/Canon_40D.jpg');
  const s = await call(`${base}/api/v1/media`, {
    method: 'POST',
    headers: dev!.auth,
    json: { fileName: 'p.jpg', mimeType: 'image/jpeg', bytes: jpeg.length, sha256: sha256(jpeg) },
  });
  assert.equal(s.status, 201, s.text);
  const put = await call(s.body.upload.url, {
    method: 'PUT',
    headers: { 'content-type': 'image/jpeg' },
    body: jpeg,
  });
  assert.equal(put.status, 200, put.text);
  const id = s.body.mediaId as string;
  const done = await call(`${base}/api/v1/media/${id}/complete`, { method: 'POST', headers: dev!.auth });
  assert.equal(done.status, 200, done.text);
  for (;;) {
    const st = await call(`${base}/api/v1/media/${id}/status`, { headers: dev!.auth });
    if (st.body.status === 'READY') break;
    assert.notEqual(st.body.status, 'FAILED', st.text);
    assert.ok(Date.now() < deadline + 60_000, `still ${st.body.status}`);
    await sleep(200);
  }

  const logs = await d.docker(['logs', 'mediary-serve']);
  const tools = logs
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l))
    .find((l) => /^processing tools/.test(l.msg ?? ''));
  assert.ok(tools, logs.slice(-3000));
  assert.equal(tools.ffmpeg?.source, 'system');
  assert.deepEqual(tools.heif, { decoder: 'heif-convert', source: 'system' });

  // The HEALTHCHECK (on /readyz) reports healthy within its start period and a few intervals.
  for (;;) {
    const health = (
      await d.docker(['inspect', '--format', '{{.State.Health.Status}}', 'mediary-serve'])
    ).trim();
    if (health === 'healthy') break;
    assert.notEqual(health, 'unhealthy');
    assert.ok(Date.now() < deadline + 120_000, `health: ${health}`);
    await sleep(1000);
  }
  // SIGTERM through tini: a clean exit (code 0), not a kill.
  await d.docker(['stop', '--time', '30', 'mediary-serve'], { timeoutMs: 60_000 });
  assert.equal((await d.docker(['inspect', '--format', '{{.State.ExitCode}}', 'mediary-serve'])).trim(), '0');
});
