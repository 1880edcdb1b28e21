/**
 * The Compose stack runs for real (issue 17 §3). Heavy (images built inside the run's Docker
 * engine), so it is part of `npm run test:faults`, not `npm test`.
 *
 * No registry is reachable here, so the images docker-compose.yml names are built from Debian's
 * packages on the debootstrapped base (test/helpers/dockerd.ts): PostgreSQL (deploy/docker/postgres,
 * for POSTGRES_IMAGE) and a one-node Ceph RADOS Gateway (deploy/docker/ceph-rgw, for MINIO_IMAGE:
 * it takes MinIO's command line, credentials and `mc ready local` check). The engine has no bridge
 * network: deploy/docker/compose.test-host.yml puts every service on the host's network on free
 * ports, and the test drops the s3 service's `ports` from `docker-compose config`'s merged output
 * (host networking refuses port bindings; Compose v1 cannot remove a list in an override). Then,
 * as the README says: `make up` (Debian's docker-compose 1.29, which builds the
 * Mediary image), setup completes, the API turns healthy, the README's curl walk-through runs as
 * written (only the port changes; `mediary` is the command the README gives for the stack) and
 * again (the replay), the worker container processes the upload to READY, the download comes
 * from the S3 container; `make down` removes the containers and keeps the named volumes,
 * `docker-compose down -v` removes those too.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fixture } from '../helpers/files.ts';
import {
  BASE_IMAGE,
  buildImage,
  imageSize,
  loadBaseImage,
  ROOT,
  run,
  useDockerd,
  type Dockerd,
} from '../helpers/dockerd.ts';
import { recordFaultResults } from '../helpers/process.ts';
import { composeMediaryCommand, walkThrough } from '../helpers/readme.ts';
import { call, freePort, tempDir } from '../helpers/server.ts';

const PROJECT = 'mediary-compose-test';
const POSTGRES_IMAGE = 'mediary-postgres:test';
const S3_IMAGE = 'mediary-ceph-rgw:test';
const MEDIARY_IMAGE = 'mediary:compose-test';
const DOTENV = path.join(ROOT, '.env');

let d: Dockerd;
let work: string;
let env: Record<string, string>;
let apiPort = 0;
let s3Port = 0;
let madeDotenv = false;
let up = false;
let walked = false;
let downed = false;
let passed = false;
const sizes: Record<string, number> = {};
/** Seconds each phase took (reported, never asserted). */
const took: Record<string, number> = {};
async function timed<T>(phase: string, f: () => Promise<T>): Promise<T> {
  const t0 = Date.now();
  try {
    return await f();
  } finally {
    took[phase] = Math.round((Date.now() - t0) / 1000);
  }
}

const secret = () => randomBytes(24).toString('hex');
const compose = (args: string[], timeoutMs = 120_000) => run('docker-compose', args, { env, timeoutMs });
const containerOf = async (service: string) => (await compose(['ps', '-q', service])).trim();
const projectLabel = `label=com.docker.compose.project=${PROJECT}`;
const projectVolumes = async () =>
  (await d.docker(['volume', 'ls', '-q', '--filter', projectLabel]))
    .trim()
    .split('\n')
    .filter(Boolean)
    .sort();
const inspect = async (id: string, format: string) =>
  (await d.docker(['inspect', '--format', format, id])).trim();

