import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { runOncePerCluster } from '../../src/db/cluster-lock.ts';
import { startEmbedded, type EmbeddedDatabase } from '../../src/db/embedded.ts';
import { migrate } from '../../src/db/migrate.ts';
import { createPool, type Pool } from '../../src/db/pool.ts';
import { createLogger } from '../../src/log.ts';
import { freePort, tempDir } from '../helpers/server.ts';
import { createTestDatabase } from '../helpers/test-postgres.ts';

// Two pools stand for two processes of one cluster (each its own connections and sessions).
let dir: string;
let database: EmbeddedDatabase | undefined;
let a: Pool;
let b: Pool;
before(async () => {
  dir = await tempDir('mediary-cluster-lock-');
  const logger = createLogger('silent');
  let url = await createTestDatabase();
  if (url === undefined) {
    database = await startEmbedded({ dir: path.join(dir, 'postgres'), port: await freePort(), logger });
    url = database.url;
  }
  a = createPool(url, logger, 4);
  b = createPool(url, logger, 4);
  await migrate(a, logger);
});
after(async () => {
  await a?.end();
  await b?.end();
  await database?.stop();
  await rm(dir, { recursive: true, force: true });
});

const HOUR = 3_600_000;

test('of processes whose timers fire together, one runs the job and the others skip it', async () => {
  let runs = 0;
  const job = async () => {
    runs++;
    await new Promise((r) => setTimeout(r, 50));
    return 'swept';
  };
  const pools = [a, b, a, b, a, b];
  const results = await Promise.all(
    pools.map((pool, i) =>
      runOncePerCluster(pool, { name: 'together', intervalMs: HOUR, owner: `p${i}` }, job),
    ),
  );
  assert.equal(runs, 1);
  assert.equal(results.filter((r) => r.ran).length, 1);
  const ran = results.find((r) => r.ran);
  assert.deepEqual(ran, { ran: true, result: 'swept' });
  for (const r of results.filter((x) => !x.ran)) assert.ok(r.reason === 'locked' || r.reason === 'not-due');
});

test('a job that ran is not due again within its interval, on any process', async () => {
  let runs = 0;
  const job = async () => void runs++;
  assert.equal((await runOncePerCluster(a, { name: 'interval', intervalMs: HOUR }, job)).ran, true);
  assert.deepEqual(await runOncePerCluster(b, { name: 'interval', intervalMs: HOUR }, job), {
    ran: false,
    reason: 'not-due',
  });
  assert.deepEqual(await runOncePerCluster(a, { name: 'interval', intervalMs: HOUR }, job), {
    ran: false,
    reason: 'not-due',
  });
  assert.equal(runs, 1);
  // Another job name has its own lock and schedule.
  assert.equal((await runOncePerCluster(b, { name: 'other', intervalMs: HOUR }, job)).ran, true);
  // Once the interval has passed (here: it is zero), the next process to ask runs it.
  assert.equal((await runOncePerCluster(b, { name: 'interval', intervalMs: 0 }, job)).ran, true);
  assert.equal(runs, 3);
});

test('a run that outlasts its interval is not overlapped: the lock holds until it ends', async () => {
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  let inside = 0;
  let most = 0;
  const job = async () => {
    inside++;
    most = Math.max(most, inside);
    await held;
    inside--;
  };
  const first = runOncePerCluster(a, { name: 'long', intervalMs: 0 }, job);
  // Wait until the first run is inside the job (it holds the lock from then on).
  while (inside === 0) await new Promise((r) => setTimeout(r, 5));
  assert.deepEqual(await runOncePerCluster(b, { name: 'long', intervalMs: 0 }, job), {
    ran: false,
    reason: 'locked',
  });
  release();
  assert.equal((await first).ran, true);
  assert.equal(most, 1);
  // Released: the next run goes ahead, and the failure of a run is its caller's, lock released.
  await assert.rejects(
    runOncePerCluster(b, { name: 'long', intervalMs: 0 }, () => Promise.reject(new Error('store down'))),
    /store down/,
  );
  assert.equal((await runOncePerCluster(a, { name: 'long', intervalMs: 0 }, job)).ran, true);
  const { rows } = await a.query(
    `SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND granted`,
  );
  assert.equal(rows[0].n, 0, 'no advisory lock left behind');
});
