/**
 * Composition of the HTTP rate limits' counters (RATE_LIMIT_STORE): in Postgres, shared by every
 * API process on the database, with their expired windows deleted once a minute by one process of
 * the cluster; or in this process' memory.
 */
import type { Config } from './config.ts';
import type { Pool } from './db/pool.ts';
import { PgRateWindows } from './db/rate-windows.ts';
import { memoryRateWindows, type RateWindows } from './http/rate-limit-store.ts';
import type { Logger } from './log.ts';
import { startPeriodic } from './operations/periodic.ts';

const CLEANUP_SECONDS = 60;

export function httpRateWindows(
  config: Config,
  pool: Pool,
  logger: Logger,
  started: { name: string; stop: () => Promise<void> }[],
): { routes: RateWindows; authFailures: RateWindows } {
  if (config.rateLimit.store === 'memory') {
    return { routes: memoryRateWindows(), authFailures: memoryRateWindows() };
  }
  const windows = new PgRateWindows(pool, config.databasePreparedStatements);
  const stop = startPeriodic(
    'rate-limit window cleanup',
    CLEANUP_SECONDS,
    async () => void (await windows.deleteExpired()),
    logger,
    pool,
  );
  started.push({ name: 'rate-limit window cleanup', stop });
  // One table: keys carry their kind (`sessions device:…`, `auth-failures ip:…`), and a table has
  // no bound for addresses to push principals' windows out of.
  return { routes: windows, authFailures: windows };
}
