/** Deletes events older than EVENTS_RETENTION_DAYS, every `intervalSeconds` (0 = never). */
import type { Logger } from 'pino';
import type { Queryable } from '../db/pool.ts';
import { deleteOlderThan } from './repo.ts';

export function startEventRetention(
  db: Queryable,
  opts: { intervalSeconds: number; retentionDays: number },
  logger: Logger,
): () => Promise<void> {
  if (opts.intervalSeconds <= 0) return () => Promise.resolve();
  let running: Promise<void> | undefined;
  const run = () => {
    running ??= (async () => {
      try {
        // Batches of 10,000 so one run never holds a long transaction.
        let n = 0;
        for (let removed = -1; removed !== 0 && n < 1_000_000; n += removed) {
          removed = await deleteOlderThan(db, opts.retentionDays);
        }
        if (n > 0) logger.info({ removed: n }, 'deleted old events');
      } catch (err) {
        logger.warn({ err }, 'event retention failed; retrying next round');
      } finally {
        running = undefined;
      }
    })();
  };
  run();
  const timer = setInterval(run, opts.intervalSeconds * 1000);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await running;
  };
}
