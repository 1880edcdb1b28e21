/**
 * What naming the job queue's and the worker's statements saves Postgres (issue 22 §4).
 *
 *   node --import tsx bench/named-statements.ts        (npm run bench:named-statements)
 *
 * One image's queue work, as the upload and the in-process worker do it, on one connection of an
 * embedded Postgres of its own: the completion's enqueue (pg-boss insert + NOTIFY, one
 * transaction), then the claim transaction (fetch from both lanes, claim row, pg-boss complete,
 * claim deleted). `BENCH_N` cycles (600) per round, `BENCH_REPS` rounds (4), unnamed and named
 * alternating (DATABASE_PREPARED_STATEMENTS false / true: pg-boss's statements through the queue
 * adapter, the claims through the worker pool's option). Reported: CPU of that connection's
 * backend (/proc, 10 ms ticks, so a round's total is what counts) and of this process, per cycle.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { startEmbedded } from '../src/db/embedded.ts';
import { createPool, withTransaction } from '../src/db/pool.ts';
import { PgBossQueue } from '../src/infra/queue/pg-boss.ts';
import { createLogger } from '../src/log.ts';
import * as claims from '../src/processing/repo.ts';
import { freePort } from '../test/helpers/server.ts';
import { migrateWithQueue } from '../test/helpers/test-postgres.ts';
import { log, reps, report, scratch, stat, type BenchRow } from './lib/common.ts';

const N = Number(process.env.BENCH_N ?? 600);
const REPS = reps(4);
const TICK_MS = 10;

/** CPU ms of one process so far (utime + stime). */
function processCpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * TICK_MS;
}

const logger = createLogger('silent');
const work = await scratch('named-statements');
const db = await startEmbedded({ dir: path.join(work.dir, 'pg'), port: await freePort(), logger });
await migrateWithQueue(db.url);

const perCycle = {
  unnamed: { pg: [] as number[], client: [] as number[] },
  named: { pg: [] as number[], client: [] as number[] },
};
try {
  for (let round = 0; round < REPS; round++) {
    for (const prepared of [false, true]) {
      const queuePool = createPool(db.url, logger, 3);
      const queue = await PgBossQueue.start(
        queuePool,
        logger,
        { retryLimit: 0, retryDelaySeconds: 1 },
        { prepared },
      );
      const one = createPool(db.url, logger, 1, undefined, { namedStatements: prepared });
      const pid = (await one.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      const backend = { pid, start: new Date().toISOString() };
      const cycle = async () => {
        await withTransaction(one, (tx) => queue.enqueueProcessing(tx, randomUUID(), 'image'));
        await withTransaction(one, async (tx) => {
          const job = await queue.fetchProcessing(tx, ['video', 'image']);
          if (!job) throw new Error('the job just queued was not fetched');
          await claims.insertClaim(tx, job, backend);
          await queue.complete(job, {}, tx);
          await claims.deleteClaim(tx, job.id);
        });
      };
      for (let i = 0; i < 20; i++) await cycle(); // first plans, caches
      const pg0 = processCpuMs(pid);
      const c0 = process.cpuUsage();
      for (let i = 0; i < N; i++) await cycle();
      const c = process.cpuUsage(c0);
      const side = prepared ? perCycle.named : perCycle.unnamed;
      side.pg.push(((processCpuMs(pid) - pg0) / N) * 1000);
      side.client.push((c.user + c.system) / N);
      log(
        `round ${round} ${prepared ? 'named  ' : 'unnamed'}: backend ${side.pg.at(-1)!.toFixed(0)} µs/cycle, ` +
          `this process ${side.client.at(-1)!.toFixed(0)} µs/cycle`,
      );
      await one.end();
      await queue.stop();
      await queuePool.end();
    }
  }
} finally {
  await db.stop();
  await work.cleanup();
}

const rows: BenchRow[] = [];
for (const who of ['pg', 'client'] as const) {
  const base = stat(perCycle.unnamed[who]);
  const value = stat(perCycle.named[who]);
  rows.push({
    bench: 'named-statements',
    figure:
      who === 'pg' ? 'Postgres backend CPU per image (queue work)' : 'client CPU per image (queue work)',
    unit: 'µs',
    value,
    baselineName: 'unnamed',
    baseline: base,
    ratio: value.median / base.median,
    ratioMeaning: 'named / unnamed',
    goal: '',
    met: null,
  });
}
for (const r of rows) {
  console.log(
    `${r.figure}: named ${r.value.median.toFixed(0)} µs against unnamed ${r.baseline!.median.toFixed(0)} µs (${r.ratio!.toFixed(2)}×)`,
  );
}
await report({
  name: 'named-statements',
  rows,
  notes: [
    `${N} cycles × ${REPS} rounds, alternating; load average ${readFileSync('/proc/loadavg', 'utf8').trim()}`,
  ],
});
