#!/usr/bin/env node
// `npm run build:server [-- --out DIR]` (run by `npm ci`/`npm install` in a checkout through
// `prepare`, and by `npm pack`): compiles every file under src/ to JavaScript in lib/ (same
// layout and depth, so paths that modules resolve relative to themselves — ../../proto, the
// migrations — hold for both), copies the files that are not TypeScript (SQL migrations, any
// other asset) beside them, and writes lib/.build-stamp last. Type checking is `npm run lint`'s
// job: the build only strips types (`noCheck`), so it compiles whatever src/ holds and never fails
// an install over a type error. The new tree is built beside lib/ and swapped in by two renames,
// so processes running from lib/ meanwhile (tests, a server) never see it half-written.
// bin/mediary.mjs runs lib/ when it is there and, in a checkout, no file under src/ is newer than
// the stamp; otherwise the TypeScript sources through tsx.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const src = path.join(root, 'src');
const outArg = process.argv.indexOf('--out');
const out = outArg > 0 ? path.resolve(process.argv[outArg + 1]) : path.join(root, 'lib');
const next = `${out}.next-${process.pid}`;

const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
if (!existsSync(tsc)) {
  // An install without development dependencies (`npm ci --omit=dev`): keep what was built.
  console.error(
    `mediary: typescript is not installed; lib/ ${existsSync(out) ? 'kept as it is' : 'not built'}`,
  );
  process.exit(0);
}
const r = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json'), '--outDir', next], {
  stdio: 'inherit',
});
if (r.status !== 0) {
  rmSync(next, { recursive: true, force: true });
  process.exit(r.status ?? 1);
}

let copied = 0;
for (const entry of readdirSync(src, { recursive: true, withFileTypes: true })) {
  if (!entry.isFile() || /\.(ts|tsx|mts|cts)$/.test(entry.name)) continue;
  const from = path.join(entry.parentPath, entry.name);
  const to = path.join(next, path.relative(src, from));
  mkdirSync(path.dirname(to), { recursive: true });
  copyFileSync(from, to);
  copied++;
}
writeFileSync(path.join(next, '.build-stamp'), `${new Date().toISOString()}\n`);
const old = `${out}.old-${process.pid}`;
if (existsSync(out)) renameSync(out, old);
renameSync(next, out);
rmSync(old, { recursive: true, force: true });
console.error(`mediary: compiled src/ to ${path.relative(root, out) || out} (${copied} other files copied)`);