before(async () => {
  d = await useDockerd();
  await loadBaseImage(d);
  // The stand-ins for postgres:16-bookworm and minio/minio (both mostly apt-get: in parallel).
  await timed('stand-in images', () =>
    Promise.all([
      buildImage(d, POSTGRES_IMAGE, { context: 'deploy/docker/postgres' }),
      buildImage(d, S3_IMAGE, { file: 'deploy/docker/ceph-rgw/Dockerfile' }),
    ]),
  );
  work = await tempDir('mediary-compose-');
  // Debian has Compose v1 (`docker-compose`) only; the README says `docker compose` (v2): this
  // `docker` passes `compose …` to docker-compose and everything else to the real client.
  const docker = (await run('sh', ['-c', 'command -v docker'])).trim();
  await mkdir(path.join(work, 'bin'));
  const shim = path.join(work, 'bin', 'docker');
  await writeFile(
    shim,
    `#!/bin/sh\nif [ "$1" = compose ]; then shift; exec docker-compose "$@"; fi\nexec ${docker} "$@"\n`,
  );
  await chmod(shim, 0o755);
  const [pgPort, s3, api] = [await freePort(), await freePort(), await freePort()];
  apiPort = api;
  s3Port = s3;
  env = {
    ...d.env,
    PATH: `${path.join(work, 'bin')}:${process.env.PATH ?? ''}`,
    COMPOSE_FILE: `${path.join(ROOT, 'docker-compose.yml')}:${path.join(ROOT, 'deploy/docker/compose.test-host.yml')}`,
    COMPOSE_PROJECT_NAME: PROJECT,
    // The variables of .env.example, with secrets of this run (the shell's win over .env).
    POSTGRES_PASSWORD: secret(),
    S3_ACCESS_KEY_ID: `MEDIARY${randomBytes(6).toString('hex').toUpperCase()}`,
    S3_SECRET_ACCESS_KEY: secret(),
    S3_BUCKET: 'media',
    S3_PORT: String(s3),
    SIGNING_SECRET: secret(),
    JWT_SECRET: secret(),
    MEDIARY_PORT: String(api),
    PUBLIC_URL: `http://localhost:${api}`,
    LOG_LEVEL: 'info',
    CORS_ORIGINS: '',
    PROCESSING_CONCURRENCY: '2',
    // compose.test-host.yml's.
    POSTGRES_PORT: String(pgPort),
    BASE_IMAGE,
    POSTGRES_IMAGE,
    MINIO_IMAGE: S3_IMAGE,
    MEDIARY_IMAGE,
  };
  // docker-compose.yml with the override, merged and interpolated, less the port bindings.
  const merged = await run(
    'docker-compose',
    [
      '-f',
      path.join(ROOT, 'docker-compose.yml'),
      '-f',
      path.join(ROOT, 'deploy/docker/compose.test-host.yml'),
      'config',
    ],
    { env: { ...env, COMPOSE_FILE: '' } },
  );
  const stack = path.join(work, 'docker-compose.yml');
  await run('python3', ['-c', DROP_PORTS, stack], { input: merged });
  env.COMPOSE_FILE = stack;
});

/** Reads a Compose file on stdin, writes it to argv[1] without any service's `ports`. */
const DROP_PORTS = `import sys, yaml
d = yaml.safe_load(sys.stdin)
for s in d["services"].values(): s.pop("ports", None)
yaml.safe_dump(d, open(sys.argv[1], "w"))`;

after(async () => {
  if (env) {
    if (!passed) {
      const logs = await compose(['logs', '--no-color', '--tail', '60']).catch(String);
      console.log(`compose logs:\n${logs}`);
    }
    await compose(['down', '-v', '--remove-orphans'], 180_000).catch((e: unknown) => console.error(e));
  }
  if (madeDotenv) await rm(DOTENV, { force: true });
  if (work) await rm(work, { recursive: true, force: true });
  await d?.stop();
  if (passed) {
    const mb = (tag: string) => `${(sizes[tag]! / 1e6).toFixed(0)} MB`;
    await recordFaultResults('compose', [
      {
        scenario: 'compose stack up, README walk-through, worker READY, down -v',
        trials: 1,
        survived: 1,
        notes:
          `images: mediary ${mb(MEDIARY_IMAGE)}, postgres ${mb(POSTGRES_IMAGE)}, ceph-rgw ${mb(S3_IMAGE)}; ` +
          Object.entries(took)
            .map(([k, v]) => `${k} ${v} s`)
            .join(', '),
      },
    ]);
  }
});

test('make up brings the stack up: setup exits 0, Postgres, S3 and the API turn healthy, the worker runs', async () => {
  madeDotenv = !existsSync(DOTENV);
  // As the README says: `make up` (copies .env.example to .env if there is none; builds the image).
  await timed('make up', () => run('make', ['up'], { env, timeoutMs: 1_800_000 }));
  for (const tag of [MEDIARY_IMAGE, POSTGRES_IMAGE, S3_IMAGE]) sizes[tag] = await imageSize(d, tag);

  // The one-shot setup (migrations, bucket and CORS) exited 0; the API's health check turns healthy.
  const setup = await containerOf('setup');
  assert.equal(await inspect(setup, '{{.State.Status}} {{.State.ExitCode}}'), 'exited 0');
  const api = await containerOf('api');
  const deadline = Date.now() + 180_000;
  const healthFrom = Date.now();
  for (;;) {
    const health = await inspect(api, '{{.State.Health.Status}}');
    if (health === 'healthy') break;
    assert.notEqual(health, 'unhealthy', await compose(['logs', '--no-color', '--tail', '40', 'api']));
    assert.ok(Date.now() < deadline, `api health: ${health}`);
    await sleep(1000);
  }
  took['api healthy after make up'] = Math.round((Date.now() - healthFrom) / 1000);
  for (const service of ['postgres', 's3']) {
    assert.equal(await inspect(await containerOf(service), '{{.State.Health.Status}}'), 'healthy', service);
  }
  assert.equal(await inspect(await containerOf('worker'), '{{.State.Status}}'), 'running');
  up = true;
});

