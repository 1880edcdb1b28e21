/**
 * Purges audit rows older than AUDIT_RETENTION_DAYS (0: never), every `intervalSeconds`, once per
 * cluster (src/operations/periodic.ts). The purge is the one DELETE the table accepts (the
 * `audit_purge` function of migration 0027); batches keep each transaction short.
 */
import type { Logger } from 'pino';
import { purgeAudit } from '../audit/repo.ts';
import type { Pool } from '../db/pool.ts';
import { startPeriodic } from './periodic.ts';

const BATCH = 10_000;
/** One run removes at most this many rows; the next run goes on. */
const MAX_PER_RUN = 1_000_000;

export async function purgeOldAudit(pool: Pool, retentionDays: number): Promise<number> {
  let total = 0;
  for (let removed = -1; removed !== 0 && total < MAX_PER_RUN; total += removed) {
    removed = await purgeAudit(pool, retentionDays, BATCH);
  }
  return total;
}

export function startAuditRetention(
  pool: Pool,
  opts: { intervalSeconds: number; retentionDays: number },
  logger: Logger,
): () => Promise<void> {
  if (opts.retentionDays <= 0) return () => Promise.resolve();
  return startPeriodic(
    'audit retention',
    opts.intervalSeconds,
    async () => {
      const removed = await purgeOldAudit(pool, opts.retentionDays);
      if (removed > 0) logger.info({ removed }, 'purged old audit log rows');
    },
    logger,
    pool,
  );
}
