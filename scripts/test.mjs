#!/usr/bin/env node
// The whole test suite: `npm test`; `--faults` runs the fault-injection suite instead
// (`npm run test:faults`, files test/**/*.fault.ts, which `npm test` never picks up). Installs the Debian packages the suites need when it can
// (root + apt-get), printing their names first; otherwise fails naming the package. Never skips a suite silently.
//
// One Ceph RADOS Gateway (scripts/ceph-rgw.sh) and one PostgreSQL with a migrated template database
// serve the whole run (test/helpers/run-services.ts): each test server gets a clone of the template
// and each file buckets of its own; the container tests share one Docker engine. All are stopped
// when the run ends, also on failure or Ctrl-C.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { register } from 'tsx/esm/api';

/** Commands the suites need, and the Debian package that provides each. */
const SYSTEM_DEPS = [
  // S3 tests run a real Ceph RADOS Gateway (scripts/ceph-rgw.sh).
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
  // The container image and Compose file (test/deploy/): Docker's engine run by the test itself,
  // Debian root filesystems for the base image, and Compose's validator.
  { cmd: 'dockerd', packages: ['docker.io'] },
  { cmd: 'debootstrap', packages: ['debootstrap'] },
  { cmd: 'docker-compose', packages: ['docker-compose'] },
  // …and `make up` / `make down`, as the README says (test/deploy/compose.fault.ts).
  { cmd: 'make', packages: ['make'] },
  // The alert rules (deploy/prometheus/) are checked and unit-tested by promtool (test/metrics/).
  { cmd: 'promtool', packages: ['prometheus'] },
  // …and a real Prometheus server scrapes a running Mediary with those rules loaded.
  { cmd: 'prometheus', packages: ['prometheus'] },
  // Malware scanning (test/scan/): ClamAV's daemon, run by the test with its own signatures.
  { cmd: 'clamd', packages: ['clamav-daemon'] },
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
  console.log(`Installing the Debian packages the tests need (as root, with apt-get): ${pkgs.join(' ')}`);
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
const files = findTests('test', faults ? '.fault.ts' : '.test.ts').filter(
  (f) => filter.length === 0 || filter.some((x) => f.includes(x)),
);
if (files.length === 0) {
  console.error('No test files matched.');
  process.exit(1);
}
// The run's Ceph and template database, only if a selected file asks for them.
const sources = files.map((f) => readFileSync(f, 'utf8'));
register();
const { startRunServices } = await import('../test/helpers/run-services.ts');
let services;
let stopping;
let child;
const stopAll = () =>
  (stopping ??= (services?.stop() ?? Promise.resolve()).catch((err) =>
    console.error(`Stopping the test services failed: ${err}`),
  ));
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    // Ctrl-C reaches the test processes too; a signal sent to us alone is passed on.
    if (child && child.exitCode === null) child.kill(sig);
    else void stopAll().then(() => process.exit(130));
  });
}
let status = 1;
const skipsFile = path.resolve('.tmp', 'skipped-tests.txt');
mkdirSync(path.dirname(skipsFile), { recursive: true });
rmSync(skipsFile, { force: true });
try {
  services = startRunServices({
    // The fault suite stops and kills its gateway: there each file keeps a Ceph of its own.
    ceph: !faults && sources.some((s) => s.includes('startCeph(')),
    postgres: sources.some((s) => s.includes('startTestServer(') || s.includes('createTestDatabase(')),
    // One Docker engine for the run's container tests (test/deploy/*.fault.ts): images built once.
    dockerd: sources.some((s) => s.includes('useDockerd(')),
  });
  const env = await services.ready;
  if (stopping) {
    await stopping;
    process.exit(130);
  }
  // Fault files kill processes, restart databases and load the machine: one at a time.
  child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      '--test',
      `--test-concurrency=${faults ? 1 : 2}`,
      // A file whose setup failed half-way (one of two servers started) must end, reported as failed,
      // not keep the run waiting on the handles it could not close.
      '--test-force-exit',
      '--test-reporter=spec',
      '--test-reporter-destination=stdout',
      `--test-reporter=${path.resolve('scripts/skip-reporter.mjs')}`,
      `--test-reporter-destination=${skipsFile}`,
      ...files,
    ],
    {
      stdio: 'inherit',
      env: { ...process.env, ...env, ...(faults ? { FAULT_RESULTS_DIR: resultsDir() } : {}) },
    },
  );
  status = await new Promise((resolve) => child.once('exit', (code) => resolve(code ?? 1)));
  const skips = readFileSync(skipsFile, 'utf8').trim();
  if (skips !== '') {
    console.error(`\nSkipped or todo tests fail the run (every test must run):\n${skips}`);
    status ||= 1;
  }
  if (faults) printFaultTable();
} catch (err) {
  console.error(err);
} finally {
  await stopAll();
}
process.exit(status);

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