test('the README walk-through, run as written against the stack, uploads a photo that the worker container processes to READY', async () => {
  assert.ok(up, 'the stack is up');
  // The walk-through, taken from README.md: the port is the test's; `mediary` is the command the
  // README gives for the stack (run in the API container).
  const block = walkThrough();
  const step2 = block.indexOf('# 2.');
  assert.ok(step2 > 0, 'the walk-through has a step 2');
  const port = (s: string) => s.replaceAll('localhost:8080', `localhost:${apiPort}`);
  const photo = fixture('cameras/Canon_40D.jpg');
  await writeFile(path.join(work, 'photo.jpg'), photo);
  const script = [
    'set -eo pipefail',
    port(block),
    'echo "FIRST=$ID"',
    'echo "KEY=$KEY"',
    port(block.slice(step2)),
    'echo "SECOND=$ID"',
  ].join('\n');
  const out = await timed('walk-through', () =>
    run('bash', ['-c', script], {
      cwd: work,
      env: { ...env, MEDIARY: composeMediaryCommand(block) },
      timeoutMs: 300_000,
    }),
  );
  const id = /FIRST=(\S+)/.exec(out)?.[1] ?? '';
  const key = /KEY=(\S+)/.exec(out)?.[1] ?? '';
  assert.match(id, /^[0-9a-f-]{36}$/, `the walk-through created a media:\n${out}`);
  assert.equal(/SECOND=(\S+)/.exec(out)?.[1], id, 'the replay answers the same media');
  assert.deepEqual(await readFile(path.join(work, 'copy.jpg')), photo, 'the download is the photo');
  assert.deepEqual(await readFile(path.join(work, 'head.bin')), photo.subarray(0, 100), 'the range');

  // The bytes are in the S3 container: the download redirects to a URL signed for it.
  const auth = { authorization: `Bearer ${key}` };
  const deadline = Date.now() + 120_000;
  const base = `http://127.0.0.1:${apiPort}/api/v1`;
  const download = await fetch(`${base}/media/${id}/download`, { headers: auth, redirect: 'manual' });
  assert.ok(download.status >= 300 && download.status < 400, `download: ${download.status}`);
  assert.match(download.headers.get('location') ?? '', new RegExp(`^http://localhost:${s3Port}/media/`));

  // The API runs no worker (WORKER_ENABLED=false): READY is the worker container's doing.
  for (;;) {
    const m = await call(`${base}/media/${id}`, { headers: auth });
    assert.equal(m.status, 200, m.text);
    if (m.body.status === 'READY') break;
    assert.notEqual(m.body.status, 'FAILED', m.text);
    assert.ok(Date.now() < deadline, `still ${m.body.status}`);
    await sleep(500);
  }
  const jobs = async (service: string) =>
    (await d.docker(['logs', await containerOf(service)]))
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { mediaId?: string; outcome?: string; msg?: string })
      .filter((l) => l.mediaId === id && l.msg === 'job finished');
  assert.deepEqual(
    (await jobs('worker')).map((l) => l.outcome),
    ['completed'],
    'the worker container ran the job',
  );
  assert.deepEqual(await jobs('api'), [], 'the API container ran no job');
  walked = true;
});

test('make down removes the containers and keeps the named volumes', async () => {
  assert.ok(up, 'the stack is up');
  await run('make', ['down'], { env, timeoutMs: 180_000 });
  assert.equal((await d.docker(['ps', '-aq', '--filter', projectLabel])).trim(), '', 'no container left');
  // api-data is the API's /data: tus uploads in progress, resumable after the next `make up`.
  assert.deepEqual(await projectVolumes(), [
    `${PROJECT}_api-data`,
    `${PROJECT}_postgres-data`,
    `${PROJECT}_s3-data`,
  ]);
  downed = true;
});

test('docker-compose down -v removes the named volumes', async () => {
  assert.ok(downed, 'make down ran');
  await compose(['down', '-v'], 180_000);
  assert.deepEqual(await projectVolumes(), [], 'no named volume left');
  passed = walked;
});
