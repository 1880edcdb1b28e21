/**
 * Deleting media: the row first (DELETED, workers told; a trigger queues the deletion in the outbox,
 * migration 0031, in the same transaction), then its objects through the outbox
 * ({@link DeletionOutbox}): what fails or is cut short by a crash, the outbox drain finishes.
 */
import type { Logger } from 'pino';
import { setAuditContext } from '../audit/context.ts';
import type { Principal } from '../auth/principals.ts';
import { withTransaction, type Pool, type Queryable } from '../db/pool.ts';
import { AppError } from '../errors.ts';
import type { ObjectStore } from '../storage/types.ts';
import { DeletionOutbox } from './deletion-outbox.ts';
import type { MediaQueries } from './queries.ts';
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
  readonly outbox: DeletionOutbox;

  constructor(
    private readonly pool: Pool,
    store: ObjectStore,
    private readonly queries: MediaQueries,
    private readonly logger: Logger,
  ) {
    this.outbox = new DeletionOutbox(pool, store, logger);
  }

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
   * Removes a DELETED media's objects: the original and everything derived from it, through the
   * outbox row its deletion queued. What fails now (or a crash cuts short), the drain finishes.
   */
  async removeObjects(media: Pick<MediaRow, 'id'>): Promise<void> {
    try {
      await this.outbox.afterDelete(media.id);
    } catch (err) {
      this.logger.warn(
        { err, mediaId: media.id },
        'could not remove the deleted objects now; left to the drain',
      );
    }
  }
}
