import type { Logger } from 'pino';
import { setAuditContext } from '../audit/context.ts';
import { withTransaction, type Pool } from '../db/pool.ts';
import type { MediaRow } from '../media/repo.ts';
import { markDeletedWithin, type MediaService } from '../media/service.ts';
import * as repo from '../posts/repo.ts';
import { startPeriodic } from './periodic.ts';

const BATCH = 100;

/**
 * Media uploaded for a post (`purpose: "post"`) that no post took within the grace period are
 * deleted, objects included (the UploadThing note, 3.10). Never library media, device captures, or
 * media on a post. Returns how many were removed.
 */
export async function removeUnattachedPostMedia(
  pool: Pool,
  media: MediaService,
  opts: { graceSeconds: number; now?: Date },
  logger: Logger,
): Promise<number> {
  const cutoff = new Date((opts.now ?? new Date()).getTime() - opts.graceSeconds * 1000);
  let removed = 0;
  for (;;) {
    const ids = await repo.unattachedPostMedia(pool, cutoff, BATCH);
    for (const id of ids) {
      const row = await withTransaction(pool, async (tx): Promise<MediaRow | undefined> => {
        await setAuditContext(tx, { kind: 'system', id: 'post media lifecycle' });
        if (!(await repo.claimUnattached(tx, id))) return undefined;
        await markDeletedWithin(tx, id);
        return (await media.findManyUnchecked([id]))[0];
      });
      if (!row) continue; // attached or deleted meanwhile
      await media.removeObjects(row);
      removed++;
    }
    if (ids.length < BATCH) break;
  }
  if (removed > 0) logger.info({ removed }, 'removed post media no post took');
  return removed;
}

/** Runs {@link removeUnattachedPostMedia} every `intervalSeconds` (0 = never); returns a stopper. */
export function startPostMediaLifecycle(
  pool: Pool,
  media: MediaService,
  opts: { intervalSeconds: number; graceSeconds: number },
  logger: Logger,
): () => Promise<void> {
  return startPeriodic(
    'post media lifecycle',
    opts.intervalSeconds,
    async () => {
      await removeUnattachedPostMedia(pool, media, opts, logger);
    },
    logger,
    pool,
  );
}
