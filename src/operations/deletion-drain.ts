import type { Logger } from 'pino';
import type { Pool } from '../db/pool.ts';
import type { DeletionOutbox } from '../media/deletion-outbox.ts';
import { startPeriodic } from './periodic.ts';

/**
 * Drains the deletion outbox every `intervalSeconds`, once per cluster: objects a crash or a
 * failing store left behind, and CDN purges to retry (src/media/deletion-outbox.ts). Returns a
 * stopper that also waits for purges still running in the background.
 */
export function startDeletionDrain(
  pool: Pool,
  outbox: DeletionOutbox,
  intervalSeconds: number,
  logger: Logger,
): () => Promise<void> {
  const stop = startPeriodic(
    'deletion outbox',
    intervalSeconds,
    async () => {
      const r = await outbox.drain();
      if (r.done + r.failed > 0) logger.info(r, 'deletion outbox drained');
    },
    logger,
    pool,
  );
  return async () => {
    await stop();
    await outbox.idle();
  };
}
