/**
 * What one upload costs the database (issue 17 §4, the capacity arithmetic in docs/ARCHITECTURE.md):
 * N image uploads through the real service (session → PUT → complete → worker → READY), then per
 * upload: WAL bytes, heap and index bytes of each table that grew, and pg-boss job rows.
 *
 *   node --import tsx bench/db-footprint.ts      (BENCH_UPLOADS, default 200)
 */
import { fixture } from '../test/helpers/files.ts';
import { startTestServer } from '../test/helpers/server.ts';
import { upload, waitFor } from '../test/processing/helpers.ts';

const N = Number(process.env.BENCH_UPLOADS ?? 200);
const t = await startTestServer({ LOG_LEVEL: 'warn', RATE_LIMIT_SESSIONS_PER_MINUTE: '1000000' });
const db = t.server.database.pool;
const image = fixture('cameras/Canon_40D.jpg');

const sizes = async () => {
  const { rows } = await db.query<{ name: string; heap: number; idx: number; n: number }>(
    `SELECT c.relnamespace::regnamespace || '.' || c.relname AS name,
            pg_table_size(c.oid)::bigint AS heap, pg_indexes_size(c.oid)::bigint AS idx,
            c.reltuples::bigint AS n
       FROM pg_class c WHERE c.relkind IN ('r', 'p') AND c.relnamespace::regnamespace::text IN ('public', 'pgboss')`,
  );
  return new Map(rows.map((r) => [r.name, r]));
};
const activity = async () =>
  (
    await db.query<{ commits: number; ins: number; upd: number; del: number }>(
      `SELECT xact_commit::bigint AS commits, tup_inserted::bigint AS ins, tup_updated::bigint AS upd,
              tup_deleted::bigint AS del FROM pg_stat_database WHERE datname = current_database()`,
    )
  ).rows[0]!;
const lsn = async () =>
  Number((await db.query<{ b: string }>(`SELECT pg_current_wal_lsn() - '0/0'::pg_lsn AS b`)).rows[0]!.b);

try {
  const dev = await t.device('footprint');
  // Warm-up (first-use allocations, a checkpoint's first full-page writes are part of the figure anyway).
  for (let i = 0; i < 5; i++)
    await waitFor(t, dev.auth, (await upload(t, dev.auth, image)).id, ['READY'], 120_000);
  await db.query('CHECKPOINT').catch(() => undefined);
  const before = await sizes();
  const wal0 = await lsn();
  const act0 = await activity();
  const t0 = Date.now();
  const ids: string[] = [];
  for (let i = 0; i < N; i += 10) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(10, N - i) }, () => upload(t, dev.auth, image).then((r) => r.id)),
    );
    ids.push(...batch);
  }
  for (const id of ids) await waitFor(t, dev.auth, id, ['READY'], 300_000);
  const wal = (await lsn()) - wal0;
  await new Promise((r) => setTimeout(r, 1000)); // statistics are flushed about every second
  const act = await activity();
  await db.query('ANALYZE');
  const after = await sizes();
  const rows = [...after.values()]
    .map((a) => {
      const b = before.get(a.name);
      return { table: a.name, heap: (a.heap - (b?.heap ?? 0)) / N, index: (a.idx - (b?.idx ?? 0)) / N };
    })
    .filter((r) => r.heap + r.index > 0)
    .sort((x, y) => y.heap + y.index - (x.heap + x.index));
  const jobs = await db.query(`SELECT state, count(*)::int AS n FROM pgboss.job GROUP BY state`);
  console.log(`uploads: ${N} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  console.log(`WAL per upload: ${(wal / N).toFixed(0)} bytes`);
  console.log(
    `per upload: ${((act.commits - act0.commits) / N).toFixed(1)} commits (all statements, polling included), ${((act.ins - act0.ins) / N).toFixed(1)} rows inserted, ${((act.upd - act0.upd) / N).toFixed(1)} updated, ${((act.del - act0.del) / N).toFixed(1)} deleted`,
  );
  console.log('table growth per upload (bytes; page-granular, so small tables read 0 or 8192/N):');
  for (const r of rows)
    console.log(
      `  ${r.table.padEnd(32)} heap ${r.heap.toFixed(0).padStart(6)}  indexes ${r.index.toFixed(0).padStart(6)}`,
    );
  console.log('pg-boss jobs by state:', JSON.stringify(jobs.rows));
} finally {
  await t.close();
}
