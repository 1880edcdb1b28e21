/**
 * The deletion outbox (migration 0031): a media becoming DELETED gets a `media_deletions` row in the
 * same transaction (a trigger). Working off a row removes every object of the media from the store
 * (the original, variants and posters, HLS playlists and segments: any `key`/`*_key` column of a
 * table with a `media_id`), then, when configured, asks the CDN to purge them; only then is the row
 * removed. Each step is idempotent (deleting a missing object is no error, a purge may repeat), so
 * a crash anywhere, or two processes working the same row, leave nothing behind and break nothing.
 *
 * The delete request works its own row at once (objects only; the purge runs in the background so
 * it never holds the delete up); the drain (src/operations/deletion-drain.ts, once per cluster)
 * finishes rows a crash or a failing store or CDN left, with backoff.
 */
import type { Logger } from 'pino';
import type { Pool, Queryable } from '../db/pool.ts';
import type { ObjectStore } from '../storage/types.ts';

/** Tells a CDN to drop its cached copies of a deleted media's objects; throws when it refused. */
export interface CdnPurge {
  /** Gives up on a media's purge after this many failed attempts. */
  readonly maxAttempts: number;
  purge(mediaId: string, keys: readonly string[]): Promise<void>;
}

interface OutboxRow {
  media_id: string;
  objects_removed_at: Date | null;
  attempts: number;
}

export type ProcessOutcome = 'done' | 'purge-pending' | 'gone' | 'failed';

/** Backoff after the n-th failure: 10 s, 20 s, 40 s … at most an hour. */
const backoffSeconds = (attempts: number) => Math.min(3600, 10 * 2 ** Math.min(attempts - 1, 12));

export class DeletionOutbox {
  private purger: CdnPurge | undefined;
  private keyColumns: Promise<{ table: string; column: string }[]> | undefined;
  private readonly background = new Set<Promise<unknown>>();

  constructor(
    private readonly pool: Pool,
    private readonly store: ObjectStore,
    private readonly logger: Logger,
  ) {}

  /** Purges deleted media from a CDN from now on (composition root; off by default). */
  usePurge(purger: CdnPurge | undefined): void {
    this.purger = purger;
  }

  /**
   * Works the outbox row of a media just deleted, as the delete's last step: its objects now, the
   * purge (if any) in the background. Never throws: what fails is left to the drain.
   */
  async afterDelete(mediaId: string): Promise<void> {
    const outcome = await this.process(mediaId, { purge: false });
    if (outcome === 'purge-pending') {
      const p = this.process(mediaId, { purge: true }).finally(() => this.background.delete(p));
      this.background.add(p);
    }
  }

  /**
   * Works one media's row: objects first (recorded as done), then the purge when `purge` is set
   * and a purger is configured, then the row goes. A failure records the error and a backoff.
   */
  async process(mediaId: string, opts: { purge: boolean }): Promise<ProcessOutcome> {
    const { rows } = await this.pool.query<OutboxRow>(
      'SELECT media_id, objects_removed_at, attempts FROM media_deletions WHERE media_id = $1',
      [mediaId],
    );
    const row = rows[0];
    if (!row) return 'gone';
    let keys: string[] = [];
    try {
      keys = await this.objectKeys(mediaId);
      if (!row.objects_removed_at) {
        for (const key of await this.unreferenced(keys)) await this.store.delete(key);
        await this.pool.query('UPDATE media_deletions SET objects_removed_at = now() WHERE media_id = $1', [
          mediaId,
        ]);
      }
      if (this.purger) {
        if (!opts.purge) return 'purge-pending';
        await this.purger.purge(mediaId, keys);
      }
      await this.pool.query('DELETE FROM media_deletions WHERE media_id = $1', [mediaId]);
      return 'done';
    } catch (err) {
      await this.failed(row, keys, err);
      return 'failed';
    }
  }

  /** Works every due row (oldest first), at most `max`; returns how many were finished. */
  async drain(max = 1000): Promise<{ done: number; failed: number }> {
    const report = { done: 0, failed: 0 };
    while (report.done + report.failed < max) {
      const { rows } = await this.pool.query<{ media_id: string }>(
        `SELECT media_id FROM media_deletions WHERE next_attempt_at <= now()
          ORDER BY next_attempt_at LIMIT $1`,
        [Math.min(100, max - report.done - report.failed)],
      );
      if (rows.length === 0) break;
      for (const { media_id } of rows) {
        const outcome = await this.process(media_id, { purge: true });
        if (outcome === 'failed') report.failed++;
        else report.done++;
      }
      if (rows.length < 100) break;
    }
    return report;
  }

