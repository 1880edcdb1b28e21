/**
 * `mediary storage setup --tag-existing`: tags the originals of media uploaded before archiving
 * was switched on, so the archive lifecycle rule (docs/DEPLOY-TIERING.md) covers them too.
 * Completion tags new originals itself; tagging is idempotent, so a rerun is harmless.
 */
import type { Queryable } from '../db/pool.ts';
import type { ObjectStore } from '../storage/types.ts';

const BATCH = 500;
const PARALLEL = 8;

/** Tags every stored original of media on `store`'s backend; returns how many were tagged. */
export async function tagExistingOriginals(db: Queryable, store: ObjectStore): Promise<number> {
  const archive = store.archive;
  if (!archive) return 0;
  let tagged = 0;
  let after = '00000000-0000-0000-0000-000000000000';
  for (;;) {
    const { rows } = await db.query<{ id: string; storage_key: string }>(
      `SELECT id, storage_key FROM media
        WHERE storage_backend = $1 AND id > $2
          AND (status IN ('UPLOADED', 'PROCESSING', 'READY') OR (status = 'FAILED' AND detected_mime_type IS NOT NULL))
        ORDER BY id LIMIT ${BATCH}`,
      [store.backend, after],
    );
    if (rows.length === 0) return tagged;
    for (let i = 0; i < rows.length; i += PARALLEL) {
      const results = await Promise.allSettled(
        rows.slice(i, i + PARALLEL).map((r) => archive.markOriginal(r.storage_key)),
      );
      // A vanished object (deleted meanwhile) is not an error; anything else stops the run.
      for (const r of results) {
        if (r.status === 'fulfilled') tagged++;
        else if (!/NoSuchKey|NotFound/.test(String((r.reason as Error).name))) throw r.reason;
      }
    }
    after = rows.at(-1)!.id;
  }
}
