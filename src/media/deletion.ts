/** Deleting media: the row first (DELETED, workers told), then its objects, best effort. */
import type { Logger } from 'pino';
import { setAuditContext } from '../audit/context.ts';
import type { Principal } from '../auth/principals.ts';
import { withTransaction, type Pool, type Queryable } from '../db/pool.ts';
import { AppError } from '../errors.ts';
import type { ObjectStore } from '../storage/types.ts';
import type { MediaQueries } from './queries.ts';
import * as repo from './repo.ts';
import type { MediaRow } from './repo.ts';
import * as transitions from './transitions.ts';

/**
 * Marks media DELETED inside the caller's transaction (a post deleted with its media); call
 * {@link MediaDeletion.removeObjects} for each after the commit. False if it was deleted already.
 */
export function markDeletedWithin(tx: Queryable, mediaId: string): Promise<boolean> {
  return transitions.markDeleted(tx, mediaId);
}

export class MediaDeletion {
  constructor(
    private readonly pool: Pool,
    private readonly store: ObjectStore,
    private readonly queries: MediaQueries,
    private readonly logger: Logger,
  ) {}

  async delete(principal: Principal, mediaId: string): Promise<void> {
    const media = await this.queries.get(principal, mediaId);
    // One transaction with the audit row (written by the database's trigger, migration 0027).
    const deleted = await withTransaction(this.pool, async (tx) => {
      await setAuditContext(tx, principal);
      return transitions.markDeleted(tx, media.id);
    });
    if (!deleted) throw new AppError('not_found', 'Media not found.');
    await this.removeObjects(media);
  }

  /**
   * Removes a DELETED media's objects: the original and everything derived from it. Best effort:
   * what fails now, the orphan sweeper removes later (a DELETED row references nothing).
   */
  async removeObjects(media: Pick<MediaRow, 'id' | 'storage_key'>): Promise<void> {
    try {
      await this.store.delete(media.storage_key);
      // Read after the row is DELETED: a job that finished in between has written its variants
      // by now (no job can add any later), so none is missed.
      for (const key of await repo.derivedObjectKeys(this.pool, media.id)) await this.store.delete(key);
    } catch (err) {
      this.logger.warn(
        { err, mediaId: media.id },
        'could not remove the deleted object now; left for the sweeper',
      );
    }
  }
}
