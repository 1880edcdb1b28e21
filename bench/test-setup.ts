/**
 * `npm run bench:test-setup`: what the test suite's layout costs per run (issue 14 §1), measured
 * as the two layouts' setup steps side by side, alternating in the same run:
 *
 * - before: every test server initialised, started and migrated an embedded PostgreSQL of its own
 *   (initdb + start + migrations + pg-boss's schema + stop), and every S3 test file started a Ceph
 *   of its own (`scripts/ceph-rgw.sh start` + `stop`);
 * - after: one PostgreSQL and one Ceph per run; a server clones the migrated template
 *   (`CREATE DATABASE … TEMPLATE`), an S3 file makes a bucket on the shared Ceph.
 *
 * The per-run estimate multiplies each step by how many times a run does it. The counts come from
 * a real run: `MEDIARY_TEST_SETUP_LOG=/tmp/setups npm test` appends one line per database clone and
 * per shared-Ceph user (test/helpers/test-postgres.ts countSetup); pass that file as
 * BENCH_SETUP_LOG. Without it, the counts are the call sites found in test/ (an underestimate:
 * loops start several servers). Test processes run two at a time (the runner's concurrency), so
 * the saved wall time is about half the saved setup time; the table says both.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { startEmbedded } from '../src/db/embedded.ts';
import { createLogger } from '../src/log.ts';
import { launchCeph, stopCeph } from '../test/helpers/ceph.ts';
import { freePort } from '../test/helpers/server.ts';
import {
  createTestDatabase,
  migrateWithQueue,
  startTemplatePostgres,
} from '../test/helpers/test-postgres.ts';
import { ROOT, fmt, log, report, reps, scratch, stat, type Stat } from './lib/common.ts';

const ROUNDS = reps(3);
const logger = createLogger('silent');
const work = await scratch('test-setup');

async function timed(fn: () => Promise<void>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return (performance.now() - t0) / 1000;
}

/** Before: one embedded PostgreSQL for one test server, from initdb to stop. */
async function perServerPostgres(i: number): Promise<void> {
  const dir = path.join(work.dir, `pg-${i}`);
  const db = await startEmbedded({ dir, port: await freePort(), logger, restartOnExit: false });
  try {
    await migrateWithQueue(db.url);
  } finally {
    await db.stop();
    await rm(dir, { recursive: true, force: true });
    await rm(`${dir}.log`, { force: true });
  }
}

/** Before: a Ceph of the file's own. */
async function perFileCeph(i: number): Promise<void> {
  const dir = path.join(work.dir, `ceph-${i}`);
  await launchCeph(dir);
  await stopCeph(dir);
  await rm(dir, { recursive: true, force: true });
}

const run = await startTemplatePostgres(path.join(work.dir, 'run'));
Object.assign(process.env, run.env);
const cephDir = path.join(work.dir, 'ceph-run');
const cephEnv = await launchCeph(cephDir);

