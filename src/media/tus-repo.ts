import type { Queryable } from '../db/pool.ts';
import type { StoredPart } from '../storage/types.ts';

/** One tus upload's durable state (migration 0022). */
export interface TusRow {
  media_id: string;
  /** Bytes received and made durable (fsynced or stored as parts). */
  upload_offset: number;
  metadata: string | null;
  /** 0: one staging file published whole; else every part but the last has this size. */
  part_size: number;
  store_upload_id: string | null;
  /** Parts stored so far, in order (1..n). */
  parts: StoredPart[];
}

const columns = (t: string) =>
  `${t}.media_id, ${t}.upload_offset::float8 AS upload_offset, ${t}.metadata,
   ${t}.part_size::float8 AS part_size, ${t}.store_upload_id, ${t}.parts`;

export async function insertTus(
  db: Queryable,
  row: { mediaId: string; metadata: string | null; partSize: number },
): Promise<void> {
  await db.query(
    `INSERT INTO tus_uploads (media_id, metadata, part_size) VALUES ($1, $2, $3) ON CONFLICT (media_id) DO NOTHING`,
    [row.mediaId, row.metadata, row.partSize],
  );
}

export async function findTus(db: Queryable, mediaId: string): Promise<TusRow | undefined> {
  const { rows } = await db.query<TusRow>(`SELECT ${columns('t')} FROM tus_uploads t WHERE media_id = $1`, [
    mediaId,
  ]);
  return rows[0];
}

/** Moves the offset from `from` to `to`; false when it is not at `from` (any more) or is gone. */
export async function advanceOffset(
  db: Queryable,
  mediaId: string,
  from: number,
  to: number,
): Promise<boolean> {
  const res = await db.query(
    `UPDATE tus_uploads SET upload_offset = $3, updated_at = now() WHERE media_id = $1 AND upload_offset = $2`,
    [mediaId, from, to],
  );
  return res.rowCount === 1;
}

/** Records the store's multipart upload id, once; false when one is recorded already. */
export async function setStoreUpload(db: Queryable, mediaId: string, uploadId: string): Promise<boolean> {
  const res = await db.query(
    `UPDATE tus_uploads SET store_upload_id = $2, updated_at = now() WHERE media_id = $1 AND store_upload_id IS NULL`,
    [mediaId, uploadId],
  );
  return res.rowCount === 1;
}

/** Appends part `part.partNumber`, which must be the next one. */
export async function addPart(db: Queryable, mediaId: string, part: StoredPart): Promise<boolean> {
  const res = await db.query(
    `UPDATE tus_uploads SET parts = parts || jsonb_build_array($2::jsonb), updated_at = now()
     WHERE media_id = $1 AND jsonb_array_length(parts) = $3`,
    [mediaId, JSON.stringify(part), part.partNumber - 1],
  );
  return res.rowCount === 1;
}

export async function deleteTus(db: Queryable, mediaId: string): Promise<void> {
  await db.query('DELETE FROM tus_uploads WHERE media_id = $1', [mediaId]);
}

/** Uploads whose session is over (completed, failed, deleted) or expired: their leftovers can go. */
export async function finishedOrExpired(db: Queryable, limit: number): Promise<TusRow[]> {
  const { rows } = await db.query<TusRow>(
    `SELECT ${columns('t')} FROM tus_uploads t JOIN media m ON m.id = t.media_id
     WHERE m.status <> 'PENDING' OR m.upload_expires_at < now() LIMIT $1`,
    [limit],
  );
  return rows;
}
