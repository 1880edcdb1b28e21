/**
 * Periodic jobs that must run once per cluster, not once per process (issue 17 §4): every API and
 * worker process sharing the database has the same timers, and a run of the sweeper or the post
 * media lifecycle in each of them would do the same work N times over (and race itself).
 *
 * A run goes ahead only in the process that (1) takes the job's session-level advisory lock
 * without waiting — so two runs never overlap, however long one takes — and (2) finds the job due
 * in `periodic_runs` (migration 0020): its last start is at least 90 % of an interval ago (the
 * timers of several processes drift; without the slack a run could skip a whole interval), and
 * records its own start there in the same statement. So across N processes the job starts about
 * once per interval, and never twice at once.
 *
 * The lock lives on one pooled connection held for the run (idle, outside any transaction, so no
 * idle-in-transaction timeout applies). If that connection dies, Postgres releases the lock and
 * another process may start a run while this one finishes: the periodic jobs are idempotent, row
 * by row, so the worst case is the overlap they already tolerate within one process' retries.
 */
import os from 'node:os';
import type { Pool } from './pool.ts';

/** Who ran a job, as `periodic_runs.last_owner` records it. */
export const PROCESS_OWNER = `${os.hostname()}:${process.pid}`;

export type ClusterRun<T> = { ran: true; result: T } | { ran: false; reason: 'locked' | 'not-due' };

/** Share of an interval after which a job is due again (see above). */
const DUE_AFTER = 0.9;

export async function runOncePerCluster<T>(
  pool: Pool,
  job: { name: string; intervalMs: number; owner?: string },
  fn: () => Promise<T>,
): Promise<ClusterRun<T>> {
  const client = await pool.connect();
  let broken: Error | undefined;
  const onError = (err: Error) => {
    broken = err;
  };
  client.on('error', onError);
  let locked = false;
  try {
    const lock = await client.query<{ locked: boolean }>(
      `SELECT pg_try_advisory_lock(hashtextextended('mediary periodic ' || $1, 0)) AS locked`,
      [job.name],
    );
    locked = lock.rows[0]!.locked;
    if (!locked) return { ran: false, reason: 'locked' };
    const due = await client.query(
      `INSERT INTO periodic_runs AS r (name, last_started_at, last_owner) VALUES ($1, now(), $3)
       ON CONFLICT (name) DO UPDATE SET last_started_at = now(), last_owner = $3
       WHERE r.last_started_at <= now() - $2 * interval '1 millisecond'
       RETURNING 1`,
      [job.name, Math.floor(job.intervalMs * DUE_AFTER), job.owner ?? PROCESS_OWNER],
    );
    if (due.rowCount === 0) return { ran: false, reason: 'not-due' };
    return { ran: true, result: await fn() };
  } finally {
    if (locked && !broken) {
      await client
        .query(`SELECT pg_advisory_unlock(hashtextextended('mediary periodic ' || $1, 0))`, [job.name])
        .catch((err: unknown) => {
          broken = err instanceof Error ? err : new Error('unlock failed');
        });
    }
    client.off('error', onError);
    // A connection that failed (or whose lock state is unknown) is discarded, which also ends
    // any lock it still held.
    client.release(broken);
  }
}