  /** Waits for background purges started by {@link afterDelete} (shutdown, tests). */
  async idle(): Promise<void> {
    while (this.background.size > 0) await Promise.allSettled([...this.background]);
  }

  /** Rows still waiting (for tests and `storage reconcile`). */
  async pending(db: Queryable = this.pool): Promise<number> {
    const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM media_deletions');
    return rows[0]!.n;
  }

  private async failed(row: OutboxRow, keys: string[], err: unknown): Promise<void> {
    const attempts = row.attempts + 1;
    const message = err instanceof Error ? err.message : String(err);
    const objectsGone = await this.pool
      .query<{ objects_removed_at: Date | null }>(
        'SELECT objects_removed_at FROM media_deletions WHERE media_id = $1',
        [row.media_id],
      )
      .then((r) => r.rows[0]?.objects_removed_at != null)
      .catch(() => false);
    if (objectsGone && this.purger && attempts >= this.purger.maxAttempts) {
      this.logger.error(
        { err, mediaId: row.media_id, attempts, objects: keys.length },
        'CDN purge given up; cached copies may outlive the deleted media until they expire',
      );
      await this.pool
        .query('DELETE FROM media_deletions WHERE media_id = $1', [row.media_id])
        .catch(() => undefined);
      return;
    }
    this.logger.warn(
      { err, mediaId: row.media_id, attempts },
      objectsGone
        ? 'CDN purge failed; retrying later'
        : 'removing a deleted media’s objects failed; retrying later',
    );
    await this.pool
      .query(
        `UPDATE media_deletions SET attempts = $2, last_error = $3,
                next_attempt_at = now() + make_interval(secs => $4)
          WHERE media_id = $1`,
        [row.media_id, attempts, message.slice(0, 1000), backoffSeconds(attempts)],
      )
      .catch((e: unknown) => this.logger.warn({ err: e }, 'could not record the failure'));
  }

  /**
   * Every object key of the media: its original and any `key`/`*_key` text column of a table with
   * a `media_id` (variants, posters, renditions, HLS objects, and what later tables add). Read
   * after the row is DELETED: no job can add objects any more (READY is refused), so none is missed.
   */
  async objectKeys(mediaId: string): Promise<string[]> {
    this.keyColumns ??= mediaKeyColumns(this.pool).catch((err: unknown) => {
      this.keyColumns = undefined;
      throw err;
    });
    const parts = ['SELECT storage_key AS k FROM media WHERE id = $1'];
    for (const { table, column } of await this.keyColumns) {
      parts.push(`SELECT ${column} FROM ${table} WHERE media_id = $1 AND ${column} IS NOT NULL`);
    }
    const { rows } = await this.pool.query<{ k: string }>(parts.join(' UNION '), [mediaId]);
    return rows.map((r) => r.k);
  }

  /** The keys no live media holds as its original (a guard: keys are unique per media anyway). */
  private async unreferenced(keys: string[]): Promise<string[]> {
    if (keys.length === 0) return keys;
    const { rows } = await this.pool.query<{ storage_key: string }>(
      `SELECT storage_key FROM media WHERE storage_key = ANY($1) AND status <> 'DELETED'`,
      [keys],
    );
    const live = new Set(rows.map((r) => r.storage_key));
    return keys.filter((k) => !live.has(k));
  }
}

/**
 * (table, column) of every text column named `key` or `*_key` in a table that has a `media_id`
 * column, but for `media` itself and `multipart_uploads` (the upload, not an object of its own).
 */
async function mediaKeyColumns(db: Queryable): Promise<{ table: string; column: string }[]> {
  const { rows } = await db.query<{ table_name: string; column_name: string }>(
    `SELECT c.table_name, c.column_name
       FROM information_schema.columns c
      WHERE c.table_schema = current_schema() AND c.data_type = 'text'
        AND (c.column_name = 'key' OR c.column_name LIKE '%!_key' ESCAPE '!')
        AND c.table_name NOT IN ('media', 'multipart_uploads')
        AND EXISTS (SELECT 1 FROM information_schema.columns m
                     WHERE m.table_schema = c.table_schema AND m.table_name = c.table_name
                       AND m.column_name = 'media_id')
      ORDER BY 1, 2`,
  );
  const q = (id: string) => `"${id.replaceAll('"', '""')}"`;
  return rows.map((r) => ({ table: q(r.table_name), column: q(r.column_name) }));
}
