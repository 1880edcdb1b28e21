#!/usr/bin/env node
// The whole test suite: `npm test`. Installs the Debian packages the suites need when it can
// (root + apt-get); otherwise fails naming the package. Never skips a suite silently.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';

/** Commands the suites need, and the Debian package that provides each. */
const SYSTEM_DEPS = [
  // S3 tests run a real Ceph RADOS Gateway (../shared/s3/start-ceph-rgw.sh).
  { cmd: 'radosgw', packages: ['ceph-mon', 'ceph-osd', 'radosgw', 'ceph-common', 'curl'] },
  { cmd: 'ceph-mon', packages: ['ceph-mon'] },
  { cmd: 'ceph-osd', packages: ['ceph-osd'] },
  { cmd: 'ceph', packages: ['ceph-common'] },
  { cmd: 'curl', packages: ['curl'] },
];

function have(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

function ensureSystemDeps() {
  const missing = SYSTEM_DEPS.filter((d) => !have(d.cmd));
  if (missing.length === 0) return;
  const pkgs = [...new Set(missing.flatMap((d) => d.packages))];
  const isRoot = process.getuid?.() === 0;
  if (!isRoot || !have('apt-get')) {
    console.error(`Missing system packages for the tests: ${pkgs.join(' ')} (install them with apt-get).`);
    process.exit(1);
  }
  console.log(`Installing system packages for the tests: ${pkgs.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const run = (args) => spawnSync('apt-get', args, { stdio: 'inherit', env }).status === 0;
  if (!run(['update']) || !run(['install', '-y', '--no-install-recommends', ...pkgs])) {
    console.error(`Could not install: ${pkgs.join(' ')}`);
    process.exit(1);
  }
  const still = missing.filter((d) => !have(d.cmd));
  if (still.length > 0) {
    console.error(`Still missing after install: ${still.map((d) => d.cmd).join(' ')}`);
    process.exit(1);
  }
}

function findTests(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) out.push(...findTests(full));
    else if (name.endsWith('.test.ts')) out.push(full);
  }
  return out.sort();
}

ensureSystemDeps();
const filter = process.argv.slice(2);
const files = findTests('test').filter((f) => filter.length === 0 || filter.some((x) => f.includes(x)));
if (files.length === 0) {
  console.error('No test files matched.');
  process.exit(1);
}
const res = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-reporter=spec', ...files],
  { stdio: 'inherit' },
);
process.exit(res.status ?? 1);
