#!/usr/bin/env node
// The whole test suite: `npm test`; `--faults` runs the fault-injection suite instead
// (`npm run test:faults`, files test/faults/**/*.fault.ts, which `npm test` never picks up). Installs the Debian packages the suites need when it can
// (root + apt-get); otherwise fails naming the package. Never skips a suite silently.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';

/** Commands the suites need, and the Debian package that provides each. */
const SYSTEM_DEPS = [
  // S3 tests run a real Ceph RADOS Gateway (../shared/s3/start-ceph-rgw.sh).
  { cmd: 'radosgw', packages: ['ceph-mon', 'ceph-osd', 'radosgw', 'ceph-common', 'curl'] },
  { cmd: 'ceph-mon', packages: ['ceph-mon'] },
  { cmd: 'ceph-osd', packages: ['ceph-osd'] },
  { cmd: 'ceph', packages: ['ceph-common'] },
  { cmd: 'curl', packages: ['curl'] },
  { cmd: 'ffmpeg', packages: ['ffmpeg'] },
  { cmd: 'ffprobe', packages: ['ffmpeg'] },
  // HEIC/HEIF conversion (the worker) and HEIC fixtures made by the tests (heif-enc).
  { cmd: 'heif-convert', packages: ['libheif-examples'] },
  { cmd: 'heif-enc', packages: ['libheif-examples'] },
  // The browser SDK runs in Debian's Chromium, driven by playwright-core (which never downloads one).
  { cmd: 'chromium', packages: ['chromium'] },
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

function findTests(dir, suffix) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) out.push(...findTests(full, suffix));
    else if (name.endsWith(suffix)) out.push(full);
  }
  return out.sort();
}

ensureSystemDeps();
const args = process.argv.slice(2);
const faults = args.includes('--faults');
const filter = args.filter((a) => a !== '--faults');
const files = findTests(faults ? 'test/faults' : 'test', faults ? '.fault.ts' : '.test.ts').filter(
  (f) => filter.length === 0 || filter.some((x) => f.includes(x)),
);
if (files.length === 0) {
  console.error('No test files matched.');
  process.exit(1);
}
// Fault files kill processes, restart databases and load the machine: one at a time.
const res = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', `--test-concurrency=${faults ? 1 : 2}`, '--test-reporter=spec', ...files],
  { stdio: 'inherit', env: faults ? { ...process.env, FAULT_RESULTS_DIR: resultsDir() } : process.env },
);
if (faults) printFaultTable();
process.exit(res.status ?? 1);

/** Each fault file writes rows {scenario, trials, survived, notes} here; we print one table at the end. */
function resultsDir() {
  const dir = path.resolve('.tmp', 'fault-results');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  return dir;
}

function printFaultTable() {
  const dir = path.resolve('.tmp', 'fault-results');
  const rows = [];
  for (const name of readdirSync(dir).sort()) {
    if (name.endsWith('.json')) rows.push(...JSON.parse(readFileSync(path.join(dir, name), 'utf8')));
  }
  if (rows.length === 0) return;
  const head = ['scenario', 'tried', 'survived', 'notes'];
  const cells = rows.map((r) => [r.scenario, String(r.trials), String(r.survived), r.notes ?? '']);
  const width = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c) => c.map((v, i) => v.padEnd(width[i])).join(' | ');
  console.log('\nFault-injection results');
  console.log(line(head));
  console.log(width.map((w) => '-'.repeat(w)).join('-|-'));
  for (const c of cells) console.log(line(c));
}