/** After: the server's database cloned from the template (and dropped, as the run's end does). */
async function clonedDatabase(): Promise<void> {
  const url = await createTestDatabase();
  if (!url) throw new Error('no template database');
  const name = new URL(url).pathname.slice(1);
  const admin = new pg.Client({ connectionString: run.env.MEDIARY_TEST_PG_ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE ${name}`);
  } finally {
    await admin.end();
  }
}

/** After: a bucket of the file's own on the run's Ceph (made and removed). */
async function bucketOnSharedCeph(i: number): Promise<void> {
  const { S3Client, CreateBucketCommand, DeleteBucketCommand } = await import('@aws-sdk/client-s3');
  const s3 = new S3Client({
    endpoint: cephEnv.S3_ENDPOINT,
    region: cephEnv.S3_REGION,
    forcePathStyle: true,
    credentials: { accessKeyId: cephEnv.S3_ACCESS_KEY_ID!, secretAccessKey: cephEnv.S3_SECRET_ACCESS_KEY! },
  });
  const Bucket = `setup-bench-${process.pid}-${i}`;
  await s3.send(new CreateBucketCommand({ Bucket }));
  await s3.send(new DeleteBucketCommand({ Bucket }));
  s3.destroy();
}

const samples = { pg: [] as number[], clone: [] as number[], ceph: [] as number[], bucket: [] as number[] };
let runStart = 0;
try {
  runStart = await timed(async () => {
    const again = await startTemplatePostgres(path.join(work.dir, 'run-again'));
    await again.stop();
  });
  for (let r = 0; r < ROUNDS; r++) {
    const steps: [keyof typeof samples, () => Promise<void>][] = [
      ['pg', () => perServerPostgres(r)],
      ['clone', clonedDatabase],
      ['ceph', () => perFileCeph(r)],
      ['bucket', () => bucketOnSharedCeph(r)],
    ];
    // Rotate the order so a load spike does not always hit the same step.
    for (let k = 0; k < steps.length; k++) {
      const [name, fn] = steps[(k + r) % steps.length]!;
      const s = await timed(fn);
      samples[name].push(s);
      log(`test-setup round ${r + 1}/${ROUNDS} ${name}: ${fmt(s, 2)} s (load ${loadAvg().toFixed(2)})`);
    }
  }
} finally {
  await stopCeph(cephDir).catch(() => undefined);
  await run.stop();
  await work.cleanup();
}

function loadAvg(): number {
  return Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
}

/** How often a run clones a database and uses the shared Ceph. */
function counts(): { databases: number; cephFiles: number; source: string } {
  const file = process.env.BENCH_SETUP_LOG;
  if (file) {
    const lines = readFileSync(file, 'utf8').split('\n');
    return {
      databases: lines.filter((l) => l === 'database').length,
      cephFiles: lines.filter((l) => l === 'ceph').length,
      source: `counted in a real run (${file})`,
    };
  }
  let databases = 0;
  let cephFiles = 0;
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.test.ts')) {
        const text = readFileSync(p, 'utf8');
        databases += (text.match(/startTestServer\(|createTestDatabase\(\)/g) ?? []).length;
        if (text.includes('startCeph(')) cephFiles++;
      }
    }
  };
  walk(path.join(ROOT, 'test'));
  return { databases, cephFiles, source: 'call sites in test/ (a lower bound; set BENCH_SETUP_LOG)' };
}

const st = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, stat(v)])) as Record<
  keyof typeof samples,
  Stat
>;
const n = counts();
const before = n.databases * st.pg.median + n.cephFiles * st.ceph.median;
const after = runStart + st.ceph.median + n.databases * st.clone.median + n.cephFiles * st.bucket.median;

const rows: [string, string][] = [
  [
    'embedded Postgres per server (initdb … stop)',
    `${fmt(st.pg.median, 2)} s [${fmt(st.pg.min, 2)}–${fmt(st.pg.max, 2)}]`,
  ],
  [
    'database cloned from the template',
    `${fmt(st.clone.median, 3)} s [${fmt(st.clone.min, 3)}–${fmt(st.clone.max, 3)}]`,
  ],
  [
    'Ceph per S3 file (start + stop)',
    `${fmt(st.ceph.median, 2)} s [${fmt(st.ceph.min, 2)}–${fmt(st.ceph.max, 2)}]`,
  ],
  [
    'bucket on the run\u2019s Ceph (create + delete)',
    `${fmt(st.bucket.median, 3)} s [${fmt(st.bucket.min, 3)}–${fmt(st.bucket.max, 3)}]`,
  ],
  ['run\u2019s Postgres + migrated template (once)', `${fmt(runStart, 2)} s`],
  [`per run: ${n.databases} databases, ${n.cephFiles} S3 files`, n.source],
  [
    'setup time per run, before',
    `${fmt(before, 0)} s (≈ ${fmt(before / 2 / 60, 1)} min wall at 2 test processes)`,
  ],
  ['setup time per run, after', `${fmt(after, 0)} s (≈ ${fmt(after / 2 / 60, 1)} min wall)`],
];
const width = Math.max(...rows.map(([a]) => a.length));
console.log(
  `\ntest layout setup costs, median of ${ROUNDS} rounds (load ${loadAvg().toFixed(2)} at the end)`,
);
for (const [a, b] of rows) console.log(`${a.padEnd(width)}  ${b}`);

await report({
  name: 'test-setup',
  rows: [
    {
      bench: 'test setup per run',
      figure: 'after: one Postgres + template clones, one Ceph + buckets (s)',
      unit: 's',
      value: stat([after]),
      baselineName: 'before: Postgres per server, Ceph per S3 file (s)',
      baseline: stat([before]),
      ratio: after / before,
      ratioMeaning: 'after / before',
      goal: 'report',
      met: null,
    },
  ],
  notes: [
    `${n.databases} database clones and ${n.cephFiles} shared-Ceph users per run, ${n.source}.`,
    `Medians of ${ROUNDS} rounds: Postgres per server ${fmt(st.pg.median, 2)} s, clone ${fmt(st.clone.median, 3)} s, Ceph per file ${fmt(st.ceph.median, 2)} s, bucket ${fmt(st.bucket.median, 3)} s.`,
  ],
});
